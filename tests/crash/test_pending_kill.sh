#!/bin/bash
# A transaction the node accepted survives a SIGKILL before any block commits
# it (docs/OPERATING.md): a single node (--no-vms) whose next height begins
# 8 s after its last block accepts a transfer, is killed at once, and after
# the restart its mempool.log gives the transfer back; it commits, and the
# balance moves exactly once.
. "$(dirname "$0")/../e2e/lib.sh"
e2e_init pendkill 7790
# The last section e2e_init writes is [node]: a long wait between heights,
# so a transfer stays pending long enough to be killed with.
sed -i 's/^block_interval_ms = 500$/block_interval_ms = 8000/' "$E2E_DIR/node/tallyd.conf"
e2e_start_node --no-vms
OTHER=$("$TALLY" key new --key "$E2E_DIR/other.pem" 2>/dev/null)
balance() { curl -s "$TALLY_NODE/v1/accounts/$1" | jq .balance; }
tx_status() { curl -s "$TALLY_NODE/v1/tx/$1/status" | jq -r .status; }
committed() { [ "$(tx_status "$1")" = committed ]; }

# A first block: from then on the next height waits 8 s.
FIRST=$("$TALLY" transfer --to "$OTHER" 1000)
check "a first transfer commits" wait_for 60 committed "$FIRST"
B_TENANT=$(balance "$TENANT")
B_OTHER=$(balance "$OTHER")

HASH=$("$TALLY" transfer --to "$OTHER" 777)
STATUS=$(tx_status "$HASH")
# A tenant waiting for it meanwhile: the node going away does not end the
# wait (the client tries again every second until its timeout).
"$TALLY" tx "$HASH" --wait --timeout 120 >"$E2E_DIR/wait.out" 2>"$E2E_DIR/wait.err" &
WAITER=$!
sleep 1
e2e_stop_node KILL
sleep 3
check "the transfer was accepted and pending when the node was killed (got $STATUS)" \
	[ "$STATUS" = pending ]
check "the node left the transfer in its data directory" \
	[ -s "$E2E_DIR/node/data/mempool.log" ]

e2e_start_node --no-vms
check "the restarted node restored it from mempool.log" \
	grep -q "mempool: 1 pending transactions restored from mempool.log, 0 no longer applied" \
	"$E2E_DIR/tallyd.log"
check "it is pending again after the restart" [ "$(tx_status "$HASH")" = pending ]
check "the transfer commits after the restart" wait_for 60 committed "$HASH"
check "tally tx says so" "$TALLY" tx "$HASH"
WAIT_RC=0
wait "$WAITER" || WAIT_RC=$?
sed 's/^/# waiter: /' "$E2E_DIR/wait.err"
check "tally tx --wait, started before the kill, saw it commit (exit $WAIT_RC)" [ "$WAIT_RC" -eq 0 ]
check "... saying it could not reach the node and tried again" \
	grep -q "cannot reach node at .*; trying again every second" "$E2E_DIR/wait.err"
check "... and that the node answered again" grep -q "answers again" "$E2E_DIR/wait.err"
check "the recipient got it exactly once" [ "$(balance "$OTHER")" -eq $((B_OTHER + 777)) ]
check "the sender paid it exactly once" [ "$(balance "$TENANT")" -eq $((B_TENANT - 777)) ]
check "the log is emptied once the pool is" wait_for 10 \
	bash -c "[ ! -s '$E2E_DIR/node/data/mempool.log' ]"
# Once more: a restart now restores nothing and commits nothing twice.
e2e_stop_node KILL
e2e_start_node --no-vms
check "after another kill nothing is restored twice" \
	[ "$(grep -c "pending transactions restored" "$E2E_DIR/tallyd.log")" -eq 1 ]
check "the balance is unchanged by the second restart" \
	[ "$(balance "$OTHER")" -eq $((B_OTHER + 777)) ]
e2e_done
