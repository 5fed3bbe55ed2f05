#!/bin/bash
# Jailing for downtime with real tallyd processes: four validators of equal
# stake, a liveness window of 6 blocks and a jail term of 4. Validator 4 is
# paused (SIGSTOP); the other three keep committing, and once six commits
# in a row lack its precommit it is jailed on every node, without a slash,
# and leaves the set. It is resumed (SIGCONT), catches up, sends UNJAIL
# after its term (refused before), is back in the set and signs again.
# The chain, jailing included, verifies from genesis (node and export file).
. "$(dirname "$0")/lib.sh"
net_init liveness 17950 4 0
WINDOW=6
JAIL=4
G="$NET_DIR/net/genesis.json"
jq --argjson w $WINDOW --argjson j $JAIL \
	'.params.liveness_window = $w | .params.jail_blocks = $j | .params.unbonding_blocks = 8' \
	"$G" >"$G.new" && mv "$G.new" "$G"
for k in 1 2 3 4; do start "$k" --no-vms; done
check "every node connects to the three others" wait_for 30 peers_are 3 1 2 3 4
V4=$(node_key 4)
KEY4="$(dirname "$(conf 4)")/node.pem"
staking() { curl -sf "$(url "$1")/v1/staking"; }
in_set() { staking "$1" | jq -e --arg k "$2" 'any(.set[]; .pubkey == $k)' >/dev/null; }
not_in_set() { ! in_set "$@"; }
field_of() { staking "$1" | jq -r --arg k "$2" ".validators[] | select(.pubkey == \$k) | .$3"; }
jailed() { [ "$(field_of "$1" "$V4" jailed)" = true ]; }
# Blocks come only with transactions: tick makes one on nodes LIST.
tick() { local h; h=$(transfer_via "$1" 1); wait_for 60 committed_everywhere "$h" "${@:2}"; }
signed4() { metric 1 "tally_validator_signed_blocks_total{validator=\"$V4\"}"; }

check "the genesis sets a liveness window of $WINDOW" \
	bash -c "$TALLY validators --node $(url 1) | grep -q 'after $WINDOW missed commits in a row'"
# A certificate holds the precommits its proposer had at a quorum (three of
# four): a running validator may be left out of some (a busy host), never of
# a window. So blocks are made until the last counted holds validator 4's,
# at most WINDOW - 2 of them (too few to jail it).
holds4() { [ "$(field_of 1 "$V4" missed_in_a_row)" = 0 ] && [ "$(signed4)" -ge 1 ] 2>/dev/null; }
for i in $(seq 1 $((WINDOW - 2))); do
	tick $((i % 4 + 1)) 1 2 3 4
	[ "$i" -lt 2 ] || ! holds4 || break
done
S4=$(field_of 1 "$V4" stake)
check "validator 4 signs while it runs ($(signed4) certificates), not jailed" \
	bash -c "[ '$(field_of 1 "$V4" missed_in_a_row)' -lt $WINDOW ] && [ '$(field_of 1 "$V4" jailed)' = false ] && [ $(signs=$(signed4); echo "${signs:-0}") -ge 1 ]"

# Paused: the three others commit without its precommits.
kill -STOP "${NET_PID[4]}"
PH=$(height 1)
for i in 1 2; do tick $((i % 3 + 1)) 1 2 3; done
check "the chain counts validator 4's misses ($(field_of 1 "$V4" missed_in_a_row) in a row)" \
	bash -c "[ \$(curl -sf $(url 2)/v1/staking | jq -r --arg k $V4 '.validators[] | select(.pubkey == \$k) | .missed_in_a_row') -ge 1 ]"
check "tally validators shows the count" \
	bash -c "$TALLY validators --node $(url 3) | grep -E '^${V4:0:16} .* [1-9][0-9]*  no$'"
n=0
while ! jailed 1 && [ $n -lt $((WINDOW + 4)) ]; do tick $((n % 3 + 1)) 1 2 3 || break; n=$((n + 1)); done
JH=$(($(field_of 1 "$V4" jailed_until) - JAIL))
# The certificate stored with block H is the one block H + 1 names, the one
# the rule counted at H + 1; a signer's public key shows in its hex.
in_cert() { curl -sf "$(url 1)/v1/blocks/$1" | jq -r .cert | grep -qi "$V4"; }
missed_run() {
	for h in $(seq $((JH - WINDOW)) $((JH - 1))); do ! in_cert "$h" || return 1; done
	in_cert $((JH - WINDOW - 1))
}
jailed_after_run() { jailed 2 && [ "$JH" -le $((PH + WINDOW + 1)) ] && missed_run; }
check "validator 4 is jailed at block $JH (paused after block $PH): the certificates of blocks $((JH - WINDOW))..$((JH - 1)) lack it, that of $((JH - WINDOW - 1)) holds it" \
	jailed_after_run
jailed_on() { for k in "$@"; do [ "$(field_of "$k" "$V4" jailed) $(field_of "$k" "$V4" jailed_until)" = "true $((JH + JAIL))" ] || return 1; done; }
check "on every running node, until block $((JH + JAIL))" jailed_on 1 2 3
check "its stake is unchanged: no slash ($S4)" [ "$(field_of 3 "$V4" stake)" = "$S4" ]
check "... and the count starts again from 0" [ "$(field_of 3 "$V4" missed_in_a_row)" = 0 ]
check "it is out of the set" not_in_set 1 "$V4"
check "the header of block $JH names the smaller set as the next" \
	bash -c "h=\$(curl -sf $(url 1)/v1/blocks/$JH | jq -r .header); [ \$(echo \"\$h\" | jq -r .validators_hash) != \$(echo \"\$h\" | jq -r .next_validators_hash) ]"
check "a node's log says it was jailed for downtime" \
	grep -q "height $JH: validator $V4 jailed for downtime" "$(log_of 1)"
check "tally validators shows it jailed" \
	bash -c "$TALLY validators --node $(url 2) | grep -E '^${V4:0:16} .* until block $((JH + JAIL))$'"
H=$(transfer_via 2 2002)
check "the chain goes on with three: a transfer commits" wait_for 60 committed_everywhere "$H" 1 2 3

# Resumed: it catches up, and unjails after its term.
kill -CONT "${NET_PID[4]}"
synced4() { [ "$(height 4)" -ge "$(height 1)" ]; }
check "validator 4 resumes and catches up" wait_for 60 synced4
check "it has the same blocks as the others" wait_for 30 same_chain "$JH" 1 2 3 4
check "tally status on node 4 says its key is jailed until block $((JH + JAIL))" \
	bash -c "$TALLY status --node $(url 4) | grep -q '^jailed     this node.s validator key, until block $((JH + JAIL))'"
check "... and /v1/status its state: jailed, out of the set" \
	bash -c "curl -sf $(url 4)/v1/status | jq -e '.self_validator | .jailed and (.in_set | not) and .jailed_until == $((JH + JAIL))'"
if [ "$(height 1)" -lt $((JH + JAIL - 1)) ]; then
	OUT=$("$TALLY" unjail --wait --key "$KEY4" --node "$(url 4)" 2>&1 || true)
	check "tally unjail before block $((JH + JAIL)) is refused and says until when ($OUT)" \
		grep -q "jailed until block $((JH + JAIL))" <<<"$OUT"
fi
while [ "$(height 1)" -lt $((JH + JAIL)) ]; do tick 1 1 2 3 4 || break; done
OUT=$("$TALLY" unjail --wait --json --key "$KEY4" --node "$(url 4)" 2>>"$NET_DIR/cli.err" || true)
check "after the term tally unjail commits" [ "$(echo "$OUT" | jq -r .kind)" = UNJAIL ]
check "validator 4 is back in the set" in_set 1 "$V4"
check "tally status on node 4 no longer says jailed" \
	bash -c "! $TALLY status --node $(url 4) | grep -q '^jailed'"
check "its stake is still $S4" [ "$(field_of 1 "$V4" stake)" = "$S4" ]
B4=$(signed4)
# A certificate holds the precommits its proposer had at a quorum: one that
# just caught up may be left out of a few; a block that holds its
# precommit sets the count back to 0.
more_signed() { [ "$(signed4)" -gt "${B4:-0}" ] && [ "$(field_of 1 "$V4" missed_in_a_row)" = 0 ]; }
n=0
while ! more_signed && [ $n -lt $((WINDOW - 1)) ]; do tick $((n % 4 + 1)) 1 2 3 4 || break; n=$((n + 1)); done
check "it signs again (node 1 counts its precommits: ${B4:-0} -> $(signed4), $n blocks) and the count is back to 0" more_signed
check "it is still in the set" in_set 2 "$V4"
check "every node holds the same blocks (no fork)" wait_for 30 same_chain "$(height 1)" 1 2 3 4
check "the stored chain verifies from genesis (the jailing replayed)" \
	"$TALLY" chain verify --node "$(url 4)" --genesis "$G"
"$TALLY" chain export "$NET_DIR/chain.bin" --node "$(url 2)" >/dev/null 2>>"$NET_DIR/cli.err"
check "the exported chain verifies from genesis" \
	bash -c "$TALLY chain verify $NET_DIR/chain.bin --genesis $G | grep -q ' verified: '"
net_done
