#!/bin/bash
# `make reliability`: the fuzz targets for SECONDS each (scripts/fuzz.sh
# --long), the torn-file tests (tests/unit/test_torn.c), the crash loop and
# the full disk (make check-crash, which needs root, libvirt and BPF), and
# one summary of all, also written to build/reliability.txt.
# docs/RELIABILITY.md holds the latest figures.
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

crashlog=$(mktemp "/tmp/tally-crashrun-$$.XXXXXX")
trap 'rm -f "$torn" "$crashlog"' EXIT
rm -f build/reliability/crash.txt build/reliability/disk.txt
if [ "$(id -u)" -eq 0 ]; then
	make --no-print-directory check-crash >"$crashlog" 2>&1 || status=1
else
	echo "SKIP: the crash loop and the full disk need root" >"$crashlog"
fi

# "key value" lines of a figures file; "-" when the run left none.
fig() { awk -v k="$2" '$1 == k { print $2; f = 1 } END { if (!f) print "-" }' "$1" 2>/dev/null || echo -; }

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
	echo "Crash loop and full disk (make check-crash):"
	grep -h '^SKIP' "$crashlog" | sed 's/^/  /'
	c=build/reliability/crash.txt d=build/reliability/disk.txt
	echo "  SIGKILL/restart cycles survived: $(fig $c crash_cycles) (seed $(fig $c crash_seed));" \
		"committed blocks lost: $(fig $c crash_lost_blocks), changed: $(fig $c crash_changed_blocks)"
	echo "  full-disk episodes survived: $(fig $d disk_episodes)"
	grep -h '^# result' "$crashlog" | sed 's/^# result: /  checks: /'
	echo
	if [ "$status" -eq 0 ]; then
		echo "Lost: nothing (no crash; every torn case refused with what to do, or opened at a"
		echo "consistent, verified height; no committed block lost or changed by a kill or a"
		echo "full disk)."
	else
		echo "FAILED: see above and build/fuzz/logs/"
		grep -E ':[0-9]+:[EF]:' "$torn" | head -n 10
		grep -E '^not ok' "$crashlog" | head -n 10
	fi
} | tee "$out"
exit $status
