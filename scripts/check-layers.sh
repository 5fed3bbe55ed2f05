#!/bin/bash
# The layers of tally, checked on every #include "...":
#
#   rank  area            may include
#   0     lib/            lib/ (the base: codec, crypto, errors, merkle)
#   1     contracts/      base, contracts/
#   2     lib/chain/      base, contracts/, lib/chain/
#   3     daemon/, cli/   everything below; never each other
#
# and inside the daemon, each part only the parts below it:
#
#   0 daemon/config, log, clock       2 daemon/ledger
#   1 daemon/consensus, daemon/meter, 3 daemon/keeper*, daemon/usage_record,
#     daemon/provision                  daemon/net (peers: uses the ledger)
#                                     4 daemon/api
#                                     5 daemon/node.h, daemon/tallyd.c
#
# Includes within one folder and rank are free, but no two modules may use each
# other, directly or through others (a cycle): the module graph must sort
# topologically. x.c, x.h and a private header x_impl.h are module x.
#
#   scripts/check-layers.sh [ROOT]     check ROOT (default: the checkout)
#   scripts/check-layers.sh --self-test
#                                      show it failing on an include that
#                                      points up, one that points sideways and
#                                      a cycle, each in a throwaway copy
#
# Prints a Check-style summary line, so .ci/run counts it.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)

# One awk pass over every #include "..." of the tree (file:include lines):
# prints each include that breaks the layers, and the module edges for the
# cycle check ("EDGE a b"). The area of a file is "layer rank"; areas:
#   lib/chain 2, lib 0, contracts 1, daemon 3.x by part, cli 3, else "-".
LAYERS_AWK='
function area(f) {
	if (f ~ /^lib\/chain\//) return "chain 2"
	if (f ~ /^lib\//) return "base 0"
	if (f ~ /^contracts\//) return "contracts 1"
	if (f ~ /^daemon\/(config|log|clock)\./) return "daemon 3.0"
	if (f ~ /^daemon\/(consensus|meter|provision)\//) return "daemon 3.1"
	if (f ~ /^daemon\/ledger\//) return "daemon 3.2"
	if (f ~ /^daemon\/keeper/ || f ~ /^daemon\/usage_record\./ || f ~ /^daemon\/net\//) return "daemon 3.3"
	if (f ~ /^daemon\/api\//) return "daemon 3.4"
	if (f ~ /^daemon\//) return "daemon 3.5"
	if (f ~ /^cli\//) return "cli 3"
	return "other -"
}
function dir(f) { sub(/\/[^\/]*$/, "", f); return f }
function module(f) { sub(/\.[^.\/]*$/, "", f); sub(/_impl$/, "", f); return f }
{
	i = index($0, ":"); from = substr($0, 1, i - 1); to = substr($0, i + 1)
	split(area(from), fa, " "); split(area(to), ta, " ")
	fl = fa[1]; fr = fa[2]; tl = ta[1]; tr = ta[2]
	why = ""
	if (fr == "-") why = ""
	else if (tr == "-") { if (fl != "daemon" && fl != "cli") why = "includes " to ", outside the layers" }
	else if ((fl == "cli" && tl == "daemon") || (fl == "daemon" && tl == "cli"))
		why = "points sideways (" fl " includes " tl ")"
	else if (dir(from) == dir(to) && fr == tr) why = ""
	else if (tr + 0 > fr + 0) why = "points up (" fl " rank " fr " includes " tl " rank " tr ")"
	else if (fl == "daemon" && tl == "daemon" && fr == tr) why = "points sideways inside the daemon"
	if (why != "") printf "check-layers: %s: #include \"%s\" %s\n", from, to, why
	a = module(from); b = module(to)
	if (a != b) printf "EDGE %s %s\n", a, b
}'

check() {
	local root=$1 out edges loops bad=0
	out=$(cd "$root" && grep -rHoE '^#include "[^"]+"' lib contracts daemon cli 2>/dev/null |
	      sed 's/:#include "\(.*\)"$/:\1/' |
	      while IFS=: read -r f inc; do [ -e "$inc" ] && echo "$f:$inc"; done |
	      awk "$LAYERS_AWK")
	if grep -v '^EDGE ' <<<"$out" | grep -q .; then
		grep -v '^EDGE ' <<<"$out" >&2
		bad=1
	fi
	edges=$(grep '^EDGE ' <<<"$out" | cut -d' ' -f2-)
	# tsort names every module of a cycle on stderr.
	loops=$(tsort <<<"$edges" 2>&1 >/dev/null | grep -v 'input contains a loop' | sed 's/^tsort: //')
	if [ -n "$loops" ]; then
		echo "check-layers: files include each other in a cycle: $(echo $loops)" >&2
		bad=1
	fi
	return $bad
}

if [ "${1:-}" = --self-test ]; then
	src=$(cd "$here/.." && pwd)
	tmp=$(mktemp -d /tmp/tally-layers.XXXXXX)
	trap 'rm -rf "$tmp"' EXIT
	checks=0 failures=0
	fresh() {
		rm -rf "$tmp/t" && mkdir -p "$tmp/t"
		(cd "$src" && tar cf - lib contracts daemon cli ebpf kmod 2>/dev/null) | (cd "$tmp/t" && tar xf -)
	}
	expect_fail() {
		checks=$((checks + 1))
		if check "$tmp/t" 2>"$tmp/out"; then
			echo "check-layers: self-test: $1 was not caught" >&2
			failures=$((failures + 1))
		elif ! grep -q "$2" "$tmp/out"; then
			echo "check-layers: self-test: $1: the report does not name $2: $(cat "$tmp/out")" >&2
			failures=$((failures + 1))
		fi
	}
	fresh
	echo '#include "lib/chain/tx.h"' >>"$tmp/t/contracts/settle.c"
	expect_fail "contracts/ including the chain layer" "contracts/settle.c"
	fresh
	echo '#include "daemon/ledger/ledger.h"' >>"$tmp/t/cli/client.c"
	expect_fail "cli/ including daemon/" "points sideways"
	fresh
	echo '#include "daemon/api/http.h"' >>"$tmp/t/daemon/ledger/store.c"
	expect_fail "the ledger including the API" "daemon/ledger/store.c"
	fresh
	echo '#include "daemon/keeper/keeper.h"' >>"$tmp/t/daemon/net/net.c"
	expect_fail "the peer transport including the keeper" "points sideways inside the daemon"
	fresh
	echo '#include "lib/merkle.h"' >>"$tmp/t/lib/codec.h"
	echo '#include "lib/codec.h"' >>"$tmp/t/lib/merkle.c"
	printf '#include "lib/errors.h"\n#include "lib/merkle.h"\n' >>"$tmp/t/lib/codec.c"
	echo '#include "lib/codec.h"' >>"$tmp/t/lib/errors.c"
	expect_fail "a cycle between files" "cycle"
	fresh
	checks=$((checks + 1))
	if ! check "$tmp/t"; then
		echo "check-layers: self-test: the tree as it is was refused" >&2
		failures=$((failures + 1))
	fi
	echo "check-layers self-test: $(( (checks - failures) * 100 / checks ))%: Checks: $checks, Failures: $failures, Errors: 0"
	[ "$failures" -eq 0 ]
	exit
fi

root=${1:-$(cd "$here/.." && pwd)}
if check "$root"; then
	echo "check-layers: 100%: Checks: 1, Failures: 0, Errors: 0"
else
	echo "check-layers: 0%: Checks: 1, Failures: 1, Errors: 0"
	exit 1
fi
