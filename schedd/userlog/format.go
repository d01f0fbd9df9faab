package userlog

import (
	"fmt"
	"strings"
	"time"
)

// FormatOptions choose the date format, as HTCondor's
// DEFAULT_USERLOG_FORMAT_OPTIONS does. The zero value gives ISO dates in
// local time.
type FormatOptions struct {
	UTC       bool           // dates in UTC, marked with a trailing Z
	Legacy    bool           // "MM/DD HH:MM:SS" instead of ISO dates (no year)
	SubSecond bool           // milliseconds after the seconds
	Location  *time.Location // the local time zone; nil means time.Local

	// DedupWindow is how many bytes at the end of the file Writer.AppendOnce
	// reads back to find events already written; default 64 KiB, and never
	// less than the events being appended.
	DedupWindow int
}

func (o FormatOptions) loc() *time.Location {
	switch {
	case o.UTC:
		return time.UTC
	case o.Location != nil:
		return o.Location
	}
	return time.Local
}

// Format returns the exact text of one event, ending with "...\n". Strings
// are sanitised so that no event can end early or forge another: single-line
// fields lose their line breaks, and multi-line text is indented.
func Format(e Event, opt FormatOptions) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "%03d (%03d.%03d.%03d) ", e.Code, e.Cluster, e.Proc, e.Sub)
	t := e.Time.In(opt.loc())
	if opt.Legacy {
		b.WriteString(t.Format("01/02 15:04:05"))
	} else {
		b.WriteString(t.Format("2006-01-02 15:04:05"))
	}
	if opt.SubSecond {
		fmt.Fprintf(&b, ".%03d", t.Nanosecond()/1e6)
	}
	if opt.UTC {
		b.WriteByte('Z')
	}
	b.WriteByte(' ')
	formatBody(&b, e)
	b.WriteString("...\n")
	return []byte(b.String())
}

// line removes line breaks from a single-line field.
func line(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
}

func rusage(u Usage) string {
	f := func(d time.Duration) string {
		s := int64(d / time.Second)
		if s < 0 {
			s = 0
		}
		return fmt.Sprintf("%d %02d:%02d:%02d", s/86400, s%86400/3600, s%3600/60, s%60)
	}
	return "Usr " + f(u.User) + ", Sys " + f(u.Sys)
}

func formatBody(b *strings.Builder, e Event) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	switch e.Code {
	case JobSubmitted:
		p("Job submitted from host: %s\n", line(e.Host))
		if e.Text != "" {
			p("    %s\n", line(e.Text))
		}
	case JobExecuting:
		p("Job executing on host: %s\n", line(e.Host))
		if e.SlotName != "" {
			p("\tSlotName: %s\n", line(e.SlotName))
		}
	case JobCheckpointed:
		p("Job was checkpointed.\n")
		p("\t%s  -  Run Remote Usage\n", rusage(e.RunRemote))
		p("\t%s  -  Run Local Usage\n", rusage(e.RunLocal))
		p("\t%d  -  Run Bytes Sent By Job For Checkpoint\n", e.BytesSent)
	case JobEvicted:
		if e.EvictCode != 0 {
			p("Job was evicted. Code %d Subcode %d\n", e.EvictCode, e.EvictSubCode)
		} else {
			p("Job was evicted.\n")
		}
		if e.Checkpointed {
			p("\t(1) Job was checkpointed.\n")
		} else {
			p("\t(0) Job was not checkpointed.\n")
		}
		p("\t\t%s  -  Run Remote Usage\n", rusage(e.RunRemote))
		p("\t\t%s  -  Run Local Usage\n", rusage(e.RunLocal))
		p("\t%d  -  Run Bytes Sent By Job\n", e.BytesSent)
		p("\t%d  -  Run Bytes Received By Job\n", e.BytesReceived)
		if e.Reason != "" {
			p("\t%s\n", line(e.Reason)) // HTCondor's JobEvictedEvent: the reason, unlabelled
		}
	case JobTerminated:
		p("Job terminated.\n")
		if e.Signal == 0 {
			p("\t(1) Normal termination (return value %d)\n", e.ReturnValue)
		} else {
			p("\t(0) Abnormal termination (signal %d)\n", e.Signal)
			if e.CoreFile != "" {
				p("\t(1) Corefile in: %s\n", line(e.CoreFile))
			} else {
				p("\t(0) No core file\n")
			}
		}
		p("\t\t%s  -  Run Remote Usage\n", rusage(e.RunRemote))
		p("\t\t%s  -  Run Local Usage\n", rusage(e.RunLocal))
		p("\t\t%s  -  Total Remote Usage\n", rusage(e.TotalRemote))
		p("\t\t%s  -  Total Local Usage\n", rusage(e.TotalLocal))
		p("\t%d  -  Run Bytes Sent By Job\n", e.BytesSent)
		p("\t%d  -  Run Bytes Received By Job\n", e.BytesReceived)
		p("\t%d  -  Total Bytes Sent By Job\n", e.TotalBytesSent)
		p("\t%d  -  Total Bytes Received By Job\n", e.TotalBytesReceived)
	case ImageSizeUpdated:
		p("Image size of job updated: %d\n", e.ImageSizeKB)
		if e.MemoryUsageMB > 0 {
			p("\t%d  -  MemoryUsage of job (MB)\n", e.MemoryUsageMB)
		}
		if e.ResidentSetSizeKB > 0 {
			p("\t%d  -  ResidentSetSize of job (KB)\n", e.ResidentSetSizeKB)
		}
		if e.ProportionalSetSizeKB > 0 {
			p("\t%d  -  ProportionalSetSize of job (KB)\n", e.ProportionalSetSizeKB)
		}
	case ShadowException:
		p("Shadow exception!\n")
		p("\t%s\n", line(e.Text))
		p("\t%d  -  Run Bytes Sent By Job\n", e.BytesSent)
		p("\t%d  -  Run Bytes Received By Job\n", e.BytesReceived)
	case Generic:
		p("%s\n", line(e.Text))
	case JobAborted:
		p("Job was aborted.\n")
		if e.Reason != "" {
			p("\t%s\n", line(e.Reason))
		}
	case JobSuspended:
		p("Job was suspended.\n")
		p("\tNumber of processes actually suspended: %d\n", e.NumPids)
	case JobUnsuspended:
		p("Job was unsuspended.\n")
	case JobHeld:
		p("Job was held.\n")
		if e.Reason != "" {
			p("\t%s\n", line(e.Reason))
		} else {
			p("\tReason unspecified\n")
		}
		p("\tCode %d Subcode %d\n", e.HoldCode, e.HoldSubCode)
	case JobReleased:
		p("Job was released.\n")
		if e.Reason != "" {
			p("\t%s\n", line(e.Reason))
		}
	case RemoteError:
		kind, daemon := "Error", e.Daemon
		if e.NotCritical {
			kind = "Message"
		}
		if daemon == "" {
			daemon = "starter"
		}
		p("%s from %s on %s:\n", kind, line(daemon), line(e.Host))
		for _, l := range strings.Split(strings.ReplaceAll(e.Text, "\r\n", "\n"), "\n") {
			p("\t%s\n", strings.ReplaceAll(l, "\r", " "))
		}
		if e.HoldCode != 0 {
			p("\tCode %d Subcode %d\n", e.HoldCode, e.HoldSubCode)
		}
	case JobDisconnected:
		p("Job disconnected, attempting to reconnect\n")
		p("    %s\n", line(e.Reason))
		p("    Trying to reconnect to %s %s\n", line(e.SlotName), line(e.Host))
	case JobReconnected:
		p("Job reconnected to %s\n", line(e.SlotName))
		p("    startd address: %s\n", line(e.Host))
		p("    starter address: %s\n", line(e.StarterAddr))
	case JobReconnectFailed:
		p("Job reconnection failed\n")
		p("    %s\n", line(e.Reason))
		p("    Can not reconnect to %s, rescheduling job\n", line(e.SlotName))
	case JobAdInformation:
		p("Job ad information event triggered.\n")
		for _, a := range e.Attrs {
			p("%s = %s\n", line(a.Name), line(a.Value))
		}
	case FileTransfer:
		text := "Unknown file transfer event"
		if e.Transfer > 0 && e.Transfer < len(transferTexts) {
			text = transferTexts[e.Transfer]
		}
		p("%s\n", text)
		if e.QueueDelay > 0 {
			p("\tSeconds spent in queue: %d\n", e.QueueDelay)
		}
		if e.Host != "" {
			p("\tTransferring to host: %s\n", line(e.Host))
		}
	default:
		// An event this package does not know: its text as given, the
		// first line in the header, the rest as body lines.
		first, rest, _ := strings.Cut(strings.ReplaceAll(e.Text, "\r\n", "\n"), "\n")
		p("%s\n", line(first))
		if rest != "" {
			for _, l := range strings.Split(rest, "\n") {
				if isSync(l) || looksLikeHeader(l) {
					l = "\t" + l
				}
				p("%s\n", strings.ReplaceAll(l, "\r", " "))
			}
		}
	}
}

// isSync reports whether a line (without its newline) ends an event.
func isSync(l string) bool {
	return l == "..." || l == "...\r"
}
