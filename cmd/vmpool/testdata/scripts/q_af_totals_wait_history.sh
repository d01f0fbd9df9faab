#!/usr/bin/env bash
# needs: python3
# A held job found with condor_q -af, -af:j, -format and -constraint,
# counted by condor_q -totals, released, waited for with condor_wait and
# read back from condor_history -json and -af.
source "$(dirname "$0")/lib.sh"

vm_submit_file hello hello.img
out=$(condor_submit -a 'hold = true' hello.sub)
grep -qx 'Submitting job(s)\.' <<<"$out" || fail "submit printed: $out"
cluster=$(cluster_of "$out")
[ -n "$cluster" ] || fail "no cluster in: $out"

# condor_q -af: one line per job, the values separated by spaces.
read -r c p st cmd < <(condor_q -af ClusterId ProcId JobStatus Cmd)
expect "$cluster.0 5 hello_vm_job" "$c.$p $st $cmd" "condor_q -af"
expect "$cluster.0 5" "$(condor_q -af:j JobStatus)" "condor_q -af:j"
expect "$cluster.0" "$(condor_q -format '%d.' ClusterId -format '%d\n' ProcId)" "condor_q -format"
expect "held: 5/15" "$(condor_q -format 'held: %d' JobStatus -format '/%d\n' HoldReasonCode)" "condor_q -format, two pairs"
expect "$cluster" "$(condor_q -constraint 'JobStatus == 5 && JobVMMemory == 16' -af ClusterId)" "condor_q -constraint"
expect "" "$(condor_q -constraint 'JobStatus == 1' -af ClusterId)" "condor_q -constraint, no match"

# condor_q -totals: the footer alone, parsed as scripts parse it.
totals=$(condor_q -totals)
line=$(grep '^Total for query:' <<<"$totals")
expect "Total for query: 1 jobs; 0 completed, 0 removed, 0 idle, 0 running, 1 held, 0 suspended" "$line" "condor_q -totals"
held=$(awk -F'[;,]' '/^Total for all users:/ { for (i = 1; i <= NF; i++) if ($i ~ / held$/) { split($i, f, " "); print f[1] } }' <<<"$totals")
expect 1 "$held" "held jobs in the all-users total"
expect 3 "$(grep -c '^Total for ' <<<"$totals")" "total lines"

# condor_q's default view: a batch line with the job's id.
grep -Eq "^OWNER +BATCH_NAME +SUBMITTED +DONE +RUN +IDLE +HOLD +TOTAL +JOB_IDS$" <<<"$(condor_q)" || fail "condor_q header: $(condor_q)"
grep -Eq " $cluster\.0$" <<<"$(condor_q)" || fail "condor_q has no batch line for $cluster.0"

# Released, it runs to completion; condor_wait returns 0.
expect "All jobs in cluster $cluster have been released" "$(condor_release "$cluster")" "condor_release"
condor_wait -wait 120 hello.log "$cluster.0" >wait.out || fail "condor_wait exited $?: $(cat wait.out)"
expect "All jobs done." "$(cat wait.out)" "condor_wait"

# condor_history -json: an array of ads.
condor_history -json "$cluster" | python3 -c '
import json, sys
ads = json.load(sys.stdin)
assert len(ads) == 1, ads
ad = ads[0]
assert ad["JobStatus"] == 4, ad["JobStatus"]
assert ad["JobUniverse"] == 13 and ad["JobVMType"] == "kvm", ad
assert ad["NumJobStarts"] == 1, ad["NumJobStarts"]
print("history ok:", "%d.%d" % (ad["ClusterId"], ad["ProcId"]))
'
expect "$cluster 4 1" "$(condor_history -af ClusterId JobStatus NumJobStarts -limit 1)" "condor_history -af"
expect "[]" "$(condor_q -json)" "condor_q -json with no jobs"
