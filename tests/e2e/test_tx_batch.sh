#!/bin/bash
# POST /v1/txs on a real node (--no-vms): good and bad transactions in one
# batch each get the answer POST /v1/tx would give them, in their place, and
# only the good ones move money; a malformed or oversize batch is refused
# whole with a clear error, and nothing of it is admitted (a good
# transaction inside it included).
. "$(dirname "$0")/lib.sh"
FORGE=${TALLY_FORGE:-$E2E_ROOT/build/out/tests/forge}
e2e_start_tx_node txbatch 7723
PAUPER=$("$TALLY" key new --key "$E2E_DIR/pauper.pem" 2>/dev/null)

# post BODY: the status of POST /v1/txs; the answer in $E2E_DIR/body.
post() {
	curl -s -o "$E2E_DIR/body" -w '%{http_code}' -H 'Content-Type: application/json' \
		--data-binary "@$1" "$N/v1/txs"
}
tx() { "$FORGE" transfer "$OTHER" "$1" "$2" "${3:-$TALLY_KEY}"; }
# txs HEX...: a {"txs": [...]} body in $E2E_DIR/req.
txs() { printf '%s\n' "$@" | jq -R . | jq -sc '{txs: .}' >"$E2E_DIR/req"; }

N0=$(next_nonce "$TENANT")
OTHER0=$(balance "$OTHER")
e2e_log "tenant's next nonce $N0, the other account holds ${OTHER0}"

# --- a malformed batch admits nothing, its good transaction included --------
GOOD=$(tx 100 "$N0")
refused() {
	local name=$1 want=$2 code=$3 got
	got=$(post "$E2E_DIR/req")
	check "$name: $want $code (got $got: $(head -c 200 "$E2E_DIR/body"))" \
		bash -c "[ '$got' = '$want' ] && jq -e '.code == \"$code\" and (.error | length > 0)' '$E2E_DIR/body' >/dev/null"
}
printf 'not json {' >"$E2E_DIR/req"
refused "not JSON" 400 invalid
printf '{"txs": []}' >"$E2E_DIR/req"
refused "an empty batch" 400 invalid
printf '{"txs": "%s"}' "$GOOD" >"$E2E_DIR/req"
refused "txs not an array" 400 invalid
printf '{"txs": ["%s", 7]}' "$GOOD" >"$E2E_DIR/req"
refused "a good transaction and a number" 400 invalid
printf '{"txs": ["%s"], "more": 1}' "$GOOD" >"$E2E_DIR/req"
refused "a key besides txs" 400 invalid
printf '{"txs": ["%s"], "txs": ["%s"]}' "$GOOD" "$GOOD" >"$E2E_DIR/req"
refused "txs twice" 400 invalid
# 257 short entries: more than a batch holds, under the body limit.
{ printf '{"txs": ["%s"' "$GOOD"; for _ in $(seq 256); do printf ',"00"'; done; printf ']}'; } \
	>"$E2E_DIR/req"
refused "257 transactions" 400 too_long
check "... the error says the limit" jq -e '.error | contains("256")' "$E2E_DIR/body"
printf '{"txs": ["%s", "%s"]}' "$GOOD" "$(head -c 70000 /dev/zero | tr '\0' a)" >"$E2E_DIR/req"
refused "a body over 64 KiB" 413 too_large
check "nothing of the refused batches was admitted (next nonce still $N0)" \
	[ "$(next_nonce "$TENANT")" = "$N0" ]

# --- one batch, each answered in its place ----------------------------------
BADSIG=$(tx 1 "$((N0 + 5))")
BADSIG=${BADSIG%?}$([ "${BADSIG: -1}" = 0 ] && echo 1 || echo 0)   # the signature's last nibble
GAP=$(tx 300 "$((N0 + 2))")                         # held until N0+1 arrives ...
NEXT=$(tx 200 "$((N0 + 1))")                        # ... later in the same batch
FAR=$(tx 1 "$((N0 + 3000))")                        # beyond what the node holds (2048)
BROKE=$(tx 1 0 "$E2E_DIR/pauper.pem")               # an account with nothing
txs "$GOOD" "$BADSIG" "$GAP" "$NEXT" "$GOOD" "zz" "$FAR" "$BROKE"
got=$(post "$E2E_DIR/req")
e2e_log "a batch of 8: HTTP $got: $(jq -c '[.results[] | .status + (if .code then ":" + .code else "" end)]' "$E2E_DIR/body")"
check "a mixed batch: 200" [ "$got" = 200 ]
r() { jq -r ".results[$1] | [.status, (.http_status // \"-\"), (.code // \"-\")] | join(\" \")" "$E2E_DIR/body"; }
check "1: a good transfer is pending (got $(r 0))" [ "$(r 0)" = "pending - -" ]
check "... with its hash" jq -e '.results[0].hash | test("^[0-9a-f]{64}$")' "$E2E_DIR/body"
check "2: a bad signature: refused 400 signature (got $(r 1))" [ "$(r 1)" = "refused 400 signature" ]
check "3: a nonce ahead: held (got $(r 2))" [ "$(r 2)" = "held - -" ]
check "4: the missing nonce: pending (got $(r 3))" [ "$(r 3)" = "pending - -" ]
check "5: the first transfer again: refused 409 replay (got $(r 4))" [ "$(r 4)" = "refused 409 replay" ]
check "6: not hex: refused 400 encoding (got $(r 5))" [ "$(r 5)" = "refused 400 encoding" ]
check "7: a nonce too far ahead: refused 409 nonce (got $(r 6))" [ "$(r 6)" = "refused 409 nonce" ]
check "8: an empty account: refused 402 balance (got $(r 7))" [ "$(r 7)" = "refused 402 balance" ]
check "every refusal says why" \
	jq -e '[.results[] | select(.status == "refused") | .error | length > 0] | all' "$E2E_DIR/body"
check "accepted 3, refused 5" jq -e '.accepted == 3 and .refused == 5' "$E2E_DIR/body"
check "the tenant's next nonce moved by 3" [ "$(next_nonce "$TENANT")" = "$((N0 + 3))" ]
wait_for 20 bash -c "[ \"\$(curl -s '$N/v1/accounts/$TENANT' | jq .nonce)\" = $((N0 + 3)) ]"
check "the three good transfers committed: the other account got 600" \
	[ "$(balance "$OTHER")" = "$((OTHER0 + 600))" ]
# --- what waits outside the queue is counted in the status ------------------
NH=$(next_nonce "$TENANT")
LATE=$(tx 1 "$((NH + 1))")
txs "$LATE"
got=$(post "$E2E_DIR/req")
check "a lone transaction one nonce ahead: held (HTTP $got)" \
	jq -e '.results[0].status == "held"' "$E2E_DIR/body"
check "GET /v1/status counts it held, none in the inbox" \
	bash -c "curl -s '$N/v1/status' | jq -e '.held == 1 and .inbox == 0' >/dev/null"
"$TALLY" status >"$E2E_DIR/status.out"
check "tally status says one is held: $(grep '^mempool' "$E2E_DIR/status.out")" \
	grep -q '^mempool .*, 1 held for an earlier nonce$' "$E2E_DIR/status.out"
txs "$(tx 1 "$NH")"
post "$E2E_DIR/req" >/dev/null
wait_for 20 bash -c "[ \"\$(curl -s '$N/v1/accounts/$TENANT' | jq .nonce)\" = $((NH + 2)) ]"
check "the missing nonce sent: both committed, nothing held" \
	bash -c "curl -s '$N/v1/status' | jq -e '.held == 0' >/dev/null"

# --- tally submit: a file of signed transactions, in batches ----------------
N1=$(next_nonce "$TENANT")
OTHER1=$(balance "$OTHER")
{
	echo "# 300 transfers of 1, then a line that is not a transaction"
	for i in $(seq 0 299); do tx 1 "$((N1 + i))"; done
	echo
	echo "zz"
} >"$E2E_DIR/many.txt"
set +e
"$TALLY" submit "$E2E_DIR/many.txt" --wait --timeout 60 >"$E2E_DIR/submit.out" 2>"$E2E_DIR/submit.err"
rc=$?
set -e
e2e_log "tally submit: exit $rc; $(tail -n 1 "$E2E_DIR/submit.err")"
check "tally submit with one bad line: exit 1" [ "$rc" = 1 ]
check "... a line for each of the 301 transactions" [ "$(wc -l <"$E2E_DIR/submit.out")" = 301 ]
check "... 300 pending and committed" \
	[ "$(grep -cE '^[0-9a-f]{64}  pending, committed$' "$E2E_DIR/submit.out")" = 300 ]
check "... the bad one refused in its place, naming its line (303)" \
	grep -qE '^-  +refused \(line 303\): .*hex' "$E2E_DIR/submit.out"
check "... and the count on stderr, of the lines sent, the bad one apart" \
	grep -q "300 of 300 sent taken by the node; 1 refused here" "$E2E_DIR/submit.err"
check "the 300 moved 300 units (more than one batch of 256)" \
	[ "$(balance "$OTHER")" = "$((OTHER1 + 300))" ]
N2=$(next_nonce "$TENANT")
OUT=$(tx 1 "$N2" | "$TALLY" submit --json)
check "tally submit from standard input, --json: taken 1, refused 0, its hash" \
	jq -e '.taken == 1 and .refused == 0 and (.results[0].hash | test("^[0-9a-f]{64}$"))' <<<"$OUT"
# A line longer than any transaction (above the API's 64 KiB body limit
# too) is refused here, in its place; the lines around it go.
N3=$(next_nonce "$TENANT")
{ tx 1 "$N3"; head -c 70000 /dev/zero | tr '\0' a; echo; tx 1 "$((N3 + 1))"; } >"$E2E_DIR/long.txt"
set +e
"$TALLY" submit "$E2E_DIR/long.txt" --json >"$E2E_DIR/long.json"; rc=$?
set -e
check "a 70000-character line: refused in its place as too long, the two around it taken (exit $rc)" \
	bash -c "[ $rc = 1 ] && jq -e '.taken == 2 and .refused == 1 and .not_sent == 0 and
		 (.results[1] | .code == \"too_long\" and .line == 2) and
		 (.results[0].status == \"pending\") and (.results[2].status == \"pending\") and
		 (has(\"error\") | not)' '$E2E_DIR/long.json' >/dev/null"
# Lines that are not hex of a transaction (bytes that are not UTF-8, an odd
# number of digits, a NUL byte, letters) are refused here, in their places,
# naming the line: not sent, so the transaction after them is taken (bytes
# that are not UTF-8 in a JSON body had the node refuse the whole batch).
N4=$(next_nonce "$TENANT")
{ printf 'ab\xff\nabc\n00\000\nzz\n'; tx 1 "$N4"; } >"$E2E_DIR/bad.txt"
set +e
"$TALLY" submit "$E2E_DIR/bad.txt" --json >"$E2E_DIR/bad.json" 2>"$E2E_DIR/bad.err"; rc=$?
"$TALLY" submit "$E2E_DIR/bad.txt" >"$E2E_DIR/bad.out" 2>&1
set -e
e2e_log "tally submit of 4 bad lines and a transaction: exit $rc: $(cat "$E2E_DIR/bad.json" "$E2E_DIR/bad.err")"
check "4 lines that are not hex: each refused in its place, the transaction after them taken (exit $rc)" \
	bash -c "[ $rc = 1 ] && jq -e '.taken == 1 and .refused == 4 and .not_sent == 0 and
		 ([.results[0:4][] | .code] == [\"encoding\", \"encoding\", \"encoding\", \"encoding\"]) and
		 ([.results[].line] == [1, 2, 3, 4, 5]) and .results[4].status == \"pending\" and
		 (has(\"error\") | not)' '$E2E_DIR/bad.json' >/dev/null"
check "... each named: not UTF-8, odd length, a NUL byte, not a hex digit" \
	bash -c "grep -q 'refused (line 1): line 1 is not hex of a transaction: byte 0xff at column 3' '$E2E_DIR/bad.out' &&
		 grep -q 'refused (line 2): line 2 is not hex of a transaction: an odd number of hex digits (3)' '$E2E_DIR/bad.out' &&
		 grep -q 'refused (line 3): line 3 is not hex of a transaction: it holds a NUL byte' '$E2E_DIR/bad.out' &&
		 grep -q \"refused (line 4): line 4 is not hex of a transaction: 'z' at column 1\" '$E2E_DIR/bad.out'"
# The same transaction sent again is refused in its place, named by its
# hash; refusals are no "error" (that is for a batch with no answer).
H0=$(jq -r '.results[0].hash' "$E2E_DIR/long.json")
OUT=$(head -n 1 "$E2E_DIR/long.txt" | "$TALLY" submit --json) && rc=0 || rc=$?
check "a transaction sent again: exit 1, refused with its hash, no error key (exit $rc)" \
	bash -c "[ $rc = 1 ] && jq -e '.refused == 1 and .results[0].status == \"refused\" and
		 .results[0].hash == \"$H0\" and (has(\"error\") | not)' >/dev/null" <<<"$OUT"
head -n 1 "$E2E_DIR/long.txt" | "$TALLY" submit >"$E2E_DIR/again.out" 2>/dev/null || true
check "... the human line too starts with its hash" grep -q "^$H0  refused (line 1)" "$E2E_DIR/again.out"
out=$("$TALLY" tx "$H0" --timeout 5 2>&1) && rc=0 || rc=$?
check "tally tx --timeout without --wait: exit 2, saying so (exit $rc)" \
	bash -c "[ $rc = 2 ] && grep -q 'timeout is for --wait'" <<<"$out"
"$TALLY" tx "$H0" --wait --timeout 30 >/dev/null
UP=$(tr a-f A-F <<<"$H0")
check "GET /v1/tx/{hash in capitals} and its status echo the hash in lowercase" \
	bash -c "curl -s '$N/v1/tx/$UP/status' | jq -e '.hash == \"$H0\"' >/dev/null &&
		 curl -s '$N/v1/tx/$UP' | jq -e '.hash == \"$H0\"' >/dev/null"
# A node that does not answer: nothing is lost silently, the lines not
# sent are named.
set +e
OUT=$("$TALLY" submit "$E2E_DIR/many.txt" --node http://127.0.0.1:1 --json); rc=$?
"$TALLY" submit "$E2E_DIR/many.txt" --node http://127.0.0.1:1 >/dev/null 2>"$E2E_DIR/submit.err"
set -e
check "tally submit to a node that does not answer: exit 2, all 301 named not sent" \
	bash -c "[ $rc = 2 ] && jq -e '.not_sent == 301 and .taken == 0 and (.error | test(\"cannot reach\"))' >/dev/null" <<<"$OUT"
check "... and says so on stderr" grep -q "lines 2 to 303 not sent" "$E2E_DIR/submit.err"
set +e
"$TALLY" submit "$E2E_DIR/absent.txt" 2>"$E2E_DIR/submit.err"; rc=$?
set -e
check "tally submit of a file that is not there: exit 2, saying so" \
	bash -c "[ $rc = 2 ] && grep -q 'cannot open .*absent.txt' '$E2E_DIR/submit.err'"
rc=0
out=$("$TALLY" status --node "https://${N#http://}" 2>&1) || rc=$?
e2e_log "https:// to the plain port: exit $rc: $out"
check "https:// to the node's plain HTTP port: exit 2, saying to use http://" \
	bash -c "[ $rc = 2 ] && grep -q 'TLS.*; if its API is plain HTTP, use http://' <<<'$out'"
check "the node still answers" curl -sf "$N/healthz"
e2e_done
