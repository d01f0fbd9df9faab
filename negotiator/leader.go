package negotiator

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/vmpool/vmpool/events"
)

// Leader election: of the negotiators a pool runs (one active, others
// standing by), only the holder of the "negotiator" key in the leader
// bucket matches. The key expires when its holder stops renewing it (the
// bucket's TTL), and a standby takes it with a create that fails while it
// exists, so JetStream, not vmpool, decides who leads. Standbys keep their
// projection current (they consume the schedds' events all along), so a
// takeover needs no catching up.
//
// Safety does not rest on the lease: a deposed leader that has not noticed
// yet can still match, but a schedd takes only one match per idle job and a
// startd only one claim per slot, so a stale match is refused, not run.

const leaderKey = events.RoleNegotiator

// lead keeps trying to hold or renew the lease every interval and reports
// on became when this negotiator starts leading.
func (n *Negotiator) lead(ctx context.Context, interval time.Duration, became chan<- struct{}) error {
	kv, err := n.cfg.Bus.JS.KeyValue(ctx, events.LeaderBucket)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	l := &lease{kv: kv, name: n.cfg.Name, grace: 2 * interval}
	if st, err := kv.Status(ctx); err == nil && st.TTL() > 0 {
		l.grace = st.TTL() / 2
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		was := n.active.Load()
		now := l.step(ctx, was, time.Now(), n.logger)
		if ctx.Err() != nil {
			now = was
		}
		n.active.Store(now)
		if now && !was {
			select {
			case became <- struct{}{}:
			default:
			}
		}
		select {
		case <-ctx.Done():
			if n.active.Load() {
				// Hand over at once rather than make a standby wait out
				// the lease.
				dctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_ = kv.Delete(dctx, leaderKey, jetstream.LastRevision(l.rev))
				cancel()
			}
			return nil
		case <-t.C:
		}
	}
}

// lease is a negotiator's hold on the leader key.
type lease struct {
	kv   jetstream.KeyValue
	name string
	// grace is how long after its last renewal a lease whose renewals
	// fail (a timeout: the server is busy, or unreachable) still counts
	// as held: half the bucket's TTL.
	grace   time.Duration
	rev     uint64
	renewed time.Time
}

// step renews the lease (active) or tries to take it, and reports whether
// this negotiator leads now. A renewal that fails for want of an answer
// does not give the lease up while it is younger than grace: a loaded
// server that let one renewal time out used to stop all matching until
// the key expired (up to its TTL, 10 s) and this negotiator took it
// again. A key that holds this negotiator's own name (a renewal that
// failed, or whose answer was lost) is taken back at once.
func (l *lease) step(ctx context.Context, active bool, now time.Time, logger *slog.Logger) bool {
	if active {
		r, err := l.kv.Update(ctx, leaderKey, []byte(l.name), l.rev)
		switch {
		case err == nil:
			l.rev, l.renewed = r, now
			return true
		case ctx.Err() != nil:
			return true
		case !errors.Is(err, jetstream.ErrKeyRevisionMismatch) && now.Sub(l.renewed) < l.grace:
			logger.Warn("renew the negotiator lease; will retry", "err", err)
			return true
		}
		logger.Warn("lost the negotiator lease; standing by", "err", err)
		// Another negotiator may hold it now; if not, it is taken back
		// below.
	}
	r, err := l.kv.Create(ctx, leaderKey, []byte(l.name))
	switch {
	case err == nil:
		l.rev, l.renewed = r, now
		logger.Info("leading: this negotiator matches")
		return true
	case errors.Is(err, jetstream.ErrKeyExists):
		e, gerr := l.kv.Get(ctx, leaderKey)
		if gerr != nil || string(e.Value()) != l.name {
			return false // another negotiator leads
		}
		if r, err = l.kv.Update(ctx, leaderKey, []byte(l.name), e.Revision()); err == nil {
			l.rev, l.renewed = r, now
			logger.Info("leading again: took back this negotiator's own lease")
			return true
		}
		return false
	case ctx.Err() == nil:
		logger.Debug("negotiator lease", "err", err)
	}
	return false
}

// Leading reports whether this negotiator holds the lease now.
func (n *Negotiator) Leading() bool { return n.active.Load() }
