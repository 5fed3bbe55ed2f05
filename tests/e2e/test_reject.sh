#!/bin/bash
# Rejected contracts: each bad LEASE_OPEN gets a clear refusal, no VM is made
# and no balance moves.
. "$(dirname "$0")/lib.sh"
FORGE=${TALLY_FORGE:-$E2E_ROOT/build/out/tests/forge}
e2e_init reject 7712
e2e_start_node
TALLY_GENESIS_HASH=$(curl -s "$TALLY_NODE/v1/status" | jq -r .genesis_hash)
export TALLY_GENESIS_HASH
OTHER="$E2E_DIR/other.pem"
"$TALLY" key new --key "$OTHER" >/dev/null 2>&1

STATUS=$("$TALLY" status --json)
NODE=$(jq -r .node <<<"$STATUS")
CHAIN=$(jq -r .chain_id <<<"$STATUS")
balance() { "$TALLY" account show --json | jq .balance; }
nonce() { "$TALLY" account show --json | jq .nonce; }

# contract FIELD=VALUE...: a valid contract for this node, with changes.
contract() {
	local j
	j=$(jq -n --arg t "$TENANT" --arg p "$NODE" --arg c "$CHAIN" --argjson n "$(nonce)" \
		--argjson e $(($(date +%s) + 600)) --argjson pr "$(jq .prices <<<"$STATUS")" '{
		version: 2, chain_id: $c, tenant: $t, provider: $p, nonce: $n, expiry: $e,
		vm: {vcpus: 1, memory_mib: 128, disk_gib: 0, gpus: 0, image: "tiny"},
		duration_s: 30, deposit: 5000000, interval_s: 2, prices: $pr,
		sla: {max_delay_ppm: 100000, credit_ppm: 100000}}')
	for kv in "$@"; do j=$(jq "$kv" <<<"$j"); done
	echo "$j" >"$E2E_DIR/contract.json"
}

# submit HEX: POST it; prints "HTTP-code error-text".
submit() {
	curl -s -o "$E2E_DIR/answer.json" -w '%{http_code}' -H 'Content-Type: application/json' \
		-d "{\"tx\":\"$1\"}" "$TALLY_NODE/v1/tx"
	echo " $(jq -r '.error // .hash' "$E2E_DIR/answer.json")"
}

# refused NAME EXPECTED-CODE-PATTERN MESSAGE-PATTERN HEX
refused() {
	local name=$1 code=$2 msg=$3 hex=$4 before answer
	before=$(balance)
	answer=$(submit "$hex")
	e2e_log "$name -> $answer"
	check "$name is refused with a clear message" \
		grep -Eq "^$code .*($msg)" <<<"$answer"
	sleep 1.5   # a block interval: a wrongly accepted tx would commit now
	check "$name moves no balance" [ "$(balance)" = "$before" ]
}

contract '.'
refused "an unsigned contract" 400 "signature does not verify" \
	"$("$FORGE" "$E2E_DIR/contract.json" --unsigned)"
refused "a contract signed by another key" 400 "signature does not verify" \
	"$("$FORGE" "$E2E_DIR/contract.json" --sign-with "$OTHER")"
contract ".expiry = $(($(date +%s) - 60))"
refused "an expired contract" 400 "expir" \
	"$("$FORGE" "$E2E_DIR/contract.json" --sign-with "$TALLY_KEY")"
contract '.chain_id = "another-chain"'
refused "a contract for another chain" 400 "chain" \
	"$("$FORGE" "$E2E_DIR/contract.json" --sign-with "$TALLY_KEY")"
contract ".deposit = $(( $(balance) + 1 ))"
refused "a deposit beyond the balance" 402 "exceeds balance" \
	"$("$FORGE" "$E2E_DIR/contract.json" --sign-with "$TALLY_KEY")"
contract '.vm.vcpus = 64'
refused "more vCPUs than the host has" 409 "vCPUs" \
	"$("$FORGE" "$E2E_DIR/contract.json" --sign-with "$TALLY_KEY")"
contract '.vm.memory_mib = 4000000'
refused "more memory than the host has" 409 "memory|MiB" \
	"$("$FORGE" "$E2E_DIR/contract.json" --sign-with "$TALLY_KEY")"
# SLA terms beyond the provider's announced bounds (its [provider]
# sla_max_credit_ppm and sla_min_delay_ppm, by default 50 % and 1 %), which
# the chain holds every LEASE_OPEN to: no delay allowed and the whole charge
# back would make every record free.
contract '.sla.credit_ppm = 1000000'
refused "an SLA credit above the provider's bound" 400 "credits at most 500000 ppm" \
	"$("$FORGE" "$E2E_DIR/contract.json" --sign-with "$TALLY_KEY")"
contract '.sla.max_delay_ppm = 0'
refused "an SLA allowing no run-queue delay" 400 "at least 10000 ppm" \
	"$("$FORGE" "$E2E_DIR/contract.json" --sign-with "$TALLY_KEY")"
contract '.vm.image = "no-such-image"'
refused "an image the node does not offer" 404 "catalogue" \
	"$("$FORGE" "$E2E_DIR/contract.json" --sign-with "$TALLY_KEY")"
# Path traversal and XML or shell metacharacters in the image name: the
# contract's strict decoder refuses the bytes before anything uses them (the
# name is spliced into 4 bytes of a signed "tinx" contract).
contract '.vm.image = "tinx"'
HEX=$("$FORGE" "$E2E_DIR/contract.json" --sign-with "$TALLY_KEY")
for bad in '2e2e2f78 ../x' '3c783b3e <x;>' '27242829 '"'"'$()' '2f657463 /etc'; do
	refused "the image name '${bad#* }'" 400 "non-canonical encoding" "${HEX/74696e78/${bad%% *}}"
done
contract '.vm.image = ".."'
refused "the image name '..' (allowed characters, not in the catalogue)" 404 "catalogue" \
	"$("$FORGE" "$E2E_DIR/contract.json" --sign-with "$TALLY_KEY")"
rc=0
"$TALLY" lease create --image '../../etc/passwd' --duration 30 >"$E2E_DIR/out" 2>&1 || rc=$?
check "tally lease create refuses a path as an image name (exit $rc)" \
	bash -c "[ $rc = 1 ] && grep -q 'image name' '$E2E_DIR/out'"
# What reaches the guest's cloud-init YAML and the domain's XML.
contract '.vm.hostname = "web\nruncmd: [reboot]"'
refused "a hostname with a newline" 400 "hostname may hold only" \
	"$("$FORGE" "$E2E_DIR/contract.json" --sign-with "$TALLY_KEY")"
contract '.vm.hostname = "web\"/><x"'
refused "a hostname with XML metacharacters" 400 "hostname may hold only" \
	"$("$FORGE" "$E2E_DIR/contract.json" --sign-with "$TALLY_KEY")"
KEY="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC04IPLC+X+sR4FdA34U4BvbU/Qes+rxENYW7bE+QRkm"
contract ".vm.ssh_key = \"$KEY\\nruncmd: [reboot]\""
refused "an SSH key with a newline (YAML injection)" 400 "SSH key holds a control" \
	"$("$FORGE" "$E2E_DIR/contract.json" --sign-with "$TALLY_KEY")"
contract ".vm.ssh_key = \"$KEY a\\\"<b>&\""
refused "an SSH key comment with quotes and XML" 400 "SSH key comment may hold only" \
	"$("$FORGE" "$E2E_DIR/contract.json" --sign-with "$TALLY_KEY")"
contract '.vm.ssh_key = "command=\"reboot\" ssh-ed25519 AAAA"'
refused "an SSH key with options" 400 "key options are not accepted" \
	"$("$FORGE" "$E2E_DIR/contract.json" --sign-with "$TALLY_KEY")"
# The CLI refuses the same before it signs anything.
rc=0
"$TALLY" lease create --image tiny --memory 128 --hostname 'web<1>' --no-ssh-key \
	>"$E2E_DIR/cli.out" 2>&1 || rc=$?
e2e_log "lease create --hostname 'web<1>': exit $rc: $(cat "$E2E_DIR/cli.out")"
check "the CLI refuses a hostile hostname (exit 1)" \
	bash -c "[ $rc -eq 1 ] && grep -q 'hostname may hold only' '$E2E_DIR/cli.out'"
head -c 3000 /dev/zero | tr '\0' 'A' | sed "s|^|ssh-ed25519 |" >"$E2E_DIR/huge.pub"
rc=0
"$TALLY" lease create --image tiny --memory 128 --ssh-key "$E2E_DIR/huge.pub" \
	>"$E2E_DIR/cli.out" 2>&1 || rc=$?
e2e_log "lease create with a 3 KB key: exit $rc: $(cat "$E2E_DIR/cli.out")"
check "the CLI refuses a huge SSH key" \
	bash -c "[ $rc -ne 0 ] && grep -q 'longer than 2048 bytes' '$E2E_DIR/cli.out'"
printf '%s me\n%s other\n' "$KEY" "$KEY" >"$E2E_DIR/two.pub"
rc=0
"$TALLY" lease create --image tiny --memory 128 --ssh-key "$E2E_DIR/two.pub" \
	>"$E2E_DIR/cli.out" 2>&1 || rc=$?
check "the CLI refuses a key file of two lines" \
	bash -c "[ $rc -ne 0 ] && grep -q 'more than one line' '$E2E_DIR/cli.out'"
check "no VM was made for any refused contract" \
	bash -c "! virsh -q -c qemu:///system list --all --name | grep -q '^$E2E_PREFIX'"

# A replay: the same signed contract again, after it was accepted.
contract '.'
HEX=$("$FORGE" "$E2E_DIR/contract.json" --sign-with "$TALLY_KEY")
first=$(submit "$HEX")
check "a valid contract is accepted" grep -Eq '^202 [0-9a-f]{64}$' <<<"$first"
LEASE=${first#202 }
check "its lease runs" wait_for 90 lease_state_is "$LEASE" running
refused "the same contract replayed" 409 "already used|replay|already" "$HEX"
check "only one VM runs for it" \
	[ "$(virsh -q -c qemu:///system list --all --name | grep -c "^$E2E_PREFIX")" -eq 1 ]
"$TALLY" lease close "$LEASE" >/dev/null
check "the lease closes" wait_for 30 lease_state_is "$LEASE" closed
e2e_done
