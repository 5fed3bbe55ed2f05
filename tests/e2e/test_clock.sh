#!/bin/bash
# One clock (issue 11): the node's wall clock steps an hour ahead and back,
# under libfaketime (never the machine's own clock). Blocks keep the true
# time instead of jumping an hour ahead and then crawling 1 ns at a time; a
# lease made during the step opens and its VM is billed; the chain goes on
# once the clock is back.
. "$(dirname "$0")/lib.sh"
FAKETIME_LIB=/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1
[ -r "$FAKETIME_LIB" ] || skip_all "libfaketime is not installed (Debian's faketime)"
e2e_init clock 7720
echo "+0" >"$E2E_DIR/faketime"
# The wall clock tallyd reads follows the file; its monotonic clock is real.
LD_PRELOAD=$FAKETIME_LIB FAKETIME_TIMESTAMP_FILE="$E2E_DIR/faketime" FAKETIME_NO_CACHE=1 \
	FAKETIME_DONT_FAKE_MONOTONIC=1 e2e_start_node
OTHER=$("$TALLY" key new --key "$E2E_DIR/other.pem" 2>/dev/null)
tip_time_s() { curl -s "$TALLY_NODE/v1/status" | jq '.time_ns / 1000000000 | floor'; }
# How far the chain's last block is from the true time, in s (absolute).
drift_s() { local d=$(( $(tip_time_s) - $(date +%s) )); echo "${d#-}"; }
height() { curl -s "$TALLY_NODE/v1/status" | jq .height; }
transfer_commits() {
	local h0
	h0=$(height)
	"$TALLY" transfer --to "$OTHER" 1 >/dev/null && wait_for 30 bash -c "[ \$(curl -s $TALLY_NODE/v1/status | jq .height) -gt $h0 ]"
}

check "a transfer commits before the step" transfer_commits
echo "+1h" >"$E2E_DIR/faketime"
check "a transfer commits with the node's wall clock an hour ahead" transfer_commits
e2e_log "chain time is $(drift_s) s from the true time"
check "... and its block is not dated an hour ahead" [ "$(drift_s)" -lt 30 ]
check "the node says its wall clock stepped" grep -q "wall clock stepped" "$E2E_DIR/tallyd.log"
skew() { curl -s "$TALLY_NODE/metrics" | awk '/^tally_clock_skew_seconds/ { print int($2) }'; }
check "/metrics shows the wall clock an hour from the node's" bash -c \
	"s=\$1; [ \$s -gt 3500 ] && [ \$s -lt 3700 ]" _ "$(skew)"
LEASE=$("$TALLY" lease create --image tiny --vcpus 1 --memory 128 --duration 600 --wait \
	--timeout 120)
check "a lease made during the step opens and runs" lease_state_is "$LEASE" running
records() { "$TALLY" usage "$1" --json | jq '.records | length'; }
has_records() { [ "$(records "$1")" -ge "$2" ]; }
check "its VM is billed: records commit" wait_for 60 has_records "$LEASE" 2
echo "+0" >"$E2E_DIR/faketime"
check "a transfer commits once the clock is back" transfer_commits
check "... and the chain's time is still the true time" [ "$(drift_s)" -lt 30 ]
check "... and /metrics shows no skew" [ "$(skew)" -eq 0 ]
check "records go on after the clock is back" wait_for 60 has_records "$LEASE" 4
"$TALLY" lease close "$LEASE" >/dev/null
check "the lease closes" wait_for 60 lease_state_is "$LEASE" closed
check "the audit verifies it" "$TALLY" audit "$LEASE"
e2e_done
