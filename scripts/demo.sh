#!/bin/bash
# make demo: one lease end to end on a network of four validators, each a
# tallyd on this machine deciding every block together with the others.
#   1. install what is missing       5. lease a VM for about a minute,
#   2. build the tiny guest image       submitted through node 1 and run by
#   3. start libvirt when needed        node 2; usage followed on node 3
#   4. init a devnet of four         6. close the lease, audit it against
#      validators, start them           node 4
#                                    7. kill node 3: the chain goes on;
#                                       print the settlement
#                                    8. stop everything it started
# GUEST=debian-12 (make demo GUEST=debian-12) leases the Debian cloud guest
# instead, with a fresh SSH key, and logs in to it with `tally lease ssh`.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT=${TALLY_DEMO_PORT:-7654}
DURATION=${TALLY_DEMO_SECONDS:-60}
GUEST=${GUEST:-tiny}
case $GUEST in
tiny) NETWORK=none ;;
debian-12) NETWORK=user DURATION=${TALLY_DEMO_SECONDS:-600} ;;
*) echo "demo: GUEST must be tiny or debian-12" >&2; exit 2 ;;
esac
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1. packages"
scripts/install-deps.sh
make --no-print-directory -j2 all >/dev/null
TALLY=$PWD/bin/tally
TALLYD=$PWD/bin/tallyd

step "2. tiny guest image (Debian kernel + busybox initramfs)"
scripts/build-guest-image.sh build/guest
if [ "$GUEST" = debian-12 ]; then
	echo "Debian cloud guest (built once, about 5 minutes, then reused):"
	scripts/build-debian-image.sh build/guest
	cat build/guest/debian-12.info
fi
ls -l build/guest

step "3. libvirt"
DIR=$(mktemp -d /tmp/tally-demo.XXXXXX)
chmod 0755 "$DIR"   # QEMU runs as libvirt-qemu and reads the VM files below it
PIN=/sys/fs/bpf/tally-demo-$$
PREFIX=tally-demo-$$-
declare -A NODE_PID=()
cleanup() {
	set +e
	step "8. stopping everything the demo started"
	for k in "${!NODE_PID[@]}"; do kill -TERM "${NODE_PID[$k]}" 2>/dev/null; done
	for k in "${!NODE_PID[@]}"; do wait "${NODE_PID[$k]}" 2>/dev/null; done
	for d in $(virsh -q -c qemu:///system list --all --name 2>/dev/null | grep "^$PREFIX"); do
		virsh -q -c qemu:///system destroy "$d" >/dev/null 2>&1
		virsh -q -c qemu:///system undefine "$d" >/dev/null 2>&1
	done
	# tallyd leaves its meter attached on purpose (it keeps counting across
	# restarts); the demo is over, so take it away.
	[ -e "$PIN" ] && { "$TALLY" node meter-detach --pin-dir "$PIN" || rm -rf "$PIN"; }
	rm -rf "$DIR"
	scripts/libvirt.sh down "$DIR.libvirt"
	echo "done"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
scripts/libvirt.sh up "$DIR.libvirt"
# QEMU runs as libvirt-qemu: give it a copy of the guest it can surely read.
mkdir -m 0755 "$DIR/guest"
cp build/guest/vmlinuz build/guest/initrd.img "$DIR/guest/"
if [ "$GUEST" = debian-12 ]; then
	ln build/guest/debian-12.qcow2 "$DIR/guest/" 2>/dev/null ||
		cp build/guest/debian-12.qcow2 "$DIR/guest/"
	cp build/guest/debian-12.vmlinuz build/guest/debian-12.initrd.img "$DIR/guest/"
fi
virsh -c qemu:///system version

step "4. a devnet of four validators, each a tallyd on 127.0.0.1"
export TALLY_KEY=$DIR/tenant.pem
TENANT=$("$TALLY" key new)
echo "tenant key: $TENANT"
"$TALLY" node init --dev "$DIR/net" --validators 4 --chain-id tally-demo \
	--listen "127.0.0.1:$PORT" --interval 5 --domain-type qemu --network "$NETWORK" \
	--image-dir "$DIR/guest" --fund "$TENANT:50000000"
url() { echo "http://127.0.0.1:$((PORT + $1 - 1))"; }
node_key() { curl -sf "$(url "$1")/v1/status" | jq -r .node; }
for k in 1 2 3 4; do
	cat >>"$DIR/net/node-$k/tallyd.conf" <<CONF
[node]
block_interval_ms = 500
[metering]
pin_dir = $PIN
[libvirt]
name_prefix = $PREFIX
CONF
	# Node 2 is the provider of the demo's lease; the others run no VMs.
	if [ "$k" = 2 ]; then opt=; else opt=--no-vms; fi
	"$TALLYD" -c "$DIR/net/node-$k/tallyd.conf" $opt 2>"$DIR/node-$k.log" &
	NODE_PID[$k]=$!
done
for k in 1 2 3 4; do
	for _ in $(seq 1 100); do curl -sf "$(url "$k")/healthz" >/dev/null && break; sleep 0.1; done
done
for _ in $(seq 1 100); do
	[ "$(curl -sf "$(url 1)/v1/status" | jq '.peers.connected | length')" = 3 ] && break
	sleep 0.2
done
"$TALLY" status --node "$(url 1)"
"$TALLY" account show --node "$(url 1)"
PROVIDER=$(node_key 2)

if [ "$GUEST" = tiny ]; then
	step "5. lease a VM (1 vCPU burning 50%, 128 MiB) for ${DURATION} s from node 2, submitted to node 1"
	LEASE=$("$TALLY" lease create --node "$(url 1)" --provider "$PROVIDER" --image tiny \
		--vcpus 1 --memory 128 --duration "$DURATION" --deposit 20000000 --no-ssh-key \
		--wait --timeout 180)
	echo "lease: $LEASE"
	"$TALLY" lease show "$LEASE" --node "$(url 1)"
	echo "node 2 runs it: $(curl -sf "$(url 2)/v1/node/vms" | jq -c '[.vms[].lease[0:16]]')"
	follow=$((DURATION > 20 ? DURATION - 10 : 10))
	echo "usage, followed on node 3 (tally usage --follow, for $follow s):"
	timeout --foreground "$follow" \
		"$TALLY" usage "$LEASE" --follow --node "$(url 3)" || true
else
	step "5. lease the Debian cloud guest (1 vCPU, 512 MiB, 3 GiB) from node 2, submitted to node 1, and log in"
	ssh-keygen -q -t ed25519 -N '' -C demo-tenant -f "$DIR/id_ed25519"
	LEASE=$("$TALLY" lease create --node "$(url 1)" --provider "$PROVIDER" --image debian-12 \
		--vcpus 1 --memory 512 --disk 3 --hostname tally-demo \
		--ssh-key "$DIR/id_ed25519.pub" --duration "$DURATION" --deposit 40000000 \
		--wait --timeout 300)
	echo "lease: $LEASE"
	"$TALLY" lease show "$LEASE" --node "$(url 1)"
	booted=$SECONDS
	echo "\$ tally lease ssh $LEASE --node $(url 2) -- 'uname -a; cat /etc/hostname; cloud-init status'"
	"$TALLY" lease ssh "$LEASE" --node "$(url 2)" -i "$DIR/id_ed25519" --timeout 600 \
		-- 'uname -a; cat /etc/hostname; cloud-init status'
	echo "(first login $((SECONDS - booted)) s after the VM started, host key checked)"
	echo "usage, followed on node 3:"
	"$TALLY" usage "$LEASE" --node "$(url 3)" | tail -n 6
fi

step "6. close the lease (sent to node 1) and audit it against node 4"
echo "LEASE_CLOSE sent: $("$TALLY" lease close "$LEASE" --node "$(url 1)" || true)"
for _ in $(seq 1 60); do
	[ "$("$TALLY" lease show "$LEASE" --node "$(url 4)" --json | jq -r .state)" = closed ] && break
	sleep 1
done
"$TALLY" usage "$LEASE" --node "$(url 4)"
"$TALLY" audit "$LEASE" --node "$(url 4)"

step "7. kill validator 3 (SIGKILL): the three others go on"
kill -KILL "${NODE_PID[3]}"
wait "${NODE_PID[3]}" 2>/dev/null || true
unset "NODE_PID[3]"
BEFORE=$(curl -sf "$(url 1)/v1/status" | jq .height)
echo "height before: $BEFORE"
H=$("$TALLY" transfer --node "$(url 4)" --to "$PROVIDER" 1000)
for _ in $(seq 1 60); do curl -sf "$(url 1)/v1/tx/$H" >/dev/null && break; sleep 0.5; done
for k in 1 2 4; do
	echo "node $k: height $(curl -sf "$(url "$k")/v1/status" | jq .height)," \
		"transfer ${H:0:16} in block $(curl -sf "$(url "$k")/v1/tx/$H" | jq .height)"
done
"$TALLY" status --node "$(url 1)" | grep -E '^(height|consensus|validator)' || true
echo
echo "settlement:"
"$TALLY" lease show "$LEASE" --node "$(url 2)"
"$TALLY" account show --node "$(url 2)"
