package negotiator

import (
	"context"
	"errors"
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
	var rev uint64
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if n.active.Load() {
			r, err := kv.Update(ctx, leaderKey, []byte(n.cfg.Name), rev)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				n.active.Store(false)
				n.logger.Warn("lost the negotiator lease; standing by", "err", err)
			} else {
				rev = r
			}
		} else {
			r, err := kv.Create(ctx, leaderKey, []byte(n.cfg.Name))
			switch {
			case err == nil:
				rev = r
				n.active.Store(true)
				n.logger.Info("leading: this negotiator matches")
				select {
				case became <- struct{}{}:
				default:
				}
			case errors.Is(err, jetstream.ErrKeyExists):
				// another negotiator leads
			case ctx.Err() != nil:
				return nil
			default:
				n.logger.Debug("negotiator lease", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			if n.active.Load() {
				// Hand over at once rather than make a standby wait out
				// the lease.
				dctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_ = kv.Delete(dctx, leaderKey, jetstream.LastRevision(rev))
				cancel()
			}
			return nil
		case <-t.C:
		}
	}
}

// Leading reports whether this negotiator holds the lease now.
func (n *Negotiator) Leading() bool { return n.active.Load() }
