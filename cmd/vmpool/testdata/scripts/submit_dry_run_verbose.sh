#!/usr/bin/env bash
# condor_submit -dry-run writes the job ads and queues nothing; -verbose
# prints the ads as queued; -append and -batch-name lines apply; a
# description on standard input works; a bad one queues nothing.
source "$(dirname "$0")/lib.sh"

vm_submit_file hello hello.img
out=$(condor_submit -dry-run ads.txt -a 'vm_memory = 32' hello.sub)
expect "Dry-Run job(s).
1 job(s) dry-run to cluster 1." "$out" "condor_submit -dry-run"
grep -qx 'JobVMMemory = 32' ads.txt || fail "-append not in the dry-run ads: $(cat ads.txt)"
grep -qx 'JobUniverse = 13' ads.txt || fail "no JobUniverse in the dry-run ads"
expect "0" "$(condor_q -allusers -af ClusterId | wc -l | tr -d ' ')" "jobs queued by a dry run"

out=$(condor_submit -verbose -batch-name nightly -a 'hold = true' hello.sub)
cluster=$(cluster_of "$out")
grep -qx "\*\* Proc $cluster.0:" <<<"$out" || fail "-verbose printed no proc header: $out"
grep -qx 'JobBatchName = "nightly"' <<<"$out" || fail "-verbose ad lacks the batch name: $out"
expect "nightly" "$(condor_q -af JobBatchName)" "-batch-name"
grep -Eq "^[^ ]+ +nightly " <<<"$(condor_q)" || fail "batch name not in condor_q: $(condor_q)"

out=$(condor_submit -a 'hold = true' - <hello.sub)
c2=$(cluster_of "$out")
[ -n "$c2" ] && [ "$c2" != "$cluster" ] || fail "submit from standard input: $out"
expect "All jobs in cluster $c2 have been marked for removal" "$(condor_rm "$c2")" "condor_rm"

printf 'universe = vm\nexecutable = x\nvm_type = kvm\nvm_memory = -5\nqueue\n' > bad.sub
set +e
err=$(condor_submit bad.sub 2>&1 >/dev/null)
rc=$?
set -e
expect 1 "$rc" "condor_submit of a bad description"
grep -q '^ERROR: bad.sub:4: vm_memory' <<<"$err" || fail "no ERROR naming the line: $err"
grep -q 'nothing was queued' <<<"$err" || fail "bad submit: $err"
expect "$cluster" "$(condor_q -af ClusterId)" "jobs after a bad submit"
condor_rm -all >/dev/null
