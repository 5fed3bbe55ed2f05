/* Leveled logging for tallyd, to stderr (with a timestamp) or syslog; on
 * a stderr that systemd connected to journald, each line carries its
 * priority instead of a time. */
#ifndef TALLY_LOG_H
#define TALLY_LOG_H

#include <stdint.h>
#include <stdio.h>

/* A line identical to one written less than this ago (same level and text)
 * is counted, not written; the count comes out as one line when the window
 * has passed (at the next line logged, or log_flush):
 * "TEXT (repeated N times in the last S s)". No line is dropped uncounted. */
#define LOG_REPEAT_WINDOW_NS (10ull * 1000000000ull)

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
/* Writes the counts of repeats held back, whatever their window, and
 * flushes the output. log_setup has it run at exit. */
void log_flush(void);
/* Tests: the clock of the repeat windows (Unix-independent ns; NULL:
 * CLOCK_MONOTONIC) and the stream lines go to (NULL: stderr). */
void log_set_clock(uint64_t (*now_ns)(void));
void log_set_output(FILE *f);

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

#endif
