#!/bin/bash
# Bad network input: malformed requests get a 4xx with a JSON error and never
# hurt the node; a signed private read is refused when it is stale, replayed
# or forged.
. "$(dirname "$0")/lib.sh"
e2e_init api 7717
e2e_start_node
N=$TALLY_NODE

# code METHOD PATH [BODY]: the HTTP status of one request.
code() {
	if [ $# -ge 3 ]; then
		curl -s -o "$E2E_DIR/body" -w '%{http_code}' -X "$1" -H 'Content-Type: application/json' \
			--data-binary "$3" "$N$2"
	else
		curl -s -o "$E2E_DIR/body" -w '%{http_code}' -X "$1" "$N$2"
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
refused "bad height" 400 GET /v1/blocks/-1
refused "height with junk" 400 GET /v1/blocks/1x
refused "block beyond the tip" 404 GET /v1/blocks/999999
refused "proof without size" 400 GET '/v1/proofs/inclusion?index=0'
refused "proof index beyond size" 400 GET '/v1/proofs/inclusion?index=5&size=1'
refused "consistency old > new" 400 GET '/v1/proofs/consistency?old=3&new=1'
refused "negative query number" 400 GET '/v1/blocks?from=-1'
refused "lease filter with a bad state" 400 GET '/v1/leases?state=sleeping'
LEASE0=$(printf 'a%.0s' $(seq 64))
refused "private read without signature" 401 GET "/v1/leases/$LEASE0/private"
hdrs=(-H "X-Tally-Key: $TENANT" -H "X-Tally-Timestamp: $(( $(date +%s) - 3600 ))"
	-H "X-Tally-Nonce: 00112233445566778899aabbccddeeff" -H "X-Tally-Signature: $(printf '0%.0s' $(seq 128))")
got=$(curl -s -o "$E2E_DIR/body" -w '%{http_code}' "${hdrs[@]}" "$N/v1/leases/$LEASE0/private")
check "private read with a stale timestamp: 401 (got $got)" [ "$got" = 401 ]
hdrs[3]="X-Tally-Timestamp: $(date +%s)"
got=$(curl -s -o "$E2E_DIR/body" -w '%{http_code}' "${hdrs[@]}" "$N/v1/leases/$LEASE0/private")
check "private read with a forged signature: 401 (got $got)" [ "$got" = 401 ]

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
