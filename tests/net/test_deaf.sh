#!/bin/bash
# A peer that completes the handshake and then never reads (but PINGs, so it
# is not silent): the node must not buffer for it without end. Transactions
# submitted meanwhile are relayed to it, with the proposals that carry them,
# until the kernel's buffers are full and the rest waits in the node's
# memory; the node closes the connection once the peer has taken nothing of
# what it was sent for 45 s (NET_STALL_MS), says so, and keeps committing.
. "$(dirname "$0")/lib.sh"
net_init deaf 18410 1 0
printf '[provider]\nannounce = no\n' >>"$(conf 1)"
printf '[peers]\nallow = %s\n' "$("$TALLY" key new --key "$NET_DIR/deaf.pem" 2>/dev/null)" >>"$(conf 1)"
start 1 --no-vms
GH=$(status 1 | jq -r .genesis_hash)
P=$(peer_port 1)
"$PEER_HOSTILE" deaf "$P" 127.0.0.6 "$GH" "$NET_DIR/deaf.pem" 120 >"$NET_DIR/deaf.out" &
DEAF=$!
check "the deaf peer is connected" wait_for 15 peers_are 1 1

# Traffic for it: faucet transfers in nonce order, in batches of 200.
FORGE=${TALLY_FORGE:-$E2E_ROOT/build/out/tests/forge}
TALLY_CHAIN_ID=net-deaf TALLY_GENESIS_HASH=$GH
export TALLY_CHAIN_ID TALLY_GENESIS_HASH
FAUCET_PUB=$("$TALLY" key show --key "$FAUCET")
N0=$(curl -sf "$(url 1)/v1/accounts/$FAUCET_PUB" | jq .next_nonce)
N=15000
"$FORGE" transfer "$TENANT" 1 "$N0" "$FAUCET" "$N" >"$NET_DIR/load.hex"
split -l 200 "$NET_DIR/load.hex" "$NET_DIR/load.part."
for part in "$NET_DIR"/load.part.*; do
	jq -R . "$part" | jq -sc '{txs: .}' |
		curl -sf -H 'Content-Type: application/json' --data-binary @- \
			"$(url 1)/v1/txs" >/dev/null
done
check "the $N transfers commit" wait_for 60 bash -c \
	"[ \$(curl -sf $(url 1)/v1/accounts/$FAUCET_PUB | jq .nonce) -ge $((N0 + N)) ]"

wait "$DEAF"
check "the node closed the deaf peer's connection ($(cat "$NET_DIR/deaf.out"))" \
	grep -q '^closed after' "$NET_DIR/deaf.out"
check "the node says why" grep -q "took nothing of what it was sent" "$(log_of 1)"
H=$(transfer_via 1 4242)
check "the node still commits" wait_for 30 committed_everywhere "$H" 1
net_done
