package startd

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vmpool/vmpool/classad"
	"github.com/vmpool/vmpool/events"
	"github.com/vmpool/vmpool/startd/hypervisor"
)

func testConfig() *Config {
	return &Config{Name: "s1", VMType: "kvm", VMMemory: 64, VMMaxNumber: 2, NumSlots: 2, Start: "true", Rank: "0",
		Networking: true, NetworkingTypes: []string{"nat", "bridge"}, DefaultNetworkingType: "nat"}
}

func testFacts() Facts {
	return Facts{Host: "host", Arch: "X86_64", OpSys: "LINUX", TotalMemory: 4096, Cpus: 2, DiskKiB: 1 << 20,
		Fingerprint: hypervisor.Fingerprint{Type: "kvm", Detected: true, Healthy: true, Version: "QEMU 7.2", Networking: []string{"nat"}}}
}

func jobAd(mem int, extra string) string {
	return `[ ClusterId = 1; ProcId = 0; Owner = "alice"; JobVMType = "kvm"; JobVMMemory = ` + itoa(mem) +
		`; Requirements = TARGET.HasVM && TARGET.VM_Type == MY.JobVMType; ` + extra + ` ]`
}

func claimReq(id, slot string, mem int, extra string) events.ClaimRequest {
	return events.ClaimRequest{ClaimID: id, Schedd: "schedd", Job: events.JobID{Cluster: 1, Proc: 0}, Slot: slot, JobAd: jobAd(mem, extra), Owner: "alice"}
}

// step applies events as the startd's loop would.
func step(st *State, evs []events.Event, seq *uint64) {
	for _, e := range evs {
		*seq++
		e.Source, e.Seq, e.Time = st.Name, *seq, int64(*seq)*1e9
		Apply(st, e)
	}
}

func TestDecideClaim(t *testing.T) {
	cfg := testConfig()
	st := NewState("s1", 2)
	var seq uint64
	ad := func(slot string) *classad.Ad {
		s := st.Slot(slot)
		if s == nil {
			s = st.Slots[0] // the shell refuses unknown slots before building an ad
		}
		return MachineAd(cfg, st, s, testFacts())
	}

	evs, reason := DecideClaim(st, claimReq("c1", "slot1@s1", 32, ""), ad("slot1@s1"), cfg.VMMemory, cfg.VMMaxNumber, time.Unix(1e9, 0))
	if reason != "" || len(evs) != 1 || evs[0].Type != events.ClaimAccepted {
		t.Fatalf("claim refused: %q %v", reason, evs)
	}
	step(st, evs, &seq)
	if s := st.Slot("slot1@s1"); s.State != Claimed || s.Claim != "c1" {
		t.Fatalf("slot after claim: %+v", s)
	}
	// The same claim again (a retry) is accepted without new events.
	if evs, reason := DecideClaim(st, claimReq("c1", "slot1@s1", 32, ""), ad("slot1@s1"), cfg.VMMemory, cfg.VMMaxNumber, time.Unix(1e9, 0)); reason != "" || len(evs) != 0 {
		t.Fatalf("retried claim: %q %v", reason, evs)
	}
	cases := []struct {
		name   string
		req    events.ClaimRequest
		reason string
	}{
		{"slot busy", claimReq("c2", "slot1@s1", 8, ""), "slot slot1@s1 is Claimed"},
		{"no such slot", claimReq("c2", "slot9@s1", 8, ""), `no slot "slot9@s1"`},
		{"memory", claimReq("c2", "slot2@s1", 40, ""), "needs vm_memory 40 MiB; slot slot2@s1 has 32 MiB of VM_MEMORY free"},
		{"requirements", claimReq("c2", "slot2@s1", 8, `Requirements = TARGET.VM_Type == "xen"`), "do not match"},
		{"bad ad", events.ClaimRequest{ClaimID: "c2", Schedd: "schedd", Job: events.JobID{Cluster: 1}, Slot: "slot2@s1", JobAd: "[ x = ]"}, "job ad does not parse"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			evs, reason := DecideClaim(st, tc.req, ad(tc.req.Slot), cfg.VMMemory, cfg.VMMaxNumber, time.Unix(1e9, 0))
			if len(evs) != 0 || !strings.Contains(reason, tc.reason) {
				t.Fatalf("got %q (%d events), want refusal containing %q", reason, len(evs), tc.reason)
			}
		})
	}
	// START refuses bob.
	cfg.Start = `TARGET.Owner != "alice"`
	if _, reason := DecideClaim(st, claimReq("c3", "slot2@s1", 8, ""), ad("slot2@s1"), cfg.VMMemory, cfg.VMMaxNumber, time.Unix(1e9, 0)); !strings.Contains(reason, "START is false") {
		t.Fatalf("START ignored: %q", reason)
	}
	cfg.Start = "true"
	// VM_MAX_NUMBER: one VM at most.
	if _, reason := DecideClaim(st, claimReq("c3", "slot2@s1", 8, ""), ad("slot2@s1"), cfg.VMMemory, 1, time.Unix(1e9, 0)); !strings.Contains(reason, "VM_MAX_NUMBER=1") {
		t.Fatalf("VM_MAX_NUMBER ignored: %q", reason)
	}
}

func TestClaimLifecycleAndAds(t *testing.T) {
	cfg := testConfig()
	st := NewState("s1", 2)
	var seq uint64
	evs, _ := DecideClaim(st, claimReq("c1", "slot1@s1", 48, ""), MachineAd(cfg, st, st.Slot("slot1@s1"), testFacts()), cfg.VMMemory, cfg.VMMaxNumber, time.Unix(1e9, 0))
	step(st, evs, &seq)
	ad := MachineAd(cfg, st, st.Slot("slot2@s1"), testFacts())
	for attr, want := range map[string]string{"VM_Memory": "16", "VM_AvailNum": "1", "HasVM": "true", "VM_Type": `"kvm"`,
		"VM_Networking": "true", "VM_Networking_Types": `"nat"`, "Name": `"slot2@s1"`, "State": `"Unclaimed"`, "VmpoolClaims": "1", "SlotID": "2"} {
		if got := ad.Eval(attr).String(); got != want {
			t.Errorf("slot2 %s = %s, want %s", attr, got, want)
		}
	}
	// A slot that never changed state entered it when its startd started;
	// a claimed one says whose job it runs (condor_status -claimed).
	started := testFacts()
	started.StartTime = 1_700_000_000
	if got := MachineAd(cfg, st, st.Slot("slot2@s1"), started).Eval("EnteredCurrentActivity").String(); got != "1700000000" {
		t.Errorf("fresh slot EnteredCurrentActivity = %s, want the startd's start", got)
	}
	claimedAd := MachineAd(cfg, st, st.Slot("slot1@s1"), started)
	for attr, want := range map[string]string{"RemoteUser": `"alice@schedd"`, "RemoteOwner": `"alice@schedd"`, "ClientMachine": `"schedd"`,
		"JobId": `"1.0"`, "State": `"Claimed"`} {
		if got := claimedAd.Eval(attr).String(); got != want {
			t.Errorf("claimed slot1 %s = %s, want %s", attr, got, want)
		}
	}
	if got := claimedAd.Eval("EnteredCurrentActivity").String(); got == "1700000000" || got == "0" {
		t.Errorf("claimed slot1 EnteredCurrentActivity = %s, want the claim's time", got)
	}
	if !ad.Eval("RemoteUser").IsUndefined() {
		t.Errorf("unclaimed slot2 has a RemoteUser: %s", ad.Eval("RemoteUser"))
	}
	c := st.Claims["c1"]
	step(st, []events.Event{VMEvent(c, events.VMStarted, events.VMEventPayload{})}, &seq)
	if s := st.Slot("slot1@s1"); s.Activity != ActBusy {
		t.Fatalf("running slot activity %s", s.Activity)
	}
	stop, known := DecideStop(st, events.DeactivateRequest{ClaimID: "c1", Mode: events.ModeVacate})
	if !known || len(stop) != 1 {
		t.Fatalf("stop: %v %v", stop, known)
	}
	step(st, stop, &seq)
	if s := st.Slot("slot1@s1"); s.State != Preempt || s.Activity != ActVacating {
		t.Fatalf("vacating slot: %+v", s)
	}
	// Asking again changes nothing; a -fast vacate is recorded over a
	// plain one (once), and kill overrides both.
	if again, _ := DecideStop(st, events.DeactivateRequest{ClaimID: "c1", Mode: events.ModeVacate}); len(again) != 0 {
		t.Fatalf("repeated vacate recorded again")
	}
	fast, _ := DecideStop(st, events.DeactivateRequest{ClaimID: "c1", Mode: events.ModeVacate, Fast: true})
	step(st, fast, &seq)
	if !st.Claims["c1"].StopFast || st.Claims["c1"].StopMode != events.ModeVacate {
		t.Fatalf("vacate -fast over a vacate: %+v", st.Claims["c1"])
	}
	if again, _ := DecideStop(st, events.DeactivateRequest{ClaimID: "c1", Mode: events.ModeVacate, Fast: true}); len(again) != 0 {
		t.Fatalf("repeated vacate -fast recorded again")
	}
	kill, _ := DecideStop(st, events.DeactivateRequest{ClaimID: "c1", Mode: events.ModeKill})
	step(st, kill, &seq)
	if st.Claims["c1"].StopMode != events.ModeKill {
		t.Fatal("kill did not override vacate")
	}
	step(st, []events.Event{VMEvent(c, events.VMStopped, events.VMEventPayload{})}, &seq)
	if len(st.Claims) != 0 || st.Slot("slot1@s1").State != Unclaimed {
		t.Fatalf("claim not ended: %+v", st.Slot("slot1@s1"))
	}
	if _, known := DecideStop(st, events.DeactivateRequest{ClaimID: "c1"}); known {
		t.Fatal("ended claim still known")
	}
	// The ended claim is remembered for its schedd's keepalives, and a
	// late retry of its claim request does not run the job again.
	if ec, ok := st.Ended["c1"]; !ok || ec.Schedd != c.Req.Schedd {
		t.Fatalf("ended claim not remembered: %+v", st.Ended)
	}
	if evs, reason := DecideClaim(st, claimReq("c1", "slot1@s1", 48, ""), MachineAd(cfg, st, st.Slot("slot1@s1"), testFacts()), cfg.VMMemory, cfg.VMMaxNumber, time.Unix(1e9, 0)); len(evs) != 0 || !strings.Contains(reason, "already ran") {
		t.Fatalf("claim retried after its VM ended: %v %q", evs, reason)
	}
	// An unhealthy hypervisor is not advertised.
	f := testFacts()
	f.Fingerprint = hypervisor.Fingerprint{Type: "kvm", Reason: "qemu-system-x86_64 not found"}
	ad = MachineAd(cfg, st, st.Slot("slot1@s1"), f)
	if ad.Eval("HasVM").String() != "false" || ad.Eval("VMOfflineReason").String() != `"qemu-system-x86_64 not found"` {
		t.Fatalf("unhealthy ad: %s", ad)
	}
}

func TestReplayStartd(t *testing.T) {
	cfg := testConfig()
	st := NewState("s1", 2)
	l, err := events.OpenLog(t.TempDir(), "s1", events.LogOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var all []events.Event
	var seq uint64
	do := func(evs []events.Event) {
		step(st, evs, &seq)
		for _, e := range evs {
			e.Source, e.Time = "s1", int64(len(all)+1)*1e9
			all = append(all, e)
		}
	}
	evs, _ := DecideClaim(st, claimReq("c1", "slot1@s1", 16, ""), MachineAd(cfg, st, st.Slot("slot1@s1"), testFacts()), 64, 2, time.Unix(1e9, 0))
	do(evs)
	// c1's handle in a VMLaunched, as earlier startds recorded it; c2's
	// in its VMStarted, as they do now.
	h := hypervisor.Handle{Type: "kvm", Name: "vm", PID: 42}
	b, _ := json.Marshal(VMLaunchedPayload{ClaimID: "c1", Handle: h})
	do([]events.Event{{Type: VMLaunched, Payload: b, Schedd: "schedd", Cluster: 1}})
	evs, _ = DecideClaim(st, claimReq("c2", "slot2@s1", 16, ""), MachineAd(cfg, st, st.Slot("slot2@s1"), testFacts()), 64, 2, time.Unix(1e9, 0))
	do(evs)
	h2, _ := json.Marshal(hypervisor.Handle{Type: "kvm", Name: "vm2", PID: 43, Data: map[string]string{"qmp": "/q"}})
	do([]events.Event{VMEvent(st.Claims["c2"], events.VMStarted, events.VMEventPayload{Host: "<slot2@s1>", Handle: h2})})
	if _, err := l.Append(all); err != nil {
		t.Fatal(err)
	}
	r, err := Replay(l, "s1", 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	c := r.Claims["c1"]
	if c == nil || c.Handle == nil || c.Handle.PID != 42 || r.Slot("slot1@s1").State != Claimed || r.Accepted != 2 {
		t.Fatalf("replayed state lacks the claim and its handle: %+v", r.Claims)
	}
	c2 := r.Claims["c2"]
	if c2 == nil || c2.Handle == nil || c2.Handle.PID != 43 || c2.Handle.Data["qmp"] != "/q" || !c2.Started || r.Slot("slot2@s1").Activity != ActBusy {
		t.Fatalf("replayed state lacks the started claim and its handle: %+v", c2)
	}
}

func TestJobSpec(t *testing.T) {
	cfg := testConfig()
	in := []events.FileRef{{Name: "disk.img", SHA256: "x"}, {Name: "data.img"}}
	parse := func(src string) *classad.Ad {
		ad, err := classad.ParseAd(src)
		if err != nil {
			t.Fatal(err)
		}
		return ad
	}
	job := parse(`[ JobVMMemory = 32; JobVM_VCPUS = 2; VMPARAM_vm_Disk = "disk.img:hda:w:raw,data.img:hdb:r,/shared/base.img:vda:rw:qcow2";
		JobVMNetworking = true; JobVM_MACADDR = "52:54:00:aa:bb:cc" ]`)
	spec, outs, err := jobSpec(cfg, job, "claim-1", "/scratch", in)
	if err != nil {
		t.Fatal(err)
	}
	if spec.MemoryMiB != 32 || spec.VCPUs != 2 || len(spec.Disks) != 3 {
		t.Fatalf("spec %+v", spec)
	}
	if spec.Disks[0].Path != filepath.Join("/scratch", "disk.img") || !spec.Disks[0].Writable || spec.Disks[0].Format != "raw" {
		t.Errorf("disk 0 %+v", spec.Disks[0])
	}
	if spec.Disks[1].Writable || spec.Disks[2].Path != "/shared/base.img" || spec.Disks[2].Format != "qcow2" {
		t.Errorf("disks %+v", spec.Disks)
	}
	// Only the transferred writable disk comes back; the shared one is used in place.
	if len(outs) != 1 || outs[0].name != "disk.img" {
		t.Errorf("outputs %+v", outs)
	}
	if !spec.Network.Enabled || spec.Network.Type != "nat" || spec.Network.MAC != "52:54:00:aa:bb:cc" {
		t.Errorf("network %+v", spec.Network)
	}
	cases := []struct{ name, ad, code string }{
		{"no memory", `[ VMPARAM_vm_Disk = "disk.img:hda:w" ]`, "JOBCLASSAD_NO_VM_MEMORY_PARAM"},
		{"no disk", `[ JobVMMemory = 8 ]`, "KVM_NO_DISK_PARAM"},
		{"two fields", `[ JobVMMemory = 8; VMPARAM_vm_Disk = "disk.img:hda" ]`, "KVM_INVALID_DISK_PARAM"},
		{"not transferred", `[ JobVMMemory = 8; VMPARAM_vm_Disk = "other.img:hda:w" ]`, "KVM_INVALID_DISK_PARAM"},
		// xen_kernel = vmx on a machine without VM_HARDWARE_VT (the job
		// overrode its Requirements), as HTCondor's vm-gahp refuses it.
		{"hardware VT", `[ JobVMMemory = 8; VMPARAM_vm_Disk = "disk.img:hda:w"; JobVMHardwareVT = true ]`, "MISMATCHED_HARDWARE_VT"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := jobSpec(cfg, parse(tc.ad), "c", "/scratch", in)
			var se *hypervisor.SpecError
			if !errors.As(err, &se) || se.Code != tc.code {
				t.Fatalf("error %v, want SpecError %s", err, tc.code)
			}
			p := failure("Error from slot1@s1: ", err)
			if !p.Hold || p.Code != 6 || p.SubCode != gahpSubcodes[tc.code] || !strings.Contains(p.Reason, "VMGAHP_ERR_JOBCLASSAD_"+strings.TrimPrefix(tc.code, "JOBCLASSAD_")) {
				t.Fatalf("hold payload %+v", p)
			}
		})
	}
	hvt := *cfg
	hvt.HardwareVT = true
	if _, _, err := jobSpec(&hvt, parse(`[ JobVMMemory = 8; VMPARAM_vm_Disk = "disk.img:hda:w"; JobVMHardwareVT = true ]`), "c", "/scratch", in); err != nil {
		t.Errorf("a hardware VT job on a VM_HARDWARE_VT machine: %v", err)
	}
	// A generated MAC is stable per claim, unicast and locally
	// administered, and differs between startds (two pools) for the same
	// claim id.
	a := generatedMAC("host\x00/pool1/startd1", "negotiator#9")
	if a != generatedMAC("host\x00/pool1/startd1", "negotiator#9") || a == generatedMAC("host\x00/pool1/startd1", "negotiator#10") ||
		a == generatedMAC("host\x00/pool2/startd1", "negotiator#9") || !strings.HasPrefix(a, "52:54:00:") {
		t.Fatalf("generated MACs %s", a)
	}
}

// TestPreemptingClaim: a claim for a job the slot's RANK prefers to the
// one it runs is accepted as preempting: the running claim is asked to
// vacate, the new one waits and takes the slot when that VM is gone. A
// job the RANK does not prefer, or a third one while one waits, is
// refused; a waiting claim that is deactivated ends at once.
func TestPreemptingClaim(t *testing.T) {
	cfg := testConfig()
	cfg.Rank = "TARGET.Urgency"
	st := NewState("s1", 1)
	var seq uint64
	now := time.Unix(1e9, 0)
	ad := func() *classad.Ad { return MachineAd(cfg, st, st.Slots[0], testFacts()) }
	req := func(id, urgency string) events.ClaimRequest {
		r := claimReq(id, "slot1@s1", 16, "Urgency = "+urgency)
		r.Job.Proc = len(st.Claims)
		return r
	}
	evs, reason := DecideClaim(st, req("c1", "1"), ad(), cfg.VMMemory, cfg.VMMaxNumber, now)
	if reason != "" {
		t.Fatal(reason)
	}
	step(st, evs, &seq)
	step(st, []events.Event{VMEvent(st.Claims["c1"], events.VMStarted, events.VMEventPayload{})}, &seq)
	if got, _ := ad().Eval("CurrentRank").NumberValue(); got != 1 {
		t.Fatalf("CurrentRank = %v, want 1", got)
	}
	if _, reason := DecideClaim(st, req("c0", "1"), ad(), cfg.VMMemory, cfg.VMMaxNumber, now); !strings.Contains(reason, "RANK prefers the job it runs") {
		t.Fatalf("an equally ranked job: %q", reason)
	}
	evs, reason = DecideClaim(st, req("c2", "5"), ad(), cfg.VMMemory, cfg.VMMaxNumber, now)
	if reason != "" || len(evs) != 2 || evs[0].Type != events.ClaimAccepted || evs[1].Type != StopRequested {
		t.Fatalf("preempting claim: %q %v", reason, evs)
	}
	step(st, evs, &seq)
	s := st.Slots[0]
	if s.Claim != "c1" || s.Pending != "c2" || !st.Claims["c2"].Waiting || st.Claims["c1"].StopMode != events.ModeVacate || s.State != Preempt {
		t.Fatalf("after the preempting claim: slot %+v", s)
	}
	if _, reason := DecideClaim(st, req("c3", "9"), ad(), cfg.VMMemory, cfg.VMMaxNumber, now); !strings.Contains(reason, "is Preempting") {
		t.Fatalf("a third claim while one waits: %q", reason)
	}
	step(st, []events.Event{VMEvent(st.Claims["c1"], events.VMEvicted, events.VMEventPayload{Reason: "vacated"})}, &seq)
	if s.Claim != "c2" || s.Pending != "" || s.State != Claimed || st.Claims["c2"].Waiting {
		t.Fatalf("after the preempted VM left: slot %+v", s)
	}
	if got, _ := ad().Eval("CurrentRank").NumberValue(); got != 5 {
		t.Fatalf("CurrentRank = %v, want 5", got)
	}

	// A waiting claim deactivated before its VM ever ran ends at once.
	evs, _ = DecideClaim(st, req("c4", "7"), ad(), cfg.VMMemory, cfg.VMMaxNumber, now)
	step(st, evs, &seq)
	stop, known := DecideStop(st, events.DeactivateRequest{ClaimID: "c4", Mode: events.ModeKill})
	if !known || len(stop) != 1 || stop[0].Type != events.VMStopped {
		t.Fatalf("deactivate a waiting claim: %v", stop)
	}
	step(st, stop, &seq)
	if s.Claim != "c2" || s.Pending != "" || st.Claims["c4"] != nil {
		t.Fatalf("after the waiting claim ended: slot %+v", s)
	}
}

// TestDecidePolicy: PREEMPT vacates a running VM the expression picks
// (once), and KILL cuts a vacate short once it holds; both reasons are
// kept for the user log. A VM that has not started yet is left alone.
func TestDecidePolicy(t *testing.T) {
	cfg := testConfig()
	cfg.Preempt = "TARGET.Urgency < 0"
	cfg.Kill = "(CurrentTime - EnteredCurrentActivity) > 60"
	if p := cfg.compilePolicy(); len(p) > 0 {
		t.Fatal(p)
	}
	st := NewState("s1", 2)
	var seq uint64
	f := testFacts()
	claim := func(id, slot, urgency string, started bool) {
		r := claimReq(id, slot, 16, "Urgency = "+urgency)
		evs, reason := DecideClaim(st, r, MachineAd(cfg, st, st.Slot(slot), f), cfg.VMMemory, cfg.VMMaxNumber, time.Unix(1, 0))
		if reason != "" {
			t.Fatal(reason)
		}
		step(st, evs, &seq)
		if started {
			step(st, []events.Event{VMEvent(st.Claims[id], events.VMStarted, events.VMEventPayload{})}, &seq)
		}
	}
	claim("low", "slot1@s1", "-1", true)
	claim("high", "slot2@s1", "1", true)
	since := time.Unix(st.Slot("slot1@s1").Since, 0)

	evs := DecidePolicy(cfg, st, f, since)
	if len(evs) != 1 || evs[0].Type != StopRequested {
		t.Fatalf("PREEMPT: %v", evs)
	}
	var p StopRequestedPayload
	if err := evs[0].Decode(&p); err != nil || p.ClaimID != "low" || p.Mode != events.ModeVacate || p.Reason != "PREEMPT is true" {
		t.Fatalf("PREEMPT asked %+v (%v)", p, err)
	}
	step(st, evs, &seq)
	vacating := time.Unix(st.Slot("slot1@s1").Since, 0)
	if evs := DecidePolicy(cfg, st, f, vacating.Add(10*time.Second)); len(evs) != 0 {
		t.Fatalf("10 s into the vacate: %v", evs)
	}
	evs = DecidePolicy(cfg, st, f, vacating.Add(61*time.Second))
	if len(evs) != 1 || evs[0].Decode(&p) != nil || p.ClaimID != "low" || p.Mode != events.ModeKill || p.Reason != "KILL is true" {
		t.Fatalf("KILL: %v", evs)
	}
	step(st, evs, &seq)
	c := st.Claims["low"]
	if c.StopMode != events.ModeKill || c.StopReason != "PREEMPT is true; then killed: KILL is true" || st.Slot("slot1@s1").Activity != ActKilling {
		t.Fatalf("after KILL: claim %+v, slot %+v", c, st.Slot("slot1@s1"))
	}
	if evs := DecidePolicy(cfg, st, f, vacating.Add(120*time.Second)); len(evs) != 0 {
		t.Fatalf("after the kill: %v", evs)
	}

	// A VM not started yet is not preempted.
	st2 := NewState("s1", 2)
	st = st2
	claim("early", "slot1@s1", "-1", false)
	if evs := DecidePolicy(cfg, st, f, time.Unix(100, 0)); len(evs) != 0 {
		t.Fatalf("a VM not started: %v", evs)
	}
}

// TestSharedAttrsAreTheAds: what the advertiser takes for the shared
// attributes (sharedNow) is what MachineAd renders, with a VM or without,
// before and after a claim; apply puts them back as they were; and which
// moves must reach the other slots at once.
func TestSharedAttrsAreTheAds(t *testing.T) {
	cfg := testConfig()
	st := NewState("s1", 2)
	down := testFacts()
	down.Fingerprint.Healthy = false
	check := func(f Facts) {
		t.Helper()
		ad := MachineAd(cfg, st, st.Slot("slot2@s1"), f)
		if got, want := sharedOf(ad), sharedNow(cfg, st, f); got != want {
			t.Fatalf("the ad says %+v, sharedNow %+v", got, want)
		}
		before := ad.String()
		old := sharedAttrs{set: true, mem: 1, avail: 1, claims: 99}
		old.apply(ad)
		sharedNow(cfg, st, f).apply(ad)
		if ad.String() != before {
			t.Fatalf("apply did not restore the ad:\n%s\n%s", ad, before)
		}
	}
	check(testFacts())
	check(down)
	before := sharedNow(cfg, st, testFacts())
	var seq uint64
	evs, _ := DecideClaim(st, claimReq("c1", "slot1@s1", 48, ""), MachineAd(cfg, st, st.Slot("slot1@s1"), testFacts()), cfg.VMMemory, cfg.VMMaxNumber, time.Unix(1e9, 0))
	step(st, evs, &seq)
	check(testFacts())
	after := sharedNow(cfg, st, testFacts())
	if after.mem != 16 || after.avail != 1 || after.claims != 1 {
		t.Fatalf("after a claim of 48 of 64 MiB: %+v", after)
	}
	for _, tc := range []struct {
		now, sent sharedAttrs
		out       bool
	}{
		{after, before, false},                        // a claim took some: lazily
		{before, after, true},                         // given back
		{sharedAttrs{mem: 0, avail: 1}, after, true},  // no memory left
		{sharedAttrs{mem: 16, avail: 0}, after, true}, // no VM left
		{sharedNow(cfg, st, down), after, true},       // the hypervisor went
	} {
		if got := tc.now.mustGoOut(tc.sent); got != tc.out {
			t.Errorf("%+v after %+v: must go out %v, want %v", tc.now, tc.sent, got, tc.out)
		}
	}
}

// sharedOf reads the shared attributes of a slot ad.
func sharedOf(ad *classad.Ad) sharedAttrs {
	sh := sharedAttrs{set: true, mem: -1, avail: -1}
	if v, ok := ad.EvalInt("VM_Memory"); ok {
		sh.mem = v
	}
	if v, ok := ad.EvalInt("VM_AvailNum"); ok {
		sh.avail = v
	}
	sh.claims, _ = ad.EvalInt("VmpoolClaims")
	return sh
}

// A claim's lease is its job ad's JobLeaseDuration, HTCondor's 2400 s
// when the ad has none or cannot be read.
func TestJobLease(t *testing.T) {
	for ad, want := range map[string]time.Duration{
		`[ JobLeaseDuration = 30; Owner = "a" ]`: 30 * time.Second,
		`[ JobLeaseDuration = 10 * 6 ]`:          60 * time.Second,
		`[ Owner = "a" ]`:                        2400 * time.Second,
		`[ unreadable`:                           2400 * time.Second,
	} {
		if got := jobLease(ad); got != want {
			t.Errorf("jobLease(%s) = %v, want %v", ad, got, want)
		}
	}
	// The lease a claim's ClaimAccepted records, and its state keeps for
	// the keepalives, is the same.
	cfg := testConfig()
	for i, extra := range []string{"JobLeaseDuration = 10 * 6", "Foo = 1"} {
		st := NewState("s1", 1)
		req := claimReq("c1", "slot1@s1", 32, extra)
		evs, reason := DecideClaim(st, req, MachineAd(cfg, st, st.Slots[0], testFacts()), cfg.VMMemory, cfg.VMMaxNumber, time.Unix(1e9, 0))
		if reason != "" || len(evs) != 1 {
			t.Fatalf("claim %d refused: %q", i, reason)
		}
		var seq uint64
		step(st, evs, &seq)
		want := jobLease(req.JobAd)
		if got := time.Duration(st.Claims["c1"].LeaseSeconds) * time.Second; got != want {
			t.Errorf("claim of a job with %s: lease %v recorded, want %v", extra, got, want)
		}
	}
}

// TestRunStartReplays: the claim keeps when its run began and what it
// brought in, as its VMStarted recorded them (its time less its run_ns,
// its bytes_in), so that a restarted startd reports the whole run. A
// VMStarted of an older startd, without them, replays as the VM's start
// and 0 bytes; one after a VMLaunched (older still) leaves the run dated
// by the VMLaunched.
func TestRunStartReplays(t *testing.T) {
	cfg := testConfig()
	st := NewState("s1", 2)
	var seq uint64
	for i, id := range []string{"c1", "c2"} {
		slot := "slot" + itoa(i+1) + "@s1"
		evs, reason := DecideClaim(st, claimReq(id, slot, 16, ""), MachineAd(cfg, st, st.Slot(slot), testFacts()), 64, 2, time.Unix(1e9, 0))
		if reason != "" {
			t.Fatal(reason)
		}
		step(st, evs, &seq)
	}
	h, _ := json.Marshal(hypervisor.Handle{Type: "kvm", Name: "vm", PID: 42})
	step(st, []events.Event{VMEvent(st.Claims["c1"], events.VMStarted, events.VMEventPayload{Handle: h, BytesIn: 1 << 20, RunNanos: 1500e6})}, &seq)
	if c := st.Claims["c1"]; c.RunStart != int64(seq)*1e9-1500e6 || c.BytesIn != 1<<20 {
		t.Fatalf("c1: RunStart %d, BytesIn %d; want its VMStarted's time less 1.5 s and 1 MiB", c.RunStart, c.BytesIn)
	}
	// An older startd's VMLaunched and VMStarted, as JSON without the new
	// members.
	b, _ := json.Marshal(VMLaunchedPayload{ClaimID: "c2", Handle: hypervisor.Handle{Type: "kvm", Name: "vm2", PID: 43}})
	step(st, []events.Event{{Type: VMLaunched, Payload: b, Schedd: "schedd", Cluster: 1}}, &seq)
	launched := int64(seq) * 1e9
	step(st, []events.Event{{Type: events.VMStarted, Payload: json.RawMessage(`{"claim_id":"c2","slot":"slot2@s1","host":"<slot2@s1>"}`), Schedd: "schedd", Cluster: 1}}, &seq)
	if c := st.Claims["c2"]; !c.Started || c.RunStart != launched || c.BytesIn != 0 {
		t.Fatalf("c2: Started %v, RunStart %d, BytesIn %d; want started, dated by its VMLaunched (%d), 0 bytes", c.Started, c.RunStart, c.BytesIn, launched)
	}
	st2 := NewState("s1", 2)
	seq = 0
	evs, _ := DecideClaim(st2, claimReq("c3", "slot1@s1", 16, ""), MachineAd(cfg, st2, st2.Slot("slot1@s1"), testFacts()), 64, 2, time.Unix(1e9, 0))
	step(st2, evs, &seq)
	step(st2, []events.Event{{Type: events.VMStarted, Payload: json.RawMessage(`{"claim_id":"c3","slot":"slot1@s1"}`), Schedd: "schedd", Cluster: 1}}, &seq)
	if c := st2.Claims["c3"]; c.RunStart != int64(seq)*1e9 || c.BytesIn != 0 {
		t.Fatalf("c3: RunStart %d, BytesIn %d; want its VMStarted's time and 0 bytes", c.RunStart, c.BytesIn)
	}
}

// TestClaimOnARemovedSlotRunsToItsEnd: a startd restarted with a lower
// NUM_SLOTS (2, from 4) while a VM ran on slot4 keeps that claim: the
// restarted startd reattaches to the VM (a QEMU outlives its startd) and
// reports its end, while slot4 is neither advertised nor claimed again.
// The claim used to be dropped from the replayed state: the VM ran on
// unwatched, the startd said nothing of it, and its job showed Running
// until its lease expired (20 minutes by default).
func TestClaimOnARemovedSlotRunsToItsEnd(t *testing.T) {
	cfg := testConfig()
	cfg.NumSlots, cfg.VMMaxNumber = 4, 4
	st := NewState("s1", 4)
	var seq uint64
	var all []events.Event
	do := func(evs []events.Event) {
		step(st, evs, &seq)
		for _, e := range evs {
			e.Source, e.Seq, e.Time = "s1", uint64(len(all)+1), int64(len(all)+1)*1e9
			all = append(all, e)
		}
	}
	evs, reason := DecideClaim(st, claimReq("c4", "slot4@s1", 16, ""), MachineAd(cfg, st, st.Slot("slot4@s1"), testFacts()), 64, 4, time.Unix(1e9, 0))
	if reason != "" {
		t.Fatal(reason)
	}
	do(evs)
	h, _ := json.Marshal(hypervisor.Handle{Type: "kvm", Name: "vm4", PID: 44})
	do([]events.Event{VMEvent(st.Claims["c4"], events.VMStarted, events.VMEventPayload{Host: "<slot4@s1>", Handle: h})})

	// Restarted with NUM_SLOTS = 2.
	r := NewState("s1", 2)
	for _, e := range all {
		Apply(r, e)
	}
	c := r.Claims["c4"]
	if c == nil || c.Handle == nil || c.Handle.PID != 44 || !c.Started || c.Slot != "slot4@s1" {
		t.Fatalf("the claim on the removed slot is not in the replayed state (its VM would run unwatched): %+v", r.Claims)
	}
	if len(r.Slots) != 2 || r.Slot("slot4@s1") != nil || r.UsedMemory() != 16 {
		t.Fatalf("slots %d, slot4 %v, used memory %d: want 2 slots, no slot4, the VM's 16 MiB held", len(r.Slots), r.Slot("slot4@s1"), r.UsedMemory())
	}
	// Its end is recorded as any claim's.
	step(r, []events.Event{VMEvent(c, events.VMExited, events.VMEventPayload{PoweredOff: true})}, &seq)
	if len(r.Claims) != 0 || r.Ended["c4"].Schedd != "schedd" || r.Slot("slot1@s1").State != Unclaimed {
		t.Fatalf("after the VM's end: claims %v, ended %v", r.Claims, r.Ended)
	}
}
