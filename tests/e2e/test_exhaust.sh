#!/bin/bash
# Escrow exhaustion: a deposit that covers a few intervals. The VM stops, the
# lease closes as escrow-exhausted, and the provider is paid exactly the
# metered usage.
. "$(dirname "$0")/lib.sh"
e2e_init exhaust 7714
e2e_start_node
NODE=$("$TALLY" status --json | jq -r .node)
provider_balance() { "$TALLY" account show "$NODE" --json | jq .balance; }
P0=$(provider_balance)
T0=$("$TALLY" account show --json | jq .balance)

# 1 vCPU and 128 MiB at the node's prices cost at most about 41 micro-units
# per 2 s interval: 200 covers a handful.
LEASE=$("$TALLY" lease create --image tiny --vcpus 1 --memory 128 --duration 600 \
	--deposit 200 --wait --timeout 120)
check "the lease runs" lease_state_is "$LEASE" running
DOMAIN="${E2E_PREFIX}${LEASE:0:12}"
check "the lease closes before its term" wait_for 120 lease_state_is "$LEASE" closed
check "close reason is escrow-exhausted" \
	[ "$(lease_field "$LEASE" close_reason)" = escrow-exhausted ]
check "the VM is stopped and removed" \
	wait_for 30 bash -c "! virsh -q -c qemu:///system list --all --name | grep -q '^$DOMAIN'"
CHARGED=$(lease_field "$LEASE" charged)
USAGE=$("$TALLY" usage "$LEASE" --json)
SUM=$(jq '[.records[].paid] | add' <<<"$USAGE")
e2e_log "charged $CHARGED, sum of what the records paid $SUM, deposit 200"
check "the provider was paid exactly the metered usage" [ "$CHARGED" = "$SUM" ]
check "tally usage's total is the lease's charged" \
	[ "$(jq .totals.charged <<<"$USAGE")" = "$CHARGED" ]
check "the provider's balance grew by exactly that" [ "$(provider_balance)" -eq $((P0 + CHARGED)) ]
check "the tenant paid exactly that and got the rest back" \
	[ "$("$TALLY" account show --json | jq .balance)" -eq $((T0 - CHARGED)) ]
check "nothing is left in escrow" [ "$(lease_field "$LEASE" escrow)" -eq 0 ]
check "the audit verifies the bill" "$TALLY" audit "$LEASE"
e2e_done
