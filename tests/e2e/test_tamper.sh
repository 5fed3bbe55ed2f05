#!/bin/bash
# Tampering: a lease runs to the end of its term; its exported chain audits
# clean (also by a prefix of its id), and each way of doctoring a copy (a changed byte in a usage record,
# a dropped record, two records swapped, a changed header) makes the audit
# fail with exit 1 and name the record or block.
. "$(dirname "$0")/lib.sh"
TAMPER=${TALLY_TAMPER:-$E2E_ROOT/build/out/tests/tamper}
e2e_init tamper 7713
e2e_start_node

LEASE=$("$TALLY" lease create --image tiny --vcpus 1 --memory 128 --duration 14 \
	--deposit 30000000 --wait --timeout 120)
check "the lease runs" lease_state_is "$LEASE" running
check "the lease ends with its term" wait_for 90 lease_state_is "$LEASE" closed
check "close reason is term-ended" [ "$(lease_field "$LEASE" close_reason)" = term-ended ]
NREC=$("$TALLY" usage "$LEASE" --json | jq '.records | length')
check "it has several usage records" [ "$NREC" -ge 4 ]

CHAIN="$E2E_DIR/chain.tally"
check "chain export writes the chain" "$TALLY" chain export "$CHAIN"
check "chain verify accepts the honest export" "$TALLY" chain verify "$CHAIN"
check "chain verify accepts the node's chain" "$TALLY" chain verify --node "$TALLY_NODE"
check "the honest export audits clean" "$TALLY" audit "$LEASE" --chain "$CHAIN"
check "... also given a prefix of the lease id, looked up among the file's leases" \
	bash -c "$TALLY audit ${LEASE:0:8} --chain $CHAIN --json | jq -e '.verified and .lease == \"$LEASE\"'"
rc=0; out=$("$TALLY" audit 00000000 --chain "$CHAIN" 2>&1) || rc=$?
check "a prefix no lease of the file has is refused (exit 1), naming the file ($out)" \
	bash -c "[ $rc -eq 1 ] && grep -q 'no lease id of .*chain.tally starts with .00000000.' <<<\"\$0\"" "$out"

# audit_fails NAME PATTERN TAMPER-ARGS...
audit_fails() {
	local name=$1 pattern=$2 rc=0
	shift 2
	"$TAMPER" "$CHAIN" "$E2E_DIR/bad.tally" "$LEASE" "$@"
	"$TALLY" audit "$LEASE" --chain "$E2E_DIR/bad.tally" --json >"$E2E_DIR/bad.json" || rc=$?
	e2e_log "$name: exit $rc: $(jq -c .errors "$E2E_DIR/bad.json")"
	check "$name: the audit fails with exit 1" [ "$rc" -eq 1 ]
	check "$name: the audit says it is not verified" jq -e '.verified == false' "$E2E_DIR/bad.json"
	check "$name: the error names it" jq -e --arg p "$pattern" \
		'[.errors[] | test($p)] | any' "$E2E_DIR/bad.json"
}

audit_fails "one byte of record 1 changed" "(block [0-9]+|seq 1)" byte 1
audit_fails "record 2 dropped" "seq 2" drop 2
audit_fails "records 1 and 3 swapped" "(seq [13]|block [0-9]+)" swap 1 3
audit_fails "a header changed" "block 3" header 3
# The lease's settled state claimed one unit cheaper, money still adding up:
# its state proof no longer reaches the state root of the block it names.
audit_fails "the lease's state changed" "block [0-9]+: lease ${LEASE:0:16}: the claimed state" state 0
"$TAMPER" "$CHAIN" "$E2E_DIR/bad.tally" "$LEASE" state 0
rc=0
out=$("$TALLY" chain verify "$E2E_DIR/bad.tally" 2>&1) || rc=$?
e2e_log "chain verify of the changed state: exit $rc: $out"
check "the lease's state changed: chain verify fails with exit 1" [ "$rc" -eq 1 ]
check "the lease's state changed: chain verify names the lease and the block" \
	grep -qE "block [0-9]+: lease ${LEASE:0:16}: the claimed state .* is not what the chain committed" <<<"$out"
e2e_done
