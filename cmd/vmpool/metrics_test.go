package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vmpool/vmpool/events"
	"github.com/vmpool/vmpool/vmimage"
)

// series is one scrape: each sample's value by "name{labels}" as the text
// exposition format prints it (labels sorted).
type series map[string]float64

// scrapeMetrics reads url's /metrics in Prometheus's text format.
func scrapeMetrics(t *testing.T, url string) series {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("scrape %s: %s\n%s", url, resp.Status, b)
	}
	out := series{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("scrape %s: bad sample %q", url, line)
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	return out
}

// get sums the samples of metric name whose labels include every
// name="value" pair given; ok is false when there is none.
func (s series) get(name string, labels ...string) (float64, bool) {
	var sum float64
	found := false
	for k, v := range s {
		base, lbls, _ := strings.Cut(k, "{")
		if base != name {
			continue
		}
		match := true
		for _, l := range labels {
			if !strings.Contains("{"+lbls, "{"+l) && !strings.Contains(lbls, ","+l) {
				match = false
				break
			}
		}
		if match {
			sum += v
			found = true
		}
	}
	return sum, found
}

func (s series) val(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	v, ok := s.get(name, labels...)
	if !ok {
		t.Fatalf("no series %s%v in the scrape:\n%s", name, labels, s)
	}
	return v
}

func (s series) String() string {
	keys := make([]string, 0, len(s))
	for k := range s {
		if strings.HasPrefix(k, "vmpool_") && !strings.Contains(k, "_bucket{") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s %g\n", k, s[k])
	}
	return b.String()
}

// eventually scrapes until cond holds. Metrics are observed by the
// daemons just after the event the test waited for is durable (a scrape
// may come a moment before), so the test re-reads them for a while
// instead of requiring them at once; it never asserts on durations.
func eventually(t *testing.T, url, what string, cond func(series) bool) series {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s := scrapeMetrics(t, url)
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics never showed %s; last scrape:\n%s", what, s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestMetricsFollowAJob scrapes a pool's /metrics as jobs go through it:
// submitted on hold, released, matched, booted, completed with their disk
// returned; and a checkpointed job vacated and resumed. Each vmpool_*
// metric moves as the job does.
func TestMetricsFollowAJob(t *testing.T) {
	tp := newTestPool(t, 1, "METRICS_ADDRESS=127.0.0.1:0")
	if tp.Metrics == nil {
		t.Fatal("METRICS_ADDRESS set but the pool serves no metrics")
	}
	url := tp.Metrics.URL()
	s0 := scrapeMetrics(t, url)
	for _, name := range []string{
		"vmpool_schedd_jobs", "vmpool_schedd_history_jobs", "vmpool_log_events", "vmpool_outbox_acked_events",
		"vmpool_outbox_lag_events", "vmpool_consumer_pending_events", "vmpool_collector_ads",
		"vmpool_negotiator_idle_jobs", "vmpool_negotiator_slot_ads", "vmpool_negotiator_matches_total",
		"vmpool_startd_slots", "vmpool_startd_vms", "vmpool_startd_transfer_bytes_total",
		"go_goroutines", "process_cpu_seconds_total",
	} {
		s0.val(t, name)
	}
	for _, role := range []string{"schedd", "negotiator", "startd"} {
		s0.val(t, "vmpool_outbox_lag_events", `role="`+role+`"`)
	}
	s0.val(t, "vmpool_consumer_pending_events", `consumer="schedd-schedd"`)
	s0.val(t, "vmpool_consumer_pending_events", `consumer="negotiator-negotiator"`)
	eventually(t, url, "the slot's and the schedd's ads in the collector", func(s series) bool {
		n, _ := s.get("vmpool_collector_ads")
		return n >= 2
	})
	if n := s0.val(t, "vmpool_startd_slots", `state="Unclaimed"`); n != 1 {
		t.Errorf("unclaimed slots = %g, want 1", n)
	}

	// A job submitted on hold: one held job, one submit observed.
	img := filepath.Join(tp.dir, "hello.img")
	if err := vmimage.WriteHello(img); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(img)
	if err != nil {
		t.Fatal(err)
	}
	size := float64(fi.Size())
	tp.mustRun("submit", "-a", "hold = true", tp.write("hello.sub", helloSub))
	tp.waitEvent("vmpool.ev.schedd.schedd.cluster.schedd.1.ClusterSubmitted", nil, 30*time.Second)
	s1 := eventually(t, url, "a held job", func(s series) bool {
		v, _ := s.get("vmpool_schedd_jobs", `status="held"`)
		return v == 1
	})
	if n := s1.val(t, "vmpool_schedd_submit_seconds_count"); n != 1 {
		t.Errorf("submit_seconds_count = %g, want 1", n)
	}
	if n := s1.val(t, "vmpool_schedd_events_total", `type="ClusterSubmitted"`); n != 1 {
		t.Errorf("ClusterSubmitted events = %g, want 1", n)
	}
	if s1.val(t, "vmpool_log_events", `role="schedd"`) <= s0.val(t, "vmpool_log_events", `role="schedd"`) {
		t.Errorf("the schedd's log did not grow")
	}

	// Released, it runs and completes: matched, booted, disks moved both
	// ways, a turnaround; nothing left in the queue.
	tp.mustRun("release", "1.0")
	tp.jobEvent(1, 0, events.JobCompleted, 60*time.Second)
	s2 := eventually(t, url, "a completed job", func(s series) bool {
		v, _ := s.get("vmpool_schedd_turnaround_seconds_count")
		m, _ := s.get("vmpool_negotiator_matches_total")
		return v == 1 && m == 1
	})
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"vmpool_schedd_jobs", []string{`status="held"`}, 0},
		{"vmpool_schedd_jobs", nil, 0},
		{"vmpool_schedd_history_jobs", nil, 1},
		{"vmpool_schedd_match_seconds_count", nil, 1},
		{"vmpool_schedd_returned_seconds_count", nil, 1},
		{"vmpool_startd_vm_boot_seconds_count", []string{`how="boot"`}, 1},
		{"vmpool_startd_transfer_bytes_total", []string{`what="input"`}, size},
		{"vmpool_startd_transfer_bytes_total", []string{`what="output"`}, size},
		{"vmpool_schedd_returned_bytes_total", nil, size},
		{"vmpool_startd_events_total", []string{`type="VMExited"`}, 1},
		{"vmpool_negotiator_idle_jobs", nil, 0},
		// Its match was settled when its slot's ad showed the claim (it
		// stayed counted until a later event expired it).
		{"vmpool_negotiator_unsettled_matches", nil, 0},
	} {
		if got := s2.val(t, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %g, want %g", c.name, c.labels, got, c.want)
		}
	}
	for _, role := range []string{"schedd", "negotiator", "startd"} {
		if s2.val(t, "vmpool_outbox_acked_events", `role="`+role+`"`) <= s0.val(t, "vmpool_outbox_acked_events", `role="`+role+`"`) {
			t.Errorf("the %s's outbox acknowledged nothing new", role)
		}
	}

	// A checkpointing job, vacated while it runs, resumes from its
	// checkpoint: the checkpoint's duration and bytes, both ways.
	if err := vmimage.Forever().WriteRaw(filepath.Join(tp.dir, "forever.img"), 0); err != nil {
		t.Fatal(err)
	}
	sub := strings.ReplaceAll(helloSub, "hello.img", "forever.img")
	sub = strings.Replace(sub, "queue", "vm_checkpoint = true\nqueue", 1)
	tp.mustRun("submit", tp.write("forever.sub", sub))
	first := tp.jobEvent(2, 0, events.JobStarted, 60*time.Second)
	s3 := eventually(t, url, "a running VM", func(s series) bool {
		v, _ := s.get("vmpool_startd_vms")
		r, _ := s.get("vmpool_schedd_jobs", `status="running"`)
		return v == 1 && r == 1
	})
	if n := s3.val(t, "vmpool_startd_slots", `state="Claimed"`); n != 1 {
		t.Errorf("claimed slots = %g, want 1", n)
	}
	if n := s3.val(t, "vmpool_startd_vm_memory_mib"); n != 16 {
		t.Errorf("vm_memory_mib = %g, want 16", n)
	}
	tp.mustRun("vacate-job", "2.0")
	tp.jobEvent(2, 0, events.JobEvicted, 60*time.Second)
	tp.waitEvent("vmpool.ev.schedd.schedd.job.schedd.2.0.JobStarted", func(e events.Event) bool { return e.Seq > first.Seq }, 60*time.Second)
	s4 := eventually(t, url, "a resumed VM", func(s series) bool {
		v, _ := s.get("vmpool_startd_vm_boot_seconds_count", `how="resume"`)
		return v == 1
	})
	if n := s4.val(t, "vmpool_startd_checkpoint_seconds_count", `kind="vacate"`); n != 1 {
		t.Errorf("vacate checkpoints = %g, want 1", n)
	}
	out := s4.val(t, "vmpool_startd_transfer_bytes_total", `what="checkpoint_out"`)
	in := s4.val(t, "vmpool_startd_transfer_bytes_total", `what="checkpoint_in"`)
	if out <= 0 || in != out {
		t.Errorf("checkpoint bytes out %g, in %g: want the same, more than none", out, in)
	}
	if n := s4.val(t, "vmpool_schedd_match_seconds_count"); n != 3 {
		t.Errorf("match_seconds_count = %g, want 3 (one match per run)", n)
	}
	tp.mustRun("rm", "2")
	tp.jobEvent(2, 0, events.ClaimReleased, 60*time.Second)
	eventually(t, url, "an empty queue", func(s series) bool {
		v, _ := s.get("vmpool_schedd_jobs")
		h, _ := s.get("vmpool_schedd_history_jobs")
		vms, _ := s.get("vmpool_startd_vms")
		return v == 0 && h == 2 && vms == 0
	})
	t.Logf("scrape at the end:\n%s", scrapeMetrics(t, url))
}

// upWithMetrics runs `vmpool up` (no startds; a pool without credentials:
// up writes none to $HOME) with the extra arguments until it prints where
// clients find it, calls check with the metrics URL it printed (if any),
// stops the pool and returns that URL ("" for none), its exit code and
// its standard error.
func upWithMetrics(t *testing.T, check func(url string), extra ...string) (url string, code int, stderr string) {
	t.Helper()
	pr, pw := io.Pipe()
	var errb syncBuffer
	c := &cli{stdout: pw, stderr: &errb, stdin: strings.NewReader(""), getenv: func(string) string { return "" }}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() {
		args := append([]string{"vmpool", "up", "--home", t.TempDir(), "--listen", "127.0.0.1:0", "--startds", "0", "--set", "POOL_AUTH=false"}, extra...)
		code := c.main(ctx, args)
		pw.Close()
		done <- code
	}()
	sc := bufio.NewScanner(pr)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "metrics: "); ok {
			url, _, _ = strings.Cut(rest, " ")
		}
		if strings.Contains(line, "clients: export VMPOOL_URL") {
			break
		}
	}
	go io.Copy(io.Discard, pr)
	if url != "" && check != nil {
		check(url)
	}
	cancel()
	code = <-done
	return url, code, errb.String()
}

// TestMetricsUp runs `vmpool up` with --metrics on a free port, reads the
// address it prints, scrapes it, and stops the pool; with --metrics off it
// prints none.
func TestMetricsUp(t *testing.T) {
	for _, tc := range []struct {
		flag string
		want bool
	}{{"127.0.0.1:0", true}, {"off", false}} {
		t.Run(tc.flag, func(t *testing.T) {
			url, code, stderr := upWithMetrics(t, func(url string) {
				s := scrapeMetrics(t, url)
				s.val(t, "vmpool_schedd_jobs", `status="idle"`)
				s.val(t, "vmpool_negotiator_idle_jobs")
			}, "--metrics", tc.flag)
			if code != 0 {
				t.Fatalf("vmpool up exited %d:\n%s", code, stderr)
			}
			switch {
			case tc.want && url == "":
				t.Fatalf("vmpool up printed no metrics address; stderr:\n%s", stderr)
			case !tc.want && url != "":
				t.Fatalf("--metrics off, but vmpool up serves metrics at %s", url)
			}
			if tc.want {
				if _, err := http.Get(url); err == nil {
					t.Errorf("metrics still served at %s after vmpool up stopped", url)
				}
			}
		})
	}
}

// TestMetricsAddress: METRICS_ADDRESS's spellings of off.
func TestMetricsAddress(t *testing.T) {
	for v, want := range map[string]string{"": "", "off": "", "OFF": "", "none": "", "false": "", "127.0.0.1:9464": "127.0.0.1:9464", " :0 ": ":0"} {
		cfg := NewConfig()
		cfg.Set("METRICS_ADDRESS", v, "test")
		if got := metricsAddress(cfg); got != want {
			t.Errorf("METRICS_ADDRESS %q: address %q, want %q", v, got, want)
		}
	}
}

// TestMetricsUpDefaultPortTaken: with the default metrics port taken (as by
// another personal pool on the machine) `vmpool up` serves its metrics on
// a free port and says so; a port asked for with --metrics that is taken
// fails the start, naming it.
func TestMetricsUpDefaultPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", defaultMetricsAddress)
	if err == nil {
		defer ln.Close()
	} else if !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("take %s: %v", defaultMetricsAddress, err)
	}
	check := func(url string) { scrapeMetrics(t, url).val(t, "vmpool_negotiator_idle_jobs") }
	url, code, stderr := upWithMetrics(t, check)
	if code != 0 || url == "" || strings.Contains(url, defaultMetricsAddress) {
		t.Fatalf("vmpool up with %s taken: exit %d, metrics at %q\n%s", defaultMetricsAddress, code, url, stderr)
	}
	if !strings.Contains(stderr, "default metrics port is in use") {
		t.Errorf("vmpool up did not say it moved its metrics:\n%s", stderr)
	}
	if _, code, stderr := upWithMetrics(t, check, "--metrics", defaultMetricsAddress); code == 0 || !strings.Contains(stderr, "serve metrics on "+defaultMetricsAddress) {
		t.Errorf("vmpool up --metrics %s (taken): exit %d\n%s", defaultMetricsAddress, code, stderr)
	}
}
