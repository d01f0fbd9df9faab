package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MaxEventSize bounds an encoded event. The embedded NATS server is started
// with a max payload of this size; larger submits are split by the caller.
const MaxEventSize = 8 << 20

// Roles of the daemons; the role is the second token of every event subject
// so that consumers can filter on it at the server.
const (
	RoleSchedd     = "schedd"
	RoleNegotiator = "negotiator"
	RoleStartd     = "startd"
)

// SubjectPrefix is the first tokens of every event subject.
const SubjectPrefix = "vmpool.ev"

// Errors Decode returns; match them with errors.Is.
var (
	ErrNewerVersion = errors.New("events: event schema version is newer than this program understands")
	ErrMalformed    = errors.New("events: malformed event")
	ErrTooLarge     = errors.New("events: event too large")
)

// Encode returns the wire and disk form of e.
func Encode(e Event) ([]byte, error) {
	if b, ok := encodeEnvelope(&e); ok {
		if len(b) > MaxEventSize {
			return nil, fmt.Errorf("encode event %s: %d bytes: %w", e, len(b), ErrTooLarge)
		}
		return b, nil
	}
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode event %s: %w", e, err)
	}
	if len(b) > MaxEventSize {
		return nil, fmt.Errorf("encode event %s: %d bytes: %w", e, len(b), ErrTooLarge)
	}
	return b, nil
}

// Decode parses an encoded event and checks its envelope: a known schema
// version, a source, a sequence and a type. It never panics on input.
func Decode(b []byte) (Event, error) { return decodeNamed(b, nil, false) }

// decodeNamed is Decode taking the event's names (source, type, schedd,
// machine) from ns when it has them, so that a reader of many events of
// few daemons does not allocate them again for every event. stored says
// that b is a record Log.Append wrote (see decodeEnvelope).
func decodeNamed(b []byte, ns *names, stored bool) (Event, error) {
	var e Event
	if len(b) > MaxEventSize {
		return e, fmt.Errorf("decode event: %d bytes: %w", len(b), ErrTooLarge)
	}
	if !decodeEnvelope(b, &e, ns, stored) {
		// A variable of its own: handed to encoding/json it escapes, and
		// e would then be allocated for every event, not just these.
		var slow Event
		if err := json.Unmarshal(b, &slow); err != nil {
			return Event{}, fmt.Errorf("decode event: %w: %w", ErrMalformed, err)
		}
		e = slow
	}
	switch {
	case e.V > Version:
		return Event{}, fmt.Errorf("decode event %s: version %d > %d: %w", e, e.V, Version, ErrNewerVersion)
	case e.V < 1:
		return Event{}, fmt.Errorf("decode event: version %d: %w", e.V, ErrMalformed)
	case !ValidName(e.Source):
		return Event{}, fmt.Errorf("decode event: source %q: %w", e.Source, ErrMalformed)
	case e.Seq == 0:
		return Event{}, fmt.Errorf("decode event from %s: no sequence: %w", e.Source, ErrMalformed)
	case !validToken(e.Type):
		return Event{}, fmt.Errorf("decode event %s:%d: type %q: %w", e.Source, e.Seq, e.Type, ErrMalformed)
	case e.Schedd != "" && !ValidName(e.Schedd), e.Machine != "" && !ValidName(e.Machine):
		return Event{}, fmt.Errorf("decode event %s:%d: bad schedd or machine name: %w", e.Source, e.Seq, ErrMalformed)
	}
	return e, nil
}

// encodeEnvelope is json.Marshal of e, byte for byte, for the common case:
// every string plain (printable ASCII that json.Marshal writes as it is)
// and a payload that is compact JSON without what json.Marshal escapes
// (what json.Marshal of a payload struct writes). ok is false otherwise,
// and Encode uses json.Marshal, which spent most of an append's CPU
// reflecting over the envelope and compacting the payload again
// (FuzzEncode holds it to json.Marshal).
func encodeEnvelope(e *Event) (b []byte, ok bool) {
	if !plainJSONName(e.Source) || !plainJSONName(e.Type) || !plainJSONName(e.Schedd) || !plainJSONName(e.Machine) {
		return nil, false
	}
	if len(e.Payload) > 0 && !compactPlainJSON(e.Payload) {
		return nil, false
	}
	b = make([]byte, 0, 112+len(e.Source)+len(e.Type)+len(e.Schedd)+len(e.Machine)+len(e.Payload))
	b = append(b, `{"v":`...)
	b = strconv.AppendInt(b, int64(e.V), 10)
	b = append(b, `,"src":"`...)
	b = append(b, e.Source...)
	b = append(b, `","seq":`...)
	b = strconv.AppendUint(b, e.Seq, 10)
	b = append(b, `,"type":"`...)
	b = append(b, e.Type...)
	b = append(b, `","t":`...)
	b = strconv.AppendInt(b, e.Time, 10)
	if e.Schedd != "" {
		b = append(b, `,"schedd":"`...)
		b = append(b, e.Schedd...)
		b = append(b, '"')
	}
	if e.Cluster != 0 {
		b = append(b, `,"cluster":`...)
		b = strconv.AppendInt(b, int64(e.Cluster), 10)
	}
	if e.Proc != 0 {
		b = append(b, `,"proc":`...)
		b = strconv.AppendInt(b, int64(e.Proc), 10)
	}
	if e.Machine != "" {
		b = append(b, `,"machine":"`...)
		b = append(b, e.Machine...)
		b = append(b, '"')
	}
	if len(e.Payload) > 0 {
		b = append(b, `,"p":`...)
		b = append(b, e.Payload...)
	}
	return append(b, '}'), true
}

// plainJSONName: json.Marshal writes s between quotes as it is.
func plainJSONName(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c > 0x7e, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

// compactPlainJSON: b is one valid JSON value that json.Marshal of a
// json.RawMessage copies as it is: no white space outside strings, and
// nothing it escapes (<, >, &, U+2028, U+2029) anywhere.
func compactPlainJSON(b []byte) bool {
	in := false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c == '<' || c == '>' || c == '&' || c == 0xe2:
			return false
		case in && c == '\\':
			i++ // the escaped byte is not the string's end
		case c == '"':
			in = !in
		case !in && isJSONSpace(c):
			return false
		}
	}
	end, ok := JSONValueEnd(b, 0)
	return ok && end == len(b)
}

// envelopeKeys are Event's members in the order json.Marshal writes them.
var envelopeKeys = [...]string{"v", "src", "seq", "type", "t", "schedd", "cluster", "proc", "machine", "p"}

// decodeEnvelope is json.Unmarshal of an event for the layout Encode
// writes (members in order, plain strings and integers): one pass, where
// encoding/json checks the whole event and then decodes it. It reports
// false, leaving e to be decoded by encoding/json, for anything else.
//
// stored says that b is a record Log.Append wrote: Encode checked its
// payload (compactPlainJSON, or json.Marshal), and Pebble's checksums
// keep a record as written (a changed byte is an error of the read,
// TestCorruptLogDetected), so a payload that is the record's last member
// runs to its closing brace and is not checked again (a quarter of a
// replay's reading).
func decodeEnvelope(b []byte, e *Event, ns *names, stored bool) bool {
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
		return false
	}
	i, k := 1, 0
	for {
		// "key":
		if i >= len(b) || b[i] != '"' {
			return false
		}
		end := i + 1
		for end < len(b) && b[end] != '"' {
			end++
		}
		if end+1 >= len(b) || b[end+1] != ':' {
			return false
		}
		key := b[i+1 : end]
		for k < len(envelopeKeys) && string(key) != envelopeKeys[k] {
			k++
		}
		if k == len(envelopeKeys) {
			return false // unknown, repeated or out of order
		}
		i = end + 2
		var ok bool
		switch envelopeKeys[k] {
		case "src", "type", "schedd", "machine":
			var v []byte
			if v, i, ok = plainJSONBytes(b, i); !ok {
				return false
			}
			s := ns.get(v)
			switch envelopeKeys[k] {
			case "src":
				e.Source = s
			case "type":
				e.Type = s
			case "schedd":
				e.Schedd = s
			default:
				e.Machine = s
			}
		case "p":
			end := len(b) - 1
			if !stored || k != len(envelopeKeys)-1 {
				if end, ok = JSONValueEnd(b, i); !ok {
					return false
				}
			}
			if end <= i || b[i] <= ' ' || end >= len(b) {
				return false
			}
			e.Payload = append(json.RawMessage(nil), b[i:end]...)
			i = end
		default:
			var n int64
			if n, i, ok = plainJSONInt(b, i); !ok {
				return false
			}
			switch envelopeKeys[k] {
			case "v":
				if int64(int(n)) != n {
					return false
				}
				e.V = int(n)
			case "seq":
				if n < 0 {
					return false
				}
				e.Seq = uint64(n)
			case "t":
				e.Time = n
			case "cluster":
				if int64(int(n)) != n {
					return false
				}
				e.Cluster = int(n)
			default:
				if int64(int(n)) != n {
					return false
				}
				e.Proc = int(n)
			}
		}
		k++
		switch {
		case i == len(b)-1:
			return true // at the closing brace
		case i < len(b)-1 && b[i] == ',':
			i++
		default:
			return false
		}
	}
}

// plainJSONBytes reads a string of printable ASCII without escapes
// (encoding/json would replace invalid UTF-8; names are ASCII anyway) and
// returns its bytes within b.
func plainJSONBytes(b []byte, i int) (v []byte, next int, ok bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, 0, false
	}
	j := i + 1
	for j < len(b) && b[j] != '"' {
		if b[j] == '\\' || b[j] < 0x20 || b[j] >= 0x80 {
			return nil, 0, false
		}
		j++
	}
	if j >= len(b) {
		return nil, 0, false
	}
	return b[i+1 : j], j + 1, true
}

// names hands out one string per distinct name it has seen, up to
// maxNames of them (then it copies, as a nil *names always does). A
// replay reads millions of events of a few daemons and a few dozen types.
type names struct{ m map[string]string }

const maxNames = 4096

func newNames() *names { return &names{m: map[string]string{}} }

func (ns *names) get(b []byte) string {
	if ns == nil {
		return string(b)
	}
	if s, ok := ns.m[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(ns.m) < maxNames {
		ns.m[s] = s
	}
	return s
}

// plainJSONInt reads -?(0|[1-9][0-9]*) that fits an int64; a fraction or
// exponent is left to encoding/json.
func plainJSONInt(b []byte, i int) (int64, int, bool) {
	j := i
	if j < len(b) && b[j] == '-' {
		j++
	}
	d := j
	for j < len(b) && b[j] >= '0' && b[j] <= '9' {
		j++
	}
	if j == d || j-d > 1 && b[d] == '0' || j-d > 19 {
		return 0, 0, false // none, a leading zero, or possibly too big
	}
	if j < len(b) && (b[j] == '.' || b[j] == 'e' || b[j] == 'E') {
		return 0, 0, false
	}
	if j-d == 19 { // may not fit: let strconv say
		n, err := strconv.ParseInt(string(b[i:j]), 10, 64)
		if err != nil {
			return 0, 0, false
		}
		return n, j, true
	}
	var n int64
	for _, c := range b[d:j] {
		n = n*10 + int64(c-'0')
	}
	if d > i {
		n = -n
	}
	return n, j, true
}

// validToken is ^[A-Za-z0-9_@-]{1,128}$ without a regexp: it runs for
// every event decoded, and a replay decodes millions.
func validToken(s string) bool { return validChars(s, 128, true) }

// validChars reports whether s is 1 to max letters, digits, '_' or '-'
// (and '@' when at).
func validChars(s string, max int, at bool) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		case c == '@' && at:
		default:
			return false
		}
	}
	return true
}

// ValidName reports whether s can name a daemon, schedd or machine: it must
// fit in one subject token (letters, digits, '_', '-', '@'; 1-128 long).
func ValidName(s string) bool { return validToken(s) }

// validDaemon is ^[A-Za-z0-9_-]{1,64}$.
func validDaemon(s string) bool { return validChars(s, 64, false) }

// CheckName returns an error naming what is wrong with a daemon name and
// how to fix it. Daemon names also form collector keys and file names, so
// they are stricter than ValidName: no '@'.
func CheckName(kind, s string) error {
	if validDaemon(s) {
		return nil
	}
	return fmt.Errorf("%s name %q: use 1-64 letters, digits, '_' or '-' (no dots, '@' or spaces)", kind, s)
}

// SafeName turns s (e.g. a host name) into a valid daemon name by replacing every
// character that is not allowed with '-'.
func SafeName(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	out := b.String()
	if len(out) > 64 {
		out = out[:64]
	}
	if out == "" {
		out = "unnamed"
	}
	return out
}

// Subject is the bus subject of an event emitted by a daemon of role:
//
//	vmpool.ev.<role>.<source>.job.<schedd>.<cluster>.<proc>.<type>
//	vmpool.ev.<role>.<source>.cluster.<schedd>.<cluster>.<type>
//	vmpool.ev.<role>.<source>.machine.<machine>.<type>
//	vmpool.ev.<role>.<source>.daemon.<type>
func Subject(role string, e Event) string {
	b := make([]byte, 0, 96)
	b = append(b, SubjectPrefix...)
	b = append(b, '.')
	b = append(b, role...)
	b = append(b, '.')
	b = append(b, e.Source...)
	switch {
	case e.Cluster > 0 && e.Proc >= 0:
		b = append(b, ".job."...)
		b = append(b, e.Schedd...)
		b = append(b, '.')
		b = strconv.AppendInt(b, int64(e.Cluster), 10)
		b = append(b, '.')
		b = strconv.AppendInt(b, int64(e.Proc), 10)
	case e.Cluster > 0:
		b = append(b, ".cluster."...)
		b = append(b, e.Schedd...)
		b = append(b, '.')
		b = strconv.AppendInt(b, int64(e.Cluster), 10)
	case e.Machine != "":
		b = append(b, ".machine."...)
		b = append(b, e.Machine...)
	default:
		b = append(b, ".daemon"...)
	}
	b = append(b, '.')
	b = append(b, e.Type...)
	return string(b)
}

// CheckSubject reports whether subject is the one event e was published
// on by a daemon of the role the subject names: a message whose body names
// another source, job or type than its subject (which is all a publisher's
// credentials vouch for) is forged or corrupt, and is refused.
func CheckSubject(subject string, e Event) error {
	rest, ok := strings.CutPrefix(subject, SubjectPrefix+".")
	role, _, found := strings.Cut(rest, ".")
	if !ok || !found {
		return fmt.Errorf("subject %q is not an event subject: %w", subject, ErrMalformed)
	}
	if want := Subject(role, e); want != subject {
		return fmt.Errorf("event from %s seq %d does not match its subject %q (want %q): %w", e.Source, e.Seq, subject, want, ErrMalformed)
	}
	return nil
}

// SubjectFilter is a NATS subject with wildcards that a consumer filters on.
type SubjectFilter string

// AllOfRole matches every event of every daemon of a role.
func AllOfRole(role string) SubjectFilter {
	return SubjectFilter(SubjectPrefix + "." + role + ".>")
}

// AllOfSource matches every event of one daemon.
func AllOfSource(role, source string) SubjectFilter {
	return SubjectFilter(SubjectPrefix + "." + role + "." + source + ".>")
}

// JobsOfSchedd matches the job events daemons of role emit about schedd's jobs.
func JobsOfSchedd(role, schedd string) SubjectFilter {
	return SubjectFilter(SubjectPrefix + "." + role + ".*.job." + schedd + ".>")
}

// JobEventsOfSchedd matches the job events of the given types that
// daemons of role emit about schedd's jobs: a consumer that decides on some
// types only is not sent the others.
func JobEventsOfSchedd(role, schedd string, types ...string) []SubjectFilter {
	fs := make([]SubjectFilter, len(types))
	for i, t := range types {
		fs[i] = SubjectFilter(SubjectPrefix + "." + role + ".*.job." + schedd + ".*.*." + t)
	}
	return fs
}

// MsgID is the Nats-Msg-Id of an event: source:seq, so that a republished
// event is dropped by JetStream's duplicate window.
func MsgID(e Event) string {
	return e.Source + ":" + strconv.FormatUint(e.Seq, 10)
}
