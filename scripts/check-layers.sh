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

# The area of a file, as "layer:rank" where layer names what may not meet.
area_of() {
	case $1 in
	lib/chain/*) echo "chain 2" ;;
	lib/*) echo "base 0" ;;
	contracts/*) echo "contracts 1" ;;
	daemon/config.* | daemon/log.* | daemon/clock.*) echo "daemon 3.0" ;;
	daemon/consensus/* | daemon/meter/* | daemon/provision/*) echo "daemon 3.1" ;;
	daemon/ledger/*) echo "daemon 3.2" ;;
	daemon/keeper* | daemon/usage_record.* | daemon/net/*) echo "daemon 3.3" ;;
	daemon/api/*) echo "daemon 3.4" ;;
	daemon/*) echo "daemon 3.5" ;;
	cli/*) echo "cli 3" ;;
	*) echo "other -" ;;
	esac
}

# Is an include from (file) to (target) allowed? Prints the reason if not.
allowed() {
	local from=$1 to=$2 fl fr tl tr
	read -r fl fr <<<"$(area_of "$from")"
	read -r tl tr <<<"$(area_of "$to")"
	[ "$fr" = - ] && return 0                  # tests, bench: anything
	[ "$tr" = - ] && { [ "$fl" = daemon ] || [ "$fl" = cli ]; } && return 0  # ebpf/, kmod/ ABI headers
	[ "$tr" = - ] && { echo "includes $to, outside the layers"; return 1; }
	if { [ "$fl" = cli ] && [ "$tl" = daemon ]; } || { [ "$fl" = daemon ] && [ "$tl" = cli ]; }; then
		echo "points sideways ($fl includes $tl)"
		return 1
	fi
	# Same folder and rank is free (cycles are checked separately).
	[ "$(dirname "$from")" = "$(dirname "$to")" ] && [ "$fr" = "$tr" ] && return 0
	if awk -v a="$fr" -v b="$tr" 'BEGIN { exit !(b + 0 > a + 0) }'; then
		echo "points up ($fl rank $fr includes $tl rank $tr)"
		return 1
	fi
	if [ "$fl" = daemon ] && [ "$tl" = daemon ] && [ "$fr" = "$tr" ]; then
		echo "points sideways inside the daemon"
		return 1
	fi
	return 0
}

check() {
	local root=$1 bad=0 f inc why edges
	edges=$(mktemp)
	while IFS=: read -r f inc; do
		inc=${inc#*\"}
		inc=${inc%%\"*}
		[ -e "$root/$inc" ] || continue         # generated headers, skeletons
		if ! why=$(allowed "$f" "$inc"); then
			echo "check-layers: $f: #include \"$inc\" $why" >&2
			bad=1
		fi
		local a=${f%.*} b=${inc%.*}
		a=${a%_impl} b=${b%_impl}
		[ "$a" != "$b" ] && echo "$a $b" >>"$edges"
	done < <(cd "$root" && grep -rHoE '^#include "[^"]+"' lib contracts daemon cli 2>/dev/null |
		 sed 's/:#include /:/')
	# tsort names every module of a cycle on stderr.
	local loops
	loops=$(tsort "$edges" 2>&1 >/dev/null | grep -v 'input contains a loop' | sed 's/^tsort: //')
	rm -f "$edges"
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
	echo '#include "daemon/keeper.h"' >>"$tmp/t/daemon/net/net.c"
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
