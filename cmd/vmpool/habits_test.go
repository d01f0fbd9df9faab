package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/vmpool/vmpool/vmimage"
)

// Tests of what an HTCondor user's habits and existing submit files meet:
// the condor_* flags typed daily and the submit language of real files.

// TestHoldBeforeLaterQueue: `hold = true` set between two queue statements
// holds the jobs of the later one (code 15, "submitted on hold at user's
// request"), as condor_submit does; the real submit queued them idle,
// while -dry-run showed them held.
func TestHoldBeforeLaterQueue(t *testing.T) {
	tp := newTestPool(t, 0)
	if err := vmimage.WriteHello(filepath.Join(tp.dir, "hello.img")); err != nil {
		t.Fatal(err)
	}
	sub := strings.Replace(helloSub, "queue", "queue 2\nhold = true\nqueue\nhold = false\nqueue", 1)
	tp.mustRun("submit", tp.write("hello.sub", sub))
	got := tp.mustRun("q", "-af:j", "JobStatus", "HoldReasonCode")
	want := "1.0 1 undefined\n1.1 1 undefined\n1.2 5 15\n1.3 1 undefined\n"
	if got != want {
		t.Fatalf("q -af:j JobStatus HoldReasonCode:\n%swant:\n%s", got, want)
	}
	// The reason is condor_submit's, as -dry-run shows it.
	if got := tp.mustRun("q", "1.2", "-af", "HoldReason"); got != "submitted on hold at user's request\n" {
		t.Fatalf("q 1.2 -af HoldReason: %q", got)
	}
}

// TestDocExamplesNoTrailingComments: a submit description or configuration
// file takes `#` as a comment only at the start of a line, as HTCondor's
// do; after a value it is part of the value. The README's first VM job
// had comments after its values, and submitting it as copied failed
// (vm_memory is incorrectly specified ("16    # MiB"), vm_disk has 7
// fields); the admin guide's TLS knobs took theirs into the paths.
func TestDocExamplesNoTrailingComments(t *testing.T) {
	assign := regexp.MustCompile(`^\s*[+A-Za-z][A-Za-z0-9_.]*\s*=\s*\S.*\s#`)
	docLines(t, docFiles(t), func(where, line, fence string) {
		// Plain blocks hold submit descriptions and configuration;
		// shell blocks' comments are the shell's.
		if (fence == "```" || fence == "```ini") && assign.MatchString(line) {
			t.Errorf("%s: a comment after a value becomes part of it; put it on its own line: %s", where, line)
		}
	})
}

// TestAutoformatUpperCaseLetter: condor_q -af:V quotes strings; the CLI
// lowercased the whole option, so -af:V was refused as an unknown 'v'.
func TestAutoformatUpperCaseLetter(t *testing.T) {
	tp := newTestPool(t, 0)
	if err := vmimage.WriteHello(filepath.Join(tp.dir, "hello.img")); err != nil {
		t.Fatal(err)
	}
	tp.mustRun("submit", tp.write("hello.sub", helloSub))
	for _, args := range [][]string{{"q", "-af:V", "Cmd"}, {"q", "-AF:jV", "Cmd"}, {"q", "-autoformat:V", "Cmd"}} {
		out, errOut, code := tp.vmpool(args...)
		want := `"hello_vm_job"` + "\n"
		if strings.Contains(args[1], "j") {
			want = "1.0 " + want
		}
		if code != 0 || out != want {
			t.Errorf("%v: exit %d, printed %q, want %q\n%s", args, code, out, want, errOut)
		}
	}
}

// TestSubmitUnwritableLog: a user log that cannot be written is refused at
// submit, as condor_submit refuses it (it opens the log); vmpool queued the
// job, ran it without a log, and condor_wait then had nothing to read.
// -dry-run does not create the log.
func TestSubmitUnwritableLog(t *testing.T) {
	tp := newTestPool(t, 0)
	if err := vmimage.WriteHello(filepath.Join(tp.dir, "hello.img")); err != nil {
		t.Fatal(err)
	}
	// /proc takes no new files, even from root.
	sub := tp.write("bad.sub", strings.Replace(helloSub, "log = hello.log", "log = /proc/vmpool-test.log", 1))
	_, errOut, code := tp.vmpool("submit", sub)
	if code == 0 || !strings.Contains(errOut, "bad.sub:3: log: log \"/proc/vmpool-test.log\" cannot be written: no such file or directory [log-invalid]") ||
		!strings.Contains(errOut, "nothing was queued") {
		t.Fatalf("submit with an unwritable log: exit %d\n%s", code, errOut)
	}
	if out := tp.mustRun("q", "-allusers", "-af", "ClusterId"); out != "" {
		t.Fatalf("a job was queued: %q", out)
	}
	good := tp.write("good.sub", helloSub)
	tp.mustRun("submit", "-dry-run", filepath.Join(tp.dir, "ads"), good)
	if _, err := os.Stat(filepath.Join(tp.dir, "hello.log")); !os.IsNotExist(err) {
		t.Fatalf("-dry-run created the log: %v", err)
	}
	tp.mustRun("submit", good)
	if _, err := os.Stat(filepath.Join(tp.dir, "hello.log")); err != nil {
		t.Fatalf("the log of a queued job: %v", err)
	}
}

// TestRejectedSubmitLeavesNoLog: submit opens the user log (creating it)
// to see that it can be written; a submit that then queued nothing (a
// problem in the description, no pool to take it) left an empty log file
// behind, which condor_wait and tools then read as a job's. One that was
// there before is left alone.
func TestRejectedSubmitLeavesNoLog(t *testing.T) {
	dir := t.TempDir()
	if err := vmimage.WriteHello(filepath.Join(dir, "hello.img")); err != nil {
		t.Fatal(err)
	}
	run := func(name, src string) string {
		t.Helper()
		sub := filepath.Join(dir, name)
		if err := os.WriteFile(sub, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		var out, errb bytes.Buffer
		c := &cli{stdout: &out, stderr: &errb, stdin: strings.NewReader(""), getenv: func(k string) string {
			if k == "VMPOOL_URL" {
				return "nats://127.0.0.1:1" // no pool
			}
			return ""
		}}
		if code := c.main(t.Context(), []string{"vmpool", "submit", sub}); code == 0 || !strings.Contains(errb.String(), "nothing was queued") && !strings.Contains(errb.String(), "no vmpool answers") {
			t.Fatalf("submit %s: exit %d\n%s", name, code, errb.String())
		}
		return errb.String()
	}
	// A problem in the description.
	run("bad.sub", strings.Replace(strings.Replace(helloSub, "log = hello.log", "log = bad.log", 1), "transfer_input_files = hello.img", "transfer_input_files = hello.img, nothere.img", 1))
	// No pool to take it.
	run("nopool.sub", strings.Replace(helloSub, "log = hello.log", "log = nopool.log", 1))
	for _, name := range []string{"bad.log", "nopool.log"} {
		if _, err := os.Stat(filepath.Join(dir, name)); !os.IsNotExist(err) {
			t.Errorf("%s is left behind by a submit that queued nothing: %v", name, err)
		}
	}
	// A log that was there (empty, as a user may make it) stays.
	if err := os.WriteFile(filepath.Join(dir, "hello.log"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	run("mine.sub", helloSub)
	if _, err := os.Stat(filepath.Join(dir, "hello.log")); err != nil {
		t.Errorf("the user's own log was removed: %v", err)
	}
}

// TestDocCommandsAndOptionsExist: every `vmpool COMMAND` (or condor_*
// link) the README and docs show, in shell blocks and inline code, is a
// command of vmpool help, and every option given to it there is one its
// help names (or the start of one, as HTCondor's tools take them
// abbreviated). The docs named options the help lacked (--creds,
// --cluster, config -v) and the help named options the docs never did.
func TestDocCommandsAndOptionsExist(t *testing.T) {
	files := docFiles(t)
	// The options each command's help names, without their dashes (-pool
	// and --pool are one option).
	helpOpt := regexp.MustCompile(`(?:^|[\s\[|(,])--?([a-z][a-z-]*)`)
	help := map[string]map[string]bool{}
	for _, cmd := range commands {
		out, _, _ := runCLI(t.Context(), "", "help", cmd.name)
		help[cmd.name] = map[string]bool{}
		for _, m := range helpOpt.FindAllStringSubmatch(out, -1) {
			help[cmd.name][m[1]] = true
		}
	}
	use := regexp.MustCompile(`(?:^|[\s(\x60])(?:\./)?(vmpool|condor_[a-z_]+) ([a-z][a-z-]*|-[a-z-]+)`)
	quoted := regexp.MustCompile(`'[^']*'|"[^"]*"`)
	option := regexp.MustCompile(`^\[?(--?[a-z][a-z-]*)`)
	var checked int
	shown := map[string]bool{}
	check := func(where, code string) {
		for _, m := range use.FindAllStringSubmatchIndex(code, -1) {
			tool, word := code[m[2]:m[3]], code[m[4]:m[5]]
			cmd := word
			if tool != "vmpool" {
				sub, ok := condorNames[tool]
				if !ok || strings.HasSuffix(where[:strings.LastIndex(where, ":")], "htcondor-compat.md") {
					continue // an HTCondor tool vmpool does not answer to, or HTCondor's own options
				}
				cmd = sub
			} else if _, ok := help[cmd]; !ok {
				t.Errorf("%s: `vmpool %s` is not a command of vmpool help", where, cmd)
				continue
			}
			shown[cmd] = true
			if cmd == "emulate" {
				continue // what follows is xl's or vmrun's
			}
			rest := code[m[3]:]
			if tool == "vmpool" {
				rest = code[m[5]:]
			}
			if i := strings.IndexAny(rest, "#|;&>`"); i >= 0 {
				rest = rest[:i]
			}
			for _, f := range strings.Fields(quoted.ReplaceAllString(rest, "")) {
				o := option.FindStringSubmatch(f)
				if o == nil {
					continue
				}
				checked++
				if help[cmd][strings.TrimLeft(o[1], "-")] {
					continue
				}
				t.Errorf("%s: vmpool %s %s: vmpool help %s names no such option", where, cmd, o[1], cmd)
			}
		}
	}
	inline := regexp.MustCompile("`[^`]+`")
	docLines(t, files, func(where, line, fence string) {
		switch fence {
		case "```sh":
			check(where, line)
		case "":
			for _, span := range inline.FindAllString(line, -1) {
				// A span that starts on one line and ends on the next
				// pairs the backticks wrongly; commands start spans.
				if strings.HasPrefix(span, "`vmpool ") || strings.HasPrefix(span, "`./vmpool ") || strings.HasPrefix(span, "`condor_") {
					check(where, span)
				}
			}
		}
	})
	if checked < 100 {
		t.Fatalf("only %d options found after commands in the docs: the test no longer reads them", checked)
	}
	// And the other way: every command of vmpool help is shown in the docs,
	// and every option a command's help names is in them.
	for _, cmd := range commands {
		if !shown[cmd.name] {
			t.Errorf("vmpool %s is in vmpool help but no doc shows it", cmd.name)
		}
	}
	var all strings.Builder
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all.Write(b)
	}
	for _, cmd := range commands {
		for o := range help[cmd.name] {
			if o == "h" || o == "help" {
				continue
			}
			if !regexp.MustCompile(`(?:^|[^a-z-])--?` + regexp.QuoteMeta(o) + `(?:[^a-z-]|$)`).MatchString(all.String()) {
				t.Errorf("vmpool help %s names -%s, which neither the README nor docs/ mention", cmd.name, o)
			}
		}
	}
}

// TestDocKnobsExist: every knob the README and docs set, in a
// configuration block (`NAME = value`) or with --set NAME=VALUE, is one of
// the Knobs table (docs/config.md): an unknown one only draws vmpool's
// "is not a vmpool knob ... it does nothing" warning.
func TestDocKnobsExist(t *testing.T) {
	files := docFiles(t)
	known := map[string]bool{}
	for _, k := range Knobs {
		known[k.Name] = true
	}
	assign := regexp.MustCompile(`^\s*([A-Z][A-Z0-9_]*)\s*=`)
	set := regexp.MustCompile(`--set[ =]([A-Z][A-Z0-9_]*)=`)
	inlineAssign := regexp.MustCompile("`([A-Z][A-Z0-9_]*) = [^`]+`")
	seen := 0
	docLines(t, files, func(where, line, fence string) {
		var names []string
		if fence == "```" || fence == "```ini" {
			if m := assign.FindStringSubmatch(line); m != nil {
				names = append(names, m[1])
			}
		}
		for _, m := range set.FindAllStringSubmatch(line, -1) {
			names = append(names, m[1])
		}
		if fence == "" {
			for _, m := range inlineAssign.FindAllStringSubmatch(line, -1) {
				names = append(names, m[1])
			}
		}
		for _, n := range names {
			seen++
			if !known[n] && n != "KNOB" && n != "NAME" {
				t.Errorf("%s: %s is not a vmpool knob (docs/config.md lists them)", where, n)
			}
		}
	})
	if seen < 20 {
		t.Fatalf("only %d knobs set in the docs: the test no longer finds them", seen)
	}
}

// TestDocLinksAndPathsExist: every relative link of the README and docs
// leads to a file (and its #anchor to a heading of it), and every source
// path they name in code (`events/auth.go`, `startd/hypervisor/{xen,vmware}`)
// is in the repository, so a renamed file or heading is caught here.
func TestDocLinksAndPathsExist(t *testing.T) {
	root := filepath.Join("..", "..")
	files := docFiles(t)
	link := regexp.MustCompile(`\]\(([^)#\s]*)(?:#([^)\s]+))?\)`)
	path := regexp.MustCompile("`((?:events|schedd|negotiator|startd|classad|vmimage|cmd|scripts|docs)/[A-Za-z0-9_./{},-]*)`")
	brace := regexp.MustCompile(`\{([^}]*)\}`)
	slug := func(heading string) string {
		s := strings.ToLower(strings.TrimSpace(heading))
		s = regexp.MustCompile(`[^a-z0-9 _-]`).ReplaceAllString(s, "")
		return strings.ReplaceAll(s, " ", "-")
	}
	anchors := func(file string) map[string]bool {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil
		}
		m := map[string]bool{}
		for _, line := range strings.Split(string(b), "\n") {
			if h := strings.TrimLeft(line, "#"); h != line && strings.HasPrefix(h, " ") {
				m[slug(h)] = true
			}
		}
		return m
	}
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range link.FindAllStringSubmatch(string(b), -1) {
			target, anchor := m[1], m[2]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			n++
			dest := f
			if target != "" {
				dest = filepath.Join(filepath.Dir(f), target)
				if _, err := os.Stat(dest); err != nil {
					t.Errorf("%s: link to %s: %v", f, target, err)
					continue
				}
			}
			if anchor != "" && !anchors(dest)[anchor] {
				t.Errorf("%s: link to %s#%s: no such heading", f, target, anchor)
			}
		}
		for _, m := range path.FindAllStringSubmatch(string(b), -1) {
			p := m[1]
			paths := []string{p}
			if bm := brace.FindStringSubmatchIndex(p); bm != nil {
				paths = nil
				for _, alt := range strings.Split(p[bm[2]:bm[3]], ",") {
					paths = append(paths, p[:bm[0]]+alt+p[bm[1]:])
				}
			}
			for _, p := range paths {
				n++
				if _, err := os.Stat(filepath.Join(root, p)); err != nil {
					t.Errorf("%s: names %s, which is not in the repository", f, p)
				}
			}
		}
	}
	if n < 30 {
		t.Fatalf("only %d links and paths found: the test no longer reads them", n)
	}
}

// TestDocSeparateDaemonsHaveCredentials: where the README, the docs or
// the Procfile start `vmpool nats` with POOL_DAEMONS and daemons beside
// it, every daemon started there is named in POOL_DAEMONS: one that is not
// gets no credentials and is refused ("this schedd has no credentials").
// The README's separate daemons named none, and failed as printed.
func TestDocSeparateDaemonsHaveCredentials(t *testing.T) {
	root := filepath.Join("..", "..")
	files := append(docFiles(t), filepath.Join(root, "Procfile"))
	daemon := regexp.MustCompile(`\bvmpool (schedd|negotiator|startd)\b(.*)`)
	nameOpt := regexp.MustCompile(`--name[ =](\S+)`)
	natsLine := regexp.MustCompile(`\bvmpool nats\b`)
	defaults := map[string]string{"schedd": "schedd", "negotiator": "negotiator", "startd": "startd1"}
	blocks := 0
	check := func(where string, lines []string) {
		var nats string
		for _, l := range lines {
			if natsLine.MatchString(l) {
				nats = l
			}
		}
		if nats == "" {
			return
		}
		blocks++
		listed := map[string]bool{}
		if _, v, ok := strings.Cut(nats, "POOL_DAEMONS="); ok {
			for _, d := range strings.Split(strings.Fields(v)[0], ",") {
				listed[strings.TrimSpace(d)] = true
			}
		}
		for _, l := range lines {
			m := daemon.FindStringSubmatch(l)
			if m == nil {
				continue
			}
			name := defaults[m[1]]
			if n := nameOpt.FindStringSubmatch(m[2]); n != nil {
				name = n[1]
			}
			if !listed[m[1]+"-"+name] {
				t.Errorf("%s: %s %s is started beside `%s`, whose POOL_DAEMONS does not name %s-%s: it gets no credentials", where, m[1], name, strings.TrimSpace(nats), m[1], name)
			}
		}
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(f, "Procfile") {
			check(f, strings.Split(string(b), "\n"))
			continue
		}
		var block []string
		in := false
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "```") {
				if in {
					// A continued line (\) is one command.
					check(f, strings.Split(strings.ReplaceAll(strings.Join(block, "\n"), "\\\n", " "), "\n"))
				}
				in, block = !in, nil
				continue
			}
			if in {
				block = append(block, line)
			}
		}
	}
	if blocks < 3 {
		t.Fatalf("only %d separate-daemon examples found (README, admin guide, Procfile): the test no longer finds them", blocks)
	}
}

// docFiles are the README and docs/*.md, as the doc tests read them.
func docFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "..", "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	return append(files, filepath.Join("..", "..", "README.md"))
}

// docLines calls fn with every line of files but the fences themselves,
// where it is (FILE:LINE) and the fence of the block it is in: "" outside
// any, "```" in a plain block, "```sh" in a shell block.
func docLines(t *testing.T, files []string, fn func(where, line, fence string)) {
	t.Helper()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		fence := ""
		for i, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "```") {
				if fence == "" {
					fence = "```" + strings.TrimPrefix(line, "```") // the block's language, if any
				} else {
					fence = ""
				}
				continue
			}
			fn(fmt.Sprintf("%s:%d", f, i+1), line, fence)
		}
	}
}
