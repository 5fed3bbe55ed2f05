# Crashes and full disks (issue 17): a real tallyd killed with SIGKILL over
# and over under running leases, and its data directory filling up.
#
#   make check-crash   CRASH_SECONDS (default 120) of kills, then the full disk
.PHONY: check-crash
CHECK_TARGETS += check-crash

check-crash: bin/tallyd bin/tally
	@scripts/build-guest-image.sh build/guest
	@TALLY_SUITE=crash tests/e2e/run.sh $(sort $(wildcard $(CURDIR)/tests/crash/test_*.sh))
