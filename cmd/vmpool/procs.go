package main

import (
	"runtime"
	"strconv"
)

// syncProcs is how many Ps vmpool adds to the Go runtime's default. A
// goroutine in fsync (Pebble's WAL writer; the embedded NATS server's
// JetStream store, which fsyncs every write) keeps its P until the
// runtime's monitor (sysmon) sees it there twice, and sysmon, when it has
// found little to do, looks only every 10 ms. A fsync takes 0.2-1 ms, so
// on a small machine the daemons' fsyncs hold most of the Ps while other
// goroutines wait to run on CPUs that are idle. Measured on 2 vCPUs (vmpool bench
// --scenario submit --quick, 8 concurrent clients): 1,300-1,600
// clusters/s with 2 Ps, 2,100-2,500 with 3, 4 or 6. Once the daemons
// did less per submit (full size, 20,000 clusters), 6 Ps beat 4:
// 4,926-5,096 clusters/s against 4,492-4,870, five runs each,
// alternating; the match (sim startds, CPU-bound) was the same with either.
const syncProcs = 4

// procsFor is the GOMAXPROCS vmpool runs with: the runtime's default
// (CPUs, or the container's CPU limit) plus syncProcs, unless the user set
// GOMAXPROCS, which is then left as it is.
func procsFor(env string, def int) int {
	if n, err := strconv.Atoi(env); err == nil && n > 0 {
		return n
	}
	return def + syncProcs
}

// raiseProcs applies procsFor to this process.
func raiseProcs(getenv func(string) string) {
	if n := procsFor(getenv("GOMAXPROCS"), runtime.GOMAXPROCS(0)); n != runtime.GOMAXPROCS(0) {
		runtime.GOMAXPROCS(n)
	}
}
