#!/bin/bash
# Runs every tests/e2e/test_*.sh (or those named) and prints one Check-style
# summary line over all of them, named $TALLY_SUITE (default e2e).
set -uo pipefail
cd "$(dirname "$0")"
total=0 failed=0 status=0
tests=("$@")
[ ${#tests[@]} -gt 0 ] || tests=(test_*.sh)
for t in "${tests[@]}"; do
	echo "# --- $t"
	start=$SECONDS
	out=$(bash "$t" 2>&1)
	rc=$?
	echo "$out"
	echo "# time: $t $((SECONDS - start)) s"
	line=$(grep -E '^# result: [0-9]+ checks, [0-9]+ failures' <<<"$out" | tail -n 1)
	c=$(sed -E 's/# result: ([0-9]+) checks.*/\1/' <<<"$line")
	f=$(sed -E 's/.* ([0-9]+) failures/\1/' <<<"$line")
	if [ -z "$line" ]; then c=1 f=1; fi
	if [ $rc -ne 0 ] && [ "${f:-0}" -eq 0 ]; then f=1; [ "$c" -gt 0 ] || c=1; fi
	total=$((total + c)) failed=$((failed + f))
	[ $rc -eq 0 ] || status=1
done
pct=100
[ $total -gt 0 ] && pct=$(((total - failed) * 100 / total))
echo "${TALLY_SUITE:-e2e} $pct%: Checks: $total, Failures: $failed, Errors: 0"
exit $status
