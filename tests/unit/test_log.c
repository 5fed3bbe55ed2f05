/* tallyd's log: a line repeated within LOG_REPEAT_WINDOW_NS is counted, not
 * written, and the count comes out as one line ("... (repeated N times in
 * the last S s)"); every line logged is written or counted, none lost. The
 * windows run on an injected clock; the lines go to a memory stream. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/log.h"

static uint64_t fake_now;

static uint64_t fake_clock(void)
{
	return fake_now;
}

static char *buf;
static size_t len;
static FILE *mem;

static void capture(void)
{
	fake_now = 1000000000ull;
	mem = open_memstream(&buf, &len);
	ck_assert_ptr_nonnull(mem);
	log_set_output(mem);
	log_set_clock(fake_clock);
}

/* What was written since capture(), and stops capturing. */
static char *captured(void)
{
	log_flush();
	log_set_output(NULL);
	log_set_clock(NULL);
	fclose(mem);
	return buf;
}

static int count(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/* A failing step retried 38 times a second for 25 s: a line per window
 * with its count, the counts adding up to every line logged. */
START_TEST(a_flood_is_counted_per_window)
{
	int logged = 0;
	char *text;

	capture();
	for (int i = 0; i < 38 * 25; i++, logged++) {
		log_error("committing block %d: disk full", 44);
		fake_now += 1000000000ull / 38;
	}
	text = captured();
	/* The first line, then one per 10 s window (at 10 s and 20 s) and the
	 * last window's at exit (log_flush), short of 10 s: 4 lines, not 950. */
	ck_assert_int_eq(count(text, "committing block 44: disk full"), 4);
	ck_assert_int_eq(count(text, "tallyd error: committing block 44: disk full\n"), 1);
	ck_assert_int_eq(count(text, "times in the last 10 s)\n"), 2);
	int total = 1, n;
	for (const char *p = text; (p = strstr(p, "(repeated ")); p++) {
		ck_assert_int_eq(sscanf(p, "(repeated %d times", &n), 1);
		total += n;
	}
	ck_assert_int_eq(total, logged);
	free(text);
}
END_TEST

/* Two places logging one fault, interleaved (the ledger's warning and the
 * engine's error of a failed commit): still a line per window each. */
START_TEST(interleaved_floods_are_counted_per_window)
{
	int logged = 0, total = 0, n;
	char *text;

	capture();
	for (int i = 0; i < 38 * 25; i++, logged += 2) {
		log_warn("ledger: committing block 57: disk full");
		log_error("consensus: committing block 57: disk full");
		fake_now += 1000000000ull / 38;
	}
	text = captured();
	ck_assert_int_eq(count(text, "warn: ledger: committing block 57: disk full"), 4);
	ck_assert_int_eq(count(text, "error: consensus: committing block 57: disk full"), 4);
	total = count(text, "disk full\n");
	for (const char *p = text; (p = strstr(p, "(repeated ")); p++) {
		ck_assert_int_eq(sscanf(p, "(repeated %d times", &n), 1);
		total += n;
	}
	ck_assert_int_eq(total, logged);
	free(text);
}
END_TEST

/* Different lines are each written; a line is held only beside its twin. */
START_TEST(different_lines_are_all_written)
{
	char *text;

	capture();
	log_warn("peer a: refused");
	log_warn("peer b: refused");
	log_info("peer a: refused");   /* another level: another line */
	log_warn("peer a: refused");   /* held: the same level and text */
	fake_now += LOG_REPEAT_WINDOW_NS;
	log_warn("something else");    /* writes the count the window held */
	text = captured();
	ck_assert_msg(count(text, "warn: peer b: refused\n") == 1, "%s", text);
	ck_assert_msg(count(text, "info: peer a: refused\n") == 1, "%s", text);
	/* The one held is written when its window has passed, before the
	 * line that found it so: as itself, a line that stands for one. */
	ck_assert_msg(count(text, "warn: peer a: refused\n") == 2, "%s", text);
	ck_assert_msg(!strstr(text, "(repeated"), "%s", text);
	const char *held = strstr(strstr(text, "warn: peer a: refused\n") + 1,
				  "warn: peer a: refused\n");
	ck_assert_msg(held && held < strstr(text, "something else"), "%s", text);
	free(text);
}
END_TEST

/* More distinct repeating lines than the table holds: the oldest makes
 * room and writes its count, nothing is lost. */
START_TEST(a_full_table_loses_no_count)
{
	char *text, line[32];
	int total = 0;

	capture();
	for (int round = 0; round < 3; round++)
		for (int i = 0; i < 40; i++) {
			log_error("fault %d", i);
			fake_now += 1000;
		}
	text = captured();
	for (int i = 0; i < 40; i++) {
		const char *p = text;

		snprintf(line, sizeof(line), "fault %d", i);
		while ((p = strstr(p, line))) {
			int n = 1;

			p += strlen(line);
			if (*p >= '0' && *p <= '9')
				continue;   /* "fault 1" inside "fault 12" */
			if (sscanf(p, " (repeated %d", &n) != 1)
				n = 1;
			total += n;
		}
	}
	ck_assert_int_eq(total, 120);
	free(text);
}
END_TEST

Suite *log_suite(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("repeats");

	tcase_add_test(tc, a_flood_is_counted_per_window);
	tcase_add_test(tc, interleaved_floods_are_counted_per_window);
	tcase_add_test(tc, different_lines_are_all_written);
	tcase_add_test(tc, a_full_table_loses_no_count);
	suite_add_tcase(s, tc);
	return s;
}
