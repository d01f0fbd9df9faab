package schedd

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"

	"github.com/vmpool/vmpool/classad"
	"github.com/vmpool/vmpool/events"
)

// A snapshot is the queue as of one index of the schedd's log, kept beside
// the log (SnapshotFile) so that a restart applies only the events after
// it instead of the whole log. It is a cache, never the record: the log
// is. A restart that cannot use it (absent, unreadable, from another
// version, or ahead of the log) replays from event 1, and replay from
// zero must give the identical queue, byte for byte in this encoding
// (TestSnapshotEqualsReplay, vmpool replay --check).

// SnapshotFile is the snapshot's file name in the schedd's directory.
const SnapshotFile = "snapshot.json"

// snapshotVersion changes whenever the encoding or Apply's meaning does.
// Version 2 writes one JSON document per line: the header, then each
// cluster and job, so a restart decodes them on every CPU.
// Version 3 adds a job's LastCkptTime.
// Version 4: Apply forgets the oldest jobs of the history on a
// HistoryTrimmed, which a schedd of version 3 ignores (its snapshot of a
// log holding one would not be its replay of that log).
const snapshotVersion = 4

type snapshot struct {
	Version     int    `json:"version"`
	Index       uint64 `json:"index"` // every log record up to it is applied
	Name        string `json:"name"`
	LastCluster int    `json:"last_cluster"`
	Applied     uint64 `json:"applied"`
	// The clusters (every cluster a job in the queue or history belongs
	// to), the jobs and the history follow the header, one per line; the
	// header holds their numbers.
	NClusters int                     `json:"clusters"`
	NJobs     int                     `json:"jobs"`
	NHistory  int                     `json:"history"`
	Submits   map[string]int          `json:"submits"`
	Reserved  map[string]int          `json:"reserved"`
	Claims    map[string]events.JobID `json:"claims"`
	UserLogs  map[int]string          `json:"user_logs"`
	ProcLogs  []snapProcLog           `json:"proc_logs"`
	LogOwners map[int]string          `json:"log_owners"`
}

type snapCluster struct {
	*Cluster
	AdText string `json:"ad"`   // new ClassAd syntax
	Live   bool   `json:"live"` // in Queue.Clusters (else only history points to it)
}

type snapJob struct {
	*Job
	ClusterID int     `json:"cluster_id"`
	OwnAd     *string `json:"own_ad,omitempty"`
}

// decodeFast reads a job's line as json.Marshal wrote it, and reports
// false, having changed nothing, for anything else (decodeLines then uses
// encoding/json, whose reflection was most of a restart's time: a line
// per job). FuzzSnapJobLine holds it to encoding/json.
func (sj *snapJob) decodeFast(b []byte) bool {
	x := events.NewJSONReader(b)
	var v snapJob
	// encoding/json makes the embedded job at its first member, null or
	// not; a line without one leaves it nil.
	job := func() *Job {
		if v.Job == nil {
			v.Job = new(Job)
		}
		return v.Job
	}
	x.Object(func(name []byte) {
		switch string(name) {
		case "cluster_id":
			v.ClusterID = x.Int()
		case "own_ad":
			if x.Null() {
				return
			}
			t := x.Str()
			v.OwnAd = &t
		case "Claim":
			j := job()
			if x.Null() {
				return
			}
			j.Claim = new(Claim)
			x.Object(func(name []byte) { claimMember(x, j.Claim, name) })
		default:
			jobMember(x, job(), name)
		}
	})
	if !x.Done() {
		return false
	}
	*sj = v
	return true
}

func jobMember(x *events.JSONReader, j *Job, name []byte) {
	switch string(name) {
	case "ID":
		j.ID = x.JobID()
	case "Inputs":
		j.Inputs = x.FileRefs()
	case "OwnIwd":
		j.OwnIwd = x.Name()
	case "OwnLog":
		j.OwnLog = x.Str()
	case "Status":
		j.Status = x.Int()
	case "EnteredCurrentStatus":
		j.EnteredCurrentStatus = x.Int64()
	case "HoldCode":
		j.HoldCode = x.Int()
	case "HoldSub":
		j.HoldSub = x.Int()
	case "HoldReason":
		j.HoldReason = x.Str()
	case "LastHoldReason":
		j.LastHoldReason = x.Str()
	case "NumHolds":
		j.NumHolds = x.Int()
	case "ReleaseReason":
		j.ReleaseReason = x.Str()
	case "RemoveReason":
		j.RemoveReason = x.Str()
	case "RemoteHost":
		j.RemoteHost = x.Name()
	case "LastRemoteHost":
		j.LastRemoteHost = x.Name()
	case "JobStartDate":
		j.JobStartDate = x.Int64()
	case "JobCurrentStartDate":
		j.JobCurrentStartDate = x.Int64()
	case "CompletionDate":
		j.CompletionDate = x.Int64()
	case "NumJobStarts":
		j.NumJobStarts = x.Int()
	case "NumRestarts":
		j.NumRestarts = x.Int()
	case "NumCkpts":
		j.NumCkpts = x.Int()
	case "LastCkptTime":
		j.LastCkptTime = x.Int64()
	case "ExitCode":
		j.ExitCode = x.Int()
	case "LastVacateTime":
		j.LastVacateTime = x.Int64()
	case "Checkpoints":
		j.Checkpoints = x.Checkpoints()
	case "Outputs":
		j.Outputs = x.FileRefs()
	case "BytesSent":
		j.BytesSent = x.Int64()
	case "BytesRecv":
		j.BytesRecv = x.Int64()
	case "RemoteWallClock":
		j.RemoteWallClock = x.Int64()
	case "RemoteUserCPU":
		j.RemoteUserCPU = x.Int64()
	case "RemoteSysCPU":
		j.RemoteSysCPU = x.Int64()
	default:
		x.Fail()
	}
}

func claimMember(x *events.JSONReader, c *Claim, name []byte) {
	switch string(name) {
	case "ID":
		c.ID = x.Str()
	case "Negotiator":
		c.Negotiator = x.Name()
	case "Startd":
		c.Startd = x.Name()
	case "Slot":
		c.Slot = x.Name()
	case "Machine":
		c.Machine = x.Name()
	case "State":
		c.State = ClaimState(x.Int())
	case "StopMode":
		c.StopMode = x.Name()
	case "StopFast":
		c.StopFast = x.Bool()
	case "Outputs":
		c.Outputs = x.FileRefs()
	case "Exit":
		c.Exit = x.VMEvent()
	default:
		x.Fail()
	}
}

type snapProcLog struct {
	Job  events.JobID `json:"job"`
	Path string       `json:"path"`
}

// MarshalSnapshot encodes q as the snapshot of log index idx. The
// encoding is canonical (ordered), so equal queues encode equally.
func MarshalSnapshot(q *Queue, idx uint64) ([]byte, error) {
	s := snapshot{Version: snapshotVersion, Index: idx, Name: q.Name, LastCluster: q.LastCluster, Applied: q.Applied,
		Submits: q.Submits, Reserved: q.Reserved, Claims: q.Claims, UserLogs: q.UserLogs, LogOwners: q.LogOwners}
	clusters := map[int]*Cluster{}
	jobs := append(q.Sorted(), q.History...)
	for _, j := range jobs {
		clusters[j.Cluster.ID] = j.Cluster
	}
	for id, c := range q.Clusters {
		clusters[id] = c
	}
	ids := make([]int, 0, len(clusters))
	for id := range clusters {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	cs := make([]*Cluster, 0, len(ids))
	for _, id := range ids {
		c := clusters[id]
		if q.Clusters[id] != nil && q.Clusters[id] != c {
			return nil, fmt.Errorf("snapshot: two clusters %d", id)
		}
		cs = append(cs, c)
	}
	for id, p := range q.ProcLogs {
		s.ProcLogs = append(s.ProcLogs, snapProcLog{Job: id, Path: p})
	}
	sort.Slice(s.ProcLogs, func(a, b int) bool {
		x, y := s.ProcLogs[a].Job, s.ProcLogs[b].Job
		return x.Cluster < y.Cluster || x.Cluster == y.Cluster && x.Proc < y.Proc
	})
	s.NClusters, s.NJobs, s.NHistory = len(cs), len(q.Jobs), len(q.History)
	var head bytes.Buffer
	enc := json.NewEncoder(&head) // ends the header's line
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return nil, fmt.Errorf("encode snapshot: %w", err)
	}
	// The schedd writes a snapshot with its queue read-locked: the lines
	// (and the ads' text) are encoded on every CPU.
	clusterLines, err := encodeLines(cs, func(c *Cluster) any {
		return snapCluster{Cluster: c, AdText: c.Ad().OwnString(), Live: q.Clusters[c.ID] == c}
	})
	if err != nil {
		return nil, fmt.Errorf("encode snapshot clusters: %w", err)
	}
	jobLines, err := encodeLines(jobs, func(j *Job) any {
		sj := snapJob{Job: j, ClusterID: j.Cluster.ID}
		if own := j.Own(); own != nil {
			t := own.OwnString()
			sj.OwnAd = &t
		}
		return sj
	})
	if err != nil {
		return nil, fmt.Errorf("encode snapshot jobs: %w", err)
	}
	parts := append([]*bytes.Buffer{&head}, append(clusterLines, jobLines...)...)
	n := 0
	for _, part := range parts {
		n += part.Len()
	}
	out := make([]byte, 0, n)
	for _, part := range parts {
		out = append(out, part.Bytes()...)
	}
	return out, nil
}

// encodeLines encodes line(x) for each of items, a line each (JSON
// without HTML escapes), in contiguous runs of items on every CPU; the
// runs' buffers, in order, hold the lines in order.
func encodeLines[T any](items []T, line func(T) any) ([]*bytes.Buffer, error) {
	parts := make([]*bytes.Buffer, cpuRuns(len(items)))
	err := inRuns(len(items), len(parts), func(r, lo, hi int) error {
		var b bytes.Buffer
		parts[r] = &b
		enc := json.NewEncoder(&b) // each value on a line of its own
		enc.SetEscapeHTML(false)
		for _, x := range items[lo:hi] {
			if err := enc.Encode(line(x)); err != nil {
				return err
			}
		}
		return nil
	})
	return parts, err
}

// decodeLines decodes each line into its element of out, the lines split
// among the CPUs; first is the snapshot's line number of lines[0].
func decodeLines[T any](lines [][]byte, out []T, first int) error {
	return inRuns(len(lines), cpuRuns(len(lines)), func(_, lo, hi int) error {
		for i := lo; i < hi; i++ {
			if f, ok := any(&out[i]).(interface{ decodeFast([]byte) bool }); ok && f.decodeFast(lines[i]) {
				continue
			}
			if err := json.Unmarshal(lines[i], &out[i]); err != nil {
				return fmt.Errorf("line %d: %w", first+i, err)
			}
		}
		return nil
	})
}

// cpuRuns is how many runs n items are split into: one per CPU, fewer
// for fewer than 1,024 items a CPU.
func cpuRuns(n int) int { return min(runtime.GOMAXPROCS(0), max(1, n/1024)) }

// inRuns splits 0..n-1 into runs contiguous ranges, calls run on each at
// once (r is the run's number, lo..hi its range), and joins their errors.
func inRuns(n, runs int, run func(r, lo, hi int) error) error {
	errs := make([]error, runs)
	var wg sync.WaitGroup
	for r := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[r] = run(r, r*n/runs, (r+1)*n/runs)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// UnmarshalSnapshot decodes a snapshot into a queue and the log index it
// reflects.
func UnmarshalSnapshot(data []byte) (*Queue, uint64, error) {
	lines := bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
	var s snapshot
	if err := json.Unmarshal(lines[0], &s); err != nil {
		return nil, 0, fmt.Errorf("decode snapshot: %w", err)
	}
	if s.Version != snapshotVersion {
		return nil, 0, fmt.Errorf("snapshot version %d, this schedd reads %d", s.Version, snapshotVersion)
	}
	if s.NClusters < 0 || s.NJobs < 0 || s.NHistory < 0 || len(lines)-1 != s.NClusters+s.NJobs+s.NHistory {
		return nil, 0, fmt.Errorf("decode snapshot: %d lines after the header for %d clusters, %d jobs and %d in the history",
			len(lines)-1, s.NClusters, s.NJobs, s.NHistory)
	}
	snapClusters := make([]snapCluster, s.NClusters)
	jobs := make([]snapJob, s.NJobs+s.NHistory)
	if err := decodeLines(lines[1:1+s.NClusters], snapClusters, 2); err != nil {
		return nil, 0, fmt.Errorf("decode snapshot clusters: %w", err)
	}
	if err := decodeLines(lines[1+s.NClusters:], jobs, 2+s.NClusters); err != nil {
		return nil, 0, fmt.Errorf("decode snapshot jobs: %w", err)
	}
	q := NewQueue(s.Name)
	q.LastCluster, q.Applied = s.LastCluster, s.Applied
	for _, m := range []*map[string]int{&s.Submits, &s.Reserved} {
		if *m == nil {
			*m = map[string]int{}
		}
	}
	q.Submits, q.Reserved = s.Submits, s.Reserved
	if s.Claims != nil {
		q.Claims = s.Claims
	}
	if s.UserLogs != nil {
		q.UserLogs = s.UserLogs
	}
	if s.LogOwners != nil {
		q.LogOwners = s.LogOwners
	}
	for _, pl := range s.ProcLogs {
		q.ProcLogs[pl.Job] = pl.Path
	}
	clusters := map[int]*Cluster{}
	for _, sc := range snapClusters {
		if sc.Cluster == nil {
			return nil, 0, fmt.Errorf("snapshot: empty cluster")
		}
		// Parsed when first read, as a replayed cluster's ad is: a queue
		// of 20,000 clusters spent a second parsing ads at restart,
		// most never read before the cluster leaves the queue.
		sc.Lazy = snapshotAd(sc.AdText, nil)
		clusters[sc.ID] = sc.Cluster
		if sc.Live {
			q.Clusters[sc.ID] = sc.Cluster
		}
	}
	job := func(sj snapJob) (*Job, error) {
		if sj.Job == nil {
			return nil, fmt.Errorf("snapshot: empty job")
		}
		c := clusters[sj.ClusterID]
		if c == nil {
			return nil, fmt.Errorf("snapshot: job %s of unknown cluster %d", sj.ID, sj.ClusterID)
		}
		sj.Cluster = c
		if sj.OwnAd != nil {
			sj.OwnLazy = snapshotAd(*sj.OwnAd, c)
		}
		return sj.Job, nil
	}
	for _, sj := range jobs[:s.NJobs] {
		j, err := job(sj)
		if err != nil {
			return nil, 0, err
		}
		q.Jobs[j.ID] = j
	}
	for _, sj := range jobs[s.NJobs:] {
		j, err := job(sj)
		if err != nil {
			return nil, 0, err
		}
		q.History = append(q.History, j)
	}
	return q, s.Index, nil
}

// snapshotAd is the ad a snapshot holds as text, parsed when first read;
// a job's own ad (cluster non-nil) has the cluster's ad for parent. The
// schedd wrote the text from an ad; should it not parse (a snapshot
// damaged in a way its JSON survives), the ad is one whose Requirements
// is an error literal, which matches nothing, rather than a restart
// refused.
func snapshotAd(text string, cluster *Cluster) *classad.Lazy {
	return classad.NewLazy(func() *classad.Ad {
		ad, err := classad.ParseAd(text)
		if err != nil {
			ad = classad.NewAd()
			ad.SetValue("Requirements", classad.Error())
		}
		if cluster != nil {
			ad.SetParent(cluster.Ad())
		}
		return ad
	})
}

// SnapshotPath is where the schedd whose directory is dir keeps its
// snapshot.
func SnapshotPath(dir string) string { return filepath.Join(dir, SnapshotFile) }

// writeSnapshot writes data to path atomically: the old snapshot or the
// whole new one.
func writeSnapshot(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write snapshot: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write snapshot %s: %w", path, err)
	}
	return nil
}

// Restore rebuilds a schedd's queue from the snapshot at snapPath and the
// log records after it, or from the whole log when the snapshot cannot be
// used (the returned note says why; "" when it was used or absent).
func Restore(l *events.Log, name, snapPath string) (q *Queue, fromSnapshot bool, note string, err error) {
	defer events.RaiseGC()()
	if data, rerr := os.ReadFile(snapPath); rerr == nil {
		sq, idx, uerr := UnmarshalSnapshot(data)
		switch {
		case uerr != nil:
			note = uerr.Error()
		case sq.Name != name:
			note = fmt.Sprintf("the snapshot is of schedd %q", sq.Name)
		case idx > l.LastIndex():
			note = fmt.Sprintf("the snapshot (index %d) is ahead of the log (index %d)", idx, l.LastIndex())
		default:
			err := l.Scan(idx+1, func(_ uint64, e events.Event) error {
				Apply(sq, e)
				return nil
			})
			if err != nil {
				return nil, false, "", err
			}
			return sq, true, "", nil
		}
	} else if !os.IsNotExist(rerr) {
		note = rerr.Error()
	}
	q, err = Replay(l, name, 0)
	return q, false, note, err
}
