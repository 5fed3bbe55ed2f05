#!/bin/bash
# Asynchronous submission on a real node (--no-vms): POST /v1/tx and
# /v1/txs with "Prefer: respond-async" answer 202 "received" once the
# transaction decodes, say so in Preference-Applied, and the transaction's
# fate is then read from GET /v1/tx/{hash}/status: received, then pending
# and committed, or refused with the code and reason a synchronous submit
# would have given. What does not decode is refused at once. Without the
# header nothing changes. A node stopped with transactions still received
# admits them first: after its restart they are there; one killed
# (SIGKILL) finds them in its inbox.log when it restarts and commits them.
. "$(dirname "$0")/lib.sh"
FORGE=${TALLY_FORGE:-$E2E_ROOT/build/out/tests/forge}
e2e_start_tx_node txasync 7724

tx() { "$FORGE" transfer "$OTHER" "$1" "$2" "${3:-$TALLY_KEY}"; }
# post_async PATH BODY: the HTTP status; answer in $E2E_DIR/body, headers in
# $E2E_DIR/headers.
post_async() {
	curl -s -o "$E2E_DIR/body" -D "$E2E_DIR/headers" -w '%{http_code}' \
		-H 'Content-Type: application/json' -H 'Prefer: respond-async' \
		--data-binary "$2" "$N$1"
}
status_of() { curl -s "$N/v1/tx/$1/status" | jq -r .status; }

N0=$(next_nonce "$TENANT")
OTHER0=$(balance "$OTHER")

# --- one transaction: received, then committed --------------------------------
GOOD=$(tx 100 "$N0")
got=$(post_async /v1/tx "{\"tx\":\"$GOOD\"}")
e2e_log "async POST /v1/tx: HTTP $got: $(cat "$E2E_DIR/body")"
check "a good transfer, Prefer: respond-async: 202 received with its hash" \
	bash -c "[ $got = 202 ] && jq -e '.status == \"received\" and (.hash | test(\"^[0-9a-f]{64}$\"))' '$E2E_DIR/body' >/dev/null"
check "... Preference-Applied: respond-async" grep -qi '^Preference-Applied: respond-async' "$E2E_DIR/headers"
H=$(jq -r .hash "$E2E_DIR/body")
check "... then committed (GET /v1/tx/{hash}/status)" \
	wait_for 30 bash -c "[ \"\$(curl -s '$N/v1/tx/$H/status' | jq -r .status)\" = committed ]"

# --- refused when its turn comes: the status says why -------------------------
N1=$(next_nonce "$TENANT")
BADSIG=$(tx 1 "$N1")
BADSIG=${BADSIG%?}$([ "${BADSIG: -1}" = 0 ] && echo 1 || echo 0)   # the signature's last nibble
got=$(post_async /v1/tx "{\"tx\":\"$BADSIG\"}")
check "a bad signature, async: 202 received (the signature is checked later)" \
	bash -c "[ $got = 202 ] && jq -e '.status == \"received\"' '$E2E_DIR/body' >/dev/null"
HB=$(jq -r .hash "$E2E_DIR/body")
check "... then its status: refused, 400 signature, with the reason" \
	wait_for 30 bash -c "curl -s '$N/v1/tx/$HB/status' | jq -e '.status == \"refused\" and .http_status == 400 and .code == \"signature\" and (.reason | length > 0)'"
check "... and the account's nonce did not move" [ "$(next_nonce "$TENANT")" = "$N1" ]
out=$("$TALLY" tx "$HB" 2>&1) && rc=0 || rc=$?
check "tally tx: refused when the node checked it, with the code, exit 1 (exit $rc: $out)" \
	bash -c "[ $rc = 1 ] && grep -q 'refused when the node checked it (400 signature): ' <<<'$out'"
out=$("$TALLY" tx "$HB" --wait --timeout 20 2>&1) && rc=0 || rc=$?
check "tally tx --wait: ends at once on the refusal, exit 1 (exit $rc: $out)" \
	bash -c "[ $rc = 1 ] && grep -q 'was refused when the node checked it' <<<'$out'"

# --- refused at once: what does not decode ------------------------------------
got=$(post_async /v1/tx '{"tx":"zz"}')
check "not hex, async: 400 encoding at once" \
	bash -c "[ $got = 400 ] && jq -e '.code == \"encoding\"' '$E2E_DIR/body' >/dev/null"
CUT=$(tx 1 "$N1")
CUT=${CUT:0:100}
got=$(post_async /v1/tx "{\"tx\":\"$CUT\"}")
check "a cut transaction, async: 400 at once (got $got $(jq -r .code "$E2E_DIR/body"))" \
	bash -c "[ $got = 400 ] && jq -e '(.error | length > 0)' '$E2E_DIR/body' >/dev/null"
ELSEWHERE=$(TALLY_CHAIN_ID=tally-elsewhere "$FORGE" transfer "$OTHER" 1 "$N1" "$TALLY_KEY")
got=$(post_async /v1/tx "{\"tx\":\"$ELSEWHERE\"}")
check "another chain's transaction, async: 400 chain_id at once" \
	bash -c "[ $got = 400 ] && jq -e '.code == \"chain_id\"' '$E2E_DIR/body' >/dev/null"

# --- a batch, async: each received in its place --------------------------------
A=$(tx 10 "$N1"); B=$(tx 20 "$((N1 + 1))"); C=$(tx 30 "$((N1 + 2))")
got=$(post_async /v1/txs "{\"txs\":[\"$A\",\"zz\",\"$B\",\"$C\"]}")
e2e_log "async POST /v1/txs: HTTP $got: $(jq -c '[.results[].status]' "$E2E_DIR/body")"
check "a batch of 4, async: 200, received 3 and the one not hex refused in its place" \
	bash -c "[ $got = 200 ] && jq -e '[.results[].status] == [\"received\",\"refused\",\"received\",\"received\"] and .results[1].code == \"encoding\" and .accepted == 3 and .refused == 1' '$E2E_DIR/body' >/dev/null"
check "... Preference-Applied: respond-async" grep -qi '^Preference-Applied: respond-async' "$E2E_DIR/headers"
HC=$(jq -r '.results[3].hash' "$E2E_DIR/body")
check "... all three committed in order" \
	wait_for 30 bash -c "[ \"\$(curl -s '$N/v1/tx/$HC/status' | jq -r .status)\" = committed ]"
check "... the other account got 100 + 10 + 20 + 30" [ "$(balance "$OTHER")" = "$((OTHER0 + 160))" ]

metric() { curl -s "$N/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
check "/metrics: 5 received, 4 admitted, 1 refused, none waiting" \
	bash -c "[ '$(metric tally_inbox_received_total) $(metric tally_inbox_admitted_total) $(metric tally_inbox_refused_total) $(metric tally_inbox_waiting)' = '5 4 1 0' ]"

# --- without the header: answered once admitted, as before ---------------------
N2=$(next_nonce "$TENANT")
SYNC=$(tx 1 "$N2")
got=$(curl -s -o "$E2E_DIR/body" -D "$E2E_DIR/headers" -w '%{http_code}' \
	-H 'Content-Type: application/json' --data-binary "{\"tx\":\"$SYNC\"}" "$N/v1/tx")
check "no Prefer header: 202 pending, no Preference-Applied" \
	bash -c "[ $got = 202 ] && jq -e '.status == \"pending\"' '$E2E_DIR/body' >/dev/null && ! grep -qi '^Preference-Applied' '$E2E_DIR/headers'"

# --- a node stopped with transactions received admits them first ---------------
N3=$(next_nonce "$TENANT")
: >"$E2E_DIR/many.txt"
for i in $(seq 0 199); do tx 1 "$((N3 + i))" >>"$E2E_DIR/many.txt"; done
jq -R . "$E2E_DIR/many.txt" | jq -sc '{txs: .[0:200]}' >"$E2E_DIR/req"
got=$(curl -s -o "$E2E_DIR/body" -w '%{http_code}' -H 'Content-Type: application/json' \
	-H 'Prefer: respond-async' --data-binary "@$E2E_DIR/req" "$N/v1/txs")
check "200 transfers in one async batch: all received" \
	bash -c "[ $got = 200 ] && jq -e '.accepted == 200' '$E2E_DIR/body' >/dev/null"
e2e_stop_node TERM
e2e_start_node --no-vms
check "after a stop and a restart, all 200 are the node's (next nonce $N3 + 200)" \
	wait_for 30 bash -c "[ \"\$(curl -s '$N/v1/accounts/$TENANT' | jq .next_nonce)\" = $((N3 + 200)) ]"
check "... and they commit" \
	wait_for 30 bash -c "[ \"\$(curl -s '$N/v1/accounts/$TENANT' | jq .nonce)\" = $((N3 + 200)) ]"

# --- a node killed with transactions received checks them when it restarts ----
N4=$(next_nonce "$TENANT")
"$FORGE" transfer "$OTHER" 1 "$N4" "$TALLY_KEY" 2048 >"$E2E_DIR/kill.txt"
# le BYTES VALUE: VALUE as BYTES little-endian bytes, in hex.
le() { printf "%0$(($1 * 2))x" "$2" | fold -w2 | tac | tr -d '\n'; }
args=()
for i in $(seq 0 7); do
	# The binary body (Content-Type: application/octet-stream): u16 count,
	# then each transaction as u32 length and its bytes.
	{
		le 2 256
		sed -n "$((i * 256 + 1)),$((i * 256 + 256))p" "$E2E_DIR/kill.txt" |
			while read -r t; do le 4 $((${#t} / 2)); printf '%s' "$t"; done
	} | xxd -r -p >"$E2E_DIR/kill$i.bin"
	args+=(${args[0]:+--next} -s -H 'Content-Type: application/octet-stream'
		-H 'Prefer: respond-async' --data-binary "@$E2E_DIR/kill$i.bin" "$N/v1/txs")
done
# Eight batches on one connection, and the node killed at their answer,
# while many still wait for their checks.
curl "${args[@]}" | jq -r '.results[] | select(.status == "received") | .hash' >"$E2E_DIR/kill.hashes"
e2e_stop_node KILL
check "2048 transfers in 8 binary async batches: all received" [ "$(wc -l <"$E2E_DIR/kill.hashes")" = 2048 ]
e2e_start_node --no-vms
check "killed (SIGKILL) and restarted, the node has all 2048 (next nonce $N4 + 2048)" \
	wait_for 30 bash -c "[ \"\$(curl -s '$N/v1/accounts/$TENANT' | jq .next_nonce)\" = $((N4 + 2048)) ]"
# How many were still waiting depends on the machine's speed: logged, not checked.
e2e_log "$(grep -o "[0-9]* received transactions restored from inbox.log" \
	"$E2E_DIR/tallyd.log" || echo "none restored: all were checked before the kill")"
check "... and they commit" \
	wait_for 30 bash -c "[ \"\$(curl -s '$N/v1/accounts/$TENANT' | jq .nonce)\" = $((N4 + 2048)) ]"
# One curl for the 2048 statuses, on one connection.
lost=$(sed "s|.*|$N/v1/tx/&/status|" "$E2E_DIR/kill.hashes" | xargs curl -s |
	jq -s '[.[] | select(.status != "committed")] | length')
check "... every one answered \"received\" is committed ($lost not)" [ "$lost" = 0 ]
e2e_done
