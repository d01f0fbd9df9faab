# Helpers the scripts source. The test runs each script with bash in a
# fresh submit directory holding hello.img (a guest that counts its runs
# and powers off) and forever.img (one that never powers off), with the
# condor_* links first on PATH and VMPOOL_URL/VMPOOL_CREDS naming the pool.
set -euo pipefail

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# expect WANT GOT WHAT: compare two strings.
expect() {
	[ "$1" = "$2" ] || fail "$3: want '$1', got '$2'"
}

# vm_submit_file NAME IMAGE [EXTRA]: write NAME.sub for a kvm job of IMAGE.
vm_submit_file() {
	cat > "$1.sub" <<SUB
universe = vm
executable = $1_vm_job
log = $1.log
vm_type = kvm
vm_memory = 16
vm_disk = $2:hda:w:raw
should_transfer_files = YES
when_to_transfer_output = ON_EXIT
transfer_input_files = $2
${3:-}
queue
SUB
}

# cluster_of OUTPUT: the cluster condor_submit's last line names.
cluster_of() {
	sed -n 's/^[0-9]* job(s) submitted to cluster \([0-9]*\)\.$/\1/p' <<<"$1"
}
