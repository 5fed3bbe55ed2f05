#!/bin/bash
# What tally says about itself against what it does: the man pages render
# (man -l, no warnings) and list every command and option that --help lists,
# and every key of tallyd's config table (daemon/config.c); the packaged
# tallyd.conf lists every key and tallyd accepts it with every line
# uncommented; the bash completion offers exactly the options --help lists;
# docs/OPERATING.md holds the key table generated from daemon/config.c.
#
#   tests/doc/check.sh DOC_DIR BIN_DIR     (run by make check-docs)
#
# Ends with a Check-style summary line, so .ci/run counts it.
set -uo pipefail
cd "$(dirname "$0")/../.."
doc=$1
bin=$2
gen=$doc/../tools/gen-doc
checks=0
fails=0
tmp=$(mktemp -d /tmp/tally-doc-check.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

check() {
	local what=$1
	shift
	checks=$((checks + 1))
	if "$@" >"$tmp/out" 2>&1; then
		echo "ok $checks - $what"
	else
		echo "not ok $checks - $what"
		sed 's/^/#   /' "$tmp/out" | head -n 20
		fails=$((fails + 1))
	fi
}

render() { LC_ALL=C.UTF-8 MANWIDTH=200 man -l "$1" 2>/dev/null | col -bx; }

# Options of one --help text: the words that start its option lines.
help_options() {
	grep -E '^  -' | sed -E 's/^  //; s/  .*$//' | grep -oE '(^|, )(-[A-Za-z]|--[a-z][a-z0-9-]*)' |
		sed -E 's/^, //' | sort -u
}

# The lines of a rendered page from the heading matching $2 up to the next
# heading of that depth ($3: "   " for .SS, "" for .SH).
slice() {
	awk -v start="$2" -v depth="$3" '
		$0 == start { on = 1; next }
		on && index($0, depth) == 1 && substr($0, length(depth) + 1, 1) ~ /[A-Za-z[]/ { exit }
		on { print }' "$1"
}

for page in tally.1 tallyd.8 tallyd.conf.5; do
	check "$page renders with man -l, without warnings" \
		bash -c "out=\$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l '$doc/$page' 2>&1 >/dev/null);
			 [ -z \"\$out\" ] || { echo \"\$out\"; exit 1; }
			 LC_ALL=C.UTF-8 man -l '$doc/$page' | grep -q ."
	render "$doc/$page" >"$tmp/$page.txt"
done

# --- tally(1) against tally --help ---------------------------------------------
commands=()
for c in $("$bin/tally" --help | awk '/^commands:/ { on = 1; next } on && NF == 0 { exit } on { print $1 }'); do
	if "$bin/tally" "$c" --help | grep -q '^usage: tally [a-z]* SUBCOMMAND'; then
		for s in $("$bin/tally" "$c" --help | awk 'NR > 2 && /^  [a-z]/ { print $1 }'); do
			commands+=("$c $s")
		done
	else
		commands+=("$c")
	fi
done
check "tally --help lists commands (${#commands[@]} with the groups' subcommands)" \
	[ ${#commands[@]} -ge 18 ]
slice "$tmp/tally.1.txt" OPTIONS "" >"$tmp/common.txt"
for c in "${commands[@]}"; do
	slice "$tmp/tally.1.txt" "   tally $c" "   " >"$tmp/section.txt"
	check "tally(1) has a section for 'tally $c'" grep -q "tally $c" "$tmp/section.txt"
	# shellcheck disable=SC2086
	"$bin/tally" $c --help | help_options >"$tmp/opts.txt"
	# an option is listed where it is an item's tag: at the indent of the
	# command's option list (11), or of the common options (7)
	missing=$(while read -r o; do
		grep -qE -- "^ {11}(-[A-Za-z], )?$o([ ,]|$)" "$tmp/section.txt" ||
			grep -qE -- "^ {7}(-[A-Za-z], )?$o([ ,]|$)" "$tmp/common.txt" || echo "$o"
	done <"$tmp/opts.txt")
	check "tally(1) lists the $(wc -l <"$tmp/opts.txt") options of 'tally $c --help'" \
		bash -c "[ -z '$missing' ] || { echo 'missing: $missing'; exit 1; }"
	# shellcheck disable=SC2086
	check "tally help $c is tally $c --help" \
		cmp <("$bin/tally" help $c) <("$bin/tally" $c --help)
done

# --- tallyd(8) against tallyd --help -------------------------------------------
slice "$tmp/tallyd.8.txt" OPTIONS "" >"$tmp/section.txt"
"$bin/tallyd" --help | help_options >"$tmp/opts.txt"
missing=$(while read -r o; do
	grep -qE -- "^ {7}(-[A-Za-z], )?$o([ ,]|$)" "$tmp/section.txt" || echo "$o"
done <"$tmp/opts.txt")
check "tallyd(8) lists the $(wc -l <"$tmp/opts.txt") options of 'tallyd --help'" \
	bash -c "[ -z '$missing' ] || { echo 'missing: $missing'; exit 1; }"
check "tallyd(8) has the unit's sections from docs/OPERATING.md" \
	bash -c "grep -q '^RUNNING AS A SERVICE' '$tmp/tallyd.8.txt' &&
		 grep -q 'CapabilityBoundingSet' '$tmp/tallyd.8.txt'"

# --- tallyd.conf(5) and the packaged file against the config table -----------
grep -oE '\{ \.section = "[^"]+", \.key = "[^"]+"' daemon/config.c |
	sed -E 's/.*section = "([^"]+)", \.key = "([^"]+)"/\1 \2/' >"$tmp/keys.txt"
check "daemon/config.c's table has keys ($(wc -l <"$tmp/keys.txt"))" \
	[ "$(wc -l <"$tmp/keys.txt")" -ge 40 ]
missing_man= missing_conf=
while read -r section key; do
	slice "$tmp/tallyd.conf.5.txt" "[$section]" "" >"$tmp/section.txt"
	grep -qE "^ {7}$key = " "$tmp/section.txt" || missing_man+=" [$section]$key"
	case $section in
	image.NAME) head='#[image.debian-12]' ;;
	gpu.ADDRESS) head='#[gpu.0000:65:00.0]' ;;
	*) head="[$section]" ;;
	esac
	awk -v head="$head" '$0 == head { on = 1; next } on && /^#?\[/ { exit } on' \
		"$doc/tallyd.conf" | grep -q "^#$key = " || missing_conf+=" [$section]$key"
done <"$tmp/keys.txt"
check "tallyd.conf(5) lists every key of the table, in its section" \
	bash -c "[ -z '$missing_man' ] || { echo 'missing:$missing_man'; exit 1; }"
check "the packaged tallyd.conf lists every key of the table, in its section" \
	bash -c "[ -z '$missing_conf' ] || { echo 'missing:$missing_conf'; exit 1; }"
check "the packaged tallyd.conf, as it comes, sets nothing" \
	bash -c "! grep -vE '^(#|\[[a-z]+\]$|$)' '$doc/tallyd.conf'"
check "tallyd accepts the packaged tallyd.conf" \
	"$bin/tallyd" --check-config -c "$doc/tallyd.conf"
sed -E 's/^#([a-z_]+ = )/\1/; s/^#\[/[/' "$doc/tallyd.conf" >"$tmp/all.conf"
# Each value on its own, read as a node that runs no VMs: the examples do not
# make one VM host together (the example images are not on this machine, and
# forwarded ports go with network = user), which the lease keeper's checks
# would say.
check "tallyd accepts it with every key uncommented (each default or example valid)" \
	bash -c "'$bin/tallyd' --check-config --no-vms -c '$tmp/all.conf' &&
		 [ \$(grep -cE '^[a-z_]+ = ' '$tmp/all.conf') -eq $(wc -l <"$tmp/keys.txt") ]"
mkdir "$tmp/all.conf.d"
printf '[node]\nlisten = 127.0.0.1:7700\n' >"$tmp/all.conf.d/50-node.conf"
printf '[metering]\n\ninterval_s = 0\n' >"$tmp/all.conf.d/60-bad.conf"
check "a bad drop-in is refused, naming its file and line" \
	bash -c "! '$bin/tallyd' --check-config -c '$tmp/all.conf' 2>'$tmp/err' &&
		 grep -q '60-bad.conf:3: bad value .0. for .interval_s.' '$tmp/err'"
rm "$tmp/all.conf.d/60-bad.conf"
check "--check-config counts the drop-ins it read" \
	bash -c "'$bin/tallyd' --check-config --no-vms -c '$tmp/all.conf' | grep -q '(1 drop-in)'"
printf '[node]\nlisten_on = x\n' >"$tmp/typo.conf"
check "a key outside the table is refused, naming it" \
	bash -c "! '$bin/tallyd' --check-config -c '$tmp/typo.conf' 2>'$tmp/err' &&
		 grep -q \"unknown key 'listen_on' in \\[node\\]\" '$tmp/err'"
"$gen" config-md >"$tmp/table.md"
awk '/^<!-- generated from daemon\/config.c/ { on = 1; next } /^<!-- end/ { on = 0 } on' \
	docs/OPERATING.md >"$tmp/doc-table.md"
check "docs/OPERATING.md holds the key table of daemon/config.c (make docs-md)" \
	diff -u "$tmp/doc-table.md" "$tmp/table.md"

# --- bash completion -------------------------------------------------------------
complete_words() {   # complete_words WORD... : what _tally offers for the last one
	bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1));
		 _tally; printf "%s\n" "${COMPREPLY[@]}"' _ "$doc/tally.bash" "$@" | sort -u
}
export -f complete_words
export doc
for c in "${commands[@]}"; do
	# shellcheck disable=SC2086
	"$bin/tally" $c --help | help_options | grep -- '^--' >"$tmp/want.txt"
	# shellcheck disable=SC2086
	complete_words tally $c -- >"$tmp/got.txt"
	check "completing 'tally $c --' offers exactly its --help options" \
		diff -u "$tmp/want.txt" "$tmp/got.txt"
done
check "completing 'tally le' offers lease" \
	bash -c '[ "$(complete_words tally le)" = lease ]'
check "completing 'tally lease c' offers its three c-commands" \
	bash -c '[ "$(complete_words tally lease c | tr "\n" " ")" = "close console create " ]'
check "completing 'tally node init --domain-type ' offers kvm and qemu" \
	bash -c '[ "$(complete_words tally node init --domain-type "" | tr "\n" " ")" = "kvm qemu " ]'
check "completing 'tally lease create --ssh-key /et' offers files" \
	bash -c 'complete_words tally lease create --ssh-key /et | grep -qx /etc'
check "completing 'tally lease ssh -' offers its short options" \
	bash -c 'complete_words tally lease ssh - | grep -qx -- -i'

pct=100
[ $checks -gt 0 ] && pct=$(((checks - fails) * 100 / checks))
echo "docs $pct%: Checks: $checks, Failures: $fails, Errors: 0"
[ $fails -eq 0 ]
