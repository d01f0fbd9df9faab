package startd

import (
	"strconv"
	"strings"

	"github.com/vmpool/vmpool/classad"
	"github.com/vmpool/vmpool/startd/hypervisor"
)

// Facts are what the shell measured about the machine and the hypervisor;
// the machine ad is built from them and the state, purely.
type Facts struct {
	Host          string // host name (Machine)
	Arch, OpSys   string
	TotalMemory   int   // MiB of the host
	Cpus          int   // CPUs of the host
	DiskKiB       int64 // free disk in the execute directory
	Fingerprint   hypervisor.Fingerprint
	LoadAvg       float64
	StartTime     int64 // when this startd process started, unix seconds
	LastHeardFrom int64 // now, unix seconds
}

// MachineAd renders slot s's ad: HTCondor's attribute names, including the
// vm universe ones (HasVM, VM_Type, VM_Memory, VM_AvailNum, VM_Networking,
// VM_Networking_Types), plus vmpool's claim bookkeeping the negotiator uses.
func MachineAd(cfg *Config, st *State, s *Slot, f Facts) *classad.Ad {
	return machineAdIn(nil, cfg, st, s, f)
}

// machineAdIn is MachineAd rendered in ad, emptied first (nil: a new ad),
// for a caller that renders ad after ad and keeps none of them.
func machineAdIn(ad *classad.Ad, cfg *Config, st *State, s *Slot, f Facts) *classad.Ad {
	if ad == nil {
		ad = classad.NewAdSize(machineAdSize + len(f.Fingerprint.Attrs))
	} else {
		ad.Reset()
	}
	ad.SetString("MyType", "Machine")
	ad.SetString("TargetType", "Job")
	ad.SetString("Name", s.Name)
	ad.SetString("Machine", f.Host)
	// SlotID is an integer, as HTCondor's (slot3: 3).
	if n, err := strconv.Atoi(strings.TrimPrefix(s.ID, "slot")); err == nil {
		ad.SetInt("SlotID", int64(n))
	} else {
		ad.SetString("SlotID", strings.TrimPrefix(s.ID, "slot"))
	}
	ad.SetString("StartdName", st.Name)
	ad.SetString("Arch", f.Arch)
	ad.SetString("OpSys", f.OpSys)
	ad.SetString("State", s.State)
	ad.SetString("Activity", s.Activity)
	// A slot that has not changed state since its startd started entered
	// it then (its log records no time for it).
	since := s.Since
	if since == 0 {
		since = f.StartTime
	}
	ad.SetInt("EnteredCurrentActivity", since)
	ad.SetInt("EnteredCurrentState", since)
	n := len(st.Slots)
	ad.SetInt("TotalMemory", int64(f.TotalMemory))
	ad.SetInt("Memory", int64(f.TotalMemory/max(n, 1)))
	ad.SetInt("TotalCpus", int64(f.Cpus))
	ad.SetInt("Cpus", int64(max(f.Cpus/max(n, 1), 1)))
	setVolatile(ad, n, f)
	ad.SetBool("HasFileTransfer", true)
	ad.SetString("FileSystemDomain", f.Host)
	ad.SetInt("DaemonStartTime", f.StartTime)
	// START and the slot's Requirements: the slot accepts a job when START
	// is true with the job as TARGET (HTCondor's Requirements = START).
	setCompiled(ad, "Start", cfg.startExpr, cfg.Start)
	ad.Set("Requirements", startRef)
	setCompiled(ad, "Rank", cfg.rankExpr, cfg.Rank)
	fp := f.Fingerprint
	hasVM := fp.Detected && fp.Healthy
	ad.SetBool("HasVM", hasVM)
	if hasVM {
		ad.SetString("VM_Type", cfg.VMType)
		sh := sharedNow(cfg, st, f)
		ad.SetInt("VM_Memory", sh.mem)
		ad.SetInt("VM_AvailNum", sh.avail)
		ad.SetString("VM_GAHP_VERSION", fp.Version)
		ad.SetBool("VM_Networking", cfg.Networking && len(netTypes(cfg, fp)) > 0)
		if cfg.Networking {
			ad.SetString("VM_Networking_Types", strings.Join(netTypes(cfg, fp), ","))
		}
		if cfg.HardwareVT {
			ad.SetBool("VM_HardwareVT", true)
		}
		for k, v := range fp.Attrs {
			ad.SetString("VM_"+sanitizeAttr(k), v)
		}
	} else if fp.Reason != "" {
		ad.SetString("VMOfflineReason", fp.Reason)
	}
	ad.SetInt("VmpoolClaims", st.Accepted)
	ad.SetString("VmpoolClaimId", s.Claim)
	// A claimed slot: the machine's RANK of the job it runs (HTCondor's
	// CurrentRank), what its VM holds of VM_MEMORY, and whether a job the
	// RANK prefers already waits to preempt it.
	// Whose job it is, as HTCondor's claimed slot ads say (condor_status
	// -claimed): the job's User, its schedd, its id.
	if c := st.Claims[s.Claim]; c != nil && s.State == Claimed {
		ad.SetReal("CurrentRank", c.Rank)
		ad.SetInt("VmpoolClaimMemory", int64(c.MemoryMiB))
		ad.SetBool("VmpoolPreempting", s.Pending != "")
		user := c.Req.Owner + "@" + c.Req.Schedd
		ad.SetString("RemoteUser", user)
		ad.SetString("RemoteOwner", user)
		ad.SetString("ClientMachine", c.Req.Schedd)
		ad.SetString("JobId", c.Req.Job.String())
	}
	return ad
}

// setVolatile sets the attributes of a machine ad that change with time
// alone (free disk, load, when it was heard from), for a machine of n
// slots. Set on an ad MachineAd rendered, it updates them in place.
func setVolatile(ad *classad.Ad, n int, f Facts) {
	ad.SetInt("TotalDisk", f.DiskKiB)
	ad.SetInt("Disk", f.DiskKiB/int64(max(n, 1)))
	ad.SetReal("LoadAvg", f.LoadAvg)
	ad.SetInt("LastHeardFrom", f.LastHeardFrom)
	ad.SetInt("MyCurrentTime", f.LastHeardFrom)
}

// sharedAttrs are the attributes every slot ad of a startd shows alike
// and every claim changes: VM_Memory and VM_AvailNum (-1: not in the ad)
// and VmpoolClaims.
type sharedAttrs struct {
	set                bool
	mem, avail, claims int64
}

// sharedNow is what MachineAd puts in the shared attributes.
func sharedNow(cfg *Config, st *State, f Facts) sharedAttrs {
	sh := sharedAttrs{set: true, mem: -1, avail: -1, claims: st.Accepted}
	if f.Fingerprint.Detected && f.Fingerprint.Healthy {
		sh.mem = int64(max(cfg.VMMemory-st.UsedMemory(), 0))
		avail := 10000 // HTCondor's "unlimited"
		if cfg.VMMaxNumber > 0 {
			avail = cfg.VMMaxNumber - len(st.Claims)
		}
		sh.avail = int64(max(avail, 0))
	}
	return sh
}

// apply sets the shared attributes of ad (rendered by MachineAd) to sh's.
func (sh sharedAttrs) apply(ad *classad.Ad) {
	if sh.mem >= 0 {
		if _, ok := ad.Lookup("VM_Memory"); ok {
			ad.SetInt("VM_Memory", sh.mem)
		}
	}
	if sh.avail >= 0 {
		if _, ok := ad.Lookup("VM_AvailNum"); ok {
			ad.SetInt("VM_AvailNum", sh.avail)
		}
	}
	ad.SetInt("VmpoolClaims", sh.claims)
}

// mustGoOut reports whether the shared attributes moved from sent in a
// way the other slots' ads must show at once: resources given back (a
// slot is matchable that its ad says is not), or none left (every match
// would be refused), or the hypervisor came or went.
func (sh sharedAttrs) mustGoOut(sent sharedAttrs) bool {
	switch {
	case (sh.mem < 0) != (sent.mem < 0), (sh.avail < 0) != (sent.avail < 0):
		return true
	case sh.mem > sent.mem, sh.avail > sent.avail:
		return true
	case sh.mem == 0 && sent.mem != 0, sh.avail == 0 && sent.avail != 0:
		return true
	}
	return false
}

// adKey is what a slot's ad is rendered from, apart from the machine's
// facts and the configuration: the slot, the claim it runs, and the
// shared attributes.
type adKey struct {
	slot    Slot
	claimed bool
	rank    float64
	mem     int
	shared  sharedAttrs
}

// machineAdSize is how many attributes MachineAd sets at most, apart from
// the hypervisor's own (VM_*).
const machineAdSize = 44

// startRef is the slot's Requirements: its START.
var startRef = classad.MustParseExpr("START")

// setCompiled sets name to e, compiled once by New, or else parses src
// (a Config New did not see); an expression that does not parse is error.
func setCompiled(ad *classad.Ad, name string, e *classad.Expr, src string) {
	if e != nil {
		ad.Set(name, e)
		return
	}
	if err := ad.SetExpr(name, src); err != nil {
		ad.SetValue(name, classad.Error())
	}
}

// netTypes is the networking the machine offers: what it is configured for
// (VM_NETWORKING_TYPE) that the hypervisor can give.
func netTypes(cfg *Config, fp hypervisor.Fingerprint) []string {
	var out []string
	for _, t := range cfg.NetworkingTypes {
		for _, have := range fp.Networking {
			if t == have {
				out = append(out, t)
			}
		}
	}
	return out
}

func sanitizeAttr(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}
