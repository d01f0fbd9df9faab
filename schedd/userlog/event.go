package userlog

import "time"

// Event codes (HTCondor's ULogEventNumber).
const (
	JobSubmitted       = 0
	JobExecuting       = 1
	JobCheckpointed    = 3
	JobEvicted         = 4
	JobTerminated      = 5
	ImageSizeUpdated   = 6
	ShadowException    = 7
	Generic            = 8
	JobAborted         = 9
	JobSuspended       = 10
	JobUnsuspended     = 11
	JobHeld            = 12
	JobReleased        = 13
	RemoteError        = 21
	JobDisconnected    = 22
	JobReconnected     = 23
	JobReconnectFailed = 24
	JobAdInformation   = 28
	FileTransfer       = 40
)

// File transfer event types (Event.Transfer), with the text HTCondor writes.
const (
	TransferInputQueued    = 1 // Entered queue to transfer input files
	TransferInputStarted   = 2 // Started transferring input files
	TransferInputFinished  = 3 // Finished transferring input files
	TransferOutputQueued   = 4 // Entered queue to transfer output files
	TransferOutputStarted  = 5 // Started transferring output files
	TransferOutputFinished = 6 // Finished transferring output files
)

var transferTexts = [...]string{
	"",
	"Entered queue to transfer input files",
	"Started transferring input files",
	"Finished transferring input files",
	"Entered queue to transfer output files",
	"Started transferring output files",
	"Finished transferring output files",
}

// Usage is CPU time as the usage lines report it (whole seconds).
type Usage struct {
	User, Sys time.Duration
}

// Attr is one attribute of a job ad information event (028): a name and
// ClassAd source text.
type Attr struct {
	Name, Value string
}

// Event is one event of a job event log. Code selects which fields are
// written; the others are ignored. Strings that the format keeps on one
// line have line breaks replaced by spaces when formatted.
type Event struct {
	Code               int // JobSubmitted, JobExecuting, ...
	Cluster, Proc, Sub int
	Time               time.Time // formatted to the second (or millisecond with FormatOptions.SubSecond)

	// Host is the submit host (000), the execute host (001, 021), the
	// startd address (022, 023) or the host files go to (040), e.g.
	// "<10.0.0.9:9618>".
	Host string
	// SlotName is the slot (001), or the startd's name (022, 023, 024),
	// e.g. "slot1@exec09".
	SlotName string
	// StarterAddr is the starter's address (023).
	StarterAddr string

	// Checkpointed: 004 "(1) Job was checkpointed." else "(0) Job was
	// not checkpointed.".
	Checkpointed bool
	// ReturnValue is the exit code of a normal termination (005).
	ReturnValue int
	// Signal, when not 0, makes a termination abnormal (005).
	Signal int
	// CoreFile names the core file of an abnormal termination (005).
	CoreFile string

	// Usage lines: run (003, 004, 005) and total (005).
	RunRemote, RunLocal, TotalRemote, TotalLocal Usage
	// Bytes moved: run (003: sent for the checkpoint; 004, 005, 007) and
	// total (005).
	BytesSent, BytesReceived           int64
	TotalBytesSent, TotalBytesReceived int64

	// Reason: eviction (004), abort (009, e.g. "via condor_rm (by user
	// alice)"), hold (012), release (013), disconnect (022), reconnect
	// failure (024).
	Reason string
	// HoldCode and HoldSubCode: 012, and 021 when HoldCode is not 0.
	HoldCode, HoldSubCode int
	// EvictCode and EvictSubCode: 004 "Job was evicted. Code N Subcode M"
	// when EvictCode is not 0.
	EvictCode, EvictSubCode int

	// Image size event (006); the memory lines are written when > 0.
	ImageSizeKB, MemoryUsageMB, ResidentSetSizeKB, ProportionalSetSizeKB int64

	// NumPids is the number of processes suspended (010).
	NumPids int

	// Text: submit notes (000), shadow exception message (007), generic
	// text (008), the starter's error (021, may span lines), or, for codes
	// this package does not know, the header text and body lines.
	Text string
	// Daemon names the daemon of a remote error (021); default "starter".
	Daemon string
	// NotCritical makes a remote error (021) a "Message from" rather than
	// an "Error from".
	NotCritical bool

	// Transfer is the file transfer event type (040), TransferInputQueued...
	Transfer int
	// QueueDelay is the seconds spent in the transfer queue (040); 0 omits it.
	QueueDelay int64

	// Attrs are the attributes of a job ad information event (028).
	Attrs []Attr
}
