#!/bin/bash
# Fails, naming file and line, when a tree names a Debian kernel release
# (N.N.N-N-amd64) or a versioned kernel package (linux-source-N.N):
# Debian moves those, and a fresh machine gets whatever it serves today.
# Kernel paths come from scripts/kernel.sh instead.
#
#   scripts/lint-pins.sh [ROOT]     lint ROOT (default: the checkout)
#   scripts/lint-pins.sh --self-test
#                                   show that the lint fails on a pinned line
#                                   in a throwaway copy, and passes without it;
#                                   and that scripts/kernel.sh picks a complete
#                                   image + headers pair in a fake root
#
# Prints a Check-style summary line, so .ci/run counts it.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
self="$here/$(basename "$0")"
# What is linted: where tests, benchmarks and the build live.
AREAS=(tests bench scripts mk Makefile .ci)
RELEASE='[0-9]+\.[0-9]+\.[0-9]+-[0-9]+-([a-z0-9]+-)?(amd64|arm64|i386)'
PACKAGE='linux-(image|headers|source|kbuild)-[0-9]+\.[0-9]+'

lint() {
	local root=$1 hits
	hits=$(cd "$root" && grep -rnIE "$RELEASE|$PACKAGE" "${AREAS[@]}" 2>/dev/null)
	if [ -n "$hits" ]; then
		echo "$hits" | sed 's/^/lint-pins: pinned kernel version: /' >&2
		echo "lint-pins: derive kernel paths with scripts/kernel.sh instead" >&2
		return 1
	fi
	return 0
}

if [ "${1:-}" = --self-test ]; then
	tmp=$(mktemp -d /tmp/tally-lint.XXXXXX)
	trap 'rm -rf "$tmp"' EXIT
	mkdir -p "$tmp/tests/ebpf" "$tmp/scripts"
	cp "$self" "$tmp/scripts/"
	checks=0 failures=0
	# The line that broke `make check` for new users.
	# (Split in two here, so that this file itself stays clean.)
	echo '#define GUEST_KERNEL "/boot/vmlinuz-6.1.0-56''-amd64"' >"$tmp/tests/ebpf/t.c"
	checks=$((checks + 1))
	if out=$(lint "$tmp" 2>&1); then
		echo "lint-pins: self-test: a pinned release was not caught" >&2
		failures=$((failures + 1))
	elif ! grep -q 'tests/ebpf/t.c:1:' <<<"$out"; then
		echo "lint-pins: self-test: the report does not name file and line: $out" >&2
		failures=$((failures + 1))
	fi
	echo 'apt-get install linux-source''-6.1' >"$tmp/tests/ebpf/t.c"
	checks=$((checks + 1))
	if lint "$tmp" 2>/dev/null; then
		echo "lint-pins: self-test: a versioned package name was not caught" >&2
		failures=$((failures + 1))
	fi
	echo 'kernel=$(scripts/kernel.sh --field vmlinuz)' >"$tmp/tests/ebpf/t.c"
	checks=$((checks + 1))
	if ! lint "$tmp"; then
		echo "lint-pins: self-test: a clean tree was refused" >&2
		failures=$((failures + 1))
	fi
	# scripts/kernel.sh picks the newest release that has image, modules
	# and headers, not merely the newest image.
	k=$tmp/kroot a=amd64
	for r in 9.9.0-3-$a 9.9.0-2-$a 9.9.0-1-$a; do
		mkdir -p "$k/boot" "$k/lib/modules/$r"
		: >"$k/boot/vmlinuz-$r"
		: >"$k/lib/modules/$r/modules.dep"
	done
	h=$k/usr/src/linux-headers
	mkdir -p "$h-9.9.0-2-$a" "$h-9.9.0-1-$a"
	: >"$h-9.9.0-2-$a/Makefile"
	: >"$h-9.9.0-1-$a/Makefile"
	checks=$((checks + 1))
	got=$(TALLY_KERNEL_ROOT=$k "$here/kernel.sh" 2>&1)
	if [ "$got" != "9.9.0-2-$a" ]; then
		echo "lint-pins: self-test: kernel.sh picked '$got', not the newest complete pair 9.9.0-2-$a" >&2
		failures=$((failures + 1))
	fi
	rm -rf "$k/usr/src"
	checks=$((checks + 1))
	if TALLY_KERNEL_ROOT=$k "$here/kernel.sh" >/dev/null 2>&1; then
		echo "lint-pins: self-test: kernel.sh found a kernel without headers" >&2
		failures=$((failures + 1))
	fi
	echo "lint-pins self-test: $(( (checks - failures) * 100 / checks ))%: Checks: $checks, Failures: $failures, Errors: 0"
	[ "$failures" -eq 0 ]
	exit
fi

root=${1:-$(cd "$here/.." && pwd)}
if lint "$root"; then
	echo "lint-pins: 100%: Checks: 1, Failures: 0, Errors: 0"
else
	echo "lint-pins: 0%: Checks: 1, Failures: 1, Errors: 0"
	exit 1
fi
