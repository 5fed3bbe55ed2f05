#!/bin/bash
# A peer's intake drops what comes while it is full (NET_INTAKE_MAX), and
# nothing but a reconnection used to bring a dropped transaction back to it.
# So each node offers each peer again, every NET_REOFFER_MS (15 s), the
# pending transactions that peer did not send it. Here a full node whose
# validator is down keeps a transfer pending; a peer that takes what it is
# sent and relays nothing (as one that dropped it would look) must be sent
# that transfer again about 15 s after the first time, with no reconnection,
# and never the transaction it sent itself.
. "$(dirname "$0")/lib.sh"
net_init reoffer 18490 1 1
printf '[provider]\nannounce = no\n[peers]\nallow = %s\n' \
	"$("$TALLY" key new --key "$NET_DIR/listener.pem" 2>/dev/null)" >>"$(conf 2)"
"$TALLY" key new --key "$NET_DIR/other.pem" >/dev/null 2>&1
start 2 --no-vms        # node 1, its validator, stays down: nothing commits
GH=$(status 2 | jq -r .genesis_hash)
FORGE=${TALLY_FORGE:-$E2E_ROOT/build/out/tests/forge}
TALLY_CHAIN_ID=net-reoffer TALLY_GENESIS_HASH=$GH
export TALLY_CHAIN_ID TALLY_GENESIS_HASH
# The listener's own transaction: the node takes it and must not send it back.
OWN=$("$FORGE" transfer "$("$TALLY" key show --key "$NET_DIR/other.pem")" 1 0 "$TALLY_KEY")
"$PEER_HOSTILE" txs-listen "$(peer_port 2)" 127.0.0.9 "$GH" "$NET_DIR/listener.pem" 24 "$OWN" \
	>"$NET_DIR/heard.out" &
LISTENER=$!
check "the listener connects and the node takes its transaction" wait_for 10 metric_ge 2 tally_gossip_txs_received_total 1
H=$(transfer_via 2 4242)
check "the full node takes the transfer: pending (nothing commits without the validator)" \
	bash -c "curl -sf '$(url 2)/v1/tx/$H/status' | jq -e '.status == \"pending\"' >/dev/null"
wait "$LISTENER"
e2e_log "the listener heard: $(tr '\n' ';' <"$NET_DIR/heard.out")"
read -r _ times first last < <(grep "^$H " "$NET_DIR/heard.out" || echo "- 0 0 0")
check "the transfer was sent to the listener, then again with no reconnection (${times}x)" \
	[ "$times" -ge 2 ]
check "... the second time about 15 s after the first (${first} s, ${last} s)" \
	awk -v f="$first" -v l="$last" 'BEGIN { exit !(l - f >= 13 && l - f <= 40) }'
check "the listener's own transaction was never sent back to it" \
	[ "$(grep -vc "^$H \|^open\|^closed" "$NET_DIR/heard.out")" = 0 ]
check "the listener stayed connected" grep -qx open "$NET_DIR/heard.out"
check "the node counts what it offered again" metric_ge 2 tally_gossip_txs_reoffered_total 1
net_done
