#!/bin/bash
# What tally says on the edges a new user meets first, on an API-only devnet
# (no VMs): each message names the real cause and the exit code is the one
# docs/CLI.md gives.
#   - a stake by a key that no node on the network runs with is refused
#     (offline stake above 1/3 stops the chain for good);
#   - stake --wait that times out says what the transaction still is (the
#     tenant's stake, with no node of its own running, leaves the only
#     validator short of 2/3 of the power: nothing commits after it);
#   - an API port out of range is refused by node init and by tallyd's
#     --check-config (tallyd used to listen on the port modulo 65536);
#   - lease create refuses flags that exclude each other (--provider with
#     --cheapest took the cheapest silently) and submits nothing;
#   - an amount above 2^64-1 is "too large", not "not a non-negative
#     integer", and an amount with a leading blank is refused;
#   - --node with a port above 65535 is a bad URL, not an unreachable node.
. "$(dirname "$0")/lib.sh"
e2e_init cliinput 7722
e2e_start_node --no-vms

# run CMD...: OUT (stdout and stderr) and RC of a tally command.
run() {
	OUT=$("$TALLY" "$@" 2>&1) && RC=0 || RC=$?
	e2e_log "tally $*: exit $RC: $OUT"
}

# --- a stake with no node behind it, and stake --wait that times out -------------
run stake 2000000 --wait
check "a stake by a key no tallyd runs with is refused (exit 1)" [ "$RC" -eq 1 ]
check "... saying why: offline stake stops the chain" grep -q "no tallyd with key .* is on this network" <<<"$OUT"
check "... and nothing was submitted" [ "$(curl -s "$TALLY_NODE/v1/accounts/$("$TALLY" key show)" | jq .next_nonce)" = 0 ]
run stake 2000000 --wait --no-node-check
check "with --no-node-check the tenant's stake commits" [ "$RC" -eq 0 ]
run unstake 1 --wait --timeout 1
check "unstake --wait on a stalled chain times out with exit 1" [ "$RC" -eq 1 ]
check "... saying the transaction is still pending" grep -q '(still pending)$' <<<"$OUT"

# --- an API port out of range -------------------------------------------------
run node init --dev "$E2E_DIR/badport" --listen 127.0.0.1:99999
check "node init --listen 127.0.0.1:99999 is a usage error (exit 2)" [ "$RC" -eq 2 ]
check "... naming the port's range" grep -q "1..65535" <<<"$OUT"
check "... and writes nothing" [ ! -e "$E2E_DIR/badport" ]
sed 's/^listen = .*/listen = 127.0.0.1:99999/' "$E2E_DIR/node/tallyd.conf" >"$E2E_DIR/badport.conf"
OUT=$("$TALLYD" --check-config -c "$E2E_DIR/badport.conf" 2>&1) && RC=0 || RC=$?
e2e_log "tallyd --check-config with listen = 127.0.0.1:99999: exit $RC: $OUT"
check "tallyd --check-config refuses listen = 127.0.0.1:99999 (exit 1)" [ "$RC" -eq 1 ]
check "... naming the line and the value" grep -q ":[0-9]*: bad value '127.0.0.1:99999' for 'listen'" <<<"$OUT"

# --- lease create: flags that exclude each other ---------------------------------
NODE_KEY=$("$TALLY" status --json | jq -r .node)
LEASES_BEFORE=$("$TALLY" lease list --json | jq '.leases | length')
run lease create --provider "$NODE_KEY" --cheapest --no-ssh-key
check "lease create --provider KEY --cheapest is a usage error (exit 2)" [ "$RC" -eq 2 ]
check "... saying to give one of them" grep -q -- "--provider PUBKEY or --cheapest, not both" <<<"$OUT"
run lease create --ssh-key /etc/hostname --no-ssh-key
check "lease create --ssh-key FILE --no-ssh-key is a usage error (exit 2)" [ "$RC" -eq 2 ]
check "... and neither submitted a lease" \
	[ "$("$TALLY" lease list --json | jq '.leases | length')" = "$LEASES_BEFORE" ]

# --- amounts out of range ---------------------------------------------------------
OTHER=$("$TALLY" key new --key "$E2E_DIR/other.pem" 2>/dev/null)
run transfer --to "$OTHER" 18446744073709551616
check "transfer of 2^64 is a usage error (exit 2)" [ "$RC" -eq 2 ]
check "... saying it is too large" grep -q "too large (at most 18446744073709551615)" <<<"$OUT"
run transfer --to "$OTHER" " 12"
check "transfer of ' 12' is a usage error (exit 2)" [ "$RC" -eq 2 ]
check "... and the other account got nothing" \
	[ "$("$TALLY" account show "$OTHER" --json | jq .balance)" = 0 ]

# --- a node URL that cannot be one ------------------------------------------------
run status --node http://127.0.0.1:99999
check "--node http://127.0.0.1:99999 is a usage error (exit 2)" [ "$RC" -eq 2 ]
check "... named as a bad node URL" grep -q "^tally: bad node URL 'http://127.0.0.1:99999'" <<<"$OUT"

e2e_done
