#!/bin/bash
# Weak keys and chain identity (issue 12), on two API-only devnets (no VMs)
# that share one chain id:
#   - a transaction "signed" by the identity point (a small-order key) with
#     the signature 01 00..00 that verifies for any message under a lax
#     verifier is refused, and so is a transfer to such a key;
#   - a tenant's LEASE_OPEN signed for one devnet and POSTed to the other
#     (same chain id, same funded tenant) is refused there: signatures bind
#     the genesis hash, not only the chain id string;
#   - tally audit and tally chain verify print the genesis they trusted and
#     refuse a node of another genesis when one is pinned.
# Each refusal is checked with its status and code, and that nothing changed.
. "$(dirname "$0")/lib.sh"
FORGE=${TALLY_FORGE:-$E2E_ROOT/build/out/tests/forge}
e2e_init identity 7721
# Devnet A's node is the provider of the lease below; it runs no VM, so it
# announces itself only when told to.
printf '\n[provider]\nannounce = yes\n' >>"$E2E_DIR/node/tallyd.conf"
e2e_start_node --no-vms
A=$TALLY_NODE
B_PORT=$(free_port $((E2E_PORT + 1)))
B=http://127.0.0.1:$B_PORT
NODE2_PID=
trap '[ -z "$NODE2_PID" ] || { kill "$NODE2_PID"; wait "$NODE2_PID"; } 2>/dev/null; e2e_cleanup' EXIT
# The second devnet: same chain id, the same tenant funded, its own genesis
# (its own validator key and faucet).
"$TALLY" node init --dev "$E2E_DIR/node2" --chain-id e2e-identity --listen "127.0.0.1:$B_PORT" \
	--interval 2 --domain-type qemu --network none --fund "$TENANT:100000000" >/dev/null
"$TALLYD" -c "$E2E_DIR/node2/tallyd.conf" --no-vms >>"$E2E_DIR/tallyd2.log" 2>&1 &
NODE2_PID=$!
wait_for 10 curl -sf "$B/healthz"

status() { curl -s "$1/v1/status"; }
GH_A=$(status "$A" | jq -r .genesis_hash)
GH_B=$(status "$B" | jq -r .genesis_hash)
e2e_log "two devnets of chain $(status "$A" | jq -r .chain_id) and $(status "$B" | jq -r .chain_id): genesis $GH_A and $GH_B"
check "both devnets have the chain id e2e-identity" \
	[ "$(status "$A" | jq -r .chain_id)/$(status "$B" | jq -r .chain_id)" = e2e-identity/e2e-identity ]
check "... and different genesis hashes" [ "$GH_A" != "$GH_B" ]

# post NODE HEX: prints "STATUS CODE" of POST /v1/tx.
post() {
	local body
	body=$(curl -s -w '\n%{http_code}' -H 'Content-Type: application/json' \
		-d "{\"tx\":\"$2\"}" "$1/v1/tx")
	echo "$(tail -n 1 <<<"$body") $(head -n 1 <<<"$body" | jq -r .code)"
}
account() { curl -s "$1/v1/accounts/$2" | jq -c '{balance, nonce}'; }
le64() { printf '%016x' "$1" | sed -E 's/(..)(..)(..)(..)(..)(..)(..)(..)/\8\7\6\5\4\3\2\1/'; }

# --- the identity point as a key ----------------------------------------------
IDENTITY=01$(printf '0%.0s' $(seq 1 62))
OTHER=$("$TALLY" key new --key "$E2E_DIR/other.pem" 2>/dev/null)
TENANT_BEFORE=$(account "$A" "$TENANT")
export TALLY_CHAIN_ID=e2e-identity TALLY_GENESIS_HASH=$GH_A
HEX=$("$FORGE" transfer "$IDENTITY" 1000 "$(account "$A" "$TENANT" | jq .nonce)" "$TALLY_KEY")
out=$(post "$A" "$HEX")
e2e_log "a transfer to the identity point: $out"
check "a transfer to a small-order key is refused: 400 key" [ "$out" = "400 key" ]
out=$("$TALLY" transfer --to "$IDENTITY" 1000 2>&1) && rc=0 || rc=$?
e2e_log "tally transfer --to the identity point: exit $rc: $out"
check "... and tally refuses it too, saying why" \
	bash -c "[ $rc -ne 0 ] && grep -qi 'key' <<<\"\$0\"" "$out"
check "... and the tenant's balance and nonce did not change" \
	[ "$(account "$A" "$TENANT")" = "$TENANT_BEFORE" ]
# The issue's transaction, for this chain: TRANSFER signed "by" the identity
# to OTHER, nonce 0, amount 1000, signature 01 00..00.
CHAIN_HEX=$(printf 'e2e-identity' | od -An -tx1 | tr -d ' \n')
SIG=01$(printf '0%.0s' $(seq 1 126))
RAW=0105$(le64 12 | cut -c1-8)$CHAIN_HEX$IDENTITY$(le64 0)$OTHER$(le64 1000)$SIG
out=$(post "$A" "$RAW")
e2e_log "a transfer signed by the identity point: $out"
check "a transaction whose signer is the identity point is refused: 400 key" \
	[ "$out" = "400 key" ]
check "... and the same bytes again are refused the same way" [ "$(post "$A" "$RAW")" = "400 key" ]
check "... and nothing reached the recipient" [ "$(account "$A" "$OTHER" | jq .balance)" = 0 ]
# A signed read with a small-order key never reaches the replay state.
code=$(curl -s -o "$E2E_DIR/read.json" -w '%{http_code}' \
	-H "X-Tally-Key: $IDENTITY" -H "X-Tally-Timestamp: $(date +%s)" \
	-H "X-Tally-Nonce: 00000000000000000000000000000001" -H "X-Tally-Signature: $SIG" \
	"$A/v1/leases/$(printf 'ab%.0s' $(seq 1 32))/private")
e2e_log "a signed read by the identity point: $code $(cat "$E2E_DIR/read.json")"
check "a signed read by a small-order key is refused (4xx, never served)" \
	bash -c "[ $code -ge 400 ] && [ $code -lt 500 ]"

# --- a lease signed for one chain, sent to the other --------------------------
PROVIDER_A=$(status "$A" | jq -r .node)
NONCE=$(account "$B" "$TENANT" | jq .nonce)
cat >"$E2E_DIR/contract.json" <<JSON
{ "version": 2, "chain_id": "e2e-identity", "tenant": "$TENANT", "provider": "$PROVIDER_A",
  "nonce": $NONCE, "expiry": $(($(date +%s) + 600)),
  "vm": { "vcpus": 1, "memory_mib": 128, "disk_gib": 1, "gpus": 0, "image": "tiny" },
  "duration_s": 600, "deposit": 6187, "interval_s": 2,
  "prices": { "vcpu_second": 20, "mem_gib_second": 5, "gpu_second": 1000 },
  "sla": { "max_delay_ppm": 50000, "credit_ppm": 100000 } }
JSON
OPEN=$(TALLY_GENESIS_HASH=$GH_A "$FORGE" "$E2E_DIR/contract.json" --sign-with "$TALLY_KEY")
B_BEFORE=$(account "$B" "$TENANT")
out=$(post "$B" "$OPEN")
e2e_log "a LEASE_OPEN signed for devnet A, sent to devnet B: $out: $(curl -s -H 'Content-Type: application/json' -d "{\"tx\":\"$OPEN\"}" "$B/v1/tx")"
check "a lease signed for another chain of the same id is refused: 400 signature" \
	[ "$out" = "400 signature" ]
check "... and nothing was escrowed on that chain" [ "$(account "$B" "$TENANT")" = "$B_BEFORE" ]
check "... and no lease exists there" \
	[ "$(curl -s "$B/v1/leases" | jq '.leases | length')" = 0 ]
code=$(curl -s -o "$E2E_DIR/open.json" -w '%{http_code}' -H 'Content-Type: application/json' \
	-d "{\"tx\":\"$OPEN\"}" "$A/v1/tx")
check "the same transaction is accepted by the chain it was signed for" [ "$code" = 202 ]
LEASE=$(jq -r .hash "$E2E_DIR/open.json")     # a lease's id is its LEASE_OPEN's hash
check "... and the lease opens there" wait_for 30 lease_state_is "$LEASE" opened

# --- the auditor names and pins the genesis -----------------------------------
out=$("$TALLY" audit "$LEASE" 2>&1) || true
e2e_log "audit without a pin: $(grep genesis <<<"$out")"
check "the audit prints the genesis it trusted" grep -q "genesis *$GH_A" <<<"$out"
check "the audit pinned to this chain's genesis verifies" \
	"$TALLY" audit "$LEASE" --genesis "$GH_A"
check "... and pinned by its genesis file too" \
	"$TALLY" audit "$LEASE" --genesis "$E2E_DIR/node/genesis.json"
out=$("$TALLY" audit "$LEASE" --genesis "$GH_B" 2>&1) && rc=0 || rc=$?
e2e_log "audit of devnet A pinned to devnet B: exit $rc: $(tail -n 2 <<<"$out")"
check "the audit pinned to the other chain's genesis is refused" \
	bash -c "[ $rc -ne 0 ] && grep -q '$GH_B' <<<\"\$0\"" "$out"
check "... and pinned by the other genesis file too" \
	bash -c "! \"\$0\" audit $LEASE --genesis $E2E_DIR/node2/genesis.json" "$TALLY"
check "chain verify pinned to this genesis verifies" \
	"$TALLY" chain verify --node "$A" --genesis "$GH_A"
out=$("$TALLY" chain verify --node "$B" --genesis "$GH_A" 2>&1) && rc=0 || rc=$?
e2e_log "chain verify of devnet B pinned to devnet A: exit $rc: $(tail -n 1 <<<"$out")"
check "chain verify of the other devnet pinned to this genesis is refused" [ "$rc" -ne 0 ]
out=$("$TALLY" chain verify --node "$B" 2>&1) || true
check "chain verify without a pin prints the genesis it trusted" grep -q "$GH_B" <<<"$out"

# --- commands one after another, before the first commits ---------------------
# tally signs with the account's next_nonce, which counts the node's mempool.
PAYEE=$("$TALLY" key new --key "$E2E_DIR/payee.pem" 2>/dev/null)
H=()
for i in 1 2 3; do H+=("$(TALLY_NODE=$A "$TALLY" transfer --to "$PAYEE" $i 2>>"$E2E_DIR/transfers.err" || true)"); done
e2e_log "three transfers back to back: ${H[*]} $(tr "\n" " " <"$E2E_DIR/transfers.err")"
check "three transfers sent back to back are all accepted" \
	bash -c 'for h; do [[ $h =~ ^[0-9a-f]{64}$ ]] || exit 1; done' _ "${H[@]}"
check "... and all three commit" wait_for 30 bash -c \
	"[ \$(curl -s $A/v1/accounts/$PAYEE | jq .balance) -eq 6 ]"
e2e_done
