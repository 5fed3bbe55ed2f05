#!/bin/bash
# make demo: one lease end to end on a single-node devnet.
#   1. install what is missing       5. lease a VM for about a minute
#   2. build the tiny guest image       and show usage as it accrues
#   3. start libvirt when needed     6. close the lease and audit it
#   4. init a devnet, start tallyd   7. print the settlement
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
NODE_PID=
cleanup() {
	set +e
	step "8. stopping everything the demo started"
	[ -n "$NODE_PID" ] && kill -TERM "$NODE_PID" 2>/dev/null && wait "$NODE_PID" 2>/dev/null
	for d in $(virsh -q -c qemu:///system list --all --name 2>/dev/null | grep '^tally-demo-'); do
		virsh -q -c qemu:///system destroy "$d" >/dev/null 2>&1
		virsh -q -c qemu:///system undefine "$d" >/dev/null 2>&1
	done
	# tallyd leaves its meter attached on purpose (it keeps counting across
	# restarts); the demo is over, so take it away.
	"$TALLY" node meter-detach --pin-dir "$PIN" || rm -rf "$PIN"
	rm -rf "$DIR"
	scripts/libvirt.sh down "$DIR.libvirt"
	echo "done"
}
trap cleanup EXIT
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

step "4. devnet with one validator, and tallyd"
export TALLY_NODE=http://127.0.0.1:$PORT
export TALLY_KEY=$DIR/tenant.pem
TENANT=$("$TALLY" key new)
echo "tenant key: $TENANT"
"$TALLY" node init --dev "$DIR/node" --chain-id tally-demo --listen "127.0.0.1:$PORT" \
	--interval 5 --domain-type qemu --network "$NETWORK" --image-dir "$DIR/guest" \
	--fund "$TENANT:50000000"
cat >>"$DIR/node/tallyd.conf" <<CONF
[metering]
pin_dir = $PIN
[libvirt]
name_prefix = tally-demo-
CONF
"$TALLYD" -c "$DIR/node/tallyd.conf" 2>"$DIR/tallyd.log" &
NODE_PID=$!
for _ in $(seq 1 100); do curl -sf "$TALLY_NODE/healthz" >/dev/null && break; sleep 0.1; done
"$TALLY" status
"$TALLY" account show

if [ "$GUEST" = tiny ]; then
	step "5. lease a VM (1 vCPU burning 50%, 128 MiB) for ${DURATION} s"
	LEASE=$("$TALLY" lease create --image tiny --vcpus 1 --memory 128 \
		--duration "$DURATION" --deposit 20000000 --no-ssh-key --wait --timeout 120)
	echo "lease: $LEASE"
	"$TALLY" lease show "$LEASE"
	end=$((SECONDS + DURATION - 10))
	while [ $SECONDS -lt $end ]; do
		sleep 10
		echo
		"$TALLY" usage "$LEASE" | tail -n 6
	done
else
	step "5. lease the Debian cloud guest (1 vCPU, 512 MiB, 3 GiB) and log in"
	ssh-keygen -q -t ed25519 -N '' -C demo-tenant -f "$DIR/id_ed25519"
	LEASE=$("$TALLY" lease create --image debian-12 --vcpus 1 --memory 512 --disk 3 \
		--hostname tally-demo --ssh-key "$DIR/id_ed25519.pub" --duration "$DURATION" \
		--deposit 40000000 --wait --timeout 300)
	echo "lease: $LEASE"
	"$TALLY" lease show "$LEASE"
	booted=$SECONDS
	echo "\$ tally lease ssh $LEASE -- 'uname -a; cat /etc/hostname; cloud-init status'"
	"$TALLY" lease ssh "$LEASE" -i "$DIR/id_ed25519" --timeout 600 \
		-- 'uname -a; cat /etc/hostname; cloud-init status'
	echo "(first login $((SECONDS - booted)) s after the VM started, host key checked)"
	"$TALLY" usage "$LEASE" | tail -n 6
fi

step "6. close the lease and audit it"
"$TALLY" lease close "$LEASE" || true
for _ in $(seq 1 60); do
	[ "$("$TALLY" lease show "$LEASE" --json | jq -r .state)" = closed ] && break
	sleep 1
done
"$TALLY" usage "$LEASE"
"$TALLY" audit "$LEASE"

step "7. settlement"
"$TALLY" lease show "$LEASE"
"$TALLY" account show
