#!/bin/bash
# What tally says on the edges a new user meets first, on an API-only devnet
# (no VMs): each message names the real cause and the exit code is the one
# docs/CLI.md gives.
#   - stake --wait that times out says what the transaction still is (the
#     tenant's stake, with no node of its own running, leaves the only
#     validator short of 2/3 of the power: nothing commits after it).
. "$(dirname "$0")/lib.sh"
e2e_init cliinput 7722
e2e_start_node --no-vms

# run CMD...: OUT (stdout and stderr) and RC of a tally command.
run() {
	OUT=$("$TALLY" "$@" 2>&1) && RC=0 || RC=$?
	e2e_log "tally $*: exit $RC: $OUT"
}

# --- stake --wait that times out ------------------------------------------------
run stake 2000000 --wait
check "the tenant's stake commits" [ "$RC" -eq 0 ]
run unstake 1 --wait --timeout 1
check "unstake --wait on a stalled chain times out with exit 1" [ "$RC" -eq 1 ]
check "... saying the transaction is still pending" grep -q '(still pending)$' <<<"$OUT"

e2e_done
