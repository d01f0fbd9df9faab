package submit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestKVMAttributes(t *testing.T) {
	dir := fixtures(t)
	src := edit(kvmBase,
		"log = hello.log",
		"vm_vcpus = 2",
		"vm_macaddr = 52-54-00-AB-cd-01",
		"vm_vnc = yes",
		"vm_no_output_vm = true",
		"vm_checkpoint = true",
		"vm_checkpoint_interval = 3600",
		"notification = Complete",
		"notify_user = alice@example.com",
		"priority = 5",
		"rank = Memory",
		"periodic_hold = NumJobStarts > 3",
		"periodic_hold_reason = \"too many starts\"",
		"periodic_hold_subcode = 7",
		"periodic_release = true",
		"periodic_remove = JobStatus == 5",
		"batch_name = nightly",
		"+Project = \"vision\"",
		`MY.Quoted = "a \"b\" c"`,
	)
	c := mustParse(t, dir, src, Options{Owner: "alice"})
	want := map[string]string{
		"Owner":                   `"alice"`,
		"JobUniverse":             "13",
		"Cmd":                     `"hello_vm_job"`,
		"Iwd":                     quote(dir),
		"JobVMType":               `"kvm"`,
		"JobVMMemory":             "512",
		"ExecutableSize":          "524288",
		"JobVM_VCPUS":             "2",
		"JobVMCheckpoint":         "true",
		"JobVMCheckpointInterval": "3600",
		"JobVMNetworking":         "false",
		"JobVMVNCConsole":         "true",
		"JobVM_MACADDR":           `"52:54:00:ab:cd:01"`,
		"VMPARAM_vm_Disk":         `"disk.img:vda:w:qcow2"`,
		"VMPARAM_No_Output_VM":    "true",
		"ShouldTransferFiles":     `"YES"`,
		"WhenToTransferOutput":    `"ON_EXIT_OR_EVICT"`,
		"TransferExecutable":      "false",
		"TransferInput":           quote(filepath.Join(dir, "disk.img")),
		"RequestCpus":             "2",
		"RequestMemory":           "MY.JobVMMemory",
		"RequestDisk":             "524291", // 512 MiB of RAM + 3 KiB of disk
		"UserLog":                 quote(filepath.Join(dir, "hello.log")),
		"JobNotification":         "2",
		"NotifyUser":              `"alice@example.com"`,
		"JobStatus":               "1",
		"JobPrio":                 "5",
		"JobLeaseDuration":        "2400",
		"Rank":                    "Memory",
		"LeaveJobInQueue":         "false",
		"PeriodicHold":            "NumJobStarts > 3",
		"PeriodicHoldReason":      `"too many starts"`,
		"PeriodicHoldSubCode":     "7",
		"PeriodicRelease":         "true",
		"PeriodicRemove":          "JobStatus == 5",
		"JobBatchName":            `"nightly"`,
		"Project":                 `"vision"`,
		"Quoted":                  `"a \"b\" c"`,
	}
	for name, v := range want {
		if got := attr(c, name); got != v {
			t.Errorf("%s = %s, want %s", name, got, v)
		}
	}
	for _, absent := range []string{"JobVMNetworkingType", "HoldReasonCode", "ClusterId", "ProcId"} {
		if got := attr(c, absent); got != "" {
			t.Errorf("%s = %s, want absent", absent, got)
		}
	}
	if c.UserLog != filepath.Join(dir, "hello.log") || c.Iwd != dir || c.File != filepath.Join(dir, "test.sub") {
		t.Errorf("cluster fields: %+v", c)
	}
	if len(c.Inputs) != 1 || c.Inputs[0] != filepath.Join(dir, "disk.img") {
		t.Errorf("inputs %v", c.Inputs)
	}
	// Names are unique and the order is stable.
	seen := map[string]bool{}
	for _, a := range c.Attrs {
		if seen[strings.ToLower(a.Name)] {
			t.Errorf("attribute %s twice", a.Name)
		}
		seen[strings.ToLower(a.Name)] = true
	}
	c2 := mustParse(t, dir, src, Options{Owner: "alice"})
	if fmt.Sprint(c.Attrs) != fmt.Sprint(c2.Attrs) {
		t.Error("attribute order is not stable")
	}
	if c.Attrs[0].Name != "Owner" || c.Attrs[1].Name != "JobUniverse" || c.Attrs[len(c.Attrs)-1].Name != "Quoted" {
		t.Errorf("order: %v", c.Attrs)
	}
}

// TestOtherVMTypesCommandsWarn: a command only another vm_type uses
// (xen_kernel or vmware_* on a kvm job, vm_disk on a vmware job) is
// ignored with a warning at its line, not silently: a vmware job's
// vm_disk used to vanish without a word, its disk never attached.
func TestOtherVMTypesCommandsWarn(t *testing.T) {
	dir := fixtures(t)
	kvm := strings.Join(mustParse(t, dir, edit(kvmBase, "xen_kernel = included", "vmware_should_transfer_files = true"), Options{}).Warnings, "\n")
	for _, want := range []string{"test.sub:7: xen_kernel is used only by vm_type = xen jobs; ignored",
		"test.sub:8: vmware_should_transfer_files is used only by vm_type = vmware jobs; ignored"} {
		if !strings.Contains(kvm, want) {
			t.Errorf("kvm job: warnings lack %q:\n%s", want, kvm)
		}
	}
	vmw := strings.Join(mustParse(t, dir, edit(vmwareBase, "vm_disk = disk.img:hda:w"), Options{}).Warnings, "\n")
	if want := "test.sub:7: vm_disk is not used by vm_type = vmware jobs"; !strings.Contains(vmw, want) {
		t.Errorf("vmware job: warnings lack %q:\n%s", want, vmw)
	}
	xen := strings.Join(mustParse(t, dir, edit(xenBase), Options{}).Warnings, "\n")
	if strings.Contains(xen, "is used only by") || strings.Contains(xen, "is not used by") {
		t.Errorf("xen job warned of its own commands:\n%s", xen)
	}
}

func TestHoldAndWarnings(t *testing.T) {
	dir := fixtures(t)
	c := mustParse(t, dir, edit(kvmBase, "hold = true", "request_memory = 1G", "vm_memroy = 7", "arguments = -v", "xen_transfer_files = data.img", "should_transfer_files = NO"), Options{})
	for name, want := range map[string]string{"JobStatus": "5", "HoldReasonCode": "15", "HoldReasonSubCode": "0", "RequestMemory": "1024",
		"HoldReason": `"submitted on hold at user's request"`} {
		if got := attr(c, name); got != want {
			t.Errorf("%s = %s, want %s", name, got, want)
		}
	}
	all := strings.Join(c.Warnings, "\n")
	for _, want := range []string{"test.sub:9: vm_memroy is not a submit command", "did you mean vm_memory?", "test.sub:10: arguments has no effect",
		"test.sub:11: xen_transfer_files is deprecated", "should_transfer_files = NO is ignored"} {
		if !strings.Contains(all, want) {
			t.Errorf("warnings lack %q:\n%s", want, all)
		}
	}
	if strings.Contains(all, "request_memory was not specified") {
		t.Errorf("request_memory was given:\n%s", all)
	}
	if !strings.Contains(strings.Join(mustParse(t, dir, edit(kvmBase), Options{}).Warnings, "\n"), "request_memory was not specified; using RequestMemory = MY.JobVMMemory") {
		t.Error("no warning for the defaulted request_memory")
	}
	// The schedd does not act on leave_in_queue or a false on_exit_remove:
	// an HTCondor user's file that has them is told so.
	w := strings.Join(mustParse(t, dir, edit(kvmBase, "leave_in_queue = true", "on_exit_remove = false"), Options{}).Warnings, "\n")
	for _, want := range []string{"test.sub:7: leave_in_queue has no effect in vmpool", "test.sub:8: on_exit_remove = false has no effect in vmpool"} {
		if !strings.Contains(w, want) {
			t.Errorf("warnings lack %q:\n%s", want, w)
		}
	}
	if w := strings.Join(mustParse(t, dir, edit(kvmBase, "leave_in_queue = false", "on_exit_remove = (ExitBySignal == False) && (ExitCode == 0)"), Options{}).Warnings, "\n"); strings.Contains(w, "no effect") {
		t.Errorf("warned of settings vmpool honours:\n%s", w)
	}
	// A name used as a macro is not a typo.
	c = mustParse(t, dir, edit(kvmBase, "vm_memroy = 512", "vm_memory = $(vm_memroy)"), Options{})
	if strings.Contains(strings.Join(c.Warnings, "\n"), "did you mean") {
		t.Errorf("warned about a macro in use: %v", c.Warnings)
	}
	// The hint also reaches the missing-command error.
	_, err := parse(t, dir, edit(kvmBase, "!vm_memory", "vm_memroy = 512"), Options{})
	if e := hasCode(err, "vm-memory-missing"); e == nil || !strings.Contains(e.Msg, `line 7 sets "vm_memroy"`) {
		t.Errorf("no misspelling hint: %v", err)
	}
	c = mustParse(t, dir, edit(kvmBase, "after = 1")+"log = late.log\n", Options{})
	if !strings.Contains(strings.Join(c.Warnings, "\n"), "test.sub:9: commands after the last queue statement have no effect") {
		t.Errorf("no warning for commands after queue: %v", c.Warnings)
	}
}

func TestXenAttributes(t *testing.T) {
	dir := fixtures(t)
	c := mustParse(t, dir, edit(xenBase, `xen_kernel_params = "console=hvc0"`), Options{})
	for name, want := range map[string]string{
		"JobVMType":                 `"xen"`,
		"VMPARAM_Xen_Kernel":        `"vmlinuz"`,
		"VMPARAM_Xen_Root":          `"/dev/xvda"`,
		"VMPARAM_Xen_Kernel_Params": `"console=hvc0"`,
		"VMPARAM_vm_Disk":           `"disk.img:xvda:w"`,
	} {
		if got := attr(c, name); got != want {
			t.Errorf("%s = %s, want %s", name, got, want)
		}
	}
	c = mustParse(t, dir, edit(xenBase, "xen_initrd = initrd.img"), Options{})
	if got := attr(c, "VMPARAM_Xen_Initrd"); got != `"initrd.img"` {
		t.Errorf("initrd %s", got)
	}
	if len(c.Inputs) != 3 {
		t.Errorf("inputs %v", c.Inputs)
	}
	// A kernel not transferred is named by its absolute path.
	c = mustParse(t, dir, edit(xenBase, "transfer_input_files = disk.img", "xen_kernel = /boot/vmlinuz-guest"), Options{})
	if got := attr(c, "VMPARAM_Xen_Kernel"); got != `"/boot/vmlinuz-guest"` {
		t.Errorf("kernel %s", got)
	}
	c = mustParse(t, dir, edit(xenBase, "xen_kernel = vmx", "!xen_root"), Options{})
	if attr(c, "JobVMHardwareVT") != "true" || attr(c, "VMPARAM_Xen_Kernel") != `"vmx"` {
		t.Errorf("vmx: %v", c.Attrs)
	}
}

func TestVMwareAttributes(t *testing.T) {
	dir := fixtures(t)
	c := mustParse(t, dir, edit(vmwareBase, "log = simple.vm.log.txt"), Options{})
	for name, want := range map[string]string{
		"JobVMType":                   `"vmware"`,
		"VMPARAM_VMware_Dir":          quote(filepath.Join(dir, "vmware")),
		"VMPARAM_VMware_Transfer":     "true",
		"VMPARAM_VMware_SnapshotDisk": "true",
		"VMPARAM_VMware_VMX_File":     `"guest.vmx"`,
		"VMPARAM_VMware_VMDK_Files":   `"disk-s001.vmdk,disk.vmdk"`,
	} {
		if got := attr(c, name); got != want {
			t.Errorf("%s = %s, want %s", name, got, want)
		}
	}
	if len(c.Inputs) != 4 {
		t.Errorf("every file of vmware_dir is transferred: %v", c.Inputs)
	}
	c = mustParse(t, dir, edit(vmwareBase, "vmware_should_transfer_files = false"), Options{SubmitHost: "submit.example.com"})
	if len(c.Inputs) != 1 || filepath.Base(c.Inputs[0]) != "guest.vmx" {
		t.Errorf("only the .vmx is transferred from a shared vmware_dir: %v", c.Inputs)
	}
	if got := attr(c, "FileSystemDomain"); got != `"submit.example.com"` {
		t.Errorf("FileSystemDomain %s", got)
	}
	// The guest writes into a snapshot over the shared disks, which is
	// dropped: submit says that nothing comes back, unless the job asked
	// for nothing (vm_no_output_vm).
	if w := strings.Join(c.Warnings, "\n"); !strings.Contains(w, "test.sub:6: nothing the guest writes comes back") {
		t.Errorf("no warning that a shared vmware_dir returns nothing: %q", w)
	}
	c = mustParse(t, dir, edit(vmwareBase, "vmware_should_transfer_files = false", "vm_no_output_vm = true"), Options{})
	if w := strings.Join(c.Warnings, "\n"); strings.Contains(w, "comes back") {
		t.Errorf("vm_no_output_vm job warned: %q", w)
	}
	c = mustParse(t, dir, edit(vmwareBase, "vmware_snapshot_disk = false"), Options{})
	if got := attr(c, "VMPARAM_VMware_SnapshotDisk"); got != "false" {
		t.Errorf("snapshot %s", got)
	}
	// VMware takes a static MAC only from 00:50:56:00:00:00-3F:FF:FF; one
	// there is the job's (the range's other ends are checkCases).
	c = mustParse(t, dir, edit(vmwareBase, "vm_networking = true", "vm_macaddr = 00:50:56:3F:FF:FF"), Options{})
	if got := attr(c, "JobVM_MACADDR"); got != `"00:50:56:3f:ff:ff"` {
		t.Errorf("JobVM_MACADDR %s", got)
	}
}

func TestVMDiskTransfer(t *testing.T) {
	dir := fixtures(t)
	c := mustParse(t, dir, edit(kvmBase,
		"vm_disk = disk.img:vda:w:qcow2, images/a.img:vdb:r, /srv/shared/base.img:vdc:r:raw, data.iso:hdc:r",
		"transfer_input_files = disk.img, images/a.img, data.iso"), Options{})
	want := `"disk.img:vda:w:qcow2,a.img:vdb:r,/srv/shared/base.img:vdc:r:raw,data.iso:hdc:r"`
	if got := attr(c, "VMPARAM_vm_Disk"); got != want {
		t.Errorf("vm_disk %s, want %s", got, want)
	}
	c = mustParse(t, dir, edit(kvmBase, "vm_disk = data.img:vda:w", "!transfer_input_files"), Options{})
	if got := attr(c, "VMPARAM_vm_Disk"); got != quote(filepath.Join(dir, "data.img")+":vda:w") {
		t.Errorf("an untransferred disk keeps its absolute path: %s", got)
	}
	if !strings.Contains(strings.Join(c.Warnings, "\n"), "shared storage") {
		t.Errorf("no warning: %v", c.Warnings)
	}
}

func TestPathPolicy(t *testing.T) {
	dir := fixtures(t)
	outside := filepath.Join(filepath.Dir(dir), "outside", "secret.img")
	inside := filepath.Join(dir, "data.img")
	cases := []struct {
		files  string
		policy PathPolicy
		code   string // "" accepted
	}{
		{"disk.img, " + outside, PathsDefault, ""},
		{"disk.img, ../outside/secret.img", PathsDefault, "input-escapes-iwd"},
		{"disk.img, escape.img", PathsDefault, "input-escapes-iwd"},
		{"disk.img, inside.img", PathsDefault, ""},
		{"disk.img, sub/../data.img", PathsDefault, ""},
		{"disk.img, " + outside, PathsConfined, "input-absolute-forbidden"},
		{"disk.img, " + inside, PathsConfined, ""},
		{"disk.img, ../outside/secret.img", PathsUnrestricted, ""},
		{"disk.img, escape.img", PathsUnrestricted, ""},
	}
	for _, tc := range cases {
		_, err := parse(t, dir, edit(kvmBase, "transfer_input_files = "+tc.files), Options{Paths: tc.policy})
		switch {
		case tc.code == "" && err != nil:
			t.Errorf("%s (policy %d): %v", tc.files, tc.policy, err)
		case tc.code != "" && hasCode(err, tc.code) == nil:
			t.Errorf("%s (policy %d): want %s, got %v", tc.files, tc.policy, tc.code, err)
		}
	}
	// A disk used in place (not transferred) is held to the same policy.
	for _, tc := range []struct {
		disk   string
		policy PathPolicy
		code   string
	}{
		{"../outside/secret.img:vda:w", PathsDefault, "input-escapes-iwd"},
		{"escape.img:vda:w", PathsDefault, "input-escapes-iwd"},
		{outside + ":vda:w", PathsDefault, ""},
		{outside + ":vda:w", PathsConfined, "input-absolute-forbidden"},
		{"data.img:vda:w", PathsConfined, ""},
		{"../outside/secret.img:vda:w", PathsUnrestricted, ""},
	} {
		_, err := parse(t, dir, edit(kvmBase, "vm_disk = "+tc.disk, "!transfer_input_files"), Options{Paths: tc.policy})
		switch {
		case tc.code == "" && err != nil:
			t.Errorf("untransferred %s (policy %d): %v", tc.disk, tc.policy, err)
		case tc.code != "" && hasCode(err, tc.code) == nil:
			t.Errorf("untransferred %s (policy %d): want %s, got %v", tc.disk, tc.policy, tc.code, err)
		}
	}
}

func TestMacros(t *testing.T) {
	dir := fixtures(t)
	c := mustParse(t, dir, edit(kvmBase,
		"name = vm",
		"executable = $(name)_$(Suffix:default)_$(ClusterId).$(ProcId)_$(JobId)",
		"mem = 256",
		"vm_memory = $(MEM)",
		"+Home = \"$ENV(VMPOOL_TEST_HOME)\"",
		"+Other = \"$ENV(VMPOOL_NOPE:none)\"",
		"description = $(MY.Home)",
		"acc = a",
		"acc = $(acc)b",
		"acc = $(acc)c",
		"batch_name = $(acc)-$(later)",
		"later = late",
		"+Lit = \"$$(Memory)\"",
		"+Int = $INT(mem,%05d)",
		"+Real = \"$REAL(mem,%.1f)\"",
		"+Choice = \"$CHOICE(1,red,green,blue)\"",
		"colors = red, green, blue",
		"+Choice2 = \"$CHOICE(2,colors)\"",
		"+Sub = \"$SUBSTR(name,0,1)\"",
		"path = /data/run1/disk.qcow2",
		`+Parts = "$Fn(path) $Fx(path) $Fnx(path) $Fp(path) $Fd(path) $Fdb(path)"`,
		"+Arch = \"$(ARCH)\"",
		"+Dollar = \"$(DOLLAR)\"",
	), Options{ClusterID: 42})
	for name, want := range map[string]string{
		"Cmd":            `"vm_default_42.0_42.0"`,
		"JobVMMemory":    "256",
		"Home":           `"/home/test"`,
		"Other":          `"none"`,
		"JobDescription": `"/home/test"`,
		"JobBatchName":   `"abc-late"`,
		"Lit":            `"$$(Memory)"`,
		"Int":            "00256",
		"Real":           `"256.0"`,
		"Choice":         `"green"`,
		"Choice2":        `"blue"`,
		"Sub":            `"v"`,
		"Parts":          `"disk .qcow2 disk.qcow2 /data/run1/ run1/ run1"`,
		"Arch":           `"X86_64"`,
		"Dollar":         `"$"`,
	} {
		if got := attr(c, name); got != want {
			t.Errorf("%s = %s, want %s", name, got, want)
		}
	}
}

func TestNeedClusterID(t *testing.T) {
	dir := fixtures(t)
	src := edit(kvmBase, "log = job_$(Cluster).log")
	if _, err := parse(t, dir, src, Options{}); !errors.Is(err, ErrNeedClusterID) {
		t.Fatalf("want ErrNeedClusterID, got %v", err)
	}
	c := mustParse(t, dir, src, Options{ClusterID: 7})
	if c.UserLog != filepath.Join(dir, "job_7.log") {
		t.Errorf("log %s", c.UserLog)
	}
	// Other problems are reported first: no cluster id is wasted on them.
	_, err := parse(t, dir, edit(kvmBase, "log = job_$(Cluster).log", "vm_memory = -1"), Options{})
	if hasCode(err, "vm-memory-invalid") == nil {
		t.Errorf("want the real problem, got %v", err)
	}
	// $(JobId) uses the cluster too; a file without it does not need one.
	if _, err := parse(t, dir, edit(kvmBase, "executable = $(JobId)"), Options{}); !errors.Is(err, ErrNeedClusterID) {
		t.Errorf("JobId: %v", err)
	}
	if _, err := parse(t, dir, edit(kvmBase), Options{}); err != nil {
		t.Error(err)
	}
}

func TestQueueForms(t *testing.T) {
	dir := fixtures(t)
	base := edit(kvmBase, "executable = job_$(Item:)_$(ItemIndex)_$(Step)_$(Process)", "!queue")
	cases := []struct {
		name  string
		queue string
		want  []string // Cmd per proc
	}{
		{"bare", "queue", []string{"job__0_0_0"}},
		{"count", "queue 3", []string{"job__0_0_0", "job__0_1_1", "job__0_2_2"}},
		{"in", "queue Item in (a, b c)", []string{"job_a_0_0_0", "job_b_1_0_1", "job_c_2_0_2"}},
		{"in default var, no parens", "queue in x,y", []string{"job_x_0_0_0", "job_y_1_0_1"}},
		{"count in", "queue 2 in (a b)", []string{"job_a_0_0_0", "job_a_0_1_1", "job_b_1_0_2", "job_b_1_1_3"}},
		{"multi-line in", "queue in (\n  a b\n  # comment\n  c\n)", []string{"job_a_0_0_0", "job_b_1_0_1", "job_c_2_0_2"}},
		{"slice", "queue in [1:4:2] (a b c d e)", []string{"job_b_1_0_0", "job_d_3_0_1"}},
		{"negative slice", "queue in [-2:] (a b c)", []string{"job_b_1_0_0", "job_c_2_0_1"}},
		{"matching", "queue matching images/*.img", []string{"job_images/a.img_0_0_0", "job_images/b.img_1_0_1"}},
		{"matching files", "queue matching files images/*", []string{"job_images/a.img_0_0_0", "job_images/b.img_1_0_1", "job_images/c.qcow2_2_0_2"}},
		{"matching dirs", "queue matching dirs images/*", []string{"job_images/more_0_0_0"}},
		{"from list", "queue from (\n  disk.img 512\n  data.img 1024\n)", []string{"job_disk.img 512_0_0_0", "job_data.img 1024_1_0_1"}},
		{"from file", "queue from items.txt", []string{"job_disk.img 512_0_0_0", "job_data.img 1024_1_0_1"}},
		{"from one-line list", "queue from (one two)", []string{"job_one two_0_0_0"}},
		{"macro count", "n = 2\nqueue $(n)", []string{"job__0_0_0", "job__0_1_1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := mustParse(t, dir, base+tc.queue+"\n", Options{})
			var got []string
			for i := range c.Procs {
				got = append(got, strings.Trim(procAttr(c, i, "Cmd"), `"`))
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestQueueFromVariables(t *testing.T) {
	dir := fixtures(t)
	src := edit(kvmBase,
		"vm_disk = $(disk):vda:w",
		"transfer_input_files = $(disk)",
		"vm_memory = $(mem)",
		"queue disk, mem from items.txt")
	c := mustParse(t, dir, src, Options{})
	if len(c.Procs) != 2 {
		t.Fatalf("%d procs", len(c.Procs))
	}
	for i, want := range []struct{ mem, disk string }{{"512", "disk.img"}, {"1024", "data.img"}} {
		if got := procAttr(c, i, "JobVMMemory"); got != want.mem {
			t.Errorf("proc %d memory %s", i, got)
		}
		if got := procAttr(c, i, "VMPARAM_vm_Disk"); got != quote(want.disk+":vda:w") {
			t.Errorf("proc %d disk %s", i, got)
		}
		if len(c.Procs[i].Inputs) != 1 || filepath.Base(c.Procs[i].Inputs[0]) != want.disk {
			t.Errorf("proc %d inputs %v", i, c.Procs[i].Inputs)
		}
	}
	if attr(c, "JobVMMemory") != "" || len(c.Inputs) != 0 {
		t.Errorf("varying attributes leaked into the cluster: %v %v", c.Attrs, c.Inputs)
	}
	if attr(c, "Cmd") != `"hello_vm_job"` {
		t.Errorf("common attributes belong to the cluster")
	}
	// A missing item file is reported at its command's line.
	_, err := parse(t, dir, edit(kvmBase, "transfer_input_files = $(Item)", "vm_disk = $(Item):vda:w", "queue in (disk.img, gone.img)"), Options{})
	if e := hasCode(err, "input-missing"); e == nil || e.Line != 6 || !strings.Contains(e.Msg, "gone.img") {
		t.Errorf("want input-missing at 6 for gone.img, got %v", err)
	}
}

func TestSeveralQueueStatements(t *testing.T) {
	dir := fixtures(t)
	src := strings.Join([]string{
		"universe = vm",
		"executable = hello_vm_job",
		"vm_type = kvm",
		"vm_memory = 512",
		"vm_disk = disk.img:vda:w",
		"transfer_input_files = disk.img",
		"queue 2",
		"vm_memory = 1024",
		"hold = true",
		"queue",
		"vm_memory = 512",
		"hold = false",
		"queue in (x)",
	}, "\n") + "\n"
	c := mustParse(t, dir, src, Options{})
	if len(c.Procs) != 4 {
		t.Fatalf("%d procs", len(c.Procs))
	}
	mem := []string{"512", "512", "1024", "512"}
	status := []string{"1", "1", "5", "1"}
	for i := range c.Procs {
		if got := procAttr(c, i, "JobVMMemory"); got != mem[i] {
			t.Errorf("proc %d memory %s", i, got)
		}
		if got := procAttr(c, i, "JobStatus"); got != status[i] {
			t.Errorf("proc %d status %s", i, got)
		}
	}
	if got := procAttr(c, 0, "HoldReasonCode"); got != "" {
		t.Errorf("proc 0 held? %s", got)
	}
	if got := procAttr(c, 2, "HoldReasonCode"); got != "15" {
		t.Errorf("proc 2 hold code %s", got)
	}
	if fmt.Sprint(c.Procs[0]) != fmt.Sprint(c.Procs[1]) || len(c.Procs[0].Attrs) != 5 {
		t.Errorf("procs 0 and 1 carry only what varies: %v", c.Procs[:2])
	}
}

func TestAppendAndQueueOption(t *testing.T) {
	dir := fixtures(t)
	src := strings.Join([]string{
		"universe = vm", "executable = a", "vm_type = kvm", "vm_memory = 512",
		"vm_disk = disk.img:vda:w", "transfer_input_files = disk.img", "queue", "vm_memory = 2048", "queue",
	}, "\n")
	c := mustParse(t, dir, src, Options{Append: []string{"vm_memory = 1024", "+Tag = 1"}})
	for i := range c.Procs {
		if got := procAttr(c, i, "JobVMMemory"); got != "1024" {
			t.Errorf("proc %d: -append applies before every queue statement, memory %s", i, got)
		}
	}
	if attr(c, "Tag") != "1" {
		t.Errorf("Tag %q", attr(c, "Tag"))
	}
	_, err := parse(t, dir, src, Options{Append: []string{"vm_memory = nope"}})
	if e := hasCode(err, "vm-memory-invalid"); e == nil || e.File != "-append" || e.Line != 1 {
		t.Errorf("want the error in -append line 1, got %v", err)
	}
	c = mustParse(t, dir, edit(kvmBase, "!queue"), Options{Queue: "in (a, b, c)"})
	if len(c.Procs) != 3 {
		t.Errorf("-queue: %d procs", len(c.Procs))
	}
	if _, err := parse(t, dir, src, Options{Append: []string{"queue 2"}}); hasCode(err, "line-syntax") == nil {
		t.Errorf("appended queue accepted: %v", err)
	}
}

func TestLanguage(t *testing.T) {
	dir := fixtures(t)
	src := "\ufeff# a comment\r\n" +
		"UNIVERSE = VM\r\n" +
		"Executable = \\\n" +
		"   long_\\\n" +
		"# skipped comment\n" +
		"name\n" +
		"vm_type=kvm\n" +
		"vm_memory =   512   \n" +
		"vm_disk = disk.img:vda:w\n" +
		"transfer_input_files = disk.img\n" +
		"description @=END\n" +
		"  first line\n" +
		"  second \"line\"\n" +
		"@END\n" +
		"Queue\n"
	c := mustParse(t, dir, src, Options{})
	if got := attr(c, "Cmd"); got != `"long_name"` {
		t.Errorf("continuation: %s", got)
	}
	if got := attr(c, "JobDescription"); got != `"first line\n  second \"line\""` {
		t.Errorf("multi-line value: %s", got)
	}
	if got := attr(c, "JobVMMemory"); got != "512" {
		t.Errorf("memory %s", got)
	}
}

func TestManyProcsAreCheap(t *testing.T) {
	dir := fixtures(t)
	start := time.Now()
	c := mustParse(t, dir, edit(kvmBase, "queue 100000"), Options{})
	if len(c.Procs) != 100000 {
		t.Fatalf("%d procs", len(c.Procs))
	}
	for i, p := range c.Procs {
		if p.Attrs != nil || p.Inputs != nil || p.Iwd != "" || p.UserLog != "" {
			t.Fatalf("proc %d is not empty: %+v", i, p)
		}
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("100000 procs took %v", d)
	}
	// Per-proc values stay per proc.
	c = mustParse(t, dir, edit(kvmBase, "+Index = $(Process)", "queue 1000"), Options{})
	if len(c.Procs[999].Attrs) != 1 || c.Procs[999].Attrs[0] != (Attr{"Index", "999"}) {
		t.Errorf("proc 999: %+v", c.Procs[999])
	}
}

func TestStdinAndParseFile(t *testing.T) {
	dir := fixtures(t)
	path := filepath.Join(dir, "hello.sub")
	if err := os.WriteFile(path, []byte(edit(kvmBase)), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := ParseFile(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c.File != path || len(c.Procs) != 1 {
		t.Errorf("%+v", c)
	}
	if _, err := ParseFile(filepath.Join(dir, "nope.sub"), Options{}); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	_, err = Parse("", strings.NewReader("universe = vm\nqueue\n"), Options{})
	if e := firstError(err); e == nil || e.File != "<stdin>" {
		t.Errorf("stdin errors name <stdin>: %v", err)
	}
}

func TestCheckExprHook(t *testing.T) {
	dir := fixtures(t)
	var seen []string
	opt := Options{CheckExpr: func(s string) error { seen = append(seen, s); return nil }}
	mustParse(t, dir, edit(kvmBase, "requirements = Memory > 1", "rank = Memory", "+Foo = 1 + 2", "periodic_remove = false"), opt)
	want := []string{"Memory > 1", "Memory", "1 + 2", "false"}
	for _, w := range want {
		found := false
		for _, s := range seen {
			found = found || s == w
		}
		if !found {
			t.Errorf("CheckExpr was not asked about %q (asked %q)", w, seen)
		}
	}
}

// TestRefusedStatementsDocumented: what HTCondor's submit language has and
// vmpool refuses (include, if/else, $RANDOM_INTEGER(), ...) is refused
// with its own name, and htcondor-compat.md lists it: an HTCondor user's
// file that has one fails at submit, and the page must say so.
func TestRefusedStatementsDocumented(t *testing.T) {
	dir := fixtures(t)
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "htcondor-compat.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ line, code, doc string }{
		{"include : common.sub", "line-syntax", "`include`"},
		{"if defined X", "line-syntax", "`if`/`elif`/`else`/`endif`"},
		{"error : no", "line-syntax", "`error`"},
		{"warning : no", "line-syntax", "`warning` statements"},
		{"vm_vcpus = $RANDOM_INTEGER(1, 4)", "macro-function-unknown", "`$RANDOM_INTEGER()`"},
		{"vm_vcpus = $RANDOM_CHOICE(1, 2)", "macro-function-unknown", "`$RANDOM_CHOICE()`"},
	} {
		_, err := parse(t, dir, edit(kvmBase, c.line), Options{})
		if err == nil || !strings.Contains(err.Error(), "["+c.code+"]") {
			t.Errorf("%q: %v, want a [%s] error", c.line, err, c.code)
		}
		if !strings.Contains(string(doc), c.doc) {
			t.Errorf("htcondor-compat.md does not say that %s is not supported", c.doc)
		}
	}
}

// TestUndefinedMacroNamesQueue: with several queue statements, a macro
// defined for a later one but used by an earlier one is an error that
// names the queue statement it was expanded for (the error named only the
// line that used it, which is right for the later queue).
func TestUndefinedMacroNamesQueue(t *testing.T) {
	dir := fixtures(t)
	src := strings.Replace(edit(kvmBase, "executable = job_$(tag)"), "queue", "queue\ntag = b\nqueue", 1)
	_, err := parse(t, dir, src, Options{})
	if err == nil || !strings.Contains(err.Error(), "test.sub:2: executable: macro $(tag) is not defined for the queue statement at line 7 [macro-undefined]") {
		t.Fatalf("%s\n%v", src, err)
	}
}
