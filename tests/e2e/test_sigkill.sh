#!/bin/bash
# SIGKILL mid-lease: the node is killed outright while a lease runs. After a
# restart the lease goes on, its records stay contiguous with no interval
# charged twice, the VM is the same one, and the audit passes.
. "$(dirname "$0")/lib.sh"
e2e_init sigkill 7715
e2e_start_node

LEASE=$("$TALLY" lease create --image tiny --vcpus 1 --memory 128 --duration 600 \
	--deposit 30000000 --wait --timeout 120)
check "the lease runs" lease_state_is "$LEASE" running
DOMAIN="${E2E_PREFIX}${LEASE:0:12}"
count() { "$TALLY" usage "$LEASE" --json | jq '.records | length'; }
check "records arrive" wait_for 60 bash -c "[ \$($TALLY usage $LEASE --json | jq '.records | length') -ge 3 ]"
PID_BEFORE=$(cat "/run/libvirt/qemu/$DOMAIN.pid")
# The kernel's own count of the VM's CPU time: its cgroup-v2 directory.
VMCG=/sys/fs/cgroup/unified$(dirname "$(sed -n 's/^0:://p' "/proc/$PID_BEFORE/cgroup")")
[ -d "$VMCG" ] || VMCG=/sys/fs/cgroup$(dirname "$(sed -n 's/^0:://p' "/proc/$PID_BEFORE/cgroup")")
vm_usage_ns() { awk '/^usage_usec/ { printf "%.0f\n", $2 * 1000 }' "$VMCG/cpu.stat"; }
billed_ns() { "$TALLY" usage "$LEASE" --json | jq '[.records[].cpu_ns] | add'; }
last_end() { "$TALLY" usage "$LEASE" --json | jq '.records[-1].end_ns'; }
BEFORE=$(count)
S1=$(billed_ns); U1=$(vm_usage_ns); E1=$(last_end)

e2e_stop_node KILL
sleep 12    # the VM and the pinned meters go on without the node
e2e_start_node
check "the node comes back" curl -sf "$TALLY_NODE/healthz"
check "records arrive again after the restart" \
	wait_for 60 bash -c "[ \$($TALLY usage $LEASE --json | jq '.records | length') -ge $((BEFORE + 3)) ]"
check "the same VM was adopted, not recreated" \
	[ "$(cat "/run/libvirt/qemu/$DOMAIN.pid")" = "$PID_BEFORE" ]
check "exactly one VM runs for the lease" \
	[ "$(virsh -q -c qemu:///system list --all --name | grep -c "^$E2E_PREFIX")" -eq 1 ]
"$TALLY" usage "$LEASE" --json >"$E2E_DIR/usage.json"
check "records are numbered without gaps" \
	jq -e '[.records | to_entries[] | .key == .value.seq] | all' "$E2E_DIR/usage.json"
check "records are contiguous in time: no gap, no interval twice" \
	jq -e '[.records as $r | range(1; $r | length) | $r[.].start_ns == $r[. - 1].end_ns] | all' \
	"$E2E_DIR/usage.json"
# CPU across the outage was metered by the pinned programs and billed once:
# what the records billed between two snapshots equals what the kernel
# counted for the VM's cgroup. Each snapshot may hold up to one interval's
# CPU not yet in a record, so allow 2.5 s; the outage alone is about 6 s of
# CPU (12 s at the guest's 50% burn), so losing it or billing it twice fails.
S2=$(billed_ns); U2=$(vm_usage_ns); E2=$(last_end)
DIFF=$(( (S2 - S1) - (U2 - U1) ))
e2e_log "billed $(( (S2 - S1) / 1000000 )) ms over $(( (E2 - E1) / 1000000 )) ms of records; the VM's cgroup counted $(( (U2 - U1) / 1000000 )) ms; difference $(( DIFF / 1000000 )) ms"
check "CPU billed across the outage equals the kernel's count for the VM (within 2.5 s)" \
	[ "${DIFF#-}" -le 2500000000 ]
check "the outage's CPU is in the records (more than 3 s billed across it)" \
	[ $(( S2 - S1 )) -gt 3000000000 ]
"$TALLY" lease close "$LEASE" >/dev/null
check "the lease closes" wait_for 30 lease_state_is "$LEASE" closed
check "the audit passes" "$TALLY" audit "$LEASE"
e2e_done
