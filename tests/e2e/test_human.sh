#!/bin/bash
# What a person reads from tally, against a real node: times in the human
# output of `lease show` and `usage` as ISO 8601 in the local zone (the same
# instant under TZ=UTC0 and a zone 3 h 30 min west, each with its offset),
# the raw integers kept in --json, and the progress line of `lease create
# --wait`, `chain export` and `audit` drawn only when stderr is a terminal
# (script(1) gives the command a pseudo-terminal), never when piped or with
# --json.
. "$(dirname "$0")/lib.sh"
e2e_init human 7722
e2e_start_node

WEST='<-0330>3:30'   # POSIX TZ: UTC-03:30 all year, no time zone database needed

# on_tty FILE command...: runs the command with stdin, stdout and stderr on a
# pseudo-terminal, its stdout sent on to FILE by the inner shell, so FILE.tty
# holds what it drew on the terminal's stderr. Returns the command's status.
on_tty() {
	local out=$1
	shift
	script -qec "$(printf '%q ' "$@") >$(printf '%q' "$out")" /dev/null \
		</dev/null >"$out.tty" 2>&1
}
# has FILE TEXT: FILE holds TEXT (bytes, with the escapes bash expands in $'...').
has() { grep -qF -- "$2" "$1"; }
# plain FILE: no carriage return and no escape sequence in FILE.
plain() { ! grep -q $'[\r\033]' "$1"; }
# drawn FILE WHAT: FILE holds the progress line of WHAT at its total, as
# progress_step() draws it in place: "\rtally: N/N WHAT (100%)\e[K".
drawn() { grep -aqE $'\rtally: [0-9]+/[0-9]+ '"$2"$' \\(100%\\)\033\\[K' "$1"; }
# nth_int N KEY < JSON: the Nth KEY's integer as the node wrote it.
nth_int() { grep -oE "\"$2\": ?[0-9]+" | sed -n "$1p" | grep -oE '[0-9]+$'; }

# expect_local NS TZ: the instant NS (Unix ns) as tally should print it in
# TZ, made by date(1) from the integer.
expect_local() {
	TZ=$2 date -d "@$(($1 / 1000000000))" "+%FT%T.$(printf %03d $(($1 % 1000000000 / 1000000)))%:z"
}

# --- lease create --wait ---------------------------------------------------
CREATE=(lease create --image tiny --vcpus 1 --memory 128 --duration 300 --deposit 30000000
	--wait --timeout 180)
on_tty "$E2E_DIR/create.out" "$TALLY" "${CREATE[@]}" || true
LEASE=$(tr -d '\r\n' <"$E2E_DIR/create.out")
check "lease create --wait on a terminal returns the lease id" [ ${#LEASE} -eq 64 ]
[ ${#LEASE} -eq 64 ] || { cat -A "$E2E_DIR/create.out.tty"; e2e_done; exit 1; }
check "on a terminal, --wait redraws the lease's state in place until it runs" \
	has "$E2E_DIR/create.out.tty" $'\rtally: lease '"${LEASE:0:16}"' running (block '
check "and clears its line when done" has "$E2E_DIR/create.out.tty" $'\r\033[K'
check "... leaving the state it reached on the screen, on a line of its own" \
	has "$E2E_DIR/create.out.tty" $'\r\033[Ktally: lease '"${LEASE:0:16}"' running (block '

"$TALLY" "${CREATE[@]}" >"$E2E_DIR/create2.out" 2>"$E2E_DIR/create2.err" || true
LEASE2=$(cat "$E2E_DIR/create2.out")
check "piped, --wait prints each state change as a line of its own" \
	bash -c "[ ${#LEASE2} -eq 64 ] &&
		 grep -qx 'tally: lease ${LEASE2:0:16} running (block [0-9]*)' '$E2E_DIR/create2.err'"
check "piped, --wait draws no progress line (no carriage return, no escape)" \
	plain "$E2E_DIR/create2.err"
[ ${#LEASE2} -ne 64 ] || "$TALLY" lease close "$LEASE2" >/dev/null 2>&1

# Ctrl-C during --wait ends the wait, not the lease, and says so.
"$TALLY" "${CREATE[@]}" >"$E2E_DIR/create3.out" 2>"$E2E_DIR/create3.err" &
WAITING=$!
for _ in $(seq 1 50); do grep -q "submitted\|opened" "$E2E_DIR/create3.err" && break; sleep 0.1; done
kill -INT "$WAITING"
INT_RC=0
wait "$WAITING" || INT_RC=$?
sed 's/^/# /' "$E2E_DIR/create3.err"
check "Ctrl-C during lease create --wait ends the wait (exit 130, got $INT_RC)" [ "$INT_RC" -eq 130 ]
check "... saying the lease stays open and how to end it" \
	grep -q "stopped waiting; lease [0-9a-f]\{16\} stays open.*'tally lease close [0-9a-f]\{16\}' ends it" \
	"$E2E_DIR/create3.err"
LEASE3=$(grep -o "tally lease close [0-9a-f]*" "$E2E_DIR/create3.err" | head -n 1 | cut -d' ' -f4)
[ -z "$LEASE3" ] || "$TALLY" lease close "$LEASE3" >/dev/null 2>&1 || true

# A closed lease shows what came back: the deposit less what was charged.
closed() { [ "$(lease_field "$LEASE2" state)" = closed ]; }
if [ ${#LEASE2} -eq 64 ] && wait_for 60 closed; then
	L2=$("$TALLY" lease show "$LEASE2" --json)
	REFUND=$(($(jq .contract.deposit <<<"$L2") - $(jq .charged <<<"$L2")))
	WANT=$(printf '%d.%06d' $((REFUND / 1000000)) $((REFUND % 1000000)))
	check "lease show of a closed lease says what was refunded ($WANT) and at which block" \
		bash -c "'$TALLY' lease show '$LEASE2' | grep -qx 'refunded    $WANT (to the tenant, block $(jq .closed_height <<<"$L2"))'"
else
	check "the lease closed by its tenant closes" false
fi

# --- times in lease show ---------------------------------------------------
"$TALLY" lease show "$LEASE" --json >"$E2E_DIR/lease.json" || true
STARTED=$(json_int started_ns <"$E2E_DIR/lease.json")
check "lease show --json keeps started_ns as an integer of Unix nanoseconds" \
	bash -c "grep -Eq '\"started_ns\": ?$STARTED([^0-9]|\$)' '$E2E_DIR/lease.json' && [ ${#STARTED} -eq 19 ]"
started_in() { TZ=$1 "$TALLY" lease show "$LEASE" | sed -n 's/^started  *//p'; }
# The terms signed, as a tenant reads them: the SLA in percent.
SLA_LINE=$(jq -r '.contract.sla | "sla         \(.credit_ppm / 10000) % of an interval'"'"'s charge back when its vCPUs wait more than \(.max_delay_ppm / 10000) % of it"' "$E2E_DIR/lease.json")
check "lease show states the SLA terms signed, in percent ($SLA_LINE)" \
	bash -c "'$TALLY' lease show '$LEASE' | grep -qxF \"\$0\"" "$SLA_LINE"
UTC_SHOWN=$(started_in UTC0)
WEST_SHOWN=$(started_in "$WEST")
e2e_log "started_ns $STARTED: '$UTC_SHOWN' under TZ=UTC0, '$WEST_SHOWN' under TZ=$WEST"
check "lease show, TZ=UTC0: started is ISO 8601 with +00:00" \
	bash -c "[[ '$UTC_SHOWN' =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}\+00:00$ ]] &&
		 [ '$UTC_SHOWN' = '$(expect_local "$STARTED" UTC0)' ]"
check "lease show, TZ=$WEST: the same instant with -03:30" \
	bash -c "[[ '$WEST_SHOWN' == *-03:30 ]] && [ '$WEST_SHOWN' = '$(expect_local "$STARTED" "$WEST")' ] &&
		 [ \$(date -d '$UTC_SHOWN' +%s%3N) = \$(date -d '$WEST_SHOWN' +%s%3N) ] &&
		 [ \$(date -d '$UTC_SHOWN' +%s%3N) = $((STARTED / 1000000)) ]"

# --- times in usage --------------------------------------------------------
check "usage records arrive" wait_for 90 bash -c "[ \$($TALLY usage $LEASE --json | jq '.records | length') -ge 2 ]"
"$TALLY" usage "$LEASE" --json >"$E2E_DIR/usage.json" || true
check "usage --json keeps start_ns and end_ns as integers" \
	jq -e '.records | length >= 2 and all(.[]; (.start_ns | type) == "number" and (.end_ns | type) == "number")' \
	"$E2E_DIR/usage.json"
SEQ1=$(nth_int 2 seq <"$E2E_DIR/usage.json")
START1=$(nth_int 2 start_ns <"$E2E_DIR/usage.json")
# awk reads to the end: leaving early would end tally with SIGPIPE when its
# output is long, and pipefail would end the test.
row_start() { TZ=$1 "$TALLY" usage "$LEASE" | awk -v seq="$SEQ1" '$1 == seq && !n++ { print $2 }'; }
UTC_ROW=$(row_start UTC0)
WEST_ROW=$(row_start "$WEST")
e2e_log "record $SEQ1 start_ns $START1: '$UTC_ROW' under TZ=UTC0, '$WEST_ROW' under TZ=$WEST"
check "usage, TZ=UTC0: the second record starts at its start_ns in ISO 8601, +00:00" \
	[ "$UTC_ROW" = "$(expect_local "$START1" UTC0)" ]
check "usage, TZ=$WEST: the same start with -03:30" \
	bash -c "[[ '$WEST_ROW' == *-03:30 ]] && [ '$WEST_ROW' = '$(expect_local "$START1" "$WEST")' ]"
check "usage's human output shows no raw nanosecond start" \
	bash -c "! TZ=UTC0 $TALLY usage $LEASE | grep -qw '$START1'"

# The chain export and the audit of a closed lease, its bill settled.
"$TALLY" lease close "$LEASE" >/dev/null 2>&1
check "both leases close" wait_for 60 bash -c "$TALLY lease show $LEASE --json | jq -e '.state == \"closed\"' &&
	{ [ ${#LEASE2} -ne 64 ] || $TALLY lease show $LEASE2 --json | jq -e '.state == \"closed\"'; }"
check "lease list shows the leases in the order they were opened, the newest last" \
	bash -c "[ \"\$($TALLY lease list | tail -n +2 | cut -c1-16)\" = \
		   \"\$($TALLY lease list --json | jq -r '.leases | sort_by(.opened_height, .id) | .[].id[0:16]')\" ] &&
		 $TALLY lease list | grep -n '^${LEASE:0:16} ' | cut -d: -f1 >'$E2E_DIR/l1' &&
		 $TALLY lease list | grep -n '^${LEASE2:0:16} ' | cut -d: -f1 >'$E2E_DIR/l2' &&
		 [ \"\$(cat '$E2E_DIR/l1')\" -lt \"\$(cat '$E2E_DIR/l2')\" ]"

# --- chain export ----------------------------------------------------------
on_tty "$E2E_DIR/export.out" "$TALLY" chain export "$E2E_DIR/tty.chain" || true
check "chain export on a terminal draws the blocks fetched, up to 100%" \
	drawn "$E2E_DIR/export.out.tty" "blocks fetched"
check "and writes the chain file" test -s "$E2E_DIR/tty.chain"
"$TALLY" chain export "$E2E_DIR/piped.chain" >"$E2E_DIR/export.out" 2>"$E2E_DIR/export.err" || true
check "piped, chain export writes the file and nothing on stderr" \
	bash -c "[ -s '$E2E_DIR/piped.chain' ] && [ ! -s '$E2E_DIR/export.err' ]"
on_tty "$E2E_DIR/export-json.out" "$TALLY" chain export "$E2E_DIR/json.chain" --json || true
check "chain export --json on a terminal draws no progress line" \
	bash -c "jq -e . '$E2E_DIR/export-json.out' >/dev/null && ! grep -q 'blocks fetched' '$E2E_DIR/export-json.out.tty'"

# --- audit -----------------------------------------------------------------
AUDIT_RC=0
on_tty "$E2E_DIR/audit.out" "$TALLY" audit "$LEASE" || AUDIT_RC=$?
check "audit on a terminal verifies the lease" \
	bash -c "[ $AUDIT_RC -eq 0 ] && grep -qx VERIFIED '$E2E_DIR/audit.out'"
check "and draws the blocks replayed, up to 100%" drawn "$E2E_DIR/audit.out.tty" "blocks replayed"
on_tty "$E2E_DIR/audit-file.out" "$TALLY" audit "$LEASE" --chain "$E2E_DIR/tty.chain" || true
check "audit --chain FILE on a terminal draws the blocks replayed too" \
	drawn "$E2E_DIR/audit-file.out.tty" "blocks replayed"
AUDIT_RC=0
"$TALLY" audit "$LEASE" >"$E2E_DIR/audit-piped.out" 2>"$E2E_DIR/audit-piped.err" || AUDIT_RC=$?
check "piped, audit verifies and draws no progress line" \
	bash -c "[ $AUDIT_RC -eq 0 ] && ! grep -q 'blocks replayed' '$E2E_DIR/audit-piped.err'"
check "piped, audit's stderr has no carriage return or escape" plain "$E2E_DIR/audit-piped.err"
on_tty "$E2E_DIR/audit-json.out" "$TALLY" audit "$LEASE" --json || true
check "audit --json on a terminal draws no progress line" \
	bash -c "jq -e '.verified == true' '$E2E_DIR/audit-json.out' >/dev/null &&
		 ! grep -q 'blocks replayed' '$E2E_DIR/audit-json.out.tty'"

e2e_done
