package submit

import (
	"math"
	"strconv"
	"strings"
)

// parseBool accepts condor_submit's spellings of a boolean.
func parseBool(s string) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "t", "yes", "y", "1", "on":
		return true, true
	case "false", "f", "no", "n", "0", "off":
		return false, true
	}
	return false, false
}

// parseInt parses a decimal integer (an optional sign, no unit).
func parseInt(s string) (int64, bool) {
	n, err := strconv.ParseInt(strings.TrimPrefix(strings.TrimSpace(s), "+"), 10, 64)
	return n, err == nil
}

// parseAmount parses a number with an optional unit suffix (K, M, G, T,
// with an optional B or iB, case-insensitive, powers of 1024) and returns it
// in units of base bytes, rounded up. isNumber is false when s is not a
// number followed by letters at all (it may then be an expression).
func parseAmount(s string, base float64) (v int64, isNumber bool, ok bool) {
	t := strings.TrimSpace(s)
	i := 0
	if i < len(t) && (t[i] == '+' || t[i] == '-') {
		i++
	}
	digits := i
	for i < len(t) && (isDigit(t[i]) || t[i] == '.') {
		i++
	}
	if i == digits {
		return 0, false, false
	}
	rest := strings.TrimSpace(t[i:])
	for j := 0; j < len(rest); j++ {
		if !isAlpha(rest[j]) {
			return 0, false, false // "2 * MY.JobVMMemory": an expression
		}
	}
	num, err := strconv.ParseFloat(t[:i], 64)
	if err != nil {
		return 0, true, false
	}
	unit := strings.ToUpper(rest)
	if unit != "B" {
		unit = strings.TrimSuffix(strings.TrimSuffix(unit, "IB"), "B")
	}
	mult := 0.0
	switch unit {
	case "":
		mult = base
	case "B":
		mult = 1
	case "K":
		mult = 1 << 10
	case "M":
		mult = 1 << 20
	case "G":
		mult = 1 << 30
	case "T":
		mult = 1 << 40
	default:
		return 0, true, false
	}
	q := num * mult / base
	if math.IsNaN(q) || math.IsInf(q, 0) || q > math.MaxInt64/2 || q < math.MinInt64/2 {
		return 0, true, false
	}
	return int64(math.Ceil(q)), true, true
}

// parseMAC validates a MAC address (six hex octets separated by colons or
// dashes) and returns it lower-cased with colons. unicast is false for a
// group (multicast/broadcast) address, whose first octet is odd.
func parseMAC(s string) (mac string, ok, unicast bool) {
	t := strings.TrimSpace(s)
	sep := ":"
	if strings.Contains(t, "-") {
		sep = "-"
	}
	parts := strings.Split(t, sep)
	if len(parts) != 6 {
		return "", false, false
	}
	var octets [6]uint64
	for i, p := range parts {
		if len(p) != 2 {
			return "", false, false
		}
		v, err := strconv.ParseUint(p, 16, 8)
		if err != nil {
			return "", false, false
		}
		octets[i] = v
	}
	zero := true
	for _, o := range octets {
		if o != 0 {
			zero = false
		}
	}
	out := strings.ToLower(strings.Join(parts, ":"))
	return out, true, octets[0]&1 == 0 && !zero
}

// vmwareStaticMAC reports whether mac (as parseMAC returns it) lies in
// 00:50:56:00:00:00-00:50:56:3f:ff:ff, the static addresses VMware takes.
func vmwareStaticMAC(mac string) bool {
	if !strings.HasPrefix(mac, "00:50:56:") || len(mac) != 17 {
		return false
	}
	o, err := strconv.ParseUint(mac[9:11], 16, 8)
	return err == nil && o <= 0x3f
}
