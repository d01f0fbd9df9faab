package schedd

import (
	"strconv"
	"strings"
	"time"

	"github.com/vmpool/vmpool/classad"
)

// staticAd is the job's submitted attributes: its own over its cluster's.
func (j *Job) staticAd() *classad.Ad {
	if j.Own != nil {
		return j.Own
	}
	return j.Cluster.Ad
}

// Ad renders the job's full ClassAd, with HTCondor's attribute names: the
// submitted attributes plus the queue's dynamic state. The result is a new
// ad chained to the job's submitted ones; callers may modify it freely.
func (j *Job) Ad(schedd string) *classad.Ad {
	ad := classad.NewAd()
	ad.SetParent(j.staticAd())
	c := j.Cluster
	ad.SetString("MyType", "Job")
	ad.SetString("TargetType", "Machine")
	ad.SetInt("ClusterId", int64(j.ID.Cluster))
	ad.SetInt("ProcId", int64(j.ID.Proc))
	ad.SetString("Owner", c.Owner)
	ad.SetString("User", c.Owner+"@"+schedd)
	ad.SetInt("QDate", c.QDate)
	ad.SetInt("TotalSubmitProcs", int64(c.NumProcs))
	ad.SetString("GlobalJobId", schedd+"#"+j.ID.String()+"#"+strconv.FormatInt(c.QDate, 10))
	ad.SetString("Iwd", j.Iwd())
	if l := j.UserLog(); l != "" {
		ad.SetString("UserLog", l)
	}
	if c.File != "" {
		ad.SetString("SubmitFile", c.File)
	}
	ad.SetInt("JobStatus", int64(j.Status))
	ad.SetInt("EnteredCurrentStatus", j.EnteredCurrentStatus)
	ad.SetInt("NumJobStarts", int64(j.NumJobStarts))
	ad.SetInt("JobRunCount", int64(j.NumJobStarts))
	ad.SetInt("NumRestarts", int64(j.NumRestarts))
	ad.SetInt("NumCkpts", int64(j.NumCkpts))
	ad.SetInt("NumHolds", int64(j.NumHolds))
	ad.SetInt("RemoteWallClockTime", j.RemoteWallClock/1e9)
	if j.Status == Held {
		ad.SetString("HoldReason", j.HoldReason)
		ad.SetInt("HoldReasonCode", int64(j.HoldCode))
		ad.SetInt("HoldReasonSubCode", int64(j.HoldSub))
	}
	if j.LastHoldReason != "" {
		ad.SetString("LastHoldReason", j.LastHoldReason)
	}
	if j.ReleaseReason != "" {
		ad.SetString("ReleaseReason", j.ReleaseReason)
	}
	if j.RemoveReason != "" {
		ad.SetString("RemoveReason", j.RemoveReason)
	}
	if j.RemoteHost != "" {
		ad.SetString("RemoteHost", j.RemoteHost)
	}
	if j.LastRemoteHost != "" {
		ad.SetString("LastRemoteHost", j.LastRemoteHost)
	}
	if j.JobStartDate != 0 {
		ad.SetInt("JobStartDate", j.JobStartDate)
		ad.SetInt("JobCurrentStartDate", j.JobCurrentStartDate)
	}
	if j.LastVacateTime != 0 {
		ad.SetInt("LastVacateTime", j.LastVacateTime)
	}
	if j.Status == Completed {
		ad.SetInt("CompletionDate", j.CompletionDate)
		ad.SetInt("ExitCode", int64(j.ExitCode))
		ad.SetBool("ExitBySignal", false)
		ad.SetInt("ExitStatus", int64(j.ExitCode))
	} else {
		ad.SetInt("CompletionDate", 0)
	}
	if j.Claim != nil {
		ad.SetString("VmpoolClaimState", j.Claim.State.String())
		ad.SetBool("TransferringOutput", j.Claim.State == ClaimExited)
	}
	if len(j.Checkpoints) > 0 {
		ad.SetInt("VmpoolCheckpoint", int64(j.Checkpoints[0].Seq))
		ad.SetInt("LastCkptTime", j.Checkpoints[0].Taken/1e9)
	}
	if len(j.Outputs) > 0 {
		names := make([]string, len(j.Outputs))
		for i, o := range j.Outputs {
			names[i] = o.Name
		}
		ad.SetString("VmpoolReturnedFiles", strings.Join(names, ","))
	}
	ad.SetInt("BytesSent", j.BytesSent)
	ad.SetInt("BytesRecvd", j.BytesRecv)
	return ad
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
