#!/usr/bin/env bash
# condor_status's columns, -vm, -af, -constraint, a machine name and its
# totals; condor_config_val.
source "$(dirname "$0")/lib.sh"

out=$(condor_status)
head -1 <<<"$out" | grep -Eq '^Name +OpSys +Arch +State +Activity +LoadAv +Mem +ActvtyTime$' || fail "condor_status header: $out"
grep -Eq '^slot1@startd1 +LINUX +X86_64 +Unclaimed +Idle ' <<<"$out" || fail "condor_status slot line: $out"
total=$(awk '$1 == "Total" { print $2, $5 }' <<<"$out")
expect "1 1" "$total" "condor_status Total machines and unclaimed"
head -1 <<<"$(condor_status -vm)" | grep -Eq '^Name +VmType +Network +State +Activity +LoadAv +VMMem +ActvtyTime$' || fail "condor_status -vm header"

expect "slot1@startd1 kvm true" "$(condor_status -af Name VM_Type HasVM)" "condor_status -af"
expect "slot1@startd1" "$(condor_status -constraint 'VM_Type == "kvm" && VM_Memory >= 16' -af Name)" "condor_status -constraint"
expect "slot1@startd1" "$(condor_status startd1 -af Name)" "condor_status STARTD"
expect "" "$(condor_status nosuchmachine -af Name 2>/dev/null)" "condor_status of another machine"
expect "kvm:1024" "$(condor_status -format '%s:' VM_Type -format '%d\n' VM_Memory)" "condor_status -format"

expect "kvm" "$(condor_config_val VM_TYPE)" "condor_config_val"
expect "VM_MEMORY = 2048
 # at: --set" "$(condor_config_val -v --set VM_MEMORY=2048 VM_MEMORY)" "condor_config_val -v"
set +e
err=$(condor_config_val NO_SUCH_KNOB 2>&1)
rc=$?
set -e
expect "1 Not defined: NO_SUCH_KNOB" "$rc $err" "condor_config_val of an unknown knob"
