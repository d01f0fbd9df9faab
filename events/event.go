// Package events is the pool's memory and nervous system: the versioned
// event envelope and its codec, the append-only Pebble log each daemon keeps
// as its source of truth, the outbox that publishes a daemon's own events to
// NATS JetStream after they are durable, the consumer that applies other
// daemons' events exactly once, the single-goroutine loop every daemon's
// pure core runs in, request/reply helpers, and the embedded NATS server.
//
// It is imported by the daemons (schedd, negotiator, startd) and the
// command-line tools; it imports none of them. Event payloads are defined
// by the daemon that emits them; this package only carries them.
package events

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Version is the envelope schema version this code writes. Decode rejects
// envelopes with a newer version rather than misreading them.
const Version = 1

// Event is one fact a daemon recorded: the unit of its log, of replay and of
// the bus. Events are immutable once appended.
type Event struct {
	V      int    `json:"v"`
	Source string `json:"src"`  // daemon that decided it, e.g. "schedd"
	Seq    uint64 `json:"seq"`  // gapless per Source, from 1; assigned at append
	Type   string `json:"type"` // past tense: "JobSubmitted", "VMStarted"
	Time   int64  `json:"t"`    // unix nanoseconds, stamped by the shell from its clock

	// What the event is about. A job event names its queue (Schedd) and
	// Cluster/Proc (Proc -1 for a whole cluster); a machine event names the
	// Machine (a slot or startd name).
	Schedd  string `json:"schedd,omitempty"`
	Cluster int    `json:"cluster,omitempty"`
	Proc    int    `json:"proc,omitempty"`
	Machine string `json:"machine,omitempty"`

	// Payload is the type-specific body, JSON encoded.
	Payload json.RawMessage `json:"p,omitempty"`
}

// JobID names a job within its schedd: ClusterId.ProcId.
type JobID struct {
	Cluster int `json:"cluster"`
	Proc    int `json:"proc"`
}

func (id JobID) String() string { return strconv.Itoa(id.Cluster) + "." + strconv.Itoa(id.Proc) }

// ParseJobID parses "C.P"; ok is false for anything else.
func ParseJobID(s string) (JobID, bool) {
	c, p, found := strings.Cut(s, ".")
	if !found {
		return JobID{}, false
	}
	ci, err1 := strconv.Atoi(c)
	pi, err2 := strconv.Atoi(p)
	if err1 != nil || err2 != nil || ci <= 0 || pi < 0 {
		return JobID{}, false
	}
	return JobID{ci, pi}, true
}

// Job returns the job the event is about.
func (e Event) Job() JobID { return JobID{e.Cluster, e.Proc} }

// At returns the event time.
func (e Event) At() time.Time { return time.Unix(0, e.Time) }

// Decode unmarshals the payload into v.
func (e Event) Decode(v any) error {
	if f, ok := v.(fastDecoder); ok && f.decodeFast(e.Payload) {
		return nil
	}
	if err := json.Unmarshal(e.Payload, v); err != nil {
		return fmt.Errorf("decode %s payload of %s:%d: %w", e.Type, e.Source, e.Seq, err)
	}
	return nil
}

// New builds an event of type typ with payload p (JSON encoded). Source,
// Seq and Time are left for the log and the shell to stamp.
func New(typ string, p any) Event {
	e := Event{V: Version, Type: typ, Proc: -1}
	if p != nil {
		b, err := json.Marshal(p)
		if err != nil {
			// Payloads are our own structs; failing to encode one is a
			// programming error, not bad input.
			panic(fmt.Sprintf("events: encode %s payload: %v", typ, err))
		}
		e.Payload = b
	}
	return e
}

// ForJob sets what the event is about to a job of schedd.
func (e Event) ForJob(schedd string, id JobID) Event {
	e.Schedd, e.Cluster, e.Proc = schedd, id.Cluster, id.Proc
	return e
}

// ForCluster sets what the event is about to a whole cluster of schedd.
func (e Event) ForCluster(schedd string, cluster int) Event {
	e.Schedd, e.Cluster, e.Proc = schedd, cluster, -1
	return e
}

// ForMachine sets what the event is about to a machine (slot or startd).
func (e Event) ForMachine(name string) Event {
	e.Machine = name
	return e
}

// String is a short form for logs and errors: source:seq type and subject.
func (e Event) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s:%d %s", e.Source, e.Seq, e.Type)
	if e.Cluster > 0 {
		if e.Proc >= 0 {
			fmt.Fprintf(&b, " job=%s/%d.%d", e.Schedd, e.Cluster, e.Proc)
		} else {
			fmt.Fprintf(&b, " cluster=%s/%d", e.Schedd, e.Cluster)
		}
	}
	if e.Machine != "" {
		fmt.Fprintf(&b, " machine=%s", e.Machine)
	}
	return b.String()
}
