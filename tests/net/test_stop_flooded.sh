#!/bin/bash
# A validator told to stop while a peer floods it with transactions (the
# queue of peers' transactions full, the network thread queueing more on
# every frame) stops cleanly: the network thread stops before the queue it
# pushes to is freed, so no frame read meanwhile reaches a freed queue.
# Five times, as the window is a moment of each stop.
. "$(dirname "$0")/lib.sh"
net_init stopflood 18470 1 0
printf '[provider]\nannounce = no\n' >>"$(conf 1)"
printf '[peers]\nallow = %s\n' "$("$TALLY" key new --key "$NET_DIR/flood.pem" 2>/dev/null)" >>"$(conf 1)"
"$TALLY" key new --key "$NET_DIR/signer.pem" >/dev/null 2>&1
flooded() { metric_ge 1 tally_gossip_txs_dropped_total 1; }
for round in 1 2 3 4 5; do
	start 1 --no-vms
	GH=$(status 1 | jq -r .genesis_hash)
	"$PEER_HOSTILE" txs-flood "$(peer_port 1)" 127.0.0.7 "$GH" "$NET_DIR/flood.pem" \
		net-stopflood "$NET_DIR/signer.pem" 30 >/dev/null 2>&1 &
	FLOOD=$!
	check "round $round: the flood fills the validator's intake" wait_for 20 flooded
	kill -TERM "${NET_PID[1]}"
	rc=0
	wait "${NET_PID[1]}" || rc=$?
	unset "NET_PID[1]"
	check "round $round: the validator stopped cleanly under the flood (exit $rc)" [ "$rc" -eq 0 ]
	kill "$FLOOD" 2>/dev/null || true
	wait "$FLOOD" 2>/dev/null || true
done
net_done
