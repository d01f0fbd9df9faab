package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vmpool/vmpool/events"
	"github.com/vmpool/vmpool/startd/hypervisor/vmware/vmformat"
	"github.com/vmpool/vmpool/vmimage"
)

// The tests here run xen and vmware jobs end to end on a personal pool
// whose xen and vmware startds drive vmpool's xl and vmrun emulators (links
// to the test binary, which TestMain turns into the emulator), which boot
// the guests under QEMU.

const xenSub = `universe = vm
executable = xen_job
log = xen.log
vm_type = xen
vm_memory = 16
vm_disk = xen.img:xvda:w:raw
xen_kernel = included
should_transfer_files = YES
when_to_transfer_output = ON_EXIT
xen_transfer_files = xen.img
queue
`

const vmwareSub = `universe = vm
executable = vmware_job
log = vmware.log
vm_type = vmware
vm_memory = 16
vmware_dir = vm
vmware_should_transfer_files = true
queue
`

// writeVMwareDir makes a vmware_dir: the counter guest as the raw extent
// of a monolithicFlat .vmdk, and a .vmx with it as scsi0:0.
func writeVMwareDir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := vmimage.Counter().WriteRaw(filepath.Join(dir, "job-flat.vmdk"), vmimage.DefaultSize); err != nil {
		t.Fatal(err)
	}
	if err := vmformat.WriteFlatDescriptor(filepath.Join(dir, "job.vmdk"), "job-flat.vmdk", vmimage.DefaultSize, "lsilogic"); err != nil {
		t.Fatal(err)
	}
	vmx := vmformat.NewVMX("vmpool counter guest", 64, []vmformat.DiskNode{{Node: "scsi0:0", File: "job.vmdk"}})
	if err := os.WriteFile(filepath.Join(dir, "job.vmx"), vmx.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestXenAndVMwareJobsOnEmulatedStartds: a pool with a kvm, a xen and a
// vmware startd; a xen job (xen_kernel = included, one vm_disk) and a
// vmware job (vmware_dir with a .vmx and a .vmdk) each run on their
// machine, complete when the guest powers off, and their modified disks
// come back to the submit directory.
func TestXenAndVMwareJobsOnEmulatedStartds(t *testing.T) {
	tp := newTestPool(t, 1, "EMULATE=xen,vmware", "VM_STATUS_INTERVAL=1")

	ads := jsonAds(t, tp.mustRun("status", "-json"))
	types := map[string]any{}
	for _, ad := range ads {
		if ad["HasVM"] != true {
			t.Fatalf("machine %v advertises no VM: %v", ad["Name"], ad["VMOfflineReason"])
		}
		types[ad["VM_Type"].(string)] = ad["VM_GAHP_VERSION"]
	}
	if len(types) != 3 || types["kvm"] == nil {
		t.Fatalf("machines of types %v, want kvm, xen and vmware", types)
	}
	if v, _ := types["xen"].(string); !strings.Contains(v, "emulated") {
		t.Errorf("xen machine's version %q does not say it is emulated", v)
	}
	if v, _ := types["vmware"].(string); !strings.Contains(v, "emulated") {
		t.Errorf("vmware machine's version %q does not say it is emulated", v)
	}

	xenImg := filepath.Join(tp.dir, "xen.img")
	if err := vmimage.WriteHello(xenImg); err != nil {
		t.Fatal(err)
	}
	writeVMwareDir(t, filepath.Join(tp.dir, "vm"))
	began := time.Now()
	if out := tp.mustRun("submit", tp.write("xen.sub", xenSub)); !strings.Contains(out, "submitted to cluster 1.") {
		t.Fatalf("submit printed %q", out)
	}
	if out := tp.mustRun("submit", tp.write("vmware.sub", vmwareSub)); !strings.Contains(out, "submitted to cluster 2.") {
		t.Fatalf("submit printed %q", out)
	}
	for c, log := range map[int]string{1: "xen.log", 2: "vmware.log"} {
		if out := tp.mustRun("wait", "-wait", "120", filepath.Join(tp.dir, log)); out != "All jobs done.\n" {
			t.Fatalf("wait %s printed %q", log, out)
		}
		tp.jobEvent(c, 0, events.JobCompleted, 60*time.Second)
	}
	t.Logf("both jobs completed %v after the first submit (VM_STATUS_INTERVAL = 1)", time.Since(began).Round(time.Millisecond))

	// The guests' writes came back: the xen disk, and the vmware disk's
	// extent (into the submit directory, where HTCondor returns files).
	if got := readCounter(t, xenImg); got != 1 {
		t.Errorf("returned xen disk counter = %d, want 1", got)
	}
	if got := readCounter(t, filepath.Join(tp.dir, "job-flat.vmdk")); got != 1 {
		t.Errorf("returned vmware disk counter = %d, want 1", got)
	}
	if got := readCounter(t, filepath.Join(tp.dir, "vm", "job-flat.vmdk")); got != 0 {
		t.Errorf("the vmware_dir original changed: counter %d", got)
	}
	// The .vmx came back edited (memsize from vm_memory), and the
	// snapshot the driver took was consolidated: no delta came back.
	b, err := os.ReadFile(filepath.Join(tp.dir, "job.vmx"))
	if err != nil {
		t.Fatalf("the edited .vmx did not come back: %v", err)
	}
	vmx, err := vmformat.ParseVMX(b)
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := vmx.Get("memsize"); m != "16" {
		t.Errorf("returned .vmx has memsize %q, want vm_memory's 16", m)
	}
	if f, _ := vmx.Get("scsi0:0.fileName"); f != "job.vmdk" {
		t.Errorf("returned .vmx points scsi0:0 at %q, not the job's disk (snapshot not consolidated)", f)
	}
	if left, _ := filepath.Glob(filepath.Join(tp.dir, "*-0000*")); len(left) > 0 {
		t.Errorf("snapshot files came back: %v", left)
	}

	hist := jsonAds(t, tp.mustRun("history", "-json"))
	ran := map[string]string{}
	for _, h := range hist {
		if h["JobStatus"] != 4.0 {
			t.Errorf("job %v: JobStatus %v, want 4", h["ClusterId"], h["JobStatus"])
		}
		host, _ := h["LastRemoteHost"].(string)
		if host == "" {
			host, _ = h["RemoteHost"].(string)
		}
		ran[h["JobVMType"].(string)] = host
	}
	if !strings.Contains(ran["xen"], "xen1") || !strings.Contains(ran["vmware"], "vmware1") {
		t.Errorf("jobs ran on %v, want the xen job on xen1 and the vmware job on vmware1", ran)
	}
	checkUserLog(t, filepath.Join(tp.dir, "xen.log"), []string{"000", "001", "005"})
	checkUserLog(t, filepath.Join(tp.dir, "vmware.log"), []string{"000", "001", "005"})

	// Nothing is left on the emulated hosts.
	if out := runTool(t, filepath.Join(tp.home, "emulate", "xen", "xl"), "list"); strings.Count(out, "\n") != 2 {
		t.Errorf("xl list after the jobs:\n%s", out)
	}
	if out := runTool(t, filepath.Join(tp.home, "emulate", "vmware", "vmrun"), "list"); out != "Total running VMs: 0\n" {
		t.Errorf("vmrun list after the jobs:\n%s", out)
	}
}

// TestXenJobWithBadDiskIsHeld: a disk device Xen has no name for is the
// job's fault: held with code 6 and XEN_INVALID_DISK_PARAM's subcode.
func TestXenJobWithBadDiskIsHeld(t *testing.T) {
	tp := newTestPool(t, 0, "EMULATE=xen", "VM_STATUS_INTERVAL=1")
	if err := vmimage.WriteHello(filepath.Join(tp.dir, "xen.img")); err != nil {
		t.Fatal(err)
	}
	tp.mustRun("submit", tp.write("bad.sub", strings.Replace(xenSub, "xen.img:xvda:w:raw", "xen.img:vda:w:raw", 1)))
	tp.jobEvent(1, 0, events.JobHeld, 60*time.Second)
	q := jsonAds(t, tp.mustRun("q", "-json"))
	if len(q) != 1 || q[0]["HoldReasonCode"] != 6.0 || q[0]["HoldReasonSubCode"] != 7.0 ||
		!strings.Contains(q[0]["HoldReason"].(string), "XEN_INVALID_DISK_PARAM") {
		t.Fatalf("held job: %v", q)
	}
}

// TestXenAndVMwareSubmitChecks: each check condor_submit makes of xen and
// vmware jobs refuses its bad case through the CLI, naming file, line,
// code and fix, and queues nothing.
func TestXenAndVMwareSubmitChecks(t *testing.T) {
	tp := newTestPool(t, 0)
	if err := vmimage.WriteHello(filepath.Join(tp.dir, "xen.img")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tp.dir, "vmlinuz"), []byte("kernel"), 0o644); err != nil {
		t.Fatal(err)
	}
	writeVMwareDir(t, filepath.Join(tp.dir, "vm"))
	if err := os.MkdirAll(filepath.Join(tp.dir, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeVMwareDir(t, filepath.Join(tp.dir, "two"))
	if err := os.WriteFile(filepath.Join(tp.dir, "two", "other.vmx"), []byte(".encoding = \"UTF-8\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ name, sub, code string }{
		{"xen without xen_kernel", strings.Replace(xenSub, "xen_kernel = included\n", "", 1), "xen-kernel-missing"},
		{"xen kernel file without xen_root", strings.Replace(xenSub, "xen_kernel = included", "xen_kernel = vmlinuz", 1), "xen-root-missing"},
		{"xen initrd without a kernel file", strings.Replace(xenSub, "queue", "xen_initrd = initrd.img\nqueue", 1), "xen-initrd-without-kernel"},
		{"xen included with two disks", strings.Replace(xenSub, "xen.img:xvda:w:raw", "xen.img:xvda:w:raw,xen.img:xvdb:r:raw", 1), "xen-kernel-included-multiple-disks"},
		{"xen without vm_disk", strings.Replace(xenSub, "vm_disk = xen.img:xvda:w:raw\n", "", 1), "vm-disk-missing"},
		{"vmware without vmware_should_transfer_files", strings.Replace(vmwareSub, "vmware_should_transfer_files = true\n", "", 1), "vmware-transfer-missing"},
		{"vmware neither transfer nor snapshot", strings.Replace(vmwareSub, "vmware_should_transfer_files = true", "vmware_should_transfer_files = false\nvmware_snapshot_disk = false", 1), "vmware-snapshot-conflict"},
		{"vmware_dir not a directory", strings.Replace(vmwareSub, "vmware_dir = vm", "vmware_dir = nothere", 1), "vmware-dir-invalid"},
		{"vmware_dir without a vmx", strings.Replace(vmwareSub, "vmware_dir = vm", "vmware_dir = empty", 1), "vmware-vmx-missing"},
		{"vmware_dir with two vmx", strings.Replace(vmwareSub, "vmware_dir = vm", "vmware_dir = two", 1), "vmware-vmx-multiple"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := tp.vmpool("submit", tp.write("bad.sub", tc.sub))
			if code != 1 {
				t.Fatalf("exit %d, want 1\nstdout %s\nstderr %s", code, out, errOut)
			}
			if !strings.Contains(errOut, "["+tc.code+"]") {
				t.Fatalf("stderr lacks code [%s]:\n%s", tc.code, errOut)
			}
			if !regexp.MustCompile(`bad\.sub:\d+: `).MatchString(errOut) || !strings.Contains(errOut, "fix:") || !strings.Contains(errOut, "nothing was queued") {
				t.Fatalf("message does not name file, line and fix, or queued something:\n%s", errOut)
			}
		})
	}
	if q := jsonAds(t, tp.mustRun("q", "-json", "-allusers")); len(q) != 0 {
		t.Fatalf("a rejected submit queued jobs: %v", q)
	}
	// The good ones are accepted.
	for _, sub := range []string{xenSub, vmwareSub} {
		tp.mustRun("submit", tp.write("good.sub", sub))
	}
}

// TestMissingToolIsNoAdvertisement: a startd whose tool is missing or
// broken says why and offers no VM; it does not fail.
func TestMissingToolIsNoAdvertisement(t *testing.T) {
	broken := filepath.Join(t.TempDir(), "xl")
	if err := os.WriteFile(broken, []byte("#!/bin/sh\necho 'cannot init xl context' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ vmType, knob, reason string }{
		{"vmware", "VMRUN=" + filepath.Join(t.TempDir(), "vmrun"), "not found"},
		{"xen", "XL=" + broken, "cannot init xl context"},
	} {
		t.Run(tc.vmType, func(t *testing.T) {
			tp := newTestPool(t, 1, "VM_TYPE="+tc.vmType, tc.knob, "XEN_BOOTLOADER=pygrub")
			ads := jsonAds(t, tp.mustRun("status", "-json"))
			if len(ads) != 1 || ads[0]["HasVM"] != false || ads[0]["VM_Type"] != nil || ads[0]["VM_Memory"] != nil {
				t.Fatalf("machine ads %v, want one without a VM", ads)
			}
			if r, _ := ads[0]["VMOfflineReason"].(string); !strings.Contains(r, tc.reason) {
				t.Fatalf("VMOfflineReason %q lacks %q", r, tc.reason)
			}
			if !strings.Contains(tp.logs.String(), "hypervisor unavailable") {
				t.Fatal("no log line says the hypervisor is unavailable")
			}
		})
	}
}
