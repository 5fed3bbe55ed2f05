#!/bin/bash
# Run each area's test target, keep going when one fails, and fail at the end
# if any did. Each target prints its own Check summary line.
set -uo pipefail
failed=()
for t in "$@"; do
	echo "=== $t"
	if ! make --no-print-directory "$t"; then
		failed+=("$t")
	fi
done
if [ ${#failed[@]} -gt 0 ]; then
	echo "FAILED: ${failed[*]}" >&2
	exit 1
fi
