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
}

// ParseFailpoints reads "name[@N],..." (fire at the Nth hit, default the
// first). An empty spec returns nil.
func ParseFailpoints(spec string) (*Failpoints, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return nil, nil
	}
	f := &Failpoints{armed: map[string]int{}, hits: map[string]int{}, onFire: func(string) { os.Exit(137) }}
	for _, part := range strings.Split(spec, ",") {
		name, nth, _ := strings.Cut(strings.TrimSpace(part), "@")
		n := 1
		if nth != "" {
			var err error
			if n, err = strconv.Atoi(nth); err != nil || n < 1 {
				return nil, fmt.Errorf("failpoint %q: @N must be a positive number", part)
			}
		}
		if !knownFailpoints[name] {
			return nil, fmt.Errorf("failpoint %q: unknown (known: %s)", name, strings.Join(FailpointNames(), ", "))
		}
		f.armed[name] = n
	}
	return f, nil
}

var knownFailpoints = map[string]bool{
	"loop-after-append":    true, // the events are synced in Pebble, nothing published or answered
	"outbox-after-publish": true, // JetStream acknowledged, the outbox's cursor not yet saved
	"consumer-before-ack":  true, // the consumer's batch is synced, the messages not yet acknowledged
	"userlog-after-write":  true, // user log events written, the position not yet recorded
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
		fmt.Fprintf(os.Stderr, "vmpool: failpoint %s fired; exiting as if killed\n", name)
		f.onFire(name)
	}
}
