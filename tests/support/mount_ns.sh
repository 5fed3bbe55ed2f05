# Sourced first by a test that mounts a file system of its own (a small
# tmpfs standing for a full disk): the test is run again in a private mount
# namespace, so its mounts vanish with it, pass or fail, and no other
# process sees them. Without root it is skipped, saying why.
if [ -z "${TALLY_MOUNT_NS:-}" ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "SKIP: needs root (a private mount namespace)"
		echo "# result: 0 checks, 0 failures"
		exit 0
	fi
	exec env TALLY_MOUNT_NS=1 unshare --mount --propagation private bash "$0" "$@"
fi
