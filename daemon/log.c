#include "daemon/log.h"

#include <pthread.h>
#include <stdbool.h>
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
static FILE *out;   /* NULL: stderr */

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
	/* What repeats still hold back is written before the node exits. */
	static bool flush_registered;
	if (!flush_registered)
		flush_registered = atexit(log_flush) == 0;
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

/* Output of one line at level: the text and, when it stands for more than
 * one, how many and over how long. Called with log_lock held. */
static void emit(enum log_level level, const char *text, uint64_t times, uint64_t over_ns)
{
	static const int syslog_prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	char note[80] = "";

	if (times > 1)
		snprintf(note, sizeof(note), " (repeated %llu times in the last %llu s)",
			 (unsigned long long)times,
			 (unsigned long long)((over_ns + 500000000u) / 1000000000u));
	if (to_syslog) {
		syslog(syslog_prio[level], "%s%s", text, note);
	} else if (to_journal) {
		/* journald keeps the time; "<N>" is the line's priority
		 * (sd-daemon(3)), which journald strips and records. */
		fprintf(out ? out : stderr, "<%d>%s: %s%s\n", syslog_prio[level],
			level_names[level], text, note);
	} else {
		struct timespec ts;
		struct tm tm;
		char when[32];

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
		fprintf(out ? out : stderr, "%s.%03ldZ tallyd %s: %s%s\n", when,
			ts.tv_nsec / 1000000, level_names[level], text, note);
	}
}

static uint64_t monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Repeats: a line identical to one written less than LOG_REPEAT_WINDOW_NS
 * ago (same level, same text) is counted, not written; the count comes out
 * as one line once the window has passed, at the next line logged or at
 * exit: "TEXT (repeated N times in the last S s)", N the lines it stands
 * for. A node retrying a failing step every few milliseconds (a block
 * commit on a full disk) writes a line per window, not thousands. */
#define REPEAT_SLOTS 16

struct repeat {
	char *text;              /* NULL: slot free */
	enum log_level level;
	uint64_t since_ns;       /* the window's start: the line last written */
	uint64_t held;           /* identical lines since, not written */
};

static struct repeat repeats[REPEAT_SLOTS];
static uint64_t (*clock_ns)(void) = monotonic_ns;

/* Writes what r holds back (if anything) and frees the slot. */
static void repeat_release(struct repeat *r, uint64_t now)
{
	if (r->held)
		emit(r->level, r->text, r->held, now - r->since_ns);
	free(r->text);
	memset(r, 0, sizeof(*r));
}

/* Writes the counts of the windows that have passed, each of which goes on
 * from now while it held some (its line still repeating); a window that
 * held none is over. Every window is written and over when `every` is true
 * (exit). Called with log_lock held. */
static void repeats_flush(uint64_t now, bool every)
{
	for (size_t i = 0; i < REPEAT_SLOTS; i++) {
		struct repeat *r = &repeats[i];

		if (!r->text || (!every && now - r->since_ns < LOG_REPEAT_WINDOW_NS))
			continue;
		if (every || !r->held) {
			repeat_release(r, now);
			continue;
		}
		emit(r->level, r->text, r->held, now - r->since_ns);
		r->since_ns = now;
		r->held = 0;
	}
}

void log_flush(void)
{
	pthread_mutex_lock(&log_lock);
	repeats_flush(clock_ns(), true);
	if (!to_syslog)
		fflush(out ? out : stderr);
	pthread_mutex_unlock(&log_lock);
}

void log_set_clock(uint64_t (*now_ns)(void))
{
	pthread_mutex_lock(&log_lock);
	clock_ns = now_ns ? now_ns : monotonic_ns;
	pthread_mutex_unlock(&log_lock);
}

void log_set_output(FILE *f)
{
	pthread_mutex_lock(&log_lock);
	out = f;
	pthread_mutex_unlock(&log_lock);
}

/* Writes text unless it repeats a line of its window. Called with
 * log_lock held. */
static void log_text(enum log_level level, char *text)
{
	uint64_t now = clock_ns();
	struct repeat *r = NULL, *oldest = NULL;

	for (size_t i = 0; i < REPEAT_SLOTS && !r; i++)
		if (repeats[i].text && repeats[i].level == level && !strcmp(repeats[i].text, text))
			r = &repeats[i];
	if (r && now - r->since_ns < LOG_REPEAT_WINDOW_NS) {
		r->held++;
		free(text);
	} else if (r) {
		/* The window has passed: one line for it and this one, and a
		 * new window from now. */
		emit(level, text, r->held + 1, now - r->since_ns);
		r->since_ns = now;
		r->held = 0;
		free(text);
	}
	repeats_flush(now, false);
	if (r)
		return;
	emit(level, text, 1, 0);
	for (size_t i = 0; i < REPEAT_SLOTS; i++)
		if (!oldest || !repeats[i].text ||
		    (oldest->text && repeats[i].since_ns < oldest->since_ns))
			oldest = &repeats[i];
	/* The oldest window makes room: what it holds back is written now. */
	if (oldest->text)
		repeat_release(oldest, now);
	*oldest = (struct repeat){ .text = text, .level = level, .since_ns = now };
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;
	char *text;

	if (level > current_level)
		return;
	va_start(ap, fmt);
	if (vasprintf(&text, fmt, ap) < 0)
		text = NULL;
	va_end(ap);
	/* One lock so lines from the API threads never interleave. */
	pthread_mutex_lock(&log_lock);
	if (text)
		log_text(level, text);
	else
		emit(level, "(a log line lost: out of memory)", 1, 0);
	pthread_mutex_unlock(&log_lock);
}
