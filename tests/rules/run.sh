#!/bin/bash
# Every rule the validators enforce, broken once in a certified chain file
# (tests/rules/rulebreak.c): `tally audit --chain` and `tally chain verify`
# must refuse each file, naming the height and the rule, and verify the
# control. Prints TAP and a Check-style summary line.
#
#   tests/rules/run.sh RULEBREAK-BINARY TALLY-BINARY
set -uo pipefail

rulebreak=${1:?usage: run.sh RULEBREAK TALLY}
tally=${2:?usage: run.sh RULEBREAK TALLY}
dir=$(mktemp -d /tmp/tally-rules.XXXXXX)
trap 'rm -rf "$dir"' EXIT

if ! "$rulebreak" "$dir" >"$dir/manifest"; then
	echo "Bail out! rulebreak failed"
	echo "rules: 0%: Checks: 1, Failures: 0, Errors: 1"
	exit 1
fi

n=0 failed=0
check() {
	local what=$1
	shift
	n=$((n + 1))
	if "$@"; then
		echo "ok $n - $what"
	else
		echo "not ok $n - $what"
		failed=$((failed + 1))
	fi
}

# The output must say "block H" (H > 0) and the phrase; the exit code must
# be want.
expect() {
	local out=$1 rc=$2 want=$3 height=$4 phrase=$5
	[ "$rc" -eq "$want" ] || { echo "# exit $rc, want $want" >&2; return 1; }
	grep -qF -- "$phrase" <<<"$out" || { echo "# output lacks '$phrase':" >&2; sed 's/^/#   /' <<<"$out" >&2; return 1; }
	[ "$height" -eq 0 ] || grep -q "block $height\b" <<<"$out" ||
		{ echo "# output does not name block $height:" >&2; sed 's/^/#   /' <<<"$out" >&2; return 1; }
}

while read -r name lease height phrase; do
	file="$dir/$name.chain"
	want=1
	[ "$height" -eq 0 ] && want=0
	out=$("$tally" audit "$lease" --chain "$file" 2>&1); rc=$?
	check "audit $name: $( [ $want = 0 ] && echo verified || echo "refused at block $height: $phrase")" \
		expect "$out" "$rc" "$want" "$height" "$phrase"
	out=$("$tally" chain verify "$file" 2>&1); rc=$?
	vphrase=$phrase
	[ "$want" = 0 ] && vphrase="verified"
	check "chain verify $name: $( [ $want = 0 ] && echo verified || echo "refused at block $height")" \
		expect "$out" "$rc" "$want" "$height" "$vphrase"
done <"$dir/manifest"

# A checkpoint that is not the chain's block is the audit's refusal, in
# --json as any other: "verified": false and the reason, exit 1.
read -r name lease _ < <(awk '$3 == 0' "$dir/manifest" | head -1)
zeros=0000000000000000000000000000000000000000000000000000000000000000
out=$("$tally" audit "$lease" --chain "$dir/$name.chain" --checkpoint "1:$zeros" --json 2>/dev/null); rc=$?
check "audit --checkpoint with another block's id: refused, \"verified\": false in --json" \
	expect "$out" "$rc" 1 0 '"verified": false'
check "... and the reason names the pinned id" expect "$out" "$rc" 1 0 "is not the pinned block id"

echo "1..$n"
echo "rules: $(( (n - failed) * 100 / (n > 0 ? n : 1) ))%: Checks: $n, Failures: $failed, Errors: 0"
[ "$failed" -eq 0 ] && [ "$n" -gt 0 ]
