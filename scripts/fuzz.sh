#!/bin/bash
# Runs the libFuzzer targets of tests/fuzz/ (built by `make FUZZ=1
# fuzz-build` into build/fuzz/bin/) and prints one summary line each.
#
#   scripts/fuzz.sh --check SECONDS TARGET...   bounded run over the seeds;
#                                               new inputs go to a temporary
#                                               directory (make check-fuzz)
#   scripts/fuzz.sh --long SECONDS TARGET...    longer run growing a working
#                                               corpus in build/fuzz/corpus/
#                                               (make fuzz)
#
# A target fails when it crashes (a sanitizer report, a failed property, a
# leak, a timeout) or when it executed no input at all. Crash inputs are kept
# in build/fuzz/crashes/TARGET/; fix the decoder, then copy the input into
# tests/fuzz/corpus/TARGET/ as regress-<what> so every later run replays it.
# The summary also goes to build/fuzz/summary.txt for `make reliability`.
set -uo pipefail
cd "$(dirname "$0")/.."

mode=${1:-}
secs=${2:-}
if [ "$mode" != --check ] && [ "$mode" != --long ] || ! [[ "$secs" =~ ^[0-9]+$ ]] ||
   [ "$secs" -eq 0 ] || [ $# -lt 3 ]; then
	echo "usage: scripts/fuzz.sh --check|--long SECONDS TARGET..." >&2
	exit 2
fi
shift 2

out=build/fuzz
summary=$out/summary.txt
mkdir -p "$out/crashes" "$out/logs"
scratch=$(mktemp -d "/tmp/tally-fuzz-$$.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

printf '%-14s %12s %10s %8s %8s  %s\n' target inputs "inputs/s" corpus crashes result |
	tee "$summary.tmp"
failed=()
total=0
for t in "$@"; do
	bin=$out/bin/$t
	seeds=tests/fuzz/corpus/$t
	log=$out/logs/$t.log
	if [ ! -x "$bin" ]; then
		echo "fuzz: $bin is not built (make FUZZ=1 fuzz-build)" >&2
		failed+=("$t")
		continue
	fi
	if [ -z "$(ls -A "$seeds" 2>/dev/null)" ]; then
		echo "fuzz: $t has no seeds in $seeds (make fuzz-seeds)" >&2
		failed+=("$t")
		continue
	fi
	if [ "$mode" = --long ]; then
		work=$out/corpus/$t
	else
		work=$scratch/corpus-$t
	fi
	rm -rf "${out:?}/crashes/$t"
	mkdir -p "$work" "$out/crashes/$t" "$scratch/tmp-$t"
	TMPDIR=$scratch/tmp-$t "$bin" -max_total_time="$secs" -timeout=30 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$out/crashes/$t/" \
		"$work" "$seeds" >"$log" 2>&1
	rc=$?
	rm -rf "${scratch:?}/tmp-$t"
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	execs=${execs:-0}
	corpus=$(find "$work" "$seeds" -type f | wc -l)
	crashes=0
	result=ok
	if [ "$rc" -ne 0 ]; then
		crashes=1
		result="FAILED (exit $rc; log $log)"
	elif [ "$execs" -eq 0 ]; then
		result="FAILED (no input executed; log $log)"
	fi
	rate=$((execs / secs))
	total=$((total + execs))
	printf '%-14s %12s %10s %8s %8s  %s\n' "$t" "$execs" "$rate" "$corpus" "$crashes" \
		"$result" | tee -a "$summary.tmp"
	if [ "$result" != ok ]; then
		failed+=("$t")
		grep -aE 'ERROR|property failed|SUMMARY|Test unit written|deadly|leak' "$log" |
			head -n 20 >&2
	fi
done
printf '%-14s %12s\n' total "$total" | tee -a "$summary.tmp"
mv "$summary.tmp" "$summary"
echo "fuzz: $# targets, $total inputs in all, ${secs} s each ($mode)"
if [ ${#failed[@]} -gt 0 ]; then
	echo "fuzz: FAILED: ${failed[*]}" >&2
	exit 1
fi
