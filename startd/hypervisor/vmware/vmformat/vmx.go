// Package vmformat reads and writes the VMware files vmpool touches: the
// .vmx configuration (key = "value" lines) and .vmdk disk descriptors
// (text descriptors with their extents, and the descriptor embedded in a
// monolithicSparse disk). Both the vmware driver and the vmrun emulator
// (vmrunemu) use it; it imports only the standard library.
package vmformat

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// VMX is a parsed .vmx file. It keeps every line, comments included, so
// that writing it back changes only what was set. Keys are compared
// without regard to case, as VMware does. The zero VMX is empty and ready.
type VMX struct {
	lines []vmxLine
}

type vmxLine struct {
	key   string // "" for comments and blank lines
	value string
	raw   string // the line as read, for comments and blanks
}

// SyntaxError is a .vmx line VMware would not read.
type SyntaxError struct {
	Line int
	Text string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("syntax error in line %d: %q", e.Line, e.Text)
}

// ParseVMX reads a .vmx file's contents.
func ParseVMX(data []byte) (*VMX, error) {
	v := &VMX{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		raw := strings.TrimRight(sc.Text(), "\r")
		line := strings.TrimSpace(raw)
		if line == "" || strings.HasPrefix(line, "#") {
			v.lines = append(v.lines, vmxLine{raw: raw})
			continue
		}
		k, val, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" || strings.ContainsAny(k, " \t\"") {
			return nil, &SyntaxError{Line: n, Text: line}
		}
		val = strings.TrimSpace(val)
		if strings.HasPrefix(val, `"`) {
			if len(val) < 2 || !strings.HasSuffix(val, `"`) || strings.Contains(val[1:len(val)-1], `"`) {
				return nil, &SyntaxError{Line: n, Text: line}
			}
			val = unescape(val[1 : len(val)-1])
		} else if strings.ContainsAny(val, " \t\"") {
			return nil, &SyntaxError{Line: n, Text: line}
		}
		v.lines = append(v.lines, vmxLine{key: k, value: val})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return v, nil
}

// VMware writes characters that are special in a value as |XX (hex).
var escRE = regexp.MustCompile(`\|([0-9A-Fa-f]{2})`)

func unescape(s string) string {
	return escRE.ReplaceAllStringFunc(s, func(m string) string {
		b, _ := strconv.ParseUint(m[1:], 16, 8)
		return string(rune(b))
	})
}

func escape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r == '"' || r == '|' || r < 0x20 {
			fmt.Fprintf(&b, "|%02X", r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Get returns the value of key.
func (v *VMX) Get(key string) (string, bool) {
	for _, l := range v.lines {
		if l.key != "" && strings.EqualFold(l.key, key) {
			return l.value, true
		}
	}
	return "", false
}

// Bool reads a boolean value ("TRUE", "true", "1"...); def when unset.
func (v *VMX) Bool(key string, def bool) bool {
	s, ok := v.Get(key)
	if !ok {
		return def
	}
	switch strings.ToLower(s) {
	case "true", "1", "yes":
		return true
	case "false", "0", "no":
		return false
	}
	return def
}

// Set gives key value, overwriting an existing value where it is, or
// appending the key.
func (v *VMX) Set(key, value string) {
	for i, l := range v.lines {
		if l.key != "" && strings.EqualFold(l.key, key) {
			v.lines[i].value = value
			// Later duplicates would override the first; drop them.
			v.deleteFrom(key, i+1)
			return
		}
	}
	v.lines = append(v.lines, vmxLine{key: key, value: value})
}

// Delete removes key.
func (v *VMX) Delete(key string) { v.deleteFrom(key, 0) }

func (v *VMX) deleteFrom(key string, from int) {
	out := v.lines[:from]
	for _, l := range v.lines[from:] {
		if l.key != "" && strings.EqualFold(l.key, key) {
			continue
		}
		out = append(out, l)
	}
	v.lines = out
}

// DeletePrefix removes every key that starts with prefix (e.g. a device:
// "floppy0.").
func (v *VMX) DeletePrefix(prefix string) {
	out := v.lines[:0]
	for _, l := range v.lines {
		if l.key != "" && len(l.key) >= len(prefix) && strings.EqualFold(l.key[:len(prefix)], prefix) {
			continue
		}
		out = append(out, l)
	}
	v.lines = out
}

// Keys lists the keys in file order.
func (v *VMX) Keys() []string {
	var out []string
	for _, l := range v.lines {
		if l.key != "" {
			out = append(out, l.key)
		}
	}
	return out
}

// Bytes renders the file.
func (v *VMX) Bytes() []byte {
	var b bytes.Buffer
	for _, l := range v.lines {
		if l.key == "" {
			b.WriteString(l.raw)
		} else {
			fmt.Fprintf(&b, "%s = \"%s\"", l.key, escape(l.value))
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// DiskNode is a virtual disk of a VM: a device node with a file.
type DiskNode struct {
	Node       string // "scsi0:0", "ide1:0", "sata0:2", "nvme0:0"
	File       string // fileName as written: relative to the .vmx's dir, or absolute
	DeviceType string // "disk", "scsi-hardDisk", "cdrom-image", ...
	Mode       string // "persistent", "independent-persistent", "independent-nonpersistent", ""
}

// CDROM reports whether the node is a CD-ROM image.
func (d DiskNode) CDROM() bool { return strings.HasPrefix(strings.ToLower(d.DeviceType), "cdrom") }

var nodeRE = regexp.MustCompile(`(?i)^((?:ide|scsi|sata|nvme)[0-9]+:[0-9]+)\.filename$`)

// Disks lists the VM's present disk and CD-ROM image nodes, in file order.
// A node is present unless its present key says otherwise (VMware's
// default for an entry with a fileName).
func (v *VMX) Disks() []DiskNode {
	var out []DiskNode
	for _, l := range v.lines {
		m := nodeRE.FindStringSubmatch(l.key)
		if m == nil {
			continue
		}
		node := strings.ToLower(m[1])
		if !v.Bool(node+".present", true) {
			continue
		}
		dt, _ := v.Get(node + ".deviceType")
		if strings.EqualFold(dt, "atapi-cdrom") || strings.EqualFold(dt, "cdrom-raw") {
			continue // the host's drive, not a file
		}
		mode, _ := v.Get(node + ".mode")
		out = append(out, DiskNode{Node: node, File: l.value, DeviceType: dt, Mode: strings.ToLower(mode)})
	}
	return out
}

// Devices lists the device prefixes (before the first '.') of every key,
// sorted: "ethernet0", "floppy0", "scsi0:0", ...
func (v *VMX) Devices() []string {
	seen := map[string]bool{}
	for _, k := range v.Keys() {
		if i := strings.IndexByte(k, '.'); i > 0 {
			seen[strings.ToLower(k[:i])] = true
		}
	}
	out := make([]string, 0, len(seen))
	for d := range seen {
		out = append(out, d)
	}
	sort.Strings(out)
	return out
}

// NewVMX returns a minimal .vmx for a VM of memMiB MiB with the given
// disks (their Node and File), no network and no other devices: what
// vmpool's examples and tests boot.
func NewVMX(displayName string, memMiB int, disks []DiskNode) *VMX {
	v := &VMX{}
	v.Set(".encoding", "UTF-8")
	v.Set("config.version", "8")
	v.Set("virtualHW.version", "19")
	v.Set("displayName", displayName)
	v.Set("guestOS", "other")
	v.Set("memsize", strconv.Itoa(memMiB))
	v.Set("numvcpus", "1")
	controllers := map[string]bool{}
	for _, d := range disks {
		ctrl, _, _ := strings.Cut(d.Node, ":")
		if !controllers[ctrl] && strings.HasPrefix(ctrl, "scsi") {
			v.Set(ctrl+".present", "TRUE")
			v.Set(ctrl+".virtualDev", "lsilogic")
		}
		controllers[ctrl] = true
		v.Set(d.Node+".present", "TRUE")
		v.Set(d.Node+".fileName", d.File)
		if d.DeviceType != "" {
			v.Set(d.Node+".deviceType", d.DeviceType)
		}
	}
	v.Set("ethernet0.present", "FALSE")
	return v
}
