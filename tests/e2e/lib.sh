# Shared set-up for the end-to-end tests: a real devnet (bin/tallyd), the real
# CLI (bin/tally), libvirtd with QEMU (TCG) guests, eBPF meters on the host.
# Each test sources this file, calls e2e_init NAME PORT, runs its checks with
# `check`, and ends with e2e_done. Everything it made is removed on exit,
# pass or fail: the node, its VMs, its pinned BPF objects, its files.
set -euo pipefail

E2E_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TALLY="$E2E_ROOT/bin/tally"
TALLYD=${TALLY_TALLYD:-$E2E_ROOT/bin/tallyd}   # another build: TALLY_TALLYD=PATH
GUEST_DIR="$E2E_ROOT/build/guest"
E2E_CHECKS=0
E2E_FAILS=0
E2E_NODE_PID=

e2e_log() { echo "# $*"; }

# check "what a user would check" command...
check() {
	local what=$1
	shift
	E2E_CHECKS=$((E2E_CHECKS + 1))
	if "$@" >/dev/null; then
		echo "ok $E2E_CHECKS - $what"
	else
		echo "not ok $E2E_CHECKS - $what"
		E2E_FAILS=$((E2E_FAILS + 1))
	fi
}

skip_all() {
	echo "SKIP: $*"
	echo "# result: 0 checks, 0 failures"
	exit 0
}

e2e_cleanup() {
	set +e
	if [ -n "$E2E_NODE_PID" ] && kill -0 "$E2E_NODE_PID" 2>/dev/null; then
		kill -TERM "$E2E_NODE_PID"
		wait "$E2E_NODE_PID" 2>/dev/null
	fi
	for d in $(virsh -q -c qemu:///system list --all --name 2>/dev/null | grep "^$E2E_PREFIX"); do
		virsh -q -c qemu:///system destroy "$d" >/dev/null 2>&1
		virsh -q -c qemu:///system undefine --nvram "$d" >/dev/null 2>&1 ||
			virsh -q -c qemu:///system undefine "$d" >/dev/null 2>&1
	done
	# The node's meter stays attached when tallyd stops: detach it.
	"$TALLY" node meter-detach --pin-dir "$E2E_PIN" >/dev/null || rm -rf "$E2E_PIN"
	[ -n "${E2E_KEEP:-}" ] || rm -rf "$E2E_DIR"
}

# free_port FROM: the first port from FROM up that nothing on 127.0.0.1
# answers on.
free_port() {
	local p=$1
	while (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do
		p=$((p + 1))
	done
	echo "$p"
}

# e2e_workdir KIND NAME CLEANUP: E2E_DIR, a fresh directory that CLEANUP
# (set as the EXIT trap) removes, with a copy of the tiny guest in guest/.
e2e_workdir() {
	E2E_DIR=$(mktemp -d "/tmp/tally-$1-$2.XXXXXX")
	trap "$3" EXIT
	# A signal (a CI run's timeout, ^C) ends the test through its EXIT trap,
	# which a shell killed by the default action would not run.
	trap 'exit 143' TERM
	trap 'exit 130' INT
	trap 'exit 129' HUP
	# QEMU runs as libvirt-qemu and must reach the VM files below it.
	chmod 0755 "$E2E_DIR"
	"$E2E_ROOT/scripts/build-guest-image.sh" "$GUEST_DIR" >/dev/null
	# QEMU runs as libvirt-qemu: give it a copy it can surely read.
	mkdir -m 0755 "$E2E_DIR/guest"
	cp "$GUEST_DIR/vmlinuz" "$GUEST_DIR/initrd.img" "$E2E_DIR/guest/"
}

# e2e_init NAME PORT [NODE-INIT-OPTION...]: a devnet in a temp dir, a funded
# tenant key, and tallyd configured for TCG guests without a network,
# metering every 2 s. With E2E_DEBIAN=1 the Debian cloud guest (make
# guest-debian) is catalogued too, and the guests get QEMU's user network
# with their SSH ports forwarded to 127.0.0.1 (a range of this run's own).
e2e_init() {
	E2E_NAME=$1
	# A port and names of this run's own: other checkouts on the host may run
	# the same test at the same time.
	E2E_PORT=$(free_port $(($2 + 40 * ($$ % 500))))
	shift 2
	[ "$(id -u)" -eq 0 ] || skip_all "end-to-end tests need root (libvirt, eBPF)"
	[ -d /sys/fs/bpf ] || skip_all "no BPF file system at /sys/fs/bpf"
	E2E_PREFIX="tally-e2e-$E2E_NAME-$$-"
	E2E_PIN="/sys/fs/bpf/tally-e2e-$E2E_NAME-$$"
	e2e_workdir e2e "$E2E_NAME" e2e_cleanup
	local network=none
	if [ -n "${E2E_DEBIAN:-}" ]; then
		"$E2E_ROOT/scripts/build-debian-image.sh" "$GUEST_DIR" >/dev/null
		# A link, not a copy, of the base disk where the file system allows.
		ln "$GUEST_DIR/debian-12.qcow2" "$E2E_DIR/guest/" 2>/dev/null ||
			cp "$GUEST_DIR/debian-12.qcow2" "$E2E_DIR/guest/"
		cp "$GUEST_DIR/debian-12.vmlinuz" "$GUEST_DIR/debian-12.initrd.img" "$E2E_DIR/guest/"
		network=user
	fi
	export TALLY_NODE="http://127.0.0.1:$E2E_PORT"
	export TALLY_KEY="$E2E_DIR/tenant.pem"
	TENANT=$("$TALLY" key new --key "$TALLY_KEY" 2>/dev/null)
	"$TALLY" node init --dev "$E2E_DIR/node" --chain-id "e2e-$E2E_NAME" \
		--listen "127.0.0.1:$E2E_PORT" --interval 2 --domain-type qemu --network "$network" \
		--image-dir "$E2E_DIR/guest" --fund "$TENANT:100000000" "$@" >/dev/null
	cat >>"$E2E_DIR/node/tallyd.conf" <<CONF
[metering]
pin_dir = $E2E_PIN
[libvirt]
name_prefix = $E2E_PREFIX
[node]
block_interval_ms = 500
CONF
	if [ -n "${E2E_DEBIAN:-}" ]; then
		E2E_PORTS_MIN=$((23000 + ($$ % 2000) * 8))
		printf '[libvirt]\nforward_ports = %d-%d\n' "$E2E_PORTS_MIN" \
			$((E2E_PORTS_MIN + 7)) >>"$E2E_DIR/node/tallyd.conf"
	fi
}

# e2e_start_node [TALLYD-OPTION...], e.g. --no-vms for the API-only tests.
# e2e_start_tx_node NAME PORT: a --no-vms node with no request rate limit,
# for tests that send many transactions made by the forge tool: $N its URL,
# TALLY_CHAIN_ID and TALLY_GENESIS_HASH exported for forge, $OTHER a new
# key (other.pem) to send to, and next_nonce / balance ACCOUNT helpers.
e2e_start_tx_node() {
	e2e_init "$1" "$2"
	printf '[api]\nrequests_per_s = 0\n' >>"$E2E_DIR/node/tallyd.conf"
	e2e_start_node --no-vms
	N=$TALLY_NODE
	TALLY_CHAIN_ID=$(curl -s "$N/v1/status" | jq -r .chain_id)
	TALLY_GENESIS_HASH=$(curl -s "$N/v1/status" | jq -r .genesis_hash)
	export TALLY_CHAIN_ID TALLY_GENESIS_HASH
	OTHER=$("$TALLY" key new --key "$E2E_DIR/other.pem" 2>/dev/null)
}
next_nonce() { curl -s "$N/v1/accounts/$1" | jq .next_nonce; }
balance() { curl -s "$N/v1/accounts/$1" | jq .balance; }

e2e_start_node() {
	"$TALLYD" -c "$E2E_DIR/node/tallyd.conf" "$@" >>"$E2E_DIR/tallyd.log" 2>&1 &
	E2E_NODE_PID=$!
	for _ in $(seq 1 100); do
		curl -sf ${TALLY_CACERT:+--cacert "$TALLY_CACERT"} "$TALLY_NODE/healthz" \
			>/dev/null 2>&1 && { e2e_wait_announced; return 0; }
		kill -0 "$E2E_NODE_PID" 2>/dev/null || break
		sleep 0.1
	done
	echo "# tallyd did not come up:"
	sed 's/^/#   /' "$E2E_DIR/tallyd.log"
	return 1
}

# The node's PROVIDER announcement commits a block or two after it starts
# (docs/OPERATING.md); tests that submit a LEASE_OPEN without the CLI (which
# waits itself) need it first. A node that announces nothing is not waited
# for beyond 30 s, and one that says it will not (--no-vms) not at all.
e2e_wait_announced() {
	local c=(curl -sf ${TALLY_CACERT:+--cacert "$TALLY_CACERT"}) key
	grep -q "provider: not announced" "$E2E_DIR/tallyd.log" && return 0
	key=$("${c[@]}" "$TALLY_NODE/v1/status" | jq -r .node)
	for _ in $(seq 1 300); do
		"${c[@]}" "$TALLY_NODE/v1/providers/$key" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	e2e_log "the node's provider announcement did not commit within 30 s"
}

e2e_stop_node() {
	kill -"${1:-TERM}" "$E2E_NODE_PID"
	wait "$E2E_NODE_PID" 2>/dev/null || true
	E2E_NODE_PID=
}

# wait_for SECONDS command...: until the command succeeds.
wait_for() {
	local limit=$1
	shift
	local end=$((SECONDS + limit))
	while [ $SECONDS -lt $end ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.5
	done
	return 1
}

# json_int KEY < JSON: the first KEY's integer exactly as the node wrote it
# (jq reads numbers as doubles: nanosecond times lose their last digits).
json_int() { grep -oE "\"$1\": ?\"?[0-9]+" | head -n 1 | grep -oE '[0-9]+$'; }
lease_field() { "$TALLY" lease show "$1" --json | jq -r ".$2"; }
lease_state_is() { [ "$(lease_field "$1" state)" = "$2" ]; }
domain_exists() { virsh -q -c qemu:///system list --all --name | grep -q "^$1"; }

e2e_done() {
	if [ "$E2E_FAILS" -gt 0 ]; then
		echo "# tallyd log:"
		sed 's/^/#   /' "$E2E_DIR/tallyd.log" | tail -n 60
	fi
	# tests/e2e/run.sh adds these up into the one Check-style summary line.
	echo "# result: $E2E_CHECKS checks, $E2E_FAILS failures"
	[ "$E2E_FAILS" -eq 0 ] && [ "$E2E_CHECKS" -gt 0 ]
}
