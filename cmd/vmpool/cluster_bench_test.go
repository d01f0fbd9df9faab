package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// BenchmarkClusterJobs measures jobs per second through a pool of
// separate processes on a three-server JetStream cluster, with the
// stream and buckets kept once (R1) and three times (R3): a schedd, a
// negotiator and three simulated startds of 16 slots each run batches
// of 200 sim jobs that finish at once (+SimRunSeconds = 0), from submit
// until the last is in the history.
//
//	go test ./cmd/vmpool -run '^$' -bench ClusterJobs -benchtime 3x
func BenchmarkClusterJobs(b *testing.B) {
	for _, replicas := range []int{1, 3} {
		b.Run(fmt.Sprintf("R%d", replicas), func(b *testing.B) {
			cl := startNATSCluster(b, replicas)
			daemon := func(name string, args ...string) {
				cl.start(name, append(args, "--pool", cl.urls, "--set", "UPDATE_INTERVAL=1", "--set", "ALIVE_INTERVAL=5", "--set", "NEGOTIATOR_INTERVAL=1")...)
			}
			daemon("s1", "schedd", "--name", "s1")
			daemon("n1", "negotiator", "--name", "n1")
			for i := 1; i <= 3; i++ {
				daemon(fmt.Sprintf("sim%d", i), "startd", "--name", fmt.Sprintf("sim%d", i), "--set", "VM_TYPE=sim", "--set", "NUM_SLOTS=16", "--set", "VM_MEMORY=65536")
			}
			cl.waitLog("s1", "schedd serving", 60*time.Second)
			for i := 1; i <= 3; i++ {
				cl.waitLog(fmt.Sprintf("sim%d", i), "startd serving", 60*time.Second)
			}
			sub := b.TempDir()
			traversable(b, sub)
			if err := os.WriteFile(filepath.Join(sub, "sim.img"), make([]byte, 4096), 0o644); err != nil {
				b.Fatal(err)
			}
			const jobs = 200
			file := filepath.Join(sub, "sim.sub")
			if err := os.WriteFile(file, []byte(fmt.Sprintf(`universe = vm
executable = sim
vm_type = sim
vm_memory = 64
vm_disk = sim.img:hda:w:raw
should_transfer_files = YES
transfer_input_files = sim.img
+SimRunSeconds = 0
queue %d
`, jobs)), 0o644); err != nil {
				b.Fatal(err)
			}
			var total time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				start := time.Now()
				if out, errOut, code := cl.vmpool("submit", "-name", "s1", file); code != 0 {
					b.Fatalf("submit: %s %s", out, errOut)
				}
				want := (i + 1) * jobs
				deadline := time.Now().Add(10 * time.Minute)
				for {
					done := 0
					if h, _, _ := cl.vmpool("history", "-name", "s1", "-af", "JobStatus"); h != "" {
						done = strings.Count(h, "4\n")
					}
					if done >= want {
						break
					}
					if time.Now().After(deadline) {
						q, _, _ := cl.vmpool("q", "-name", "s1", "-totals", "-allusers")
						b.Fatalf("%d of %d jobs completed: %s", done, want, q)
					}
					time.Sleep(100 * time.Millisecond)
				}
				total += time.Since(start)
			}
			b.ReportMetric(float64(b.N*jobs)/total.Seconds(), "jobs/s")
		})
	}
}
