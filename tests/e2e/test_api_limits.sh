#!/bin/bash
# Bounded work per client, with real sockets on a --no-vms devnet: a
# slowloris client (many connections trickling one header byte a second)
# keeps only its per-address share of connections; connections that send
# nothing are closed after the idle timeout; a client over its request rate
# gets 429 with Retry-After; and all the while an ordinary client from
# another address gets its answers.
. "$(dirname "$0")/lib.sh"
HOSTILE=${TALLY_HOSTILE:-$E2E_ROOT/build/out/tests/hostile}
e2e_init limits 7718
cat >>"$E2E_DIR/node/tallyd.conf" <<CONF
[api]
max_connections = 64
max_connections_per_ip = 8
timeout_s = 3
requests_per_s = 20
request_burst = 40
CONF
e2e_start_node --no-vms
N=$TALLY_NODE
metric() { curl -sf "$N/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }

# 127.0.0.0/8 is all loopback on Linux: each address is another client.
"$HOSTILE" slow "$E2E_PORT" 127.0.0.2 40 8 >"$E2E_DIR/slow.out" &
SLOW=$!
sleep 2
ok_reads=0
for _ in $(seq 1 10); do
	"$TALLY" status --json | jq -e '.height >= 0' >/dev/null && ok_reads=$((ok_reads + 1))
done
check "an ordinary client gets 10 of 10 answers while 40 slow sockets are open ($ok_reads)" \
	[ "$ok_reads" = 10 ]
wait "$SLOW"
e2e_log "slow client, connections the node kept each second: $(grep '^open' "$E2E_DIR/slow.out" | cut -d' ' -f2 | tr '\n' ' ')"
most=$(grep '^open' "$E2E_DIR/slow.out" | cut -d' ' -f2 | sort -n | tail -n 1)
check "the slow client keeps at most its 8 connections ($most)" [ "$most" -le 8 ]
check "... and the node served the 8 it kept (they were not all refused)" [ "$most" -ge 1 ]

out=$("$HOSTILE" idle "$E2E_PORT" 127.0.0.3 8 30)
e2e_log "8 silent connections: $out"
check "connections that send nothing are closed by the node (idle timeout 3 s)" \
	grep -q '^closed after' <<<"$out"

out=$("$HOSTILE" burst "$E2E_PORT" 127.0.0.4 200 /v1/status)
e2e_log "200 requests at once from 127.0.0.4: $(grep '^status' <<<"$out" | tr '\n' ' ')"
n200=$(awk '$2 == 200 { print $3 }' <<<"$out")
n429=$(awk '$2 == 429 { print $3 }' <<<"$out")
check "a burst over the rate gets 429s (${n429:-0}) after its burst allowance (${n200:-0} answered)" \
	bash -c "[ '${n429:-0}' -ge 100 ] && [ '${n200:-0}' -ge 40 ]"
check "nothing in the burst got a 5xx or no answer" \
	bash -c "! awk '\$1 == \"status\" && (\$2 >= 500 || \$2 == 0)' <<<'$out' | grep -q ."
refusal=$(sed -n 's/^> //p' <<<"$out" | tr -d '\r')
e2e_log "the first refusal: $(tr '\n' ' ' <<<"$refusal")"
check "a 429 says when to come back (Retry-After) and why, in JSON" \
	bash -c "grep -q '^HTTP/1.1 429' <<<'$refusal' && grep -qi '^Retry-After: [1-9]' <<<'$refusal' &&
		tail -n 1 <<<'$refusal' | jq -e '.code == \"too_many_requests\"'"
check "another address is not limited by that one" \
	bash -c "[ \$(curl -s -o /dev/null -w '%{http_code}' --interface 127.0.0.5 $N/v1/status) = 200 ]"
check "/metrics counts the rate-limited requests" \
	bash -c "[ \$(curl -sf --interface 127.0.0.6 $N/metrics | awk '\$1 == \"tally_api_rate_limited_total\" { print \$2 }') -ge 100 ]"
# A command that asks faster than the rate slows down to it: tally submit
# --wait asks after each of 100 transactions (the burst allows 40); the
# node answers 429 and tally waits its Retry-After instead of failing.
FORGE=${TALLY_FORGE:-$E2E_ROOT/build/out/tests/forge}
side() { curl -s --interface 127.0.0.6 "$N$1"; }
TALLY_CHAIN_ID=$(side /v1/status | jq -r .chain_id)
TALLY_GENESIS_HASH=$(side /v1/status | jq -r .genesis_hash)
export TALLY_CHAIN_ID TALLY_GENESIS_HASH
OTHER=$("$TALLY" key new --key "$E2E_DIR/other.pem" 2>/dev/null)
N0=$(side "/v1/accounts/$TENANT" | jq .next_nonce)
for i in $(seq 0 99); do "$FORGE" transfer "$OTHER" 1 "$((N0 + i))" "$TALLY_KEY"; done \
	>"$E2E_DIR/many.txt"
limited0=$(side /metrics | awk '$1 == "tally_api_rate_limited_total" { print $2 }')
sleep 3   # the burst allowance comes back
"$TALLY" submit "$E2E_DIR/many.txt" --wait --timeout 120 --json >"$E2E_DIR/submit.json" \
	2>"$E2E_DIR/submit.err" && rc=0 || rc=$?
limited1=$(side /metrics | awk '$1 == "tally_api_rate_limited_total" { print $2 }')
e2e_log "tally submit --wait of 100 at 20 requests/s: exit $rc, rate-limited $limited0 -> $limited1"
check "tally submit --wait of 100 past the node's rate: exit 0, all 100 committed (exit $rc)" \
	bash -c "[ $rc = 0 ] && jq -e '[.results[] | select(.committed == true)] | length == 100' \
		 '$E2E_DIR/submit.json' >/dev/null"
check "... having been answered 429 and waited ($limited0 -> $limited1 rate-limited requests)" \
	[ "$limited1" -gt "$limited0" ]
check "the node is alive and serves its ordinary client" "$TALLY" status
e2e_done
