package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"syscall"
)

// profileDirEnv names the directory a process of vmpool bench --apart
// --pprof writes its profiles in: SIGUSR1 starts its CPU profile
// (DIR/NAME.cpu.pprof, and the allocation profile at that moment,
// DIR/NAME.allocs-start.pprof), SIGUSR2 ends it (DIR/NAME.allocs.pprof)
// and then writes DIR/NAME.done. The bench signals it at the start and end
// of its measured phase, so that the sim startds' own profile covers what
// the central process's does.
const profileDirEnv = "VMPOOL_PROFILE_DIR"

// profileOnSignals serves profileDirEnv for the process until ctx ends.
func profileOnSignals(ctx context.Context, dir, name string, logger *slog.Logger) {
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGUSR1, syscall.SIGUSR2)
	go func() {
		defer signal.Stop(sig)
		var cpu *os.File
		stop := func() {
			if cpu == nil {
				return
			}
			pprof.StopCPUProfile()
			cpu.Close()
			cpu = nil
			writeHeapProfile(filepath.Join(dir, name+".allocs.pprof"), logger)
			if err := os.WriteFile(filepath.Join(dir, name+".done"), nil, 0o644); err != nil {
				logger.Warn("profile", "err", err)
			}
		}
		defer stop()
		for {
			select {
			case <-ctx.Done():
				return
			case s := <-sig:
				if s == syscall.SIGUSR2 {
					stop()
					continue
				}
				if cpu != nil {
					continue
				}
				writeHeapProfile(filepath.Join(dir, name+".allocs-start.pprof"), logger)
				f, err := os.Create(filepath.Join(dir, name+".cpu.pprof"))
				if err != nil {
					logger.Warn("profile", "err", err)
					continue
				}
				if err := pprof.StartCPUProfile(f); err != nil {
					f.Close()
					logger.Warn("profile", "err", err)
					continue
				}
				cpu = f
			}
		}
	}()
}

// writeHeapProfile writes the allocation profile (cumulative since the
// process started) to path.
func writeHeapProfile(path string, logger *slog.Logger) {
	runtime.GC() // the allocation profile counts what the last GC saw
	f, err := os.Create(path)
	if err == nil {
		err = pprof.Lookup("allocs").WriteTo(f, 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		logger.Warn("profile", "err", fmt.Errorf("allocation profile %s: %w", path, err))
	}
}
