/* The node's clock (see clock.h). */
#include "daemon/clock.h"

#include <pthread.h>
#include <stdbool.h>
#include <time.h>

#include "daemon/log.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static bool started;
static int64_t offset;          /* node time - monotonic time */
static bool stepped;            /* a step was logged and not yet healed */

static int64_t ns_of(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* wall - monotonic now; the node's offset follows it while they agree. */
static int64_t read_offsets(int64_t *wall_offset)
{
	int64_t mono = ns_of(CLOCK_MONOTONIC);

	*wall_offset = ns_of(CLOCK_REALTIME) - mono;
	return mono;
}

void node_clock_start(void)
{
	(void)node_clock_ns();
}

uint64_t node_clock_ns(void)
{
	int64_t wall_offset, mono, diff;

	pthread_mutex_lock(&lock);
	mono = read_offsets(&wall_offset);
	if (!started) {
		offset = wall_offset;
		started = true;
	}
	diff = wall_offset - offset;
	if (diff <= (int64_t)CLOCK_STEP_MAX_NS && diff >= -(int64_t)CLOCK_STEP_MAX_NS) {
		offset = wall_offset;           /* slewed, or back where it was */
		if (stepped)
			log_info("the wall clock agrees with the node's clock again");
		stepped = false;
	} else if (!stepped) {
		log_warn("the wall clock stepped by %lld ms; the node keeps its own time"
			 " (restart tallyd to follow a corrected clock)",
			 (long long)(diff / 1000000));
		stepped = true;
	}
	pthread_mutex_unlock(&lock);
	return (uint64_t)(mono + offset);
}

int64_t node_clock_skew_ns(void)
{
	int64_t wall_offset, diff;

	pthread_mutex_lock(&lock);
	read_offsets(&wall_offset);
	diff = started ? wall_offset - offset : 0;
	pthread_mutex_unlock(&lock);
	return diff;
}
