// Package schedd owns the job queue of one submit point: it takes submits
// and user actions (rm, hold, release, vacate), takes the negotiator's
// matches, claims slots on startds, folds what the startds report into the
// queue, brings returned disks into the submit directory and writes the
// users' job event logs.
//
// Its queue is a projection of its event log: Decide (pure) validates a
// command against the queue and returns the events recording it; Apply
// (pure, total) folds an event into the queue. The Schedd type is the I/O
// shell around them. It imports events and classad, never negotiator or
// startd.
package schedd

import (
	"sort"

	"github.com/vmpool/vmpool/classad"
	"github.com/vmpool/vmpool/events"
)

// Job states (JobStatus), as HTCondor numbers them.
const (
	Idle      = 1
	Running   = 2
	Removed   = 3
	Completed = 4
	Held      = 5
)

// StatusLetter is condor_q's ST column for a status.
func StatusLetter(status int) string {
	switch status {
	case Idle:
		return "I"
	case Running:
		return "R"
	case Removed:
		return "X"
	case Completed:
		return "C"
	case Held:
		return "H"
	case 6:
		return ">"
	case 7:
		return "S"
	}
	return "?"
}

// Queue is the schedd's state: the jobs in the queue and those that left
// it. Apply mutates it in place; it is owned by the schedd's loop and read
// by queries under the loop's read lock.
type Queue struct {
	Name        string // this schedd's name
	LastCluster int    // highest cluster id handed out
	Clusters    map[int]*Cluster
	Jobs        map[events.JobID]*Job // in the queue
	History     []*Job                // left the queue (Completed, Removed), oldest first
	Submits     map[string]int        // submit id -> cluster, so a retried submit is not queued twice
	Reserved    map[string]int        // submit id -> reserved cluster id not yet used
	// Claims indexes jobs by their current claim id.
	Claims map[string]events.JobID
	// UserLogs is each cluster's user log, and ProcLogs a proc's where it
	// differs (kept after the jobs leave the queue: their last events
	// still go there).
	UserLogs map[int]string
	ProcLogs map[events.JobID]string
	// LogOwners is whose each cluster's user logs are: the schedd writes
	// them as that user.
	LogOwners map[int]string
	// Applied counts events applied (for replay checks).
	Applied uint64
}

// NewQueue returns an empty queue for schedd name.
func NewQueue(name string) *Queue {
	return &Queue{Name: name, Clusters: map[int]*Cluster{}, Jobs: map[events.JobID]*Job{},
		Submits: map[string]int{}, Reserved: map[string]int{}, Claims: map[string]events.JobID{},
		UserLogs: map[int]string{}, ProcLogs: map[events.JobID]string{}, LogOwners: map[int]string{}}
}

// Cluster is what the procs of one submit share.
type Cluster struct {
	ID         int
	Owner      string
	SubmitHost string
	File       string
	Iwd        string
	UserLog    string
	QDate      int64 // unix seconds
	// Lazy is the submitted attributes, parsed when first read (Ad); a
	// snapshot prints them in ClassAd syntax.
	Lazy     *classad.Lazy `json:"-"`
	Inputs   []events.FileRef
	NumProcs int
	InQueue  int // procs still in the queue
}

// ClaimState is where a job's claim on a slot stands.
type ClaimState int

// Claim states.
const (
	ClaimMatched  ClaimState = iota + 1 // the schedd will request the claim
	ClaimClaimed                        // the startd accepted it
	ClaimRunning                        // the VM runs
	ClaimExited                         // the guest powered off; outputs are being fetched
	ClaimStopping                       // the schedd asked the startd to end it
)

func (s ClaimState) String() string {
	return [...]string{"", "matched", "claimed", "running", "exited", "stopping"}[s]
}

// Claim is a job's hold on a slot.
type Claim struct {
	ID         string
	Negotiator string
	Startd     string
	Slot       string
	Machine    string
	State      ClaimState
	StopMode   string // events.ModeVacate or events.ModeKill, while Stopping
	// StopFast: a vacate asked with -fast (no checkpoint, no grace).
	StopFast bool `json:",omitempty"`
	Outputs  []events.FileRef
	Exit     *events.VMEventPayload // set in ClaimExited
}

// Job is one proc: its own attributes over its cluster's, and the dynamic
// state the queue tracks as typed fields (rendered into the job ad on
// demand, see Ad).
type Job struct {
	ID      events.JobID
	Cluster *Cluster      `json:"-"` // a snapshot names it by id
	OwnLazy *classad.Lazy `json:"-"` // per-proc attributes over the cluster's (Own; nil: none)
	Inputs  []events.FileRef
	OwnIwd  string // initialdir when it differs from the cluster's
	OwnLog  string // user log when it differs from the cluster's

	Status               int
	EnteredCurrentStatus int64 // unix seconds
	HoldCode, HoldSub    int
	HoldReason           string
	LastHoldReason       string
	NumHolds             int
	ReleaseReason        string
	RemoveReason         string

	Claim               *Claim
	RemoteHost          string
	LastRemoteHost      string
	JobStartDate        int64
	JobCurrentStartDate int64
	CompletionDate      int64
	NumJobStarts        int
	NumRestarts         int
	NumCkpts            int
	LastCkptTime        int64 // unix seconds of the newest checkpoint (0: none); kept when the checkpoints go
	ExitCode            int
	LastVacateTime      int64
	// Checkpoints are the job's good checkpoints, newest first (at most
	// keepCheckpoints): a resume falls back to the older when the newer
	// turns out unusable.
	Checkpoints     []events.Checkpoint
	Outputs         []events.FileRef
	BytesSent       int64 // bytes brought to its runs' machines, summed over runs (evicted ones too)
	BytesRecv       int64 // bytes its runs sent back, summed likewise
	RemoteWallClock int64 // nanoseconds of VM run time, summed over runs
	// RemoteUserCPU and RemoteSysCPU: nanoseconds of CPU the runs' VMs
	// used on their machines (RemoteUserCpu, RemoteSysCpu), as their
	// startds reported them at exit or eviction.
	RemoteUserCPU int64
	RemoteSysCPU  int64
}

// Owner is the job's owner.
func (j *Job) Owner() string { return j.Cluster.Owner }

// keepCheckpoints is how many checkpoints a job keeps to fall back on.
const keepCheckpoints = 2

// addCheckpoint records a new checkpoint, numbering it.
func (j *Job) addCheckpoint(cp events.Checkpoint) {
	j.NumCkpts++
	cp.Seq = j.NumCkpts
	j.LastCkptTime = cp.Taken / 1e9
	j.Checkpoints = append([]events.Checkpoint{cp}, j.Checkpoints...)
	if len(j.Checkpoints) > keepCheckpoints {
		j.Checkpoints = j.Checkpoints[:keepCheckpoints]
	}
}

// Iwd is the job's initial working directory: returned disks go there.
func (j *Job) Iwd() string {
	if j.OwnIwd != "" {
		return j.OwnIwd
	}
	return j.Cluster.Iwd
}

// UserLog is the job's user log path ("" for none).
func (j *Job) UserLog() string {
	if j.OwnLog != "" {
		return j.OwnLog
	}
	return j.Cluster.UserLog
}

// UserLogOwner is the user whose user log UserLogOf names.
func (q *Queue) UserLogOwner(id events.JobID) string { return q.LogOwners[id.Cluster] }

// UserLogOf is the user log of a job that is or was in the queue.
func (q *Queue) UserLogOf(id events.JobID) string {
	if p, ok := q.ProcLogs[id]; ok {
		return p
	}
	return q.UserLogs[id.Cluster]
}

// Sorted returns the queue's jobs in id order.
func (q *Queue) Sorted() []*Job {
	out := make([]*Job, 0, len(q.Jobs))
	for _, j := range q.Jobs {
		out = append(out, j)
	}
	sortJobs(out)
	return out
}

func sortJobs(js []*Job) {
	sort.Slice(js, func(a, b int) bool {
		if js[a].ID.Cluster != js[b].ID.Cluster {
			return js[a].ID.Cluster < js[b].ID.Cluster
		}
		return js[a].ID.Proc < js[b].ID.Proc
	})
}

// Ad is the cluster's submitted attributes as an ad, parsed the first
// time it is asked for (classad.Lazy: replaying a log builds a cluster
// for every submit ever made, and most are never read again).
func (c *Cluster) Ad() *classad.Ad { return c.Lazy.Get() }

// Own is the job's own submitted attributes (a proc's that differ from
// its cluster's), chained to its cluster's ad; nil when it has none.
func (j *Job) Own() *classad.Ad {
	if j.OwnLazy == nil {
		return nil
	}
	return j.OwnLazy.Get()
}
