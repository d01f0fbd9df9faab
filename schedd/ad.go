package schedd

import (
	"strconv"
	"strings"
	"time"

	"github.com/vmpool/vmpool/classad"
)

// staticAd is the job's submitted attributes: its own over its cluster's.
func (j *Job) staticAd() *classad.Ad {
	if j.OwnLazy != nil {
		return j.OwnLazy.Get()
	}
	return j.Cluster.Ad()
}

// Ad renders the job's full ClassAd, with HTCondor's attribute names: the
// submitted attributes plus the queue's dynamic state. The result is a new
// ad chained to the job's submitted ones; callers may modify it freely.
func (j *Job) Ad(schedd string) *classad.Ad {
	ad := classad.NewAd()
	ad.SetParent(j.staticAd())
	j.attrs(schedd, adSink{ad})
	return ad
}

// dynAttr names one of the queue's dynamic attributes (dynNames).
type dynAttr uint8

const (
	aMyType dynAttr = iota
	aTargetType
	aClusterID
	aProcID
	aOwner
	aUser
	aQDate
	aTotalSubmitProcs
	aGlobalJobID
	aIwd
	aUserLog
	aSubmitFile
	aJobStatus
	aEnteredCurrentStatus
	aNumJobStarts
	aJobRunCount
	aNumRestarts
	aNumCkpts
	aNumHolds
	aRemoteWallClockTime
	aHoldReason
	aHoldReasonCode
	aHoldReasonSubCode
	aLastHoldReason
	aReleaseReason
	aRemoveReason
	aRemoteHost
	aLastRemoteHost
	aJobStartDate
	aJobCurrentStartDate
	aLastVacateTime
	aCompletionDate
	aExitCode
	aExitBySignal
	aExitStatus
	aVmpoolClaimState
	aTransferringOutput
	aVmpoolCheckpoint
	aLastCkptTime
	aVmpoolReturnedFiles
	aBytesSent
	aBytesRecvd
	aRemoteUserCpu
	aRemoteSysCpu
	numDynAttrs
)

var dynNames = [numDynAttrs]string{
	"MyType", "TargetType", "ClusterId", "ProcId", "Owner", "User", "QDate", "TotalSubmitProcs",
	"GlobalJobId", "Iwd", "UserLog", "SubmitFile", "JobStatus", "EnteredCurrentStatus",
	"NumJobStarts", "JobRunCount", "NumRestarts", "NumCkpts", "NumHolds", "RemoteWallClockTime",
	"HoldReason", "HoldReasonCode", "HoldReasonSubCode", "LastHoldReason", "ReleaseReason",
	"RemoveReason", "RemoteHost", "LastRemoteHost", "JobStartDate", "JobCurrentStartDate",
	"LastVacateTime", "CompletionDate", "ExitCode", "ExitBySignal", "ExitStatus",
	"VmpoolClaimState", "TransferringOutput", "VmpoolCheckpoint", "LastCkptTime",
	"VmpoolReturnedFiles", "BytesSent", "BytesRecvd", "RemoteUserCpu", "RemoteSysCpu",
}

// dynIndex maps a dynamic attribute's lower-case name to it.
var dynIndex = func() map[string]dynAttr {
	m := make(map[string]dynAttr, numDynAttrs)
	for i, n := range dynNames {
		m[strings.ToLower(n)] = dynAttr(i)
	}
	return m
}()

// attrSink takes the dynamic attributes as attrs produces them.
type attrSink interface {
	setString(a dynAttr, v string)
	setInt(a dynAttr, v int64)
	setBool(a dynAttr, v bool)
	setReal(a dynAttr, v float64)
}

type adSink struct{ ad *classad.Ad }

func (s adSink) setString(a dynAttr, v string) { s.ad.SetString(dynNames[a], v) }
func (s adSink) setInt(a dynAttr, v int64)     { s.ad.SetInt(dynNames[a], v) }
func (s adSink) setBool(a dynAttr, v bool)     { s.ad.SetBool(dynNames[a], v) }
func (s adSink) setReal(a dynAttr, v float64)  { s.ad.SetReal(dynNames[a], v) }

// attrs produces the job's dynamic attributes, in one order, for both the
// ad (Ad) and its JSON (AppendJSON).
func (j *Job) attrs(schedd string, s attrSink) {
	c := j.Cluster
	s.setString(aMyType, "Job")
	s.setString(aTargetType, "Machine")
	s.setInt(aClusterID, int64(j.ID.Cluster))
	s.setInt(aProcID, int64(j.ID.Proc))
	s.setString(aOwner, c.Owner)
	s.setString(aUser, c.Owner+"@"+schedd)
	s.setInt(aQDate, c.QDate)
	s.setInt(aTotalSubmitProcs, int64(c.NumProcs))
	s.setString(aGlobalJobID, schedd+"#"+j.ID.String()+"#"+strconv.FormatInt(c.QDate, 10))
	s.setString(aIwd, j.Iwd())
	if l := j.UserLog(); l != "" {
		s.setString(aUserLog, l)
	}
	if c.File != "" {
		s.setString(aSubmitFile, c.File)
	}
	s.setInt(aJobStatus, int64(j.Status))
	s.setInt(aEnteredCurrentStatus, j.EnteredCurrentStatus)
	s.setInt(aNumJobStarts, int64(j.NumJobStarts))
	s.setInt(aJobRunCount, int64(j.NumJobStarts))
	s.setInt(aNumRestarts, int64(j.NumRestarts))
	s.setInt(aNumCkpts, int64(j.NumCkpts))
	s.setInt(aNumHolds, int64(j.NumHolds))
	s.setInt(aRemoteWallClockTime, j.RemoteWallClock/1e9)
	// A job removed while held keeps why it was held, as in HTCondor, where
	// only a release moves the reason to LastHoldReason.
	if j.Status == Held || (j.Status == Removed && j.HoldReason != "") {
		s.setString(aHoldReason, j.HoldReason)
		s.setInt(aHoldReasonCode, int64(j.HoldCode))
		s.setInt(aHoldReasonSubCode, int64(j.HoldSub))
	}
	if j.LastHoldReason != "" {
		s.setString(aLastHoldReason, j.LastHoldReason)
	}
	if j.ReleaseReason != "" {
		s.setString(aReleaseReason, j.ReleaseReason)
	}
	if j.RemoveReason != "" {
		s.setString(aRemoveReason, j.RemoveReason)
	}
	if j.RemoteHost != "" {
		s.setString(aRemoteHost, j.RemoteHost)
	}
	if j.LastRemoteHost != "" {
		s.setString(aLastRemoteHost, j.LastRemoteHost)
	}
	if j.JobStartDate != 0 {
		s.setInt(aJobStartDate, j.JobStartDate)
		s.setInt(aJobCurrentStartDate, j.JobCurrentStartDate)
	}
	if j.LastVacateTime != 0 {
		s.setInt(aLastVacateTime, j.LastVacateTime)
	}
	if j.Status == Completed {
		s.setInt(aCompletionDate, j.CompletionDate)
		s.setInt(aExitCode, int64(j.ExitCode))
		s.setBool(aExitBySignal, false)
		s.setInt(aExitStatus, int64(j.ExitCode))
	} else {
		s.setInt(aCompletionDate, 0)
	}
	if j.Claim != nil {
		s.setString(aVmpoolClaimState, j.Claim.State.String())
		s.setBool(aTransferringOutput, j.Claim.State == ClaimExited)
	}
	if len(j.Checkpoints) > 0 {
		s.setInt(aVmpoolCheckpoint, int64(j.Checkpoints[0].Seq))
	}
	if j.LastCkptTime != 0 {
		s.setInt(aLastCkptTime, j.LastCkptTime)
	}
	if len(j.Outputs) > 0 {
		names := make([]string, len(j.Outputs))
		for i, o := range j.Outputs {
			names[i] = o.Name
		}
		s.setString(aVmpoolReturnedFiles, strings.Join(names, ","))
	}
	s.setInt(aBytesSent, j.BytesSent)
	s.setInt(aBytesRecvd, j.BytesRecv)
	// Seconds, as reals, as HTCondor's job ad has them.
	s.setReal(aRemoteUserCpu, float64(j.RemoteUserCPU)/1e9)
	s.setReal(aRemoteSysCpu, float64(j.RemoteSysCPU)/1e9)
}

// jsonSink writes the dynamic attributes as JSON members and notes which
// it wrote, for the submitted attributes they shadow.
type jsonSink struct {
	b    []byte
	seen uint64 // bit a: dynamic attribute a was written
}

func (s *jsonSink) name(a dynAttr) {
	if s.seen != 0 {
		s.b = append(s.b, ',')
	}
	s.seen |= 1 << a
	s.b = append(append(append(s.b, '"'), dynNames[a]...), '"', ':')
}

func (s *jsonSink) setString(a dynAttr, v string) {
	s.name(a)
	s.b = classad.AppendJSONString(s.b, v)
}

func (s *jsonSink) setInt(a dynAttr, v int64) {
	s.name(a)
	s.b = strconv.AppendInt(s.b, v, 10)
}

func (s *jsonSink) setBool(a dynAttr, v bool) {
	s.name(a)
	s.b = strconv.AppendBool(s.b, v)
}

// setReal writes a finite real as the ad's JSON does.
func (s *jsonSink) setReal(a dynAttr, v float64) {
	s.name(a)
	s.b = append(s.b, classad.Real(v).String()...)
}

// staticJSON is a job's submitted attributes rendered as JSON members once
// for every job that shares them.
type staticJSON []staticMember

type staticMember struct {
	json []byte // "Name":value
	dyn  int    // the dynamic attribute of the same name, or -1
}

// JSONCache holds the rendered submitted attributes of the jobs one query
// writes (submitted ads never change once queued).
type JSONCache map[*classad.Ad]staticJSON

func (c JSONCache) static(ad *classad.Ad) staticJSON {
	if s, ok := c[ad]; ok || ad == nil {
		return s
	}
	attrs := ad.JSONAttrs()
	s := make(staticJSON, len(attrs))
	for i, at := range attrs {
		s[i] = staticMember{json: at.JSON, dyn: -1}
		if d, ok := dynIndex[at.Key]; ok {
			s[i].dyn = int(d)
		}
	}
	c[ad] = s
	return s
}

// AppendJSON appends the job's ad as JSON: the bytes of
// j.Ad(schedd).MarshalJSON(), without building the ad, and with the
// submitted attributes rendered once per cache.
func (j *Job) AppendJSON(dst []byte, schedd string, cache JSONCache) []byte {
	s := jsonSink{b: append(dst, '{')}
	j.attrs(schedd, &s)
	for _, m := range cache.static(j.staticAd()) {
		if m.dyn >= 0 && s.seen&(1<<m.dyn) != 0 {
			continue // the queue's value shadows the submitted one
		}
		s.b = append(append(s.b, ','), m.json...)
	}
	return append(s.b, '}')
}

// adTextSink writes the dynamic attributes in ClassAd syntax, as String
// prints them, and notes which it wrote.
type adTextSink struct {
	b    []byte
	seen uint64 // bit a: dynamic attribute a was written
}

func (s *adTextSink) name(a dynAttr) {
	if s.seen != 0 {
		s.b = append(s.b, "; "...)
	}
	s.seen |= 1 << a
	s.b = append(append(s.b, dynNames[a]...), " = "...)
}

func (s *adTextSink) setString(a dynAttr, v string) {
	s.name(a)
	s.b = classad.AppendString(s.b, v)
}

func (s *adTextSink) setInt(a dynAttr, v int64) {
	s.name(a)
	s.b = strconv.AppendInt(s.b, v, 10)
}

func (s *adTextSink) setBool(a dynAttr, v bool) {
	s.name(a)
	s.b = strconv.AppendBool(s.b, v)
}

func (s *adTextSink) setReal(a dynAttr, v float64) {
	s.name(a)
	s.b = append(s.b, classad.Real(v).String()...)
}

// staticText is a job's submitted attributes printed in ClassAd syntax.
type staticText struct {
	attrs []staticAttrText
	size  int // of the texts and their separators
}

type staticAttrText struct {
	text string // Name = expr
	dyn  int    // the dynamic attribute of the same name, or -1
}

func newStaticText(ad *classad.Ad) *staticText {
	if ad == nil {
		return &staticText{}
	}
	attrs := ad.TextAttrs()
	s := &staticText{attrs: make([]staticAttrText, len(attrs))}
	for i, at := range attrs {
		s.attrs[i] = staticAttrText{text: at.Text, dyn: -1}
		if d, ok := dynIndex[at.Key]; ok {
			s.attrs[i].dyn = int(d)
		}
		s.size += len(at.Text) + 2
	}
	return s
}

// AdText is j.Ad(schedd).String(), the flat ad a claim request carries,
// without building the ad.
func (j *Job) AdText(schedd string) string {
	text, _ := j.adText(schedd, newStaticText(j.staticAd()))
	return text
}

// adText is AdText with j's submitted attributes already printed (st, of
// j.staticAd(): a cluster's submitted ad never changes once queued, so the
// shell prints it once for all the procs that have no attributes of their
// own; see claimTexts), and where in the text the first of those that
// shows begins (0: none shows).
func (j *Job) adText(schedd string, st *staticText) (text string, staticAt int) {
	s := adTextSink{b: make([]byte, 0, st.size+1024)}
	s.b = append(s.b, "[ "...)
	j.attrs(schedd, &s)
	written := s.seen != 0 // an attribute precedes: separate the next
	for _, m := range st.attrs {
		if m.dyn >= 0 && s.seen&(1<<m.dyn) != 0 {
			continue // the queue's value shadows the submitted one
		}
		if written {
			s.b = append(s.b, "; "...)
		}
		written = true
		if staticAt == 0 {
			staticAt = len(s.b)
		}
		s.b = append(s.b, m.text...)
	}
	return string(append(s.b, " ]"...)), staticAt
}

// Matches reports whether the job satisfies constraint (nil: every job),
// evaluated with the job as MY and no TARGET, as condor_q -constraint does;
// time() reads now.
func (j *Job) Matches(schedd string, constraint *classad.Expr, now time.Time) bool {
	if constraint == nil {
		return true
	}
	return constraint.EvalWith(j.Ad(schedd), nil, &classad.EvalOptions{Now: func() time.Time { return now }}).IsTrue()
}
