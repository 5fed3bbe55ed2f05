#!/bin/bash
# Faults between four validators (real tallyd processes, no VMs) while
# transfers keep coming: each validator in turn paused (SIGSTOP) briefly, a
# delay shorter than any timeout; then each in turn paused for longer than
# the propose timeout, so that the heights it should propose go to round 1
# without it, and what it missed reaches it only by block sync; then two of
# four paused at once, a partition without a quorum on either side, during
# which nothing commits. Rounds above 0 happen (in the live nodes'
# /metrics and in the commit certificates of the chain), every node decides
# the same blocks, every transfer accepted commits on all four, and after
# the faults the chain goes on.
. "$(dirname "$0")/lib.sh"
net_init partition 17910 4 0
for k in 1 2 3 4; do start "$k" --no-vms; done
check "every validator connects to the three others" wait_for 30 peers_are 3 1 2 3 4

# A paused node answers nothing: every request here has a deadline.
PAUSED="$NET_DIR/paused"
: >"$PAUSED"
: >"$NET_DIR/pumped"
q() { curl -sf --max-time 3 "$@"; }
live() { ! grep -qx "$1" "$PAUSED"; }
pause() {
	echo "$1" >>"$PAUSED"
	kill -STOP "${NET_PID[$1]}"
}
resume() {
	kill -CONT "${NET_PID[$1]}"
	sed -i "/^$1\$/d" "$PAUSED"
}
height_q() { q "$(url "$1")/v1/status" | jq -r .height; }
caught() { [ "$(height_q "$1")" -ge "$2" ]; }

# The load: one transfer after another, each sent to a node not paused and
# awaited there (up to 30 s, or until that node is paused), so that the CLI
# takes the faucet's next nonce from a node that has the last one. The
# hashes of those the node they were sent to committed go to
# $NET_DIR/pumped (one caught in a pause may be replaced by another with its
# nonce, and never commit). Alongside, the round each live node is
# deciding, from its /metrics, goes to $NET_DIR/rounds.
pump() {
	local i=0 k h
	while [ ! -e "$NET_DIR/stop" ]; do
		i=$((i + 1))
		k=$((i % 4 + 1))
		live "$k" || continue
		h=$(timeout 10 "$TALLY" transfer --to "$TENANT" $((100 + i)) --from-key "$FAUCET" \
			--node "$(url "$k")" 2>>"$NET_DIR/cli.err") || true
		[ ${#h} -eq 64 ] || { sleep 0.5; continue; }
		for _ in $(seq 1 60); do
			live "$k" || break
			q "$(url "$k")/v1/tx/$h" >/dev/null && { echo "$h" >>"$NET_DIR/pumped"; break; }
			sleep 0.5
		done
	done
}
watch_rounds() {
	while [ ! -e "$NET_DIR/stop" ]; do
		for k in 1 2 3 4; do
			live "$k" || continue
			q "$(url "$k")/metrics" | awk '$1 == "tally_consensus_round" { print $2 }' >>"$NET_DIR/rounds"
		done
		sleep 0.3
	done
}
pump &
PUMP=$!
watch_rounds &
WATCH=$!
committed_n() { [ "$(wc -l <"$NET_DIR/pumped" 2>/dev/null || echo 0)" -ge "$1" ]; }
check "transfers commit under load with no fault" wait_for 60 committed_n 3

# Delays: each validator paused for 1.5 s, shorter than any timeout.
for k in 1 2 3 4; do
	pause "$k"
	sleep 1.5
	resume "$k"
	sleep 1
done
N=$(wc -l <"$NET_DIR/pumped")
check "transfers go on through short pauses of each validator in turn" wait_for 60 committed_n $((N + 2))

# Each validator in turn paused for 8 s: longer than the propose timeout
# (3 s), so the heights it should propose go to a later round, and the
# others' votes and blocks of those heights reach it only by block sync.
for k in 1 2 3 4; do
	H0=$(height_q $((k % 4 + 1)))
	pause "$k"
	sleep 8
	H1=$(height_q $((k % 4 + 1)))
	resume "$k"
	check "with node $k paused the three others commit ($H0 -> $H1)" [ "$H1" -gt "$H0" ]
	check "node $k catches up after its pause" wait_for 60 caught "$k" "$H1"
done

# A partition with no quorum: nodes 3 and 4 paused together for 10 s.
pause 3
pause 4
sleep 2
T1=$(height_q 1)
sleep 8
T2=$(height_q 1)
T2b=$(height_q 2)
check "with two of four paused nothing commits ($T1 = $T2 = $T2b)" \
	bash -c "[ '$T1' = '$T2' ] && [ '$T2' = '$T2b' ]"
resume 3
resume 4
N=$(wc -l <"$NET_DIR/pumped")
check "once the partition heals the chain goes on" wait_for 90 committed_n $((N + 2))

touch "$NET_DIR/stop"
wait "$PUMP" "$WATCH" 2>/dev/null || true
MAXR=$(sort -n "$NET_DIR/rounds" | tail -n 1)
# Sampled twice a second, /metrics may miss a round that lasted less: the
# certificates below are the record that cannot miss one.
e2e_log "the highest round the live nodes' /metrics showed: ${MAXR:-0}"

# The chain holds the same: the round of each block's commit certificate
# (u64 height, then u32 round, little-endian, in the hex of GET /v1/blocks/N).
cert_round() {
	local c
	c=$(q "$(url "$1")/v1/blocks/$2" | jq -r .cert)
	echo $((16#${c:22:2}${c:20:2}${c:18:2}${c:16:2}))
}
H=$(height 1)
LATE=0
for i in $(seq 1 "$H"); do
	[ "$(cert_round 1 "$i")" -gt 0 ] && LATE=$((LATE + 1))
done
check "$LATE of the $H blocks were decided in a round above 0" [ "$LATE" -gt 0 ]

all_pumped() {
	local h
	while read -r h; do committed_everywhere "$h" 1 2 3 4 || return 1; done <"$NET_DIR/pumped"
}
check "each of the $(wc -l <"$NET_DIR/pumped") transfers committed by the node it was sent to commits on all four" \
	wait_for 60 all_pumped
check "every node decided the same blocks" wait_for 60 same_chain "$H" 1 2 3 4
for k in 1 2 3 4; do
	h=$(transfer_via "$k" $((9000 + k)))
	check "after the faults a transfer sent to node $k commits on all four" \
		wait_for 60 committed_everywhere "$h" 1 2 3 4
done
check "every node decided the same blocks to the end" wait_for 30 same_chain $((H + 1)) 1 2 3 4
check "the stored chain verifies from genesis" \
	"$TALLY" chain verify --node "$(url 3)" --genesis "$NET_DIR/net/genesis.json"
net_done
