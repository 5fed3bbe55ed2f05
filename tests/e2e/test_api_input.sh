#!/bin/bash
# Bad network input, on a --no-vms devnet: malformed requests get a 4xx with a
# JSON error body (valid whatever bytes were sent) and never hurt the node; a
# signed private read is refused when it is stale, replayed or forged; random
# bytes in paths, queries and headers never get a 5xx.
. "$(dirname "$0")/lib.sh"
HOSTILE=${TALLY_HOSTILE:-$E2E_ROOT/build/out/tests/hostile}
e2e_init api 7717
# Every request must reach the handlers here: no per-address rate limit.
printf '[api]\nrequests_per_s = 0\n' >>"$E2E_DIR/node/tallyd.conf"
e2e_start_node --no-vms
N=$TALLY_NODE

# code METHOD PATH [BODY]: the HTTP status of one request.
code() {
	if [ $# -ge 3 ]; then
		curl -s -o "$E2E_DIR/body" -w '%{http_code}' -X "$1" -H 'Content-Type: application/json' \
			--data-binary "$3" "$N$2"
	else
		curl -s --path-as-is -o "$E2E_DIR/body" -w '%{http_code}' -X "$1" "$N$2"
	fi
}
json_error() { jq -e '.error | length > 0' "$E2E_DIR/body" >/dev/null; }
# refused NAME EXPECTED-STATUS METHOD PATH [BODY]
refused() {
	local name=$1 want=$2 got
	shift 2
	got=$(code "$@")
	check "$name: $want with a JSON error (got $got)" \
		bash -c "[ '$got' = '$want' ] && jq -e '.error | length > 0' '$E2E_DIR/body'"
}

# The issue's table: bytes that are not UTF-8 in what the error quotes.
refused "GET /%ff" 404 GET '/%ff'
check "GET /%ff: the error quotes the byte escaped" \
	bash -c "jq -e '.code == \"not_found\" and (.error | contains(\"\\\\xff\"))' '$E2E_DIR/body'"
refused "GET /v1/accounts/%ff" 400 GET '/v1/accounts/%ff'
check "GET /v1/accounts/%ff: code encoding" jq -e '.code == "encoding"' "$E2E_DIR/body"
EURO=$(printf '\xe2\x82\xac%.0s' $(seq 166))
refused "GET / and 166 euro signs" 404 GET "/$EURO"
check "166 euro signs: the message is cut on a character boundary and marked" \
	bash -c "jq -e '.error | endswith(\"...\") and (test(\"^no such path: /(\u20ac)+\\\\.\\\\.\\\\.$\"))' '$E2E_DIR/body'"
refused "GET / and 165 euro signs" 404 GET "/${EURO:3}"
refused "a control character in the path" 404 GET '/a%0ab'
check "the control character is escaped, not a line break" \
	bash -c "jq -e '.error | contains(\"\\\\x0a\")' '$E2E_DIR/body'"
refused "an overlong UTF-8 slash" 404 GET '/v1/%c0%af'
refused "a surrogate in a query value" 400 GET '/v1/leases?state=%ed%a0%80'

refused "unknown path" 404 GET /v1/nothing
refused "wrong method" 405 DELETE /v1/status
refused "empty body" 400 POST /v1/tx ''
refused "not JSON" 400 POST /v1/tx 'not json {'
refused "JSON without tx" 400 POST /v1/tx '{"x":1}'
refused "tx not hex" 400 POST /v1/tx '{"tx":"zz"}'
refused "odd-length hex" 400 POST /v1/tx '{"tx":"abc"}'
refused "truncated transaction" 400 POST /v1/tx '{"tx":"0103"}'
refused "garbage transaction" 400 POST /v1/tx "{\"tx\":\"$(head -c 300 /dev/urandom | od -An -tx1 | tr -d ' \n')\"}"
refused "duplicate keys" 400 POST /v1/tx '{"tx":"00","tx":"00"}'
refused "body over 64 KiB" 413 POST /v1/tx "{\"tx\":\"$(head -c 70000 /dev/zero | tr '\0' 'a')\"}"
refused "bad account key" 400 GET /v1/accounts/xyz
refused "bad lease id" 400 GET /v1/leases/123
refused "unknown lease" 404 GET "/v1/leases/$(printf '0%.0s' $(seq 64))"
refused "proof of a bad lease id" 400 GET /v1/leases/123/proof
refused "proof of an unknown lease" 404 GET "/v1/leases/$(printf '0%.0s' $(seq 64))/proof"
refused "bad height" 400 GET /v1/blocks/-1
refused "height with junk" 400 GET /v1/blocks/1x
refused "a height above 2^64 - 1" 400 GET /v1/blocks/99999999999999999999999
check "a height above 2^64 - 1 is named so, not read as another height" \
	jq -e '.error == "'"'"'99999999999999999999999'"'"' is not a height (above 2^64 - 1)"' "$E2E_DIR/body"
refused "a height with a leading zero" 400 GET /v1/blocks/01
# A %00 is not decoded into a NUL that would end the string: "1%00zz" is no
# height, though its first character is one.
refused "a height, %00 and more" 400 GET '/v1/blocks/1%00zz'
refused "a query height, %00 and more" 400 GET '/v1/validators?height=1%00abc'
refused "a query from, %00 and more" 400 GET '/v1/blocks?from=1%00junk&to=1'
refused "an index that is not canonical decimal" 400 GET '/v1/proofs/inclusion?index=00&size=1'
check "... names the argument" jq -e '.code == "encoding" and (.error | startswith("index "))' \
	"$E2E_DIR/body"
got=$(code GET '/v1/blocks?from=1&to=18446744073709551615')
check "blocks from 1 to 2^64 - 1: a range, not an overflow (got $got)" \
	bash -c "[ '$got' = 200 ] && jq -e '.blocks | type == \"array\"' '$E2E_DIR/body'"
refused "a negative validator set height" 400 GET '/v1/validators?height=-3'
check "a negative height is not a number, not one above the tip" \
	jq -e '.code == "encoding" and (.error | test("decimal integer"))' "$E2E_DIR/body"
refused "block beyond the tip" 404 GET /v1/blocks/999999
refused "proof without size" 400 GET '/v1/proofs/inclusion?index=0'
refused "proof index beyond size" 400 GET '/v1/proofs/inclusion?index=5&size=1'
refused "consistency old > new" 400 GET '/v1/proofs/consistency?old=3&new=1'
refused "negative query number" 400 GET '/v1/blocks?from=-1'
refused "lease filter with a bad state" 400 GET '/v1/leases?state=sleeping'
refused "a query argument given twice" 400 GET '/v1/blocks?from=1&from=2'
refused "too many query arguments" 400 GET "/v1/blocks?$(printf 'a%d=1&' $(seq 40))"
refused "path traversal" 404 GET '/v1/../v1/status'
refused "encoded path traversal" 404 GET '/v1/%2e%2e/v1/status'
refused "an odd method" 405 BREW /v1/status
refused "a known method where it does not belong" 405 PUT /v1/tx
refused "an odd method on an unknown path" 404 PATCH /etc/passwd
LEASE0=$(printf 'a%.0s' $(seq 64))
refused "private read without signature" 401 GET "/v1/leases/$LEASE0/private"
hdrs=(-H "X-Tally-Key: $TENANT" -H "X-Tally-Timestamp: $(( $(date +%s) - 3600 ))"
	-H "X-Tally-Nonce: 00112233445566778899aabbccddeeff" -H "X-Tally-Signature: $(printf '0%.0s' $(seq 128))")
got=$(curl -s -o "$E2E_DIR/body" -w '%{http_code}' "${hdrs[@]}" "$N/v1/leases/$LEASE0/private")
check "private read with a stale timestamp: 401 (got $got)" [ "$got" = 401 ]
hdrs[3]="X-Tally-Timestamp: $(date +%s)"
got=$(curl -s -o "$E2E_DIR/body" -w '%{http_code}' "${hdrs[@]}" "$N/v1/leases/$LEASE0/private")
check "private read with a forged signature: 401 (got $got)" [ "$got" = 401 ]
got=$(curl -s -o "$E2E_DIR/body" -w '%{http_code}' "${hdrs[@]}" -H "X-Tally-Key: $TENANT" \
	"$N/v1/leases/$LEASE0/private")
check "private read with X-Tally-Key twice: 400 (got $got)" \
	bash -c "[ '$got' = 400 ] && jq -e '.error | contains(\"more than once\")' '$E2E_DIR/body'"

# Raw requests that curl would not send: what a proxy in front could read
# differently is refused; what the HTTP library cannot parse is a 4xx.
# raw NAME WANT-STATUS REQUEST (printf %b escapes)
raw() {
	local name=$1 want=$2 out status
	out=$(printf '%b' "$3" | "$HOSTILE" raw "$E2E_PORT" 2>&1) || true
	status=$(head -n 1 <<<"$out")
	e2e_log "$name -> $status $(sed -n 2p <<<"$out" | head -c 160)"
	check "$name: $want (got $status)" [ "$status" = "$want" ]
}
RQ='Host: 127.0.0.1\r\nConnection: close\r\n'
raw "two Content-Length headers" 400 "POST /v1/tx HTTP/1.1\r\n${RQ}Content-Length: 5\r\nContent-Length: 6\r\n\r\n{\"tx\""
raw "Content-Length with Transfer-Encoding" 400 "POST /v1/tx HTTP/1.1\r\n${RQ}Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
raw "a Content-Length that is not a number" 400 "POST /v1/tx HTTP/1.1\r\n${RQ}Content-Length: abc\r\n\r\n"
raw "a negative Content-Length" 400 "POST /v1/tx HTTP/1.1\r\n${RQ}Content-Length: -1\r\n\r\n"
raw "a Content-Length beyond 64 bits" 413 "POST /v1/tx HTTP/1.1\r\n${RQ}Content-Length: 99999999999999999999999\r\n\r\n"
raw "a 1 GB Content-Length is refused before the body" 413 "POST /v1/tx HTTP/1.1\r\n${RQ}Content-Length: 1000000000\r\n\r\nabc"
raw "a chunked body over 64 KiB" 413 "POST /v1/tx HTTP/1.1\r\n${RQ}Transfer-Encoding: chunked\r\n\r\n$(printf '10000\\r\\n%s\\r\\n1\\r\\nx\\r\\n0\\r\\n\\r\\n' "$(head -c 65536 /dev/zero | tr '\0' a)")"
raw "a header line without a colon" 400 "GET /v1/status HTTP/1.1\r\n${RQ}NoColon\r\n\r\n"
raw "a request line without a version" 400 "GET /v1/status\r\n\r\n"
raw "headers over 16 KiB" 431 "GET /v1/status HTTP/1.1\r\n${RQ}X-Big: $(head -c 20000 /dev/zero | tr '\0' a)\r\n\r\n"
raw "raw bytes that are not UTF-8 in the path" 404 "GET /\xff\xfe HTTP/1.1\r\n${RQ}\r\n"
raw "an absolute URI to another host" 404 "GET http://example.invalid/v1/status HTTP/1.1\r\n${RQ}\r\n"

# The property: random bytes in method, path, query and headers never get a
# 5xx, and every error the node writes is JSON with "error" and "code".
SEED=${E2E_SEED:-$(( $(date +%s) % 100000 ))}
out=$("$HOSTILE" fuzz "$E2E_PORT" 4000 "$SEED" 2>"$E2E_DIR/fuzz.err") && rc=0 || rc=$?
e2e_log "$out"
[ $rc -eq 0 ] || sed 's/^/#   /' "$E2E_DIR/fuzz.err" | head -n 40
check "4000 random requests (seed $SEED, E2E_SEED replays it): no 5xx, every error body JSON" \
	[ $rc -eq 0 ]
check "/metrics counts no 5xx" \
	bash -c "curl -sf $N/metrics | awk '/^tally_api_faults_total/ { exit !(\$2 == 0) }'"
check "/metrics: nothing was cut short by the rate limit here" \
	bash -c "curl -sf $N/metrics | awk '/^tally_api_rate_limited_total/ { exit !(\$2 == 0) }'"

# A burst of junk from several clients at once.
junk() {
	local j
	for j in $(seq 1 50); do
		head -c $((j * 7)) /dev/urandom | od -An -tx1 | tr -d ' \n' >"$E2E_DIR/junk.$1"
		curl -s -o /dev/null -X POST --data-binary "{\"tx\":\"$(cat "$E2E_DIR/junk.$1")\"}" \
			"$N/v1/tx" || true
	done
}
pids=()
for i in 1 2 3 4; do
	junk "$i" &
	pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || true; done
check "the node is still healthy" curl -sf "$N/healthz"
check "the node still answers status" bash -c "$TALLY status --json | jq -e '.height >= 0'"
check "/metrics counts the API errors" \
	bash -c "curl -sf $N/metrics | awk '/^tally_api_errors_total/ { exit !(\$2 >= 200) }'"
check "the node process is alive" kill -0 "$E2E_NODE_PID"
e2e_done
