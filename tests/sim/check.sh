#!/bin/bash
# make check-sim: the simulator over a bounded number of seeds, the
# liveness scenario (--liveness) over fewer, then checks that the checks
# themselves work:
#   - a run with two byzantine validators of four (more stake than
#     consensus tolerates) must be caught breaking agreement, and the
#     command it prints must replay that failure, byte for byte;
#   - a run traced with -v prints the same bytes every time, in either
#     scenario.
#
#   tests/sim/check.sh SIM SEEDS LIVENESS_SEEDS
set -uo pipefail
sim=$1 seeds=$2 live_seeds=$3
tmp=$(mktemp -d /tmp/tally-sim-check.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
checks=0 failures=0

fail() {
	echo "check-sim: $*" >&2
	failures=$((failures + 1))
}

# 1. The seeds.
checks=$((checks + 1))
if ! "$sim" --seeds "$seeds" >"$tmp/run.out" 2>"$tmp/run.err"; then
	grep -A1 FAIL "$tmp/run.out" >&2
	fail "$(grep -c FAIL "$tmp/run.out") of $seeds seeds failed"
fi
cat "$tmp/run.err"

# 1b. The liveness scenario's seeds.
checks=$((checks + 1))
if ! "$sim" --liveness --seeds "$live_seeds" >"$tmp/live.out" 2>"$tmp/live.err"; then
	grep -A1 FAIL "$tmp/live.out" >&2
	fail "$(grep -c FAIL "$tmp/live.out") of $live_seeds liveness seeds failed"
fi
grep -E '^sim: ([0-9]+ seeds|liveness)' "$tmp/live.err"

# 2. Beyond the fault model, the checks must fire and the failure replay.
checks=$((checks + 1))
if "$sim" --byzantine 2 --seeds 50 --expect-fail >"$tmp/bad.out" 2>/dev/null; then
	failed=$(grep -m1 ': FAIL ' "$tmp/bad.out")
	cmd=$(grep -m1 '^replay: ' "$tmp/bad.out" | sed -e 's/^replay: //' -e 's/   (-v adds a trace)$//')
	echo "check-sim: caught with two byzantine validators of four: ${failed#*: }"
	grep -A1 ': FAIL ' "$tmp/bad.out" >"$tmp/bad.expected"
	# The replay fails too (exit 1); what matters is what it prints.
	$cmd >"$tmp/replay.out" 2>/dev/null
	if ! grep -q 'agreement' <<<"$failed"; then
		fail "the failure beyond the fault model is not a fork: $failed"
	elif ! cmp -s "$tmp/bad.expected" "$tmp/replay.out"; then
		fail "replaying '$cmd' printed other bytes than the failing run:"
		diff "$tmp/bad.expected" "$tmp/replay.out" >&2
	else
		echo "check-sim: '$cmd' replays it byte for byte"
	fi
else
	fail "two byzantine validators of four broke nothing in 50 seeds: the checks cannot fail"
fi

# 3. A traced run is deterministic.
checks=$((checks + 1))
"$sim" --seed 7 -v >"$tmp/trace1" 2>&1
"$sim" --seed 7 -v >"$tmp/trace2" 2>&1
if ! cmp -s "$tmp/trace1" "$tmp/trace2"; then
	fail "seed 7 traced twice printed different bytes"
	diff "$tmp/trace1" "$tmp/trace2" | head >&2
else
	echo "check-sim: seed 7 traced twice: the same $(wc -l <"$tmp/trace1") lines"
fi
checks=$((checks + 1))
"$sim" --liveness --seed 3 -v >"$tmp/ltrace1" 2>&1
"$sim" --liveness --seed 3 -v >"$tmp/ltrace2" 2>&1
if ! cmp -s "$tmp/ltrace1" "$tmp/ltrace2"; then
	fail "liveness seed 3 traced twice printed different bytes"
	diff "$tmp/ltrace1" "$tmp/ltrace2" | head >&2
elif ! grep -q 'liveness: validator [0-9]* jailed at height' "$tmp/ltrace1"; then
	fail "liveness seed 3 traced no jailing by the liveness rule"
else
	echo "check-sim: liveness seed 3 traced twice: the same $(wc -l <"$tmp/ltrace1") lines"
fi

echo "check-sim: $(( (checks - failures) * 100 / checks ))%: Checks: $checks, Failures: $failures, Errors: 0"
[ "$failures" -eq 0 ]
