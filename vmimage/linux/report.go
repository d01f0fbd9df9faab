package linux

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// ErrNoReport is matched by ReadReport's error when the disk holds no
// complete report: the guest never got that far (or never booted).
var ErrNoReport = errors.New("linux guest: no report on the disk")

// Report is what the guest saw and wrote to its data area.
type Report struct {
	Kernel      string   // uname -r
	CPUs        int      // processors in /proc/cpuinfo
	MemTotalKiB int64    // MemTotal in /proc/meminfo: RAM the kernel manages
	PhysMemKiB  int64    // RAM the kernel found ("Memory: .../NK available")
	NICs        []string // network interfaces besides lo
	MAC         string   // of the first NIC
	Net         string   // "dhcp", "static" or "none"
	Addr        string   // its IPv4 address with prefix, e.g. "10.0.2.15/24"
	Gateway     string   // default route
	Reply       string   // first line the host answered
	DNS         string   // the DNS servers the DHCP lease named, space separated
	Resolved    string   // Guest.Resolve's first IPv4 address, "" if it had none
	DataDev     string   // where the report went, e.g. "/dev/vda1"
	Errors      string   // what went wrong, "; "-separated; "" when nothing did
	Uptime      float64  // seconds since the kernel started, when the report was written
	Fields      map[string]string
}

// ReadReport reads the report from a raw disk the guest wrote: a boot
// disk (WriteDisk; the data partition is found in the partition table) or
// a data disk (WriteFiles). It returns an error matching ErrNoReport when
// the data area is there but holds no complete report.
func ReadReport(path string) (*Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read linux guest report: %w", err)
	}
	defer f.Close()
	r, err := readReport(f)
	if err != nil {
		return nil, fmt.Errorf("read linux guest report from %s: %w", path, err)
	}
	return r, nil
}

func readReport(f io.ReaderAt) (*Report, error) {
	first := make([]byte, sector)
	if _, err := f.ReadAt(first, 0); err != nil {
		return nil, fmt.Errorf("first sector: %w", err)
	}
	var data int64
	switch {
	case bytes.HasPrefix(first, []byte(DataMagic)):
		data = 0
	case first[510] == 0x55 && first[511] == 0xAA:
		found := false
		for i := range 4 {
			e := first[partTableOffset+16*i:]
			if e[4] == partTypeData {
				data, found = int64(binary.LittleEndian.Uint32(e[8:])), true
				break
			}
		}
		if !found {
			return nil, errors.New("no data partition (type 0xDA) in the partition table")
		}
		hdr := make([]byte, len(DataMagic))
		if _, err := f.ReadAt(hdr, data*sector); err != nil || string(hdr) != DataMagic {
			return nil, fmt.Errorf("the data partition at LBA %d does not start with %q", data, DataMagic)
		}
	default:
		return nil, errors.New("neither a vmpool Linux guest boot disk nor its data disk")
	}
	buf := make([]byte, (dataSectors-1)*sector)
	n, err := f.ReadAt(buf, (data+1)*sector)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("report: %w", err)
	}
	buf = buf[:n]
	if i := bytes.IndexByte(buf, 0); i >= 0 {
		buf = buf[:i]
	}
	return parseReport(buf)
}

func parseReport(b []byte) (*Report, error) {
	r := &Report{Fields: map[string]string{}}
	sc := bufio.NewScanner(bytes.NewReader(b))
	complete := false
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		if k == "end" {
			complete = true
			break
		}
		r.Fields[k] = v
	}
	if r.Fields["report"] != "1" || !complete {
		return nil, ErrNoReport
	}
	num := func(k string) int64 {
		n, _ := strconv.ParseInt(r.Fields[k], 10, 64)
		return n
	}
	r.Kernel = r.Fields["kernel"]
	r.CPUs = int(num("nproc"))
	r.MemTotalKiB = num("memtotal_kib")
	r.PhysMemKiB = num("physmem_kib")
	r.NICs = strings.Fields(r.Fields["nics"])
	r.MAC, r.Net, r.Addr = r.Fields["mac"], r.Fields["net"], r.Fields["addr"]
	r.Gateway, r.Reply, r.DataDev, r.Errors = r.Fields["gateway"], r.Fields["reply"], r.Fields["data"], r.Fields["errors"]
	r.DNS, r.Resolved = r.Fields["dns"], r.Fields["resolved"]
	r.Uptime, _ = strconv.ParseFloat(r.Fields["uptime"], 64)
	return r, nil
}
