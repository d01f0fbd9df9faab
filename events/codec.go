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
func Decode(b []byte) (Event, error) {
	var e Event
	if len(b) > MaxEventSize {
		return e, fmt.Errorf("decode event: %d bytes: %w", len(b), ErrTooLarge)
	}
	if !decodeEnvelope(b, &e) {
		e = Event{}
		if err := json.Unmarshal(b, &e); err != nil {
			return Event{}, fmt.Errorf("decode event: %w: %w", ErrMalformed, err)
		}
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

// envelopeKeys are Event's members in the order json.Marshal writes them.
var envelopeKeys = [...]string{"v", "src", "seq", "type", "t", "schedd", "cluster", "proc", "machine", "p"}

// decodeEnvelope is json.Unmarshal of an event for the layout Encode
// writes (members in order, plain strings and integers): one pass, where
// encoding/json checks the whole event and then decodes it. It reports
// false, leaving e to be decoded by encoding/json, for anything else.
func decodeEnvelope(b []byte, e *Event) bool {
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
			var v string
			if v, i, ok = plainJSONString(b, i); !ok {
				return false
			}
			switch envelopeKeys[k] {
			case "src":
				e.Source = v
			case "type":
				e.Type = v
			case "schedd":
				e.Schedd = v
			default:
				e.Machine = v
			}
		case "p":
			end, ok := JSONValueEnd(b, i)
			if !ok || b[i] <= ' ' || end >= len(b) {
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

// plainJSONString reads a string of printable ASCII without escapes
// (encoding/json would replace invalid UTF-8; names are ASCII anyway).
func plainJSONString(b []byte, i int) (string, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return "", 0, false
	}
	j := i + 1
	for j < len(b) && b[j] != '"' {
		if b[j] == '\\' || b[j] < 0x20 || b[j] >= 0x80 {
			return "", 0, false
		}
		j++
	}
	if j >= len(b) {
		return "", 0, false
	}
	return string(b[i+1 : j]), j + 1, true
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

// MsgID is the Nats-Msg-Id of an event: source:seq, so that a republished
// event is dropped by JetStream's duplicate window.
func MsgID(e Event) string {
	return e.Source + ":" + strconv.FormatUint(e.Seq, 10)
}
