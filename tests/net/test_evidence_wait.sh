#!/bin/bash
# Evidence is not lost to a passing shortage: node 1 sees a validator
# equivocate while its disk is short of its reserve ([node] min_free_mib),
# so the node takes no new transaction, its own EVIDENCE included. It says
# the EVIDENCE waits, keeps it longer than any fixed number of tries would,
# and submits it once space is freed; the chain judges it.
#
# Node 1's data directory is a small file system of the test's own (tmpfs in
# a private mount namespace). The conflicting votes are precommits for the
# round after the one the network is idle in: node 1 relays the first, the
# others hold it, and nobody else sees a second vote of that round, so the
# EVIDENCE can only come from node 1.
. "$(dirname "$0")/../support/mount_ns.sh"
. "$(dirname "$0")/lib.sh"
net_init evwait 17970 4 0
DATA="$NET_DIR/net/node-1/data"
mkdir -p "$DATA"
mount -t tmpfs -o size=48m,mode=0700 tmpfs "$DATA"
evwait_cleanup() {
	set +e
	for k in "${!NET_PID[@]}"; do
		kill -TERM "${NET_PID[$k]}" 2>/dev/null
		wait "${NET_PID[$k]}" 2>/dev/null
	done
	umount "$DATA" 2>/dev/null
	net_cleanup
}
trap evwait_cleanup EXIT
printf '[node]\nmin_free_mib = 8\n[peers]\nallow = %s\n' \
	"$("$TALLY" key new --key "$NET_DIR/byzantine.pem" 2>/dev/null)" >>"$(conf 1)"
for k in 1 2 3 4; do start "$k" --no-vms; done
check "every validator connects to the three others" wait_for 30 peers_are 3 1 2 3 4
H=$(transfer_via 1 1001)
check "a first transfer commits everywhere" wait_for 60 committed_everywhere "$H" 1 2 3 4
V4=$(node_key 4)

# Node 1's disk falls below its reserve.
free_mib() { df -m --output=avail "$DATA" | tail -n 1 | tr -d ' '; }
dd if=/dev/zero of="$DATA/ballast" bs=1M count=$(($(free_mib) - 4)) status=none 2>/dev/null || true
check "node 1's disk is short of its 8 MiB reserve ($(free_mib) MiB free)" [ "$(free_mib)" -lt 8 ]
refused_for_disk() {
	! "$TALLY" transfer --to "$TENANT" 1 --from-key "$FAUCET" --node "$(url 1)" \
		>/dev/null 2>"$NET_DIR/refusal" && grep -q "disk is nearly full" "$NET_DIR/refusal"
}
check "node 1 refuses new transactions for it" refused_for_disk

idle() { [ "$(status 1 | jq -r .consensus.idle)" = true ]; }
check "node 1 waits for transactions at the next height" wait_for 30 idle
GH=$(status 1 | jq -r .genesis_hash)
CH=$(status 1 | jq -r .consensus.height)
CR=$(($(status 1 | jq -r .consensus.round) + 1))
OUT=$("$PEER_HOSTILE" equivocate "$(peer_port 1)" 127.0.0.7 "$GH" "$NET_DIR/byzantine.pem" \
	"$(dirname "$(conf 4)")/node.pem" "$CH" "$CR")
check "two conflicting precommits of validator 4 for round $CR are sent ($OUT)" [ "${OUT%% *}" = open ]
waits_line() {
	grep -E "consensus: validator ${V4:0:16} signed two different precommits at height $CH round $CR; its EVIDENCE waits \(tried again until the node takes it\): .*disk" \
		"$(log_of 1)"
}
check "node 1 names the equivocation and says its EVIDENCE waits for disk space" \
	wait_for 30 waits_line
# Longer than the 5 s a fixed ten tries would have lasted.
sleep 8
submitted_line() {
	grep -E "consensus: validator ${V4:0:16} signed two different precommits at height $CH round $CR; EVIDENCE [0-9a-f]{64} submitted \(try [0-9]+\)" \
		"$(log_of 1)"
}
check "... and submits nothing while the disk is short" eval '! submitted_line'
check "... logging no error" eval '! grep -q " error: " "$(log_of 1)"'

rm -f "$DATA/ballast"
check "once space is freed node 1 submits the EVIDENCE it kept" wait_for 60 submitted_line
EV=$(submitted_line | grep -oE 'EVIDENCE [0-9a-f]{64}' | cut -d' ' -f2 | head -n 1)
check "the EVIDENCE commits on every node" wait_for 60 committed_everywhere "$EV" 1 2 3 4
jailed4() {
	curl -sf "$(url "$1")/v1/staking" |
		jq -e --arg k "$V4" 'any(.validators[]; .pubkey == $k and .jailed)' >/dev/null
}
every_node() { for k in 1 2 3 4; do "$1" "$k" || return 1; done; }
check "validator 4 is jailed on every node" wait_for 30 every_node jailed4
H=$(transfer_via 2 1002)
check "the chain goes on: a transfer commits everywhere" wait_for 60 committed_everywhere "$H" 1 2 3
net_done
