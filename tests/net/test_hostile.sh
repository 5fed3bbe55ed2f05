#!/bin/bash
# Hostile peers against a validator and a full node: garbage instead of
# TLS, an unknown key, another chain, an oversized frame, an undecodable
# message, a flood and a block that does not verify are each refused or
# dropped, the offender's key is refused for a while afterwards, and the
# node keeps serving its API and its honest peer throughout. The hostile
# peer connects from other loopback addresses than the honest nodes.
. "$(dirname "$0")/lib.sh"
net_init hostile 17830 1 1
# Keys node 1 accepts, as an operator would new full nodes: one per case,
# since each offence bans its key for a while.
CASES="control genesis oversized frame flood block txs"
# No provider announcement: the chain stays at height 0 until the test's own
# transfers, so node 2 syncs block 1, the hostile peer's, from whoever serves it.
for k in 1 2; do printf '[provider]\nannounce = no\n' >>"$(conf $k)"; done
printf '[peers]\n' >>"$(conf 1)"
for c in $CASES; do
	printf 'allow = %s\n' "$("$TALLY" key new --key "$NET_DIR/$c.pem" 2>/dev/null)" >>"$(conf 1)"
done
start 1 --no-vms
start 2 --no-vms
check "the two nodes connect" wait_for 30 peers_are 1 1 2
GH=$(status 1 | jq -r .genesis_hash)
P=$(peer_port 1)

hostile() { "$PEER_HOSTILE" "$1" "$P" "$2" "$GH" "${@:3}"; }
dropped() { metric 1 tally_peers_dropped_total; }
serving() { curl -sf "$(url 1)/healthz" >/dev/null && [ "$(peers_of 1)" = 1 ]; }

check "random bytes instead of a TLS handshake: closed" \
	[ "$(hostile garbage 127.0.0.2 2>/dev/null || "$PEER_HOSTILE" garbage "$P" 127.0.0.2)" = closed ]
check "a key the node does not know: refused in the TLS handshake" \
	[ "$(hostile unknown 127.0.0.3)" = refused ]
check "the refusal is in the node's log with the reason" \
	grep -q "refused 127.0.0.3.*key [0-9a-f]* is unknown" "$(log_of 1)"
check "an accepted key is taken (the control case)" \
	[ "$(hostile hello 127.0.0.4 "$NET_DIR/control.pem")" = open ]
C0=$(metric 1 tally_consensus_messages_received_total)
check "a vote (twice) and a proposal for a height far ahead: decoded and taken, the peer kept" \
	[ "$(hostile consensus 127.0.0.4 "$NET_DIR/control.pem")" = open ]
check "the node counted the three consensus messages" \
	[ "$(metric 1 tally_consensus_messages_received_total)" -ge $((C0 + 3)) ]

D0=$(dropped)
check "a HELLO of another chain: closed" \
	[ "$(hostile wrong-genesis 127.0.0.4 "$NET_DIR/genesis.pem")" = closed ]
check "the node says the peer is on another chain" grep -q "it is on another chain" "$(log_of 1)"
check "that key is refused for a while afterwards" \
	[ "$(hostile hello 127.0.0.4 "$NET_DIR/genesis.pem")" = refused ]
check "the node counts a dropped peer" [ "$(dropped)" -gt "$D0" ]
check "the node still serves its API and its honest peer" serving
unbanned() { [ "$(hostile hello 127.0.0.4 "$NET_DIR/genesis.pem")" = open ]; }
check "the ban ends (5 s for a first offence)" wait_for 30 unbanned

check "a frame head announcing 64 MiB: closed before the body" \
	[ "$(hostile oversized 127.0.0.4 "$NET_DIR/oversized.pem")" = closed ]
check "the node names the oversized frame" grep -q "above its type's size limit" "$(log_of 1)"
check "a TXS frame of random bytes: closed" \
	[ "$(hostile garbage-frame 127.0.0.4 "$NET_DIR/frame.pem")" = closed ]
check "the node names the undecodable message" grep -q "TXS message that does not decode" "$(log_of 1)"
FLOOD=$(hostile flood 127.0.0.4 "$NET_DIR/flood.pem" 200000)
check "a flood of PINGs: closed long before the 200000th ($FLOOD)" \
	bash -c "[[ '$FLOOD' =~ ^closed\ after\ [0-9]+$ ]] && [ ${FLOOD##* } -lt 200000 ]"
check "the node names the flood" grep -q "flooding: more than" "$(log_of 1)"
check "the node still serves its API and its honest peer" serving

# A peer that claims a longer chain and serves a block that does not verify.
# Node 2 (the full node) is the one that syncs from it.
printf '[peers]\nallow = %s\n' "$("$TALLY" key show --key "$NET_DIR/block.pem")" >>"$(conf 2)"
stop 2
start 2 --no-vms
check "node 2 reconnects to node 1" wait_for 30 peers_are 1 1 2
P=$(peer_port 2)
check "a block that does not verify: the serving peer is dropped" \
	[ "$(hostile bad-block 127.0.0.5 "$NET_DIR/block.pem")" = closed ]
check "node 2 says why" grep -q "served block 1 that does not verify" "$(log_of 2)"
check "node 2 stays on the real chain (height 0, no block from the hostile peer)" \
	[ "$(height 2)" = "$(height 1)" ]

# A transaction refused only for now is judged again when it comes back: a
# faucet transfer GAP nonces ahead (more than the 2048 a node holds for a gap,
# MEMPOOL_HOLD_AHEAD) is refused, not held against the peer; once the gap is
# filled, the same transaction from a peer is taken (it was lost to the node
# for good, marked seen, when a peer's stream ran that far ahead of another's).
GAP=2060
P=$(peer_port 1)
FORGE=${TALLY_FORGE:-$E2E_ROOT/build/out/tests/forge}
TALLY_CHAIN_ID=net-hostile TALLY_GENESIS_HASH=$GH
export TALLY_CHAIN_ID TALLY_GENESIS_HASH
FAUCET_PUB=$("$TALLY" key show --key "$FAUCET")
next_nonce() { curl -sf "$(url 1)/v1/accounts/$FAUCET_PUB" | jq .next_nonce; }
N0=$(next_nonce)
AHEAD=$("$FORGE" transfer "$TENANT" 1 $((N0 + GAP)) "$FAUCET")
check "a TXS with a transaction $GAP nonces ahead: taken without offence" \
	[ "$(hostile txs 127.0.0.4 "$NET_DIR/txs.pem" "$AHEAD")" = open ]
check "... and refused for now: the account's next nonce is still $N0" [ "$(next_nonce)" = "$N0" ]
# The gap in order, in batches of 100 (POST /v1/txs takes at most 256 and 64 KiB).
for i in $(seq 0 $((GAP - 1))); do "$FORGE" transfer "$TENANT" 1 $((N0 + i)) "$FAUCET"; done \
	>"$NET_DIR/gap.hex"
split -l 100 "$NET_DIR/gap.hex" "$NET_DIR/gap.part."
for part in "$NET_DIR"/gap.part.*; do
	jq -R . "$part" | jq -sc '{txs: .}' |
		curl -sf -H 'Content-Type: application/json' --data-binary @- \
			"$(url 1)/v1/txs" >/dev/null
done
check "the gap's $GAP transactions fill it" wait_for 30 bash -c "[ \$(curl -sf $(url 1)/v1/accounts/$FAUCET_PUB | jq .next_nonce) -ge $((N0 + GAP)) ]"
check "the same transaction from the peer again: taken" \
	[ "$(hostile txs 127.0.0.4 "$NET_DIR/txs.pem" "$AHEAD")" = open ]
check "... and admitted now: the account's next nonce is $((N0 + GAP + 1))" \
	wait_for 10 bash -c "[ \$(curl -sf $(url 1)/v1/accounts/$FAUCET_PUB | jq .next_nonce) = $((N0 + GAP + 1)) ]"
# The signature's last byte changed (to another value S may take).
if [ "${AHEAD: -2}" = 00 ]; then FORGED=${AHEAD%??}01; else FORGED=${AHEAD%??}00; fi
check "a TXS carrying a transaction whose signature fails: closed" \
	[ "$(hostile txs 127.0.0.4 "$NET_DIR/txs.pem" "$FORGED")" = closed ]
check "the node names it" grep -q "relayed a transaction that is not valid" "$(log_of 1)"

H=$(transfer_via 2 4242)
check "after all this a transaction sent to the full node commits on both" \
	wait_for 30 committed_everywhere "$H" 1 2
check "and both hold the same blocks" wait_for 30 same_chain 1 1 2
check "the validator never stopped serving" serving
net_done
