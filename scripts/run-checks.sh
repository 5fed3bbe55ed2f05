#!/bin/bash
# Run each area's test target, keep going when one fails, and fail at the end
# if any did. Each target prints its own Check summary line. libvirt is
# started once for all of them, and stopped again if this script started it.
set -uo pipefail
cd "$(dirname "$0")/.."

state=$(mktemp /tmp/tally-libvirt.XXXXXX)
trap 'scripts/libvirt.sh down "$state"' EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
if ! scripts/libvirt.sh up "$state"; then
	echo "run-checks: cannot start libvirt" >&2
	exit 1
fi

failed=()
for t in "$@"; do
	echo "=== $t"
	start=$SECONDS
	if ! make --no-print-directory "$t"; then
		failed+=("$t")
	fi
	echo "=== $t: $((SECONDS - start)) s"
done
if [ ${#failed[@]} -gt 0 ]; then
	echo "FAILED: ${failed[*]}" >&2
	exit 1
fi
