package events

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Failpoints are named crash points for fault-injection tests: a daemon
// component calls Hit(name) at a point where a crash matters (after the
// Pebble sync and before the publish, after the publish and before the
// cursor, after a consumer's batch and before its ack, ...). When the
// point is armed, Hit ends the process at once, as kill -9 would: no
// deferred function runs, nothing is flushed.
//
// A nil *Failpoints is valid and never fires, so production code pays one
// nil check. Failpoints are armed only through ParseFailpoints, which the
// command line reads from $VMPOOL_FAILPOINTS.
type Failpoints struct {
	mu     sync.Mutex
	armed  map[string]int // name -> fire on this hit (1 = first)
	hits   map[string]int
	onFire func(name string)
	daemon string // whose points these are
}

// ParseFailpoints reads "[DAEMON/]name[@N],..." for the daemon named
// daemon: fire at the Nth hit (default the first) of the point, in every
// daemon of the process, or only in DAEMON when one is given (e.g.
// "startd1/outbox-after-publish@2": in vmpool up the daemons share one
// process, and a crash must come from the one the test aims at). The
// points of other daemons are checked and left out. An empty spec, or one
// with nothing for this daemon, returns nil.
func ParseFailpoints(spec, daemon string) (*Failpoints, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return nil, nil
	}
	f := &Failpoints{armed: map[string]int{}, hits: map[string]int{}, onFire: func(string) { os.Exit(137) }, daemon: daemon}
	for _, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		target, point, targeted := strings.Cut(part, "/")
		if !targeted {
			target, point = "", part
		} else if target == "" {
			return nil, fmt.Errorf("failpoint %q: name the daemon before the '/' (e.g. startd1/%s)", part, point)
		}
		name, nth, _ := strings.Cut(point, "@")
		n := 1
		if nth != "" {
			var err error
			if n, err = strconv.Atoi(nth); err != nil || n < 1 {
				return nil, fmt.Errorf("failpoint %q: @N must be a positive number", part)
			}
		}
		if !knownFailpoints[name] {
			return nil, fmt.Errorf("failpoint %q: unknown (known: %s)", part, strings.Join(FailpointNames(), ", "))
		}
		if target == "" || target == daemon {
			f.armed[name] = n
		}
	}
	if len(f.armed) == 0 {
		return nil, nil
	}
	return f, nil
}

var knownFailpoints = map[string]bool{
	"loop-after-append":    true, // the events are synced in Pebble, nothing published or answered
	"outbox-after-publish": true, // JetStream acknowledged, the outbox's cursor not yet saved
	"consumer-before-ack":  true, // the consumer's batch is synced, the messages not yet acknowledged
	"userlog-after-write":  true, // user log events written, the position not yet recorded
	"userlog-after-done":   true, // the position recorded and the intent dropped, neither synced
	"vm-after-start":       true, // the hypervisor runs the VM, its handle not yet recorded
	"vm-after-poweroff":    true, // the guest powered off and that is recorded, its disks not yet sent back
}

// FailpointNames lists the failpoints daemons honour.
func FailpointNames() []string {
	var out []string
	for n := range knownFailpoints {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Hit passes the failpoint name; if it is armed for this hit, the process
// ends.
func (f *Failpoints) Hit(name string) {
	if f == nil {
		return
	}
	f.mu.Lock()
	n, armed := f.armed[name]
	f.hits[name]++
	fire := armed && f.hits[name] == n
	f.mu.Unlock()
	if fire {
		fmt.Fprintf(os.Stderr, "vmpool: failpoint %s fired in %s; exiting as if killed\n", name, f.daemon)
		f.onFire(name)
	}
}
