#!/bin/bash
# The happy path: lease a VM with a signed contract, watch it being metered
# and charged, close it, and audit it.
. "$(dirname "$0")/lib.sh"
e2e_init happy 7711
e2e_start_node

LEASE=$("$TALLY" lease create --image tiny --vcpus 1 --memory 128 --duration 120 \
	--deposit 30000000 --wait --timeout 120 2>"$E2E_DIR/create.err") || true
check "lease create --wait returns a lease id once the VM runs" [ ${#LEASE} -eq 64 ]
[ ${#LEASE} -eq 64 ] || { cat "$E2E_DIR/create.err"; e2e_done; exit 1; }
DOMAIN="${E2E_PREFIX}${LEASE:0:12}"
check "the lease is running" lease_state_is "$LEASE" running
check "libvirt runs the lease's domain $DOMAIN" domain_exists "$DOMAIN"
check "the domain has the contract's vCPUs and memory" \
	bash -c "virsh -c qemu:///system dominfo $DOMAIN | grep -Eq '^CPU\(s\): +1$' &&
		 virsh -c qemu:///system dominfo $DOMAIN | grep -Eq '^Max memory: +131072 KiB'"

records() { "$TALLY" usage "$LEASE" --json | jq '.records | length'; }
check "usage records arrive every interval" wait_for 60 bash -c "[ \$($TALLY usage $LEASE --json | jq '.records | length') -ge 5 ]"
"$TALLY" usage "$LEASE" --json >"$E2E_DIR/usage.json"
check "every record has CPU time above zero" \
	jq -e '[.records[] | .cpu_ns > 0] | all' "$E2E_DIR/usage.json"
# The guest burns 50% of its one vCPU (tally.burn=50); TCG adds its own
# overhead and the first record includes the boot, so allow a wide window
# over the later records.
# On a busy host the vCPU gets less than it asks for, and waits the rest:
# what it ran plus what it waited for a host CPU is what it asked for.
check "CPU use is close to the guest's burn setting (50% of one vCPU), waits included" \
	jq -e '[.records[1:][]] | (map(.end_ns - .start_ns) | add) as $t
	       | (map(.cpu_ns) | add) / $t < 1.0 and
	         (map(.cpu_ns + .run_delay_ns) | add) / $t > 0.3' "$E2E_DIR/usage.json"
check "records are contiguous in time" \
	jq -e '[.records as $r | range(1; $r | length) | $r[.].start_ns == $r[. - 1].end_ns] | all' \
	"$E2E_DIR/usage.json"
check "charges accrue" [ "$(lease_field "$LEASE" charged)" -gt 0 ]
check "/metrics shows the running lease and its metered CPU" \
	bash -c "curl -sf $TALLY_NODE/metrics | grep -q '^tally_leases{state=\"running\"} 1' &&
		 curl -sf $TALLY_NODE/metrics | awk '/^tally_metered_cpu_seconds_total/ { exit !(\$2 > 0) }'"
check "tally node top lists the VM" bash -c "$TALLY node top --once | grep -q ${LEASE:0:12}"
check "the node computes the VM's CPU and wait shares" \
	bash -c "$TALLY node top --once --json | jq -e '.vms[0].cpu_pct > 0 and .vms[0].run_delay_pct >= 0'"
check "detaching the meter of a running node is refused, naming it" \
	bash -c "out=\$($TALLY node meter-detach --config $E2E_DIR/node/tallyd.conf 2>&1);
		 [ \$? -eq 1 ] && echo \"\$out\" | grep -q 'in use by tallyd' && [ -e $E2E_PIN/link_exit ]"

"$TALLY" lease close "$LEASE" >/dev/null
check "the lease closes as tenant-closed" wait_for 30 lease_state_is "$LEASE" closed
check "close reason is tenant-closed" [ "$(lease_field "$LEASE" close_reason)" = tenant-closed ]
check "the VM is gone" wait_for 30 bash -c "! virsh -q -c qemu:///system list --all --name | grep -q '^$DOMAIN'"
check "no file of the VM is left in the node's state dir" \
	bash -c "[ -z \"\$(ls -A $E2E_DIR/node/vms 2>/dev/null | grep $DOMAIN)\" ]"

"$TALLY" audit "$LEASE" --json >"$E2E_DIR/audit.json" || true
check "the audit verifies" jq -e '.verified == true' "$E2E_DIR/audit.json"
check "the audit saw every record" \
	bash -c "[ \$(jq .records $E2E_DIR/audit.json) -eq \$($TALLY usage $LEASE --json | jq '.records | length') ]"
CHARGED=$(lease_field "$LEASE" charged)
DEPOSIT=$(lease_field "$LEASE" contract.deposit)
SUM=$("$TALLY" usage "$LEASE" --json | jq '[.records[].charge] | add')
check "the settlement equals the sum of the recomputed record charges" [ "$CHARGED" = "$SUM" ]
check "the tenant got the rest of the deposit back" \
	[ "$("$TALLY" account show --json | jq .balance)" -eq $((100000000 - CHARGED)) ]

e2e_stop_node
check "the stopped node's meter is still pinned (it keeps counting)" [ -e "$E2E_PIN/link_exit" ]
check "tally node meter-detach takes it away" \
	bash -c "$TALLY node meter-detach --config $E2E_DIR/node/tallyd.conf --json |
		 jq -e '.found and .dir_removed and (.removed | index(\"link_exit\"))' &&
		 [ ! -e $E2E_PIN ]"
e2e_done
