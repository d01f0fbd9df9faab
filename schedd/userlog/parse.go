package userlog

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// ParseOptions tell Parse how the log's dates were written.
type ParseOptions struct {
	// Location is the time zone of dates without a trailing Z; nil means
	// time.Local.
	Location *time.Location
	// Year is given to legacy "MM/DD" dates, which carry none; 0 leaves
	// year 0.
	Year int
}

// ParseError is a malformed event header; Parse skips to the next "..."
// line and goes on.
type ParseError struct {
	Line int
	Msg  string
}

func (e *ParseError) Error() string { return fmt.Sprintf("user log line %d: %s", e.Line, e.Msg) }

// maxLine bounds one line of a log.
const maxLine = 1 << 20

// Parse reads a job event log. It returns every complete event, in order.
// An event cut short at the end of the input (a writer that crashed while
// writing) is dropped silently. A malformed event header is skipped up to
// the next "..." line; Parse then returns the events it could read together
// with a *ParseError for the first such header. Body lines it does not
// recognise (HTCondor writes more than this package knows) are ignored.
func Parse(r io.Reader) ([]Event, error) {
	return ParseWith(r, ParseOptions{})
}

// ParseWith is Parse with options.
func ParseWith(r io.Reader, opt ParseOptions) ([]Event, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), maxLine)
	sc.Split(scanLines)
	var (
		events   []Event
		firstErr *ParseError
		lineNo   int
		header   string
		headLine int
		body     []string
		inEvent  bool
		skipping bool
	)
	fail := func(line int, err error) {
		if firstErr == nil {
			firstErr = &ParseError{Line: line, Msg: err.Error()}
		}
	}
	for sc.Scan() {
		raw := sc.Text()
		lineNo++
		if !strings.HasSuffix(raw, "\n") {
			break // a torn last line
		}
		l := strings.TrimSuffix(strings.TrimSuffix(raw, "\n"), "\r")
		switch {
		case skipping:
			skipping = !isSync(l)
		case !inEvent:
			if strings.TrimSpace(l) == "" || isSync(l) {
				continue
			}
			if _, _, err := parseHeader(l, opt); err != nil {
				fail(lineNo, err)
				skipping = true
				continue
			}
			header, headLine, body, inEvent = l, lineNo, nil, true
		case isSync(l):
			inEvent = false
			e, err := decode(header, body, opt)
			if err != nil {
				fail(headLine, err)
				continue
			}
			events = append(events, e)
		default:
			body = append(body, l)
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			err = fmt.Errorf("user log line %d is longer than %d bytes: %w", lineNo+1, maxLine, err)
		}
		return events, fmt.Errorf("read user log: %w", err)
	}
	if firstErr != nil {
		return events, firstErr
	}
	return events, nil
}

// scanLines is bufio.ScanLines keeping the newline, so that a torn last
// line can be told from a complete one.
func scanLines(data []byte, atEOF bool) (int, []byte, error) {
	if atEOF && len(data) == 0 {
		return 0, nil, nil
	}
	for i, c := range data {
		if c == '\n' {
			return i + 1, data[:i+1], nil
		}
	}
	if atEOF {
		return len(data), data, nil
	}
	return 0, nil, nil
}

// looksLikeHeader reports whether a line starts like an event header.
func looksLikeHeader(l string) bool {
	i := 0
	for i < len(l) && l[i] >= '0' && l[i] <= '9' {
		i++
	}
	return i >= 3 && strings.HasPrefix(l[i:], " (")
}

// parseHeader splits "NNN (C.P.S) DATE TIME Text" into an event with its
// code, ids and time, and the text.
func parseHeader(h string, opt ParseOptions) (Event, string, error) {
	var e Event
	code, rest, ok := strings.Cut(h, " ")
	if !ok || len(code) < 3 {
		return e, "", fmt.Errorf("%q is not an event header", clip(h))
	}
	n, err := strconv.Atoi(code)
	if err != nil || n < 0 {
		return e, "", fmt.Errorf("%q is not an event header: bad event code", clip(h))
	}
	e.Code = n
	if !strings.HasPrefix(rest, "(") {
		return e, "", fmt.Errorf("%q is not an event header: no job id", clip(h))
	}
	id, rest, ok := strings.Cut(rest[1:], ") ")
	if !ok {
		return e, "", fmt.Errorf("%q is not an event header: no job id", clip(h))
	}
	parts := strings.Split(id, ".")
	if len(parts) != 3 {
		return e, "", fmt.Errorf("%q is not an event header: job id %q", clip(h), id)
	}
	ids := [3]*int{&e.Cluster, &e.Proc, &e.Sub}
	for i, p := range parts {
		v, err := strconv.Atoi(p)
		if err != nil || v < 0 {
			return e, "", fmt.Errorf("%q is not an event header: job id %q", clip(h), id)
		}
		*ids[i] = v
	}
	date, rest, ok1 := strings.Cut(rest, " ")
	clock, text, _ := strings.Cut(rest, " ")
	if !ok1 || clock == "" {
		return e, "", fmt.Errorf("%q is not an event header: no date", clip(h))
	}
	t, err := parseTime(date, clock, opt)
	if err != nil {
		return e, "", fmt.Errorf("%q is not an event header: %v", clip(h), err)
	}
	e.Time = t
	return e, text, nil
}

func parseTime(date, clock string, opt ParseOptions) (time.Time, error) {
	loc := opt.Location
	if loc == nil {
		loc = time.Local
	}
	if strings.HasSuffix(clock, "Z") {
		clock = strings.TrimSuffix(clock, "Z")
		loc = time.UTC
	}
	frac := ""
	if i := strings.IndexByte(clock, '.'); i >= 0 {
		clock, frac = clock[:i], clock[i:]
	}
	var t time.Time
	var err error
	if strings.Contains(date, "/") {
		t, err = time.ParseInLocation("01/02 15:04:05", date+" "+clock, loc)
		if err == nil {
			t = t.AddDate(opt.Year-t.Year(), 0, 0)
		}
	} else {
		t, err = time.ParseInLocation("2006-01-02 15:04:05", date+" "+clock, loc)
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("bad date %s %s", date, clock)
	}
	if frac != "" {
		f, err := strconv.ParseFloat("0"+frac, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("bad date %s %s%s", date, clock, frac)
		}
		t = t.Add(time.Duration(f * float64(time.Second)).Round(time.Millisecond))
	}
	return t, nil
}

// decode builds an event from its header and body lines. Only the header
// can make it fail.
func decode(header string, body []string, opt ParseOptions) (Event, error) {
	e, text, err := parseHeader(header, opt)
	if err != nil {
		return e, err
	}
	field := func(l, prefix string) (string, bool) {
		t := strings.TrimLeft(l, " \t")
		if strings.HasPrefix(t, prefix) {
			return t[len(prefix):], true
		}
		return "", false
	}
	trimmed := func(l string) string { return strings.TrimLeft(l, " \t") }
	// bytesLine parses "N  -  What".
	bytesLine := func(l string) (int64, string, bool) {
		n, what, ok := strings.Cut(trimmed(l), "  -  ")
		if !ok {
			return 0, "", false
		}
		v, err := strconv.ParseFloat(n, 64)
		if err != nil {
			return 0, "", false
		}
		return int64(v), what, true
	}
	usageLine := func(l string) (Usage, string, bool) {
		u, what, ok := strings.Cut(trimmed(l), "  -  ")
		if !ok {
			return Usage{}, "", false
		}
		var ud, uh, um, us, sd, sh, sm, ss int64
		if _, err := fmt.Sscanf(u, "Usr %d %d:%d:%d, Sys %d %d:%d:%d", &ud, &uh, &um, &us, &sd, &sh, &sm, &ss); err != nil {
			return Usage{}, "", false
		}
		sec := func(d, h, m, s int64) time.Duration {
			return time.Duration(((d*24+h)*60+m)*60+s) * time.Second
		}
		return Usage{User: sec(ud, uh, um, us), Sys: sec(sd, sh, sm, ss)}, what, true
	}
	usages := func() {
		for _, l := range body {
			if u, what, ok := usageLine(l); ok {
				switch what {
				case "Run Remote Usage":
					e.RunRemote = u
				case "Run Local Usage":
					e.RunLocal = u
				case "Total Remote Usage":
					e.TotalRemote = u
				case "Total Local Usage":
					e.TotalLocal = u
				}
				continue
			}
			if n, what, ok := bytesLine(l); ok {
				switch what {
				case "Run Bytes Sent By Job", "Run Bytes Sent By Job For Checkpoint":
					e.BytesSent = n
				case "Run Bytes Received By Job":
					e.BytesReceived = n
				case "Total Bytes Sent By Job":
					e.TotalBytesSent = n
				case "Total Bytes Received By Job":
					e.TotalBytesReceived = n
				}
			}
		}
	}
	codes := func(s string) (int, int, bool) {
		var c, sc int
		if _, err := fmt.Sscanf(s, "Code %d Subcode %d", &c, &sc); err != nil {
			return 0, 0, false
		}
		return c, sc, true
	}
	first := func() string {
		if len(body) == 0 {
			return ""
		}
		return trimmed(body[0])
	}

	switch e.Code {
	case JobSubmitted:
		e.Host = strings.TrimPrefix(text, "Job submitted from host: ")
		if len(body) > 0 {
			e.Text = first()
		}
	case JobExecuting:
		e.Host = strings.TrimPrefix(text, "Job executing on host: ")
		for _, l := range body {
			if v, ok := field(l, "SlotName: "); ok {
				e.SlotName = v
			}
		}
	case JobCheckpointed:
		usages()
	case JobEvicted:
		if rest, ok := strings.CutPrefix(text, "Job was evicted. "); ok {
			e.EvictCode, e.EvictSubCode, _ = codes(rest)
		}
		for _, l := range body {
			t := trimmed(l)
			_, _, isUsage := usageLine(l)
			_, _, isBytes := bytesLine(l)
			switch {
			case t == "(1) Job was checkpointed.":
				e.Checkpointed = true
			case strings.HasPrefix(t, "(0) ") || strings.HasPrefix(t, "(1) ") || isUsage || isBytes || t == "":
			default:
				// The reason, the last line as HTCondor writes it; vmpool
				// before it labelled it "Reason: ".
				e.Reason = strings.TrimPrefix(t, "Reason: ")
			}
		}
		usages()
	case JobTerminated:
		for _, l := range body {
			t := trimmed(l)
			var n int
			switch {
			case strings.HasPrefix(t, "(1) Normal termination (return value "):
				if _, err := fmt.Sscanf(t, "(1) Normal termination (return value %d)", &n); err == nil {
					e.ReturnValue = n
				}
			case strings.HasPrefix(t, "(0) Abnormal termination (signal "):
				if _, err := fmt.Sscanf(t, "(0) Abnormal termination (signal %d)", &n); err == nil {
					e.Signal = n
				}
			case strings.HasPrefix(t, "(1) Corefile in: "):
				e.CoreFile = strings.TrimPrefix(t, "(1) Corefile in: ")
			}
		}
		usages()
	case ImageSizeUpdated:
		if v, err := strconv.ParseInt(strings.TrimPrefix(text, "Image size of job updated: "), 10, 64); err == nil {
			e.ImageSizeKB = v
		}
		for _, l := range body {
			if n, what, ok := bytesLine(l); ok {
				switch what {
				case "MemoryUsage of job (MB)":
					e.MemoryUsageMB = n
				case "ResidentSetSize of job (KB)":
					e.ResidentSetSizeKB = n
				case "ProportionalSetSize of job (KB)":
					e.ProportionalSetSizeKB = n
				}
			}
		}
	case ShadowException:
		if len(body) > 0 {
			e.Text = first()
		}
		usages()
	case Generic:
		e.Text = text
	case JobAborted, JobReleased:
		e.Reason = first()
	case JobSuspended:
		for _, l := range body {
			if v, ok := field(l, "Number of processes actually suspended: "); ok {
				e.NumPids, _ = strconv.Atoi(v)
			}
		}
	case JobUnsuspended:
	case JobHeld:
		for i, l := range body {
			if c, s, ok := codes(trimmed(l)); ok && i > 0 {
				e.HoldCode, e.HoldSubCode = c, s
			} else if i == 0 && trimmed(l) != "Reason unspecified" {
				e.Reason = trimmed(l)
			}
		}
	case RemoteError:
		kind, rest, _ := strings.Cut(text, " from ")
		e.NotCritical = kind == "Message"
		daemon, host, _ := strings.Cut(rest, " on ")
		if daemon != "starter" {
			e.Daemon = daemon
		}
		e.Host = strings.TrimSuffix(host, ":")
		var lines []string
		for i, l := range body {
			if c, s, ok := codes(trimmed(l)); ok && i == len(body)-1 && c != 0 {
				e.HoldCode, e.HoldSubCode = c, s
				continue
			}
			lines = append(lines, strings.TrimPrefix(l, "\t"))
		}
		e.Text = strings.Join(lines, "\n")
	case JobDisconnected:
		for i, l := range body {
			if v, ok := field(l, "Trying to reconnect to "); ok {
				e.SlotName, e.Host, _ = strings.Cut(v, " ")
			} else if i == 0 {
				e.Reason = trimmed(l)
			}
		}
	case JobReconnected:
		e.SlotName = strings.TrimPrefix(text, "Job reconnected to ")
		for _, l := range body {
			if v, ok := field(l, "startd address: "); ok {
				e.Host = v
			} else if v, ok := field(l, "starter address: "); ok {
				e.StarterAddr = v
			}
		}
	case JobReconnectFailed:
		for i, l := range body {
			if v, ok := field(l, "Can not reconnect to "); ok {
				e.SlotName = strings.TrimSuffix(v, ", rescheduling job")
			} else if i == 0 {
				e.Reason = trimmed(l)
			}
		}
	case JobAdInformation:
		for _, l := range body {
			if n, v, ok := strings.Cut(trimmed(l), " = "); ok {
				e.Attrs = append(e.Attrs, Attr{Name: n, Value: v})
			}
		}
	case FileTransfer:
		for i, t := range transferTexts {
			if i > 0 && t == text {
				e.Transfer = i
			}
		}
		for _, l := range body {
			if v, ok := field(l, "Seconds spent in queue: "); ok {
				e.QueueDelay, _ = strconv.ParseInt(v, 10, 64)
			} else if v, ok := field(l, "Transferring to host: "); ok {
				e.Host = v
			}
		}
	default:
		e.Text = strings.Join(append([]string{text}, body...), "\n")
	}
	return e, nil
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
