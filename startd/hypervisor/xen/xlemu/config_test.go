package xlemu

import (
	"errors"
	"strings"
	"testing"
)

// TestParseDomainRejects: configurations xl refuses, refused with xl's
// kind of message.
func TestParseDomainRejects(t *testing.T) {
	base := "name = \"d\"\nmemory = 16\nbootloader = \"pygrub\"\ndisk = [ 'format=raw, vdev=xvda, access=rw, target=/img' ]\n"
	cases := []struct {
		name, cfg, want string
		parse           bool // a syntax error (ParseError)
	}{
		{"no equals", "name \"d\"\n", "expecting '='", true},
		{"unterminated string", "name = \"d\n", "unterminated string", true},
		{"two values", "name = \"d\" \"e\"\n", "expecting NEWLINE or ';'", true},
		{"bad character", "name = @\n", "unexpected character", true},
		{"list for a string", strings.Replace(base, `name = "d"`, `name = [ "d" ]`, 1), "expecting a string", true},
		{"memory not a number", strings.Replace(base, "memory = 16", `memory = "lots"`, 1), "not a valid number", true},
		{"no name", strings.Replace(base, "name = \"d\"\n", "", 1), "Domain name must be specified.", false},
		{"bad type", base + "type = \"kvm\"\n", "Invalid domain type kvm.", false},
		{"builder against type", base + "type = \"pv\"\nbuilder = \"hvm\"\n", "Contradicting", false},
		{"bad on_poweroff", base + "on_poweroff = \"explode\"\n", "Unknown on_poweroff action \"explode\" specified", false},
		{"no kernel nor bootloader", strings.Replace(base, "bootloader = \"pygrub\"\n", "", 1), "Neither kernel nor bootloader specified", false},
		{"bad vdev", strings.Replace(base, "vdev=xvda", "vdev=floppy", 1), "Invalid or unsupported virtual disk identifier floppy", false},
		{"bad access", strings.Replace(base, "access=rw", "access=x", 1), "invalid access mode", false},
		{"bad format", strings.Replace(base, "format=raw", "format=zip", 1), "unknown format", false},
		{"bad mac", base + "vif = [ 'mac=zz:00' ]\n", "Invalid mac address", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseDomain("d.cfg", tc.cfg, nil, "/")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ParseDomain = %v, want an error with %q", err, tc.want)
			}
			var pe *ParseError
			if errors.As(err, &pe) != tc.parse {
				t.Fatalf("ParseDomain = %T %v; syntax error %v", err, err, tc.parse)
			}
		})
	}
}

// TestParseDomainForms: the disk specification's forms, lists over lines,
// ';' separators, comments and command-line overrides.
func TestParseDomainForms(t *testing.T) {
	cfg := `# a comment
name = "guest"; memory = 0x20
type = 'hvm'
disk = [
  'file:/imgs/a.img,hda,w',            # legacy
  '/imgs/b.qcow2,qcow2,hdb,r',         # positional
  'vdev=hdc, devtype=cdrom, format=raw, target=/imgs/c,d.iso',
]
vif = [ 'mac=00:16:3e:00:00:01, bridge=xenbr0' ]
`
	d, err := ParseDomain("g.cfg", cfg, []string{"vcpus=2", `name="renamed"`}, "/")
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "renamed" || d.MemoryMiB != 32 || d.VCPUs != 2 || d.Type != "hvm" || d.OnPoweroff != "destroy" || d.OnCrash != "destroy" {
		t.Errorf("domain %+v", d)
	}
	want := []Disk{
		{Target: "/imgs/a.img", Format: "raw", Vdev: "hda", Writable: true},
		{Target: "/imgs/b.qcow2", Format: "qcow2", Vdev: "hdb"},
		{Target: "/imgs/c,d.iso", Format: "raw", Vdev: "hdc", CDROM: true},
	}
	if len(d.Disks) != len(want) {
		t.Fatalf("disks %+v", d.Disks)
	}
	for i := range want {
		if d.Disks[i] != want[i] {
			t.Errorf("disk %d = %+v, want %+v", i, d.Disks[i], want[i])
		}
	}
	if len(d.Vifs) != 1 || d.Vifs[0].MAC != "00:16:3e:00:00:01" || d.Vifs[0].Bridge != "xenbr0" {
		t.Errorf("vifs %+v", d.Vifs)
	}
}
