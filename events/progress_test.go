package events_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/vmpool/vmpool/events"
	"github.com/vmpool/vmpool/events/eventstest"
)

// TestReportTransfer: a transfer reported with ReportTransfer sends a
// first report, counted progress no more than four times a second, and a
// final report of the whole size (or the error), on its owner's subject.
func TestReportTransfer(t *testing.T) {
	_, bus := eventstest.Bus(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	src := filepath.Join(dir, "disk.img")
	const size = 8 << 20
	if err := os.WriteFile(src, make([]byte, size), 0o644); err != nil {
		t.Fatal(err)
	}
	reports := make(chan events.TransferProgress, 64)
	sub, err := bus.NC.Subscribe(events.ProgressSubjects("alice", "schedd"), func(m *nats.Msg) {
		var p events.TransferProgress
		if json.Unmarshal(m.Data, &p) == nil {
			reports <- p
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	bus.NC.Flush()
	job := events.JobID{Cluster: 3, Proc: 1}
	base := events.TransferProgress{Schedd: "schedd", Job: job, Kind: events.TransferOutput, File: "disk.img", Total: size, By: "startd1"}
	pctx, done := bus.ReportTransfer(ctx, "alice", base)
	ref, err := bus.PutFile(pctx, "alice", src, "")
	done(err)
	if err != nil {
		t.Fatal(err)
	}
	base.Kind = events.TransferReturn
	pctx, done = bus.ReportTransfer(ctx, "alice", base)
	err = bus.GetFile(pctx, ref, filepath.Join(dir, "back.img"))
	done(err)
	if err != nil {
		t.Fatal(err)
	}
	missing := ref
	missing.Object, missing.SHA256 = "sha256-0000", "0000"
	pctx, done = bus.ReportTransfer(ctx, "alice", base)
	done(bus.GetFile(pctx, missing, filepath.Join(dir, "missing.img")))

	var got []events.TransferProgress
	for len(got) < 6 {
		select {
		case p := <-reports:
			if p.Done < 0 || p.Done > p.Total {
				t.Fatalf("report %+v", p)
			}
			if p.Final || p.Done == 0 {
				got = append(got, p) // intermediate ones depend on timing
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("reports %+v", got)
		}
	}
	for i, want := range []struct {
		kind  string
		final bool
		done  int64
		err   bool
	}{{events.TransferOutput, false, 0, false}, {events.TransferOutput, true, size, false},
		{events.TransferReturn, false, 0, false}, {events.TransferReturn, true, size, false},
		{events.TransferReturn, false, 0, false}, {events.TransferReturn, true, 0, true}} {
		p := got[i]
		if p.Kind != want.kind || p.Final != want.final || p.Done != want.done || (p.Err != "") != want.err || p.Job != job || p.By != "startd1" {
			t.Errorf("report %d: %+v, want %+v", i, p, want)
		}
	}
}
