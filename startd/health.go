package startd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/vmpool/vmpool/startd/hypervisor"
)

// Whether this machine can run VMs now: the hypervisor's fingerprint, the
// execute directory's reachability, and, as in HTCondor, VMs disabled for
// VM_RECHECK_INTERVAL after one failed to start for a reason of the
// machine's (not the job's): a machine that cannot start VMs then stops
// advertising HasVM, with VMOfflineReason saying why, instead of taking
// and failing one job after another as fast as they are matched.

// probe fingerprints the hypervisor and checks that the account VMs run as
// can reach the execute directory.
func (d *Startd) probe(ctx context.Context) hypervisor.Fingerprint {
	fp, err := d.cfg.Driver.Probe(ctx)
	if err != nil {
		d.logger.Error("probe hypervisor", "err", err)
		fp.Healthy = false
		if fp.Reason == "" {
			fp.Reason = "probe: " + err.Error()
		}
	}
	if fp.Detected && fp.Healthy && !fp.NoFiles {
		if err := d.executeReachable(); err != nil {
			fp.Healthy = false
			fp.Reason = err.Error()
		}
	}
	return fp
}

// fingerprint is what the machine ad and claims go by: the last probe,
// made unhealthy while VMs are disabled after a failure.
func (d *Startd) fingerprint() hypervisor.Fingerprint {
	d.healthMu.Lock()
	defer d.healthMu.Unlock()
	fp := d.fp
	if d.offline != "" {
		fp.Healthy = false
		fp.Reason = d.offline
	}
	return fp
}

// VMsAvailable reports whether the machine advertises VMs now, and why
// not. It is meaningful once the startd serves (Ready).
func (d *Startd) VMsAvailable() (bool, string) {
	fp := d.fingerprint()
	return fp.Detected && fp.Healthy, fp.Reason
}

// vmFailed disables VMs until the recheck after a VM failed to start for
// a reason of the machine's.
func (d *Startd) vmFailed(err error) {
	until := d.cfg.Clock().Add(d.cfg.RecheckInterval)
	d.healthMu.Lock()
	d.offline = fmt.Sprintf("a VM failed to start (%v); VMs are disabled until the recheck at %s (VM_RECHECK_INTERVAL)",
		err, until.UTC().Format(time.RFC3339))
	d.healthMu.Unlock()
	d.logger.Error("a VM failed to start; advertising HasVM = false until the recheck", "err", err, "recheck", d.cfg.RecheckInterval)
	select {
	case d.recheckNow <- struct{}{}:
	default:
	}
	d.signalChanged()
}

// recheck probes the machine again VM_RECHECK_INTERVAL after it was found
// unable to run VMs, and advertises VMs again once it can; and, every
// VM_RECHECK_INTERVAL, while it cannot give a networking type of
// VM_NETWORKING_TYPE (a bridge not made yet, or fixed since), so that it
// advertises the type once it can, without a restart.
func (d *Startd) recheck(ctx context.Context) error {
	var t <-chan time.Time
	for {
		if fp := d.fingerprint(); !fp.Healthy || d.lacksNetworking(fp) {
			t = time.After(d.cfg.RecheckInterval)
		} else {
			t = nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-d.recheckNow:
			continue // re-arm the timer from this failure
		case <-t:
		}
		fp := d.probe(ctx)
		d.healthMu.Lock()
		was, wasFP := d.offline, d.fp
		d.fp, d.offline = fp, ""
		d.healthMu.Unlock()
		if fp.Detected && fp.Healthy {
			if was != "" || !wasFP.Healthy {
				d.logger.Info("VMs enabled again after the recheck", "was", was)
			}
			for _, nt := range netTypes(&d.cfg, fp) {
				if !slices.Contains(netTypes(&d.cfg, wasFP), nt) {
					d.logger.Info("the machine can give a networking type of VM_NETWORKING_TYPE now; advertised", "type", nt)
				}
			}
		} else {
			d.logger.Warn("recheck: VMs still unavailable; advertising HasVM = false", "reason", fp.Reason)
		}
		d.signalChanged()
	}
}

// executeReachable checks that the account VMs run as (when the startd is
// root, VM_UNIV_NOBODY_USER) may search every directory down to the
// execute directory: QEMU opens the job's disks there by path.
func (d *Startd) executeReachable() error {
	if os.Geteuid() != 0 {
		return nil // VMs run as the startd's own account
	}
	acct, err := d.runAs("root") // the account a job without a local one gets
	if err != nil {
		return err
	}
	dir, err := filepath.Abs(filepath.Join(d.cfg.Dir, "execute"))
	if err != nil {
		return fmt.Errorf("execute directory: %w", err)
	}
	return searchable(filepath.Dir(dir), acct)
}

// searchable reports which directory from dir up to / acct may not
// search, if any, and how to fix that.
func searchable(dir string, acct *hypervisor.Account) error {
	for d := dir; ; d = filepath.Dir(d) {
		var st syscall.Stat_t
		if err := syscall.Stat(d, &st); err != nil {
			if os.IsNotExist(err) {
				if d == filepath.Dir(d) {
					return nil
				}
				continue // created later, 0711, by the startd
			}
			return fmt.Errorf("execute directory: %s: %w", d, err)
		}
		var bit uint32
		switch {
		case st.Uid == acct.UID:
			bit = 0o100
		case st.Gid == acct.GID || slices.Contains(acct.Groups, st.Gid):
			bit = 0o010
		default:
			bit = 0o001
		}
		if st.Mode&bit == 0 {
			return fmt.Errorf("the VMs' account %s cannot reach the execute directory: %s (mode %04o) is not searchable by it; "+
				"give it o+x (chmod o+x %s) or put the pool's home or EXECUTE where %s can reach it, e.g. under /var/lib/vmpool",
				acct.Name, d, st.Mode&0o7777, d, acct.Name)
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

// executeDir is where the startd's VMs get their scratch directories:
// Dir/execute, or, for the startds sharing one Dir and log Store (the
// simulated ones), a directory of its own below it, so that thousands of
// them do not create and remove their scratch directories in one.
func (d *Startd) executeDir() string {
	if d.cfg.Store != nil {
		return filepath.Join(d.cfg.Dir, "execute", d.cfg.Name)
	}
	return filepath.Join(d.cfg.Dir, "execute")
}

// lacksNetworking reports whether the machine gives guests networking and
// cannot give one of the types VM_NETWORKING_TYPE offers.
func (d *Startd) lacksNetworking(fp hypervisor.Fingerprint) bool {
	return d.cfg.Networking && fp.Detected && len(netTypes(&d.cfg, fp)) < len(d.cfg.NetworkingTypes)
}
