#!/bin/bash
# A byzantine validator among four: a test tool (peer_hostile equivocate)
# holding validator 4's key signs two precommits for one height and round
# with two different blocks and sends both to node 1. Node 1 sees the
# equivocation, submits an EVIDENCE transaction with its node key, and every
# node commits it; the chain goes on, with the same blocks on every node
# (no fork). A peer that sends a vote whose signature does not verify is
# dropped.
. "$(dirname "$0")/lib.sh"
net_init byzantine 17890 4 0
# The keys the test tools connect with, allowed by node 1 as an operator
# would a new peer: one for the byzantine votes, one for the forgery (each
# offence bans its key for a while).
printf '[peers]\n' >>"$(conf 1)"
for c in byzantine forger; do
	printf 'allow = %s\n' "$("$TALLY" key new --key "$NET_DIR/$c.pem" 2>/dev/null)" >>"$(conf 1)"
done
for k in 1 2 3 4; do start "$k" --no-vms; done
check "every validator connects to the three others" wait_for 30 peers_are 3 1 2 3 4
H=$(transfer_via 1 1001)
check "a first transfer commits everywhere" wait_for 60 committed_everywhere "$H" 1 2 3 4
GH=$(status 1 | jq -r .genesis_hash)
P=$(peer_port 1)
V4=$(node_key 4)

# The chain is idle (no transactions): node 1 waits at the next height, round 0.
idle() { [ "$(status 1 | jq -r .consensus.idle)" = true ]; }
check "node 1 waits for transactions at the next height" wait_for 30 idle
CH=$(status 1 | jq -r .consensus.height)
CR=$(status 1 | jq -r .consensus.round)
OUT=$("$PEER_HOSTILE" equivocate "$P" 127.0.0.7 "$GH" "$NET_DIR/byzantine.pem" \
	"$(dirname "$(conf 4)")/node.pem" "$CH" "$CR")
check "two conflicting precommits signed with validator 4's key are sent (and taken: $OUT)" \
	[ "${OUT%% *}" = open ]
# Node 1 submits EVIDENCE; the others may see the offence too (node 1
# relays the first vote, which conflicts with validator 4's own for the
# block it wakes them to decide), and one of theirs may come first.
evidence_line() {
	grep -E "consensus: validator ${V4:0:16} signed two different precommits at height $CH round $CR; (EVIDENCE [0-9a-f]{64} submitted|another node's EVIDENCE came first: evidence: this offence of ${V4:0:8}… was judged in block [0-9]+)\$" \
		"$(log_of 1)"
}
check "node 1 names the equivocation and submits EVIDENCE (or finds another node's first)" \
	wait_for 30 evidence_line
check "... with no error logged" eval '! grep -q " error: " "$(log_of 1)"'

# What node 1 said of it, for a failure's reader.
grep -iE "evidence|equivocat|two different" "$(log_of 1)" | tail -n 5 | sed 's/^/# node 1: /' || true
# Node 1 relays the votes its engine accepted, so another validator may see
# the offence too and submit an EVIDENCE of its own, which may be the one
# that commits first (node 1's is then refused as judged): any node's counts.
# committed_ev: prints the one committed on every node, or fails.
committed_ev() {
	local ev
	for ev in $(for k in 1 2 3 4; do
			grep -hE "consensus: validator ${V4:0:16} signed two different precommits at height $CH round $CR; EVIDENCE [0-9a-f]{64} submitted" "$(log_of $k)"
		    done | grep -oE 'EVIDENCE [0-9a-f]{64}' | cut -d' ' -f2); do
		committed_everywhere "$ev" 1 2 3 4 && echo "$ev" && return 0
	done
	return 1
}
check "an EVIDENCE transaction commits on every node" wait_for 60 committed_ev
EV=$(committed_ev || true)
check "... as an EVIDENCE carrying validator 4's key (read from node 3)" \
	bash -c "curl -sf $(url 3)/v1/tx/$EV | jq -e '.kind == \"EVIDENCE\"' &&
		 curl -sf $(url 3)/v1/tx/$EV | jq -r .tx | grep -q $V4"
check "/metrics on node 1 counts the equivocation" metric_ge 1 tally_consensus_evidence_total 1
H=$(transfer_via 2 2002)
check "the chain goes on: a transfer commits everywhere" wait_for 60 committed_everywhere "$H" 1 2 3 4
check "and every node holds the same blocks (no fork)" wait_for 30 same_chain 2 1 2 3 4
check "the stored chain verifies from genesis, the evidence with it" \
	"$TALLY" chain verify --node "$(url 2)" --genesis "$NET_DIR/net/genesis.json"

# A vote naming validator 4 whose signature does not verify.
OUT=$("$PEER_HOSTILE" forged-vote "$P" 127.0.0.8 "$GH" "$NET_DIR/forger.pem" "$V4")
check "a vote with a forged signature: the peer is dropped ($OUT)" [ "$OUT" = closed ]
check "node 1 says why" grep -q "dropped .*: it sent a consensus message that does not verify" "$(log_of 1)"
check "the validators stay connected" peers_are 3 1 2 3 4
net_done
