package sim_test

import (
	"strconv"
	"testing"

	"github.com/vmpool/vmpool/startd/hypervisor"
	"github.com/vmpool/vmpool/startd/hypervisor/hvtest"
	"github.com/vmpool/vmpool/startd/hypervisor/sim"
	"github.com/vmpool/vmpool/vmimage"
)

// guestSpec makes the sim VM behave as the vmimage guest on the disk
// would: the hello guest powers off at once, forever never does, the
// timed and stamp guests power off after their ticks.
func guestSpec(t *testing.T, name, dir, disk string) hypervisor.Spec {
	spec := hvtest.DefaultSpec(t, name, dir, disk)
	g, err := vmimage.ReadData(disk)
	if err != nil {
		t.Fatalf("read the guest's kind: %v", err)
	}
	spec.Params = map[string]string{sim.ParamExit: strconv.Quote(sim.ExitPowerOff), sim.ParamCheckpointBytes: "65536"}
	switch g.Kind {
	case vmimage.KindCounter:
		spec.Params[sim.ParamRunSeconds] = "0.05"
	case vmimage.KindForever:
		spec.Params[sim.ParamExit] = strconv.Quote(sim.ExitNever)
	default:
		spec.Params[sim.ParamRunSeconds] = strconv.FormatFloat(float64(g.Target)/vmimage.TickHz, 'f', -1, 64)
	}
	return spec
}

func TestConformance(t *testing.T) {
	hvtest.Run(t, func(t *testing.T) hypervisor.Driver { return sim.New(sim.Config{}) },
		hvtest.Kit{Spec: guestSpec, NoProcess: true, NoGuest: true})
}
