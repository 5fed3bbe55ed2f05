#!/bin/bash
# Privacy: a tenant reads its own lease's private details (console, address)
# with a signed request; another tenant can neither read nor close it, nor
# lock the tenant out by flooding the node with signed reads.
. "$(dirname "$0")/lib.sh"
HOSTILE=${TALLY_HOSTILE:-$E2E_ROOT/build/out/tests/hostile}
e2e_init privacy 7716
# The flood below must reach the signed-read checks, not the rate limit.
printf '[api]\nrequests_per_s = 0\n' >>"$E2E_DIR/node/tallyd.conf"
e2e_start_node
MALLORY="$E2E_DIR/mallory.pem"
MPUB=$("$TALLY" key new --key "$MALLORY" 2>/dev/null)
"$TALLY" transfer --to "$MPUB" 1000000 --from-key "$E2E_DIR/node/faucet.pem" >/dev/null
check "the other tenant is funded" \
	wait_for 20 bash -c "[ \$($TALLY account show $MPUB --json | jq .balance) -gt 0 ]"

LEASE=$("$TALLY" lease create --image tiny --vcpus 1 --memory 128 --duration 600 \
	--deposit 30000000 --wait --timeout 120)
check "the lease runs" lease_state_is "$LEASE" running

check "the tenant reads its VM's console" \
	wait_for 120 bash -c "$TALLY lease console $LEASE | grep -q 'tally-guest: init reached'"
rc=0
TALLY_KEY=$MALLORY "$TALLY" lease console "$LEASE" >"$E2E_DIR/peek.out" 2>&1 || rc=$?
e2e_log "another tenant's read: exit $rc: $(cat "$E2E_DIR/peek.out")"
check "another tenant cannot read it (exit 1, HTTP 403)" \
	bash -c "[ $rc -eq 1 ] && grep -q 'HTTP 403' '$E2E_DIR/peek.out' && ! grep -q 'tally-guest' '$E2E_DIR/peek.out'"
# The "replay ring" (issue 12): 4200 signed reads from a self-made key used to
# fill the node's shared replay state and lock the tenant out for minutes.
CHAIN=$(curl -s "$TALLY_NODE/v1/status" | jq -r .genesis_hash)
out=$("$HOSTILE" signed "$E2E_PORT" "$MALLORY" "$CHAIN" 4200 "/v1/leases/$LEASE/private")
e2e_log "4200 signed reads by another key: $(tr '\n' ' ' <<<"$out")"
check "all 4200 of the other key's signed reads are refused with 403" \
	bash -c "[ \"\$(awk '\$2 == 403 { print \$3 }' <<<'$out')\" = 4200 ] && [ \$(wc -l <<<'$out') = 1 ]"
rc=0
"$TALLY" lease console "$LEASE" >"$E2E_DIR/after.out" 2>&1 || rc=$?
check "right after, the tenant still reads its console (exit $rc)" \
	bash -c "[ $rc = 0 ] && grep -q 'tally-guest' '$E2E_DIR/after.out'"
check "... whose hostname line says the tiny image (no cloud-init) has none, not an empty value" \
	grep -q '^hostname - (none: the image has no cloud-init to set one)$' "$E2E_DIR/after.out"
check "an unsigned request cannot read it" \
	bash -c "[ \$(curl -s -o /dev/null -w '%{http_code}' $TALLY_NODE/v1/leases/$LEASE/private) = 401 ]"
rc=0
TALLY_KEY=$MALLORY "$TALLY" lease close "$LEASE" >"$E2E_DIR/close.out" 2>&1 || rc=$?
e2e_log "another tenant's close: exit $rc: $(cat "$E2E_DIR/close.out")"
check "another tenant's close is refused (exit 1)" [ "$rc" -eq 1 ]
sleep 2
check "the lease is still running" lease_state_is "$LEASE" running
"$TALLY" lease close "$LEASE" >/dev/null
check "its own tenant closes it" wait_for 30 lease_state_is "$LEASE" closed
e2e_done
