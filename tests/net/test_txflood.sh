#!/bin/bash
# A peer flooding a validator with transactions that are valid (signed, of
# this chain) but refused once checked (nonces a million ahead), within the
# message rate and never an offence, fills the queue of peers' transactions
# waiting for a check. An honest transaction relayed meanwhile by the
# validator's other peer must still get in: a sender's share of that queue
# is bounded (NET_INTAKE_PEER_MAX), else the honest one is dropped there
# and, as the full node that relayed it sends it only once, never committed.
. "$(dirname "$0")/lib.sh"
net_init txflood 18430 1 1
for k in 1 2; do printf '[provider]\nannounce = no\n' >>"$(conf $k)"; done
printf '[peers]\nallow = %s\n' "$("$TALLY" key new --key "$NET_DIR/flood.pem" 2>/dev/null)" >>"$(conf 1)"
"$TALLY" key new --key "$NET_DIR/signer.pem" >/dev/null 2>&1
start 1 --no-vms
start 2 --no-vms
check "the two nodes connect" wait_for 30 peers_are 1 1 2
GH=$(status 1 | jq -r .genesis_hash)
"$PEER_HOSTILE" txs-flood "$(peer_port 1)" 127.0.0.7 "$GH" "$NET_DIR/flood.pem" net-txflood \
	"$NET_DIR/signer.pem" 25 >"$NET_DIR/flood.out" &
FLOOD=$!
flooded() { metric_ge 1 tally_gossip_txs_dropped_total 1; }
check "the flood fills the validator's intake (it drops some unchecked)" wait_for 20 flooded
H=$(transfer_via 2 4242)
check "a transfer sent to the full node meanwhile commits on the validator" \
	wait_for 40 committed_everywhere "$H" 1 2
wait "$FLOOD"
check "the flooding peer was never dropped (nothing it sent is an offence): $(cat "$NET_DIR/flood.out")" \
	grep -q '^open after' "$NET_DIR/flood.out"
check "the validator never stopped serving" curl -sf "$(url 1)/healthz"
net_done
