#!/bin/bash
# A provider announcement that commits after its node changed its mind: node
# 2 (a full node) starts with announce = yes while the only validator is
# down, so its PROVIDER waits in its mempool; it is stopped and started
# again as a node that announces nothing (--no-vms, announce at auto),
# which finds no entry on the chain, so nothing to withdraw, while the old
# PROVIDER is restored from mempool.log. Once the validator runs it commits
# that PROVIDER; node 2 then sees its entry does not match what it wants and
# withdraws it, so `tally provider list` never keeps offering a node that
# runs no VMs. (Before, the announcer looked once at start and stopped.)
. "$(dirname "$0")/lib.sh"
net_init announcelate 17990 1 1
printf '[provider]\nannounce = yes\n' >>"$(conf 2)"
K2=$(node_key 2)

start 2 --no-vms
check "node 2 submits its announcement with no validator running" \
	wait_for 30 grep -q "provider announcement submitted; waiting for it to commit" "$(log_of 2)"
check "... and it waits in node 2's mempool" \
	bash -c "[ \"\$(curl -sf $(url 2)/v1/status | jq .mempool)\" -ge 1 ]"
stop 2
sed -i '/^announce = yes$/d' "$(conf 2)"
start 2 --no-vms
check "started again without VMs, node 2 restores the PROVIDER from mempool.log" \
	wait_for 30 grep -q "ledger: mempool: 1 pending transactions restored from mempool.log" \
	"$(log_of 2)"
check "... and says it is not announced, having found no entry to withdraw" \
	grep -q "provider: not announced .*this node runs no VMs (--no-vms)" "$(log_of 2)"

start 1 --no-vms
withdrawn() { curl -sf "$(url 1)/v1/providers/$K2" | jq -e '.withdrawn == true' >/dev/null; }
check "the validator commits the old PROVIDER: node 2 says so and sends its withdrawal" \
	wait_for 60 grep -q "provider: an earlier PROVIDER of this node's key committed at height [0-9]* (sent before this start); sending the withdrawal again" \
	"$(log_of 2)"
check "the withdrawal commits" \
	wait_for 60 grep -q "provider withdrawal committed at height" "$(log_of 2)"
check "the registry holds node 2 as withdrawn" withdrawn
listed() { "$TALLY" provider list --node "$(url 1)" --json | jq -r '.providers | length'; }
check "tally provider list shows no provider" [ "$(listed)" = 0 ]
check "node 2 and the validator hold the same chain" wait_for 30 same_chain 1 1 2
net_done
