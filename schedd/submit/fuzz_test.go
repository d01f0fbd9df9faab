package submit

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that no input makes Parse panic or hang, that a
// rejected file yields no cluster, and that every error says where.
// A plain `go test` runs the seeds in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	dir := fixtures(f)
	for _, base := range [][]string{kvmBase, xenBase, vmwareBase} {
		f.Add([]byte(edit(base)))
	}
	f.Add([]byte(edit(kvmBase, "executable = $(Item)_$(Process)", "queue 2 Item in (a, b)")))
	f.Add([]byte(edit(kvmBase, "queue disk, mem from (\n disk.img 512\n)", "vm_memory = $(mem)")))
	corpus, _ := filepath.Glob(filepath.Join("testdata", "errors", "*.sub"))
	for _, p := range corpus {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	known := map[string]bool{}
	for _, c := range Codes() {
		known[c.Code] = true
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		opt := Options{
			MaxProcs:  1000,
			Arch:      "X86_64",
			Owner:     "fuzz",
			Getenv:    func(n string) (string, bool) { return "v", n == "SET" },
			CheckExpr: rejectOperators,
		}
		c, err := Parse(filepath.Join(dir, "fuzz.sub"), bytes.NewReader(data), opt)
		if err == nil {
			if c == nil || len(c.Procs) == 0 || len(c.Procs) > opt.MaxProcs {
				t.Fatalf("accepted with %v", c)
			}
			for _, a := range c.Attrs {
				if a.Name == "" || a.Expr == "" {
					t.Fatalf("empty attribute %+v", a)
				}
			}
			return
		}
		if c != nil {
			t.Fatalf("rejected but returned a cluster")
		}
		if errors.Is(err, ErrNeedClusterID) {
			return
		}
		var es Errors
		if !errors.As(err, &es) || len(es) == 0 {
			t.Fatalf("error is %T, not Errors: %v", err, err)
		}
		for _, e := range es {
			if e.File == "" || e.Line < 1 || e.Msg == "" || e.Fix == "" || !known[e.Code] {
				t.Fatalf("error without place, message, fix or known code: %#v", e)
			}
		}
	})
}
