/* What tallyd checks before it runs a node: `--check-config`, and what it
 * says on a host that is not a node yet. */
#ifndef TALLY_DAEMON_PRECHECK_H
#define TALLY_DAEMON_PRECHECK_H

#include <stdbool.h>

/* `tallyd --check-config [--no-vms]`: reads the configuration (and its
 * drop-ins) and what it names: the provider announcement's rules, unless
 * run_vms is false what the lease keeper checks at start (the image
 * catalogue's files, the GPU inventory: keeper_check_config), the key and
 * genesis files when they exist (their absence is said on stderr: a
 * package's configuration precedes `tally node init`). Prints the first
 * error, or that it is valid with the node's key and chain; the exit code,
 * 0 or 1. */
int tallyd_check_config(const char *config_path, bool run_vms);

/* Before the node opens: the default configuration missing, or naming a
 * key or genesis file that is missing, is a host that is not a node yet,
 * and gets a message saying how to make it one (on stderr). Returns 0 when
 * the node may go on (other faults are left to the node's own messages). */
int tallyd_preflight(const char *config_path);

#endif
