#!/bin/bash
# Full disk (issue 17): the node's data directory is a small file system of
# the test's own (tmpfs in a private mount namespace) that fills up.
#   - Short of its reserve ([node] min_free_mib): new transactions get
#     507 disk_full with the reason, reads go on, nothing committed is lost,
#     and once space is freed the node takes work again; the lease's records
#     stay contiguous across the episode.
#   - Full to the last byte with transactions already admitted (no reserve):
#     their commits fail, the node stays up and serves reads, and once space
#     is freed they commit; the chain replays and the audit verifies.
. "$(dirname "$0")/../support/mount_ns.sh"
. "$(dirname "$0")/../e2e/lib.sh"
e2e_init disk 7770
DATA="$E2E_DIR/node/data"
mkdir -p "$DATA"
mount -t tmpfs -o size=48m,mode=0700 tmpfs "$DATA"
disk_cleanup() {
	set +e
	[ -n "$E2E_NODE_PID" ] && kill "$E2E_NODE_PID" 2>/dev/null && wait "$E2E_NODE_PID" 2>/dev/null
	E2E_NODE_PID=
	for d in $(virsh -q -c qemu:///system list --all --name | grep "^$E2E_PREFIX"); do
		virsh -q -c qemu:///system destroy "$d" >/dev/null 2>&1
		virsh -q -c qemu:///system undefine "$d" >/dev/null 2>&1
	done
	umount "$DATA" 2>/dev/null
	e2e_cleanup
}
trap disk_cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
echo "min_free_mib = 8" >>"$E2E_DIR/node/tallyd.conf"   # the last section is [node]
e2e_start_node
OTHER=$("$TALLY" key new --key "$E2E_DIR/other.pem" 2>/dev/null)
free_mib() { df -m --output=avail "$DATA" | tail -n 1 | tr -d ' '; }
# fill_to MIB: a filler file leaving about MIB free.
fill_to() {
	local n=$(( $(free_mib) - $1 ))
	[ "$n" -gt 0 ] && { dd if=/dev/zero of="$DATA/filler.$RANDOM" bs=1M count="$n" 2>/dev/null || true; }
	return 0
}
status() { curl -s "$TALLY_NODE/v1/status"; }
post_transfer() {    # prints the HTTP status of a transfer of 1
	"$TALLY" transfer --to "$OTHER" 1 >"$E2E_DIR/out" 2>&1 && echo 202 ||
		grep -oE 'HTTP [0-9]+' "$E2E_DIR/out" | cut -d' ' -f2
}
records() { "$TALLY" usage "$1" --json | jq '.records | length'; }

A=$("$TALLY" lease create --image tiny --vcpus 1 --memory 128 --duration 900 --wait --timeout 180)
check "a lease runs and is metered" wait_for 60 bash -c "[ \$($TALLY usage $A --json | jq '.records | length') -ge 2 ]"

# --- short of the reserve ------------------------------------------------------
H=$(status | jq .height)
ID=$(curl -s "$TALLY_NODE/v1/blocks/$H" | jq -r .id)
fill_to 4
e2e_log "data dir: $(free_mib) MiB free"
code=$(post_transfer)
e2e_log "a transfer with 4 MiB free and 8 kept in reserve: $code $(cat "$E2E_DIR/out")"
check "a new transaction gets 507" [ "$code" = 507 ]
check "... saying the disk is nearly full" grep -q "disk is nearly full" "$E2E_DIR/out"
check "reads go on: status" curl -sf "$TALLY_NODE/v1/status"
check "reads go on: the lease and its records" "$TALLY" usage "$A"
check "nothing committed was lost" [ "$(status | jq .height)" -ge "$H" ]
check "... or changed" [ "$(curl -s "$TALLY_NODE/v1/blocks/$H" | jq -r .id)" = "$ID" ]
N=$(records "$A")
sleep 6
rm -f "$DATA"/filler.*
check "once space is freed, a transaction commits" wait_for 30 bash -c \
	"$TALLY transfer --to $OTHER 1 >/dev/null 2>&1"
check "... and the lease's records go on" wait_for 60 bash -c \
	"[ \$($TALLY usage $A --json | jq '.records | length') -ge $((N + 2)) ]"
"$TALLY" usage "$A" --json >"$E2E_DIR/usage.json"
check "its records are contiguous across the episode" \
	jq -e '[.records as $r | range(1; $r | length) | $r[.].start_ns == $r[. - 1].end_ns] | all' \
	"$E2E_DIR/usage.json"

# --- full to the last byte, with work admitted --------------------------------
e2e_stop_node
sed -i 's/^min_free_mib = 8$/min_free_mib = 0/' "$E2E_DIR/node/tallyd.conf"
# Blocks wait 5 s, so that transfers sit admitted when the disk fills.
sed -i 's/^block_interval_ms = 500$/block_interval_ms = 5000/' "$E2E_DIR/node/tallyd.conf"
e2e_start_node
H=$(status | jq .height)
BAL=$(curl -s "$TALLY_NODE/v1/accounts/$OTHER" | jq .balance)
fill_to 0
dd if=/dev/zero of="$DATA/filler.last" bs=4k 2>/dev/null || true
e2e_log "data dir: $(df -k --output=avail "$DATA" | tail -n 1 | tr -d ' ') KiB free"
sent=0
for _ in 1 2 3; do
	[ "$(post_transfer)" = 202 ] && sent=$((sent + 1))
done
e2e_log "$sent transfers admitted with the disk full"
check "the node stays up while its commits fail" bash -c \
	"sleep 8; curl -sf $TALLY_NODE/healthz >/dev/null && kill -0 $E2E_NODE_PID"
check "... and serves reads" "$TALLY" lease show "$A"
check "... and says why in its log" grep -qi "disk\|full\|SQLITE_FULL" "$E2E_DIR/tallyd.log"
rm -f "$DATA"/filler.*
check "once space is freed, what was admitted commits" wait_for 60 bash -c \
	"[ \$(curl -s $TALLY_NODE/v1/accounts/$OTHER | jq .balance) -ge $((BAL + sent)) ]"
check "nothing committed was lost" [ "$(status | jq .height)" -gt "$H" ]
check "the whole chain replays" "$TALLY" chain verify --node "$TALLY_NODE"
"$TALLY" lease close "$A" >/dev/null || true
check "the lease closes" wait_for 90 lease_state_is "$A" closed
check "its audit verifies" "$TALLY" audit "$A"
mkdir -p "$E2E_ROOT/build/reliability"
printf 'disk_episodes 2\ndisk_failed_checks %d\n' "$E2E_FAILS" >"$E2E_ROOT/build/reliability/disk.txt"
e2e_done
