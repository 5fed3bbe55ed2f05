#!/bin/bash
# A devnet of one validator and three full nodes (plus a fifth that joins
# late), each a real tallyd on 127.0.0.1 without VMs: a transaction
# submitted to any node commits and every node holds the same blocks (the
# full nodes follow the validator's consensus messages without voting); a
# full node killed with SIGKILL catches up after its restart by block sync;
# a new full node started from genesis syncs to the tip and verifies.
. "$(dirname "$0")/lib.sh"
net_init devnet 17810 1 4
# A tight flood limit: the burst below must reach every node in a few
# frames per peer (TXS), not a frame per transaction.
for k in 1 2 3 4 5; do printf '[peers]\nmax_msgs_per_s = 200\nmax_msg_burst = 200\n' >>"$(conf "$k")"; done
for k in 1 2 3 4; do start "$k" --no-vms; done

check "every node connects to the three others" wait_for 30 peers_are 3 1 2 3 4
check "node 2 says it is a full node and node 1 a validator" \
	bash -c "[ \"\$(curl -sf $(url 2)/v1/status | jq -r .role)\" = 'full node' ] &&
		 [ \"\$(curl -sf $(url 1)/v1/status | jq -r .role)\" = validator ]"

# One transfer submitted to each node; only node 1 makes blocks. Each waits
# for the previous one: the CLI takes the faucet's next nonce from the node
# it talks to.
HASHES=()
for k in 1 2 3 4; do
	HASHES+=("$(transfer_via "$k" $((1000 + k)))")
	check "the transaction submitted to node $k commits on every node" \
		wait_for 30 committed_everywhere "${HASHES[$((k - 1))]}" 1 2 3 4
done
check "the tenant received all four transfers (read from node 4)" \
	bash -c "[ \$($TALLY account show $TENANT --node $(url 4) --json | jq .balance) -eq \
		 $((100000000 + 1001 + 1002 + 1003 + 1004)) ]"
check "all four nodes hold the same block ids" wait_for 30 same_chain 1 1 2 3 4
check "tally status on a full node shows its peers, the validator's power and that it is caught up" \
	bash -c "out=\$($TALLY status --node $(url 3)); echo \"\$out\" | grep -q '^sync       caught up' &&
		 echo \"\$out\" | grep -q '^peers      3 connected: [0-3] of 4 configured dialed, [0-3] inbound' &&
		 echo \"\$out\" | grep -q \"^validator  $(node_key 1)  stake 1.000000  power 100.00%\""
check "/metrics on a full node: 3 peers" [ "$(metric 2 tally_peers)" = 3 ]
check "tally node top on a --no-vms node says it runs no VMs at all, not that it is idle" \
	bash -c "$TALLY node top --once --node $(url 2) | grep -q 'runs with --no-vms' &&
		 $TALLY node top --once --json --node $(url 2) | jq -e '.no_vms == true and .vms == []'"
check "a full node follows the validator's consensus without voting, at the next height" \
	bash -c "[ \"\$(curl -sf $(url 2)/v1/status | jq -c '[.consensus.validator, .consensus.height - .height]')\" = '[false,1]' ]"
check "/metrics on a full node: caught up" [ "$(metric 2 tally_sync_caught_up)" = 1 ]
check "gossip reached the validator: it admitted transactions from peers" \
	metric_ge 1 tally_gossip_txs_received_total 3

# A burst: 600 transfers in four POST /v1/txs batches to full node 2, which
# gossips them on. Each peer gets them in a few TXS frames: with a frame per
# transaction, 600 frames in a second are a flood past the limit above,
# and node 2 would be dropped by its peers.
FORGE=${TALLY_FORGE:-$E2E_ROOT/build/out/tests/forge}
TALLY_CHAIN_ID=net-devnet TALLY_GENESIS_HASH=$(status 1 | jq -r .genesis_hash)
export TALLY_CHAIN_ID TALLY_GENESIS_HASH
FAUCET_PUB=$("$TALLY" key show --key "$FAUCET")
N0=$(curl -sf "$(url 2)/v1/accounts/$FAUCET_PUB" | jq .next_nonce)
# msgs_to K J: the messages node K sent node J since they connected.
msgs_to() { status "$1" | jq ".peers.connected[] | select(.key == \"$(node_key "$2")\") | .msgs_out"; }
SENT0=$(metric 2 tally_gossip_txs_sent_total)
MSGS0=$(msgs_to 2 1)
for b in 0 1 2 3; do
	for i in $(seq 0 149); do
		"$FORGE" transfer "$TENANT" 1 $((N0 + b * 150 + i)) "$FAUCET"
	done | jq -R . | jq -sc '{txs: .}' >"$NET_DIR/burst-$b.json"
done
LAST=$(jq -r '.txs[-1]' "$NET_DIR/burst-3.json")
for b in 0 1 2 3; do
	curl -sf -H 'Content-Type: application/json' --data-binary "@$NET_DIR/burst-$b.json" \
		"$(url 2)/v1/txs" >"$NET_DIR/burst-$b.out" || true
done
check "the burst's 600 transfers were each admitted by node 2" \
	bash -c "cat $NET_DIR/burst-*.out | jq -s '[.[].results[] | select(.status == \"pending\")] | length' | grep -qx 600"
check "the burst commits, and every node holds the faucet's 600 nonces" \
	wait_for 60 bash -c "for k in 1 2 3 4; do [ \"\$(curl -sf http://127.0.0.1:\$((17810 + k - 1))/v1/accounts/$FAUCET_PUB | jq .next_nonce)\" = $((N0 + 600)) ] || exit 1; done"
check "no node dropped a peer for flooding" bash -c "! grep -h 'flooding' $NET_DIR/node-*.log"
check "every node still has its three peers" peers_are 3 1 2 3 4
check "node 2 sent each of the 600 to its three peers (tally_gossip_txs_sent_total)" \
	metric_ge 2 tally_gossip_txs_sent_total $((SENT0 + 1800))
MSGS1=$(msgs_to 2 1)
check "... in TXS frames: node 2 sent node 1 fewer than 300 messages meanwhile (sent $((MSGS1 - MSGS0)))" \
	[ $((MSGS1 - MSGS0)) -lt 300 ]

# SIGKILL a full node; the others go on; it catches up after its restart.
stop 3 KILL
BEFORE=$(height 1)
MORE=()
for i in 1 2 3; do
	MORE+=("$(transfer_via 2 $((2000 + i)))")
	wait_for 30 committed_at 2 "${MORE[$((i - 1))]}" || true
done
check "with node 3 killed, transactions submitted to node 2 still commit" \
	wait_for 30 committed_everywhere "${MORE[2]}" 1 2 4
check "the validator went on past height $BEFORE" [ "$(height 1)" -gt "$BEFORE" ]
start 3 --no-vms
check "the restarted node catches up to the same blocks" wait_for 30 same_chain $((BEFORE + 1)) 1 2 3 4
check "the restarted node has the transactions made while it was down" \
	committed_everywhere "${MORE[0]}" 3
check "the restarted node says it is caught up" wait_for 10 caught_up 3

# A new full node from genesis: node 5 has never run.
TIP=$(height 1)
start 5 --no-vms
check "a new full node syncs from genesis to the tip" wait_for 60 same_chain "$TIP" 1 5
check "tally chain verify --node against the new node passes" \
	"$TALLY" chain verify --node "$(url 5)" --genesis "$NET_DIR/net/genesis.json"
check "the new node counts the blocks it synced" metric_ge 5 tally_sync_blocks_total "$TIP"
H=$(transfer_via 5 777)
check "a transaction submitted to the new node commits everywhere" \
	wait_for 30 committed_everywhere "$H" 1 2 3 4 5

# An operator joins: node init --join, dialing node 2, whose operator then
# allows the new key.
NET_API[6]=$((NET_BASE + 20))
"$TALLY" node init --join "$NET_DIR/net/genesis.json" --dir "$NET_DIR/net/node-6" \
	--peer "$(node_key 2)@127.0.0.1:$(peer_port 2)" --listen "127.0.0.1:${NET_API[6]}" \
	--domain-type qemu --network none --json >"$NET_DIR/join.json"
JK=$(jq -r .node "$NET_DIR/join.json")
check "node init --join writes a node that names the network's genesis" \
	[ "$(jq -r .genesis_hash "$NET_DIR/join.json")" = "$(status 1 | jq -r .genesis_hash)" ]
start 6 --no-vms
check "node 2 refuses the joining node while its key is unknown" \
	wait_for 15 grep -q "refused .*key ${JK:0:16} is unknown" "$(log_of 2)"
check "the joining node says node 2 refused its key, and the line to add there" \
	wait_for 15 grep -q "peers: $(node_key 2 | cut -c1-16) (.*) refused this node's key .*'allow = $JK'" \
	"$(log_of 6)"
check "the joining node says it cannot know whether it is caught up" \
	bash -c "$TALLY status --node $(url 6) | grep -q '^sync       unknown: no peer connected'"
printf '[peers]\nallow = %s\n' "$JK" >>"$(conf 2)"
stop 2
start 2 --no-vms
TIP=$(height 1)
check "once node 2's operator allows it, the joining node syncs to the tip" \
	wait_for 60 same_chain "$TIP" 1 6
check "and says it is caught up" wait_for 10 caught_up 6
net_done
