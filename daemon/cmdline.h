/* tallyd's command line: its options and help as one table (lib/optable.h),
 * from which `tallyd --help` and tallyd(8) are made, and what tallyd says
 * on a host that is not a node yet. */
#ifndef TALLY_DAEMON_CMDLINE_H
#define TALLY_DAEMON_CMDLINE_H

#include "lib/optable.h"
#include "lib/version.h"

#define TALLYD_CONFIG_DEFAULT "/etc/tally/tallyd.conf"

enum { TALLYD_OPT_NO_VMS = 256, TALLYD_OPT_CHECK_CONFIG, TALLYD_OPT_REPAIR_SIGNER };

extern const struct cmd_doc tallyd_doc;

/* `tallyd --check-config`: reads the configuration (and its drop-ins),
 * prints the first error or that it is valid; the exit code, 0 or 1. */
int tallyd_check_config(const char *config_path);

/* Before the node opens: the default configuration missing, or naming a
 * key or genesis file that is missing, is a host that is not a node yet,
 * and gets a message saying how to make it one (on stderr). Returns 0 when
 * the node may go on (other faults are left to the node's own messages). */
int tallyd_preflight(const char *config_path);

#endif
