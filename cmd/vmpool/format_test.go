package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmpool/vmpool/classad"
	"github.com/vmpool/vmpool/schedd"
	"github.com/vmpool/vmpool/vmimage"
)

// TestFormatValue: -format's printf conversions on ClassAd values, as
// HTCondor's tools apply them.
func TestFormatValue(t *testing.T) {
	ad, err := classad.ParseAd(`[ClusterId = 42; ProcId = 3; Cmd = "hello_vm_job"; Mem = 16.5; Held = true; Num = "7"; Expr = Mem * 2]`)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ format, attr, want string }{
		{`%d.`, "ClusterId", "42."},
		{`%d\n`, "ProcId", "3\n"},
		{`%i`, "ProcId", "3"},
		{`%05d`, "ClusterId", "00042"},
		{`%x/%o`, "ClusterId", "2a/%o"},
		{`%s`, "Cmd", "hello_vm_job"},
		{`[%-14s]`, "Cmd", "[hello_vm_job  ]"},
		{`%V`, "Cmd", `"hello_vm_job"`},
		{`%v`, "Cmd", "hello_vm_job"},
		{`%.2f`, "Mem", "16.50"},
		{`%d`, "Mem", "16"},
		{`%d`, "Held", "1"},
		{`%s`, "Held", "true"},
		{`%d`, "Num", "7"},
		{`%g`, "Expr", "33"},
		{`%s`, "Mem * 2", "33.0"},
		{`100%% %s\t|`, "Cmd", "100% hello_vm_job\t|"},
		{`no conversion\n`, "Cmd", "no conversion\n"},
		{`%s`, "Missing", "undefined"},
	} {
		if got := formatValue(unescape(c.format), evalAttrOrExpr(ad, c.attr)); got != c.want {
			t.Errorf("-format %q %s = %q, want %q", c.format, c.attr, got, c.want)
		}
	}
}

// TestPrintFormats: pairs print one after the other, per ad; a pair whose
// attribute an ad lacks prints nothing for it.
func TestPrintFormats(t *testing.T) {
	var ads []*classad.Ad
	for _, s := range []string{`[ClusterId = 1; ProcId = 0; Owner = "alice"]`, `[ClusterId = 1; ProcId = 1]`} {
		ad, err := classad.ParseAd(s)
		if err != nil {
			t.Fatal(err)
		}
		ads = append(ads, ad)
	}
	f := adFormat{formats: []formatPair{{`%d.`, "ClusterId"}, {`%d`, "ProcId"}, {` %s`, "Owner"}, {`\n`, "ClusterId"}}}
	var b bytes.Buffer
	f.printAds(&b, ads, jobID)
	if got, want := b.String(), "1.0 alice\n1.1\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if p := f.projection(); len(p) != 6 || p[0] != "ClusterId" || p[2] != "Owner" {
		t.Errorf("projection %v", p)
	}
}

// TestAutoformatOptions: -af's letters after the colon, as condor_q's: V
// quotes strings, r prints expressions unevaluated, g puts a blank line
// between ads, l labels, j puts the job id first; an unknown letter is an
// error, not ignored.
func TestAutoformatOptions(t *testing.T) {
	ad, err := classad.ParseAd(`[ClusterId = 1; ProcId = 0; Cmd = "p"; Mem = 16; Twice = Mem * 2]`)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ opts, want string }{
		{"", "p 32 16\n"},
		{"V", `"p" 32 16` + "\n"},
		{"r", "\"p\" Mem * 2 16\n"},
		{"g", "p 32 16\n\n"},
		{"l,", "Cmd = p,Twice = 32,Mem = 16\n"},
		{"jV", `1.0 "p" 32 16` + "\n"},
	} {
		name := "af"
		if c.opts != "" {
			name += ":" + c.opts
		}
		var f adFormat
		a := &argList{args: []string{"Cmd", "Twice", "Mem"}, cmd: "q"}
		if !f.parseAdOption(a, name, "", false) || a.err != nil {
			t.Fatalf("-%s: %v", name, a.err)
		}
		var b bytes.Buffer
		f.printAds(&b, []*classad.Ad{ad}, jobID)
		if b.String() != c.want {
			t.Errorf("-%s printed %q, want %q", name, b.String(), c.want)
		}
	}
	var f adFormat
	a := &argList{args: []string{"Cmd"}, cmd: "q"}
	if f.parseAdOption(a, "af:Q", "", false); a.err == nil || !strings.Contains(a.err.Error(), `unknown option 'Q'`) {
		t.Errorf("-af:Q: %v, want an unknown option error", a.err)
	}
}

// TestHelpCommand: vmpool help COMMAND shows the command's usage (it
// showed the general help), and q's names its other modes.
func TestHelpCommand(t *testing.T) {
	out, _, code := runCLI(context.Background(), "", "help", "q")
	for _, want := range []string{"usage: vmpool q ", "-better-analyze", "-global", "-watch", "-af[:jlhVrtng,]"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("vmpool help q: exit %d, lacks %q:\n%s", code, want, out)
		}
	}
	if out, _, code := runCLI(context.Background(), "", "help"); code != 0 || !strings.Contains(out, "'vmpool help COMMAND'") {
		t.Errorf("vmpool help: exit %d:\n%s", code, out)
	}
}

// TestHelpEveryCommand: 'vmpool help COMMAND' (and 'vmpool COMMAND -h')
// shows every command's usage with exit status 0, as the general help
// promises; userlog and image refused -h as an unknown option (exit 2),
// and the daemons' usage listed options they refuse (--startds on a
// startd) and lacked ones the docs give them (--creds, --cluster, -v).
func TestHelpEveryCommand(t *testing.T) {
	for _, cmd := range commands {
		for _, args := range [][]string{{"help", cmd.name}, {cmd.name, "-h"}} {
			out, errOut, code := runCLI(context.Background(), "", args...)
			if code != 0 || !strings.Contains(out, "usage:") || !strings.Contains(out, "vmpool "+cmd.name) {
				t.Errorf("vmpool %s: exit %d, no usage of vmpool %s:\n%s%s", strings.Join(args, " "), code, cmd.name, out, errOut)
			}
		}
	}
	for cmd, want := range map[string][]string{
		"startd":     {"--creds FILE", "--name NAME", "--vm-type TYPE", "--sim-startds N", "error"},
		"schedd":     {"--creds FILE", "--pool URL", "--metrics"},
		"negotiator": {"--creds FILE", "--pool URL"},
		"nats":       {"--cluster NAME", "--server-name NAME", "--cluster-listen HOST:PORT", "--routes", "--print-config", "--init"},
		"config":     {"-v", "-markdown", "NAME..."},
		"up":         {"--startds N", "--emulate", "--listen"},
	} {
		out, _, _ := runCLI(context.Background(), "", "help", cmd)
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("vmpool help %s lacks %q:\n%s", cmd, w, out)
			}
		}
		if cmd != "up" && strings.Contains(out, "--startds") {
			t.Errorf("vmpool help %s offers --startds, which only vmpool up takes:\n%s", cmd, out)
		}
	}
}

// TestRawJSONEqualsPrintJSON: q -json prints the schedd's ad JSON as it
// comes (printRawJSON); that must be byte for byte what decoding and
// printing the ads gives (printJSON, which replay -json and history -json
// use), so that their outputs can be diffed.
func TestRawJSONEqualsPrintJSON(t *testing.T) {
	tp := newTestPool(t, 0)
	if err := vmimage.WriteHello(filepath.Join(tp.dir, "hello.img")); err != nil {
		t.Fatal(err)
	}
	sub := strings.Replace(helloSub, "queue", "+Note = \"a<b & c > d, été\"\n+Weights = {1, 2.5, \"x\"}\nqueue 1201", 1)
	tp.mustRun("submit", tp.write("hello.sub", sub))
	c := &cli{stdout: io.Discard, stderr: io.Discard, getenv: testEnv(tp.URL)}
	pc, err := c.dial(context.Background(), tp.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.close()
	raws, _, err := c.fetchRaw(context.Background(), pc, "schedd", "query", schedd.QueryRequest{})
	// More than two reply chunks of 500 ads, every one whole and in order.
	if err != nil || len(raws) != 1201 {
		t.Fatalf("%d ads, %v", len(raws), err)
	}
	for i, raw := range raws {
		if !bytes.Contains(raw, fmt.Appendf(nil, `"ProcId":%d,`, i)) {
			t.Fatalf("ad %d is not proc %d: %s", i, i, raw)
		}
	}
	var raw, decoded bytes.Buffer
	printRawJSON(&raw, raws)
	printJSON(&decoded, decodeAds(raws))
	if raw.String() != decoded.String() {
		t.Fatalf("q -json as it comes:\n%s\ndecoded and printed:\n%s", raw.String(), decoded.String())
	}
	if !strings.Contains(raw.String(), `"Note": "a\u003cb \u0026 c \u003e d, été"`) {
		t.Fatalf("the ad's Note:\n%s", raw.String())
	}
	if got := tp.mustRun("q", "-json"); got != raw.String() {
		t.Fatalf("vmpool q -json:\n%s\nwant:\n%s", got, raw.String())
	}
}

// TestKnobsThatMustBePositive: a count or a period of 0 or less is an
// error naming the knob and where it was set; it used to be taken
// silently as the daemon's default (NUM_SLOTS=0 served one slot).
func TestKnobsThatMustBePositive(t *testing.T) {
	for _, kv := range []string{"NUM_SLOTS=0", "NUM_SLOTS=-1", "ALIVE_INTERVAL=-3", "UPDATE_INTERVAL=0", "VM_STATUS_INTERVAL=0", "VM_RECHECK_INTERVAL=0"} {
		cfg := NewConfig()
		cfg.Set("LOCAL_DIR", t.TempDir(), "test")
		k, v, _ := strings.Cut(kv, "=")
		cfg.Set(k, v, "--set")
		_, err := startdConfig(cfg, "s1", nil, nil)
		if want := fmt.Sprintf("%s = %s (from --set): want a whole number of at least 1", k, v); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", kv, err, want)
		}
	}
}

// TestCentralKnobsThatMustBePositive: the schedd's, the negotiator's and
// the collector's periods of 0 or less are errors naming the knob and
// where it was set, as the startd's are; they were taken silently as the
// daemon's default (NEGOTIATOR_INTERVAL = 0 negotiated every minute,
// CLASSAD_LIFETIME = 0 kept ads a minute).
func TestCentralKnobsThatMustBePositive(t *testing.T) {
	for _, kv := range []string{"NEGOTIATOR_INTERVAL=0", "MATCH_TIMEOUT=-1", "CLASSAD_LIFETIME=0", "PERIODIC_EXPR_INTERVAL=0", "CLASSAD_LIFETIME=-5"} {
		cfg := NewConfig()
		cfg.Set("LOCAL_DIR", t.TempDir(), "test")
		k, v, _ := strings.Cut(kv, "=")
		cfg.Set(k, v, "--set")
		var err error
		switch k {
		case "PERIODIC_EXPR_INTERVAL":
			_, err = scheddConfig(cfg, nil, nil, "")
		case "CLASSAD_LIFETIME":
			if _, err = negotiatorConfig(cfg, nil, nil); err == nil {
				t.Errorf("%s: the negotiator took it", kv)
			}
			_, err = connectBus(context.Background(), "nats://127.0.0.1:1", "test", cfg, nil, nil, nil)
		default:
			_, err = negotiatorConfig(cfg, nil, nil)
		}
		if want := fmt.Sprintf("%s = %s (from --set): want a whole number of at least 1", k, v); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", kv, err, want)
		}
	}
}

// TestPolicyKnobErrorsSayWhereTheyWereSet: a START, RANK, PREEMPT or
// KILL that does not parse, and a VM_MEMORY of 0 or less, name the file
// and line that set them, as every other knob's error does; they used to
// name only the knob ("START: expression ...").
func TestPolicyKnobErrorsSayWhereTheyWereSet(t *testing.T) {
	for _, kv := range []string{"START=(Foo ==", "RANK=Memory +", "PREEMPT=)", "KILL=a b", "VM_MEMORY=0", "VM_MEMORY=-5"} {
		cfg := NewConfig()
		cfg.Set("LOCAL_DIR", t.TempDir(), "test")
		k, v, _ := strings.Cut(kv, "=")
		cfg.Set(k, v, "pool.conf:7")
		_, err := startdConfig(cfg, "s1", nil, nil)
		if want := fmt.Sprintf("%s = %s (from pool.conf:7): ", k, v); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", kv, err, want)
		}
	}
}

// TestUnknownKnobs: a name that is no knob and no macro of the user's is
// warned of, with the knob it likely misspells; a macro a value uses is
// not.
func TestUnknownKnobs(t *testing.T) {
	cfg := NewConfig()
	cfg.Set("VM_MEMROY", "2048", "pool.conf:3")
	cfg.Set("MY_BIG", "4096", "pool.conf:4")
	cfg.Set("VM_MEMORY", "$(MY_BIG)", "pool.conf:5")
	cfg.Set("TOTALLY_ELSE", "1", "--set")
	got := cfg.Unknown()
	want := []string{
		"TOTALLY_ELSE (from --set) is not a vmpool knob and no $(TOTALLY_ELSE) uses it: it does nothing",
		"VM_MEMROY (from pool.conf:3) is not a vmpool knob and no $(VM_MEMROY) uses it: it does nothing; did you mean VM_MEMORY?",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Unknown() =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestAdFormatsThatDoNotGoTogether: -json or -long with -af or -format
// printed the whole ads and silently dropped the attributes asked for;
// it is an error that says to choose.
func TestAdFormatsThatDoNotGoTogether(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-json", "-af", "ClusterId"}, "-json prints whole ads and -af chosen attributes: choose one"},
		{[]string{"-af", "ClusterId", "-long"}, "-long prints whole ads and -af chosen attributes"},
		{[]string{"-format", "%d", "ClusterId", "-json"}, "-json prints whole ads and -format chosen attributes"},
		{[]string{"-json", "-long"}, "-json and -long cannot go together"},
	} {
		for _, cmd := range []string{"q", "history", "status"} {
			_, errOut, code := runCLI(context.Background(), "", append([]string{cmd, "-pool", "nats://127.0.0.1:1"}, c.args...)...)
			if code != 2 || !strings.Contains(errOut, c.want) {
				t.Errorf("vmpool %s %v: exit %d, %q; want exit 2 and %q", cmd, c.args, code, errOut, c.want)
			}
		}
	}
	// What goes together still does.
	var f adFormat
	a := &argList{args: []string{"Cmd", "-format", "%s", "Cmd"}, cmd: "q"}
	if !f.parseAdOption(a, "af", "", false) || a.err != nil {
		t.Fatalf("-af: %v", a.err)
	}
	a.i++ // -format
	if !f.parseAdOption(a, "format", "", false) || a.err != nil {
		t.Fatalf("-af with -format: %v", a.err)
	}
}

// TestStatusVMColumns: status -vm's columns line up under their header,
// a machine offering both networking types ("nat,bridge") included.
func TestStatusVMColumns(t *testing.T) {
	ad, err := classad.ParseAd(`[ Name = "slot1@startd1"; VM_Type = "kvm"; VM_Networking = true; VM_Networking_Types = "nat,bridge"; State = "Unclaimed"; Activity = "Idle"; VM_Memory = 512 ]`)
	if err != nil {
		t.Fatal(err)
	}
	row := vmRow(ad, 0, "0+00:00:05")
	for _, col := range []string{"State", "Activity", "ActvtyTime"} {
		want := strings.Index(vmHeader, col)
		var at int
		switch col {
		case "State":
			at = strings.Index(row, "Unclaimed")
		case "Activity":
			at = strings.Index(row, "Idle")
		case "ActvtyTime":
			at = strings.Index(row, "0+00:00:05")
		}
		if at != want {
			t.Errorf("%s is at column %d of the row, under %d of the header:\n%s%s", col, at, want, vmHeader, row)
		}
	}
}

// TestStatusVMNetworkUndefined: a slot without networking has no
// VM_Networking_Types, and status -vm shows "??" in its Network column, as
// condor_status -vm prints VM_Networking_Types "OR ??".
func TestStatusVMNetworkUndefined(t *testing.T) {
	ad, err := classad.ParseAd(`[ Name = "slot1@startd1"; VM_Type = "kvm"; VM_Networking = false; State = "Unclaimed"; Activity = "Idle"; VM_Memory = 512 ]`)
	if err != nil {
		t.Fatal(err)
	}
	row := vmRow(ad, 0, "0+00:00:05")
	if got := strings.Fields(row)[2]; got != "??" {
		t.Errorf("Network column %q, want ??:\n%s%s", got, vmHeader, row)
	}
}
