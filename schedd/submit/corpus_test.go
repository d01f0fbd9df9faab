package submit

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/errors from the check cases")

// corpusExempt are codes without a corpus file, and why.
var corpusExempt = map[string]string{
	"file-too-large": "a 16 MiB file does not belong in the repository; TestChecks covers it",
}

// The first line of a corpus file states what it expects:
//
//	# vmpool check CODE at line N [options: queue=ARGS paths=confined maxprocs=N]
const corpusHeader = "# vmpool check "

// TestErrorCorpus parses every testdata/errors/CODE.sub in a submit
// directory with the test fixtures and expects it to be rejected with CODE
// at the line its header names, in a message that names file, line and fix.
func TestErrorCorpus(t *testing.T) {
	if *update {
		writeCorpus(t)
	}
	files, err := filepath.Glob(filepath.Join("testdata", "errors", "*.sub"))
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	dir := fixtures(t)
	for _, f := range files {
		code := strings.TrimSuffix(filepath.Base(f), ".sub")
		have[code] = true
		t.Run(code, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			line, opt := corpusExpectation(t, string(data))
			path := filepath.Join(dir, code+".sub")
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			opt.Getenv = func(string) (string, bool) { return "", false }
			opt.Arch = "X86_64"
			c, err := ParseFile(path, opt)
			if c != nil || err == nil {
				t.Fatalf("accepted")
			}
			e := hasCode(err, code)
			if e == nil {
				t.Fatalf("want %s, got\n%v", code, err)
			}
			if e.Line != line {
				t.Errorf("line %d, want %d: %v", e.Line, line, e)
			}
			msg := e.Error()
			if !strings.HasPrefix(msg, fmt.Sprintf("%s:%d: ", path, line)) || !strings.Contains(msg, "; fix: ") || !strings.Contains(msg, "["+code+"]") {
				t.Errorf("message does not name file, line, code and fix: %s", msg)
			}
		})
	}
	for _, c := range Codes() {
		if !have[c.Code] && corpusExempt[c.Code] == "" {
			t.Errorf("no testdata/errors/%s.sub", c.Code)
		}
	}
}

func corpusExpectation(t *testing.T, data string) (int, Options) {
	t.Helper()
	first, _, _ := strings.Cut(data, "\n")
	if !strings.HasPrefix(first, corpusHeader) {
		t.Fatalf("first line %q is not %q...", first, corpusHeader)
	}
	fields := strings.Fields(strings.TrimPrefix(first, corpusHeader))
	if len(fields) < 4 || fields[1] != "at" || fields[2] != "line" {
		t.Fatalf("bad header %q", first)
	}
	line, err := strconv.Atoi(fields[3])
	if err != nil {
		t.Fatalf("bad header %q", first)
	}
	var opt Options
	for _, f := range fields[4:] {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "options:":
		case "queue":
			opt.Queue = strings.ReplaceAll(v, "_", " ")
		case "paths":
			if v == "confined" {
				opt.Paths = PathsConfined
			}
		case "maxprocs":
			opt.MaxProcs, _ = strconv.Atoi(v)
		case "checkexpr":
			opt.CheckExpr = rejectOperators
		default:
			t.Fatalf("unknown option %q", f)
		}
	}
	return line, opt
}

// writeCorpus writes one file per code from the first check case with it.
func writeCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "errors")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	done := map[string]bool{}
	var codes []string
	for _, tc := range checkCases() {
		if done[tc.code] || corpusExempt[tc.code] != "" {
			continue
		}
		src := tc.src
		var opts []string
		switch tc.name {
		case "absolute confined":
			src = edit(kvmBase, "transfer_input_files = disk.img, /nonexistent-vmpool/secret.img")
			opts = append(opts, "paths=confined")
		case "queue twice":
			opts = append(opts, "queue=3")
		}
		if tc.opt != nil && len(opts) == 0 {
			continue // needs options the header cannot say; a later case may do
		}
		done[tc.code] = true
		codes = append(codes, tc.code)
		header := fmt.Sprintf("%s%s at line %d", corpusHeader, tc.code, tc.line+1)
		if len(opts) > 0 {
			header += " options: " + strings.Join(opts, " ")
		}
		var b strings.Builder
		w := bufio.NewWriter(&b)
		fmt.Fprintln(w, header)
		w.WriteString(src)
		w.Flush()
		if err := os.WriteFile(filepath.Join(dir, tc.code+".sub"), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sort.Strings(codes)
	t.Logf("wrote %d corpus files", len(codes))
}
