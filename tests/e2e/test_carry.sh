#!/bin/bash
# A lease's bill as the tenant reads it, when its records are worth fractions
# of a micro-unit (docs/FORMATS.md section 11: each record's remainders are
# carried to the next). On an API-only node (--no-vms, announcing itself) the
# lease is started and billed with records forged by the node's key, so
# their numbers are exact:
#   - 1 vCPU, 128 MiB, 20 per vCPU-second, 5 per GiB-second, 2 s records of
#     10 ms of CPU (0.2 micro-units) and 1.25 micro-units of memory each;
#   - records 4 and 5 wait 200 ms for a CPU (10 %, above the 5 % allowed):
#     record 4's credit of 40 % of 2 is 0.8, carried, so it shows no credit,
#     and record 5's 0.4 + 0.8 gives 1.
# The lease's charged is 7 and its credit 1; the API's per-record nets and
# tally usage's add up to that (floored per record, they gave 6 and 0);
# record 4 is marked (sla) though its own credit is 0; tally usage --follow
# prints the records that arrive between its polls once each; the audit
# verifies the bill and recomputes the carries.
. "$(dirname "$0")/lib.sh"
FORGE=${TALLY_FORGE:-$E2E_ROOT/build/out/tests/forge}
e2e_init carry 7727
printf '[provider]\nannounce = yes\n' >>"$E2E_DIR/node/tallyd.conf"
e2e_start_node --no-vms
NODE=$("$TALLY" status --json | jq -r .node)
export TALLY_CHAIN_ID TALLY_GENESIS_HASH
TALLY_CHAIN_ID=$(curl -s "$TALLY_NODE/v1/status" | jq -r .chain_id)
TALLY_GENESIS_HASH=$(curl -s "$TALLY_NODE/v1/status" | jq -r .genesis_hash)
node_nonce() { curl -s "$TALLY_NODE/v1/accounts/$NODE" | jq .next_nonce; }
post_tx() {
	curl -s -o "$E2E_DIR/post.json" -w '%{http_code}' -H 'Content-Type: application/json' \
		-d "{\"tx\":\"$1\"}" "$TALLY_NODE/v1/tx"
}
lease_json() { curl -s "$TALLY_NODE/v1/leases/$LEASE"; }
next_seq_is() { [ "$(lease_json | jq .next_seq)" = "$1" ]; }
S=1000000000
# record SEQ END_NS DELAY_NS: the next record, up to END_NS, posted once its
# end is less than 4 s ahead of now (a block refuses one 5 s ahead), and
# waited for until it commits.
record() {
	local j start prev
	j=$(lease_json)
	start=$(json_int last_end_ns <<<"$j")
	prev=$(jq -r .last_usage_hash <<<"$j")
	[ "$1" -eq 0 ] && prev=0
	while [ $(($2 - $(date +%s%N))) -gt $((4 * S)) ]; do sleep 0.2; done
	code=$(post_tx "$("$FORGE" usage "$LEASE" "$1" "$prev" "$start" "$2" $((10 * S / 1000)) 128 \
		"$(node_nonce)" "$E2E_DIR/node/node.pem" "$3")")
	[ "$code" = 202 ] || e2e_log "record $1: $code $(cat "$E2E_DIR/post.json")"
	wait_for 30 next_seq_is $(($1 + 1)) || e2e_log "record $1 did not commit"
}

LEASE=$("$TALLY" lease create --provider "$NODE" --no-ssh-key --vcpus 1 --memory 128 \
	--duration 600 --credit-ppm 400000 --max-delay-ppm 50000 2>"$E2E_DIR/create.err")
sed 's/^/# /' "$E2E_DIR/create.err"
check "the lease opens" wait_for 30 bash -c "[ \"\$(curl -s $TALLY_NODE/v1/leases/$LEASE | jq -r .state)\" = opened ]"
code=$(post_tx "$("$FORGE" start "$LEASE" "$(node_nonce)" "$E2E_DIR/node/node.pem")")
check "its provider's key starts it ($code)" wait_for 30 \
	bash -c "[ \"\$(curl -s $TALLY_NODE/v1/leases/$LEASE | jq -r .state)\" = running ]"
STARTED=$(lease_json | json_int started_ns)
for i in 0 1 2 3; do record $i $((STARTED + (i + 1) * 2 * S)) 0; done
"$TALLY" usage "$LEASE" --follow >"$E2E_DIR/follow.out" 2>"$E2E_DIR/follow.err" &
FOLLOW=$!
trap 'kill $FOLLOW 2>/dev/null || true; e2e_cleanup' EXIT
for i in 4 5; do record $i $((STARTED + (i + 1) * 2 * S)) $((200 * S / 1000)); done

L=$(lease_json)
e2e_log "after 6 records: $(jq -c '{charged, sla_credits, next_seq, carry}' <<<"$L")"
check "the lease was charged 7 for 1.2 of CPU and 7.5 of memory, less a credit of 1" \
	[ "$(jq -c '[.charged, .sla_credits]' <<<"$L")" = "[7,1]" ]
check "its carries hold what is owed below one micro-unit" \
	[ "$(jq -c '.carry' <<<"$L")" = '{"cpu":200000000,"mem":512000000000,"gpu":0,"credit":200000}' ]
API=$(curl -s "$TALLY_NODE/v1/leases/$LEASE/usage")
e2e_log "the API's charges: $(jq -c '[.records[].charge | [.gross, .sla_breached, .sla_credit, .net]]' <<<"$API")"
check "the API's per-record nets add up to the lease's charged" \
	[ "$(jq '[.records[].charge.net] | add' <<<"$API")" = 7 ]
check "... and its credits to the lease's sla_credits" \
	[ "$(jq '[.records[].charge.sla_credit] | add' <<<"$API")" = 1 ]
check "record 4 breached with its credit carried, record 5 credited 1 (0.4 + 0.8)" \
	[ "$(jq -c '[.records[4,5].charge | [.sla_breached, .sla_credit]]' <<<"$API")" = "[[1,0],[1,1]]" ]
U=$("$TALLY" usage "$LEASE" --json)
check "tally usage's records add up to the lease's charged" \
	[ "$(jq '[.records[].charge] | add' <<<"$U")" = 7 ]
check "... as its totals say, with the credit" \
	[ "$(jq -c '[.totals.charged, .totals.sla_credits]' <<<"$U")" = "[7,1]" ]
"$TALLY" usage "$LEASE" >"$E2E_DIR/usage.out"
sed 's/^/# /' "$E2E_DIR/usage.out"
check "tally usage marks record 4, a breach whose own credit is 0, (sla)" \
	grep -qE '^ +4 .*\(sla\)$' "$E2E_DIR/usage.out"
check "... and no record without delay" bash -c "! grep -qE '^ +[0-3] .*\(sla\)' '$E2E_DIR/usage.out'"

# The tenant closes, after record 5's end (a close before it would close the
# lease at once); the provider's last record, up to the close, closes it.
while [ "$(date +%s%N)" -lt $((STARTED + 13 * S)) ]; do sleep 0.2; done
"$TALLY" lease close "$LEASE" >/dev/null
check "the lease is closing" wait_for 30 \
	bash -c "[ \"\$(curl -s $TALLY_NODE/v1/leases/$LEASE | jq -r .state)\" = closing ]"
record 6 "$(lease_json | json_int closing_ns)" 0
check "the last record closes it" wait_for 30 \
	bash -c "[ \"\$(curl -s $TALLY_NODE/v1/leases/$LEASE | jq -r .state)\" = closed ]"
CHARGED=$(lease_json | jq .charged)
check "tally usage --follow ends with the lease" wait_for 30 bash -c "! kill -0 $FOLLOW"
kill "$FOLLOW" 2>/dev/null || true     # one that did not would wait for the node for good
sed 's/^/# /' "$E2E_DIR/follow.out"
check "--follow printed each record once, those that came between its polls too" \
	[ "$(grep -oE '^ +[0-9]+ ' "$E2E_DIR/follow.out" | tr -d ' ' | paste -sd,)" = 0,1,2,3,4,5,6 ]
check "... and the lease's charged ($CHARGED) as its total" \
	grep -q "^charged $(awk -v c="$CHARGED" 'BEGIN { printf "%d.%06d", c / 1000000, c % 1000000 }'), " \
	"$E2E_DIR/follow.out"
check "the API's nets still add up to the lease's charged" \
	[ "$(curl -s "$TALLY_NODE/v1/leases/$LEASE/usage" | jq '[.records[].charge.net] | add')" = "$CHARGED" ]
check "the audit verifies the bill" "$TALLY" audit "$LEASE"
check "... and its recomputed carries are the lease's" \
	[ "$("$TALLY" audit "$LEASE" --json | jq -c .bill.carry)" = "$(lease_json | jq -c .carry)" ]
e2e_done
