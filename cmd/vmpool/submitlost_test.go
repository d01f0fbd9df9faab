package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/vmpool/vmpool/events"
	"github.com/vmpool/vmpool/vmimage"
)

// TestSubmitToAScheddThatDiedSaysItMayBeQueued: the schedd takes a
// submit and dies before it answers (killed after recording the cluster:
// once restarted, it runs the jobs). vmpool submit used to say "refused
// the submit; nothing was queued", and a user who submitted again ran the
// jobs twice. It now says the cluster may be queued and to look with
// vmpool q first. A schedd that is simply not running is still said to
// have queued nothing.
func TestSubmitToAScheddThatDiedSaysItMayBeQueued(t *testing.T) {
	defer func(d time.Duration) { callTimeout = d }(callTimeout)
	callTimeout = time.Second
	tp := newTestPool(t, 1).serving()
	if err := vmimage.WriteHello(filepath.Join(tp.dir, "hello.img")); err != nil {
		t.Fatal(err)
	}
	sub := tp.write("hello.sub", helloSub)
	tp.stopCore()
	tp.coreWG.Wait()

	// Not running at all: no try reached a schedd.
	_, errOut, code := tp.vmpool("submit", sub)
	if code == 0 || !strings.Contains(errOut, "nothing was queued") || strings.Contains(errOut, "refused") {
		t.Errorf("submit to a stopped schedd: exit %d\n%s", code, errOut)
	}

	// The schedd takes the request and dies with it unanswered.
	taken := make(chan struct{})
	var sub1 *nats.Subscription
	sub1, err := tp.Bus.NC.Subscribe(events.CmdSubject(events.RoleSchedd, "schedd", "submit")+".>", func(*nats.Msg) {
		sub1.Unsubscribe()
		close(taken)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := tp.Bus.NC.Flush(); err != nil {
		t.Fatal(err)
	}
	_, errOut, code = tp.vmpool("submit", sub)
	select {
	case <-taken:
	default:
		t.Fatal("the request never reached the dying schedd")
	}
	if code == 0 || strings.Contains(errOut, "nothing was queued") || !strings.Contains(errOut, "vmpool q") {
		t.Errorf("submit to a schedd that died with it: exit %d\n%s\nwant it to say the cluster may be queued, and to look with vmpool q", code, errOut)
	}
}
