#!/usr/bin/env bash
# The first of the README's two commands: set up what is missing, build
# vmpool, bring up a personal pool on the embedded NATS server, run the
# example hello VM job end to end, show what happened, and stop the pool.
#
#   scripts/demo.sh [WORKDIR]     (default: ./demo)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

work="$(realpath -m "${1:-demo}")"
# As root, vmpool runs VMs as the unprivileged account nobody, which must
# be able to reach the pool's home. A clone under a private directory
# (/root is 0700) is not: then the demo runs in /tmp instead.
if [ "$(id -u)" -eq 0 ] && [ -z "${1:-}" ] && id nobody >/dev/null 2>&1; then
	parent="$(dirname "$work")"
	if ! runuser -u nobody -- test -x "$parent" 2>/dev/null && ! su -s /bin/sh nobody -c "test -x '$parent'" 2>/dev/null; then
		echo "== $parent is not reachable by the account VMs run as (nobody): the demo runs in ${TMPDIR:-/tmp}/vmpool-demo"
		work="${TMPDIR:-/tmp}/vmpool-demo"
	fi
fi
rm -rf "$work"
mkdir -p "$work/job"
echo "== building vmpool"
go build -o "$work/vmpool" ./cmd/vmpool
vmpool="$work/vmpool"

port=$(( 20000 + RANDOM % 20000 ))
export VMPOOL_URL="nats://127.0.0.1:$port"
echo "== starting a personal pool (home $work/pool, NATS at $VMPOOL_URL)"
"$vmpool" up --home "$work/pool" --listen "127.0.0.1:$port" >"$work/up.out" 2>"$work/up.log" &
uppid=$!
trap 'kill -INT $uppid 2>/dev/null; wait $uppid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
	grep -q "vmpool is up" "$work/up.out" 2>/dev/null && break
	kill -0 $uppid 2>/dev/null || { cat "$work/up.log" >&2; exit 1; }
	sleep 0.1
done
cat "$work/up.out"

cd "$work/job"
echo "== writing the example guest (a 512-byte boot sector that counts its boots on its disk, then powers off)"
"$vmpool" image hello hello.img
cat > hello.sub <<'SUB'
universe = vm
executable = hello_vm_job
log = hello.log
vm_type = kvm
vm_memory = 16
vm_disk = hello.img:hda:w:raw
should_transfer_files = YES
when_to_transfer_output = ON_EXIT
transfer_input_files = hello.img
queue
SUB
cat hello.sub
echo "== vmpool submit hello.sub"
"$vmpool" submit hello.sub
echo "== vmpool wait hello.log (returns when the job is done)"
"$vmpool" wait -wait 120 hello.log
echo "== vmpool history"
"$vmpool" history
echo "== the user log (hello.log)"
cat hello.log
echo "== the returned disk"
"$vmpool" image read hello.img
echo "== done: the job completed and its disk came back with the guest's write. Pool log: $work/up.log"
