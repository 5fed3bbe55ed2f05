/* The consensus WAL (daemon/consensus/wal.h) on real files: records read
 * back as written, the CRC-32C of RFC 3720, a torn last record cut at every
 * byte it could have been cut at, a corrupt or junk tail cut, a new height
 * emptying the log, and appends after a cut landing where they should. */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/consensus/wal.h"
#include "lib/errors.h"
#include "tests/support/cbpaths.h"
#include "tests/support/ledgertest.h"

static char base[40];   /* per test case, made and removed in the runner's process */
static char dir[80], path[128];   /* per test, inside base */

/* The case's directory lives in the runner's process (an unchecked
 * fixture), so it goes even when a test fails inside its fork. */
static void dir_setup(void)
{
	lt_case_dir(base, sizeof(base), "wal");
}

static void dir_teardown(void)
{
	cb_rm_tree(base);
}

/* Each test starts with no WAL: a directory of its own. */
static void setup(void)
{
	lt_test_dir(dir, sizeof(dir), base);
	snprintf(path, sizeof(path), "%s/consensus.wal", dir);
}

static void teardown(void)
{
	cb_rm_tree(dir);
}

static struct wal *open_ok(void)
{
	struct wal *w;
	char why[WHY_MAX];
	int rc = wal_open(&w, path, why);

	ck_assert_msg(rc == 0, "wal_open: %s", why);
	return w;
}

static off_t file_size(void)
{
	struct stat st;

	ck_assert_int_eq(stat(path, &st), 0);
	return st.st_size;
}

/* The height record, a message and a timeout: sizes of each record. */
static void write_three(off_t ends[3])
{
	struct wal *w = open_ok();
	char why[WHY_MAX];
	uint8_t msg[300];
	struct wal_rec m = { .kind = WAL_MESSAGE, .received_ns = 123456789, .flags = 3,
			     .msg = msg, .msg_len = sizeof(msg) };
	struct wal_rec t = { .kind = WAL_TIMEOUT, .height = 9, .round = 4, .wait = 2 };

	for (size_t i = 0; i < sizeof(msg); i++)
		msg[i] = (uint8_t)(i * 7);
	ck_assert_int_eq(wal_start_height(w, 9, why), 0);
	ends[0] = file_size();
	ck_assert_int_eq(wal_append(w, &m, why), 0);
	ends[1] = file_size();
	ck_assert_int_eq(wal_append(w, &t, why), 0);
	ends[2] = file_size();
	wal_close(w);
}

static void check_first_two(struct wal *w)
{
	const struct wal_rec *r;

	r = wal_record(w, 0);
	ck_assert_int_eq(r->kind, WAL_HEIGHT);
	ck_assert_uint_eq(r->height, 9);
	r = wal_record(w, 1);
	ck_assert_int_eq(r->kind, WAL_MESSAGE);
	ck_assert_uint_eq(r->received_ns, 123456789);
	ck_assert_uint_eq(r->flags, 3);
	ck_assert_uint_eq(r->msg_len, 300);
	ck_assert_uint_eq(r->msg[299], (uint8_t)(299 * 7));
}

START_TEST(test_records_read_back)
{
	off_t ends[3];
	struct wal *w;
	const struct wal_rec *r;

	write_three(ends);
	w = open_ok();
	ck_assert_uint_eq(wal_nrecords(w), 3);
	ck_assert_uint_eq(wal_cut_bytes(w), 0);
	check_first_two(w);
	r = wal_record(w, 2);
	ck_assert_int_eq(r->kind, WAL_TIMEOUT);
	ck_assert_uint_eq(r->height, 9);
	ck_assert_uint_eq(r->round, 4);
	ck_assert_uint_eq(r->wait, 2);
	wal_close(w);
	/* CRC-32C check value (RFC 3720, appendix B.4). */
	ck_assert_uint_eq(wal_crc32c("123456789", 9), 0xe3069283u);
}
END_TEST

/* CRC-32C a bit at a time, as the polynomial defines it. */
static uint32_t crc32c_bitwise(const uint8_t *b, size_t n)
{
	uint32_t c = 0xffffffffu;

	while (n--) {
		c ^= *b++;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
	}
	return c ^ 0xffffffffu;
}

/* wal_crc32c, whichever way this CPU computes it (8 bytes at a time where
 * it can), against RFC 3720's vectors and the bitwise definition at every
 * length and alignment up to a few words. */
START_TEST(test_crc32c_every_length)
{
	uint8_t zeros[32] = { 0 }, ones[32], inc[32], buf[96];
	uint32_t x = 12345;

	memset(ones, 0xff, sizeof(ones));
	for (int i = 0; i < 32; i++)
		inc[i] = (uint8_t)i;
	ck_assert_uint_eq(wal_crc32c(zeros, 32), 0x8a9136aau);
	ck_assert_uint_eq(wal_crc32c(ones, 32), 0x62a8ab43u);
	ck_assert_uint_eq(wal_crc32c(inc, 32), 0x46dd794eu);
	for (size_t i = 0; i < sizeof(buf); i++) {
		x = x * 1103515245u + 12345u;
		buf[i] = (uint8_t)(x >> 16);
	}
	for (size_t off = 0; off < 8; off++)
		for (size_t n = 0; off + n <= sizeof(buf); n++)
			ck_assert_uint_eq(wal_crc32c(buf + off, n), crc32c_bitwise(buf + off, n));
}
END_TEST

START_TEST(test_torn_last_record_cut_at_every_byte)
{
	off_t ends[3];
	char why[WHY_MAX];

	write_three(ends);
	for (off_t cut = ends[1]; cut < ends[2]; cut++) {
		struct wal_rec t = { .kind = WAL_TIMEOUT, .height = 9, .round = 5, .wait = 3 };
		struct wal *w;

		write_three(ends);
		ck_assert_int_eq(truncate(path, cut), 0);
		w = open_ok();
		ck_assert_uint_eq(wal_nrecords(w), 2);
		ck_assert_uint_eq(wal_cut_bytes(w), (uint64_t)(cut - ends[1]));
		check_first_two(w);
		ck_assert_int_eq(file_size(), ends[1]);
		/* The log goes on from the last whole record. */
		ck_assert_int_eq(wal_append(w, &t, why), 0);
		wal_close(w);
		w = open_ok();
		ck_assert_uint_eq(wal_nrecords(w), 3);
		ck_assert_uint_eq(wal_record(w, 2)->round, 5);
		ck_assert_uint_eq(wal_cut_bytes(w), 0);
		wal_close(w);
	}
}
END_TEST

START_TEST(test_corrupt_or_junk_tail_cut)
{
	off_t ends[3];
	struct wal *w;
	uint8_t b;
	int fd;

	/* A flipped bit in the last record's body: its CRC fails. */
	write_three(ends);
	fd = open(path, O_RDWR);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, &b, 1, ends[2] - 1), 1);
	b ^= 0x10;
	ck_assert_int_eq(pwrite(fd, &b, 1, ends[2] - 1), 1);
	close(fd);
	w = open_ok();
	ck_assert_uint_eq(wal_nrecords(w), 2);
	ck_assert_uint_eq(wal_cut_bytes(w), (uint64_t)(ends[2] - ends[1]));
	wal_close(w);
	/* Zeros after the records (a file extended but never written). */
	write_three(ends);
	ck_assert_int_eq(truncate(path, ends[2] + 4096), 0);
	w = open_ok();
	ck_assert_uint_eq(wal_nrecords(w), 3);
	ck_assert_uint_eq(wal_cut_bytes(w), 4096);
	wal_close(w);
	/* A file that is not a WAL at all: nothing of it is taken. */
	fd = open(path, O_WRONLY | O_TRUNC);
	ck_assert_int_eq(write(fd, "not a consensus log\n", 20), 20);
	close(fd);
	w = open_ok();
	ck_assert_uint_eq(wal_nrecords(w), 0);
	ck_assert_uint_eq(wal_cut_bytes(w), 20);
	wal_close(w);
}
END_TEST

START_TEST(test_new_height_empties)
{
	off_t ends[3];
	char why[WHY_MAX];
	struct wal *w;

	write_three(ends);
	w = open_ok();
	ck_assert_int_eq(wal_start_height(w, 10, why), 0);
	wal_close(w);
	w = open_ok();
	ck_assert_uint_eq(wal_nrecords(w), 1);
	ck_assert_uint_eq(wal_record(w, 0)->height, 10);
	wal_close(w);
	ck_assert_int_eq(file_size(), ends[0]);
}
END_TEST

Suite *wal_suite(void)
{
	Suite *s = suite_create("wal");
	TCase *tc = tcase_create("wal");

	tcase_add_unchecked_fixture(tc, dir_setup, dir_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_records_read_back);
	tcase_add_test(tc, test_crc32c_every_length);
	tcase_add_test(tc, test_torn_last_record_cut_at_every_byte);
	tcase_add_test(tc, test_corrupt_or_junk_tail_cut);
	tcase_add_test(tc, test_new_height_empties);
	suite_add_tcase(s, tc);
	return s;
}
