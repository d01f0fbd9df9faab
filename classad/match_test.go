package classad

import (
	"reflect"
	"testing"
)

func TestMatch(t *testing.T) {
	job, machine := benchAds(t)
	if !Match(job, machine) {
		t.Fatalf("default vm requirements should match:\n%v", Explain(job, machine))
	}
	cases := []struct {
		name    string
		job     map[string]string // attribute -> expression set on the job
		machine map[string]string
		want    bool
	}{
		{"matches", nil, nil, true},
		{"wrong arch", nil, map[string]string{"Arch": `"INTEL"`}, false},
		{"arch compares ignoring case", nil, map[string]string{"Arch": `"x86_64"`}, true},
		{"no HasVM is undefined, =?= true fails", nil, map[string]string{"HasVM": ""}, false},
		{"vm type differs", map[string]string{"JobVMType": `"xen"`}, nil, false},
		{"not enough vm memory", map[string]string{"JobVMMemory": "20000"}, nil, false},
		{"no free vm slot", nil, map[string]string{"VM_AvailNum": "0"}, false},
		{"machine refuses", nil, map[string]string{"Requirements": "TARGET.Owner != \"alice\""}, false},
		{"machine requirements undefined", nil, map[string]string{"Requirements": "TARGET.NoSuchAttr > 1"}, false},
		{"machine requirements error", nil, map[string]string{"Requirements": "1/0 == 1"}, false},
		{"machine without requirements", nil, map[string]string{"Requirements": ""}, false},
		{"numeric requirements count as true", nil, map[string]string{"Requirements": "1"}, true},
		{"string requirements do not", nil, map[string]string{"Requirements": `"yes"`}, false},
		{"bare name resolves in the other ad", map[string]string{"Requirements": "VM_Memory >= JobVMMemory"}, nil, true},
		{"MY-only reference misses", map[string]string{"Requirements": "MY.VM_Memory >= JobVMMemory"}, nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			j, m := job.Copy(), machine.Copy()
			apply := func(ad *Ad, attrs map[string]string) {
				for name, src := range attrs {
					if src == "" {
						ad.Delete(name)
						continue
					}
					if err := ad.SetExpr(name, src); err != nil {
						t.Fatal(err)
					}
				}
			}
			apply(j, tc.job)
			apply(m, tc.machine)
			if got := Match(j, m); got != tc.want {
				t.Errorf("Match = %v, want %v\njob: %v\nmachine: %v", got, tc.want, Explain(j, m), Explain(m, j))
			}
		})
	}
}

func TestRank(t *testing.T) {
	job := mustAd(t, `[ Rank = TARGET.Memory / 1024 ]`)
	cases := []struct {
		machine string
		want    float64
	}{
		{`[ Memory = 2048 ]`, 2},
		{`[ Memory = 2048.0 ]`, 2},
		{`[ ]`, 0}, // undefined counts as 0
		{`[ Memory = "lots" ]`, 0},
	}
	for _, c := range cases {
		if got := Rank(job, mustAd(t, c.machine)); got != c.want {
			t.Errorf("Rank against %s = %v, want %v", c.machine, got, c.want)
		}
	}
	if got := Rank(mustAd(t, `[ Rank = TARGET.Fast ]`), mustAd(t, `[ Fast = true ]`)); got != 1 {
		t.Errorf("boolean rank = %v, want 1", got)
	}
	if got := Rank(NewAd(), NewAd()); got != 0 {
		t.Errorf("missing rank = %v", got)
	}
	// Rank is evaluated both ways.
	machine := mustAd(t, `[ Memory = 4096; Rank = TARGET.Prio ]`)
	job2 := mustAd(t, `[ Prio = 7; Rank = TARGET.Memory ]`)
	if Rank(job2, machine) != 4096 || Rank(machine, job2) != 7 {
		t.Errorf("two-way rank = %v, %v", Rank(job2, machine), Rank(machine, job2))
	}
}

func TestExplain(t *testing.T) {
	job, machine := benchAds(t)
	machine.SetInt("VM_Memory", 100)
	clauses := Explain(job, machine)
	if len(clauses) != 8 {
		t.Fatalf("got %d clauses, want 8: %v", len(clauses), clauses)
	}
	var failing []string
	for _, c := range clauses {
		if !c.OK() {
			failing = append(failing, c.Expr.String()+" = "+c.Value.String())
		}
	}
	want := []string{"(TARGET.VM_Memory >= MY.JobVMMemory) = false"}
	if !reflect.DeepEqual(failing, want) {
		t.Errorf("failing clauses = %q, want %q", failing, want)
	}
	if clauses[0].Expr.String() != `(TARGET.Arch == "X86_64")` {
		t.Errorf("first clause = %s", clauses[0].Expr)
	}
	// Parenthesized conjunctions are split too; || is not.
	ad := mustAd(t, `[ Requirements = (a && (b && c)) && (d || e); a = true; b = false; c = undefined; d = false; e = true ]`)
	got := Explain(ad, nil)
	var texts []string
	for _, c := range got {
		texts = append(texts, c.Expr.String()+"="+c.Value.String())
	}
	if want := []string{"a=true", "b=false", "c=undefined", "(d || e)=true"}; !reflect.DeepEqual(texts, want) {
		t.Errorf("clauses = %q, want %q", texts, want)
	}
	if Explain(NewAd(), nil) != nil {
		t.Error("no Requirements should give nil")
	}
}

func TestReferences(t *testing.T) {
	e := MustParseExpr(`TARGET.Memory >= MY.RequestMemory && Arch == "X86_64" && target.memory > 0 && .Root + x.y.z + l[i] + f(Arg) + [ a = 1; b = a + Outer ].b + MY.Self`)
	r := ReferencesByScope(e)
	if want := []string{"RequestMemory", "Root", "Self"}; !reflect.DeepEqual(r.My, want) {
		t.Errorf("My = %q, want %q", r.My, want)
	}
	if want := []string{"Memory"}; !reflect.DeepEqual(r.Target, want) {
		t.Errorf("Target = %q, want %q", r.Target, want)
	}
	if want := []string{"Arch", "Arg", "i", "l", "Outer", "x"}; !reflect.DeepEqual(r.Bare, want) {
		t.Errorf("Bare = %q, want %q", r.Bare, want)
	}
	all := References(e)
	if want := []string{"Arch", "Arg", "i", "l", "Memory", "Outer", "RequestMemory", "Root", "Self", "x"}; !reflect.DeepEqual(all, want) {
		t.Errorf("References = %q, want %q", all, want)
	}
	// condor_submit's rule: skip a default clause whose attribute the user
	// already references, whatever the case or scope.
	user := MustParseExpr(`target.vm_memory > 1000`)
	found := false
	for _, n := range References(user) {
		if n == "vm_memory" {
			found = true
		}
	}
	if !found {
		t.Errorf("References(%s) = %q", user, References(user))
	}
}

func TestSignificantAttrsAndAutocluster(t *testing.T) {
	machine := mustAd(t, `[ Memory = 4096; Start = TARGET.Owner != "bob" && Cpus > 0; Requirements = Start && TARGET.JobUniverse == 13 && (KeyboardIdle > 0 || WantIdle); Rank = TARGET.Prio; Cpus = 4 ]`)
	got := SignificantAttrs(machine)
	want := []string{"jobuniverse", "keyboardidle", "owner", "prio", "rank", "requirements", "wantidle"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("SignificantAttrs = %q, want %q", got, want)
	}

	jobs, machines := matchPool(t, 200, 4, 50)
	ac := NewAutocluster(SignificantAttrs(machines...))
	ids := make([]int, len(jobs))
	for i, j := range jobs {
		ids[i] = ac.ID(j)
	}
	if ac.Len() != 4 {
		t.Fatalf("Autocluster found %d groups, want 4", ac.Len())
	}
	// Every job matches exactly the machines its representative matches.
	for i, j := range jobs {
		rep := ac.Representative(ids[i])
		for _, m := range machines {
			if Match(j, m) != Match(rep, m) {
				t.Fatalf("job %d and its representative disagree on %s", i, m.Eval("Name"))
			}
		}
	}
	// Jobs that differ in an attribute their own Requirements reads land
	// in different groups even if no machine reads it.
	a := jobs[0].Copy()
	b := jobs[0].Copy()
	a.SetExpr("Requirements", "MY.Flavor == \"big\" && TARGET.Memory > 0")
	b.SetExpr("Requirements", "MY.Flavor == \"big\" && TARGET.Memory > 0")
	a.SetString("Flavor", "big")
	b.SetString("Flavor", "small")
	if ac.ID(a) == ac.ID(b) {
		t.Error("jobs differing in Flavor share a group")
	}
	if Signature(a, ac.Attrs(ac.ID(a))) == Signature(b, ac.Attrs(ac.ID(a))) {
		t.Error("Signature does not tell them apart")
	}
	c := a.Copy()
	c.SetInt("ProcId", 999) // not significant
	if ac.ID(c) != ac.ID(a) || Signature(c, ac.Attrs(0)) != Signature(a, ac.Attrs(0)) {
		t.Error("a non-significant attribute split a group")
	}
}
