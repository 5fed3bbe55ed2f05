#!/bin/bash
# Four validators, each a real tallyd on 127.0.0.1 without VMs, deciding
# every block together with the consensus engine over the peer network:
# a transfer submitted to any node commits on all four, and the blocks come
# from each validator in turn; one validator SIGKILLed: the chain goes on
# and it catches up after its restart, then votes again; two of four
# stopped: no block commits (no quorum) and nothing forks, and with one
# back the chain goes on; a validator whose clock is a minute behind
# refuses the blocks it syncs, dated ahead of its clock, and says why.
. "$(dirname "$0")/lib.sh"
FAKETIME_LIB=/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1
[ -r "$FAKETIME_LIB" ] || skip_all "libfaketime is not installed (Debian's faketime)"
net_init validators 17870 4 0
for k in 1 2 3 4; do start "$k" --no-vms; done
check "every validator connects to the three others" wait_for 30 peers_are 3 1 2 3 4

# One transfer submitted to each node, each after the last committed (the
# CLI takes the faucet's next nonce from the node it talks to).
HASHES=()
for k in 1 2 3 4; do
	HASHES+=("$(transfer_via "$k" $((1000 + k)))")
	check "the transfer submitted to node $k commits on every node" \
		wait_for 60 committed_everywhere "${HASHES[$((k - 1))]}" 1 2 3 4
done
check "all four hold the same block ids" wait_for 30 same_chain 4 1 2 3 4
NP=$(proposers 1)
check "the blocks' headers name $NP different proposers (at least 3 of 4)" [ "$NP" -ge 3 ]
check "tally status shows the engine's height, round and step, and 4 validators of 25% each" \
	bash -c "out=\$($TALLY status --node $(url 2)); echo \"\$out\" | grep -q '^consensus  height [0-9]* round [0-9]* ' &&
		 [ \$(echo \"\$out\" | grep -c '^validator  .*  power 25.00%  signed [0-9]*  missed [0-9]*$') = 4 ]"
check "/metrics: the height being decided, its round, the block interval" \
	bash -c "curl -sf $(url 3)/metrics | grep -q '^tally_consensus_height [0-9]' &&
		 curl -sf $(url 3)/metrics | grep -q '^tally_consensus_round [0-9]' &&
		 curl -sf $(url 3)/metrics | grep -q '^tally_block_interval_seconds [0-9.]*$'"
signed_by() { curl -sf "$(url "$1")/metrics" | awk -v k="$(node_key "$2")" -v m="tally_validator_$3_blocks_total" \
	'index($1, m "{validator=\"" k "\"}") == 1 { print $2 }'; }
check "/metrics counts the blocks each validator signed" [ "$(signed_by 1 2 signed)" -ge 1 ]

# SIGKILL one validator: three of four hold more than 2/3 of the stake.
stop 3 KILL
BEFORE=$(height 1)
MORE=()
for i in 1 2 3; do
	MORE+=("$(transfer_via $((i % 2 + 1)) $((2000 + i)))")
	wait_for 60 committed_at $((i % 2 + 1)) "${MORE[$((i - 1))]}" || true
done
check "with node 3 killed, transfers still commit on the other three" \
	wait_for 60 committed_everywhere "${MORE[2]}" 1 2 4
check "the chain went on past height $BEFORE" [ "$(height 1)" -gt "$BEFORE" ]
missed_some() { [ "$(signed_by "$1" "$2" missed)" -ge 1 ]; }
check "node 1 counts node 3's missed blocks" wait_for 30 missed_some 1 3
start 3 --no-vms
check "the restarted validator catches up to the same blocks" \
	wait_for 60 same_chain $((BEFORE + 1)) 1 2 3 4
check "it has the transfers made while it was down" committed_everywhere "${MORE[0]}" 3
H=$(transfer_via 3 3001)
check "and takes part again: a transfer sent to it commits everywhere" \
	wait_for 60 committed_everywhere "$H" 1 2 3 4

# Two of four stopped: half the stake is no quorum.
stop 3 KILL
stop 4
TIP=$(height 1)
H=$(transfer_via 1 4001)
check "the transfer to node 1 is accepted into its mempool" [ ${#H} -eq 64 ]
step_of() { status "$1" | jq -r .consensus.step; }
prevoting() { [ "$(step_of 1)" = prevote ] && [ "$(step_of 2)" = prevote ]; }
check "with two of four stopped the two left start the height and wait in prevote" \
	wait_for 30 prevoting
sleep 10
check "... and no block commits for 10 s (half the stake is no quorum)" \
	bash -c "[ $(height 1) = $TIP ] && [ $(height 2) = $TIP ] && [ $(status 1 | jq .consensus.height) = $((TIP + 1)) ]"
check "... and the transfer is not committed" bash -c "! curl -sf $(url 1)/v1/tx/$H >/dev/null"
no_quorum() { [ "$(status 1 | jq -c '[.quorum.reachable, .quorum.reachable_power_pct]')" = '[false,50]' ]; }
check "node 1's status says it hears from 50% of the power: no quorum" wait_for 30 no_quorum
check "... and tally status says so" \
	bash -c "$TALLY status --node $(url 1) | grep -q '^quorum     NONE: 50.00% of the voting power'"
start 3 --no-vms
check "with a third validator back the transfer commits" \
	wait_for 120 committed_everywhere "$H" 1 2 3
quorum_back() { [ "$(status 1 | jq -c '[.quorum.reachable, .quorum.reachable_power_pct]')" = '[true,75]' ]; }
check "... and node 1 hears from 75% of the power again" wait_for 30 quorum_back
check "the three hold the same blocks (no fork)" wait_for 30 same_chain $((TIP + 1)) 1 2 3
start 4 --no-vms
check "the fourth catches up to the same blocks" wait_for 60 same_chain $((TIP + 1)) 1 2 3 4

# A validator whose clock is a minute behind: the blocks made while it was
# down are dated ahead of its clock, and it refuses them.
stop 4
for i in 1 2; do
	H=$(transfer_via 1 $((5000 + i)))
	wait_for 60 committed_everywhere "$H" 1 2 3 || true
done
BEHIND=$(height 4 2>/dev/null || true)
TIP=$(height 1)
echo "-60s" >"$NET_DIR/faketime"
LD_PRELOAD=$FAKETIME_LIB FAKETIME_TIMESTAMP_FILE="$NET_DIR/faketime" FAKETIME_NO_CACHE=1 \
	FAKETIME_DONT_FAKE_MONOTONIC=1 "$TALLYD" -c "$(conf 4)" --no-vms >>"$(log_of 4)" 2>&1 &
NET_PID[4]=$!
check "node 4 (clock a minute behind) refuses the synced blocks and says why" \
	wait_for 30 grep -q "peers: block [0-9]* from .* not applied: block [0-9]*: its time is [0-9]* ms ahead of this node's clock (at most 3000 ms is taken); this node's clock may be behind" "$(log_of 4)"
BEHIND=$(height 4)
check "... and stays below the tip ($BEHIND < $TIP)" [ "$BEHIND" -lt "$TIP" ]
check "... without holding it against the peers that served them" \
	bash -c "! grep -q 'peers: dropped' $(log_of 4)"
stop 4
start 4 --no-vms
check "with its clock right it catches up" wait_for 60 same_chain "$TIP" 1 2 3 4
H=$(transfer_via 4 6001)
check "a transfer sent to it then commits everywhere" wait_for 60 committed_everywhere "$H" 1 2 3 4
check "every node's stored chain verifies from genesis" \
	"$TALLY" chain verify --node "$(url 4)" --genesis "$NET_DIR/net/genesis.json"
net_done
