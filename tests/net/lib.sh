# Shared set-up for the network tests: a devnet of several real tallyd
# processes on 127.0.0.1 (bin/tallyd, made by `tally node init --dev DIR
# --validators N --full-nodes M`), the real CLI, and, where a lease is the
# point, libvirtd with the tiny QEMU guest. Each test sources this file,
# calls net_init, runs its checks with `check` (tests/e2e/lib.sh), and ends
# with net_done. Everything it made goes on exit, pass or fail: the nodes,
# their VMs and pinned BPF objects, their files.
. "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"

PEER_HOSTILE=${TALLY_PEER_HOSTILE:-$E2E_ROOT/build/out/tests/peer_hostile}
declare -A NET_PID=()

# The nodes' last log lines, for a failure.
net_print_logs() {
	for k in $(seq 1 "$NET_N"); do
		[ -f "$(log_of "$k")" ] || continue
		echo "# node $k log:"
		tail -n 40 "$(log_of "$k")" | sed 's/^/#   /'
	done
}

net_cleanup() {
	set +e
	# A step the rest needed failed (set -e ended the script before
	# net_done): what the nodes logged is all there is to go on.
	if [ -z "${NET_DONE:-}" ] && [ -n "${NET_N:-}" ]; then
		echo "# the test stopped early, at a step the rest needed"
		net_print_logs
	fi
	for k in "${!NET_PID[@]}"; do
		# A node a test paused (SIGSTOP) would keep its SIGTERM pending.
		kill -CONT "${NET_PID[$k]}" 2>/dev/null
		kill -TERM "${NET_PID[$k]}" 2>/dev/null
	done
	for k in "${!NET_PID[@]}"; do
		wait "${NET_PID[$k]}" 2>/dev/null
	done
	for d in $(virsh -q -c qemu:///system list --all --name 2>/dev/null | grep "^$NET_PREFIX"); do
		virsh -q -c qemu:///system destroy "$d" >/dev/null 2>&1
		virsh -q -c qemu:///system undefine --nvram "$d" >/dev/null 2>&1 ||
			virsh -q -c qemu:///system undefine "$d" >/dev/null 2>&1
	done
	rm -rf "$NET_PIN"-*
	[ -n "${E2E_KEEP:-}" ] || [ -z "${NET_DIR:-$E2E_DIR}" ] || rm -rf "${NET_DIR:-$E2E_DIR}"
}

# net_init NAME BASEPORT VALIDATORS FULL_NODES: the devnet in $NET_DIR/net,
# API ports BASEPORT.., a funded tenant key ($TALLY_KEY), blocks every
# 300 ms, metering every 2 s, VMs (where started with them) named
# tally-net-NAME-K-... .
net_init() {
	NET_NAME=$1
	NET_BASE=$2
	NET_N=$(($3 + $4))
	[ "$(id -u)" -eq 0 ] || skip_all "network tests need root (libvirt, eBPF)"
	NET_PREFIX="tally-net-$NET_NAME-"
	NET_PIN="/sys/fs/bpf/tally-net-$NET_NAME-$$"
	e2e_workdir net "$NET_NAME" net_cleanup
	NET_DIR=$E2E_DIR
	export TALLY_KEY="$NET_DIR/tenant.pem"
	TENANT=$("$TALLY" key new --key "$TALLY_KEY" 2>/dev/null)
	"$TALLY" node init --dev "$NET_DIR/net" --validators "$3" --full-nodes "$4" \
		--chain-id "net-$NET_NAME" --listen "127.0.0.1:$NET_BASE" --interval 2 \
		--domain-type qemu --network none --image-dir "$NET_DIR/guest" \
		--fund "$TENANT:100000000" --json >"$NET_DIR/init.json"
	FAUCET="$NET_DIR/net/faucet.pem"
	GENESIS_HASH=
	for k in $(seq 1 "$NET_N"); do
		cat >>"$NET_DIR/net/node-$k/tallyd.conf" <<CONF
[node]
block_interval_ms = 300
[metering]
pin_dir = $NET_PIN-$k
[libvirt]
name_prefix = $NET_PREFIX$k-
CONF
	done
}

# Node K's API: port BASEPORT+K-1, unless NET_API[K] says otherwise.
declare -A NET_API=()
url() { echo "http://127.0.0.1:${NET_API[$1]:-$((NET_BASE + $1 - 1))}"; }
peer_port() { jq -r ".nodes[$(($1 - 1))].peers" "$NET_DIR/init.json" | sed 's/.*://'; }
node_key() { jq -r ".nodes[$(($1 - 1))].key" "$NET_DIR/init.json"; }
conf() { echo "$NET_DIR/net/node-$1/tallyd.conf"; }
log_of() { echo "$NET_DIR/node-$1.log"; }

# start K [TALLYD-OPTION...]: node K, waiting for its API.
start() {
	local k=$1
	shift
	"$TALLYD" -c "$(conf "$k")" "$@" >>"$(log_of "$k")" 2>&1 &
	NET_PID[$k]=$!
	for _ in $(seq 1 100); do
		curl -sf "$(url "$k")/healthz" >/dev/null 2>&1 && return 0
		kill -0 "${NET_PID[$k]}" 2>/dev/null || break
		sleep 0.1
	done
	echo "# node $k did not come up:"
	sed 's/^/#   /' "$(log_of "$k")"
	return 1
}

# stop K [SIGNAL]
stop() {
	kill -"${2:-TERM}" "${NET_PID[$1]}" 2>/dev/null
	wait "${NET_PID[$1]}" 2>/dev/null || true
	unset "NET_PID[$1]"
}

status() { curl -sf "$(url "$1")/v1/status"; }
height() { status "$1" | jq -r .height; }
peers_of() { status "$1" | jq '.peers.connected | length'; }
caught_up() { [ "$(status "$1" | jq -r .sync.caught_up)" = true ]; }
block_id_at() { curl -sf "$(url "$1")/v1/blocks/$2" | jq -r .id; }
committed_at() { curl -sf "$(url "$1")/v1/tx/$2" >/dev/null; }

# Every listed node has committed transaction HASH.
committed_everywhere() {
	local h=$1
	shift
	for k in "$@"; do committed_at "$k" "$h" || return 1; done
}

# block_ids K H: node K's block ids from height 1 to H, one a line, read a
# page of GET /v1/blocks at a time.
block_ids() {
	local from=1 page n
	while [ "$from" -le "$2" ]; do
		page=$(curl -sf "$(url "$1")/v1/blocks?from=$from&to=$2" | jq -r '.blocks[].id') || return 1
		n=$(echo "$page" | grep -c .) || return 1
		echo "$page"
		from=$((from + n))
	done
}

# Every listed node is at height MIN or above, and all hold the same block
# ids at every height up to the lowest of their heights (a chain that keeps
# committing, with a lease's usage records, moves on between two reads).
same_chain() {
	local min=$1
	shift
	local h k hk ids
	h=$(height "$1") || return 1
	for k in "$@"; do
		hk=$(height "$k") || return 1
		[ "$hk" -ge "$min" ] || return 1
		[ "$hk" -ge "$h" ] || h=$hk
	done
	ids=$(block_ids "$1" "$h") || return 1
	[ "$(echo "$ids" | grep -c .)" -eq "$h" ] || return 1
	for k in "$@"; do [ "$(block_ids "$k" "$h")" = "$ids" ] || return 1; done
}

# transfer_via K AMOUNT: a faucet transfer submitted to node K; prints its
# hash (or the refusal, on stderr of the test log).
transfer_via() {
	"$TALLY" transfer --to "$TENANT" "$2" --from-key "$FAUCET" --node "$(url "$1")" \
		2>>"$NET_DIR/cli.err" || true
}

# proposers K: how many different proposers the headers of node K's blocks name.
proposers() {
	for i in $(seq 1 "$(height "$1")"); do
		curl -sf "$(url "$1")/v1/blocks/$i" | jq -r .header.proposer
	done | sort -u | wc -l
}

metric() { curl -sf "$(url "$1")/metrics" | awk -v m="$2" '$1 == m { print $2 }'; }
# metric_ge K NAME MIN
metric_ge() { local v; v=$(metric "$1" "$2"); [ -n "$v" ] && [ "$v" -ge "$3" ]; }
# Every listed node has N peers connected.
peers_are() {
	local n=$1
	shift
	for k in "$@"; do [ "$(peers_of "$k")" = "$n" ] || return 1; done
}

net_done() {
	NET_DONE=1
	[ "$E2E_FAILS" -eq 0 ] || net_print_logs
	echo "# result: $E2E_CHECKS checks, $E2E_FAILS failures"
	[ "$E2E_FAILS" -eq 0 ] && [ "$E2E_CHECKS" -gt 0 ]
}
