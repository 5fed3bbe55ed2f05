#!/bin/bash
# Tenants use their VM: two leases of the Debian 12 cloud guest (real
# cloud-init, real OpenSSH, QEMU/TCG), each with the tenant's fresh key and
# its own hostname, reached with `tally lease ssh` through the port the node
# forwards on 127.0.0.1. Two boots in all, side by side.
. "$(dirname "$0")/../e2e/lib.sh"
BOOT_LIMIT_S=${TALLY_GUEST_BOOT_LIMIT_S:-900}   # TCG, two guests, a shared busy 2-core host
E2E_DEBIAN=1 e2e_init debian 7731
e2e_start_node
SSHDIR="$E2E_DIR/ssh"
mkdir -m 0700 "$SSHDIR"
ssh-keygen -q -t ed25519 -N '' -C tenant@e2e -f "$SSHDIR/tenant"
ssh-keygen -q -t ed25519 -N '' -C stranger@e2e -f "$SSHDIR/stranger"
MALLORY="$E2E_DIR/mallory.pem"
"$TALLY" key new --key "$MALLORY" >/dev/null 2>&1

create() {   # create HOSTNAME: a lease of debian-12 for 15 minutes
	"$TALLY" lease create --image debian-12 --vcpus 1 --memory 512 --disk 3 \
		--hostname "$1" --ssh-key "$SSHDIR/tenant.pub" --duration 900 \
		--deposit 40000000 --wait --timeout 300
}
lssh() {     # lssh LEASE [COMMAND...]: tally lease ssh with the tenant's key
	local lease=$1
	shift
	"$TALLY" lease ssh "$lease" -i "$SSHDIR/tenant" --timeout "$BOOT_LIMIT_S" \
		-o BatchMode=yes -o ConnectTimeout=20 -- "$@"
}
port_of() { "$TALLY" lease ssh "$1" --json | jq -r .port; }
answers() { timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

T0=$SECONDS
A=$(create web-one)
B=$(create web-two)
check "both leases of debian-12 run" \
	bash -c "[ '$(lease_field "$A" state)' = running ] && [ '$(lease_field "$B" state)' = running ]"
e2e_log "leases $A $B running after $((SECONDS - T0)) s"

# The first login waits for cloud-init to print the host keys; then ssh
# checks the guest's key against them.
OUT=$(lssh "$A" uname -a 2>"$E2E_DIR/ssh-a.err") || true
e2e_log "uname -a: $OUT ($(tail -n 2 "$E2E_DIR/ssh-a.err" | tr '\n' ' '))"
BOOT_TO_SSH=$((SECONDS - T0))
e2e_log "boot to SSH: $BOOT_TO_SSH s (two guests booting at once)"
check "tally lease ssh A -- uname -a prints the guest's Linux kernel" \
	grep -Eq '^Linux web-one .*(cloud-amd64|amd64).* GNU/Linux$' <<<"$OUT"
check "within ${BOOT_LIMIT_S} s" [ "$BOOT_TO_SSH" -le "$BOOT_LIMIT_S" ]
HOST_A=$(lssh "$A" cat /etc/hostname 2>/dev/null) || true
check "/etc/hostname is the lease's hostname" [ "$HOST_A" = web-one ]
HOST_B=$(lssh "$B" cat /etc/hostname 2>/dev/null) || true
check "the second lease answers as web-two" [ "$HOST_B" = web-two ]
ROOT_MIB=$(lssh "$A" df -B1M --output=size / 2>/dev/null | tail -n 1 | tr -d ' ') || true
e2e_log "A's root file system: $ROOT_MIB MiB (its overlay: 3 GiB, the base: 2 GiB)"
check "the guest's disk is its own overlay, sized by the contract (3 GiB)" \
	bash -c "[ '${ROOT_MIB:-0}' -gt 2800 ] && [ '${ROOT_MIB:-0}' -le 3072 ]"
check "the overlay is a qcow2 on the catalogue's base" \
	bash -c "qemu-img info -U '$E2E_DIR/node/vms/$E2E_PREFIX${A:0:12}.qcow2' |
		grep -q 'backing file: $E2E_DIR/guest/debian-12.qcow2'"

PA=$(port_of "$A")
PB=$(port_of "$B")
e2e_log "ports: A $PA, B $PB (range $E2E_PORTS_MIN-$((E2E_PORTS_MIN + 7)))"
check "the two leases have two different ports of the range" \
	bash -c "[ $PA != $PB ] && [ $PA -ge $E2E_PORTS_MIN ] && [ $PB -le $((E2E_PORTS_MIN + 7)) ]"
check "the forwarded ports listen on 127.0.0.1 only" \
	bash -c "ss -Hltn 'sport = :$PA' | grep -q ' 127.0.0.1:$PA ' &&
		! ss -Hltn 'sport = :$PA' | grep -v ' 127.0.0.1:$PA '"
KH=$("$TALLY" lease ssh "$A" --json | jq -r .known_hosts)
check "the host keys the guest printed are the only ones trusted" \
	bash -c "[ \$(wc -l <'$KH') -ge 1 ] && ! grep -qv '^\[127.0.0.1\]:$PA ' '$KH'"

# Another key is refused by the guest's sshd.
rc=0
ssh -p "$PA" -i "$SSHDIR/stranger" -o IdentitiesOnly=yes -o BatchMode=yes \
	-o UserKnownHostsFile="$KH" -o StrictHostKeyChecking=yes debian@127.0.0.1 true \
	>"$E2E_DIR/stranger.out" 2>&1 || rc=$?
e2e_log "stranger's key: exit $rc: $(tail -n 1 "$E2E_DIR/stranger.out")"
check "another key is refused by the guest's sshd" \
	bash -c "[ $rc -ne 0 ] && grep -q 'Permission denied (publickey)' '$E2E_DIR/stranger.out'"
# A host key other than the guest's is refused by ssh.
sed 's/ AAAA.*/ AAAAC3NzaC1lZDI1NTE5AAAAIBERERERERERERERERERERERERERERERERERERERERER/' "$KH" \
	>"$E2E_DIR/wrong_known_hosts"
rc=0
ssh -p "$PA" -i "$SSHDIR/tenant" -o IdentitiesOnly=yes -o BatchMode=yes \
	-o UserKnownHostsFile="$E2E_DIR/wrong_known_hosts" -o StrictHostKeyChecking=yes \
	-o HostKeyAlgorithms=ssh-ed25519 debian@127.0.0.1 true >"$E2E_DIR/mitm.out" 2>&1 || rc=$?
check "a different host key makes ssh refuse" \
	bash -c "[ $rc -ne 0 ] && grep -q 'HOST IDENTIFICATION HAS CHANGED' '$E2E_DIR/mitm.out'"
# Another tenant's private read is refused.
rc=0
TALLY_KEY=$MALLORY "$TALLY" lease ssh "$A" --timeout 5 >"$E2E_DIR/mallory.out" 2>&1 || rc=$?
e2e_log "another tenant's lease ssh: exit $rc: $(cat "$E2E_DIR/mallory.out")"
check "another tenant's private read is refused (HTTP 403)" \
	bash -c "[ $rc -eq 1 ] && grep -q 'HTTP 403' '$E2E_DIR/mallory.out'"

# The meter sees this guest as it sees the tiny one.
check "the CPU meter bills the guest's boot" \
	wait_for 30 bash -c "[ \$($TALLY usage $A --json | jq '[.records[].cpu_ns] | add') -gt 0 ]"

# Closing A frees its port and leaves B reachable.
"$TALLY" lease close "$A" >/dev/null
check "lease A closes" wait_for 60 lease_state_is "$A" closed
check "A's port no longer answers" wait_for 30 bash -c "! $(declare -f answers); answers $PA"
HOST_B=$(lssh "$B" cat /etc/hostname 2>/dev/null) || true
check "B is still reachable" [ "$HOST_B" = web-two ]
check "no file of A's domain is left (the stop removes them after the VM is down)" \
	wait_for 30 bash -c "! ls '$E2E_DIR/node/vms' | grep -q '${A:0:12}'"
"$TALLY" lease close "$B" >/dev/null
check "lease B closes" wait_for 60 lease_state_is "$B" closed
check "B's port no longer answers" wait_for 30 bash -c "! $(declare -f answers); answers $PB"
check "no domain and no VM file is left" \
	wait_for 120 bash -c "! virsh -q -c qemu:///system list --all --name | grep -q '^$E2E_PREFIX' &&
		[ -z \"\$(ls -A '$E2E_DIR/node/vms')\" ]"
e2e_log "left in the VM directory: $(ls -A "$E2E_DIR/node/vms" | tr '\n' ' ')"
for L in A B; do
	id=${!L}
	out=$("$TALLY" audit "$id" 2>&1) && rc=0 || rc=$?
	[ $rc -eq 0 ] || e2e_log "tally audit $L: exit $rc: $(tail -n 5 <<<"$out")"
	check "tally audit verifies lease $L" [ $rc -eq 0 ]
done
e2e_done
