package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
)

// TestMain lets tests run vmpool as a separate process: the test binary
// re-executed with VMPOOL_TEST_MAIN=1 is the vmpool command (see
// vmpoolProcess), so tests can kill -9 a daemon for real.
func TestMain(m *testing.M) {
	if os.Getenv("VMPOOL_TEST_MAIN") == "1" {
		c := &cli{stdout: os.Stdout, stderr: os.Stderr, stdin: os.Stdin, getenv: os.Getenv}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := c.main(ctx, append([]string{"vmpool"}, os.Args[1:]...))
		stop()
		os.Exit(code)
	}
	if _, ok := condorNames[filepath.Base(os.Args[0])]; ok {
		// Run through a link named condor_q, ... to the test binary (as
		// vmpool links makes them, for the scripts' tests): that command.
		c := &cli{stdout: os.Stdout, stderr: os.Stderr, stdin: os.Stdin, getenv: os.Getenv}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := c.main(ctx, os.Args)
		stop()
		os.Exit(code)
	}
	if isEmulatorName(filepath.Base(os.Args[0])) {
		// Run through a link named xl or vmrun to the test binary (as
		// EMULATE makes them): the hypervisor emulator, as vmpool is.
		c := &cli{stdout: os.Stdout, stderr: os.Stderr, stdin: os.Stdin, getenv: os.Getenv}
		os.Exit(c.main(context.Background(), os.Args))
	}
	os.Exit(runIsolated(m))
}

// runIsolated runs the tests with HOME in a temporary directory: vmpool up
// leaves a user's credentials in ~/.vmpool/creds/HOST_PORT.nk, and a test
// pool that came up on a port an earlier test's pool had used found that
// pool's credentials there and was refused (TestNoCredentialsNoEntry failed
// in CI so). The tests leave nothing in the real home, and find nothing of
// an earlier run's there.
func runIsolated(m *testing.M) int {
	home, err := os.MkdirTemp("", "vmpool-test-home-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "test home: %v\n", err)
		return 1
	}
	defer os.RemoveAll(home)
	if err := os.Chmod(home, 0o755); err != nil {
		fmt.Fprintf(os.Stderr, "test home: %v\n", err)
		return 1
	}
	os.Setenv("HOME", home)
	return m.Run()
}
