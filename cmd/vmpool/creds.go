package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/vmpool/vmpool/events"
)

// Credentials of a pool with authentication (POOL_AUTH, on by default).
// They live in LOCAL_DIR/creds, one nkey seed file per identity (mode
// 0600): the pool itself (the daemons of vmpool up, and whoever creates
// the stream and buckets), each user of POOL_USERS and QUEUE_SUPER_USERS
// (the latter as administrators, who may also drain machines), and each
// daemon of POOL_DAEMONS that runs as a separate process (e.g.
// startd-node7). A user's file belongs to that user when the account
// exists on this machine.

// credsDir is where a pool's credentials live.
func credsDir(cfg *Config) string { return cfg.Get("CREDS_DIR") }

const poolIdentity = "vmpool"

// poolUsers are the users a pool lets in: me, POOL_USERS and the super
// users; the latter are administrators.
func poolUsers(cfg *Config, me string) (users []string, admins map[string]bool) {
	admins = map[string]bool{}
	for _, u := range cfg.List("QUEUE_SUPER_USERS") {
		admins[u] = true
		users = append(users, u)
	}
	users = append(users, cfg.List("POOL_USERS")...)
	if me != "" {
		users = append(users, me)
	}
	slices.Sort(users)
	return slices.Compact(users), admins
}

// ensureCredentials creates whatever credentials the pool lacks and
// returns all of them.
func ensureCredentials(cfg *Config, me string) ([]events.Credentials, error) {
	dir := credsDir(cfg)
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	want := []events.Credentials{{Role: events.RolePool, Name: poolIdentity}}
	users, admins := poolUsers(cfg, me)
	for _, u := range users {
		if err := events.CheckUserName(u); err != nil {
			return nil, fmt.Errorf("POOL_USERS / QUEUE_SUPER_USERS: %w", err)
		}
		role := events.RoleUser
		if admins[u] {
			role = events.RoleAdmin
		}
		want = append(want, events.Credentials{Role: role, Name: u})
	}
	for _, d := range cfg.ListAsWritten("POOL_DAEMONS") {
		role, name, ok := strings.Cut(d, "-")
		role = strings.ToLower(role)
		if !ok || (role != events.RoleSchedd && role != events.RoleNegotiator && role != events.RoleStartd) {
			return nil, fmt.Errorf("POOL_DAEMONS entry %q: write ROLE-NAME with ROLE schedd, negotiator or startd, e.g. startd-node7", d)
		}
		if err := events.CheckName(role, name); err != nil {
			return nil, fmt.Errorf("POOL_DAEMONS: %w", err)
		}
		want = append(want, events.Credentials{Role: role, Name: name})
	}
	var out []events.Credentials
	for _, w := range want {
		path := filepath.Join(dir, events.CredentialsFile(w.Role, w.Name))
		c, err := events.LoadCredentials(path)
		if errors.Is(err, events.ErrNoCredentials) {
			if c, err = events.NewCredentials(w.Role, w.Name); err != nil {
				return nil, err
			}
			uid, gid := -1, -1
			if w.Role == events.RoleUser || w.Role == events.RoleAdmin {
				uid, gid = osAccount(w.Name)
			}
			if _, err = c.SaveNew(dir, uid, gid); errors.Is(err, fs.ErrExist) {
				// Another process (a server of the same cluster) made it
				// first: use that one.
				c, err = events.LoadCredentials(path)
			}
		}
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// osAccount is the uid and gid of a local account, or -1s when it does not
// exist or we may not give files away.
func osAccount(name string) (int, int) {
	if os.Geteuid() != 0 {
		return -1, -1
	}
	u, err := user.Lookup(name)
	if err != nil {
		return -1, -1
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return uid, gid
}

// findCredentials picks role/name's credentials from creds.
func findCredentials(creds []events.Credentials, role, name string) *events.Credentials {
	for i := range creds {
		if creds[i].Name == name && (creds[i].Role == role || role == events.RoleUser && creds[i].Role == events.RoleAdmin) {
			return &creds[i]
		}
	}
	return nil
}

// daemonCredentials are the credentials a separately run daemon uses:
// --creds FILE, else LOCAL_DIR/creds/ROLE-NAME.nk when it exists (nil:
// connect without, to a pool without authentication).
func daemonCredentials(cfg *Config, flag, role, name string) (*events.Credentials, error) {
	path := flag
	if path == "" {
		path = filepath.Join(credsDir(cfg), events.CredentialsFile(role, name))
	}
	c, err := events.LoadCredentials(path)
	if errors.Is(err, events.ErrNoCredentials) && flag == "" {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// giveUserCredentials copies a user's credentials to where their tools
// look for this pool's (~/.vmpool/creds/HOST_PORT.nk) and returns the path.
func giveUserCredentials(c events.Credentials, url string) (string, error) {
	path := defaultCredsPath(url)
	if path == "" {
		return "", errors.New("no home directory to put your credentials in")
	}
	return c.SaveAs(path, -1, -1)
}
