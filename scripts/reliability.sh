#!/bin/bash
# `make reliability`: the fuzz targets for SECONDS each (scripts/fuzz.sh
# --long), the torn-file tests (tests/unit/test_torn.c), and one summary of
# both, also written to build/reliability.txt. docs/RELIABILITY.md holds the
# latest figures.
#
#   scripts/reliability.sh SECONDS UNIT_RUNNER TARGET...
set -uo pipefail
cd "$(dirname "$0")/.."

secs=$1
runner=$2
shift 2
out=build/reliability.txt
status=0

scripts/fuzz.sh --long "$secs" "$@" || status=1
torn=$(mktemp "/tmp/tally-torn-$$.XXXXXX")
trap 'rm -f "$torn"' EXIT
(cd tests/unit && CK_RUN_SUITE=torn TALLY_SRCDIR="$PWD/../.." "$PWD/../../$runner") >"$torn" 2>&1 ||
	status=1

regress=$(find tests/fuzz/corpus -name 'regress-*' -type f | wc -l)
crashes=$(find build/fuzz/crashes -type f 2>/dev/null | wc -l)
{
	echo "tally reliability summary ($(date -u +%Y-%m-%d), make reliability FUZZ_SECONDS=$secs)"
	echo
	echo "Fuzzing ($# targets, $secs s each, ASan+UBSan):"
	sed 's/^/  /' build/fuzz/summary.txt
	echo "  crash inputs left in build/fuzz/crashes: $crashes"
	echo "  crashes found and fixed, kept as regression inputs: $regress"
	echo
	echo "Torn and truncated files:"
	grep '^torn-file:' "$torn" | sed 's/^torn-file: /  /'
	grep -E 'Checks: [0-9]+' "$torn" | sed 's/^/  torn-file tests: /'
	echo
	if [ "$status" -eq 0 ]; then
		echo "Lost: nothing (no crash; every torn case refused with what to do, or opened at a"
		echo "consistent, verified height)."
	else
		echo "FAILED: see above and build/fuzz/logs/"
		grep -E ':[0-9]+:[EF]:' "$torn" | head -n 10
	fi
} | tee "$out"
exit $status
