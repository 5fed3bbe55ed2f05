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
# CPU across the outage was metered by the pinned programs and billed once:
# the whole lease used at most one vCPU's worth over its wall time.
check "CPU billed over the outage is at most one vCPU's worth" \
	jq -e '(.records | map(.cpu_ns) | add) <= (.records[-1].end_ns - .records[0].start_ns)' \
	"$E2E_DIR/usage.json"
"$TALLY" lease close "$LEASE" >/dev/null
check "the lease closes" wait_for 30 lease_state_is "$LEASE" closed
check "the audit passes" "$TALLY" audit "$LEASE"
e2e_done
