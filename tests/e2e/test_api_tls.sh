#!/bin/bash
# The API over TLS on a real devnet on 127.0.0.1 (`tally node init --dev
# --tls`, libmicrohttpd with GnuTLS): tally verifies the node as curl does,
# trusting --cacert or $TALLY_CACERT, refusing an untrusted certificate or a
# wrong host name, and the whole lease path (transfer, signed reads) works
# over https://.
. "$(dirname "$0")/lib.sh"
HOSTILE=${TALLY_HOSTILE:-$E2E_ROOT/build/out/tests/hostile}
e2e_init tls 7719 --tls
CERT="$E2E_DIR/node/tls.crt"
export TALLY_NODE="https://127.0.0.1:$E2E_PORT"
export TALLY_CACERT="$CERT"
check "node init --tls wrote a certificate for 127.0.0.1 and a private key" \
	bash -c "openssl x509 -in '$CERT' -noout -ext subjectAltName | grep -q 'IP Address:127.0.0.1' &&
		[ \$(stat -c %a '$E2E_DIR/node/tls.key') = 600 ]"
e2e_start_node --no-vms

check "tally status over https with TALLY_CACERT" bash -c "$TALLY status --json | jq -e '.height >= 0'"
check "curl with --cacert speaks TLS 1.2 or 1.3 to it" \
	bash -c "curl -sf --cacert '$CERT' -w '%{http_version}' -o /dev/null $TALLY_NODE/healthz"
rc=0
env -u TALLY_CACERT "$TALLY" status >"$E2E_DIR/out" 2>&1 || rc=$?
e2e_log "without the CA: exit $rc: $(cat "$E2E_DIR/out")"
check "without --cacert the self-signed node is refused (exit 2), naming --cacert" \
	bash -c "[ $rc = 2 ] && grep -q 'certificate' '$E2E_DIR/out' && grep -q -- '--cacert' '$E2E_DIR/out'"
rc=0
out=$(env -u TALLY_CACERT "$TALLY" status --cacert "$CERT" 2>&1) || rc=$?
check "--cacert FILE on the command line works too (exit $rc)" [ "$rc" = 0 ]
other=$(mktemp -d "$E2E_DIR/other.XXXXXX")
"$TALLY" node init --dev "$other/n" --tls >/dev/null
rc=0
out=$("$TALLY" status --cacert "$other/n/tls.crt" 2>&1) || rc=$?
e2e_log "another devnet's CA: exit $rc: $out"
check "another node's certificate is not trusted for this one (exit 2)" [ "$rc" = 2 ]
check "localhost, which the certificate names, is accepted" \
	"$TALLY" status --node "https://localhost:$E2E_PORT"
rc=0
out=$("$TALLY" status --node "http://127.0.0.1:$E2E_PORT" 2>&1) || rc=$?
e2e_log "http:// to the TLS port: exit $rc: $out"
check "plain HTTP to the TLS port gets no answer (exit 2)" [ "$rc" = 2 ]
check "... and the message says to use https://" grep -q "use https://" <<<"$out"
rc=0
out=$("$TALLY" status --node "file:///etc/passwd" 2>&1) || rc=$?
e2e_log "file:// node: exit $rc: $out"
check "a node URL that is not http(s) is refused (exit 2)" \
	bash -c "[ $rc = 2 ] && grep -q 'bad node URL' <<<'$out'"

# A transaction and a signed private read go through over TLS.
FAUCET="$E2E_DIR/node/faucet.pem"
OTHER=$("$TALLY" key new --key "$E2E_DIR/other.pem" 2>/dev/null)
check "a transfer is accepted over https" \
	"$TALLY" transfer --to "$OTHER" 1000 --from-key "$FAUCET"
check "and commits" \
	wait_for 20 bash -c "[ \$($TALLY account show $OTHER --json | jq .balance) = 1000 ]"
LEASE0=$(printf 'a%.0s' $(seq 64))
rc=0
out=$("$TALLY" lease console "$LEASE0" 2>&1) || rc=$?
e2e_log "signed read of an unknown lease over https: exit $rc: $out"
check "a signed read over https reaches the node's checks (404 for an unknown lease)" \
	bash -c "[ $rc = 1 ] && grep -q 'HTTP 404' <<<'$out'"
check "the node is alive" kill -0 "$E2E_NODE_PID"

# The host name is verified too: the node restarted with a certificate for
# another name, which the client trusts as a CA, is still refused.
e2e_stop_node
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
	-subj /CN=elsewhere.invalid -addext subjectAltName=DNS:elsewhere.invalid \
	-keyout "$E2E_DIR/else.key" -out "$E2E_DIR/else.crt" 2>/dev/null
sed -i -e "s|^tls_cert = .*|tls_cert = $E2E_DIR/else.crt|" \
	-e "s|^tls_key = .*|tls_key = $E2E_DIR/else.key|" "$E2E_DIR/node/tallyd.conf"
"$TALLYD" -c "$E2E_DIR/node/tallyd.conf" --no-vms >>"$E2E_DIR/tallyd.log" 2>&1 &
E2E_NODE_PID=$!
else_url="https://elsewhere.invalid:$E2E_PORT/healthz"
else_curl=(curl -sf --cacert "$E2E_DIR/else.crt" --resolve "elsewhere.invalid:$E2E_PORT:127.0.0.1")
wait_for 20 "${else_curl[@]}" "$else_url" || true
rc=0
TALLY_CACERT="$E2E_DIR/else.crt" "$TALLY" status >"$E2E_DIR/out" 2>&1 || rc=$?
e2e_log "a certificate for another name: exit $rc: $(cat "$E2E_DIR/out")"
check "a certificate for another host name is refused (exit 2)" \
	bash -c "[ $rc = 2 ] && grep -q 'elsewhere.invalid\\|name' '$E2E_DIR/out'"
check "while curl, told to trust it for that name, gets its answer" "${else_curl[@]}" "$else_url"
e2e_done
