package sim

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/vmpool/vmpool/startd/hypervisor"
)

// Exit modes: what the simulated guest does when its run time is up.
const (
	ExitPowerOff = "poweroff" // powers off: the job completes
	ExitCrash    = "crash"    // the VM stops without the guest powering off
	ExitNever    = "never"    // runs until stopped; ignores the ACPI power button
)

// Job attributes the driver reads from Spec.Params (matched without regard
// to case, as ClassAd attribute names are).
const (
	ParamRunSeconds      = "SimRunSeconds"
	ParamExit            = "SimExit"
	ParamCheckpointBytes = "SimCheckpointBytes"
)

// Limits on the parameters, so that a typo cannot ask for a century or a
// checkpoint larger than any disk.
const (
	maxRun             = 10 * 365 * 24 * time.Hour
	maxCheckpointBytes = 1 << 40
)

// Error codes of the SpecErrors Start returns (in HoldReason as
// VMGAHP_ERR_<code>).
const (
	CodeInvalidParam         = "SIM_INVALID_PARAM"
	CodeInvalidDisk          = "SIM_INVALID_DISK_PARAM"
	CodeMismatchedCheckpoint = "SIM_MISMATCHED_CHECKPOINT"
	CodeNoMemory             = "JOBCLASSAD_NO_VM_MEMORY_PARAM"
)

// params is what a job asks of its simulated VM.
type params struct {
	run             time.Duration
	exit            string
	checkpointBytes int64
}

// parseParams reads the Sim* parameters. Values are ClassAd values as the
// startd prints them (2, 2.5, "poweroff") or bare words; undefined counts
// as not given. Unknown Sim* attributes are ignored, as HTCondor ignores
// attributes it does not know.
func parseParams(in map[string]string) (params, error) {
	p := params{exit: ExitPowerOff}
	for name, raw := range in {
		v := unquote(raw)
		if strings.EqualFold(v, "undefined") || v == "" {
			continue
		}
		switch {
		case strings.EqualFold(name, ParamRunSeconds):
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || math.IsNaN(f) || f < 0 || f > maxRun.Seconds() {
				return p, invalid(name, raw, fmt.Sprintf("want a number of seconds from 0 to %.0f", maxRun.Seconds()))
			}
			p.run = time.Duration(f * float64(time.Second))
		case strings.EqualFold(name, ParamExit):
			switch strings.ToLower(v) {
			case ExitPowerOff, ExitCrash, ExitNever:
				p.exit = strings.ToLower(v)
			default:
				return p, invalid(name, raw, `want "poweroff", "crash" or "never"`)
			}
		case strings.EqualFold(name, ParamCheckpointBytes):
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || math.IsNaN(f) || f < 0 || f > maxCheckpointBytes || f != math.Trunc(f) {
				return p, invalid(name, raw, fmt.Sprintf("want a whole number of bytes from 0 to %d", int64(maxCheckpointBytes)))
			}
			p.checkpointBytes = int64(f)
		}
	}
	return p, nil
}

func invalid(name, raw, want string) error {
	return &hypervisor.SpecError{Code: CodeInvalidParam, Msg: fmt.Sprintf("%s = %s: %s", name, raw, want)}
}

// unquote strips a ClassAd string literal's quotes; other values are
// returned trimmed.
func unquote(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		if u, err := strconv.Unquote(s); err == nil {
			return u
		}
		return s[1 : len(s)-1]
	}
	return s
}
