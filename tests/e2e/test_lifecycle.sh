#!/bin/bash
# Every VM lifecycle has a defined outcome (issue 11, kind 4), with a libvirtd
# of the test's own: the script runs itself in a private mount namespace with
# its own /run and libvirt state directories, so restarting or stopping that
# libvirtd touches nothing else on the host.
#   - libvirtd restarts under two running leases: the node reconnects,
#     registers its events again, and both keep running and being metered;
#   - a domain destroyed from outside after the restart closes its lease as
#     provider-failed (the events were registered again);
#   - a domain paused from outside is not billed as running: its records bill
#     no memory until it resumes, and the tenant's read says "paused";
#   - with libvirtd down, a tenant's close is not reported "VM removed" while
#     QEMU still runs; the VM stops once libvirtd is back, and only then;
#   - a QEMU process killed while libvirtd is down is found at the reconnect:
#     the lease closes as provider-failed;
#   - a lease made after all that runs.
. "$(dirname "$0")/../support/mount_ns.sh"
. "$(dirname "$0")/lib.sh"

# --- a libvirtd of this test's own --------------------------------------------
LV_DIR=$(mktemp -d /tmp/tally-e2e-libvirt.XXXXXX)
mkdir -p "$LV_DIR/lib" "$LV_DIR/log" "$LV_DIR/cache"
mount -t tmpfs -o mode=0755 tmpfs /run
mount --bind "$LV_DIR/lib" /var/lib/libvirt
mount --bind "$LV_DIR/log" /var/log/libvirt
mount --bind "$LV_DIR/cache" /var/cache/libvirt
mkdir -p /var/lib/libvirt/qemu /var/lib/libvirt/images
lv_up() {
	[ -f /run/virtlogd.pid ] && kill -0 "$(cat /run/virtlogd.pid)" 2>/dev/null || virtlogd -d
	libvirtd -d
	for _ in $(seq 1 100); do
		virsh -q -c qemu:///system version >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "# libvirtd did not come up"
	return 1
}
lv_down() {
	local pid
	pid=$(cat /run/libvirtd.pid 2>/dev/null) || return 0
	kill "$pid" 2>/dev/null
	for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
	kill -9 "$pid" 2>/dev/null
	return 0
}
lv_cleanup() {
	set +e
	e2e_cleanup
	lv_down
	[ -f /run/virtlogd.pid ] && kill "$(cat /run/virtlogd.pid)" 2>/dev/null
	sleep 0.2
	umount /var/cache/libvirt /var/log/libvirt /var/lib/libvirt 2>/dev/null
	rm -rf "$LV_DIR"
}
lv_up || exit 1

e2e_init lifecycle 7740
trap lv_cleanup EXIT
e2e_start_node
records() { "$TALLY" usage "$1" --json | jq '.records | length'; }
has_records() { [ "$(records "$1")" -ge "$2" ]; }
domain_of() { echo "${E2E_PREFIX}${1:0:12}"; }
private_state() { "$TALLY" lease console "$1" --json | jq -r .state; }
# ([g]: pgrep -f must not find the shell that runs it)
qemu_runs() { pgrep -f "[g]uest=$(domain_of "$1")," >/dev/null; }
log_has() { grep -q "$1" "$E2E_DIR/tallyd.log"; }
log_count() { grep -c "$1" "$E2E_DIR/tallyd.log" || true; }
# Stops libvirtd and waits until the node has noticed (one more "lost" line).
lv_down_noticed() {
	local n
	n=$(log_count "libvirt connection lost")
	lv_down
	wait_for 30 bash -c "[ \$(grep -c 'libvirt connection lost' '$E2E_DIR/tallyd.log') -gt $n ]"
}
new_lease() {
	"$TALLY" lease create --image tiny --vcpus 1 --memory 128 --duration 900 --wait \
		--timeout 180
}

A=$(new_lease)
B=$(new_lease)
check "two leases run" bash -c "[ \"\$($TALLY lease show $A --json | jq -r .state)\" = running ] &&
	[ \"\$($TALLY lease show $B --json | jq -r .state)\" = running ]"
check "... and are metered" wait_for 60 has_records "$B" 2

# --- libvirtd restarts ----------------------------------------------------------
check "the node notices libvirt is gone" lv_down_noticed
N_A=$(records "$A")
lv_up
check "... and reconnects when it is back" wait_for 60 log_has "libvirt is back"
check "A's records go on after the restart" wait_for 60 has_records "$A" $((N_A + 2))
check "A's VM runs, says the tenant's read" [ "$(private_state "$A")" = running ]
check "both leases are still running on the chain" \
	bash -c "[ \"\$($TALLY lease show $A --json | jq -r .state)\" = running ] &&
	[ \"\$($TALLY lease show $B --json | jq -r .state)\" = running ]"

# --- a destroy from outside, after the restart ----------------------------------
virsh -q -c qemu:///system destroy "$(domain_of "$A")" >/dev/null
check "A destroyed from outside after the restart closes within seconds" \
	wait_for 30 lease_state_is "$A" closed
check "... as provider-failed" [ "$(lease_field "$A" close_reason)" = provider-failed ]

# --- a pause from outside --------------------------------------------------------
virsh -q -c qemu:///system suspend "$(domain_of "$B")" >/dev/null
check "the tenant's read says paused" wait_for 20 bash -c \
	"[ \"\$($TALLY lease console $B --json | jq -r .state)\" = paused ]"
N_B=$(records "$B")
check "records go on while paused" wait_for 60 has_records "$B" $((N_B + 2))
paused_records() { "$TALLY" usage "$B" --json | jq '[.records[] | select(.mem_mib == 0)] | length'; }
check "... billing no memory (mem_mib 0)" [ "$(paused_records)" -ge 1 ]
check "... and no CPU" [ "$("$TALLY" usage "$B" --json |
	jq '[.records[] | select(.mem_mib == 0) | .cpu_ns] | add')" -eq 0 ]
virsh -q -c qemu:///system resume "$(domain_of "$B")" >/dev/null
check "after resume the read says running" wait_for 20 bash -c \
	"[ \"\$($TALLY lease console $B --json | jq -r .state)\" = running ]"
N_B=$(records "$B")
check "... and records bill memory again" wait_for 60 bash -c \
	"[ \"\$($TALLY usage $B --json | jq '.records[-1].mem_mib')\" = 128 ]"
check "the audit verifies B's bill" "$TALLY" audit "$B"

# --- a close while libvirtd is down ----------------------------------------------
lv_down_noticed
"$TALLY" lease close "$B" >/dev/null
check "B closes on the chain" wait_for 60 lease_state_is "$B" closed
sleep 3
check "with libvirt down the node does not claim B's VM removed" \
	bash -c "! grep -q 'lease ${B:0:12}: closed .*removed' '$E2E_DIR/tallyd.log'"
check "... and says it waits for libvirt" log_has "lease ${B:0:12}: VM .* not stopped yet"
check "... while B's QEMU still runs" qemu_runs "$B"
BAL=$("$TALLY" account show --json | jq .balance)
out=$("$TALLY" lease create --image tiny --vcpus 1 --memory 128 --duration 900 2>&1) &&
	rc=0 || rc=$?
e2e_log "a lease made while libvirt is down: exit $rc: $out"
check "with libvirt down a new lease is refused for now (503 unavailable)" \
	bash -c "[ $rc -ne 0 ] && grep -q '503' <<<\"\$0\"" "$out"
check "... and no deposit moved" [ "$("$TALLY" account show --json | jq .balance)" = "$BAL" ]
lv_up
check "once libvirt is back B's VM is removed" \
	wait_for 60 bash -c "grep -q 'lease ${B:0:12}: closed .*removed' '$E2E_DIR/tallyd.log'"
check "... and its QEMU is gone" bash -c "! pgrep -f '[g]uest=$(domain_of "$B"),' >/dev/null"
D=$(new_lease)
check "a lease made after all that runs" lease_state_is "$D" running
# A QEMU killed while libvirtd is down: found at the reconnect.
lv_down_noticed
pkill -9 -f "[g]uest=$(domain_of "$D")," || true
lv_up
check "a QEMU killed while libvirt was down is found at the reconnect" \
	wait_for 60 lease_state_is "$D" closed
check "... as provider-failed" [ "$(lease_field "$D" close_reason)" = provider-failed ]
check "the audits verify" bash -c "$TALLY audit $A >/dev/null && $TALLY audit $D >/dev/null"
e2e_done
