#include "daemon/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static enum log_level current_level = LOG_LVL_INFO;
static int to_syslog, to_journal;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

int log_level_parse(const char *s)
{
	for (int i = 0; i <= LOG_LVL_DEBUG; i++)
		if (strcmp(s, level_names[i]) == 0)
			return i;
	return -1;
}

/* Under systemd stderr is a stream to journald, which names it in
 * JOURNAL_STREAM ("DEVICE:INODE", sd_journal_stream_fd(3)). */
static int stderr_is_journal(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st))
		return 0;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_setup(enum log_level level, int use_syslog)
{
	current_level = level;
	to_syslog = use_syslog;
	to_journal = !use_syslog && stderr_is_journal();
	if (use_syslog)
		openlog("tallyd", LOG_PID, LOG_DAEMON);
}

const char *log_time_ns(uint64_t ns, char out[32])
{
	time_t sec = (time_t)(ns / 1000000000u);
	struct tm tm;
	char when[24];

	gmtime_r(&sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, 32, "%s.%03uZ", when, (unsigned)(ns / 1000000u % 1000u));
	return out;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	static const int syslog_prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	va_list ap;

	if (level > current_level)
		return;
	va_start(ap, fmt);
	if (to_syslog) {
		vsyslog(syslog_prio[level], fmt, ap);
	} else if (to_journal) {
		/* journald keeps the time; "<N>" is the line's priority
		 * (sd-daemon(3)), which journald strips and records. */
		pthread_mutex_lock(&log_lock);
		fprintf(stderr, "<%d>%s: ", syslog_prio[level], level_names[level]);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
		pthread_mutex_unlock(&log_lock);
	} else {
		struct timespec ts;
		struct tm tm;
		char when[32];

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
		/* One lock so lines from the API threads never interleave. */
		pthread_mutex_lock(&log_lock);
		fprintf(stderr, "%s.%03ldZ tallyd %s: ", when, ts.tv_nsec / 1000000,
			level_names[level]);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
		pthread_mutex_unlock(&log_lock);
	}
	va_end(ap);
}
