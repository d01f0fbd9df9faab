package events

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// Identities on the bus. Every daemon and every user connects with its own
// NATS nkey; the server gives each the subjects of its role and nothing
// else:
//
//   - a user publishes requests only on subjects that end in their own
//     name (vmpool.cmd.schedd.<schedd>.<verb>.<user>), so the schedd knows
//     who asks from the subject alone; reads the event stream and the
//     collector and the list of the pool's schedds; and reads and writes
//     only their own file bucket; an admin also drains machines and
//     retires schedds from the list;
//   - a schedd publishes only its own events, collector key and key in
//     the list of the pool's schedds (ScheddsBucket); a startd
//     only its own events and slot keys; a negotiator only its own events;
//   - the "pool" identity is the whole of a one-process pool (vmpool up),
//     whose daemons share a process anyway, and creates the stream and
//     buckets.
//
// Credentials are nkey seed files (mode 0600): a comment line naming the
// identity ("# vmpool credentials: role=user name=alice"), then the seed.

// Identity roles.
const (
	RoleUser  = "user"
	RolePool  = "pool"
	RoleAdmin = "admin" // a user who may also drain machines (QUEUE_SUPER_USERS)
)

// Credentials are one identity's nkey.
type Credentials struct {
	Role string
	Name string
	Seed []byte
}

// ErrNoCredentials is returned by LoadCredentials when the file is absent.
var ErrNoCredentials = errors.New("events: no credentials")

var userNameRE = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)

// CheckUserName reports whether name can be a pool user (a POSIX-ish
// account name, also used in subjects and bucket names).
func CheckUserName(name string) error {
	if !userNameRE.MatchString(name) {
		return fmt.Errorf("user name %q: use a lowercase account name (letters, digits, '_', '-')", name)
	}
	return nil
}

// NewCredentials generates a fresh identity.
func NewCredentials(role, name string) (Credentials, error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return Credentials{}, fmt.Errorf("generate key for %s %s: %w", role, name, err)
	}
	seed, err := kp.Seed()
	if err != nil {
		return Credentials{}, fmt.Errorf("generate key for %s %s: %w", role, name, err)
	}
	return Credentials{Role: role, Name: name, Seed: seed}, nil
}

// CredentialsFile is the file name of an identity's seed.
func CredentialsFile(role, name string) string { return role + "-" + name + ".nk" }

// Save writes the credentials to dir/<role>-<name>.nk (mode 0600), giving
// the file to uid:gid when uid >= 0 (a user's credentials, written by root).
func (c Credentials) Save(dir string, uid, gid int) (string, error) {
	return c.SaveAs(filepath.Join(dir, CredentialsFile(c.Role, c.Name)), uid, gid)
}

// SaveAs writes the credentials to path (mode 0600), atomically,
// replacing what was there.
func (c Credentials) SaveAs(path string, uid, gid int) (string, error) {
	tmp, err := c.writeTemp(path, uid, gid)
	if err != nil {
		return "", err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("save credentials %s: %w", path, err)
	}
	return path, nil
}

// SaveNew writes the credentials to dir/<role>-<name>.nk (mode 0600)
// unless that file exists, in which case the error matches fs.ErrExist
// and the file is left as it was. Processes that create a pool's
// credentials at once (the servers of a cluster sharing CREDS_DIR) so
// agree on one identity each: the first one written.
func (c Credentials) SaveNew(dir string, uid, gid int) (string, error) {
	path := filepath.Join(dir, CredentialsFile(c.Role, c.Name))
	tmp, err := c.writeTemp(path, uid, gid)
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp)
	// A hard link, unlike a rename, never replaces its target.
	if err := os.Link(tmp, path); err != nil {
		return "", fmt.Errorf("save credentials %s: %w", path, err)
	}
	return path, nil
}

// writeTemp writes the credentials to a new temporary file beside path,
// synced and owned by uid:gid when uid >= 0, and returns its name.
func (c Credentials) writeTemp(path string, uid, gid int) (string, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("save credentials: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("save credentials %s: %w", path, err)
	}
	body := fmt.Sprintf("# vmpool credentials: role=%s name=%s\n%s\n", c.Role, c.Name, c.Seed)
	_, err = f.WriteString(body)
	if err == nil {
		err = f.Chmod(0o600)
	}
	if err == nil && uid >= 0 {
		err = f.Chown(uid, gid)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("save credentials %s: %w", path, err)
	}
	return f.Name(), nil
}

// LoadCredentials reads a file saved by Save. The identity comes from its
// comment line, or else from a file name ROLE-NAME.nk (a bare seed file).
func LoadCredentials(path string) (Credentials, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return Credentials{}, fmt.Errorf("%s: %w", path, ErrNoCredentials)
	}
	if err != nil {
		return Credentials{}, fmt.Errorf("read credentials: %w", err)
	}
	role, name := "", ""
	var seed []byte
	for _, line := range bytes.Split(b, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if rest, ok := bytes.CutPrefix(line, []byte("# vmpool credentials:")); ok {
			for _, f := range strings.Fields(string(rest)) {
				k, v, _ := strings.Cut(f, "=")
				switch k {
				case "role":
					role = v
				case "name":
					name = v
				}
			}
			continue
		}
		if len(line) > 0 && line[0] != '#' && seed == nil {
			seed = line
		}
	}
	if role == "" || name == "" {
		base := strings.TrimSuffix(filepath.Base(path), ".nk")
		var ok bool
		if role, name, ok = strings.Cut(base, "-"); !ok {
			return Credentials{}, fmt.Errorf("credentials %s: no '# vmpool credentials: role=... name=...' line and no ROLE-NAME.nk file name", path)
		}
	}
	if _, err := nkeys.FromSeed(seed); err != nil {
		return Credentials{}, fmt.Errorf("credentials %s: %w", path, err)
	}
	return Credentials{Role: role, Name: name, Seed: seed}, nil
}

// PublicKey is the identity's nkey public key.
func (c Credentials) PublicKey() (string, error) {
	kp, err := nkeys.FromSeed(c.Seed)
	if err != nil {
		return "", err
	}
	return kp.PublicKey()
}

// InboxPrefix is where the identity's replies arrive; it may subscribe
// there only.
func (c Credentials) InboxPrefix() string { return "_INBOX_" + c.Role + "_" + c.Name }

// Options are the NATS client options that authenticate as c.
func (c Credentials) Options() ([]nats.Option, error) {
	kp, err := nkeys.FromSeed(c.Seed)
	if err != nil {
		return nil, fmt.Errorf("credentials of %s %s: %w", c.Role, c.Name, err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		return nil, err
	}
	return []nats.Option{nats.Nkey(pub, kp.Sign), nats.CustomInboxPrefix(c.InboxPrefix())}, nil
}

// UserBucket is the object store bucket of a user's files: their input
// disks, and the returned disks and checkpoints of their jobs.
func UserBucket(user string) string { return FilesBucket + "_" + user }

// UserCmdSubject is the subject of a user's request to a schedd verb. The
// user's name is the last token: the server lets only that user publish
// there, so it is the requester's authenticated identity.
func UserCmdSubject(schedd, verb, user string) string {
	return CmdSubject(RoleSchedd, schedd, verb) + "." + user
}

// DaemonConsumer is the name of the durable consumer of the event stream
// of a schedd or negotiator (role) named name.
func DaemonConsumer(role, name string) string { return role + "-" + name }

// daemonConsumers are the durable consumers of the daemons that creds
// name, of the default schedd and negotiator (which a pool identity may
// run), and extra.
func daemonConsumers(creds []Credentials, extra []string) []string {
	out := []string{DaemonConsumer(RoleSchedd, RoleSchedd), DaemonConsumer(RoleNegotiator, RoleNegotiator)}
	for _, c := range creds {
		if c.Role == RoleSchedd || c.Role == RoleNegotiator {
			out = append(out, DaemonConsumer(c.Role, c.Name))
		}
	}
	out = append(out, extra...)
	sort.Strings(out)
	return slices.Compact(out)
}

// Permissions are the subjects the server lets identity c use.
func (c Credentials) Permissions() *server.Permissions {
	return c.permissions(nil)
}

// permissions are c's subjects; a user may not touch the durable
// consumers named in daemons. A user reads the event stream through
// consumers of their own, which the server cannot tell apart from the
// daemons' by any pattern; unless denied, a user could pull a schedd's
// or negotiator's events off its consumer and acknowledge them (the
// daemon would never see another user's job start or end), delete the
// consumer, or change its filter.
func (c Credentials) permissions(daemons []string) *server.Permissions {
	resp := &server.ResponsePermission{MaxMsgs: -1}
	allow := func(pub, sub []string) *server.Permissions {
		return &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: pub},
			Subscribe: &server.SubjectPermission{Allow: append(sub, c.InboxPrefix()+".>")},
			Response:  resp,
		}
	}
	readBus := []string{
		"$JS.API.INFO",
		"$JS.API.STREAM.INFO." + StreamName, "$JS.API.CONSUMER.CREATE." + StreamName + ".>",
		"$JS.API.CONSUMER.DELETE." + StreamName + ".>", "$JS.API.CONSUMER.INFO." + StreamName + ".>",
		"$JS.API.CONSUMER.MSG.NEXT." + StreamName + ".>",
		"$JS.API.STREAM.INFO.KV_" + CollectorBucket, "$JS.API.DIRECT.GET.KV_" + CollectorBucket + ".>",
		"$JS.API.STREAM.MSG.GET.KV_" + CollectorBucket,
		"$JS.API.CONSUMER.CREATE.KV_" + CollectorBucket + ".>", "$JS.API.CONSUMER.DELETE.KV_" + CollectorBucket + ".>",
		// The pool's schedds (a tool without -name reads them).
		"$JS.API.STREAM.INFO.KV_" + ScheddsBucket, "$JS.API.DIRECT.GET.KV_" + ScheddsBucket + ".>",
		"$JS.API.STREAM.MSG.GET.KV_" + ScheddsBucket,
		"$JS.API.CONSUMER.CREATE.KV_" + ScheddsBucket + ".>", "$JS.API.CONSUMER.DELETE.KV_" + ScheddsBucket + ".>",
		"$JS.ACK.>",
	}
	files := func(bucket string) []string {
		s := "OBJ_" + bucket
		return []string{"$JS.API.STREAM.INFO." + s, "$JS.API.CONSUMER.CREATE." + s + ".>", "$JS.API.CONSUMER.DELETE." + s + ".>",
			"$JS.API.DIRECT.GET." + s + ".>", "$JS.API.STREAM.MSG.GET." + s, "$JS.API.STREAM.PURGE." + s, "$O." + bucket + ".>"}
	}
	switch c.Role {
	case RolePool:
		return nil // everything: the daemons of one process, and bucket creation
	case RoleUser, RoleAdmin:
		pub := append(append([]string{"vmpool.cmd.schedd.*.*." + c.Name}, readBus...), files(UserBucket(c.Name))...)
		if c.Role == RoleAdmin {
			// Drain machines, and retire a schedd gone for good from the
			// pool's list of schedds (vmpool schedds -retire).
			pub = append(pub, "vmpool.cmd.startd.*.drain."+c.Name, "$KV."+ScheddsBucket+".*")
		}
		p := allow(pub, []string{"vmpool.progress." + c.Name + ".>"})
		for _, d := range daemons {
			api := "$JS.API.CONSUMER."
			p.Publish.Deny = append(p.Publish.Deny, api+"CREATE."+StreamName+"."+d, api+"CREATE."+StreamName+"."+d+".>",
				api+"DELETE."+StreamName+"."+d, api+"MSG.NEXT."+StreamName+"."+d, "$JS.ACK."+StreamName+"."+d+".>")
		}
		return p
	case RoleSchedd:
		pub := append([]string{
			"vmpool.ev.schedd." + c.Name + ".>",
			"$KV." + CollectorBucket + "." + ScheddKey(c.Name),
			"$KV." + ScheddsBucket + "." + c.Name,
			"vmpool.progress.*." + c.Name + ".>",
			"vmpool.cmd.startd.*.claim", "vmpool.cmd.startd.*.deactivate",
			"$JS.API.STREAM.INFO.>", "$JS.API.STREAM.CREATE.>", "$JS.API.STREAM.UPDATE.>", "$JS.API.CONSUMER.>",
			"$JS.API.DIRECT.GET.>", "$JS.API.STREAM.MSG.GET.>",
		}, append(readBus, "$O.>")...)
		return allow(pub, []string{"vmpool.cmd.schedd." + c.Name + ".>"})
	case RoleNegotiator:
		pub := append([]string{
			"vmpool.ev.negotiator." + c.Name + ".>",
			"$KV." + CollectorBucket + "." + NegotiatorKey(c.Name),
			"$KV." + LeaderBucket + "." + RoleNegotiator,
			"$JS.API.STREAM.INFO.>", "$JS.API.STREAM.CREATE.>", "$JS.API.STREAM.UPDATE.>", "$JS.API.CONSUMER.>",
			"$JS.API.DIRECT.GET.>", "$JS.API.STREAM.MSG.GET.>",
		}, readBus...)
		return allow(pub, []string{"vmpool.cmd.negotiator." + c.Name + ".>"})
	case RoleStartd:
		pub := append([]string{
			"vmpool.ev.startd." + c.Name + ".>",
			"$KV." + CollectorBucket + ".slot." + c.Name + ".>",
			"vmpool.progress.>",
			"vmpool.cmd.schedd.*.alive",
			"$JS.API.STREAM.INFO.>", "$JS.API.STREAM.CREATE.>", "$JS.API.STREAM.UPDATE.>", "$JS.API.CONSUMER.>",
			"$JS.API.DIRECT.GET.>", "$JS.API.STREAM.MSG.GET.>",
		}, append(readBus, "$O.>")...)
		return allow(pub, []string{"vmpool.cmd.startd." + c.Name + ".>"})
	}
	return allow(nil, nil) // an unknown role may do nothing
}

// ServerUsers turns credentials into the server's nkey users. The users
// may not touch the durable consumers of the daemons of creds, of the
// default schedd and negotiator, or those named in consumers (the daemons
// a pool identity runs, named with DaemonConsumer).
func ServerUsers(creds []Credentials, consumers ...string) ([]*server.NkeyUser, error) {
	daemons := daemonConsumers(creds, consumers)
	var out []*server.NkeyUser
	for _, c := range creds {
		pub, err := c.PublicKey()
		if err != nil {
			return nil, fmt.Errorf("credentials of %s %s: %w", c.Role, c.Name, err)
		}
		out = append(out, &server.NkeyUser{Nkey: pub, Permissions: c.permissions(daemons)})
	}
	return out, nil
}

// LoadCredentialsDir reads every *.nk file of dir.
func LoadCredentialsDir(dir string) ([]Credentials, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.nk"))
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	var out []Credentials
	for _, p := range paths {
		c, err := LoadCredentials(p)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}
