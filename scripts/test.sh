#!/usr/bin/env bash
# The second of the README's two commands: set up what is missing, check
# formatting and static analysis, and run every test with the race
# detector. Real parts only: embedded NATS + JetStream, Pebble on disk,
# QEMU under TCG (or KVM when /dev/kvm is there). Exits non-zero if
# anything fails, or if no test ran.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

echo "== gofmt"
bad=$(gofmt -l .)
if [ -n "$bad" ]; then echo "gofmt would change:"; echo "$bad"; exit 1; fi

echo "== go vet"
go vet ./...

echo "== staticcheck"
if ! command -v staticcheck >/dev/null 2>&1; then
	GOBIN="${GOBIN:-$(go env GOPATH)/bin}"
	go install honnef.co/go/tools/cmd/staticcheck@v0.8.2
	export PATH="$GOBIN:$PATH"
fi
staticcheck ./...

echo "== go test -race"
out=$(mktemp)
set +e
go test -race -count=1 -timeout 15m ./... 2>&1 | tee "$out"
status=${PIPESTATUS[0]}
set -e
if [ "$status" -ne 0 ]; then
	echo "tests failed" >&2
	exit "$status"
fi
# Never pass by running nothing.
passed=$(grep -c '^ok ' "$out" || true)
if [ "$passed" -lt 8 ]; then
	echo "only $passed packages reported ok: the suite did not run" >&2
	exit 1
fi
echo "== all $passed test packages passed"

# The issue's smoke run: the real binary (no race detector), every scenario
# at a tenth of its size; it must finish and report every figure.
echo "== vmpool bench --quick (smoke)"
bin=$(mktemp -d)
go build -o "$bin/vmpool" ./cmd/vmpool
"$bin/vmpool" bench --quick -json > "$bin/bench.json"
for k in submit_batch_jobs_per_s submit_concurrent_clusters_per_s match_100k_on_10k_s placements_per_s \
	turnaround_overhead_median_s turnaround_overhead_p99_s q_totals_100k_ms q_json_100k_ms \
	replay_events_per_s restart_100k_s schedd_bytes_per_job checkpoint_256mib_s; do
	if ! grep -q "\"$k\":[0-9]" "$bin/bench.json"; then
		echo "vmpool bench --quick -json did not report $k:" >&2
		cat "$bin/bench.json" >&2
		exit 1
	fi
done
cat "$bin/bench.json"; echo
rm -rf "$bin"
echo "== done"
