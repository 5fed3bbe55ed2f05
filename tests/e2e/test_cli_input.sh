#!/bin/bash
# What tally says on the edges a new user meets first, on an API-only devnet
# (no VMs): each message names the real cause and the exit code is the one
# docs/CLI.md gives.
#   - a stake by a key that no node on the network runs with is refused
#     (offline stake above 1/3 stops the chain for good);
#   - stake --wait that times out says what the transaction still is (the
#     tenant's stake, with no node of its own running, leaves the only
#     validator short of 2/3 of the power: nothing commits after it);
#   - an API port out of range is refused by node init and by tallyd's
#     --check-config (tallyd used to listen on the port modulo 65536);
#   - lease create refuses flags that exclude each other (--provider with
#     --cheapest took the cheapest silently) and submits nothing;
#   - lease create whose default provider is a node started with --no-vms is
#     refused at once, saying so (it waited its whole --timeout); named with
#     --provider, it is waited for like any provider;
#   - an amount above 2^64-1 is "too large", not "not a non-negative
#     integer", and an amount with a leading blank is refused; one above the
#     balance is refused naming both amounts in micro-units;
#   - --node with a port above 65535 is a bad URL, not an unreachable node;
#   - a second tallyd on a data directory in use is refused, naming the pid;
#   - tallyd --check-config loads the key and genesis it names, and refuses an
#     unknown section even when it has no entries, and an image file the lease
#     keeper could not read (unless --no-vms, a node that reads none);
#   - a command given --json that fails still prints one JSON object on stdout;
#   - `tally help bogus` says bogus is not a command; a lease id in capitals is
#     the same id;
#   - chain export refuses to replace a file without --force; a chain file cut
#     short or damaged is "not verified" (exit 1, verified false under --json),
#     a missing one an I/O error (exit 2);
#   - a node that lies (its answers doctored, served by busybox httpd): a
#     status without a height is refused, not taken as an empty chain that
#     verifies; a block it changed is refused, naming the block; tally status
#     refuses an answer that is no node's status; a batch it refuses whole
#     has each line refused with its answer; images and GPU classes that
#     are no strings, or too many for the provider list's line, are printed
#     as "?" and cut short with "...";
#   - key files: a directory, or a path where no file can be made, is named
#     as such, with the OS's reason.
. "$(dirname "$0")/lib.sh"
e2e_init cliinput 7722
e2e_start_node --no-vms

# run CMD...: OUT (stdout and stderr) and RC of a tally command.
run() {
	OUT=$("$TALLY" "$@" 2>&1) && RC=0 || RC=$?
	e2e_log "tally $*: exit $RC: $OUT"
}

# --- what became of a transaction ---------------------------------------------------
# (first: the stake below stalls this one-validator chain for good)
TX_TO=$("$TALLY" key new --key "$E2E_DIR/txto.pem" 2>/dev/null)
H=$("$TALLY" transfer --from-key "$E2E_DIR/node/faucet.pem" --to "$TX_TO" 7 2>/dev/null)
run tx "$H" --wait --timeout 60
check "tally tx HASH --wait: committed in a block (exit 0)" \
	bash -c "[ $RC -eq 0 ] && grep -q '^transaction $H: committed in block [0-9]*$' <<<\"\$0\"" "$OUT"
run tx "$(tr a-f A-F <<<"$H")" --json
check "... the same hash in capitals, under --json: the node's answer" \
	bash -c "[ $RC -eq 0 ] && jq -e '.status == \"committed\"' <<<\"\$0\" >/dev/null" "$OUT"
run tx "$(printf '%064d' 0)"
check "tally tx of a hash the node never saw: unknown (exit 1)" \
	bash -c "[ $RC -eq 1 ] && grep -q 'unknown to the node' <<<\"\$0\"" "$OUT"
run tx 1234
check "tally tx of something that is no hash: usage error (exit 2)" [ "$RC" -eq 2 ]

# --- a stake with no node behind it, and stake --wait that times out -------------
run stake 2000000 --wait
check "a stake by a key no tallyd runs with is refused (exit 1)" [ "$RC" -eq 1 ]
check "... saying why: offline stake stops the chain" grep -q "no tallyd with key .* is on this network" <<<"$OUT"
check "... and nothing was submitted" [ "$(curl -s "$TALLY_NODE/v1/accounts/$("$TALLY" key show)" | jq .next_nonce)" = 0 ]
run stake 2000000 --wait --no-node-check
check "with --no-node-check the tenant's stake commits" [ "$RC" -eq 0 ]
run unstake 1 --wait --timeout 1
check "unstake --wait on a stalled chain times out with exit 1" [ "$RC" -eq 1 ]
check "... saying the transaction is still pending" grep -q '(still pending)$' <<<"$OUT"

# --- an API port out of range -------------------------------------------------
run node init --dev "$E2E_DIR/badport" --listen 127.0.0.1:99999
check "node init --listen 127.0.0.1:99999 is a usage error (exit 2)" [ "$RC" -eq 2 ]
check "... naming the port's range" grep -q "1..65535" <<<"$OUT"
check "... and writes nothing" [ ! -e "$E2E_DIR/badport" ]
sed 's/^listen = .*/listen = 127.0.0.1:99999/' "$E2E_DIR/node/tallyd.conf" >"$E2E_DIR/badport.conf"
OUT=$("$TALLYD" --check-config -c "$E2E_DIR/badport.conf" 2>&1) && RC=0 || RC=$?
e2e_log "tallyd --check-config with listen = 127.0.0.1:99999: exit $RC: $OUT"
check "tallyd --check-config refuses listen = 127.0.0.1:99999 (exit 1)" [ "$RC" -eq 1 ]
check "... naming the line and the value" grep -q ":[0-9]*: bad value '127.0.0.1:99999' for 'listen'" <<<"$OUT"

# --- one node per data directory ---------------------------------------------------
sed 's/^listen = .*/listen = 127.0.0.1:7799/' "$E2E_DIR/node/tallyd.conf" >"$E2E_DIR/second.conf"
OUT=$(timeout 30 "$TALLYD" -c "$E2E_DIR/second.conf" --no-vms 2>&1) && RC=0 || RC=$?
e2e_log "a second tallyd on the running node's data directory: exit $RC: $OUT"
check "a second tallyd on a data directory in use is refused (and not by the timeout)" \
	bash -c "[ $RC -ne 0 ] && [ $RC -ne 124 ]"
check "... naming the running one's pid" grep -q "is in use by tallyd (pid $E2E_NODE_PID)" <<<"$OUT"
check "... and the running node still answers" curl -sf "$TALLY_NODE/healthz"

# --- the liveness window a new chain starts with ------------------------------------
run node init --dev "$E2E_DIR/lw" --liveness-window 25
check "node init --liveness-window 25 writes it into the genesis" \
	bash -c "[ $RC -eq 0 ] && [ \"\$(jq .params.liveness_window '$E2E_DIR/lw/genesis.json')\" = 25 ]"
run node init --dev "$E2E_DIR/lw0"
check "a devnet leaves the liveness rule off by default" \
	[ "$(jq .params.liveness_window "$E2E_DIR/lw0/genesis.json")" = 0 ]
run node init --join "$E2E_DIR/lw/genesis.json" --peer 127.0.0.1:1 --dir "$E2E_DIR/lwj" --liveness-window 5
check "a joining node cannot choose the window (exit 2)" \
	bash -c "[ $RC -eq 2 ] && [ ! -e '$E2E_DIR/lwj' ]"

# --- nodes of one host keep apart ----------------------------------------------------
# Each node node init writes pins its meter and names its domains on its own
# (from its key), so a devnet's nodes can all run VMs on one host.
run node init --dev "$E2E_DIR/three" --validators 3 --listen 127.0.0.1:19400 --json
own_names() {
	local k key
	for k in 1 2 3; do
		key=$(jq -r ".nodes[$((k - 1))].key" <<<"$OUT")
		grep -qx "pin_dir = /sys/fs/bpf/tally-${key:0:8}" "$E2E_DIR/three/node-$k/tallyd.conf" &&
			grep -qx "name_prefix = tally-${key:0:8}-" "$E2E_DIR/three/node-$k/tallyd.conf" ||
			return 1
	done
}
check "node init --validators 3 gives each node its own pin_dir and name_prefix" own_names
LEASE_HINT=$("$TALLY" node init --dev "$E2E_DIR/hint" --listen 127.0.0.1:19410 | grep "then lease with")
check "node init's next step names the node it set up ($LEASE_HINT)" \
	grep -q -- "--node http://127.0.0.1:19410 " <<<"$LEASE_HINT"

# --- keys that are not tally keys, and one others may read -------------------------------
openssl genrsa -out "$E2E_DIR/rsa.pem" 2048 2>/dev/null
run key show --key "$E2E_DIR/rsa.pem"
check "an RSA key is refused as not an Ed25519 private key (exit 2)" \
	bash -c '[ "$1" -eq 2 ] && grep -q "is not an unencrypted Ed25519 private key in PEM" <<<"$2"' _ "$RC" "$OUT"
run key show --key "$E2E_DIR"
check "key show --key DIR: exit 2, saying it is a directory" \
	bash -c '[ "$1" -eq 2 ] && grep -q "cannot load the key $3: it is a directory" <<<"$2"' _ "$RC" "$OUT" "$E2E_DIR"
run key new --key "$E2E_DIR"
check "key new --key DIR: exit 2, saying it is a directory (not a key to keep)" \
	bash -c '[ "$1" -eq 2 ] && grep -q "cannot create $3: it is a directory" <<<"$2"' _ "$RC" "$OUT" "$E2E_DIR"
run key new --key /proc/tally-e2e-key.pem
check "key new where no file can be made: exit 2, naming the path and the OS error" \
	bash -c '[ "$1" -eq 2 ] && grep -q "cannot create /proc/tally-e2e-key.pem: No such file or directory" <<<"$2"' _ "$RC" "$OUT"
"$TALLY" key new --key "$E2E_DIR/open.pem" >/dev/null 2>&1
chmod 644 "$E2E_DIR/open.pem"
run key show --key "$E2E_DIR/open.pem"
check "a key any user may read still works, with a warning to chmod 600 it" \
	bash -c '[ "$1" -eq 0 ] && grep -q "warning: the key .*open.pem may be read by any user (mode 0644): chmod 600" <<<"$2"' _ "$RC" "$OUT"

# --- tallyd --check-config reads what the configuration names -----------------------
NODE_PUB=$("$TALLY" status --json | jq -r .node)
OUT=$("$TALLYD" --check-config -c "$E2E_DIR/node/tallyd.conf" 2>&1) && RC=0 || RC=$?
e2e_log "tallyd --check-config of the node's configuration: exit $RC: $OUT"
check "tallyd --check-config of the node's configuration: valid (exit 0)" [ "$RC" -eq 0 ]
check "... naming its key and chain" \
	grep -q "valid (0 drop-ins): node ${NODE_PUB:0:16}, chain 'e2e-cliinput', a genesis validator" <<<"$OUT"
GENESIS=$(sed -n 's/^genesis = //p' "$E2E_DIR/node/tallyd.conf")
echo '{"chain_id": ' >"$E2E_DIR/bad-genesis.json"
sed "s|^genesis = .*|genesis = $E2E_DIR/bad-genesis.json|" "$E2E_DIR/node/tallyd.conf" >"$E2E_DIR/badgen.conf"
OUT=$("$TALLYD" --check-config -c "$E2E_DIR/badgen.conf" 2>&1) && RC=0 || RC=$?
e2e_log "tallyd --check-config with a broken genesis: exit $RC: $OUT"
check "tallyd --check-config refuses a genesis file that does not parse (exit 1)" [ "$RC" -eq 1 ]
check "... naming the file" grep -q "genesis $E2E_DIR/bad-genesis.json (named in" <<<"$OUT"
{ cat "$E2E_DIR/node/tallyd.conf"; printf '\n[provder]\n# announce = no\n'; } >"$E2E_DIR/typo.conf"
OUT=$("$TALLYD" --check-config -c "$E2E_DIR/typo.conf" 2>&1) && RC=0 || RC=$?
e2e_log "tallyd --check-config with an empty [provder]: exit $RC: $OUT"
check "tallyd --check-config refuses an unknown section even with no entries (exit 1)" [ "$RC" -eq 1 ]
check "... naming its line" grep -q "typo.conf:$(($(wc -l <"$E2E_DIR/node/tallyd.conf") + 2)): unknown section \[provder\]" <<<"$OUT"
{ cat "$E2E_DIR/node/tallyd.conf"; printf '\n[image.ghost]\nkernel = /nonexistent/vmlinuz\n'; } \
	>"$E2E_DIR/ghost.conf"
OUT=$("$TALLYD" --check-config -c "$E2E_DIR/ghost.conf" 2>&1) && RC=0 || RC=$?
e2e_log "tallyd --check-config with an image kernel that does not exist: exit $RC: $OUT"
check "tallyd --check-config refuses an image whose kernel it cannot read, as the keeper's start does (exit 1)" \
	[ "$RC" -eq 1 ]
check "... naming the image and the file" \
	grep -q "ghost.conf: lease keeper: image 'ghost': cannot read /nonexistent/vmlinuz: No such file" <<<"$OUT"
OUT=$("$TALLYD" --check-config --no-vms -c "$E2E_DIR/ghost.conf" 2>&1) && RC=0 || RC=$?
e2e_log "tallyd --check-config --no-vms of the same: exit $RC: $OUT"
check "tallyd --check-config --no-vms accepts it: that node reads no image (exit 0)" [ "$RC" -eq 0 ]
[ -n "$GENESIS" ]

# --- lease create: flags that exclude each other ---------------------------------
NODE_KEY=$("$TALLY" status --json | jq -r .node)
LEASES_BEFORE=$("$TALLY" lease list --json | jq '.leases | length')
run lease create --provider "$NODE_KEY" --cheapest --no-ssh-key
check "lease create --provider KEY --cheapest is a usage error (exit 2)" [ "$RC" -eq 2 ]
check "... saying to give one of them" grep -q -- "--provider PUBKEY or --cheapest, not both" <<<"$OUT"
run lease create --vcpus 0 --no-ssh-key --timeout 600
check "lease create --vcpus 0 is refused at once, before any wait for a provider (exit 1)" \
	bash -c "[ $RC -eq 1 ] && grep -q 'the contract is invalid: vcpus is 0' <<<\"\$0\"" "$OUT"
run lease create --ssh-key /etc/hostname --no-ssh-key
check "lease create --ssh-key FILE --no-ssh-key is a usage error (exit 2)" [ "$RC" -eq 2 ]
check "... and neither submitted a lease" \
	[ "$("$TALLY" lease list --json | jq '.leases | length')" = "$LEASES_BEFORE" ]
check "GET /v1/status of a node started with --no-vms: runs_vms false, no images" \
	bash -c "curl -sf '$TALLY_NODE/v1/status' | jq -e '.runs_vms == false and .images == []' >/dev/null"
START=$(date +%s)
run lease create --no-ssh-key --timeout 60
check "lease create whose provider is a node that runs no VMs is refused at once (exit 1, $(($(date +%s) - START)) s)" \
	bash -c "[ $RC -eq 1 ] && [ $(($(date +%s) - START)) -lt 10 ]"
check "... saying the node runs no VMs (--no-vms)" \
	grep -q "the node at $TALLY_NODE (${NODE_KEY:0:16}) runs no VMs (--no-vms), so it is no provider" <<<"$OUT"
run lease create --provider "$NODE_KEY" --no-ssh-key --timeout 1
check "... but named with --provider, it is waited for as any provider (exit 1: never announced)" \
	bash -c "[ $RC -eq 1 ] && grep -q 'is not registered on the chain: it never announced itself' <<<\"\$0\" &&
		 ! grep -q 'runs no VMs' <<<\"\$0\"" "$OUT"

# --- amounts out of range ---------------------------------------------------------
OTHER=$("$TALLY" key new --key "$E2E_DIR/other.pem" 2>/dev/null)
run transfer --to "$OTHER" 18446744073709551616
check "transfer of 2^64 is a usage error (exit 2)" [ "$RC" -eq 2 ]
check "... saying it is too large" grep -q "too large (at most 18446744073709551615)" <<<"$OUT"
run transfer --to "$OTHER" " 12"
check "transfer of ' 12' is a usage error (exit 2)" [ "$RC" -eq 2 ]
check "... and the other account got nothing" \
	[ "$("$TALLY" account show "$OTHER" --json | jq .balance)" = 0 ]
run transfer --to "$("$TALLY" key show)" 12 --from-key "$E2E_DIR/other.pem"
check "a transfer above the balance is refused by the node (exit 1)" [ "$RC" -eq 1 ]
check "... naming both amounts with their unit" \
	grep -q "(HTTP 402): transfer 12 exceeds balance 0 (micro-units)$" <<<"$OUT"

# --- a node URL that cannot be one ------------------------------------------------
run status --node http://127.0.0.1:99999
check "--node http://127.0.0.1:99999 is a usage error (exit 2)" [ "$RC" -eq 2 ]
check "... named as a bad node URL" grep -q "^tally: bad node URL 'http://127.0.0.1:99999'" <<<"$OUT"
# The node's address with the API's /v1 on it: not read as a node lacking paths.
run status --node "$TALLY_NODE/v1/"
check "--node ending in /v1 is a usage error (exit 2), not the node's 404" [ "$RC" -eq 2 ]
check "... saying to drop /v1" grep -q "bad node URL .*without /v1 (e.g. $TALLY_NODE)" <<<"$OUT"

# --- --json on failure, help for a command that does not exist -----------------------
OUT=$("$TALLY" status --node http://127.0.0.1:1 --json 2>/dev/null) && RC=0 || RC=$?
e2e_log "tally status --json against a closed port: exit $RC: $OUT"
check "status --json against a closed port exits 2" [ "$RC" -eq 2 ]
check "... and prints one JSON object saying why" \
	jq -e '.ok == false and .exit_code == 2 and (.error | test("cannot reach node"))' <<<"$OUT"
for args in "status --bogus --json" "bogus --json" "lease --json" "help bogus --json"; do
	"$TALLY" $args >"$E2E_DIR/fail.json" 2>/dev/null && RC=0 || RC=$?
	check "tally $args: exit 2 with one JSON object on stdout" \
		bash -c "[ $RC -eq 2 ] && jq -e '.ok == false and .exit_code == 2' '$E2E_DIR/fail.json' >/dev/null"
done
run help bogus
check "tally help bogus is a usage error (exit 2)" [ "$RC" -eq 2 ]
check "... saying bogus is not a tally command" \
	grep -q "^tally: 'bogus' is not a tally command; see 'tally --help'" <<<"$OUT"

# --- a lease id in capitals is the same id -------------------------------------------
run lease show ABCDEF0123
check "a lease id prefix in capitals is looked up, not refused as bad usage (exit 1)" [ "$RC" -eq 1 ]
check "... as the lowercase id" grep -q "no lease id starts with 'abcdef0123'" <<<"$OUT"

# --- chain files: replacing one, and one cut short -----------------------------------
CHAIN="$E2E_DIR/chain.tally"
run chain export "$CHAIN"
check "chain export writes a new file" [ "$RC" -eq 0 ]
SUM=$(sha256sum <"$CHAIN")
run chain export "$CHAIN"
check "chain export to an existing file is refused (exit 2)" [ "$RC" -eq 2 ]
check "... saying to give --force" grep -q "exists: give --force to replace it" <<<"$OUT"
check "... and leaves the file as it was" [ "$(sha256sum <"$CHAIN")" = "$SUM" ]
run chain export "$CHAIN" --force
check "chain export --force replaces it" [ "$RC" -eq 0 ]
run chain verify "$CHAIN"
check "the export verifies" [ "$RC" -eq 0 ]
head -c $(($(stat -c %s "$CHAIN") - 7)) "$CHAIN" >"$E2E_DIR/short.tally"
run chain verify "$E2E_DIR/short.tally"
check "chain verify of a file cut short: not verified (exit 1)" [ "$RC" -eq 1 ]
check "... saying it is cut short" grep -q "short.tally is cut short: export it again" <<<"$OUT"
OUT=$("$TALLY" chain verify "$E2E_DIR/short.tally" --json 2>/dev/null) && RC=0 || RC=$?
check "... and under --json: verified false with the reason" \
	jq -e '.verified == false and (.errors[0] | test("cut short"))' <<<"$OUT"
run audit "$(printf '%064d' 0)" --chain "$E2E_DIR/short.tally"
check "audit --chain of a file cut short: not verified (exit 1)" [ "$RC" -eq 1 ]
run chain verify "$E2E_DIR/missing.tally"
check "chain verify of a missing file is an I/O error (exit 2)" [ "$RC" -eq 2 ]

# --- a node that lies -------------------------------------------------------------------
# The real node's answers, doctored, served as static files (busybox httpd
# leaves the query out): the CLI trusts no node for what the chain proves.
LIAR="$E2E_DIR/liar"
LIAR_URL="http://127.0.0.1:$(free_port $((E2E_PORT + 20)))"
mkdir -p "$LIAR/v1"
curl -sf "$TALLY_NODE/v1/genesis" >"$LIAR/v1/genesis"
curl -sf "$TALLY_NODE/v1/status" | jq 'del(.height)' >"$LIAR/v1/status"
busybox httpd -f -p "${LIAR_URL#http://}" -h "$LIAR" &
LIAR_PID=$!
trap 'kill $LIAR_PID 2>/dev/null || true; e2e_cleanup' EXIT
wait_for 10 curl -sf -o /dev/null "$LIAR_URL/v1/genesis"
run chain verify --node "$LIAR_URL"
check "chain verify --node of a node whose status gives no height: not verified (exit 1)" \
	[ "$RC" -eq 1 ]
check "... saying so (it verified an empty chain)" grep -q "status gives no height" <<<"$OUT"
# An answer that is no node's status is refused, not printed as a blank one.
for bogus in '{"chain_id": 5}' '[]' "$(curl -sf "$TALLY_NODE/v1/status" | jq -c 'del(.height)')"; do
	echo "$bogus" >"$LIAR/v1/status"
	run status --node "$LIAR_URL"
	check "status of a node answering ${bogus:0:20}...: exit 2, saying it is not a node's status" \
		bash -c "[ $RC -eq 2 ] && grep -q \"the node's status .*: it is not a tally node\" <<<\"\$0\"" "$OUT"
	OUT=$("$TALLY" status --node "$LIAR_URL" --json 2>/dev/null) && RC=0 || RC=$?
	check "... and with --json: exit 2, {ok: false}" \
		bash -c "[ $RC -eq 2 ] && jq -e '.ok == false and .exit_code == 2' >/dev/null <<<\"\$0\"" "$OUT"
done
# A status whose figures are no numbers is refused, not shown as 0.
curl -sf "$TALLY_NODE/v1/status" | jq '.mempool = "many"' >"$LIAR/v1/status"
run status --node "$LIAR_URL"
check "status of a node whose mempool count is a string: exit 2, naming it" \
	bash -c "[ $RC -eq 2 ] && grep -q \"status answer gives no mempool\" <<<\"\$0\"" "$OUT"
# An account whose balance is no number is refused, not shown as 0.
mkdir -p "$LIAR/v1/accounts"
curl -sf "$TALLY_NODE/v1/accounts/$OTHER" | jq '.balance = "plenty"' >"$LIAR/v1/accounts/$OTHER"
run account show "$OTHER" --node "$LIAR_URL"
check "account show of a node whose balance is a string: exit 2, naming the balance" \
	bash -c "[ $RC -eq 2 ] && grep -q \"account answer gives no balance\" <<<\"\$0\"" "$OUT"
curl -sf "$TALLY_NODE/v1/accounts/$OTHER" | jq '.unbonding = -1' >"$LIAR/v1/accounts/$OTHER"
run account show "$OTHER" --node "$LIAR_URL"
check "... and one whose unbonding is negative" \
	bash -c "[ $RC -eq 2 ] && grep -q \"gives no unbonding\" <<<\"\$0\"" "$OUT"
# A node that refuses a whole batch (busybox answers POST with 501): each
# line is refused in its place with the node's answer, none "got no answer".
printf '00\n0000\n' >"$E2E_DIR/two.txt"
OUT=$("$TALLY" submit "$E2E_DIR/two.txt" --node "$LIAR_URL" --json 2>/dev/null) && RC=0 || RC=$?
e2e_log "submit to a node refusing the batch: exit $RC: $OUT"
check "submit of a batch the node refuses whole: exit 1, both lines refused with its HTTP status" \
	bash -c "[ $RC -eq 1 ] && jq -e '.refused == 2 and .not_sent == 0 and (has(\"error\") | not) and
		 ([.results[] | .http_status] == [501, 501]) and ([.results[].line] == [1, 2]) and
		 (.results[0].error | test(\"answered HTTP 501 to /v1/txs\"))' >/dev/null <<<\"\$0\"" "$OUT"
run submit "$E2E_DIR/two.txt" --node "$LIAR_URL"
check "... the human lines name the node's answer, not a batch with no answer" \
	bash -c "grep -q 'refused (line 2): node at .* answered HTTP 501' <<<\"\$0\" && ! grep -q 'got no answer' <<<\"\$0\"" "$OUT"
curl -sf "$TALLY_NODE/v1/status" | jq '.height = 1' >"$LIAR/v1/status"
# Byte 100 of block 1 (in its header) changed.
curl -sf "$TALLY_NODE/v1/blocks?from=1&to=1" |
	jq '.blocks[0].block |= (.[0:200] + (if .[200:201] == "0" then "1" else "0" end) + .[201:])' \
	>"$LIAR/v1/blocks"
run chain verify --node "$LIAR_URL"
check "a block the node changed: not verified (exit 1), naming block 1" \
	bash -c "[ $RC -eq 1 ] && grep -q 'block 1: ' <<<\"\$0\"" "$OUT"
run lease show "$(printf '%064d' 7)" --node "$LIAR_URL"
check "a node answering 404 with no tally body is named, with the path it was asked" \
	bash -c "[ $RC -ne 0 ] && grep -q 'node at $LIAR_URL answered HTTP 404 to /v1/leases/' <<<\"\$0\"" "$OUT"
# Providers whose images and GPU classes are no strings, or too many to
# list: each is printed as "?", the list cut short with "...", taken as data
# (exit 0), never read past the line's buffer.
PKEY=$(printf '%064d' 5)
PROV=$(jq -nc --arg k "$PKEY" '{provider: $k, height: 1, withdrawn: false,
	endpoint: "http://x", region: "r", interval_s: 10,
	sla_max_credit_ppm: 500000, sla_min_delay_ppm: 10000,
	prices: {vcpu_second: 1, mem_gib_second: 1, gpu_second: 1},
	capacity: {vcpus: 1, memory_mib: 1, gpus: 1},
	images: ([5, null] + [range(100) | "image-with-a-rather-long-name-\(.)"]),
	gpu_classes: [{"a": 1}, "h100"]}')
mkdir -p "$LIAR/v1/providers"
echo "$PROV" >"$LIAR/v1/providers/$PKEY"
run provider show "$PKEY" --node "$LIAR_URL"
check "provider show of images and GPU classes that are no strings: exit 0, each one '?'" \
	bash -c "[ $RC -eq 0 ] && [ \$(grep -c '^image      ?$' <<<\"\$0\") -eq 2 ] &&
		 grep -q '^gpu class  ?$' <<<\"\$0\" && grep -q '^gpu class  h100$' <<<\"\$0\"" "$OUT"
rm -r "$LIAR/v1/providers"
jq -nc --argjson p "$PROV" '{height: 1, providers: [$p]}' >"$LIAR/v1/providers"
run provider list --node "$LIAR_URL"
check "provider list of 102 images, two no strings: exit 0, the list cut short with '...'" \
	bash -c "[ $RC -eq 0 ] && grep -q '^${PKEY:0:16} .* ?,?,image-with-a-rather-long-name-0,.*\\.\\.\\. ' <<<\"\$0\"" \
	"$OUT"
# A provider whose figures are no numbers is refused, not listed at price 0.
jq -nc --argjson p "$PROV" '{height: 1, providers: [($p | .prices.vcpu_second = "cheap")]}' \
	>"$LIAR/v1/providers"
run provider list --node "$LIAR_URL"
check "provider list of a provider whose price is a string: exit 2, naming the price" \
	bash -c "[ $RC -eq 2 ] && grep -q 'provider answer gives no prices.vcpu_second' <<<\"\$0\"" "$OUT"
kill "$LIAR_PID"
wait "$LIAR_PID" 2>/dev/null || true
trap e2e_cleanup EXIT

e2e_done
