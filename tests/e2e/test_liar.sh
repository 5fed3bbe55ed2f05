#!/bin/bash
# A lying node: `hostile liar` stands in front of the real node, relays its
# answers and changes some. The auditor trusts no node: each lie makes
# `tally audit --node` (or `tally chain verify --node`) fail with exit 1 and
# name the fault (docs/CLI.md, "audit": "Exit codes and output").
#   - relayed unchanged, the audit verifies (the relay itself is honest);
#   - lease B's state proof served for lease A's: the proof does not hold A;
#   - one hex digit of A's usage record changed in its block, wherever the
#     node serves that block: audit and chain verify name the block;
#   - another genesis (its time changed): refused against the pinned hash,
#     and unpinned the chain does not link to it (block 1);
#   - a tip reported before the block the state proof names: the claim is
#     of a block the audit was not given;
#   - (the real node) a --checkpoint above its tip is a usage error (exit 2).
. "$(dirname "$0")/lib.sh"
HOSTILE=${TALLY_HOSTILE:-$E2E_ROOT/build/out/tests/hostile}
e2e_init liar 7726
e2e_start_node
LIAR_PID=
trap 'liar_stop; e2e_cleanup' EXIT
LIAR_PORT=$(free_port $((E2E_PORT + 20)))
LIAR="http://127.0.0.1:$LIAR_PORT"
N=$TALLY_NODE

liar_stop() {
	[ -n "$LIAR_PID" ] || return 0
	kill -TERM "$LIAR_PID" 2>/dev/null || true
	wait "$LIAR_PID" 2>/dev/null || true
	LIAR_PID=
}
# liar_start RULE...: a new liar with these rules (hostile.c's comment),
# its stderr (the lies it told) in liar.log.
liar_start() {
	liar_stop
	"$HOSTILE" liar "$LIAR_PORT" "${N##*:}" "$@" 2>"$E2E_DIR/liar.log" &
	LIAR_PID=$!
	wait_for 10 curl -sf -o /dev/null "$LIAR/healthz" || e2e_log "the liar did not come up"
}
# run ARGS...: tally ARGS; RC its exit code, OUT its stdout, ERR its stderr.
run() {
	RC=0
	"$TALLY" "$@" >"$E2E_DIR/out" 2>"$E2E_DIR/err" || RC=$?
	OUT=$(cat "$E2E_DIR/out") ERR=$(cat "$E2E_DIR/err")
	e2e_log "tally $1: exit $RC: $(jq -c '.errors // .error' <<<"$OUT" 2>/dev/null ||
		tail -n 1 <<<"$OUT") $ERR"
}

# Two short leases at once; A's records are the ones lied about.
A=$("$TALLY" lease create --image tiny --vcpus 1 --memory 128 --duration 14 \
	--deposit 30000000 --wait --timeout 120)
B=$("$TALLY" lease create --image tiny --vcpus 1 --memory 128 --duration 14 \
	--deposit 30000000 --wait --timeout 120)
check "lease A ends with its term" wait_for 90 lease_state_is "$A" closed
check "lease B ends with its term" wait_for 90 lease_state_is "$B" closed
USAGE=$(curl -sf "$N/v1/leases/$A/usage")
check "lease A has usage records" [ "$(jq '.records | length' <<<"$USAGE")" -ge 2 ]

# --- a: the honest relay ---------------------------------------------------------
liar_start
run audit "$A" --node "$LIAR" --json
check "through the relay, the audit verifies (exit 0)" [ "$RC" -eq 0 ]
check "... every record proven and the settlement compared" \
	jq -e '.verified and .compared and .records >= 2 and
		([.record_list[] | .proven and .signature_ok] | all)' <<<"$OUT"
check "... and the liar told no lie" [ ! -s "$E2E_DIR/liar.log" ]

# --- b: another lease's state proof ----------------------------------------------
liar_start rewrite "/v1/leases/$A/proof" "/v1/leases/$B/proof"
run audit "$A" --node "$LIAR" --json
check "lease B's proof for lease A's: not verified (exit 1)" [ "$RC" -eq 1 ]
check "... saying the proof does not hold lease A" jq -e --arg l "${A:0:16}" \
	'.verified == false and (.errors[0] | test("lease " + $l + ".*: its proof does not hold it"))' \
	<<<"$OUT"
check "... the liar did serve B's" grep -q "rewrite: /v1/leases/$A/proof sent as" "$E2E_DIR/liar.log"

# --- c: one byte of a usage record in its block -----------------------------------
TX=$(jq -r '.records[1].tx' <<<"$USAGE")
H=$(jq -r '.records[1].height' <<<"$USAGE")
liar_start flip /v1/blocks "$TX" $((${#TX} / 2))
run audit "$A" --node "$LIAR" --json
check "a byte of record 1 changed in block $H: not verified (exit 1)" [ "$RC" -eq 1 ]
check "... naming block $H" grep -q "block $H: " <<<"$OUT$ERR"
check "... the liar did change it" grep -q "flip: /v1/blocks.*changed" "$E2E_DIR/liar.log"
run chain verify --node "$LIAR"
check "chain verify --node of that chain: not verified (exit 1)" [ "$RC" -eq 1 ]
check "... naming block $H" grep -q "block $H: " <<<"$OUT$ERR"

# --- d: another genesis -----------------------------------------------------------
GH=$(curl -sf "$N/v1/status" | jq -r .genesis_hash)
T0=$(curl -sf "$N/v1/genesis" | json_int genesis_time_ns)
liar_start set /v1/genesis genesis_time_ns $((T0 + 1))
run audit "$A" --node "$LIAR" --genesis "$GH" --json
check "a genesis other than the pinned one: refused (exit 1)" [ "$RC" -eq 1 ]
check "... saying so" grep -q "not the pinned $GH" <<<"$ERR"
run audit "$A" --node "$LIAR" --json
check "unpinned, the chain does not follow from it: not verified (exit 1)" [ "$RC" -eq 1 ]
check "... naming block 1" jq -e '.verified == false and (.errors[0] | startswith("block 1: "))' \
	<<<"$OUT"

# --- d: a tip before the claim ----------------------------------------------------
TIP=$(curl -sf "$N/v1/status" | json_int height)
liar_start set /v1/status height $((TIP - 1))
run audit "$A" --node "$LIAR" --json
check "a tip before the block the proof names: not verified (exit 1)" [ "$RC" -eq 1 ]
check "... saying the claim's block was not given" jq -e --arg l "${A:0:16}" \
	'.verified == false and ([.errors[] | test("lease " + $l + ".* is of a block the audit was not given")] | any)' \
	<<<"$OUT"
liar_stop

# --- a checkpoint beyond the node's tip --------------------------------------------
# Refused before the checkpoint's block is asked for (the node would answer
# 404, read as a failed audit): a usage error (exit 2), naming both heights.
run audit "$A" --node "$N" --checkpoint "$((TIP + 100)):$(printf '%064d' 0)" --json
check "--checkpoint above the node's tip: exit 2, naming the tip and the checkpoint" \
	bash -c "[ $RC -eq 2 ] && grep -q \"the node's chain ends at block [0-9]*, before the checkpoint's $((TIP + 100))\" <<<\"\$0\"" \
	"$ERR"
e2e_done
