package startd

import (
	"strings"
	"testing"

	"github.com/vmpool/vmpool/classad"
	"github.com/vmpool/vmpool/events"
)

// A job ad parsed in two parts (StaticAt) reads as the ad parsed whole;
// the cluster part is parsed once for the claims of all its procs; a
// StaticAt that does not name a boundary, parts that do not parse, and
// parts that both name an attribute fall back to the whole ad.
func TestParseJobAdInParts(t *testing.T) {
	shared := `Cmd = "vm; \"x\""; Requirements = TARGET.Memory >= MY.JobVMMemory && ProcId >= 0; Nested = [ a = 1; b = 2 ] ]`
	var c sharedAds
	var first *classad.Ad
	for proc := range 3 {
		own := `[ ProcId = ` + itoa(proc) + `; Owner = "alice"; JobVMMemory = ` + itoa(32*(proc+1)) + `; `
		text := own + shared
		whole, err := classad.ParseAd(text)
		if err != nil {
			t.Fatal(err)
		}
		req := events.ClaimRequest{JobAd: text, StaticAt: len(own)}
		got, err := c.parseJobAd(req)
		if err != nil {
			t.Fatalf("proc %d: %v", proc, err)
		}
		if got.Parent() == nil {
			t.Fatalf("proc %d: parsed whole, want in two parts", proc)
		}
		if first == nil {
			first = got.Parent()
		} else if got.Parent() != first {
			t.Errorf("proc %d: the cluster part was parsed again", proc)
		}
		if flat := got.Flatten(); !flat.Equal(whole) || flat.String() != whole.String() {
			t.Errorf("proc %d: in parts\n%s\nwhole\n%s", proc, flat, whole)
		}
		if m, _ := got.EvalInt("JobVMMemory"); m != int64(32*(proc+1)) {
			t.Errorf("proc %d: JobVMMemory %d, want the proc's own", proc, m)
		}
		// Offsets that name no boundary: the whole ad.
		for _, at := range []int{-1, 1, 2, len(own) - 1, len(own) + 3, strings.Index(text, "x\\"), strings.Index(text, "b = 2"), len(text), len(text) + 5} {
			req.StaticAt = at
			got, err := c.parseJobAd(req)
			if err != nil {
				t.Fatalf("proc %d, StaticAt %d: %v", proc, at, err)
			}
			if flat := got.Flatten(); !flat.Equal(whole) {
				t.Errorf("proc %d, StaticAt %d: read\n%s\nwant\n%s", proc, at, flat, whole)
			}
		}
	}
	if _, err := c.parseJobAd(events.ClaimRequest{JobAd: "[ A = ; B = 1 ]", StaticAt: 9}); err == nil {
		t.Error("a job ad that does not parse was taken")
	}
	// An attribute in both parts: the whole ad's later one wins.
	text := `[ JobVMMemory = 64; ProcId = 1; JobVMMemory = 16; Cmd = "x" ]`
	got, err := c.parseJobAd(events.ClaimRequest{JobAd: text, StaticAt: strings.Index(text, "JobVMMemory = 16")})
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := got.EvalInt("JobVMMemory"); m != 16 || got.Parent() != nil {
		t.Errorf("an attribute in both parts: JobVMMemory %d (parts chained: %v), want 16 read whole", m, got.Parent() != nil)
	}
}
