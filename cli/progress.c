/* Progress on a terminal, and local times for people (cli/progress.h). */
#include "cli/progress.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Whether a progress line is on the terminal now, for progress_interrupt. */
static bool line_shown;

void progress_interrupt(void)
{
	if (line_shown)
		fputs("\r\033[K", stderr);
	line_shown = false;
}

void progress_start(struct progress *p, const char *what, uint64_t total, bool quiet)
{
	p->on = !quiet && isatty(STDERR_FILENO);
	p->what = what;
	p->total = total;
	p->last_ms = 0;
}

void progress_step(struct progress *p, uint64_t done)
{
	uint64_t t;

	if (!p->on)
		return;
	t = now_ms();
	if (t - p->last_ms < 100 && done != p->total)
		return;
	p->last_ms = t;
	line_shown = true;
	if (p->total)
		fprintf(stderr, "\rtally: %" PRIu64 "/%" PRIu64 " %s (%" PRIu64 "%%)\033[K", done,
			p->total, p->what, done * 100 / p->total);
	else
		fprintf(stderr, "\rtally: %" PRIu64 " %s\033[K", done, p->what);
}

void progress_text(struct progress *p, const char *text)
{
	if (p->on) {
		fprintf(stderr, "\rtally: %s\033[K", text);
		line_shown = true;
	}
}

void progress_end(struct progress *p)
{
	if (p->on)
		fputs("\r\033[K", stderr);
	p->on = false;
	line_shown = false;
}

const char *fmt_local_time(uint64_t ns, char *buf, size_t cap)
{
	time_t s = (time_t)(ns / 1000000000u);
	struct tm tm;
	char date[32], zone[8];

	if (!localtime_r(&s, &tm) || !strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm) ||
	    !strftime(zone, sizeof(zone), "%z", &tm)) {
		snprintf(buf, cap, "%" PRIu64 " ns", ns);
		return buf;
	}
	/* %z is +hhmm; ISO 8601's extended form, as the date is, is +hh:mm */
	snprintf(buf, cap, "%s.%03u%.3s:%.2s", date, (unsigned)(ns % 1000000000u / 1000000u), zone,
		 zone + 3);
	return buf;
}
