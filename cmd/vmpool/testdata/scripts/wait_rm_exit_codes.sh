#!/usr/bin/env bash
# condor_wait's exit codes: 1 when -wait runs out (the job runs on), 0 once
# the job is removed; condor_rm's and condor_hold's messages and errors.
source "$(dirname "$0")/lib.sh"

vm_submit_file forever forever.img
cluster=$(cluster_of "$(condor_submit forever.sub)")
[ -n "$cluster" ] || fail "no cluster"

set +e
out=$(condor_wait -wait 1 forever.log "$cluster")
rc=$?
set -e
expect 1 "$rc" "condor_wait exit status on a timeout"
expect "Time expired." "$out" "condor_wait on a timeout"

expect "Job $cluster.0 held" "$(condor_hold "$cluster.0")" "condor_hold CLUSTER.PROC"
set +e
err=$(condor_hold 999.0 2>&1 >/dev/null)
rc=$?
set -e
expect 1 "$rc" "condor_hold of a missing job"
expect "Job 999.0 not found" "$err" "condor_hold of a missing job"
set +e
err=$(condor_release "$cluster.0" 2>&1 >/dev/null; condor_release "$cluster.0" 2>&1 >/dev/null)
set -e
expect "Job $cluster.0 not held to be released" "$err" "condor_release of a job not held"

expect "All jobs in cluster $cluster have been marked for removal" "$(condor_rm "$cluster")" "condor_rm CLUSTER"
condor_wait -wait 120 forever.log "$cluster" >/dev/null || fail "condor_wait after condor_rm exited $?"
expect "3" "$(condor_history -af JobStatus -constraint "ClusterId == $cluster")" "removed job's status"
