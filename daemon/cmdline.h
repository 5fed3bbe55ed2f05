/* tallyd's command line: its options and help as one table (lib/optable.h),
 * from which `tallyd --help` and tallyd(8) are made (man/gen.c links this
 * file alone). */
#ifndef TALLY_DAEMON_CMDLINE_H
#define TALLY_DAEMON_CMDLINE_H

#include "lib/optable.h"
#include "lib/version.h"

#define TALLYD_CONFIG_DEFAULT "/etc/tally/tallyd.conf"

enum { TALLYD_OPT_NO_VMS = 256, TALLYD_OPT_CHECK_CONFIG, TALLYD_OPT_REPAIR_SIGNER };

extern const struct cmd_doc tallyd_doc;

#endif
