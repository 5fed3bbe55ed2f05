/* What people read from the CLI (cli/progress.c): times as ISO 8601 in the
 * local zone with its offset, the same instant in zones of whole, half-hour
 * and summer-time offsets; and the progress line, drawn on a terminal only.
 *
 * The zones are POSIX TZ strings, so no time zone database is needed:
 * "<-0330>3:30" is 3 h 30 min west of UTC all year, "NST3:30NDT,..." is
 * Newfoundland's rule (-03:30, -02:30 in summer). */
#include <check.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cli/progress.h"

#define NS 1000000000ull

static void zone(const char *tz)
{
	setenv("TZ", tz, 1);
	tzset();
}

static const char *local(uint64_t ns)
{
	static char buf[48];

	return fmt_local_time(ns, buf, sizeof(buf));
}

START_TEST(test_same_instant_in_each_zone)
{
	/* 2025-11-30 09:12:03.250 UTC, and 01:00 UTC, still the 29th at -03:30 */
	static const struct { uint64_t ns; const char *tz, *shown; } cases[] = {
		{ 1764493923ull * NS + 250000000ull, "UTC0", "2025-11-30T09:12:03.250+00:00" },
		{ 1764493923ull * NS + 250000000ull, "<-0330>3:30", "2025-11-30T05:42:03.250-03:30" },
		{ 1764493923ull * NS + 250000000ull, "<+0545>-5:45", "2025-11-30T14:57:03.250+05:45" },
		{ 1764464400ull * NS, "UTC0", "2025-11-30T01:00:00.000+00:00" },
		{ 1764464400ull * NS, "<-0330>3:30", "2025-11-29T21:30:00.000-03:30" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		zone(cases[i].tz);
		ck_assert_str_eq(local(cases[i].ns), cases[i].shown);
	}
}
END_TEST

START_TEST(test_summer_time_offset)
{
	zone("NST3:30NDT,M3.2.0,M11.1.0");
	/* 2025-07-01 09:00 UTC: summer, -02:30 */
	ck_assert_str_eq(local(1751360400ull * NS), "2025-07-01T06:30:00.000-02:30");
	/* 2025-11-30 09:12:03 UTC: winter, -03:30 */
	ck_assert_str_eq(local(1764493923ull * NS), "2025-11-30T05:42:03.000-03:30");
}
END_TEST

START_TEST(test_milliseconds_truncate)
{
	zone("UTC0");
	/* the last nanosecond of a second stays in that second */
	ck_assert_str_eq(local(1764493923ull * NS + 999999999ull), "2025-11-30T09:12:03.999+00:00");
	ck_assert_str_eq(local(1764493923ull * NS + 1000000ull - 1), "2025-11-30T09:12:03.000+00:00");
	ck_assert_str_eq(local(0), "1970-01-01T00:00:00.000+00:00");
	/* the largest u64 of nanoseconds, year 2554 */
	ck_assert_str_eq(local(UINT64_MAX), "2554-07-21T23:34:33.709+00:00");
}
END_TEST

/* --- the progress line ---------------------------------------------------- */

/* The clock progress_step() throttles by (CLOCK_MONOTONIC, in ms). */
static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* stderr on the slave side of a fresh pseudo-terminal (raw, so the bytes
 * arrive as written); returns the master, to read what was drawn. */
static int stderr_on_pty(int *saved)
{
	int m = posix_openpt(O_RDWR | O_NOCTTY);
	struct termios tio;
	int s;

	ck_assert_int_ge(m, 0);
	ck_assert_int_eq(grantpt(m), 0);
	ck_assert_int_eq(unlockpt(m), 0);
	s = open(ptsname(m), O_RDWR | O_NOCTTY);
	ck_assert_int_ge(s, 0);
	ck_assert_int_eq(tcgetattr(s, &tio), 0);
	cfmakeraw(&tio);
	ck_assert_int_eq(tcsetattr(s, TCSANOW, &tio), 0);
	fflush(stderr);
	*saved = dup(STDERR_FILENO);
	ck_assert_int_eq(dup2(s, STDERR_FILENO), STDERR_FILENO);
	close(s);
	fcntl(m, F_SETFL, O_NONBLOCK);
	return m;
}

/* stderr on the write end of a pipe; returns the read end. */
static int stderr_on_pipe(int *saved)
{
	int p[2];

	ck_assert_int_eq(pipe(p), 0);
	fflush(stderr);
	*saved = dup(STDERR_FILENO);
	ck_assert_int_eq(dup2(p[1], STDERR_FILENO), STDERR_FILENO);
	close(p[1]);
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	return p[0];
}

/* Puts stderr back, then returns everything written to fd. */
static const char *drain(int fd, int saved)
{
	static char buf[512];
	size_t n = 0;
	ssize_t r;

	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	while (n < sizeof(buf) - 1 && (r = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0)
		n += (size_t)r;
	buf[n] = 0;
	close(fd);
	return buf;
}

START_TEST(test_progress_drawn_on_a_terminal)
{
	struct progress p;
	int saved, fd = stderr_on_pty(&saved);
	uint64_t drawn_ms;
	bool soon;
	const char *out;

	progress_start(&p, "blocks fetched", 10, false);
	ck_assert(p.on);
	progress_step(&p, 3);
	drawn_ms = p.last_ms;
	progress_step(&p, 4);
	/* within a tenth of a second of the last redraw, 4/10 is not drawn; a
	 * machine so busy that a tenth passed here may draw it */
	soon = mono_ms() - drawn_ms < 100;
	progress_step(&p, 10);  /* the total: always drawn */
	progress_text(&p, "lease 7f3a running");
	progress_end(&p);
	ck_assert(!p.on);
	out = drain(fd, saved);
	if (!soon && strstr(out, "4/10"))
		ck_assert_str_eq(out, "\rtally: 3/10 blocks fetched (30%)\033[K"
				      "\rtally: 4/10 blocks fetched (40%)\033[K"
				      "\rtally: 10/10 blocks fetched (100%)\033[K"
				      "\rtally: lease 7f3a running\033[K"
				      "\r\033[K");
	else
		ck_assert_str_eq(out, "\rtally: 3/10 blocks fetched (30%)\033[K"
				      "\rtally: 10/10 blocks fetched (100%)\033[K"
				      "\rtally: lease 7f3a running\033[K"
				      "\r\033[K");
}
END_TEST

START_TEST(test_progress_without_total)
{
	struct progress p;
	int saved, fd = stderr_on_pty(&saved);

	progress_start(&p, "blocks replayed", 0, false);
	progress_step(&p, 12);
	progress_end(&p);
	ck_assert_str_eq(drain(fd, saved), "\rtally: 12 blocks replayed\033[K\r\033[K");
}
END_TEST

/* A whole operation's calls, with stderr on fd: nothing may reach it. */
static void assert_draws_nothing(int fd, int saved, bool quiet)
{
	struct progress p;

	progress_start(&p, "blocks fetched", 10, quiet);
	ck_assert(!p.on);
	progress_step(&p, 3);
	progress_step(&p, 10);
	progress_text(&p, "lease 7f3a running");
	progress_end(&p);
	ck_assert_str_eq(drain(fd, saved), "");
}

START_TEST(test_progress_quiet_when_piped)
{
	int saved, fd = stderr_on_pipe(&saved);

	assert_draws_nothing(fd, saved, false);
}
END_TEST

START_TEST(test_progress_quiet_with_json)
{
	int saved, fd = stderr_on_pty(&saved);

	/* --json (quiet) on a terminal: nothing either */
	assert_draws_nothing(fd, saved, true);
}
END_TEST

Suite *progress_suite(void)
{
	Suite *s = suite_create("progress");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_same_instant_in_each_zone);
	tcase_add_test(tc, test_summer_time_offset);
	tcase_add_test(tc, test_milliseconds_truncate);
	tcase_add_test(tc, test_progress_drawn_on_a_terminal);
	tcase_add_test(tc, test_progress_without_total);
	tcase_add_test(tc, test_progress_quiet_when_piped);
	tcase_add_test(tc, test_progress_quiet_with_json);
	suite_add_tcase(s, tc);
	return s;
}
