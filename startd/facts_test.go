package startd

import (
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vmpool/vmpool/startd/hypervisor"
)

func readLoadAvg(t *testing.T) float64 {
	t.Helper()
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		t.Fatal(err)
	}
	v, err := strconv.ParseFloat(strings.Fields(string(b))[0], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestHostLoadAvg: the ads' LoadAvg is the host's, read once a second for
// every startd of the process.
func TestHostLoadAvg(t *testing.T) {
	for try := 0; ; try++ {
		hostLoad.mu.Lock()
		hostLoad.at = time.Time{}
		hostLoad.mu.Unlock()
		before := readLoadAvg(t)
		got := hostLoadAvg()
		after := readLoadAvg(t)
		if got == before || got == after {
			break
		}
		if try == 3 { // the kernel updates it every 5 s: not four times in a row
			t.Fatalf("hostLoadAvg %v, /proc/loadavg %v then %v", got, before, after)
		}
	}
	hostLoad.mu.Lock()
	hostLoad.at, hostLoad.avg = time.Now(), -1
	hostLoad.mu.Unlock()
	if got := hostLoadAvg(); got != -1 {
		t.Fatalf("read again within the second: %v", got)
	}
	hostLoad.mu.Lock()
	hostLoad.at = time.Now().Add(-time.Second)
	hostLoad.mu.Unlock()
	if got := hostLoadAvg(); got < 0 {
		t.Fatalf("not read again after a second: %v", got)
	}
}

// TestSameMachine: two measurements render the same ads unless a field
// other than the volatile ones (LoadAvg, DiskKiB, LastHeardFrom) differs;
// every field of Facts and of its Fingerprint is tried, so a field added
// later and not compared fails here.
func TestSameMachine(t *testing.T) {
	base := func() Facts {
		return Facts{Host: "h", Arch: "X86_64", OpSys: "LINUX", TotalMemory: 4096, Cpus: 2, DiskKiB: 10, LoadAvg: 0.5,
			StartTime: 100, LastHeardFrom: 200,
			Fingerprint: hypervisor.Fingerprint{Type: "kvm", Detected: true, Healthy: true, Reason: "r", Version: "v",
				Networking: []string{"nat"}, Attrs: map[string]string{"accel": "tcg"}}}
	}
	volatile := map[string]bool{"LoadAvg": true, "DiskKiB": true, "LastHeardFrom": true}
	// change sets field v to a different value of its kind.
	change := func(v reflect.Value) {
		switch v.Kind() {
		case reflect.String:
			v.SetString(v.String() + "x")
		case reflect.Bool:
			v.SetBool(!v.Bool())
		case reflect.Int, reflect.Int64:
			v.SetInt(v.Int() + 1)
		case reflect.Float64:
			v.SetFloat(v.Float() + 1)
		case reflect.Slice:
			v.Set(reflect.Append(v, reflect.ValueOf("bridge")))
		case reflect.Map:
			m := reflect.MakeMap(v.Type())
			m.SetMapIndex(reflect.ValueOf("accel"), reflect.ValueOf("kvm"))
			v.Set(m)
		default:
			t.Fatalf("no way to change a %s field", v.Kind())
		}
	}
	if !sameMachine(base(), base()) {
		t.Fatal("equal facts differ")
	}
	ft := reflect.TypeOf(Facts{})
	for i := range ft.NumField() {
		f := ft.Field(i)
		if f.Name == "Fingerprint" {
			fpt := f.Type
			for j := range fpt.NumField() {
				b := base()
				change(reflect.ValueOf(&b).Elem().Field(i).Field(j))
				if sameMachine(base(), b) {
					t.Errorf("facts differing in Fingerprint.%s compare the same", fpt.Field(j).Name)
				}
			}
			continue
		}
		b := base()
		change(reflect.ValueOf(&b).Elem().Field(i))
		if got := sameMachine(base(), b); got != volatile[f.Name] {
			t.Errorf("facts differing in %s: same %v, want %v", f.Name, got, volatile[f.Name])
		}
	}
	a, b := base(), base()
	a.Fingerprint.Networking, b.Fingerprint.Networking = nil, []string{}
	if !sameMachine(a, b) {
		t.Error("no networking types, nil or empty, compare different (the ads say the same)")
	}
}
