/* The node's clock: the time tallyd gives blocks, admission and usage
 * records. It is the system's wall clock, except that a step of the wall
 * clock (someone sets it, or a VM resumes) is not followed: between two
 * readings the node's clock advances by what the monotonic clock says, and
 * follows the wall clock only while the two agree within CLOCK_STEP_MAX_NS.
 * So a clock set an hour ahead does not date blocks an hour ahead (and a
 * chain ratcheted ahead of every clock would refuse the node's records),
 * and setting it back does not freeze the chain. Slewing (NTP) is followed.
 *
 * A step is logged once; to follow a corrected wall clock, restart tallyd
 * (docs/OPERATING.md). Thread-safe. */
#ifndef TALLY_DAEMON_CLOCK_H
#define TALLY_DAEMON_CLOCK_H

#include <stdint.h>

#define CLOCK_STEP_MAX_NS (2ull * 1000000000ull)

/* Takes the wall clock as the node's clock; call once at startup, before
 * anything could step it. Later readings follow it as above. */
void node_clock_start(void);
/* Unix time in ns. Read it often (at least every CLOCK_STEP_MAX_NS), or a
 * long slew between two readings looks like a step. */
uint64_t node_clock_ns(void);
/* How far the wall clock stands from the node's clock now (wall - node),
 * in ns, for the log and /metrics. */
int64_t node_clock_skew_ns(void);

#endif
