#!/bin/bash
# Stake and slashing with real tallyd processes: four genesis validators and
# a fifth node that starts as a full node. The fifth stakes (tally stake
# --wait), is in the set from the block after the one that committed its
# STAKE, and signs blocks; it unstakes, leaves the set, and its funds come
# back at the end of the unbonding period and not before. Then a byzantine
# validator (peer_hostile equivocate with validator 4's key) is slashed by
# the genesis fraction and jailed, the chain goes on without a fork, the
# same offence submitted again is refused as judged, validator 4
# unjails after its term, and the chain verifies from genesis.
. "$(dirname "$0")/lib.sh"
net_init stake 17910 4 1
# Short periods, so the test sees them end: unbonding 8 blocks, jail 3.
G="$NET_DIR/net/genesis.json"
jq '.params.unbonding_blocks = 8 | .params.jail_blocks = 3 | .params.slash_ppm = 100000' \
	"$G" >"$G.new" && mv "$G.new" "$G"
for n in 1 2; do
	printf '[peers]\n' >>"$(conf "$n")"
	printf 'allow = %s\n' "$("$TALLY" key new --key "$NET_DIR/byz-$n.pem" 2>/dev/null)" >>"$(conf "$n")"
done
for k in 1 2 3 4 5; do start "$k" --no-vms; done
check "every node connects to the four others" wait_for 30 peers_are 4 1 2 3 4 5
V5=$(node_key 5)
V4=$(node_key 4)
KEY5="$(dirname "$(conf 5)")/node.pem"
KEY4="$(dirname "$(conf 4)")/node.pem"
staking() { curl -sf "$(url "$1")/v1/staking"; }
in_set() { staking "$1" | jq -e --arg k "$2" 'any(.set[]; .pubkey == $k)' >/dev/null; }
stake_of() { staking "$1" | jq -r --arg k "$2" '(.validators[] | select(.pubkey == $k) | .stake) // 0'; }
not_in_set() { ! in_set "$@"; }
balance_of() { curl -sf "$(url "$1")/v1/accounts/$2" | jq -r .balance; }
# every_node CMD ARGS: CMD K ARGS holds for K = 1..5.
every_node() { for k in 1 2 3 4 5; do "$1" "$k" "${@:2}" || return 1; done; }
stake_is() { [ "$(stake_of "$1" "$2")" = "$3" ]; }
balance_is() { [ "$(balance_of "$1" "$2")" = "$3" ]; }
# Blocks come only with transactions: tick makes one.
tick() { H=$(transfer_via "$1" 1); wait_for 60 committed_everywhere "$H" 1 2 3 4 5; }

H=$("$TALLY" transfer --to "$V5" 5000000 --from-key "$FAUCET" --node "$(url 1)" 2>>"$NET_DIR/cli.err")
check "the fifth node's key is funded" wait_for 60 committed_everywhere "$H" 1 2 3 4 5
check "the fifth node is not in the set" not_in_set 1 "$V5"
OUT=$("$TALLY" stake 2000000 --wait --json --key "$KEY5" --node "$(url 5)" 2>>"$NET_DIR/cli.err")
SH=$(echo "$OUT" | jq -r .height)
check "tally stake --wait commits the STAKE (block $SH)" [ "$SH" -ge 1 ]
check "... and says where the key stands: in the set, stake 2000000 ($(echo "$OUT" | jq -c '{stake, in_set}'))" \
	jq -e '.in_set == true and .stake == 2000000' <<<"$OUT"
check "its stake is 2000000 on every node" wait_for 30 every_node stake_is "$V5" 2000000
check "the header of block $SH names the new set as the next (its hash differs from the current)" \
	bash -c "h=\$(curl -sf $(url 1)/v1/blocks/$SH | jq -r .header); [ \$(echo \"\$h\" | jq -r .validators_hash) != \$(echo \"\$h\" | jq -r .next_validators_hash) ]"
check "the set of block $((SH + 1)) holds the fifth node" \
	bash -c "curl -sf '$(url 2)/v1/validators?height=$SH' | jq -e 'any(.validators[]; .pubkey == \"$V5\")' >/dev/null"
check "... and that of block $SH does not" \
	bash -c "curl -sf '$(url 2)/v1/validators?height=$((SH - 1))' | jq -e 'all(.validators[]; .pubkey != \"$V5\")' >/dev/null"
for i in 1 2 3; do tick $((i % 4 + 1)); done
signed5() { [ "$(curl -sf "$(url 1)/metrics" | awk -v m="tally_validator_signed_blocks_total{validator=\"$V5\"}" '$1 == m { print $2 }')" -ge 1 ]; }
check "the fifth node signs blocks (node 1 counts its precommits)" wait_for 60 signed5
check "tally validators shows it in the set with its power" \
	bash -c "$TALLY validators --node $(url 3) | grep -E '^${V5:0:16} .* yes '"
check "tally status on the fifth node names it a validator (the chain's set, not the genesis's)" \
	bash -c "$TALLY status --node $(url 5) | grep -q '^node       $V5  validator\$'"

# Unstake everything: out of the set at once, funds back after 8 blocks.
B5=$(balance_of 1 "$V5")
OUT=$("$TALLY" unstake 2000000 --wait --json --key "$KEY5" --node "$(url 5)" 2>>"$NET_DIR/cli.err")
UH=$(echo "$OUT" | jq -r .height)
check "tally unstake --wait commits the UNSTAKE (block $UH)" [ "$UH" -gt "$SH" ]
check "... and says the key is out of the set, stake 0 ($(echo "$OUT" | jq -c '{stake, in_set}'))" \
	jq -e '.in_set == false and .stake == 0' <<<"$OUT"
check "the fifth node leaves the set" not_in_set 1 "$V5"
check "tally status on it says full node, its key with no stake" \
	bash -c "$TALLY status --node $(url 5) | grep -q '^node       $V5  full node\$' &&
		 $TALLY status --node $(url 5) | grep -q '^validator  this node.s key has no stake: not in the set'"
has_unbonding() {
	staking "$1" | jq -e --arg k "$2" --argjson r "$3" \
		'any(.unbonding[]; .owner == $k and .amount == 2000000 and .release == $r)' >/dev/null
}
check "an unbonding entry releases 2000000 at the end of block $((UH + 8))" \
	has_unbonding 1 "$V5" $((UH + 8))
check "its balance did not change with the UNSTAKE" balance_is 1 "$V5" "$B5"
check "tally account show counts it as unbonding, back at the end of block $((UH + 8))" \
	bash -c "$TALLY account show $V5 --json --node $(url 2) |
		 jq -e '.unbonding == 2000000 and .unbonding_release == $((UH + 8))' >/dev/null &&
		 $TALLY account show $V5 --node $(url 2) | grep -q '^unbonding 2.000000 (first back at the end of block $((UH + 8)))'"
# One transaction, one block: walk to block UH + 7, the last before release.
while [ "$(height 1)" -lt $((UH + 7)) ]; do tick $(($(height 1) % 4 + 1)) || break; done
check "at block $((UH + 7)) (node 1 at $(height 1)) the funds are not back" \
	bash -c "[ $(height 1) = $((UH + 7)) ] && [ $(balance_of 1 "$V5") = $B5 ]"
tick 2
check "after block $((UH + 8)) the 2000000 are back on every node" \
	wait_for 30 every_node balance_is "$V5" $((B5 + 2000000))
no_unbonding() { ! has_unbonding "$@"; }
check "and the unbonding entry is gone" no_unbonding 1 "$V5" $((UH + 8))

# A byzantine validator: validator 4's key signs two precommits.
idle() { [ "$(status 1 | jq -r .consensus.idle)" = true ]; }
# The votes name the height node 1 is idle at; if a transaction starts that
# height before they arrive they are for a decided height and ignored, so the
# offence is shown again (at most three times) at the height then current.
# Nodes 1 and 2 relay the first vote, so the others may see the offence too
# and their EVIDENCE come first: a node that finds it judged says so.
evidence_line() {
	grep -hE "consensus: validator ${V4:0:16} signed two different precommits at height [0-9]+ round [0-9]+; (EVIDENCE [0-9a-f]{64} submitted|another node's EVIDENCE came first: )" \
		"$(log_of 1)" "$(log_of 2)"
}
S4=$(stake_of 1 "$V4")
for try in 1 2 3; do
	check "node 1 waits for transactions at the next height (try $try)" wait_for 30 idle
	GH=$(status 1 | jq -r .genesis_hash)
	CH=$(status 1 | jq -r .consensus.height)
	CR=$(status 1 | jq -r .consensus.round)
	# The same offence shown to nodes 1 and 2 at once: each submits an
	# EVIDENCE with its own key, and only the first to commit is judged.
	"$PEER_HOSTILE" equivocate "$(peer_port 2)" 127.0.0.9 "$GH" "$NET_DIR/byz-2.pem" \
		"$KEY4" "$CH" "$CR" >"$NET_DIR/byz-2.out" &
	OUT=$("$PEER_HOSTILE" equivocate "$(peer_port 1)" 127.0.0.7 "$GH" "$NET_DIR/byz-1.pem" \
		"$KEY4" "$CH" "$CR")
	wait $!
	check "two conflicting precommits of validator 4 at height $CH reach nodes 1 and 2 ($OUT, $(cat "$NET_DIR/byz-2.out"))" \
		bash -c "[ '${OUT%% *}' = open ] && grep -q '^open' $NET_DIR/byz-2.out"
	wait_for 15 evidence_line && break
done
check "node 1 or 2 submits EVIDENCE (or finds another node's first)" wait_for 30 evidence_line
# Nodes 1 and 2 relay the votes the engine accepted, so another validator
# may see the offence too and submit its own EVIDENCE, which may be the one
# that commits first: any node's counts.
any_evidence_line() {
	for k in 1 2 3 4 5; do
		grep -hE "consensus: validator ${V4:0:16} signed two different precommits at height [0-9]+ round [0-9]+; EVIDENCE [0-9a-f]{64} submitted" \
			"$(log_of $k)"
	done
}
committed_one() {
	for ev in $(any_evidence_line | grep -oE 'EVIDENCE [0-9a-f]{64}' | cut -d' ' -f2); do
		committed_everywhere "$ev" 1 2 3 4 5 && echo "$ev" && return 0
	done
	return 1
}
check "an EVIDENCE commits on every node" wait_for 60 committed_one ||
	for k in 1 2 3 4 5; do
		grep -hi "evidence\|dropped\|refused" "$(log_of $k)" | sed "s/^/# node $k: /" | tail -n 20
		for ev in $(any_evidence_line | grep -oE 'EVIDENCE [0-9a-f]{64}' | cut -d' ' -f2); do
			echo "# node $k: $ev: $(curl -sf "$(url $k)/v1/tx/$ev/status")"
		done
	done
EV=$(committed_one)
EH=$(curl -sf "$(url 1)/v1/tx/$EV" | jq -r .height)
check "validator 4's stake is cut by 10% ($S4 -> $((S4 - S4 / 10)))" \
	[ "$(stake_of 2 "$V4")" = $((S4 - S4 / 10)) ]
jailed_until() {
	staking "$1" | jq -e --arg k "$2" --argjson u "$3" \
		'any(.validators[]; .pubkey == $k and .jailed and .jailed_until == $u)' >/dev/null
}
check "validator 4 is jailed until block $((EH + 3))" every_node jailed_until "$V4" $((EH + 3))
check "... and out of the set" not_in_set 3 "$V4"
H=$(transfer_via 2 2002)
check "the chain goes on with three: a transfer commits" wait_for 60 committed_everywhere "$H" 1 2 3 4 5
check "every node holds the same blocks (no fork)" wait_for 30 same_chain "$EH" 1 2 3 4 5
# The same offence again, as another pair of votes in an EVIDENCE the
# tenant signs, sent to node 3: refused as judged, naming the block.
TNONCE=$(curl -sf "$(url 3)/v1/accounts/$TENANT" | jq -r .nonce)
EVTX=$("$PEER_HOSTILE" evidence-tx "net-stake" "$GH" "$TALLY_KEY" "$KEY4" "$CH" "$CR" "$TNONCE")
ANSWER=$(curl -s -w ' %{http_code}' -H 'Content-Type: application/json' \
	-d "{\"tx\": \"$EVTX\"}" "$(url 3)/v1/tx" | tr -d '\n')
check "the same offence submitted again is refused as judged in block $EH ($ANSWER)" \
	grep -qE "this offence of ${V4:0:8}.* was judged in block $EH.* 409$" <<<"$ANSWER"
check "validator 4 was slashed once" every_node stake_is "$V4" $((S4 - S4 / 10))

# Unjail: refused before the term ends, taken after.
if [ "$(height 1)" -lt $((EH + 2)) ]; then
	OUT=$("$TALLY" unjail --wait --key "$KEY4" --node "$(url 4)" 2>&1 || true)
	check "tally unjail before block $((EH + 3)) is refused and says until when ($OUT)" \
		grep -q "jailed until block $((EH + 3))" <<<"$OUT"
fi
while [ "$(height 1)" -lt $((EH + 3)) ]; do tick 1 || break; done
OUT=$("$TALLY" unjail --wait --json --key "$KEY4" --node "$(url 4)" 2>>"$NET_DIR/cli.err" || true)
check "after the term tally unjail commits" [ "$(echo "$OUT" | jq -r .kind)" = UNJAIL ]
check "validator 4 is back in the set" in_set 1 "$V4"
OUT=$("$TALLY" unjail --key "$KEY4" --node "$(url 4)" 2>&1) && RC=0 || RC=$?
check "a second unjail is refused before it is signed: the key is not jailed ($OUT)" \
	bash -c "[ $RC -eq 1 ] && grep -q 'key ${V4:0:16}... is not jailed' <<<\"\$0\"" "$OUT"
H=$(transfer_via 3 3003)
check "the chain goes on, validator 4 voting again" \
	wait_for 60 committed_everywhere "$H" 1 2 3 4 5
check "every node's stored chain verifies from genesis (stake, unstake, evidence, unjail replayed)" \
	"$TALLY" chain verify --node "$(url 5)" --genesis "$G"
net_done
