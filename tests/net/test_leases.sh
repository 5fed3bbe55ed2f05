#!/bin/bash
# Leases across providers on a network of four validators that decide every
# block together: nodes 2 and 3 run VMs (the tiny guest under TCG, metered
# by eBPF), nodes 1 and 4 run none. A tenant submits one lease naming node
# 2 and one naming node 3, both through node 4: each is provisioned by the
# provider it names and by no other node, metered, billed and closed while
# the blocks come from each validator in turn; every node holds the same
# chain, and `tally audit` of each lease against each node gives the same
# VERIFIED report.
. "$(dirname "$0")/lib.sh"
[ -d /sys/fs/bpf ] || skip_all "no BPF file system at /sys/fs/bpf"
net_init leases 17850 4 0
start 1 --no-vms
start 2
start 3
start 4 --no-vms
check "the four validators connect" wait_for 30 peers_are 3 1 2 3 4

create() {
	"$TALLY" lease create --provider "$(node_key "$1")" --node "$(url 4)" --image tiny \
		--vcpus 1 --memory 128 --duration 90 --deposit 20000000 2>>"$NET_DIR/cli.err"
}
LA=$(create 2) || true
check "a lease naming node 2 is accepted by node 4" [ ${#LA} -eq 64 ]
# The CLI takes the tenant's nonce from the committed state (GET
# /v1/accounts): the second lease is signed once the first has committed,
# else both would carry one nonce on a busy machine.
on_chain() { "$TALLY" lease show "$LA" --node "$(url 4)" >/dev/null 2>&1; }
check "lease A commits" wait_for 60 on_chain
LB=$(create 3) || true
check "a lease naming node 3 is accepted by node 4" [ ${#LB} -eq 64 ]
[ ${#LA} -eq 64 ] && [ ${#LB} -eq 64 ] || { cat "$NET_DIR/cli.err"; net_done; exit 1; }

state_on() { "$TALLY" lease show "$2" --node "$(url "$1")" --json | jq -r .state; }
running_on() { [ "$(state_on "$1" "$2")" = running ]; }
check "node 2 starts the lease that names it (seen from node 4)" wait_for 180 running_on 4 "$LA"
check "node 3 starts the lease that names it (seen from node 4)" wait_for 180 running_on 4 "$LB"
# grep reads the whole list (with -q it would stop at the first match, and
# virsh, still writing, would fail the pipeline with SIGPIPE).
domain() { virsh -q -c qemu:///system list --all --name | grep "^$NET_PREFIX$1-${2:0:12}" >/dev/null; }
check "lease A runs in node 2's domain" domain 2 "$LA"
check "lease B runs in node 3's domain" domain 3 "$LB"
check "no other node made a domain for lease A" \
	bash -c "! virsh -q -c qemu:///system list --all --name | grep -v '^$NET_PREFIX""2-' | grep -q '${LA:0:12}'"
check "no other node made a domain for lease B" \
	bash -c "! virsh -q -c qemu:///system list --all --name | grep -v '^$NET_PREFIX""3-' | grep -q '${LB:0:12}'"
vms_of() { curl -sf "$(url "$1")/v1/node/vms" | jq -r '[.vms[].lease] | sort | join(",")'; }
check "node 2 keeps exactly lease A" [ "$(vms_of 2)" = "$LA" ]
check "node 3 keeps exactly lease B" [ "$(vms_of 3)" = "$LB" ]
check "nodes 1 and 4 (no VMs) keep none" \
	bash -c "[ -z \"\$(curl -sf $(url 4)/v1/node/vms | jq -r '.vms[]')\" ] &&
		 [ -z \"\$(curl -sf $(url 1)/v1/node/vms | jq -r '.vms[]')\" ]"

records() { "$TALLY" usage "$2" --node "$(url "$1")" --json | jq '.records | length'; }
has_records() { [ "$(records "$1" "$2")" -ge "$3" ]; }
check "node 2's usage records for lease A reach node 1" wait_for 60 has_records 1 "$LA" 3
check "node 3's usage records for lease B reach node 1" wait_for 60 has_records 1 "$LB" 3
check "lease A's provider is node 2's key, lease B's node 3's" \
	bash -c "[ \"\$(curl -sf $(url 1)/v1/leases/$LA | jq -r .contract.provider)\" = $(node_key 2) ] &&
		 [ \"\$(curl -sf $(url 1)/v1/leases/$LB | jq -r .contract.provider)\" = $(node_key 3) ]"
# The VM's private details come from its provider's node; another node says
# which node that is and where.
EP3=$(curl -sf "$(url 1)/v1/providers/$(node_key 3)" | jq -r .endpoint)
OUT=$("$TALLY" lease console "$LB" --node "$(url 4)" 2>&1) && RC=0 || RC=$?
check "lease console through node 4 (no VM) is refused, naming node 3 and its API ($EP3): $OUT" \
	bash -c "[ $RC -ne 0 ] && grep -qF 'its provider is $(node_key 3 | cut -c1-16), whose node is at $EP3' <<<'$OUT'"
check "... and lease console through node 3 shows the VM" \
	"$TALLY" lease console "$LB" --node "$(url 3)"
# The guest prints within seconds of its start, later on a busy host: the
# console is read once it holds something.
console_of_b() { "$TALLY" lease console "$LB" --node "$(url 3)" --json | jq -r .console; }
has_console() { [ -n "$(console_of_b)" ]; }
wait_for 60 has_console || true
CONSOLE=$(console_of_b)
check "its console reads as text: lines without a CR turned into '?' ($(wc -l <<<"$CONSOLE") lines)" \
	bash -c "[ -n \"\$1\" ] && ! grep -q '?\$' <<<\"\$1\" && ! grep -q \$'\\r' <<<\"\$1\"" _ "$CONSOLE"

"$TALLY" lease close "$LA" --node "$(url 4)" >/dev/null 2>>"$NET_DIR/cli.err"
check "lease A closes by the tenant's close sent to node 4" \
	wait_for 60 bash -c "[ \"\$($TALLY lease show $LA --node $(url 1) --json | jq -r .state)\" = closed ]"
check "node 2 stops lease A's VM" wait_for 60 bash -c "! virsh -q -c qemu:///system list --all --name | grep -q '^$NET_PREFIX""2-${LA:0:12}'"
check "lease B still runs" running_on 1 "$LB"
"$TALLY" lease close "$LB" --node "$(url 2)" >/dev/null 2>>"$NET_DIR/cli.err"
check "lease B closes by the tenant's close sent to node 2" \
	wait_for 60 bash -c "[ \"\$($TALLY lease show $LB --node $(url 4) --json | jq -r .state)\" = closed ]"
check "node 3 stops lease B's VM" wait_for 60 bash -c "! virsh -q -c qemu:///system list --all --name | grep -q '^$NET_PREFIX""3-${LB:0:12}'"
check "every node holds the same chain" wait_for 30 same_chain 1 1 2 3 4
NP=$(proposers 1)
check "the $(height 1) blocks came from $NP different proposers (all four take turns)" \
	[ "$NP" -eq 4 ]
audit() { "$TALLY" audit "$1" --node "$(url "$2")" --json 2>/dev/null | jq -S . || true; }
for L in "$LA" "$LB"; do
	audit "$L" 1 >"$NET_DIR/audit-${L:0:8}-1.json"
	check "the audit of lease ${L:0:8} against node 1 verifies" \
		jq -e '.verified == true and .bill.state == "closed"' "$NET_DIR/audit-${L:0:8}-1.json"
	for k in 2 3 4; do
		audit "$L" "$k" >"$NET_DIR/audit-${L:0:8}-$k.json"
		check "the audit of lease ${L:0:8} against node $k is the same VERIFIED report" \
			cmp -s "$NET_DIR/audit-${L:0:8}-1.json" "$NET_DIR/audit-${L:0:8}-$k.json"
	done
done
check "lease A's bill is the same on node 3 as on node 2" \
	[ "$(curl -sf "$(url 3)/v1/leases/$LA" | jq .charged)" = "$(curl -sf "$(url 2)/v1/leases/$LA" | jq .charged)" ]
check "lease A was billed" [ "$(curl -sf "$(url 1)/v1/leases/$LA" | jq .charged)" -gt 0 ]
net_done
