// Package toolvm is what the xen and vmware drivers share: hypervisors
// driven through a command-line tool (`xl`, `vmrun`) that starts a VM and
// returns, and that the driver can only ask about later. It runs such a
// tool (Run, with the tool's own words in errors), watches a VM by asking
// the tool every status interval (Watcher, as HTCondor's VM_STATUS_INTERVAL
// check does), and copies disk images for checkpoints (CopyFile).
//
// It imports only the hypervisor interface; the drivers in xen/ and
// vmware/ import it.
package toolvm
