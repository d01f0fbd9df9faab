package xlemu

import (
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// A domain configuration file (xl.cfg(5)) is a list of settings
//
//	name = "guest"          # a string ("..." or '...')
//	memory = 512            # a number
//	disk = [ 'format=raw, vdev=xvda, access=rw, target=/img' ]   # a list of strings
//
// separated by newlines or ';', with '#' comments. The parser reads that
// syntax; Domain gives the settings xl acts on their meaning.

// value is one setting: an atom (string or number, kept as text) or a list.
type value struct {
	atom   string
	list   []string
	isList bool
	quoted bool
	line   int
}

// ParseError is a configuration file xl refuses to read.
type ParseError struct {
	File string
	Line int
	Msg  string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("%s:%d: config parsing error near %s", e.File, e.Line, e.Msg)
}

type token struct {
	kind byte // 'i' ident, 's' string, 'n' number, '=', '[', ']', ',', ';', '\n', 0 EOF
	text string
	line int
}

type lexer struct {
	src  string
	pos  int
	line int
	file string
}

func (l *lexer) errorf(line int, format string, args ...any) error {
	return &ParseError{File: l.file, Line: line, Msg: fmt.Sprintf(format, args...)}
}

func (l *lexer) next() (token, error) {
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		switch {
		case c == ' ' || c == '\t' || c == '\r':
			l.pos++
		case c == '#':
			for l.pos < len(l.src) && l.src[l.pos] != '\n' {
				l.pos++
			}
		case c == '\n':
			l.pos++
			l.line++
			return token{kind: '\n', text: "newline", line: l.line - 1}, nil
		case c == '=' || c == '[' || c == ']' || c == ',' || c == ';':
			l.pos++
			return token{kind: c, text: string(c), line: l.line}, nil
		case c == '"' || c == '\'':
			return l.str(c)
		case c >= '0' && c <= '9':
			start := l.pos
			for l.pos < len(l.src) && isIdent(l.src[l.pos]) {
				l.pos++
			}
			text := l.src[start:l.pos]
			if _, err := strconv.ParseInt(text, 0, 64); err != nil {
				return token{}, l.errorf(l.line, "`%s': syntax error, not a number", text)
			}
			return token{kind: 'n', text: text, line: l.line}, nil
		case isIdent(c):
			start := l.pos
			for l.pos < len(l.src) && isIdent(l.src[l.pos]) {
				l.pos++
			}
			return token{kind: 'i', text: l.src[start:l.pos], line: l.line}, nil
		default:
			return token{}, l.errorf(l.line, "`%c': syntax error, unexpected character", c)
		}
	}
	return token{kind: 0, text: "end of file", line: l.line}, nil
}

func isIdent(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func (l *lexer) str(q byte) (token, error) {
	line := l.line
	l.pos++
	var b strings.Builder
	for l.pos < len(l.src) {
		c := l.src[l.pos]
		switch {
		case c == q:
			l.pos++
			return token{kind: 's', text: b.String(), line: line}, nil
		case c == '\n':
			return token{}, l.errorf(line, "`%c%s': syntax error, unterminated string", q, b.String())
		case c == '\\' && l.pos+1 < len(l.src):
			l.pos++
			switch e := l.src[l.pos]; e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			default:
				b.WriteByte(e)
			}
			l.pos++
		default:
			b.WriteByte(c)
			l.pos++
		}
	}
	return token{}, l.errorf(line, "`%c%s': syntax error, unterminated string", q, b.String())
}

// parseConfig reads the settings of a configuration file. file names it in
// errors.
func parseConfig(file, src string) (map[string]value, error) {
	l := &lexer{src: src, line: 1, file: file}
	out := map[string]value{}
	for {
		t, err := l.next()
		if err != nil {
			return nil, err
		}
		switch t.kind {
		case 0:
			return out, nil
		case '\n', ';':
			continue
		case 'i':
		default:
			return nil, l.errorf(t.line, "`%s': syntax error, unexpected %s, expecting IDENT", t.text, kindName(t.kind))
		}
		name := t.text
		eq, err := l.next()
		if err != nil {
			return nil, err
		}
		if eq.kind != '=' {
			return nil, l.errorf(eq.line, "`%s': syntax error, unexpected %s, expecting '='", eq.text, kindName(eq.kind))
		}
		v, err := parseValue(l)
		if err != nil {
			return nil, err
		}
		v.line = t.line
		end, err := l.next()
		if err != nil {
			return nil, err
		}
		if end.kind != '\n' && end.kind != ';' && end.kind != 0 {
			return nil, l.errorf(end.line, "`%s': syntax error, unexpected %s, expecting NEWLINE or ';'", end.text, kindName(end.kind))
		}
		out[name] = v // a later setting wins, as in xl
		if end.kind == 0 {
			return out, nil
		}
	}
}

func kindName(k byte) string {
	switch k {
	case 'i':
		return "IDENT"
	case 's':
		return "STRING"
	case 'n':
		return "NUMBER"
	case '\n':
		return "NEWLINE"
	case 0:
		return "$end"
	}
	return "'" + string(k) + "'"
}

func parseValue(l *lexer) (value, error) {
	t, err := l.next()
	if err != nil {
		return value{}, err
	}
	switch t.kind {
	case 's':
		return value{atom: t.text, quoted: true}, nil
	case 'n':
		return value{atom: t.text}, nil
	case '[':
	default:
		return value{}, l.errorf(t.line, "`%s': syntax error, unexpected %s, expecting STRING or NUMBER or '['", t.text, kindName(t.kind))
	}
	v := value{isList: true}
	expectItem := true
	for {
		t, err := l.next()
		if err != nil {
			return value{}, err
		}
		switch {
		case t.kind == '\n':
			continue
		case t.kind == ']':
			return v, nil
		case expectItem && (t.kind == 's' || t.kind == 'n'):
			v.list = append(v.list, t.text)
			expectItem = false
		case !expectItem && t.kind == ',':
			expectItem = true
		default:
			return value{}, l.errorf(t.line, "`%s': syntax error, unexpected %s in a list", t.text, kindName(t.kind))
		}
	}
}

// Domain is a domain configuration as xl understands it.
type Domain struct {
	Name       string
	Type       string // "pv", "pvh" or "hvm"
	MemoryMiB  int
	VCPUs      int
	Kernel     string
	Ramdisk    string
	Root       string
	Extra      string
	Bootloader string
	Disks      []Disk
	Vifs       []Vif
	OnPoweroff string
	OnReboot   string
	OnCrash    string
	VNC        bool
}

// Disk is one entry of disk = [...].
type Disk struct {
	Target   string
	Format   string // raw, qcow2, vhd, vmdk, empty
	Vdev     string
	Writable bool
	CDROM    bool
}

// Vif is one entry of vif = [...].
type Vif struct {
	MAC, Bridge, Script string
}

// ConfigError is a setting xl rejects.
type ConfigError struct{ Msg string }

func (e *ConfigError) Error() string { return e.Msg }

func cfgErr(format string, args ...any) error { return &ConfigError{Msg: fmt.Sprintf(format, args...)} }

var shutdownActions = map[string]bool{
	"destroy": true, "restart": true, "rename-restart": true, "preserve": true,
	"coredump-destroy": true, "coredump-restart": true, "soft-reset": true,
}

// vdevRE is the virtual disk names the emulator maps to QEMU's buses.
var vdevRE = regexp.MustCompile(`^(xvd|hd|sd|vd)[a-z]([1-9][0-9]*)?$`)

// ParseDomain reads a domain configuration file's text. overrides are
// `key=value` settings from the command line, applied after the file.
// Relative paths (kernel, ramdisk, disk targets) are taken from dir, the
// directory xl runs in.
func ParseDomain(file, src string, overrides []string, dir string) (Domain, error) {
	for _, o := range overrides {
		src += "\n" + o
	}
	set, err := parseConfig(file, src)
	if err != nil {
		return Domain{}, err
	}
	str := func(key, def string) (string, error) {
		v, ok := set[key]
		if !ok {
			return def, nil
		}
		if v.isList {
			return "", &ParseError{File: file, Line: v.line, Msg: fmt.Sprintf("`%s': parameter is a list, expecting a string", key)}
		}
		return v.atom, nil
	}
	num := func(key string, def int) (int, error) {
		v, ok := set[key]
		if !ok {
			return def, nil
		}
		n, err := strconv.ParseInt(v.atom, 0, 32)
		if v.isList || err != nil {
			return 0, &ParseError{File: file, Line: v.line, Msg: fmt.Sprintf("`%s': parameter is not a valid number", key)}
		}
		return int(n), nil
	}
	list := func(key string) ([]string, error) {
		v, ok := set[key]
		if !ok {
			return nil, nil
		}
		if !v.isList {
			return nil, &ParseError{File: file, Line: v.line, Msg: fmt.Sprintf("`%s': parameter is a single value, expecting a list", key)}
		}
		return v.list, nil
	}
	var d Domain
	var errs []error
	keep := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	var typ, builder string
	typ, err = str("type", "")
	keep(err)
	builder, err = str("builder", "")
	keep(err)
	d.Name, err = str("name", "")
	keep(err)
	d.MemoryMiB, err = num("memory", 128)
	keep(err)
	d.VCPUs, err = num("vcpus", 1)
	keep(err)
	for key, p := range map[string]*string{"kernel": &d.Kernel, "ramdisk": &d.Ramdisk, "root": &d.Root,
		"extra": &d.Extra, "bootloader": &d.Bootloader, "on_poweroff": &d.OnPoweroff, "on_reboot": &d.OnReboot, "on_crash": &d.OnCrash} {
		*p, err = str(key, "")
		keep(err)
	}
	vnc, err := num("vnc", 0)
	keep(err)
	d.VNC = vnc != 0
	disks, err := list("disk")
	keep(err)
	vifs, err := list("vif")
	keep(err)
	if len(errs) > 0 {
		return Domain{}, errs[0]
	}

	switch {
	case typ == "" && builder == "":
		d.Type = "pv"
	case typ != "" && !map[string]bool{"pv": true, "pvh": true, "hvm": true}[typ]:
		return Domain{}, cfgErr("Invalid domain type %s.", typ)
	case builder != "" && builder != "hvm" && builder != "generic":
		return Domain{}, cfgErr("Invalid domain type %s.", builder)
	case typ != "" && builder != "" && (builder == "hvm") != (typ == "hvm"):
		return Domain{}, cfgErr("Contradicting \"builder\" and \"type\" options specified.")
	case typ != "":
		d.Type = typ
	case builder == "hvm":
		d.Type = "hvm"
	default:
		d.Type = "pv"
	}
	if d.Name == "" {
		return Domain{}, cfgErr("Domain name must be specified.")
	}
	if d.MemoryMiB <= 0 {
		return Domain{}, cfgErr("memory = %d: the domain needs memory", d.MemoryMiB)
	}
	if d.VCPUs <= 0 {
		return Domain{}, cfgErr("vcpus = %d: the domain needs a vcpu", d.VCPUs)
	}
	for key, v := range map[string]*string{"on_poweroff": &d.OnPoweroff, "on_reboot": &d.OnReboot, "on_crash": &d.OnCrash} {
		def := map[string]string{"on_poweroff": "destroy", "on_reboot": "restart", "on_crash": "destroy"}[key]
		if *v == "" {
			*v = def
		}
		if !shutdownActions[*v] {
			return Domain{}, cfgErr("Unknown %s action \"%s\" specified", key, *v)
		}
	}
	if d.Type != "hvm" && d.Kernel == "" && d.Bootloader == "" {
		return Domain{}, cfgErr("Neither kernel nor bootloader specified")
	}
	if d.Type == "hvm" && filepath.Base(d.Kernel) == "hvmloader" {
		d.Kernel = ""
	}
	for _, p := range []*string{&d.Kernel, &d.Ramdisk} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	seen := map[string]bool{}
	for _, spec := range disks {
		disk, err := parseDisk(spec, dir)
		if err != nil {
			return Domain{}, err
		}
		if seen[disk.Vdev] {
			return Domain{}, cfgErr("libxl: error: libxl_device.c: domain %s: virtual disk %s is used twice", d.Name, disk.Vdev)
		}
		seen[disk.Vdev] = true
		d.Disks = append(d.Disks, disk)
	}
	for _, spec := range vifs {
		vif, err := parseVif(spec)
		if err != nil {
			return Domain{}, err
		}
		d.Vifs = append(d.Vifs, vif)
	}
	return d, nil
}

// parseDisk reads a disk specification (xl-disk-configuration(5)): the
// key=value form, or the positional target,format,vdev,access and legacy
// [prefix:]target,vdev,access forms.
func parseDisk(spec, dir string) (Disk, error) {
	d := Disk{Format: "raw", Writable: true}
	var positional []string
	access := ""
	// target= takes the rest of the specification, commas and all.
	items := spec
	if i := strings.Index(spec, "target="); i >= 0 && (i == 0 || strings.HasSuffix(strings.TrimRight(spec[:i], " "), ",")) {
		d.Target = strings.TrimSpace(spec[i+len("target="):])
		items = spec[:i]
	}
	for _, item := range strings.Split(items, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		k, v, ok := strings.Cut(item, "=")
		if !ok {
			if item == "cdrom" {
				d.CDROM = true
				continue
			}
			positional = append(positional, item)
			continue
		}
		switch strings.TrimSpace(k) {
		case "format":
			d.Format = strings.TrimSpace(v)
		case "vdev":
			d.Vdev = strings.TrimSpace(v)
		case "access":
			access = strings.TrimSpace(v)
		case "devtype":
			if v = strings.TrimSpace(v); v == "cdrom" {
				d.CDROM = true
			} else if v != "disk" {
				return Disk{}, cfgErr("xl: disk spec %q: unknown devtype %q", spec, v)
			}
		case "backendtype", "backend", "script", "discard", "no-discard", "direct-io-safe", "colo", "specification":
		default:
			return Disk{}, cfgErr("xl: disk spec %q: unknown key %q", spec, k)
		}
	}
	switch len(positional) {
	case 0:
	case 3: // [prefix:]target, vdev, access
		d.Target, d.Vdev, access = positional[0], positional[1], positional[2]
		for _, pfx := range []string{"file:", "phy:", "tap:aio:", "tap:qcow2:", "aio:", "qcow2:", "raw:"} {
			if strings.HasPrefix(d.Target, pfx) {
				if f := strings.TrimSuffix(strings.TrimPrefix(pfx, "tap:"), ":"); f == "qcow2" || f == "raw" {
					d.Format = f
				}
				d.Target = strings.TrimPrefix(d.Target, pfx)
				break
			}
		}
	case 4: // target, format, vdev, access
		d.Target, d.Format, d.Vdev, access = positional[0], positional[1], positional[2], positional[3]
	default:
		return Disk{}, cfgErr("xl: Invalid disk specification %q: want key=value items or target,format,vdev,access", spec)
	}
	if strings.HasSuffix(d.Vdev, ":cdrom") {
		d.Vdev, d.CDROM = strings.TrimSuffix(d.Vdev, ":cdrom"), true
	}
	switch access {
	case "", "w", "rw":
	case "r", "ro":
		d.Writable = false
	default:
		return Disk{}, cfgErr("xl: disk spec %q: invalid access mode %q", spec, access)
	}
	switch d.Format {
	case "raw", "qcow2", "vhd", "vmdk", "empty":
	case "qcow", "qed":
		return Disk{}, cfgErr("libxl: error: libxl_device.c: disk %s: format %s is not supported by this (emulated) host", d.Vdev, d.Format)
	default:
		return Disk{}, cfgErr("xl: disk spec %q: unknown format %q", spec, d.Format)
	}
	if d.CDROM {
		d.Writable = false
	}
	if d.Vdev == "" {
		return Disk{}, cfgErr("xl: disk spec %q: no vdev specified", spec)
	}
	if !vdevRE.MatchString(d.Vdev) {
		return Disk{}, cfgErr("libxl: error: libxl_device.c: Invalid or unsupported virtual disk identifier %s", d.Vdev)
	}
	if d.Target == "" && !d.CDROM {
		return Disk{}, cfgErr("xl: disk spec %q: no target specified", spec)
	}
	if d.Target != "" && !filepath.IsAbs(d.Target) {
		d.Target = filepath.Join(dir, d.Target)
	}
	return d, nil
}

// parseVif reads a network interface specification (xl-network-configuration(5)).
func parseVif(spec string) (Vif, error) {
	var v Vif
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		k, val, ok := strings.Cut(item, "=")
		if !ok {
			return Vif{}, cfgErr("xl: Invalid parameter %q in vif spec %q", item, spec)
		}
		switch strings.TrimSpace(k) {
		case "mac":
			hw, err := net.ParseMAC(strings.TrimSpace(val))
			if err != nil || len(hw) != 6 {
				return Vif{}, cfgErr("xl: Invalid mac address: %s", strings.TrimSpace(val))
			}
			v.MAC = hw.String()
		case "bridge":
			v.Bridge = strings.TrimSpace(val)
		case "script":
			v.Script = strings.TrimSpace(val)
		case "ip", "model", "type", "vifname", "rate", "backend", "gatewaydev", "mtu", "devid":
		default:
			return Vif{}, cfgErr("xl: Invalid parameter %q in vif spec %q", k, spec)
		}
	}
	return v, nil
}
