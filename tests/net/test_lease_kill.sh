#!/bin/bash
# A provider killed mid-lease on a network of four validators, each a
# provider (each runs VMs: the tiny guest under TCG, metered by eBPF). A
# tenant submits a lease naming node 2 through node 1; node 2 runs it. Node
# 2 is SIGKILLed for about 15 s: the three others keep committing blocks and
# the VM goes on without its node. On restart node 2 syncs the blocks it
# missed, adopts the same VM and goes on metering it: the lease's usage
# records, read from every node, are numbered without gaps and each starts
# where the last one ended (no interval unbilled, none billed twice), and
# `tally audit` against every node is the same VERIFIED report.
. "$(dirname "$0")/lib.sh"
[ -d /sys/fs/bpf ] || skip_all "no BPF file system at /sys/fs/bpf"
net_init leasekill 17930 4 0
for k in 1 2 3 4; do start "$k"; done
check "the four validators connect" wait_for 30 peers_are 3 1 2 3 4

L=$("$TALLY" lease create --provider "$(node_key 2)" --node "$(url 1)" --image tiny \
	--vcpus 1 --memory 128 --duration 300 --deposit 30000000 2>>"$NET_DIR/cli.err")
check "a lease naming node 2 is accepted by node 1" [ ${#L} -eq 64 ]
[ ${#L} -eq 64 ] || { cat "$NET_DIR/cli.err"; net_done; exit 1; }
state_on() { "$TALLY" lease show "$L" --node "$(url "$1")" --json | jq -r .state; }
running_on() { [ "$(state_on "$1")" = running ]; }
check "node 2 starts it (seen from node 3)" wait_for 180 running_on 3
# The lease's records as "seq start_ns end_ns" lines, read from node K with
# the integers exactly as the node wrote them (jq would round the ns).
records() {
	"$TALLY" usage "$L" --node "$(url "$1")" --json |
		grep -oE '"(seq|start_ns|end_ns)": ?[0-9]+' | grep -oE '[0-9]+$' | paste - - -
}
count() { records "$1" | wc -l; }
has_records() { [ "$(count "$1")" -ge "$2" ]; }
check "node 2's usage records reach node 4" wait_for 60 has_records 4 3

DOMAIN=$(virsh -q -c qemu:///system list --name | grep "^$NET_PREFIX""2-${L:0:12}" || true)
check "the lease runs in node 2's domain" [ -n "$DOMAIN" ]
QEMU_PID=$(cat "/run/libvirt/qemu/$DOMAIN.pid" 2>/dev/null || true)
BEFORE=$(count 4)
stop 2 KILL
KILLED_AT=$(date +%s%N)
TIP=$(height 1)
for k in 1 3 4 1; do
	H=$(transfer_via "$k" $((1000 + k)))
	check "with node 2 killed a transfer sent to node $k commits on the three others" \
		wait_for 60 committed_everywhere "$H" 1 3 4
done
check "the chain went on past height $TIP" [ "$(height 3)" -gt "$TIP" ]
check "the VM goes on without its node" \
	bash -c "virsh -q -c qemu:///system list --name | grep -qx '$DOMAIN'"
sleep 8
start 2
check "node 2 comes back and syncs the blocks it missed" wait_for 60 same_chain "$((TIP + 1))" 1 2 3 4
check "it adopts the same VM (the same QEMU process)" \
	[ "$(cat "/run/libvirt/qemu/$DOMAIN.pid" 2>/dev/null)" = "$QEMU_PID" ]
check "records arrive again after the restart" wait_for 90 has_records 4 $((BEFORE + 3))
check "exactly one VM runs for the lease, on any node" \
	[ "$(virsh -q -c qemu:///system list --all --name | grep -c "${L:0:12}")" -eq 1 ]

records 4 >"$NET_DIR/records-4"
e2e_log "$(wc -l <"$NET_DIR/records-4") records; node 2 was killed at $KILLED_AT ns"
check "the records are numbered 0, 1, 2, ... without a gap" \
	awk '$1 != NR - 1 { exit 1 }' "$NET_DIR/records-4"
check "each record starts where the last ended: no gap, no interval billed twice" \
	awk 'NR > 1 && $2 != end { exit 1 } $3 <= $2 { exit 1 } { end = $3 }' "$NET_DIR/records-4"
check "one record spans the time node 2 was down" \
	awk -v t="$KILLED_AT" '$2 <= t && t < $3 { found = 1 } END { exit !found }' "$NET_DIR/records-4"
for k in 1 2 3; do
	records "$k" | head -n "$(wc -l <"$NET_DIR/records-4")" >"$NET_DIR/records-$k"
	check "node $k holds the same records" cmp -s "$NET_DIR/records-4" "$NET_DIR/records-$k"
done

"$TALLY" lease close "$L" --node "$(url 3)" >/dev/null 2>>"$NET_DIR/cli.err"
closed_on() { [ "$(state_on "$1")" = closed ]; }
check "the lease closes by the tenant's close sent to node 3" wait_for 60 closed_on 1
check "node 2 stops the VM" \
	wait_for 60 bash -c "! virsh -q -c qemu:///system list --all --name | grep -q '${L:0:12}'"
check "every node holds the same chain" wait_for 30 same_chain 1 1 2 3 4
audit() { "$TALLY" audit "$L" --node "$(url "$1")" --json 2>/dev/null | jq -S . || true; }
audit 1 >"$NET_DIR/audit-1.json"
check "the audit against node 1 is VERIFIED and the bill closed" \
	jq -e '.verified == true and .bill.state == "closed"' "$NET_DIR/audit-1.json"
for k in 2 3 4; do
	audit "$k" >"$NET_DIR/audit-$k.json"
	check "the audit against node $k is the same VERIFIED report" \
		cmp -s "$NET_DIR/audit-1.json" "$NET_DIR/audit-$k.json"
done
net_done
