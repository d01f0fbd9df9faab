package emuvm

import (
	"archive/tar"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestPackUnpack(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	for name, data := range map[string]string{"memory.state": "mem", "checkpoint.json": "{}"} {
		if err := os.WriteFile(filepath.Join(src, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(t.TempDir(), "save")
	if err := Pack(file, "MAGIC\n", src, []string{"memory.state", "checkpoint.json"}); err != nil {
		t.Fatal(err)
	}
	names, err := Unpack(file, "MAGIC\n", dst)
	if err != nil || len(names) != 2 {
		t.Fatalf("Unpack = %v, %v", names, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "memory.state")); string(b) != "mem" {
		t.Fatalf("unpacked %q", b)
	}
	if _, err := Unpack(file, "OTHER\n", t.TempDir()); !errors.Is(err, ErrBadMagic) {
		t.Fatalf("Unpack with another magic = %v", err)
	}
	if err := Pack(file, "MAGIC\n", src, []string{"../escape"}); err == nil {
		t.Fatal("Pack took a path")
	}
	// A hostile file naming a path outside the dir is refused.
	evil := filepath.Join(t.TempDir(), "evil")
	f, _ := os.Create(evil)
	f.WriteString("MAGIC\n")
	tw := tar.NewWriter(f)
	tw.WriteHeader(&tar.Header{Name: "../x", Mode: 0o600, Size: 1, Typeflag: tar.TypeReg})
	tw.Write([]byte("x"))
	tw.Close()
	f.Close()
	if _, err := Unpack(evil, "MAGIC\n", t.TempDir()); err == nil {
		t.Fatal("Unpack wrote outside its dir")
	}
}

func TestValidKey(t *testing.T) {
	for key, ok := range map[string]bool{"vmpool-abc": true, "a.b_c-1": true, "": false, ".hidden": false, "-x": false, "a/b": false, "a b": false} {
		if ValidKey(key) != ok {
			t.Errorf("ValidKey(%q) = %v", key, !ok)
		}
	}
}
