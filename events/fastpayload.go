package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"math"
	"strconv"
	"sync/atomic"
	"unicode/utf8"
	"unsafe"
)

// fastDecoder is a payload that reads the layout json.Marshal writes
// without encoding/json (which checks the whole input, then decodes it by
// reflection). decodeFast reports false, having changed nothing, for
// anything else; Event.Decode then uses encoding/json. A fast decoder must
// give encoding/json's result for every input it accepts
// (FuzzFastPayload).
type fastDecoder interface {
	decodeFast(b []byte) bool
}

// jreader reads JSON as json.Marshal writes it: no white space, members
// of an object in any order but each known. Any surprise makes it fail,
// and the caller falls back to encoding/json.
type jreader struct {
	b  []byte
	i  int
	ok bool
	// skip checks values without keeping them: strings read as "" and
	// lists as nil, allocating nothing (DecodeSubmit).
	skip bool
}

func (r *jreader) fail() { r.ok = false }

func (r *jreader) peek() byte {
	if r.i < len(r.b) {
		return r.b[r.i]
	}
	return 0
}

// null reads a null, which leaves any value as it is: zero, as every
// value this reader fills is fresh.
func (r *jreader) null() bool {
	if j, ok := jsonLiteral(r.b, r.i, "null"); ok {
		r.i = j
		return true
	}
	return false
}

func (r *jreader) expect(c byte) {
	if r.peek() != c {
		r.fail()
		return
	}
	r.i++
}

// object calls member for each member's name; member reads the value.
// A name given twice fails (encoding/json merges the two values in ways
// not worth copying).
func (r *jreader) object(member func(name []byte)) {
	if r.null() {
		return
	}
	r.expect('{')
	if !r.ok {
		return
	}
	if r.peek() == '}' {
		r.i++
		return
	}
	// Names seen (where in b each is: a nested object's reader keeps this
	// on its goroutine's stack, small, rather than a slice header per
	// name), and a bit per name's length and first and last bytes: only a
	// name whose bit is set already is compared with the others (a
	// snapshot's job has 32 members).
	if len(r.b) > math.MaxInt32 {
		r.fail() // encoding/json reads it
		return
	}
	var seen [48]struct{ at, n int32 }
	var bits uint64
	n := 0
	for r.ok {
		name, ok := r.plainName()
		if !ok || n == len(seen) {
			r.fail()
			return
		}
		var bit uint64 = 1
		if len(name) > 0 {
			bit <<= (uint(len(name)) + uint(name[0]) + 7*uint(name[len(name)-1])) & 63
		}
		if bits&bit != 0 {
			for _, s := range seen[:n] {
				if string(r.b[s.at:s.at+s.n]) == string(name) {
					r.fail()
					return
				}
			}
		}
		bits |= bit
		// plainName left r.i after the name's closing quote.
		seen[n].at, seen[n].n = int32(r.i-1-len(name)), int32(len(name))
		n++
		r.expect(':')
		if !r.ok {
			return
		}
		member(name)
		if !r.ok {
			return
		}
		switch r.peek() {
		case ',':
			r.i++
		case '}':
			r.i++
			return
		default:
			r.fail()
		}
	}
}

// array calls elem for each element; elem reads it.
func (r *jreader) array(elem func()) {
	r.expect('[')
	if !r.ok {
		return
	}
	if r.peek() == ']' {
		r.i++
		return
	}
	for r.ok {
		elem()
		if !r.ok {
			return
		}
		switch r.peek() {
		case ',':
			r.i++
		case ']':
			r.i++
			return
		default:
			r.fail()
		}
	}
}

// plainName reads a member name of plain ASCII (encoding/json matches
// names without regard to case: anything but the exact name fails later).
func (r *jreader) plainName() ([]byte, bool) {
	b := r.b
	if r.i >= len(b) || b[r.i] != '"' {
		return nil, false
	}
	j := r.i + 1
	for j < len(b) && b[j] != '"' {
		if b[j] == '\\' || b[j] < 0x20 || b[j] >= 0x80 {
			return nil, false
		}
		j++
	}
	if j >= len(b) {
		return nil, false
	}
	name := b[r.i+1 : j]
	r.i = j + 1
	return name, true
}

// str reads a string. Plain ASCII is copied; a string with escapes or
// other bytes is decoded by encoding/json, alone (invalid UTF-8 becomes
// U+FFFD there, as it does in a whole decode).
func (r *jreader) str() string {
	if r.null() {
		return ""
	}
	b := r.b
	if r.i >= len(b) || b[r.i] != '"' {
		r.fail()
		return ""
	}
	if r.skip {
		// Only checked: any string json.Unmarshal takes (what the rest
		// of str takes, by its fast path or encoding/json).
		end, ok := jsonStringEnd(b, r.i)
		if !ok {
			r.fail()
			return ""
		}
		r.i = end
		return ""
	}
	j := plainEnd(b, r.i+1)
	if j < len(b) && b[j] == '"' {
		s := string(b[r.i+1 : j])
		r.i = j + 1
		return s
	}
	// Escapes json.Marshal writes (\" \\ \n \u003c ...) are undone here;
	// a surrogate or a byte outside ASCII goes to encoding/json.
	// Room for the whole string at once (a job ad is kilobytes): what it
	// decodes to is never longer than its JSON.
	size := j - r.i + 16
	for k := j; k < len(b); k++ {
		if b[k] == '\\' {
			k++
		} else if b[k] == '"' {
			size = k - r.i
			break
		}
	}
	buf := make([]byte, 0, size)
	buf = append(buf, b[r.i+1:j]...)
	for k := j; k < len(b); {
		c := b[k]
		switch {
		case c == '"':
			r.i = k + 1
			// buf is this call's own and never written again: the string
			// takes it as it is (as strings.Builder does), not a copy.
			// Claims' records carry whole job ads, which have escapes.
			return unsafe.String(unsafe.SliceData(buf), len(buf))
		case c >= 0x20 && c < 0x80 && c != '\\':
			buf = append(buf, c)
			k++
			continue
		case c != '\\' || k+1 >= len(b):
		default:
			if e := jsonUnescape[b[k+1]]; e != 0 {
				buf = append(buf, e)
				k += 2
				continue
			}
			if b[k+1] == 'u' && k+6 <= len(b) {
				if n, ok := hex4(b[k+2 : k+6]); ok && (n < 0xd800 || n > 0xdfff) {
					buf = utf8.AppendRune(buf, rune(n))
					k += 6
					continue
				}
			}
		}
		break
	}
	end, ok := jsonStringEnd(b, r.i)
	if !ok {
		r.fail()
		return ""
	}
	var s string
	if err := json.Unmarshal(b[r.i:end], &s); err != nil {
		r.fail()
		return ""
	}
	r.i = end
	return s
}

// jsonUnescape maps the character after a backslash to what it stands
// for (0: not a one-character escape).
var jsonUnescape = [256]byte{'"': '"', '\\': '\\', '/': '/', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}

// hex4 reads the four hex digits of a \u escape.
func hex4(h []byte) (uint32, bool) {
	var n uint32
	for _, c := range h {
		switch {
		case c >= '0' && c <= '9':
			n = n<<4 | uint32(c-'0')
		case c >= 'a' && c <= 'f':
			n = n<<4 | uint32(c-'a'+10)
		case c >= 'A' && c <= 'F':
			n = n<<4 | uint32(c-'A'+10)
		default:
			return 0, false
		}
	}
	return n, true
}

func (r *jreader) int() int {
	n := r.int64()
	if int64(int(n)) != n {
		r.fail()
		return 0
	}
	return int(n)
}

func (r *jreader) int64() int64 {
	if r.null() {
		return 0
	}
	n, j, ok := plainJSONInt(r.b, r.i)
	if !ok {
		r.fail()
		return 0
	}
	r.i = j
	return n
}

func (r *jreader) bool() bool {
	if r.null() {
		return false
	}
	if j, ok := jsonLiteral(r.b, r.i, "true"); ok {
		r.i = j
		return true
	}
	if j, ok := jsonLiteral(r.b, r.i, "false"); ok {
		r.i = j
		return false
	}
	r.fail()
	return false
}

// done reports whether the reader took all of its input without a
// surprise.
func (r *jreader) done() bool { return r.ok && r.i == len(r.b) }

// list reads an array of objects (null: nil), each member of each
// object read by member.
func list[T any](r *jreader, member func(v *T, name []byte)) []T {
	if r.null() {
		return nil
	}
	out := []T{}
	var v T // one for the list: member's pointer makes it escape
	r.array(func() {
		var zero T
		v = zero
		r.object(func(name []byte) { member(&v, name) })
		if !r.skip {
			out = append(out, v)
		}
	})
	if r.skip {
		return nil
	}
	return out
}

func (r *jreader) attrs() []Attr {
	return list(r, func(a *Attr, name []byte) {
		switch string(name) {
		case "n":
			a.Name = r.name()
		case "e":
			a.Expr = r.str()
		default:
			r.fail()
		}
	})
}

func (r *jreader) fileRefs() []FileRef {
	return list(r, func(f *FileRef, name []byte) {
		switch string(name) {
		case "name":
			f.Name = r.str()
		case "bucket":
			f.Bucket = r.name()
		case "object":
			f.Object = r.str()
		case "size":
			f.Size = r.int64()
		case "sha256":
			f.SHA256 = r.str()
		default:
			r.fail()
		}
	})
}

func (r *jreader) procs() []ProcSpec {
	return list(r, func(p *ProcSpec, name []byte) {
		switch string(name) {
		case "attrs":
			p.Attrs = r.attrs()
		case "inputs":
			p.Inputs = r.fileRefs()
		case "iwd":
			p.Iwd = r.name()
		case "user_log":
			p.UserLog = r.str()
		case "hold":
			p.Hold = r.bool()
		default:
			r.fail()
		}
	})
}

// decodeObject reads b, one object, into *p, each member read by member:
// all of it, or nothing (false) at the first surprise.
func decodeObject[T any](p *T, b []byte, member func(r *jreader, v *T, name []byte)) bool {
	r := jreader{b: b, ok: true}
	var v T
	r.object(func(name []byte) { member(&r, &v, name) })
	if !r.done() {
		return false
	}
	*p = v
	return true
}

// decodeFast reads a submit: replaying a schedd's log decodes one per
// cluster ever submitted, and encoding/json spent more there than on
// everything else of a replay.
func (p *ClusterSubmittedPayload) decodeFast(b []byte) bool {
	return decodeObject(p, b, submitMember)
}

// SubmitRequest is the body of a schedd's submit verb: a submit's payload
// and the cluster id reserved for it, if any.
type SubmitRequest struct {
	Cluster int                     `json:"cluster,omitempty"` // reserved id, if any
	Payload ClusterSubmittedPayload `json:"payload"`
}

// decodeFast reads a submit request: a schedd reads one per cluster
// submitted, and encoding/json's reflection was a third of its time on a
// single-job cluster.
func (q *SubmitRequest) decodeFast(b []byte) bool {
	return decodeObject(q, b, func(r *jreader, v *SubmitRequest, name []byte) {
		switch string(name) {
		case "cluster":
			v.Cluster = r.int()
		case "payload":
			r.object(func(name []byte) { submitMember(r, &v.Payload, name) })
		default:
			r.fail()
		}
	})
}

// DecodeJSON decodes b into v as json.Unmarshal does, without reflection
// when v has a fast decoder that takes b.
func DecodeJSON(b []byte, v any) error {
	if f, ok := v.(fastDecoder); ok && f.decodeFast(b) {
		return nil
	}
	return json.Unmarshal(b, v)
}

func submitMember(r *jreader, v *ClusterSubmittedPayload, name []byte) {
	switch string(name) {
	case "submit_id":
		v.SubmitID = r.str()
	case "owner":
		v.Owner = r.name()
	case "submit_host":
		v.SubmitHost = r.name()
	case "file":
		v.File = r.str()
	case "iwd":
		v.Iwd = r.name()
	case "user_log":
		v.UserLog = r.str()
	case "attrs":
		v.Attrs = r.attrs()
	case "inputs":
		v.Inputs = r.fileRefs()
	case "procs":
		v.Procs = r.procs()
	case "num_procs":
		v.NumProcs = r.int()
	case "hold":
		v.Hold = r.bool()
	default:
		r.fail()
	}
}

// plainEnd is the index of the first byte of b from j on that is a quote,
// a backslash, a control character or not ASCII (len(b) if none): the
// end of a string's plain run, which str and name take as it is.
func plainEnd(b []byte, j int) int {
	for j < len(b) && b[j] != '"' && b[j] != '\\' && b[j] >= 0x20 && b[j] < 0x80 {
		j++
	}
	return j
}

// name reads a string that few values take among many events (a slot, a
// machine, an owner, an attribute's name): one string per value is
// handed out, from interned, instead of a new one per event.
func (r *jreader) name() string {
	b := r.b
	if !r.skip && r.i < len(b) && b[r.i] == '"' {
		j := plainEnd(b, r.i+1)
		if j < len(b) && b[j] == '"' && j-r.i-1 <= maxInterned {
			s := intern(b[r.i+1 : j])
			r.i = j + 1
			return s
		}
	}
	return r.str()
}

// interned is a lossy table of strings by hash, shared by every decoder:
// a value found in its place is handed out again, another replaces it.
// Its places are atomic, so decoders on many goroutines share it without
// a lock.
var (
	interned     [4096]atomic.Pointer[string]
	internedSeed = maphash.MakeSeed()
)

// internSlot is b's place in interned.
func internSlot(b []byte) uint64 { return maphash.Bytes(internedSeed, b) & (uint64(len(interned)) - 1) }

// maxInterned is the longest string interned.
const maxInterned = 64

// intern returns string(b), the one in interned when it is there.
func intern(b []byte) string {
	at := &interned[internSlot(b)]
	if p := at.Load(); p != nil && *p == string(b) {
		return *p
	}
	s := string(b)
	at.Store(&s)
	return s
}

// DecodeSubmit decodes a ClusterSubmitted payload but for its attributes,
// which it returns as their JSON, checked, for DecodeAttrs to read when
// they are needed. A replay builds a cluster for every submit ever made
// and reads the attributes of few of them (those still queued, when first
// asked for): reading them all was most of a replay's time. attrs is nil
// when the payload was decoded whole (p.Attrs holds them then).
func (e Event) DecodeSubmit() (p ClusterSubmittedPayload, attrs json.RawMessage, err error) {
	ok := decodeObject(&p, e.Payload, func(r *jreader, v *ClusterSubmittedPayload, name []byte) {
		if string(name) != "attrs" {
			submitMember(r, v, name)
			return
		}
		start := r.i
		r.skip = true
		r.attrs()
		r.skip = false
		attrs = r.b[start:r.i:r.i]
	})
	if ok {
		return p, attrs, nil
	}
	p, attrs = ClusterSubmittedPayload{}, nil
	return p, nil, e.Decode(&p)
}

// SubmittedAttrs is the attributes of a submit DecodeSubmit returned as
// p.Attrs and raw: p.Attrs when raw is nil, else raw read, which cannot
// fail (DecodeSubmit checked it).
func SubmittedAttrs(attrs []Attr, raw json.RawMessage) []Attr {
	if raw == nil {
		return attrs
	}
	a, _ := DecodeAttrs(raw)
	return a
}

// DecodeAttrs reads the attributes DecodeSubmit left as JSON.
func DecodeAttrs(raw json.RawMessage) ([]Attr, error) {
	r := jreader{b: raw, ok: true}
	if a := r.attrs(); r.done() {
		return a, nil
	}
	var a []Attr
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, fmt.Errorf("decode submitted attributes: %w", err)
	}
	return a, nil
}

// The events of every job's life, which a replay decodes once each.

func (p *JobMatchedPayload) decodeFast(b []byte) bool {
	return decodeObject(p, b, func(r *jreader, v *JobMatchedPayload, name []byte) {
		switch string(name) {
		case "claim_id":
			v.ClaimID = r.str()
		case "negotiator":
			v.Negotiator = r.name()
		case "startd":
			v.Startd = r.name()
		case "slot":
			v.Slot = r.name()
		case "machine":
			v.Machine = r.name()
		default:
			r.fail()
		}
	})
}

func (p *JobStartedPayload) decodeFast(b []byte) bool {
	return decodeObject(p, b, func(r *jreader, v *JobStartedPayload, name []byte) {
		switch string(name) {
		case "claim_id":
			v.ClaimID = r.str()
		case "slot":
			v.Slot = r.name()
		case "host":
			v.Host = r.name()
		case "resumed":
			v.Resumed = r.bool()
		case "resumed_from":
			v.ResumedFrom = r.int()
		case "resume_note":
			v.ResumeNote = r.str()
		default:
			r.fail()
		}
	})
}

func (p *JobCompletedPayload) decodeFast(b []byte) bool {
	return decodeObject(p, b, func(r *jreader, v *JobCompletedPayload, name []byte) {
		switch string(name) {
		case "claim_id":
			v.ClaimID = r.str()
		case "exit_code":
			v.ExitCode = r.int()
		case "outputs":
			v.Outputs = r.fileRefs()
		case "bytes_sent":
			v.BytesSent = r.int64()
		case "bytes_recv":
			v.BytesRecv = r.int64()
		case "run_ns":
			v.RunNanos = r.int64()
		case "user_cpu_ns":
			v.UserCPUNanos = r.int64()
		case "sys_cpu_ns":
			v.SysCPUNanos = r.int64()
		case "total_user_cpu_ns":
			v.TotalUserCPUNanos = r.int64()
		case "total_sys_cpu_ns":
			v.TotalSysCPUNanos = r.int64()
		case "total_bytes_sent":
			v.TotalBytesSent = r.int64()
		case "total_bytes_recv":
			v.TotalBytesRecv = r.int64()
		default:
			r.fail()
		}
	})
}

// decodeFast reads a VM event without a checkpoint (one with a checkpoint
// goes to encoding/json).
func (p *VMEventPayload) decodeFast(b []byte) bool {
	return decodeObject(p, b, vmEventMember)
}

func vmEventMember(r *jreader, v *VMEventPayload, name []byte) {
	switch string(name) {
	case "claim_id":
		v.ClaimID = r.str()
	case "slot":
		v.Slot = r.name()
	case "host":
		v.Host = r.name()
	case "resumed":
		v.Resumed = r.bool()
	case "powered_off":
		v.PoweredOff = r.bool()
	case "outputs":
		v.Outputs = r.fileRefs()
	case "reason":
		v.Reason = r.name()
	case "resumed_from":
		v.ResumedFrom = r.int()
	case "resume_note":
		v.ResumeNote = r.str()
	case "hold":
		v.Hold = r.bool()
	case "code":
		v.Code = r.int()
	case "subcode":
		v.SubCode = r.int()
	case "bytes_in":
		v.BytesIn = r.int64()
	case "bytes_out":
		v.BytesOut = r.int64()
	case "run_ns":
		v.RunNanos = r.int64()
	case "user_cpu_ns":
		v.UserCPUNanos = r.int64()
	case "sys_cpu_ns":
		v.SysCPUNanos = r.int64()
	case "handle":
		v.Handle = r.rawObject()
	default:
		r.fail()
	}
}

// rawObject reads an object as it is, into a json.RawMessage of its own
// bytes, as encoding/json does; anything but an object (null, which
// encoding/json keeps as "null", too) fails.
func (r *jreader) rawObject() json.RawMessage {
	if r.peek() != '{' {
		r.fail()
		return nil
	}
	j, ok := JSONValueEnd(r.b, r.i)
	if !ok {
		r.fail()
		return nil
	}
	v := r.b[r.i:j]
	r.i = j
	if r.skip {
		return nil
	}
	return bytes.Clone(v)
}

// The claim's records: a request carries its job's whole ad, which the
// startd reads from the request and again from its ClaimAccepted record
// (when it applies it, and when it launches the VM), and the schedd reads
// the negotiator's match, which carries the slot's ad.

func (r *jreader) float64() float64 {
	if r.null() {
		return 0
	}
	if r.i >= len(r.b) {
		r.fail()
		return 0
	}
	j, ok := jsonNumberEnd(r.b, r.i)
	if !ok {
		r.fail()
		return 0
	}
	f, err := strconv.ParseFloat(string(r.b[r.i:j]), 64)
	if err != nil {
		r.fail() // out of range, which encoding/json refuses too
		return 0
	}
	r.i = j
	return f
}

func (r *jreader) uint64() uint64 {
	if r.peek() == '-' {
		r.fail() // even -0, which encoding/json refuses for an unsigned field
		return 0
	}
	return uint64(r.int64())
}

func (r *jreader) jobID() (id JobID) {
	r.object(func(name []byte) {
		switch string(name) {
		case "cluster":
			id.Cluster = r.int()
		case "proc":
			id.Proc = r.int()
		default:
			r.fail()
		}
	})
	return id
}

func (r *jreader) checkpoints() []Checkpoint {
	return list(r, func(c *Checkpoint, name []byte) {
		switch string(name) {
		case "files":
			c.Files = r.fileRefs()
		case "taken":
			c.Taken = r.int64()
		case "slot":
			c.Slot = r.name()
		case "seq":
			c.Seq = r.int()
		default:
			r.fail()
		}
	})
}

func claimRequestMember(r *jreader, v *ClaimRequest, name []byte) {
	switch string(name) {
	case "claim_id":
		v.ClaimID = r.str()
	case "schedd":
		v.Schedd = r.name()
	case "job":
		v.Job = r.jobID()
	case "slot":
		v.Slot = r.name()
	case "job_ad":
		v.JobAd = r.str()
	case "static_at":
		v.StaticAt = r.int()
	case "inputs":
		v.Inputs = r.fileRefs()
	case "checkpoints":
		v.Checkpoints = r.checkpoints()
	case "owner":
		v.Owner = r.name()
	default:
		r.fail()
	}
}

func (p *ClaimRequest) decodeFast(b []byte) bool {
	return decodeObject(p, b, claimRequestMember)
}

func (p *ClaimAcceptedPayload) decodeFast(b []byte) bool {
	return decodeObject(p, b, claimAcceptedMember)
}

func claimAcceptedMember(r *jreader, v *ClaimAcceptedPayload, name []byte) {
	switch string(name) {
	case "req":
		r.object(func(name []byte) { claimRequestMember(r, &v.Req, name) })
	case "memory_mib":
		v.MemoryMiB = r.int()
	case "rank":
		v.Rank = r.float64()
	case "preempts":
		v.Preempts = r.str()
	case "lease_s":
		v.LeaseSeconds = r.int64()
	default:
		r.fail()
	}
}

// DecodeClaimAcceptedWithoutAd decodes a ClaimAccepted payload but for
// its request's job ad, which it only checks (Req.JobAd is left empty): a
// startd that has just recorded the claim needs its id, not a second copy
// of the kilobytes of its ad.
func (e Event) DecodeClaimAcceptedWithoutAd() (ClaimAcceptedPayload, error) {
	var p ClaimAcceptedPayload
	ok := decodeObject(&p, e.Payload, func(r *jreader, v *ClaimAcceptedPayload, name []byte) {
		if string(name) != "req" {
			claimAcceptedMember(r, v, name)
			return
		}
		r.object(func(name []byte) {
			if string(name) == "job_ad" {
				r.skip = true
				r.str()
				r.skip = false
				return
			}
			claimRequestMember(r, &v.Req, name)
		})
	})
	if ok {
		return p, nil
	}
	err := e.Decode(&p)
	p.Req.JobAd = ""
	return p, err
}

func (p *MatchedPayload) decodeFast(b []byte) bool {
	return decodeObject(p, b, func(r *jreader, v *MatchedPayload, name []byte) {
		switch string(name) {
		case "match_id":
			v.MatchID = r.str()
		case "startd":
			v.Startd = r.name()
		case "slot":
			v.Slot = r.name()
		case "machine":
			v.Machine = r.name()
		case "slot_ad":
			v.SlotAd = r.str()
		case "claims":
			v.Claims = r.int64()
		case "ad_rev":
			v.AdRevision = r.uint64()
		case "preempting":
			v.Preempting = r.bool()
		default:
			r.fail()
		}
	})
}

// JSONReader reads JSON as json.Marshal writes it, for the fast decoders
// of other packages (a schedd's snapshot): no white space, members in any
// order but each known to the caller. Any surprise fails it, having read
// part of the input; the caller then decodes with encoding/json instead,
// and must give encoding/json's result for every input it takes.
type JSONReader struct{ r jreader }

// NewJSONReader reads b.
func NewJSONReader(b []byte) *JSONReader { return &JSONReader{jreader{b: b, ok: true}} }

// Object calls member for each member's name, which must read the value
// (or Fail). A null object calls nothing; a name given twice fails.
func (x *JSONReader) Object(member func(name []byte)) { x.r.object(member) }

// Null reads a null, if that is what comes next.
func (x *JSONReader) Null() bool { return x.r.null() }

// Str reads a string (null: "").
func (x *JSONReader) Str() string { return x.r.str() }

// Name reads a string that few values take among many (a slot, a host, an
// owner): one string per value is handed out.
func (x *JSONReader) Name() string { return x.r.name() }

// Int reads a number without fraction or exponent that fits an int.
func (x *JSONReader) Int() int { return x.r.int() }

// Int64 reads a number without fraction or exponent.
func (x *JSONReader) Int64() int64 { return x.r.int64() }

// Bool reads true or false (null: false).
func (x *JSONReader) Bool() bool { return x.r.bool() }

// JobID reads a JobID.
func (x *JSONReader) JobID() JobID { return x.r.jobID() }

// FileRefs reads a list of FileRef (null: nil).
func (x *JSONReader) FileRefs() []FileRef { return x.r.fileRefs() }

// Checkpoints reads a list of Checkpoint (null: nil).
func (x *JSONReader) Checkpoints() []Checkpoint { return x.r.checkpoints() }

// VMEvent reads a VMEventPayload or null (nil); one with a checkpoint
// fails, as VMEventPayload's own fast decoder does.
func (x *JSONReader) VMEvent() *VMEventPayload {
	if x.r.null() {
		return nil
	}
	p := new(VMEventPayload)
	x.r.object(func(name []byte) { vmEventMember(&x.r, p, name) })
	return p
}

// Fail makes the reader fail (a member the caller does not know).
func (x *JSONReader) Fail() { x.r.fail() }

// Done reports whether the reader took all of its input without a
// surprise.
func (x *JSONReader) Done() bool { return x.r.done() }
