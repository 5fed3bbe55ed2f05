#!/bin/bash
# The provider registry on a network of four validators: nodes 2 and 3 are
# providers with different prices (node 3 asks twice node 2's), nodes 1 and
# 4 announce nothing (node 1 says announce = no; node 4 runs no VMs and
# leaves announce at auto). Each provider's tallyd (--no-vms too, with
# announce = yes: the test drives no VM) announces itself on the chain
# at start; `tally provider list` through node 1 shows exactly the two;
# `tally lease create --cheapest` through node 4 picks node 2; a lease
# naming node 3 at node 2's (lower) prices, submitted through node 4 (not
# node 3), is refused by the chain's rule; node 3's SLA bounds (a credit of
# at most 80000 ppm, a delay of at least 60000 ppm) are in its entry, tally
# lease create moves its default terms within them (and says so) and refuses terms given
# beyond them before signing (--cheapest naming only the terms given when
# no provider fits), and a LEASE_OPEN signed without the CLI beyond
# them is refused by node 4 (the chain's rule); and a withdrawal takes a
# provider out of the list.
. "$(dirname "$0")/lib.sh"
net_init registry 17930 4 0
printf '[provider]\nannounce = no\n' >>"$(conf 1)"
printf '[prices]\nvcpu_second = 20\nmem_gib_second = 5\ngpu_second = 0\n[provider]\nregion = west\nannounce = yes\n' \
	>>"$(conf 2)"
printf '[prices]\nvcpu_second = 40\nmem_gib_second = 10\ngpu_second = 0\n[provider]\nregion = east\nannounce = yes\nsla_max_credit_ppm = 80000\nsla_min_delay_ppm = 60000\n' \
	>>"$(conf 3)"
for k in 1 2 3 4; do start $k --no-vms; done
check "the four validators connect" wait_for 30 peers_are 3 1 2 3 4

listed() { "$TALLY" provider list --node "$(url 1)" --json | jq -r '[.providers[].provider] | sort | join(",")'; }
both=$(printf '%s\n%s\n' "$(node_key 2)" "$(node_key 3)" | sort | paste -sd,)
check "each provider's announcement commits (its log says so)" wait_for 30 \
	bash -c "grep -q 'provider announcement committed' $(log_of 2) &&
		 grep -q 'provider announcement committed' $(log_of 3)"
listed_is() { [ "$(listed)" = "$1" ]; }
check "tally provider list shows both providers and no other node" wait_for 30 listed_is "$both"
check "node 4 (no VMs, announce = auto) says why it is not announced" \
	grep -q "provider: not announced .*this node runs no VMs (--no-vms)" "$(log_of 4)"
price_of() { "$TALLY" provider show "$1" --node "$(url 4)" --json | jq -r .prices.vcpu_second; }
check "node 3's announced vCPU price is its [prices]" [ "$(price_of "$(node_key 3)")" = 40 ]
K3=$(node_key 3)
check "provider show takes the 16 hex characters the listings print" \
	[ "$(price_of "${K3:0:16}")" = 40 ]
check "... in capitals too" [ "$(price_of "$(tr a-f A-F <<<"${K3:0:16}")")" = 40 ]
rc=0; out=$("$TALLY" provider show 00000000 --node "$(url 4)" 2>&1) || rc=$?
check "a prefix no provider has is refused (exit 1), pointing to provider list" \
	bash -c "[ $rc -eq 1 ] && grep -q 'tally provider list' <<<\"\$0\"" "$out"
check "--max-price keeps only the cheaper provider" \
	[ "$("$TALLY" provider list --node "$(url 1)" --max-price vcpu_second=30 --json |
	     jq -r '[.providers[].provider] | join(",")')" = "$(node_key 2)" ]
check "--image keeps nobody for an image no provider offers" \
	[ "$("$TALLY" provider list --node "$(url 1)" --image nosuch --json | jq '.providers | length')" = 0 ]
"$TALLY" provider list --node "$(url 1)" >"$NET_DIR/list.txt" 2>&1
sed 's/^/# /' "$NET_DIR/list.txt"

LC=$("$TALLY" lease create --cheapest --node "$(url 4)" --no-ssh-key --vcpus 1 --memory 128 \
	--duration 60 2>>"$NET_DIR/cli.err")
check "a lease with --cheapest is accepted by node 4" [ ${#LC} -eq 64 ]
provider_of() { curl -sf "$(url 1)/v1/leases/$1" | jq -r .contract.provider; }
provider_is() { [ "$(provider_of "$1")" = "$2" ]; }
check "--cheapest chose node 2, the cheaper provider" wait_for 30 provider_is "$LC" "$(node_key 2)"
check "the lease pays node 2's announced prices" \
	[ "$(curl -sf "$(url 1)/v1/leases/$LC" | jq -r .contract.prices.vcpu_second)" = 20 ]
OUT=$("$TALLY" lease console "$LC" --node "$(url 2)" 2>&1) && RC=0 || RC=$?
check "the tenant's VM read at its provider's --no-vms node says that node runs no VMs ($OUT)" \
	bash -c "[ $RC -ne 0 ] && grep -q 'it was started with --no-vms, so it runs no VMs at all' <<<\"\$0\"" "$OUT"

# Node 3's key at node 2's prices, through node 4: below node 3's announcement.
cat >"$NET_DIR/below.json" <<JSON
{"provider": "$(node_key 3)", "interval_s": 2,
 "prices": {"vcpu_second": 20, "mem_gib_second": 5, "gpu_second": 0}}
JSON
wait_for 30 bash -c "[ \"\$(curl -sf $(url 4)/v1/accounts/$TENANT | jq -r .nonce)\" = 1 ]"
if "$TALLY" lease create "$NET_DIR/below.json" --node "$(url 4)" --no-ssh-key --vcpus 1 \
	--memory 128 --duration 60 >"$NET_DIR/below.out" 2>"$NET_DIR/below.err"; then
	below_rc=0
else
	below_rc=$?
fi
sed 's/^/# /' "$NET_DIR/below.err"
check "a lease below node 3's prices is refused through node 4 (exit 1)" [ "$below_rc" -eq 1 ]
check "the refusal names the provider's announced prices" \
	grep -q "prices are below provider $(node_key 3 | cut -c1-8)" "$NET_DIR/below.err"
check "no lease names node 3" \
	[ "$(curl -sf "$(url 1)/v1/leases?provider=$(node_key 3)" | jq '.leases | length')" = 0 ]

# Node 3's SLA bounds: announced from its [provider] keys, node 2's the defaults.
sla_of() { "$TALLY" provider show "$1" --node "$(url 1)" --json |
	jq -r '"\(.sla_max_credit_ppm)/\(.sla_min_delay_ppm)"'; }
check "node 3 announces its SLA bounds (80000 ppm credit at most, 60000 ppm delay at least)" \
	[ "$(sla_of "$K3")" = 80000/60000 ]
check "node 2 announces the default bounds (500000, 10000)" [ "$(sla_of "$(node_key 2)")" = 500000/10000 ]
check "provider show prints them" \
	bash -c "$TALLY provider show $K3 --node $(url 1) | grep -q '^sla        credit at most 80000 ppm.*at least 60000 ppm'"
rc=0
"$TALLY" lease create --provider "$K3" --credit-ppm 80001 --node "$(url 4)" --no-ssh-key \
	--vcpus 1 --memory 128 --duration 60 >"$NET_DIR/sla.out" 2>"$NET_DIR/sla.err" || rc=$?
sed 's/^/# /' "$NET_DIR/sla.err"
check "--credit-ppm above node 3's bound is refused before signing (exit 1), naming the bound" \
	bash -c "[ $rc -eq 1 ] && grep -q 'credits at most 80000 ppm .*not 80001' '$NET_DIR/sla.err' &&
		 grep -q 'SLA terms are outside its provider.s announcement' '$NET_DIR/sla.err' &&
		 ! grep -q 'submitted' '$NET_DIR/sla.err'"
rc=0
"$TALLY" lease create --provider "$K3" --max-delay-ppm 59999 --node "$(url 4)" --no-ssh-key \
	--vcpus 1 --memory 128 --duration 60 >"$NET_DIR/sla.out" 2>"$NET_DIR/sla.err" || rc=$?
check "--max-delay-ppm below node 3's bound is refused before signing (exit 1)" \
	bash -c "[ $rc -eq 1 ] && grep -q 'at least 60000 ppm .*not 59999' '$NET_DIR/sla.err'"
rc=0
"$TALLY" lease create --cheapest --credit-ppm 600000 --node "$(url 4)" --no-ssh-key \
	--vcpus 1 --memory 128 --duration 60 >"$NET_DIR/sla.out" 2>"$NET_DIR/sla.err" || rc=$?
check "--cheapest with a credit no provider's bounds admit is refused (exit 1), saying so" \
	bash -c "[ $rc -eq 1 ] && grep -q 'SLA bounds that admit credit_ppm 600000' '$NET_DIR/sla.err'"
check "... naming no delay, which was not given (it named max_delay_ppm 1000000)" \
	bash -c "! grep -q 'max_delay_ppm' '$NET_DIR/sla.err'"
rc=0
"$TALLY" lease create --cheapest --image nosuch --node "$(url 4)" --no-ssh-key \
	--vcpus 1 --memory 128 --duration 60 >"$NET_DIR/sla.out" 2>"$NET_DIR/sla.err" || rc=$?
sed 's/^/# /' "$NET_DIR/sla.err"
check "--cheapest for an image nobody offers names the image and no SLA term (none was given)" \
	bash -c "[ $rc -eq 1 ] && grep -q \"offers image 'nosuch'\" '$NET_DIR/sla.err' &&
		 ! grep -q 'SLA' '$NET_DIR/sla.err'"
L3=$("$TALLY" lease create --provider "$K3" --node "$(url 4)" --no-ssh-key --vcpus 1 \
	--memory 128 --duration 60 2>"$NET_DIR/l3.err")
sed 's/^/# /' "$NET_DIR/l3.err"
check "a lease naming node 3 with the default SLA is accepted" [ ${#L3} -eq 64 ]
check "... and tally says the SLA terms it signed, moved within node 3's bounds" \
	grep -q 'lease submitted: .*SLA credit 80000 ppm above 60000 ppm delay' "$NET_DIR/l3.err"
sla_terms() { curl -sf "$(url 1)/v1/leases/$1" |
	jq -r '"\(.contract.sla.credit_ppm)/\(.contract.sla.max_delay_ppm)"'; }
sla_terms_are() { [ "$(sla_terms "$1")" = "$2" ]; }
check "its default terms moved within node 3's bounds (credit 80000, delay 60000)" \
	wait_for 30 sla_terms_are "$L3" 80000/60000
check "the --cheapest lease kept the defaults within node 2's bounds (100000, 50000)" \
	sla_terms_are "$LC" 100000/50000
# The chain's rule, not the CLI's: a LEASE_OPEN signed outside the CLI with
# full credit for no delay at node 3's prices, posted to node 4 (no keeper
# of node 3's there), is refused by every node's mempool.
FORGE=${TALLY_FORGE:-$E2E_ROOT/build/out/tests/forge}
TALLY_CHAIN_ID=$(curl -sf "$(url 4)/v1/status" | jq -r .chain_id)
TALLY_GENESIS_HASH=$(curl -sf "$(url 4)/v1/status" | jq -r .genesis_hash)
export TALLY_CHAIN_ID TALLY_GENESIS_HASH
jq -n --arg t "$TENANT" --arg p "$K3" --arg c "$TALLY_CHAIN_ID" \
	--argjson n "$(curl -sf "$(url 4)/v1/accounts/$TENANT" | jq .next_nonce)" \
	--argjson e $(($(date +%s) + 600)) '{
	version: 2, chain_id: $c, tenant: $t, provider: $p, nonce: $n, expiry: $e,
	vm: {vcpus: 1, memory_mib: 128, disk_gib: 0, gpus: 0, image: "tiny"},
	duration_s: 30, deposit: 5000000, interval_s: 2,
	prices: {vcpu_second: 40, mem_gib_second: 10, gpu_second: 0},
	sla: {max_delay_ppm: 0, credit_ppm: 1000000}}' >"$NET_DIR/free.json"
HEX=$("$FORGE" "$NET_DIR/free.json" --sign-with "$TALLY_KEY")
CODE=$(curl -s -o "$NET_DIR/free.out" -w '%{http_code}' -H 'Content-Type: application/json' \
	-d "{\"tx\":\"$HEX\"}" "$(url 4)/v1/tx")
echo "# $CODE $(cat "$NET_DIR/free.out")"
check "a signed LEASE_OPEN beyond node 3's SLA bounds is refused by node 4's mempool (400)" \
	bash -c "[ $CODE = 400 ] && jq -r .error '$NET_DIR/free.out' |
		 grep -q 'credits at most 80000 ppm .*not 1000000'"

# Node 3 stops announcing: it withdraws at its next start.
stop 3
printf '[provider]\nannounce = no\n' >>"$(conf 3)"
start 3 --no-vms
check "node 3's withdrawal commits" wait_for 30 grep -q 'provider withdrawal committed' "$(log_of 3)"
check "tally provider list then shows node 2 alone" wait_for 30 listed_is "$(node_key 2)"
check "tally provider show says node 3 withdrew" \
	[ "$("$TALLY" provider show "$(node_key 3)" --node "$(url 1)" --json | jq -r .withdrawn)" = true ]
check "tally status says whether tenants can pick each node: node 2 announced, 3 withdrawn, 4 not" \
	bash -c "$TALLY status --node $(url 2) | grep -q '^provider   announced at block' &&
		 $TALLY status --node $(url 3) | grep -q '^provider   withdrawn at block .*cannot pick' &&
		 $TALLY status --node $(url 4) | grep -q '^provider   not announced: tenants cannot pick'"
net_done
