/* Leveled logging for tallyd, to stderr (with a timestamp) or syslog; on
 * a stderr that systemd connected to journald, each line carries its
 * priority instead of a time. */
#ifndef TALLY_LOG_H
#define TALLY_LOG_H

#include <stdint.h>

enum log_level {
	LOG_LVL_ERROR = 0,
	LOG_LVL_WARN,
	LOG_LVL_INFO,
	LOG_LVL_DEBUG,
};

/* level: "error", "warn", "info" or "debug"; returns -1 for anything else. */
int log_level_parse(const char *s);
void log_setup(enum log_level level, int use_syslog);
/* A chain time (Unix ns) as the log's own timestamps are written, ISO 8601
 * in UTC to the millisecond ("2026-11-30T09:12:03.250Z"), into out[32]. */
const char *log_time_ns(uint64_t ns, char out[32]);
void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

#endif
