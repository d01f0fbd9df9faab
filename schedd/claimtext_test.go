package schedd

import (
	"testing"

	"github.com/vmpool/vmpool/events"
)

// BenchmarkClaimAdText prints the flat ad a claim request carries for the
// procs of one queue 1000 cluster: as the reconciler does (claimTexts),
// printed afresh (AdText), and through a built ad (Ad().String(), what
// the reconciler did before).
func BenchmarkClaimAdText(b *testing.B) {
	q := NewQueue("schedd")
	e := events.New(events.ClusterSubmitted, events.ClusterSubmittedPayload{
		SubmitID: "bench", Owner: "alice", SubmitHost: "submit", File: "/home/alice/hello.sub", Iwd: "/home/alice", NumProcs: 1000,
		Attrs: []events.Attr{
			{Name: "JobUniverse", Expr: "13"}, {Name: "Cmd", Expr: `"hello_vm_job"`}, {Name: "JobVMType", Expr: `"kvm"`},
			{Name: "JobVMMemory", Expr: "16"}, {Name: "VMPARAM_vm_Disk", Expr: `"hello.img:hda:w:raw"`}, {Name: "RequestDisk", Expr: "16384"},
			{Name: "Requirements", Expr: `(TARGET.Arch == "X86_64") && (TARGET.HasVM =?= true) && (TARGET.VM_Type == MY.JobVMType) && (TARGET.VM_Memory >= MY.JobVMMemory)`},
		}}).ForCluster("schedd", 1)
	e.Source, e.Seq, e.Time = "schedd", 1, 1e9
	Apply(q, e)
	jobs := q.Sorted()
	var texts claimTexts
	for _, bc := range []struct {
		name  string
		print func(j *Job) string
	}{
		{"claimTexts", func(j *Job) string { text, _ := texts.adText(j, q.Name); return text }},
		{"AdText", func(j *Job) string { return j.AdText(q.Name) }},
		{"AdString", func(j *Job) string { return j.Ad(q.Name).String() }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if bc.print(jobs[i%len(jobs)]) == "" {
					b.Fatal("empty ad")
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "claims/s")
		})
	}
}
