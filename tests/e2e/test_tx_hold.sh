#!/bin/bash
# Early nonces from keys the chain knows nothing of, over HTTP on a real
# node (--no-vms): eight fresh keys each send 2048 transfers ahead of their
# next nonce, the shape that once filled all 16384 places the mempool holds
# early transactions in and left every other account's out-of-order
# transaction refused (409 capacity). Each is refused 409 nonce, saying the
# account is unknown, and nothing is held; an honest account's transfer
# sent before its predecessor is then still held, and both commit.
. "$(dirname "$0")/lib.sh"
FORGE=${TALLY_FORGE:-$E2E_ROOT/build/out/tests/forge}
e2e_start_tx_node txhold 7725
held() { curl -sf "$N/metrics" | awk '/^tally_mempool_held_transactions / { print $2 }'; }

# --- the flood: 8 fresh keys x nonces 1..2048 --------------------------------
: >"$E2E_DIR/flood.txt"
for k in 1 2 3 4 5 6 7 8; do
	"$TALLY" key new --key "$E2E_DIR/fresh$k.pem" >/dev/null 2>&1
	"$FORGE" transfer "$OTHER" 1 1 "$E2E_DIR/fresh$k.pem" 2048 >>"$E2E_DIR/flood.txt"
done
check "16384 early transfers forged" [ "$(wc -l <"$E2E_DIR/flood.txt")" = 16384 ]
set +e
"$TALLY" submit "$E2E_DIR/flood.txt" --json >"$E2E_DIR/flood.json"; rc=$?
set -e
e2e_log "the flood: exit $rc, $(jq -c '{taken, refused, not_sent}' "$E2E_DIR/flood.json")"
check "every one refused, none taken (exit $rc)" \
	jq -e '.taken == 0 and .refused == 16384 and .not_sent == 0' "$E2E_DIR/flood.json"
check "... each 409 nonce" \
	jq -e '[.results[] | .code == "nonce"] | all' "$E2E_DIR/flood.json"
e2e_log "first refusal: $(jq -r '.results[0].error' "$E2E_DIR/flood.json")"
check "... saying the account is unknown, so nothing is held, and its next nonce" \
	jq -e '.results[0].error | contains("next nonce 0") and contains("knows nothing of this account")
		and contains("nothing is held")' "$E2E_DIR/flood.json"
check "nothing held" [ "$(held)" = 0 ]

# --- an honest client's out-of-order transfer is still held ------------------
N0=$(next_nonce "$TENANT")
OTHER0=$(balance "$OTHER")
OUT=$("$FORGE" transfer "$OTHER" 5 "$((N0 + 1))" "$TALLY_KEY" | "$TALLY" submit --json) || true
H1=$(jq -r '.results[0].hash' <<<"$OUT")
check "the tenant's nonce N+1 before N: held ($(jq -c '.results[0]' <<<"$OUT"))" \
	jq -e '.taken == 1 and .results[0].status == "held"' <<<"$OUT"
check "... its status says held" \
	bash -c "curl -s '$N/v1/tx/$H1/status' | jq -e '.status == \"held\"' >/dev/null"
check "one held" [ "$(held)" = 1 ]
OUT=$("$FORGE" transfer "$OTHER" 7 "$N0" "$TALLY_KEY" | "$TALLY" submit --json)
check "then nonce N: pending" jq -e '.results[0].status == "pending"' <<<"$OUT"
"$TALLY" tx "$H1" --wait --timeout 30 >/dev/null
check "both committed: the other account got 12" [ "$(balance "$OTHER")" = "$((OTHER0 + 12))" ]
check "nothing held" [ "$(held)" = 0 ]
check "the node still answers" curl -sf "$N/healthz"
e2e_done
