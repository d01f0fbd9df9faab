package classadcmd

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// run calls Main in-process and returns the exit status, stdout and
// stderr.
func run(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := Main(args, &out, &errb)
	return code, out.String(), errb.String()
}

// lastLine is the value eval prints.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

func TestEval(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"integer", []string{"eval", "1 + 2"}, "3"},
		{"real", []string{"eval", "7.0 / 2"}, "3.5"},
		{"string", []string{"eval", `strcat("ab", 1)`}, `"ab1"`},
		{"boolean", []string{"eval", `"abc" == "ABC"`}, "true"},
		{"undefined", []string{"eval", "Nope"}, "undefined"},
		{"error", []string{"eval", "5 / 0"}, "error"},
		{"list", []string{"eval", "{1, 2}"}, "{ 1,2 }"},
		{"words are joined", []string{"eval", "1", "+", "2"}, "3"},
		{"leading minus is the expression", []string{"eval", "-1", "+", "5"}, "4"},
		{"double dash", []string{"eval", "--", "-2"}, "-2"},
		{"my ad", []string{"eval", "--my", "[ Memory = 2048 ]", "Memory / 2"}, "1024"},
		{"my and target", []string{"eval", "--my=[ Want = 100 ]", "--target", "[ Memory = 200 ]", "TARGET.Memory > Want"}, "true"},
		{"no target", []string{"eval", "--my", "[ a = 1 ]", "TARGET.a"}, "undefined"},
		{"bare name reaches target", []string{"eval", "--target", "[ b = 5 ]", "b"}, "5"},
		{"options after the expression", []string{"eval", "TARGET.Memory > 1024", "--target", "[Memory = 2048]"}, "true"},
		{"strict", []string{"eval", "--strict", "--target", "[ b = 5 ]", "b"}, "undefined"},
		{"clock", []string{"eval", "--now", "86400", "time()"}, "86400"},
		{"format time", []string{"eval", "--now", "0", `formatTime(time(), "%Y")`}, `"1970"`},
		{"seeded random is repeatable", []string{"eval", "--seed", "42", "random(1000000) == random(1000000) || true"}, "true"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := run(tc.args...)
			if code != 0 || lastLine(out) != tc.want {
				t.Errorf("Main(%q) = %d, %q (stderr %q); want 0, %q", tc.args, code, out, errs, tc.want)
			}
		})
	}
	a, _, _ := run("eval", "--seed", "7", "random(1000000)")
	b, outA, _ := run("eval", "--seed", "7", "random(1000000)")
	_, outB, _ := run("eval", "--seed", "7", "random(1000000)")
	if a != 0 || b != 0 || outA != outB {
		t.Errorf("--seed is not repeatable: %q %q", outA, outB)
	}
}

func TestEvalAdFiles(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"new.ad":  "[ Memory = 2048; Name = \"slot1\" ]\n",
		"old.ad":  "# condor_q -long\nMemory = 2048\nName = \"slot1\"\n",
		"json.ad": "[\n{\n  \"Memory\": 2048,\n  \"Name\": \"slot1\"\n}\n]\n",
		"obj.ad":  `{"Memory": 2048, "Name": "slot1"}`,
	}
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		code, out, errs := run("eval", "--my", "@"+path, `strcat(Name, ":", Memory)`)
		if code != 0 || lastLine(out) != `"slot1:2048"` {
			t.Errorf("%s: %d %q %q", name, code, out, errs)
		}
	}
	two := filepath.Join(dir, "two.ad")
	os.WriteFile(two, []byte("A = 1\n\nA = 2\n"), 0o644)
	if code, _, errs := run("eval", "--my", "@"+two, "A"); code != 2 || !strings.Contains(errs, "found 2 ads") {
		t.Errorf("two ads: %d %q", code, errs)
	}
	if code, _, errs := run("eval", "--my", "@"+filepath.Join(dir, "missing"), "A"); code != 2 || !strings.Contains(errs, "read ad") {
		t.Errorf("missing file: %d %q", code, errs)
	}
	bad := filepath.Join(dir, "bad.ad")
	os.WriteFile(bad, []byte("A = 1\nB = (2\n"), 0o644)
	if code, _, errs := run("eval", "--my", "@"+bad, "A"); code != 2 || !strings.Contains(errs, "line 2") {
		t.Errorf("bad file: %d %q", code, errs)
	}
}

func TestEvalErrors(t *testing.T) {
	code, out, errs := run("eval", "Memory >= ")
	if code != 2 || out != "" || !strings.Contains(errs, `expression "Memory >= ": column 11: unexpected end of expression, expected an operand`) {
		t.Errorf("syntax error: %d %q %q", code, out, errs)
	}
	if code, _, errs := run("eval", "--my", "[ A = ", "1"); code != 2 || !strings.Contains(errs, "--my") {
		t.Errorf("bad --my: %d %q", code, errs)
	}
	if code, _, errs := run("eval"); code != 2 || !strings.Contains(errs, "needs an expression") {
		t.Errorf("no expression: %d %q", code, errs)
	}
	if code, _, errs := run("eval", "--my"); code != 2 || !strings.Contains(errs, "needs a value") {
		t.Errorf("--my without value: %d %q", code, errs)
	}
	if code, _, errs := run("eval", "--now", "soon", "1"); code != 2 || !strings.Contains(errs, "--now") {
		t.Errorf("bad --now: %d %q", code, errs)
	}
	code, out, errs = run("eval", "frob(1)")
	if code != 0 || lastLine(out) != "error" || !strings.Contains(errs, "unknown function frob()") {
		t.Errorf("unknown function: %d %q %q", code, out, errs)
	}
}

const jobAd = `[ JobVMType = "kvm"; JobVMMemory = 2048; RequestDisk = 1000; Owner = "alice";
  Rank = TARGET.Memory;
  Requirements = (TARGET.Arch == "X86_64") && (TARGET.HasVM =?= true) && (TARGET.VM_Type == MY.JobVMType) && (TARGET.VM_Memory >= MY.JobVMMemory) ]`

const machineAd = `[ Arch = "X86_64"; HasVM = true; VM_Type = "kvm"; VM_Memory = 4096; Memory = 8192;
  Requirements = TARGET.Owner != "mallory"; Rank = 1 ]`

func TestMatch(t *testing.T) {
	code, out, errs := run("match", jobAd, machineAd)
	if code != 0 || !strings.HasPrefix(out, "Job and machine match.") {
		t.Fatalf("match: %d %q %q", code, out, errs)
	}
	for _, want := range []string{
		"Job Requirements (MY = job, TARGET = machine): true, satisfied",
		`[1] true  (TARGET.Arch == "X86_64")`,
		"[4] true  (TARGET.VM_Memory >= MY.JobVMMemory)",
		"Machine Requirements (MY = machine, TARGET = job): true, satisfied",
		"Job Rank of the machine: 8192.0",
		"Machine Rank of the job: 1.0",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	small := strings.Replace(machineAd, "VM_Memory = 4096", "VM_Memory = 1024", 1)
	code, out, _ = run("match", jobAd, small)
	if code != 1 || !strings.HasPrefix(out, "Job and machine do not match.") {
		t.Fatalf("no match: %d %q", code, out)
	}
	for _, want := range []string{
		"Job Requirements (MY = job, TARGET = machine): false, NOT satisfied",
		"[4] false  (TARGET.VM_Memory >= MY.JobVMMemory)  <- fails",
		"[1] true   (TARGET.Arch == \"X86_64\")",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(out, "<- fails") != 1 {
		t.Errorf("want exactly one failing clause:\n%s", out)
	}

	refuses := strings.Replace(machineAd, `"mallory"`, `"alice"`, 1)
	code, out, _ = run("match", jobAd, refuses)
	if code != 1 || !strings.Contains(out, `[1] false  TARGET.Owner != "mallory"`) && !strings.Contains(out, `[1] false  TARGET.Owner != "alice"  <- fails`) {
		t.Errorf("machine refuses: %d\n%s", code, out)
	}

	code, out, _ = run("match", jobAd, "[ Arch = \"X86_64\" ]")
	if code != 1 || !strings.Contains(out, "Machine has no Requirements") {
		t.Errorf("no requirements: %d\n%s", code, out)
	}
}

func TestMatchUsage(t *testing.T) {
	if code, _, errs := run("match", jobAd); code != 2 || !strings.Contains(errs, "needs a job ad and a machine ad") {
		t.Errorf("one ad: %d %q", code, errs)
	}
	if code, _, errs := run("match", "[ A = ", machineAd); code != 2 || !strings.Contains(errs, "job ad") {
		t.Errorf("bad job ad: %d %q", code, errs)
	}
	if code, _, errs := run("match", "--my", "[]", jobAd, machineAd); code != 2 || !strings.Contains(errs, "takes no --my") {
		t.Errorf("--my on match: %d %q", code, errs)
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"--help"}, {"eval", "--help"}} {
		code, out, _ := run(args...)
		if code != 0 || !strings.Contains(out, "vmpool classad eval") {
			t.Errorf("%q: %d %q", args, code, out)
		}
	}
	code, out, errs := run()
	if code != 2 || out != "" || !strings.Contains(errs, "usage:") {
		t.Errorf("no args: %d %q %q", code, out, errs)
	}
	if code, _, errs := run("frobnicate"); code != 2 || !strings.Contains(errs, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: %d %q", code, errs)
	}
}
