#!/bin/bash
# One dropped transaction does not stall the others (issue 11, kind 7), the
# issue's example: two leases X and Y of different tenants on one provider,
# blocks every 1.6 s; X's tenant closes X just as the provider's record for X
# waits in the mempool, three times over. The provider's transactions share
# one nonce sequence, so a record of X left out of a block would strand every
# later one, Y's included. Right: X's close takes the record (X closes at the
# close, billed up to it), and Y's records go on at their interval: never
# more than two intervals apart.
. "$(dirname "$0")/lib.sh"
e2e_init stranded 7780
sed -i 's/^block_interval_ms = 500$/block_interval_ms = 1600/' "$E2E_DIR/node/tallyd.conf"
e2e_start_node
INTERVAL_NS=2000000000
new_lease() {
	"$TALLY" lease create --image tiny --vcpus 1 --memory 128 --duration 900 --wait \
		--timeout 180 "$@"
}
log_count() { grep -c "$1" "$E2E_DIR/tallyd.log" || true; }

Y=$(new_lease)
for round in 1 2 3; do
	key="$E2E_DIR/tenant-x$round.pem"
	pub=$("$TALLY" key new --key "$key" 2>/dev/null)
	"$TALLY" transfer --to "$pub" 5000000 >/dev/null
	wait_for 30 bash -c "[ \$(curl -s $TALLY_NODE/v1/accounts/$pub | jq .balance) -gt 0 ]"
	X=$(TALLY_KEY=$key new_lease)
	wait_for 60 bash -c "grep -q 'lease ${X:0:12}: USAGE 1 submitted' '$E2E_DIR/tallyd.log'"
	# The next record of X is submitted: close X while it waits for a block.
	n=$(log_count "lease ${X:0:12}: USAGE")
	wait_for 30 bash -c "[ \$(grep -c 'lease ${X:0:12}: USAGE' '$E2E_DIR/tallyd.log') -gt $n ]"
	TALLY_KEY=$key "$TALLY" lease close "$X" >/dev/null
	check "round $round: X closes" wait_for 60 lease_state_is "$X" closed
	check "round $round: ... by its tenant, billed up to the close" bash -c \
		"[ \"\$(TALLY_KEY=$key $TALLY lease show $X --json | jq -r .close_reason)\" = tenant-closed ]"
	check "round $round: X's audit verifies" env TALLY_KEY="$key" "$TALLY" audit "$X"
done
sleep 4
# Y's records: when each committed (its block's time), never more than two
# intervals apart, before, during and after the closes.
"$TALLY" usage "$Y" --json >"$E2E_DIR/y.json"
GAPS=$(jq '[.records as $r | range(1; $r | length) | $r[.].end_ns - $r[. - 1].end_ns] | max' \
	"$E2E_DIR/y.json")
e2e_log "Y: $(jq '.records | length' "$E2E_DIR/y.json") records, the longest gap $((GAPS / 1000000)) ms"
check "Y's records never stalled: at most two intervals apart" [ "$GAPS" -le $((2 * INTERVAL_NS + 1000000000)) ]
check "no transaction of the provider was stranded behind a nonce gap" \
	bash -c "! grep -q 'is ahead' '$E2E_DIR/tallyd.log'"
check "Y's audit verifies" "$TALLY" audit "$Y"
e2e_done
