package startd

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
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
