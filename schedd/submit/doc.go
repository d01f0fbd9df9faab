// Package submit parses the submit description language for `vmpool submit`
// (HTCondor's condor_submit) into the job attributes of one cluster of vm
// universe jobs.
//
// It owns the language: lines, comments, continuations, multi-line values,
// $(macro) expansion, literal attributes (+Attr, MY.Attr) and every form of
// the queue statement, and it owns condor_submit's checks. It imports nothing
// of the project, not even classad: attribute values leave as ClassAd
// expression source text (Attr.Expr) that the caller parses, and user
// expressions are validated through Options.CheckExpr, which the caller wires
// to the ClassAd parser.
//
// # What a rejected file yields
//
// Parse reports every problem it finds in one go, like a compiler, as an
// Errors value whose elements are *Error (file, line, command, stable code,
// message, remedy); errors.As(err, new(*Error)) finds the first. A rejected
// file yields no Cluster at all.
//
// # File system
//
// Parse reads the files the description names (transfer inputs, vmware_dir,
// queue ... from FILE, queue ... matching GLOB) to check them and to size
// RequestDisk; it never writes. Paths resolve against the initial working
// directory (the submit file's directory, or initialdir). Options.Paths
// decides how far a path may reach: see PathPolicy.
//
// # Decisions that differ from condor_submit
//
//   - Only universe = vm is accepted, and vm_type must be kvm, xen or vmware.
//   - RequestDisk defaults to ExecutableSize (vm_memory in KiB, the room to
//     save the guest's RAM) plus the size of every transferred input in KiB,
//     rounded up; HTCondor's default is the same sum (DiskUsage).
//   - A vm_disk file (and a xen_kernel or xen_initrd path) is transferred
//     when its base name is listed in transfer_input_files; the job then sees
//     the bare name. Otherwise it must be reachable on the execute machine
//     (shared storage) and the job sees its absolute path. This is
//     condor_submit's behaviour before 8.5.
//   - RequestCpus defaults to vm_vcpus, so a slot has the CPUs the guest is
//     given; vm_vcpus in turn defaults to a plain integer request_cpus.
//   - $RANDOM_CHOICE and $RANDOM_INTEGER are refused: a submit must expand
//     the same way every time it is parsed. An undefined $(macro) is an
//     error (write $(name:) for an empty default).
//   - TransferInput lists absolute paths, so the schedd needs no Iwd to
//     find the files.
//   - A name that is no submit command only defines a macro; if it is never
//     used as one and lies within a typo of a command (one edit for names
//     of up to four letters, two for longer ones), a warning asks "did you
//     mean ...?", and an error for the missing command points at it.
//   - Every job gets JobLeaseDuration 2400 (JOB_DEFAULT_LEASE_DURATION)
//     unless job_lease_duration says otherwise (0: none).
//
// ClusterId, ProcId, QDate, GlobalJobId and EnteredCurrentStatus are the
// schedd's to set; Parse emits none of them.
package submit
