package main

import (
	"go/ast"
	"go/parser"
	gotoken "go/token"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// The architecture's promises (docs/architecture.md), checked on the
// source: imports point down, never up or sideways, and a daemon's core
// (Apply, Decide) reads no clock, random source, file, environment or
// logger, so that a replay repeats exactly what the daemon did.

const module = "github.com/vmpool/vmpool"

// parsedFile is one non-test Go file of the module.
type parsedFile struct {
	pkg     string // import path of its package
	path    string // relative to the module root
	file    *ast.File
	imports []string
}

func moduleFiles(t *testing.T) []parsedFile {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found from cmd/vmpool: %v", err)
	}
	var out []parsedFile
	fset := gotoken.NewFileSet()
	err = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); p != root && (strings.HasPrefix(name, ".") || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.ImportsOnly|parser.ParseComments)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		pf := parsedFile{pkg: module + "/" + filepath.ToSlash(filepath.Dir(rel)), path: filepath.ToSlash(rel), file: f}
		for _, im := range f.Imports {
			v, _ := strconv.Unquote(im.Path.Value)
			pf.imports = append(pf.imports, v)
		}
		out = append(out, pf)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < 50 {
		t.Fatalf("found only %d Go files under %s", len(out), root)
	}
	return out
}

// importRule says which of the module's packages a package may import.
type importRule struct {
	pkg string // a package, and with sub its subpackages
	sub bool
	may []string // module packages it may import, with their subpackages
}

// allowedImports are the rules; the most specific one applies.
var allowedImports = []importRule{
	{pkg: "classad", may: nil},
	{pkg: "events", sub: true, may: []string{"classad", "events"}},
	{pkg: "vmimage", sub: true, may: []string{"vmimage"}},
	{pkg: "schedd", sub: true, may: []string{"classad", "events", "schedd"}},
	{pkg: "negotiator", sub: true, may: []string{"classad", "events"}},
	{pkg: "startd/hypervisor", sub: true, may: []string{"startd/hypervisor", "vmimage"}},
	{pkg: "startd", may: []string{"classad", "events", "startd/hypervisor"}},
}

func TestImportsPointDown(t *testing.T) {
	files := moduleFiles(t)
	checked := 0
	for _, f := range files {
		rel := strings.TrimPrefix(f.pkg, module+"/")
		if strings.HasPrefix(rel, "cmd/") {
			continue // cmd/vmpool wires everything
		}
		// The most specific rule wins (startd/hypervisor before startd).
		best := -1
		for i, r := range allowedImports {
			if rel == r.pkg || r.sub && strings.HasPrefix(rel, r.pkg+"/") {
				if best < 0 || len(r.pkg) > len(allowedImports[best].pkg) {
					best = i
				}
			}
		}
		if best < 0 {
			t.Errorf("%s: package %s has no import rule; add one to allowedImports", f.path, rel)
			continue
		}
		rule := allowedImports[best]
		for _, im := range f.imports {
			if !strings.HasPrefix(im, module+"/") {
				continue
			}
			target := strings.TrimPrefix(im, module+"/")
			ok := false
			for _, m := range rule.may {
				if target == m || strings.HasPrefix(target, m+"/") {
					ok = true
				}
			}
			if strings.HasPrefix(target, "cmd/") {
				ok = false
			}
			if !ok {
				t.Errorf("%s: %s imports %s, which points up or sideways (it may import: %s)", f.path, rel, target, strings.Join(rule.may, ", "))
			}
			checked++
		}
	}
	if checked == 0 {
		t.Fatal("no module import was checked")
	}
}

// coreFiles are the pure cores: state, Apply and Decide of each daemon.
var coreFiles = []string{
	"schedd/apply.go", "schedd/decide.go", "schedd/queue.go", "schedd/policy.go", "schedd/ad.go", "schedd/timeline.go",
	"startd/decide.go", "startd/state.go", "startd/ad.go", "startd/vmspec.go",
	"negotiator/cycle.go", "negotiator/state.go",
}

// coreImports are the standard packages a core may use: none reads the
// clock, a random source, a file, the environment or logs.
var coreImports = map[string]bool{
	"fmt": true, "strings": true, "strconv": true, "sort": true, "slices": true, "maps": true, "errors": true,
	"math": true, "time": true, "encoding/json": true, "crypto/sha256": true, "encoding/hex": true, "path/filepath": true,
	"unicode": true, "unicode/utf8": true, "bytes": true, "cmp": true,
	"container/heap": true, // a data structure: no I/O, no clock, deterministic
}

// impureCalls are the package functions a core must not call, even from
// an allowed package.
var impureCalls = map[string]bool{
	"time.Now": true, "time.Since": true, "time.Until": true, "time.Sleep": true, "time.After": true, "time.Tick": true,
	"time.NewTimer": true, "time.NewTicker": true, "time.AfterFunc": true, "filepath.Abs": true, "filepath.Glob": true,
	"filepath.EvalSymlinks": true, "filepath.Walk": true, "filepath.WalkDir": true,
}

func TestCoresArePure(t *testing.T) {
	root, _ := filepath.Abs("../..")
	fset := gotoken.NewFileSet()
	calls := 0
	for _, rel := range coreFiles {
		f, err := parser.ParseFile(fset, filepath.Join(root, rel), nil, 0)
		if err != nil {
			t.Fatalf("core file %s: %v (update coreFiles if it moved)", rel, err)
		}
		local := map[string]string{} // import name -> path
		for _, im := range f.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			name := filepath.Base(p)
			if im.Name != nil {
				name = im.Name.Name
			}
			local[name] = p
			if !strings.HasPrefix(p, module+"/") && !coreImports[p] {
				t.Errorf("%s imports %q: a core may use only %s and the module's own packages", rel, p, strings.Join(sortedKeys(coreImports), ", "))
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			sel, ok := n.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			id, ok := sel.X.(*ast.Ident)
			if !ok {
				return true
			}
			p, ok := local[id.Name]
			if !ok {
				return true
			}
			calls++
			if name := p + "." + sel.Sel.Name; impureCalls[name] {
				t.Errorf("%s: %s uses %s: the shell stamps time and reads files, the core gets them in its input", rel, fset.Position(sel.Pos()), name)
			}
			return true
		})
	}
	if calls == 0 {
		t.Fatal("no package selector seen in the core files")
	}
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
