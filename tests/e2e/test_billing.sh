#!/bin/bash
# Billing correctness (issue 11): every second of a lease billed exactly once,
# under the chain's clock. Each case is a fault a real node had:
#   - a record that bills time that has not happened is refused (400 range);
#   - a contract whose interval is not the node's is refused up front;
#   - a contract whose totals could overflow is refused up front;
#   - a tenant's close is billed up to the close by a last record;
#   - capacity is promised once: of two leases that do not both fit, one is
#     refused with 409 capacity and moves no deposit;
#   - a guest that powers itself off is billed up to the stop and closes as
#     guest-stopped.
. "$(dirname "$0")/lib.sh"
FORGE=${TALLY_FORGE:-$E2E_ROOT/build/out/tests/forge}
# Records every 20 s: long enough to act between them.
e2e_init billing 7719 --interval 20
e2e_start_node
NODE=$("$TALLY" status --json | jq -r .node)
export TALLY_CHAIN_ID TALLY_GENESIS_HASH
TALLY_CHAIN_ID=$(curl -s "$TALLY_NODE/v1/status" | jq -r .chain_id)
TALLY_GENESIS_HASH=$(curl -s "$TALLY_NODE/v1/status" | jq -r .genesis_hash)
balance() { "$TALLY" account show --json | jq .balance; }
node_nonce() { curl -s "$TALLY_NODE/v1/accounts/$NODE" | jq .nonce; }
# post_tx HEX: the HTTP status and body of POST /v1/tx.
post_tx() {
	curl -s -o "$E2E_DIR/post.json" -w '%{http_code}' -H 'Content-Type: application/json' \
		-d "{\"tx\":\"$1\"}" "$TALLY_NODE/v1/tx"
}
last_record_end() {
	"$TALLY" usage "$1" --json | grep -oE '"end_ns": ?[0-9]+' | grep -oE '[0-9]+$' | sort -n |
		tail -n 1
}
records() { "$TALLY" usage "$1" --json | jq '.records | length'; }
lease_json() { "$TALLY" lease show "$1" --json; }
has_records() { [ "$(records "$1")" -ge "$2" ]; }

# --- refused up front: no deposit moves --------------------------------------
B0=$(balance)
out=$("$TALLY" lease create --image tiny --vcpus 1 --memory 128 --interval 3600 \
	--duration 3600 2>&1) && rc=0 || rc=$?
e2e_log "interval 3600 on a node metering every 20 s: exit $rc: $out"
check "a contract metering every 3600 s is refused by a node metering every 20 s" \
	bash -c "[ $rc -ne 0 ] && grep -q 'meters every 20 s' <<<\"\$0\"" "$out"
out=$("$TALLY" lease create --image tiny --vcpus 256 --memory 128 --duration 315360000 \
	--deposit 90000000 2>&1) && rc=0 || rc=$?
e2e_log "256 vCPUs for ten years: exit $rc: $out"
check "a contract whose CPU totals could overflow is refused" \
	bash -c "[ $rc -ne 0 ] && grep -q 'more CPU time than a lease' <<<\"\$0\"" "$out"
check "no deposit moved for either" [ "$(balance)" -eq "$B0" ]

# --- a record that bills the future ------------------------------------------
LEASE=$("$TALLY" lease create --image tiny --vcpus 1 --memory 128 --duration 600 --wait \
	--timeout 120)
check "the lease runs" lease_state_is "$LEASE" running
STARTED=$(lease_json "$LEASE" | json_int started_ns)
HEX=$("$FORGE" usage "$LEASE" 0 0 "$STARTED" $((STARTED + 600000000000)) 600000000000 128 \
	"$(node_nonce)" "$E2E_DIR/node/node.pem")
code=$(post_tx "$HEX")
e2e_log "a 600 s record sent right after the start: $code $(cat "$E2E_DIR/post.json")"
check "a record ending 600 s after its block is refused with 400" [ "$code" = 400 ]
check "... and the code says range" [ "$(jq -r .code "$E2E_DIR/post.json")" = range ]
check "... and nothing was charged" [ "$(lease_json "$LEASE" | jq .charged)" -eq 0 ]

# --- the tail of a tenant's close is billed ----------------------------------
check "record 0 commits" wait_for 60 has_records "$LEASE" 1
sleep 9
"$TALLY" lease close "$LEASE" >/dev/null
check "the lease closes" wait_for 60 lease_state_is "$LEASE" closed
L=$(lease_json "$LEASE")
e2e_log "closed: $(jq -c '{state, close_reason, charged, last_end_ns, closing_ns}' <<<"$L")"
check "closed by the tenant" [ "$(jq -r .close_reason <<<"$L")" = tenant-closed ]
check "the last record ends where the tenant closed" \
	[ "$(last_record_end "$LEASE")" = "$(json_int closing_ns <<<"$L")" ]
check "the time after record 0 was billed by a last record" [ "$(records "$LEASE")" -ge 2 ]
SUM=$("$TALLY" usage "$LEASE" --json | jq '[.records[].charge] | add')
check "charged is the sum of the records" [ "$(jq .charged <<<"$L")" = "$SUM" ]
check "the audit verifies it" "$TALLY" audit "$LEASE"

# --- capacity is promised once ------------------------------------------------
# The devnet promises nproc x 2 vCPUs (overcommit_cpu = 2.0): two leases of
# nproc + 1 each do not both fit, and one still fits beside the 1-vCPU lease
# above if its VM is not gone yet.
CPUS=$(($(nproc) + 1))
B1=$(balance)
PIDS=()
for i in 1 2; do
	( rc=0; "$TALLY" lease create --image tiny --vcpus "$CPUS" --memory 128 --duration 600 \
		--json >"$E2E_DIR/cap$i.json" 2>"$E2E_DIR/cap$i.err" || rc=$?
	  echo $rc >"$E2E_DIR/cap$i.rc" ) &
	PIDS+=($!)
done
wait "${PIDS[@]}"     # not tallyd, also a child of this shell
OK=0 REFUSED=0
for i in 1 2; do
	if [ "$(cat "$E2E_DIR/cap$i.rc")" = 0 ]; then
		OK=$((OK + 1)); WINNER=$(jq -r .id "$E2E_DIR/cap$i.json")
	elif grep -q 'capacity\|409' "$E2E_DIR/cap$i.err"; then
		REFUSED=$((REFUSED + 1))
	fi
	e2e_log "lease $i for $CPUS vCPUs: exit $(cat "$E2E_DIR/cap$i.rc") $(cat "$E2E_DIR/cap$i.err")"
done
check "of two leases that do not both fit, one is accepted" [ "$OK" -eq 1 ]
check "... and the other refused for capacity" [ "$REFUSED" -eq 1 ]
# lease create returns once the node took the LEASE_OPEN: the lease is on the
# chain a block later.
check "the accepted one commits" wait_for 30 lease_json "$WINNER"
DEPOSIT=$(lease_json "$WINNER" | jq -r '.contract.deposit // 0')
check "only the accepted one moved a deposit ($DEPOSIT)" bash -c \
	"[ $(balance) -eq $((B1 - DEPOSIT)) ] && [ $DEPOSIT -gt 0 ]"
check "the accepted one runs" wait_for 120 lease_state_is "$WINNER" running
"$TALLY" lease close "$WINNER" >/dev/null
check "the accepted one closes" wait_for 90 lease_state_is "$WINNER" closed

# --- a guest that powers itself off -------------------------------------------
LEASE=$("$TALLY" lease create --image tiny --vcpus 1 --memory 128 --duration 600 --wait \
	--timeout 120)
DOMAIN="${E2E_PREFIX}${LEASE:0:12}"
check "a record commits" wait_for 60 has_records "$LEASE" 1
CONSOLE="$E2E_DIR/node/vms/$DOMAIN.console.log"
check "the guest boots to its shell" wait_for 180 grep -q "init reached" "$CONSOLE"
PTY=$(virsh -q -c qemu:///system ttyconsole "$DOMAIN")
# QEMU reads a pty only while someone holds it open (it polls for that).
exec 9>"$PTY"
sleep 2
STOP_NS=$(date +%s%N)
printf '\npoweroff -f\n' >&9
check "the lease closes when the guest powers off" wait_for 60 lease_state_is "$LEASE" closed
exec 9>&-
L=$(lease_json "$LEASE")
e2e_log "guest stopped: $(jq -c '{close_reason, charged, last_end_ns}' <<<"$L")"
check "closed as guest-stopped (the tenant's act)" \
	[ "$(jq -r .close_reason <<<"$L")" = guest-stopped ]
END=$(last_record_end "$LEASE")
check "billed up to the stop: the last record ends after the poweroff was sent" \
	[ "$END" -ge "$STOP_NS" ]
check "the audit verifies it" "$TALLY" audit "$LEASE"
e2e_done
