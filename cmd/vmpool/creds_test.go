package main

import (
	"testing"

	"github.com/vmpool/vmpool/events"
)

// TestPoolDaemonNamesKeepTheirCase: daemon names are case-sensitive (a
// startd named after its host, EXEC01, publishes on subjects with EXEC01).
// POOL_DAEMONS = startd-EXEC01 used to write startd-exec01.nk, for a
// daemon "exec01": vmpool startd --name EXEC01 found no credentials and
// was refused.
func TestPoolDaemonNamesKeepTheirCase(t *testing.T) {
	cfg := NewConfig()
	cfg.Set("CREDS_DIR", t.TempDir(), "test")
	cfg.Set("POOL_DAEMONS", "startd-EXEC01, Schedd-Submit2", "test")
	creds, err := ensureCredentials(cfg, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []struct{ role, name string }{{events.RoleStartd, "EXEC01"}, {events.RoleSchedd, "Submit2"}} {
		if findCredentials(creds, d.role, d.name) == nil {
			var have []string
			for _, c := range creds {
				have = append(have, events.CredentialsFile(c.Role, c.Name))
			}
			t.Errorf("no credentials for %s %s among %v", d.role, d.name, have)
		}
		c, err := daemonCredentials(cfg, "", d.role, d.name)
		if err != nil || c == nil {
			t.Errorf("%s --name %s finds no credentials in CREDS_DIR (%v)", d.role, d.name, err)
		}
	}
}
