package events

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
)

// WriteServerConfig writes a nats-server configuration file that admits
// the pool's identities exactly as vmpool's own servers do (StartNATS):
// JetStream storing under storeDir and syncing every write, and one nkey
// user per identity with its role's permissions (Permissions). It is for
// pools whose bus is a NATS server or cluster that vmpool does not run;
// the operator adds the listen, cluster and tls blocks of each server.
func WriteServerConfig(w io.Writer, creds []Credentials, storeDir string) error {
	var b strings.Builder
	b.WriteString("# nats-server configuration for a vmpool pool (vmpool nats --print-config).\n")
	b.WriteString("# Regenerate it after adding users (POOL_USERS) or daemons (POOL_DAEMONS).\n")
	b.WriteString("# Add each server's listen, server_name, cluster { ... } and tls { ... } blocks.\n\n")
	fmt.Fprintf(&b, "jetstream {\n  store_dir: %s\n  # every write reaches the disk before it is acknowledged\n  sync_interval: always\n}\n\n", quoteConf(storeDir))
	b.WriteString("authorization {\n  users = [\n")
	daemons := daemonConsumers(creds, nil)
	for _, c := range creds {
		pub, err := c.PublicKey()
		if err != nil {
			return fmt.Errorf("credentials of %s %s: %w", c.Role, c.Name, err)
		}
		fmt.Fprintf(&b, "    # %s %s\n    {\n      nkey: %s\n", c.Role, c.Name, quoteConf(pub))
		if p := c.permissions(daemons); p != nil {
			b.WriteString("      permissions: {\n")
			writeSubjects(&b, "publish", p.Publish)
			writeSubjects(&b, "subscribe", p.Subscribe)
			if r := p.Response; r != nil {
				fmt.Fprintf(&b, "        allow_responses: { max: %d", r.MaxMsgs)
				if r.Expires != 0 {
					fmt.Fprintf(&b, ", expires: %s", quoteConf(r.Expires.String()))
				}
				b.WriteString(" }\n")
			}
			b.WriteString("      }\n")
		}
		b.WriteString("    }\n")
	}
	b.WriteString("  ]\n}\n")
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("write nats-server configuration: %w", err)
	}
	return nil
}

func writeSubjects(b *strings.Builder, name string, p *server.SubjectPermission) {
	if p == nil {
		return
	}
	fmt.Fprintf(b, "        %s: {\n", name)
	for _, l := range []struct {
		key  string
		subs []string
	}{{"allow", p.Allow}, {"deny", p.Deny}} {
		if len(l.subs) == 0 {
			continue
		}
		fmt.Fprintf(b, "          %s: [\n", l.key)
		for _, s := range l.subs {
			fmt.Fprintf(b, "            %s\n", quoteConf(s))
		}
		b.WriteString("          ]\n")
	}
	b.WriteString("        }\n")
}

// quoteConf quotes a string for the NATS configuration format, whose
// double-quoted strings take Go's escapes.
func quoteConf(s string) string { return strconv.Quote(s) }
