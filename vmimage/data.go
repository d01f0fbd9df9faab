package vmimage

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// The data sector is LBA 1 of every image, right after the boot sector.
// The guests read it into memory at dataAddr, update it and write it back
// with BIOS int 13h. Layout (little endian):
//
//	off size field
//	  0    8 magic "VMPOOLD1"
//	  8    4 Counter  runs completed (incremented just before power-off)
//	 12    4 Boots    times the guest booted from this disk
//	 16    4 Ticks    BIOS ticks counted (stamp and timed guests)
//	 20    4 Target   ticks to count before powering off (baked in by the builder)
//	 24    1 Kind     which guest wrote the image
//	 25    1 Flags    bit 0: stamped, bit 1: done
//	 26    6 RTC      CMOS seconds, minutes, hours, day, month, year (BCD) at first boot
//	 32    8 TSC      time-stamp counter at first boot
const (
	SectorSize = 512

	dataLBA     = 1
	dataAddr    = 0x7E00 // the guests' in-memory copy of the data sector
	offMagic    = 0
	offCounter  = 8
	offBoots    = 12
	offTicks    = 16
	offTarget   = 20
	offKind     = 24
	offFlags    = 25
	offRTC      = 26
	offTSC      = 32
	flagStamped = 1 << 0
	flagDone    = 1 << 1
)

// Magic opens every data sector.
const Magic = "VMPOOLD1"

// ErrNoData is returned by ReadData when the image has no valid data sector
// (not written by this package, or overwritten).
var ErrNoData = errors.New("vmimage: no data sector")

// Kind names a guest program.
type Kind uint8

// The guests.
const (
	KindCounter Kind = 1 // boots, increments Counter, powers off
	KindForever Kind = 2 // boots, increments Boots, never powers off
	KindStamp   Kind = 3 // stamps its first boot, counts Target ticks, powers off
	KindTimed   Kind = 4 // waits Target ticks, increments Counter, powers off
	KindHalting Kind = 5 // boots, increments Counter, halts without powering off
)

func (k Kind) String() string {
	switch k {
	case KindCounter:
		return "counter"
	case KindForever:
		return "forever"
	case KindStamp:
		return "stamp"
	case KindTimed:
		return "timed"
	case KindHalting:
		return "halting"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Stamp marks one boot of a stamp guest: the CMOS clock and the time-stamp
// counter when it first ran. Two boots from a fresh disk get different
// stamps; a guest resumed from a checkpoint keeps its first one.
type Stamp struct {
	RTC [6]byte // seconds, minutes, hours, day, month, year as the CMOS holds them (BCD)
	TSC uint64
}

// IsZero reports whether no stamp was written.
func (s Stamp) IsZero() bool { return s == Stamp{} }

func (s Stamp) String() string {
	r := s.RTC
	return fmt.Sprintf("20%02x-%02x-%02x %02x:%02x:%02x tsc=%#x", r[5], r[4], r[3], r[2], r[1], r[0], s.TSC)
}

// Data is the decoded data sector of an image.
type Data struct {
	Kind    Kind
	Counter uint32 // runs completed
	Boots   uint32 // boots from this disk
	Ticks   uint32 // BIOS ticks counted (18.2 per second)
	Target  uint32 // ticks to count
	Stamped bool   // Stamp was written
	Done    bool   // the stamp guest reached Target
	Stamp   Stamp
}

// encodeData returns a fresh data sector for a guest.
func encodeData(k Kind, target uint32) []byte {
	b := make([]byte, SectorSize)
	copy(b[offMagic:], Magic)
	binary.LittleEndian.PutUint32(b[offTarget:], target)
	b[offKind] = byte(k)
	return b
}

// decodeData parses a data sector.
func decodeData(b []byte) (Data, error) {
	if len(b) < SectorSize || !bytes.Equal(b[offMagic:offMagic+len(Magic)], []byte(Magic)) {
		return Data{}, ErrNoData
	}
	d := Data{
		Kind:    Kind(b[offKind]),
		Counter: binary.LittleEndian.Uint32(b[offCounter:]),
		Boots:   binary.LittleEndian.Uint32(b[offBoots:]),
		Ticks:   binary.LittleEndian.Uint32(b[offTicks:]),
		Target:  binary.LittleEndian.Uint32(b[offTarget:]),
		Stamped: b[offFlags]&flagStamped != 0,
		Done:    b[offFlags]&flagDone != 0,
	}
	copy(d.Stamp.RTC[:], b[offRTC:])
	d.Stamp.TSC = binary.LittleEndian.Uint64(b[offTSC:])
	return d, nil
}

// ReadData reads and validates the data sector of the image at path. Raw
// images are read directly; a qcow2 image (recognised by its magic, not its
// name) is read through "qemu-img dd", which follows backing files, into a
// temporary raw file. It returns an error wrapping ErrNoData when the image
// holds no data sector.
func ReadData(path string) (Data, error) {
	format, err := DetectFormat(path)
	if err != nil {
		return Data{}, fmt.Errorf("read data sector of %s: %w", path, err)
	}
	var sector []byte
	switch format {
	case "raw":
		sector, err = readRawSector(path, dataLBA)
	case "qcow2":
		sector, err = readQCOW2Sector(path, dataLBA)
	default:
		err = fmt.Errorf("unsupported image format %q", format)
	}
	if err != nil {
		return Data{}, fmt.Errorf("read data sector of %s: %w", path, err)
	}
	d, err := decodeData(sector)
	if err != nil {
		return Data{}, fmt.Errorf("read data sector of %s: %w", path, err)
	}
	return d, nil
}

func readRawSector(path string, lba int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, SectorSize)
	if _, err := f.ReadAt(b, lba*SectorSize); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("image shorter than %d sectors: %w", lba+1, ErrNoData)
		}
		return nil, err
	}
	return b, nil
}
