package submit

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

var xenBase = []string{
	"universe = vm",
	"executable = xen_job",
	"vm_type = xen",
	"vm_memory = 256",
	"vm_disk = disk.img:xvda:w",
	"transfer_input_files = disk.img, vmlinuz, initrd.img",
	"xen_kernel = vmlinuz",
	"xen_root = /dev/xvda",
	"queue",
}

var vmwareBase = []string{
	"universe = vm",
	"executable = vmware_sample_job",
	"vm_type = vmware",
	"vm_memory = 64",
	"vmware_dir = vmware",
	"vmware_should_transfer_files = True",
	"queue",
}

// checkCase is a submit description that must be rejected with code at line.
type checkCase struct {
	name string
	code string
	line int
	src  string
	opt  func(dir string, o *Options)
}

func checkCases() []checkCase {
	many := strings.Repeat("x", 1024)
	chain := []string{"l0 = " + many}
	for i := 1; i <= 11; i++ {
		chain = append(chain, fmt.Sprintf("l%d = $(l%d)$(l%d)", i, i-1, i-1))
	}
	return []checkCase{
		{name: "nul byte", code: "file-not-text", line: 2, src: "universe = vm\nexe\x00cutable = x\nqueue\n"},
		{name: "invalid utf8", code: "file-not-text", line: 1, src: "universe = v\xffm\nqueue\n"},
		{name: "control character", code: "file-not-text", line: 3, src: "universe = vm\n\n\x1b[31m\nqueue\n"},
		{name: "file too large", code: "file-too-large", line: 1, src: strings.Repeat("#\n", maxFileSize/2+1)},
		{name: "junk line", code: "line-syntax", line: 7, src: edit(kvmBase, "this is not a command")},
		{name: "conditional", code: "line-syntax", line: 7, src: edit(kvmBase, "if defined X")},
		{name: "bad command name", code: "line-syntax", line: 7, src: edit(kvmBase, "vm memory = 512")},
		{name: "unterminated multi-line", code: "value-unterminated", line: 7, src: edit(kvmBase, "description @=END\nsome text")},
		{name: "undefined macro", code: "macro-undefined", line: 2, src: edit(kvmBase, "executable = $(nothere)")},
		{name: "undefined env", code: "env-undefined", line: 2, src: edit(kvmBase, "executable = $ENV(VMPOOL_NOPE)")},
		{name: "recursive macro", code: "macro-recursive", line: 2, src: edit(kvmBase, "executable = $(a)", "a = $(b)", "b = $(a)")},
		{name: "huge expansion", code: "macro-too-large", line: 2, src: edit(kvmBase, append([]string{"executable = $(l11)"}, chain...)...)},
		{name: "random choice", code: "macro-function-unknown", line: 2, src: edit(kvmBase, "executable = $RANDOM_CHOICE(a,b)")},
		{name: "unknown function", code: "macro-function-unknown", line: 2, src: edit(kvmBase, "executable = $FOO(a)")},
		{name: "bad INT format", code: "macro-function-invalid", line: 2, src: edit(kvmBase, "executable = job$INT(vm_memory,%s)")},
		{name: "CHOICE out of range", code: "macro-function-invalid", line: 2, src: edit(kvmBase, "executable = $CHOICE(5,a,b)")},
		{name: "bad attribute name", code: "attr-name-invalid", line: 7, src: edit(kvmBase, "+1bad = 3")},
		{name: "protected attribute", code: "attr-protected", line: 7, src: edit(kvmBase, "+ClusterId = 5")},
		{name: "protected MY attribute", code: "attr-protected", line: 7, src: edit(kvmBase, "MY.JobUniverse = 5")},
		{name: "empty attribute", code: "attr-value-empty", line: 7, src: edit(kvmBase, "+Project =")},
		{name: "unterminated string", code: "expr-invalid", line: 7, src: edit(kvmBase, `requirements = Machine == "exec1`)},
		{name: "hook rejects", code: "expr-invalid", line: 7, src: edit(kvmBase, "rank = Memory +* 2"),
			opt: func(_ string, o *Options) { o.CheckExpr = rejectOperators }},
		{name: "hook rejects attr", code: "expr-invalid", line: 7, src: edit(kvmBase, "+Prio = 1 +* 2"),
			opt: func(_ string, o *Options) { o.CheckExpr = rejectOperators }},
		{name: "circular requirements", code: "requirements-circular", line: 7, src: edit(kvmBase, "requirements = Requirements && Memory > 0")},
		{name: "no queue", code: "queue-missing", line: 7, src: edit(kvmBase, "!queue")},
		{name: "queue in without items", code: "queue-syntax", line: 7, src: edit(kvmBase, "queue x in")},
		{name: "queue bad var", code: "queue-syntax", line: 7, src: edit(kvmBase, "queue x-y in (a)")},
		{name: "queue count word", code: "queue-count-invalid", line: 7, src: edit(kvmBase, "queue many")},
		{name: "queue negative", code: "queue-count-invalid", line: 7, src: edit(kvmBase, "queue -3")},
		{name: "queue too many", code: "queue-too-many", line: 7, src: edit(kvmBase, "queue 2000000")},
		{name: "queue over MaxProcs", code: "queue-too-many", line: 7, src: edit(kvmBase, "queue 11"),
			opt: func(_ string, o *Options) { o.MaxProcs = 10 }},
		{name: "queue bad slice", code: "queue-slice-invalid", line: 7, src: edit(kvmBase, "queue x in [0:2:0] (a b)")},
		{name: "queue unterminated list", code: "queue-list-unterminated", line: 7, src: edit(kvmBase, "queue x in (\na\nb")},
		{name: "queue from missing file", code: "queue-from-unreadable", line: 7, src: edit(kvmBase, "queue x from nothere.txt")},
		{name: "queue from command", code: "queue-from-command", line: 7, src: edit(kvmBase, "queue x from ls *.img |")},
		{name: "queue bad glob", code: "queue-glob-invalid", line: 7, src: edit(kvmBase, "queue matching disk[.img")},
		{name: "queue zero", code: "queue-no-jobs", line: 7, src: edit(kvmBase, "queue 0")},
		{name: "queue no matches", code: "queue-no-jobs", line: 7, src: edit(kvmBase, "queue matching *.none")},
		{name: "queue twice", code: "queue-conflict", line: 7, src: edit(kvmBase),
			opt: func(_ string, o *Options) { o.Queue = "3" }},
		{name: "no universe", code: "universe-missing", line: 7, src: edit(kvmBase, "!universe")},
		{name: "vanilla", code: "universe-unsupported", line: 1, src: edit(kvmBase, "universe = vanilla")},
		{name: "no executable", code: "executable-missing", line: 7, src: edit(kvmBase, "!executable")},
		{name: "output given", code: "io-not-allowed", line: 7, src: edit(kvmBase, "output = out.txt")},
		{name: "input given", code: "io-not-allowed", line: 7, src: edit(kvmBase, "input = in.txt")},
		{name: "no vm_type", code: "vm-type-missing", line: 7, src: edit(kvmBase, "!vm_type")},
		{name: "unknown vm_type", code: "vm-type-unknown", line: 3, src: edit(kvmBase, "vm_type = virtualbox")},
		{name: "no vm_memory", code: "vm-memory-missing", line: 7, src: edit(kvmBase, "!vm_memory")},
		{name: "negative vm_memory", code: "vm-memory-invalid", line: 4, src: edit(kvmBase, "vm_memory = -5")},
		{name: "zero vm_memory", code: "vm-memory-invalid", line: 4, src: edit(kvmBase, "vm_memory = 0")},
		{name: "word vm_memory", code: "vm-memory-invalid", line: 4, src: edit(kvmBase, "vm_memory = lots")},
		{name: "bad unit vm_memory", code: "vm-memory-invalid", line: 4, src: edit(kvmBase, "vm_memory = 5X")},
		{name: "huge vm_memory", code: "vm-memory-too-large", line: 4, src: edit(kvmBase, "vm_memory = 17T")},
		{name: "enormous vm_memory", code: "vm-memory-too-large", line: 4, src: edit(kvmBase, "vm_memory = 99999999999")},
		{name: "zero vcpus", code: "vm-vcpus-invalid", line: 7, src: edit(kvmBase, "vm_vcpus = 0")},
		{name: "word vcpus", code: "vm-vcpus-invalid", line: 7, src: edit(kvmBase, "vm_vcpus = two")},
		{name: "multicast mac", code: "vm-macaddr-invalid", line: 7, src: edit(kvmBase, "vm_macaddr = 01:00:5e:00:00:01")},
		{name: "short mac", code: "vm-macaddr-invalid", line: 7, src: edit(kvmBase, "vm_macaddr = 52:54:00:12:34")},
		{name: "non-hex mac", code: "vm-macaddr-invalid", line: 7, src: edit(kvmBase, "vm_macaddr = 52:54:00:12:34:zz")},
		{name: "zero mac", code: "vm-macaddr-invalid", line: 7, src: edit(kvmBase, "vm_macaddr = 00:00:00:00:00:00")},
		{name: "bad networking type", code: "vm-networking-type-invalid", line: 8, src: edit(kvmBase, "vm_networking = true", "vm_networking_type = wifi")},
		{name: "checkpoint and networking", code: "vm-checkpoint-networking", line: 8, src: edit(kvmBase, "vm_checkpoint = true", "vm_networking = true")},
		{name: "checkpoint and networking ON_EXIT", code: "vm-checkpoint-networking", line: 9, src: edit(kvmBase, "when_to_transfer_output = ON_EXIT", "vm_networking = true", "vm_checkpoint = true")},
		{name: "bad interval", code: "vm-checkpoint-interval-invalid", line: 8, src: edit(kvmBase, "vm_checkpoint = true", "vm_checkpoint_interval = -3")},
		{name: "interval without checkpoint", code: "vm-checkpoint-interval-without-checkpoint", line: 7, src: edit(kvmBase, "vm_checkpoint_interval = 60")},
		{name: "no vm_disk", code: "vm-disk-missing", line: 7, src: edit(kvmBase, "!vm_disk")},
		{name: "empty vm_disk list", code: "vm-disk-missing", line: 5, src: edit(kvmBase, "vm_disk = , ,")},
		{name: "no vm_disk xen", code: "vm-disk-missing", line: 9, src: edit(xenBase, "!vm_disk")},
		{name: "two fields", code: "vm-disk-format", line: 5, src: edit(kvmBase, "vm_disk = disk.img:vda")},
		{name: "five fields", code: "vm-disk-format", line: 5, src: edit(kvmBase, "vm_disk = disk.img:vda:w:raw:x")},
		{name: "empty device", code: "vm-disk-field-empty", line: 5, src: edit(kvmBase, "vm_disk = disk.img::w")},
		{name: "empty file", code: "vm-disk-field-empty", line: 5, src: edit(kvmBase, "vm_disk = :vda:w")},
		{name: "bad permission", code: "vm-disk-permission", line: 5, src: edit(kvmBase, "vm_disk = disk.img:vda:x")},
		{name: "duplicate device", code: "vm-disk-device-duplicate", line: 5, src: edit(kvmBase, "vm_disk = disk.img:vda:w,data.img:VDA:r", "transfer_input_files = disk.img, data.img")},
		{name: "kvm IDE device past hdd", code: "vm-disk-device-invalid", line: 5, src: edit(kvmBase, "vm_disk = disk.img:hde:w")},
		{name: "kvm SATA device past sdf", code: "vm-disk-device-invalid", line: 5, src: edit(kvmBase, "vm_disk = disk.img:sdg1:w")},
		{name: "kvm device not a disk name", code: "vm-disk-device-invalid", line: 5, src: edit(kvmBase, "vm_disk = disk.img:cdrom:r")},
		{name: "kvm device in capitals", code: "vm-disk-device-invalid", line: 5, src: edit(kvmBase, "vm_disk = disk.img:HDA:w")},
		{name: "qcow2 backing not sent", code: "vm-disk-backing-missing", line: 5, src: edit(kvmBase, "vm_disk = over.qcow2:vda:w:qcow2", "transfer_input_files = over.qcow2")},
		{name: "qcow2 backing of a backing not sent", code: "vm-disk-backing-missing", line: 5, src: edit(kvmBase, "vm_disk = chain.qcow2:vda:w:qcow2", "transfer_input_files = chain.qcow2, over.qcow2")},
		{name: "qcow2 backing by a relative path", code: "vm-disk-backing-missing", line: 5, src: edit(kvmBase, "vm_disk = deep.qcow2:vda:w:qcow2", "transfer_input_files = deep.qcow2")},
		{name: "missing input", code: "input-missing", line: 6, src: edit(kvmBase, "transfer_input_files = disk.img, nothere.img")},
		{name: "missing xen_transfer_files", code: "input-missing", line: 9, src: edit(xenBase, "xen_transfer_files = nothere.img")},
		{name: "directory input", code: "input-is-directory", line: 6, src: edit(kvmBase, "transfer_input_files = disk.img, adir")},
		{name: "fifo input", code: "input-unreadable", line: 6, src: edit(kvmBase, "transfer_input_files = disk.img, fifo.img")},
		{name: "dotdot escape", code: "input-escapes-iwd", line: 6, src: edit(kvmBase, "transfer_input_files = disk.img, ../outside/secret.img")},
		{name: "symlink escape", code: "input-escapes-iwd", line: 6, src: edit(kvmBase, "transfer_input_files = disk.img, escape.img")},
		{name: "vmware_dir escape", code: "input-escapes-iwd", line: 5, src: edit(vmwareBase, "vmware_dir = vmware-outside")},
		{name: "absolute confined", code: "input-absolute-forbidden", line: 6, src: "", opt: func(dir string, o *Options) { o.Paths = PathsConfined }},
		{name: "url input", code: "input-url-unsupported", line: 6, src: edit(kvmBase, "transfer_input_files = disk.img, https://example.com/disk.img")},
		{name: "same name twice", code: "input-name-conflict", line: 6, src: edit(kvmBase, "transfer_input_files = disk.img, sub/disk.img")},
		{name: "no initialdir", code: "initialdir-invalid", line: 7, src: edit(kvmBase, "initialdir = nowhere")},
		{name: "initialdir is a file", code: "initialdir-invalid", line: 7, src: edit(kvmBase, "initialdir = disk.img")},
		{name: "log in missing dir", code: "log-invalid", line: 7, src: edit(kvmBase, "log = nodir/x.log")},
		{name: "log is a directory", code: "log-invalid", line: 7, src: edit(kvmBase, "log = logs")},
		{name: "no xen_kernel", code: "xen-kernel-missing", line: 9, src: edit(xenBase, "!xen_kernel")},
		{name: "no xen_root", code: "xen-root-missing", line: 7, src: edit(xenBase, "!xen_root")}, // at xen_kernel's line, which calls for it
		{name: "initrd with included kernel", code: "xen-initrd-without-kernel", line: 9, src: edit(xenBase, "xen_kernel = included", "xen_initrd = initrd.img")},
		{name: "initrd with vmx", code: "xen-initrd-without-kernel", line: 9, src: edit(xenBase, "xen_kernel = vmx", "xen_initrd = initrd.img")},
		{name: "included with two disks", code: "xen-kernel-included-multiple-disks", line: 7, src: edit(xenBase, "xen_kernel = included", "vm_disk = disk.img:xvda:w,data.img:xvdb:w")},
		{name: "no vmware transfer", code: "vmware-transfer-missing", line: 7, src: edit(vmwareBase, "!vmware_should_transfer_files")},
		{name: "no transfer no snapshot", code: "vmware-snapshot-conflict", line: 7, src: edit(vmwareBase, "vmware_should_transfer_files = false", "vmware_snapshot_disk = false")},
		{name: "vmware_dir missing", code: "vmware-dir-invalid", line: 5, src: edit(vmwareBase, "vmware_dir = nowhere")},
		{name: "vmware_dir a file", code: "vmware-dir-invalid", line: 5, src: edit(vmwareBase, "vmware_dir = disk.img")},
		{name: "vmware_dir symlink shared", code: "vmware-dir-symlink", line: 5, src: edit(vmwareBase, "vmware_dir = vmware-link", "vmware_should_transfer_files = false")},
		{name: "no vmx", code: "vmware-vmx-missing", line: 5, src: edit(vmwareBase, "vmware_dir = vmware-empty")},
		{name: "no vmware_dir", code: "vmware-vmx-missing", line: 7, src: edit(vmwareBase, "!vmware_dir")},
		{name: "two vmx", code: "vmware-vmx-multiple", line: 5, src: edit(vmwareBase, "vmware_dir = vmware2")},
		{name: "vmware mac outside VMware's range", code: "vm-macaddr-vmware-range", line: 8, src: edit(vmwareBase, "vm_networking = true", "vm_macaddr = 52:54:00:12:34:56")},
		{name: "vmware mac past VMware's range", code: "vm-macaddr-vmware-range", line: 8, src: edit(vmwareBase, "vm_networking = true", "vm_macaddr = 00:50:56:40:00:00")},
		{name: "maybe", code: "bool-invalid", line: 7, src: edit(kvmBase, "vm_checkpoint = maybe")},
		{name: "hold perhaps", code: "bool-invalid", line: 7, src: edit(kvmBase, "hold = perhaps")},
		{name: "priority word", code: "int-invalid", line: 7, src: edit(kvmBase, "priority = high")},
		{name: "priority huge", code: "int-invalid", line: 7, src: edit(kvmBase, "priority = 99999999999")},
		{name: "lease negative", code: "int-invalid", line: 7, src: edit(kvmBase, "job_lease_duration = -1")},
		{name: "request_memory negative", code: "request-invalid", line: 7, src: edit(kvmBase, "request_memory = -1")},
		{name: "request_cpus fraction", code: "request-invalid", line: 7, src: edit(kvmBase, "request_cpus = 1.5")},
		{name: "request_disk bad unit", code: "request-invalid", line: 7, src: edit(kvmBase, "request_disk = 10Q")},
		{name: "notification", code: "notification-invalid", line: 7, src: edit(kvmBase, "notification = sometimes")},
		{name: "should transfer", code: "should-transfer-invalid", line: 7, src: edit(kvmBase, "should_transfer_files = perhaps")},
		{name: "when to transfer", code: "when-to-transfer-invalid", line: 7, src: edit(kvmBase, "when_to_transfer_output = ON_SUCCESS")},
		{name: "too many errors", code: "too-many-errors", line: 50, src: strings.Repeat("junk\n", 60) + "queue\n"},
	}
}

// TestUnterminatedQueueIsOneError: a queue statement whose item list is
// never closed is reported once, not also as a file without a queue
// statement.
func TestUnterminatedQueueIsOneError(t *testing.T) {
	dir := fixtures(t)
	_, err := parse(t, dir, edit(kvmBase, "queue x in (\na\nb"), Options{})
	if hasCode(err, "queue-list-unterminated") == nil || hasCode(err, "queue-missing") != nil {
		t.Fatalf("want queue-list-unterminated alone, got:\n%v", err)
	}
}

// rejectOperators stands in for the ClassAd parser: it refuses "+*".
func rejectOperators(src string) error {
	if strings.Contains(src, "+*") {
		return errors.New("syntax error near '*'")
	}
	return nil
}

func TestChecks(t *testing.T) {
	dir := fixtures(t)
	outside := filepath.Join(filepath.Dir(dir), "outside", "secret.img")
	for _, tc := range checkCases() {
		t.Run(tc.name, func(t *testing.T) {
			src := tc.src
			if tc.name == "absolute confined" {
				src = edit(kvmBase, "transfer_input_files = disk.img, "+outside)
			}
			var opt Options
			if tc.opt != nil {
				tc.opt(dir, &opt)
			}
			c, err := parse(t, dir, src, opt)
			if err == nil {
				t.Fatalf("accepted:\n%s", src)
			}
			if c != nil {
				t.Errorf("a rejected file yielded a cluster")
			}
			e := hasCode(err, tc.code)
			if e == nil {
				t.Fatalf("want code %s, got:\n%v", tc.code, err)
			}
			if e.Line != tc.line {
				t.Errorf("code %s at line %d, want %d: %v", tc.code, e.Line, tc.line, e)
			}
			if first := firstError(err); first == nil {
				t.Errorf("errors.As(*Error) found nothing in %T", err)
			}
			if e.File == "" || e.Msg == "" || e.Fix == "" {
				t.Errorf("incomplete error %#v", e)
			}
			if !strings.Contains(e.Error(), fmt.Sprintf("test.sub:%d: ", tc.line)) {
				t.Errorf("message does not name file and line: %s", e.Error())
			}
		})
	}
}

// TestChecksCoverCodes keeps the catalogue, the checks and the tests in step.
func TestChecksCoverCodes(t *testing.T) {
	tested := map[string]bool{}
	for _, tc := range checkCases() {
		tested[tc.code] = true
	}
	seen := map[string]bool{}
	for _, c := range Codes() {
		if seen[c.Code] {
			t.Errorf("code %s listed twice", c.Code)
		}
		seen[c.Code] = true
		if c.Summary == "" || c.Fix == "" {
			t.Errorf("code %s lacks a summary or fix", c.Code)
		}
		if c.Code != strings.ToLower(c.Code) || strings.ContainsAny(c.Code, " _") {
			t.Errorf("code %s is not kebab-case", c.Code)
		}
		if !tested[c.Code] {
			t.Errorf("code %s has no check case", c.Code)
		}
	}
	for code := range tested {
		if !seen[code] {
			t.Errorf("tested code %s is not in the catalogue", code)
		}
	}
}

// TestErrorsReportEverything: problems are all reported at once, in order.
func TestErrorsReportEverything(t *testing.T) {
	dir := fixtures(t)
	src := edit(kvmBase, "vm_memory = -5", "vm_vcpus = 0", "vm_macaddr = nope", "hold = maybe")
	_, err := parse(t, dir, src, Options{})
	var es Errors
	if !errors.As(err, &es) {
		t.Fatalf("want Errors, got %T %v", err, err)
	}
	var codes []string
	for _, e := range es {
		codes = append(codes, fmt.Sprintf("%d:%s", e.Line, e.Code))
	}
	want := "4:vm-memory-invalid 7:vm-vcpus-invalid 8:vm-macaddr-invalid 9:bool-invalid"
	if got := strings.Join(codes, " "); got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
	if first := firstError(err); first.Code != "vm-memory-invalid" {
		t.Errorf("errors.As found %s first", first.Code)
	}
	want1 := `test.sub:4: vm_memory: vm_memory is incorrectly specified ("-5") [vm-memory-invalid]; fix: set vm_memory to the guest's memory in MiB, e.g. vm_memory = 512`
	if got := es[0].Error(); !strings.HasSuffix(got, want1) {
		t.Errorf("message\n%s\nwant suffix\n%s", got, want1)
	}
}

// TestBackingFilesAndUnusedInputs: a transferred qcow2 disk whose backing
// file is transferred too runs (QEMU finds it beside the image), one over
// a backing file on shared storage is taken with a warning, and a
// transferred file that is no disk, kernel or backing file is said to be
// invisible to the guest (a user's notes.txt is copied to the execute
// machine, and the guest never sees it).
func TestBackingFilesAndUnusedInputs(t *testing.T) {
	dir := fixtures(t)
	c := mustParse(t, dir, edit(kvmBase, "vm_disk = chain.qcow2:vda:w:qcow2", "transfer_input_files = chain.qcow2, over.qcow2, base.img"), Options{})
	if w := strings.Join(c.Warnings, "\n"); strings.Contains(w, "transferred but") || strings.Contains(w, "backing") {
		t.Errorf("a chain whose every backing file is sent is warned of:\n%s", w)
	}
	c = mustParse(t, dir, edit(kvmBase, "vm_disk = shared.qcow2:vda:w:qcow2", "transfer_input_files = shared.qcow2"), Options{})
	if w := strings.Join(c.Warnings, "\n"); !strings.Contains(w, "test.sub:5: ") || !strings.Contains(w, "/srv/images/base.img, which is not transferred") {
		t.Errorf("a backing file on shared storage is not warned of at line 5:\n%s", w)
	}
	c = mustParse(t, dir, edit(kvmBase, "transfer_input_files = disk.img, data.iso, items.txt", "vm_disk = disk.img:vda:w, data.iso:hdc:r"), Options{})
	w := strings.Join(c.Warnings, "\n")
	if !strings.Contains(w, "test.sub:6: ") || !strings.Contains(w, `"items.txt" is transferred but is not a vm_disk image`) {
		t.Errorf("a transferred file the guest cannot see is not warned of at line 6:\n%s", w)
	}
	if strings.Contains(w, `"disk.img" is transferred`) || strings.Contains(w, `"data.iso" is transferred`) {
		t.Errorf("a vm_disk file is warned of as unused:\n%s", w)
	}
	x := strings.Join(mustParse(t, dir, edit(xenBase, "xen_initrd = initrd.img"), Options{}).Warnings, "\n")
	if strings.Contains(x, "is transferred but") {
		t.Errorf("a xen kernel or initrd is warned of as unused:\n%s", x)
	}
}

// TestKVMDevicesAccepted: every device name the kvm driver attaches is
// taken at submit, the seed's sda2 (a partition number) included.
func TestKVMDevicesAccepted(t *testing.T) {
	dir := fixtures(t)
	for _, dev := range []string{"hda", "hdd", "hdb1", "sda", "sda2", "sdf", "vda", "vdz", "xvda", "xvdb3"} {
		mustParse(t, dir, edit(kvmBase, "vm_disk = disk.img:"+dev+":w"), Options{})
	}
}

// TestWritableDiskFromASubdirectoryWarns: a writable disk sent from
// another directory (transfer_input_files = sub/disk.img) comes back,
// changed, into the initial directory under its bare name, as in
// HTCondor: the image in sub/ stays as it was and a file of that name in
// the initial directory is replaced, which submit now says. A read-only
// disk, or a job that wants nothing back, is not warned of.
func TestWritableDiskFromASubdirectoryWarns(t *testing.T) {
	dir := fixtures(t)
	w := strings.Join(mustParse(t, dir, edit(kvmBase, "vm_disk = sub/disk.img:vda:w", "transfer_input_files = sub/disk.img"), Options{}).Warnings, "\n")
	want := fmt.Sprintf("test.sub:5: vm_disk file \"disk.img\" is sent from %s: if the guest changes it, it comes back into the initial directory as %s, over the file there, not into %s",
		filepath.Join(dir, "sub", "disk.img"), filepath.Join(dir, "disk.img"), filepath.Join(dir, "sub"))
	if !strings.Contains(w, want) {
		t.Errorf("warnings lack\n%s\n:\n%s", want, w)
	}
	for _, src := range []string{
		edit(kvmBase, "vm_disk = sub/disk.img:vda:r", "transfer_input_files = sub/disk.img"),
		edit(kvmBase, "vm_disk = sub/disk.img:vda:w", "transfer_input_files = sub/disk.img", "vm_no_output_vm = true"),
		edit(kvmBase),
	} {
		if w := strings.Join(mustParse(t, dir, src, Options{}).Warnings, "\n"); strings.Contains(w, "comes back into the initial directory") {
			t.Errorf("warned of a disk that does not come back elsewhere:\n%s\n%s", src, w)
		}
	}
}

// TestVMMacaddrWarnings: a vm_macaddr that several jobs of a cluster get
// (queue 3) is warned of at its line: on a bridge, their VMs running at
// once lose traffic to each other. So is a vm_macaddr without networking,
// which no VM uses. One job with its MAC, or MACs that vary with
// $(Process), are not warned of.
func TestVMMacaddrWarnings(t *testing.T) {
	dir := fixtures(t)
	w := strings.Join(mustParse(t, dir, edit(kvmBase, "vm_networking = true", "vm_macaddr = 52:54:00:12:34:56", "queue 3"), Options{}).Warnings, "\n")
	if want := "test.sub:8: vm_macaddr 52:54:00:12:34:56 is the MAC of 3 jobs of this cluster: VMs with one MAC running at once on a bridged network lose traffic to each other"; !strings.Contains(w, want) {
		t.Errorf("warnings lack %q:\n%s", want, w)
	}
	w = strings.Join(mustParse(t, dir, edit(kvmBase, "vm_macaddr = 52:54:00:12:34:56"), Options{}).Warnings, "\n")
	if want := "test.sub:7: vm_macaddr has no effect without vm_networking = true"; !strings.Contains(w, want) {
		t.Errorf("warnings lack %q:\n%s", want, w)
	}
	for _, src := range []string{
		edit(kvmBase, "vm_networking = true", "vm_macaddr = 52:54:00:12:34:56"),
		edit(kvmBase, "vm_networking = true", "vm_macaddr = 52:54:00:12:34:5$(Process)", "queue 3"),
		edit(kvmBase, "vm_networking = true", "queue 3"),
	} {
		if w := strings.Join(mustParse(t, dir, src, Options{}).Warnings, "\n"); strings.Contains(w, "vm_macaddr") {
			t.Errorf("warned of MACs that are fine:\n%s\n%s", src, w)
		}
	}
}
