package submit

// CodeInfo documents one error code: a stable name, what it means, and the
// usual remedy (an *Error may carry a more specific Fix).
type CodeInfo struct {
	Code    string
	Summary string
	Fix     string
}

// Codes returns the catalogue of every error code Parse reports, in a stable
// order, for documentation and tooling. The slice is a fresh copy.
func Codes() []CodeInfo {
	return append([]CodeInfo(nil), codeTable...)
}

// codeTable is read-only after package initialisation.
var codeTable = []CodeInfo{
	// The file as a whole.
	{"file-not-text", "the submit file contains a NUL byte, a control character or bytes that are not UTF-8", "save the submit description as plain UTF-8 text; check that the right file was given"},
	{"file-too-large", "the submit file (or a queue ... from file) is larger than the parser accepts", "split the description, or list the items in a smaller file"},
	{"line-syntax", "a line is neither `name = value`, a literal attribute nor a queue statement", "write the line as `command = value`, `+Attribute = expression` or a queue statement, or comment it out with #"},
	{"value-unterminated", "a multi-line value (`name @=TAG`) has no closing `@TAG` line", "end the value with a line holding only @TAG"},
	{"too-many-errors", "the report was cut short", "fix the problems shown and submit again"},

	// Macros.
	{"macro-undefined", "$(name) names a macro that is not defined", "define the macro (name = value) before the queue statement, or give a default: $(name:default)"},
	{"env-undefined", "$ENV(NAME) names an environment variable that is not set", "set the variable, or give a default: $ENV(NAME:default)"},
	{"macro-recursive", "a macro refers to itself, directly or through others", "break the cycle: a macro may not expand to a reference to itself"},
	{"macro-too-large", "expanding a value yields more text than the parser accepts", "simplify the macros; a value may expand to at most 1 MiB"},
	{"macro-function-unknown", "a $NAME(...) macro function is unknown or not supported", "use $(name), $ENV(), $F[pdnxqa](), $INT(), $REAL(), $CHOICE() or $SUBSTR(); $RANDOM_CHOICE and $RANDOM_INTEGER are not supported"},
	{"macro-function-invalid", "a macro function's arguments are wrong", "check the function's arguments, e.g. $INT(name,%03d) or $CHOICE(index,a,b,c)"},

	// Literal attributes and expressions.
	{"attr-name-invalid", "a literal attribute name (+Name, MY.Name) is not a ClassAd identifier", "use letters, digits and underscores, starting with a letter or underscore"},
	{"attr-protected", "a literal attribute would overwrite an attribute the schedd owns", "remove the line; ClusterId, ProcId, JobUniverse, Owner, JobStatus, GlobalJobId and QDate are set by vmpool"},
	{"attr-value-empty", "a literal attribute has no value", "give it a ClassAd expression, e.g. +Project = \"vision\", or remove the line"},
	{"expr-invalid", "a ClassAd expression does not parse", "correct the expression's syntax; strings are written in double quotes"},
	{"requirements-circular", "requirements refers to Requirements itself", "write the condition out; to reuse a macro write $(name)"},

	// The queue statement.
	{"queue-missing", "the file has no queue statement", "end the description with `queue` (or `queue N`, `queue x in (...)`, ...)"},
	{"queue-syntax", "a queue statement is malformed", "write queue [N] [var[,var...] in|from|matching [files|dirs] [slice]] items"},
	{"queue-count-invalid", "the count of a queue statement is not a non-negative integer", "write an integer, e.g. queue 10"},
	{"queue-too-many", "the file queues more jobs than allowed", "queue fewer jobs, or split the submission"},
	{"queue-slice-invalid", "a queue slice is not [start:end:step] with integers and a positive step", "write a python style slice, e.g. [1:10:2]"},
	{"queue-list-unterminated", "a parenthesised queue item list has no closing `)` line", "end the item list with a line that starts with )"},
	{"queue-from-unreadable", "the item file of `queue ... from FILE` cannot be read", "check the file name; it is relative to the submit file's directory"},
	{"queue-from-command", "`queue ... from COMMAND |` would run a program", "run the program yourself and queue from its output file"},
	{"queue-glob-invalid", "a `queue ... matching` pattern is malformed", "check the glob pattern's brackets"},
	{"queue-no-jobs", "the queue statements produce no job", "check the queue counts, item lists and glob patterns"},
	{"queue-conflict", "a queue statement was given both in the file and on the command line", "drop one of them"},

	// Universe and executable.
	{"universe-missing", "the description does not say universe = vm", "add `universe = vm`: vmpool runs vm universe jobs only"},
	{"universe-unsupported", "the universe is not vm", "set `universe = vm`: vmpool runs virtual machines as jobs, nothing else"},
	{"executable-missing", "executable is missing; for a vm job it names the job", "add `executable = NAME`, a label shown by condor_q"},
	{"io-not-allowed", "input, output or error was given; they do not apply to vm universe jobs", "remove input, output and error; a VM's results come back in its disk images"},

	// VM description.
	{"vm-type-missing", "vm_type is missing", "add `vm_type = kvm` (or xen, vmware)"},
	{"vm-type-unknown", "vm_type names a hypervisor vmpool does not know", "use kvm, xen or vmware"},
	{"vm-memory-missing", "vm_memory is missing", "set vm_memory to the guest's memory in MiB, e.g. vm_memory = 512"},
	{"vm-memory-invalid", "vm_memory is not a positive number of MiB", "set vm_memory to the guest's memory in MiB, e.g. vm_memory = 512"},
	{"vm-memory-too-large", "vm_memory is beyond what any machine offers (16 TiB)", "set vm_memory to the guest's memory in MiB, e.g. vm_memory = 4096"},
	{"vm-vcpus-invalid", "vm_vcpus is not an integer from 1 to 4096", "set vm_vcpus to the number of virtual CPUs, e.g. vm_vcpus = 2"},
	{"vm-macaddr-invalid", "vm_macaddr is not a unicast MAC address", "write six hex pairs separated by colons whose first octet is even, e.g. vm_macaddr = 52:54:00:12:34:56"},
	{"vm-macaddr-vmware-range", "a vm_type = vmware job's vm_macaddr is outside 00:50:56:00:00:00-00:50:56:3f:ff:ff, the static addresses VMware accepts", "choose a vm_macaddr in VMware's static range, e.g. vm_macaddr = 00:50:56:00:12:34, or leave it out for one VMware generates"},
	{"vm-networking-type-invalid", "vm_networking_type is not nat, bridge or user", "use nat, bridge or user, or leave it out to take the machine's default"},
	{"vm-checkpoint-networking", "both vm_checkpoint and vm_networking are requested without when_to_transfer_output = ON_EXIT_OR_EVICT", "add `when_to_transfer_output = ON_EXIT_OR_EVICT` (open connections are lost at each checkpoint), or drop one of the two"},
	{"vm-checkpoint-interval-invalid", "vm_checkpoint_interval is not a positive number of seconds", "set vm_checkpoint_interval to seconds between checkpoints, e.g. 3600"},
	{"vm-checkpoint-interval-without-checkpoint", "vm_checkpoint_interval is given without vm_checkpoint = true", "add `vm_checkpoint = true`, or remove vm_checkpoint_interval"},
	{"vm-disk-missing", "vm_disk is missing; kvm and xen jobs need a disk image", "add vm_disk = FILE:DEVICE:PERMISSION[:FORMAT], e.g. vm_disk = disk.img:vda:w:qcow2"},
	{"vm-disk-format", "a vm_disk entry does not have 3 or 4 colon-separated fields", "write each disk as FILE:DEVICE:PERMISSION[:FORMAT], separated by commas, e.g. vm_disk = disk.img:vda:w,data.iso:hdc:r"},
	{"vm-disk-field-empty", "a vm_disk entry has an empty file, device or format", "fill in each field: FILE:DEVICE:PERMISSION[:FORMAT]"},
	{"vm-disk-permission", "a vm_disk permission is not w, rw or r", "use w or rw for a writable disk, r for a read-only one"},
	{"vm-disk-backing-missing", "a transferred qcow2 vm_disk image has a backing file that the execute machine would not have", "list the backing file in transfer_input_files (named by its bare name in the image: qemu-img rebase -u -b NAME), or make the image standalone with qemu-img convert -O qcow2"},
	{"vm-disk-device-invalid", "a kvm vm_disk device is not one the guest can be given (hda-hdd, sda-sdf, vdX)", "use hda to hdd (IDE), sda to sdf (SATA) or vda, vdb, ... (virtio), in lower case"},
	{"vm-disk-device-duplicate", "two vm_disk entries use the same guest device", "give every disk its own device, e.g. vda, vdb"},

	// Files.
	{"input-missing", "an input file to transfer does not exist", "correct the path (relative paths are relative to the submit file's directory or initialdir)"},
	{"input-is-directory", "an input to transfer is a directory", "name the disk image files themselves"},
	{"input-unreadable", "an input file to transfer cannot be read", "check the file's permissions"},
	{"input-escapes-iwd", "a relative input path leaves the submit directory through .. or a symbolic link", "write the file's absolute path if you mean a file outside the submit directory, or move it inside (SUBMIT_PATHS = unrestricted, from $VMPOOL_SUBMIT_PATHS, takes such paths as HTCondor does)"},
	{"input-absolute-forbidden", "an absolute input path lies outside the submit directory, which this submitter does not allow", "copy the file into the submit directory and name it relatively"},
	{"input-url-unsupported", "an input to transfer is a URL; vmpool transfers local files only", "download the file first and name the local copy"},
	{"input-name-conflict", "two inputs to transfer have the same file name; they would overwrite each other on the execute machine", "rename one of the files"},
	{"initialdir-invalid", "initialdir is not an existing directory", "create the directory or correct initialdir"},
	{"log-invalid", "the user log path cannot be used", "point log at a file you can write, in an existing directory"},

	// Xen.
	{"xen-kernel-missing", "xen_kernel is missing", "set xen_kernel to included (kernel inside the disk image), vmx (hardware virtualisation) or a kernel file"},
	{"xen-root-missing", "xen_kernel names a kernel file but xen_root is missing", "add xen_root, the guest's root device, e.g. xen_root = /dev/xvda1"},
	{"xen-initrd-without-kernel", "xen_initrd is given but xen_kernel is not a kernel file", "set xen_kernel to a kernel file, or remove xen_initrd"},
	{"xen-kernel-included-multiple-disks", "xen_kernel = included needs exactly one vm_disk to find the kernel in", "list a single disk in vm_disk, or give xen_kernel as a kernel file"},

	// VMware.
	{"vmware-transfer-missing", "vmware_should_transfer_files is missing", "add vmware_should_transfer_files = true (copy vmware_dir to the execute machine) or false (shared file system)"},
	{"vmware-snapshot-conflict", "vmware_should_transfer_files and vmware_snapshot_disk are both false", "set vmware_snapshot_disk = true, or transfer the files; jobs sharing a disk in place would corrupt it"},
	{"vmware-dir-invalid", "vmware_dir is not an existing directory", "point vmware_dir at the directory holding the .vmx and .vmdk files"},
	{"vmware-dir-symlink", "vmware_dir contains a symbolic link while snapshot disks are used without file transfer", "write vmware_dir as its resolved path"},
	{"vmware-vmx-missing", "no .vmx file was found in vmware_dir or the input files", "put the virtual machine's .vmx file in vmware_dir"},
	{"vmware-vmx-multiple", "more than one .vmx file was found", "keep exactly one .vmx file in vmware_dir"},

	// Values.
	{"bool-invalid", "a command that takes a boolean has another value", "write true or false"},
	{"int-invalid", "a command that takes an integer has another value, or one out of range", "write a whole number in range"},
	{"request-invalid", "request_memory, request_cpus or request_disk is not a positive amount or an expression", "write a number, optionally with a unit (512, 2G), or a ClassAd expression"},
	{"notification-invalid", "notification is not Always, Complete, Error, Start or Never", "use notification = Never (default), Complete, Error, Start or Always"},
	{"should-transfer-invalid", "should_transfer_files is not YES, NO or IF_NEEDED", "remove it: vm jobs always transfer files"},
	{"when-to-transfer-invalid", "when_to_transfer_output is not ON_EXIT or ON_EXIT_OR_EVICT", "use ON_EXIT or ON_EXIT_OR_EVICT; a VM's state is kept across evictions only with vm_checkpoint = true"},
}

func defaultFix(code string) string {
	for _, c := range codeTable {
		if c.Code == code {
			return c.Fix
		}
	}
	return ""
}
