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
BEFORE=$(count)

e2e_stop_node KILL
sleep 5     # the VM and the pinned meters go on without the node
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
# CPU across the outage was metered by the pinned programs and billed once.
# The guest burns 50% of its vCPU: losing the outage's CPU or counting an
# interval twice moves the lease's average well outside this window (the
# outage is about a third of the lease so far).
RATIO=$(jq '(.records | map(.cpu_ns) | add) / (.records[-1].end_ns - .records[0].start_ns)' \
	"$E2E_DIR/usage.json")
e2e_log "CPU billed over the lease, outage included: $RATIO of one vCPU"
check "CPU billed over the outage matches the guest's 50% burn (0.35..0.8 of a vCPU)" \
	jq -e -n "$RATIO > 0.35 and $RATIO < 0.8"
"$TALLY" lease close "$LEASE" >/dev/null
check "the lease closes" wait_for 30 lease_state_is "$LEASE" closed
check "the audit passes" "$TALLY" audit "$LEASE"
e2e_done
