/* Torn and truncated files (issue 17): the validator's signer_state, the
 * SQLite store and its WAL, and the chain export file, cut at every byte
 * (or every frame and page, where a case costs a store open) and damaged
 * byte by byte. Each must be refused with a message that says what to do,
 * or repaired safely; never read as something it is not, and never let
 * the validator sign twice.
 *
 * Each test prints one "torn-file:" line with its count of cases, which
 * `make reliability` collects. */
#include <check.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "daemon/consensus/privval.h"
#include "daemon/ledger/ledger.h"
#include "lib/chain/chainfile.h"
#include "lib/chain/replay.h"
#include "lib/errors.h"
#include "tests/support/cbpaths.h"
#include "tests/support/fixchain.h"
#include "tests/support/ledgertest.h"

/* Under ASan (make check-unit SAN=1) every case costs several times more:
 * the sanitized run takes every STRIDE-th cut or byte of the costly loops,
 * the plain run every one. */
#ifdef __SANITIZE_ADDRESS__
#define STRIDE 7
#else
#define STRIDE 1
#endif

static char base[40];    /* per test case, made and removed in the runner's process */
static char dir[80];     /* per test, inside base */
static struct fixchain fx;

static void base_setup(void)
{
	lt_case_dir(base, sizeof(base), "torn");
}

static void base_teardown(void)
{
	cb_rm_tree(base);
}

static void setup(void)
{
	fixchain_build(&fx);
	lt_test_dir(dir, sizeof(dir), base);
}

static void teardown(void)
{
	cb_rm_tree(dir);
	fixchain_free(&fx);
}

static void path_in(char *out, size_t cap, const char *d, const char *name)
{
	ck_assert_int_lt(snprintf(out, cap, "%s/%s", d, name), (int)cap);
}

static void write_file(const char *path, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	ck_assert_msg(fd >= 0, "cannot write %s", path);
	ck_assert_int_eq(write(fd, p, n), (ssize_t)n);
	close(fd);
}

static uint8_t *read_file(const char *path, size_t *n)
{
	struct stat st;
	uint8_t *buf;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	ck_assert_msg(fd >= 0, "cannot read %s", path);
	ck_assert_int_eq(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_int_eq(read(fd, buf, (size_t)st.st_size), st.st_size);
	close(fd);
	*n = (size_t)st.st_size;
	return buf;
}

static void report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void report(const char *fmt, ...)
{
	va_list ap;

	printf("torn-file: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

/* --- signer_state ----------------------------------------------------------- */

static const struct tally_key *val_key(void)
{
	return &fx.c.key[CB_VALIDATOR];
}

static void sign_at(struct privval *pv, uint64_t height, uint32_t round, uint8_t type,
		    uint8_t fill, int want)
{
	struct vote v = { .type = type, .height = height, .round = round };
	uint8_t sig[SIG_LEN];
	char why[WHY_MAX] = "";

	memset(v.block_id, fill, HASH_LEN);
	ck_assert_msg(privval_sign_vote(pv, fx.c.genesis_hash, &v, sig, why) == want,
		      "vote h%" PRIu64 " r%u type %u block %02x: want %d (%s)", height, round,
		      type, fill, want, why);
}

/* A signer_state as the guard writes it, after a prevote at height 5. */
static uint8_t *signed_state(const char *path, size_t *n)
{
	struct privval pv;
	char why[WHY_MAX];

	ck_assert_int_eq(privval_open(&pv, path, val_key(), why), 0);
	sign_at(&pv, 5, 0, VOTE_PREVOTE, 0xaa, 0);
	privval_close(&pv);
	return read_file(path, n);
}

static void expect_refused(const char *path, const char *what)
{
	struct privval pv;
	char why[WHY_MAX] = "";

	ck_assert_msg(privval_open(&pv, path, val_key(), why) == TALLY_E_ENCODING,
		      "%s: a damaged signer_state was accepted", what);
	ck_assert_msg(strstr(why, path) && strstr(why, "refusing to sign") &&
		      strstr(why, "--repair-signer-state"),
		      "%s: the refusal does not say what to do: %s", what, why);
}

START_TEST(signer_state_cut_at_every_byte_is_refused)
{
	char path[128];
	size_t n;
	uint8_t *good;

	path_in(path, sizeof(path), dir, "signer_state");
	good = signed_state(path, &n);
	ck_assert_uint_eq(n, PRIVVAL_FILE_LEN);
	for (size_t cut = 0; cut < n; cut++) {
		char what[32];
		snprintf(what, sizeof(what), "cut at %zu", cut);
		write_file(path, good, cut);
		expect_refused(path, what);
	}
	/* A longer file (two writes run together) is refused too. */
	uint8_t longer[PRIVVAL_FILE_LEN + 7];
	memcpy(longer, good, n);
	memcpy(longer + n, good, sizeof(longer) - n);
	write_file(path, longer, sizeof(longer));
	expect_refused(path, "too long");
	report("signer_state: %zu cuts and 1 overlong file refused", n);
	free(good);
}
END_TEST

START_TEST(signer_state_damaged_anywhere_is_refused)
{
	static const uint8_t masks[] = { 0x01, 0x80, 0xff };
	char path[128];
	size_t n, cases = 0;
	uint8_t *good;

	path_in(path, sizeof(path), dir, "signer_state");
	good = signed_state(path, &n);
	for (size_t i = 0; i < n; i++) {
		for (size_t m = 0; m < sizeof(masks); m++) {
			char what[48];
			uint8_t bad[PRIVVAL_FILE_LEN];

			memcpy(bad, good, n);
			bad[i] ^= masks[m];
			/* Turning version 2 into version 1 makes a file of the
			 * wrong length, refused like any other. */
			snprintf(what, sizeof(what), "byte %zu ^ %02x", i, masks[m]);
			write_file(path, bad, n);
			expect_refused(path, what);
			cases++;
		}
	}
	/* A torn write: the new state's first half over the old one's. */
	struct privval pv;
	char why[WHY_MAX];
	uint8_t *newer;
	size_t nn;
	write_file(path, good, n);
	ck_assert_int_eq(privval_open(&pv, path, val_key(), why), 0);
	sign_at(&pv, 6, 0, VOTE_PRECOMMIT, 0xbb, 0);
	privval_close(&pv);
	newer = read_file(path, &nn);
	for (size_t k = 1; k < n; k++) {
		uint8_t torn[PRIVVAL_FILE_LEN];
		memcpy(torn, newer, k);
		memcpy(torn + k, good + k, n - k);
		if (!memcmp(torn, newer, n) || !memcmp(torn, good, n))
			continue;
		write_file(path, torn, n);
		expect_refused(path, "torn");
		cases++;
	}
	report("signer_state: %zu damaged or torn files refused", cases);
	free(newer);
	free(good);
}
END_TEST

/* Files written before the checksum are still read, and rewritten with it. */
START_TEST(signer_state_version_1_is_read_and_upgraded)
{
	char path[128];
	struct privval pv;
	char why[WHY_MAX];
	uint8_t v1[PRIVVAL_FILE_LEN - HASH_LEN] = { 1 }, sig[SIG_LEN];
	size_t n;

	path_in(path, sizeof(path), dir, "signer_state");
	v1[1] = 5;                       /* height 5, round 0 */
	v1[13] = 2;                      /* prevote */
	memset(v1 + 14, 0xaa, HASH_LEN);
	memset(v1 + 14 + HASH_LEN, 0x11, SIG_LEN);
	write_file(path, v1, sizeof(v1));
	ck_assert_int_eq(privval_open(&pv, path, val_key(), why), 0);
	ck_assert(pv.any);
	ck_assert_uint_eq(pv.height, 5);
	sign_at(&pv, 5, 0, VOTE_PREVOTE, 0xbb, TALLY_E_STATE);
	struct vote v = { .type = VOTE_PREVOTE, .height = 5 };
	memset(v.block_id, 0xaa, HASH_LEN);
	ck_assert_int_eq(privval_sign_vote(&pv, fx.c.genesis_hash, &v, sig, why), 0);
	ck_assert_uint_eq(sig[0], 0x11);  /* the recorded signature, sent again */
	sign_at(&pv, 5, 0, VOTE_PRECOMMIT, 0xaa, 0);
	privval_close(&pv);
	free(read_file(path, &n));
	ck_assert_uint_eq(n, PRIVVAL_FILE_LEN);
}
END_TEST

/* After a repair at the store's tip + 1 the guard signs nothing it could
 * have signed before: no lower height, no round of that height up to the
 * repair round, and no signature sent again. */
START_TEST(signer_state_repair_never_signs_twice)
{
	char path[128], damaged[160], why[WHY_MAX];
	struct privval pv;
	size_t n;

	path_in(path, sizeof(path), dir, "signer_state");
	ck_assert_int_eq(privval_open(&pv, path, val_key(), why), 0);
	sign_at(&pv, 6, 3, VOTE_PRECOMMIT, 0xaa, 0);
	privval_close(&pv);
	uint8_t *good = read_file(path, &n);
	write_file(path, good, 40);
	expect_refused(path, "cut");

	ck_assert_int_eq(privval_repair(path, 6, why), 0);
	snprintf(damaged, sizeof(damaged), "%s.damaged", path);
	uint8_t *kept = read_file(damaged, &n);
	ck_assert_uint_eq(n, 40);
	ck_assert_int_eq(privval_open(&pv, path, val_key(), why), 0);
	sign_at(&pv, 5, 0, VOTE_PRECOMMIT, 0xaa, TALLY_E_STATE);
	sign_at(&pv, 6, 3, VOTE_PRECOMMIT, 0xaa, TALLY_E_STATE);
	sign_at(&pv, 6, 3, VOTE_PRECOMMIT, 0xbb, TALLY_E_STATE);
	sign_at(&pv, 6, PRIVVAL_REPAIR_ROUND, VOTE_PRECOMMIT, 0, TALLY_E_STATE);
	sign_at(&pv, 6, PRIVVAL_REPAIR_ROUND, VOTE_PREVOTE, 0xbb, TALLY_E_STATE);
	sign_at(&pv, 6, PRIVVAL_REPAIR_ROUND + 1, VOTE_PREVOTE, 0xbb, 0);
	sign_at(&pv, 7, 0, VOTE_PREVOTE, 0xcc, 0);
	privval_close(&pv);
	free(kept);
	free(good);
}
END_TEST

/* --- the ledger: the guard against its store --------------------------------- */

struct log_seen {
	char text[2048];
};

static void log_line(void *ctx, const char *line)
{
	struct log_seen *s = ctx;
	size_t used = strlen(s->text);

	snprintf(s->text + used, sizeof(s->text) - used, "%s\n", line);
}

static int open_ledger(struct ledger **l, const char *d, bool validator, bool repair,
		       struct log_seen *seen, char *why)
{
	struct ledger_config lc = {
		.data_dir = d,
		.genesis = &fx.c.genesis,
		.validator_key = validator ? val_key() : NULL,
		.repair_signer_state = repair,
		.log = seen ? log_line : NULL,
		.log_ctx = seen,
	};

	why[0] = '\0';
	return ledger_open(l, &lc, why);
}

static void apply_fixchain(struct ledger *l)
{
	char why[WHY_MAX];

	for (size_t i = 0; i < fx.c.nblocks; i++) {
		struct enc b, c;

		fixchain_encode_block(&fx, i, &b, &c);
		ck_assert_msg(ledger_apply_block(l, b.buf, b.len, c.buf, c.len, why) == 0,
			      "block %zu: %s", i + 1, why);
		enc_free(&b);
		enc_free(&c);
	}
}

/* The fixed chain, then block 6 made and certified by this validator. */
static void validator_store(const char *d)
{
	struct ledger *l;
	struct ledger_block_result res;
	char why[WHY_MAX];

	ck_assert_msg(open_ledger(&l, d, true, false, NULL, why) == 0, "%s", why);
	apply_fixchain(l);
	ck_assert_msg(ledger_produce_block(l, FIX_BLOCK_NS(6), &res, why) == 0, "%s", why);
	ck_assert_uint_eq(res.height, 6);
	ledger_close(l);
}

START_TEST(ledger_refuses_a_damaged_signer_state_and_repairs_on_request)
{
	char path[128], why[WHY_MAX];
	struct ledger *l;
	struct ledger_block_result res;
	struct log_seen seen = { "" };
	size_t n;
	uint64_t h;

	validator_store(dir);
	path_in(path, sizeof(path), dir, "signer_state");
	uint8_t *good = read_file(path, &n);
	write_file(path, good, n / 2);
	ck_assert_int_eq(open_ledger(&l, dir, true, false, NULL, why), TALLY_E_ENCODING);
	ck_assert_msg(strstr(why, "cut short") && strstr(why, "--repair-signer-state"), "%s", why);

	ck_assert_msg(open_ledger(&l, dir, true, true, &seen, why) == 0, "%s", why);
	ck_assert_msg(strstr(seen.text, "signer_state repaired: signing resumes at height 7"),
		      "%s", seen.text);
	ck_assert_msg(ledger_produce_block(l, FIX_BLOCK_NS(7), &res, why) == 0, "%s", why);
	ck_assert_uint_eq(res.height, 7);
	struct commit_cert cert;
	ck_assert_int_eq(ledger_cert(l, 7, &cert), 0);
	ck_assert_uint_eq(cert.round, PRIVVAL_REPAIR_ROUND + 1);
	ledger_close(l);
	ck_assert_msg(ledger_verify_store(dir, &fx.c.genesis, &h, why) == 0, "%s", why);
	ck_assert_uint_eq(h, 7);
	/* A sound file is left alone by the repair flag. */
	uint8_t *before = read_file(path, &n);
	ck_assert_msg(open_ledger(&l, dir, true, true, NULL, why) == 0, "%s", why);
	ledger_close(l);
	size_t n2;
	uint8_t *after = read_file(path, &n2);
	ck_assert(n == n2 && !memcmp(before, after, n));
	free(after);
	free(before);
	free(good);
}
END_TEST

START_TEST(ledger_refuses_a_signer_state_ahead_of_its_store)
{
	char path[128], odir[80], other[128], why[WHY_MAX];
	struct ledger *l;
	struct privval pv;
	size_t n;

	validator_store(dir);
	path_in(path, sizeof(path), dir, "signer_state");
	lt_test_dir(odir, sizeof(odir), base);
	path_in(other, sizeof(other), odir, "ahead");
	ck_assert_int_eq(privval_open(&pv, other, val_key(), why), 0);
	sign_at(&pv, 9, 0, VOTE_PRECOMMIT, 0xaa, 0);
	privval_close(&pv);
	uint8_t *ahead = read_file(other, &n);
	write_file(path, ahead, n);
	ck_assert_int_eq(open_ledger(&l, dir, true, false, NULL, why), TALLY_E_STORE);
	ck_assert_msg(strstr(why, "signed at height 9") && strstr(why, "ends at 6") &&
		      strstr(why, "lost committed blocks"), "%s", why);
	/* Not a damaged file: the repair flag does not touch it. */
	ck_assert_int_eq(open_ledger(&l, dir, true, true, NULL, why), TALLY_E_STORE);
	free(ahead);
}
END_TEST

/* A validator whose signer_state is gone, with its store kept: the store
 * shows it signed the last block, so it does not know what it signed next
 * and is refused as with a damaged file; the repair flag puts the guard
 * in place. A key the last certificate does not hold starts as new. */
START_TEST(ledger_refuses_a_lost_signer_state_of_a_validator_that_signed)
{
	char path[128], why[WHY_MAX];
	struct ledger *l;
	struct ledger_block_result res;
	struct log_seen seen = { "" };
	struct commit_cert cert;

	validator_store(dir);
	path_in(path, sizeof(path), dir, "signer_state");
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(open_ledger(&l, dir, true, false, NULL, why), TALLY_E_ENCODING);
	ck_assert_msg(strstr(why, "is missing") && strstr(why, "signed block 6") &&
		      strstr(why, "--repair-signer-state"), "%s", why);
	ck_assert_int_eq(access(path, F_OK), -1);

	ck_assert_msg(open_ledger(&l, dir, true, true, &seen, why) == 0, "%s", why);
	ck_assert_msg(strstr(seen.text, "signer_state repaired: signing resumes at height 7"),
		      "%s", seen.text);
	/* Nothing was there to keep aside, and the flag given is not advised. */
	ck_assert_msg(!strstr(seen.text, ".damaged") && !strstr(seen.text, "refusing"), "%s",
		      seen.text);
	ck_assert_msg(ledger_produce_block(l, FIX_BLOCK_NS(7), &res, why) == 0, "%s", why);
	ck_assert_int_eq(ledger_cert(l, 7, &cert), 0);
	ck_assert_uint_eq(cert.round, PRIVVAL_REPAIR_ROUND + 1);
	ledger_close(l);
}
END_TEST

START_TEST(ledger_starts_a_new_validator_without_signer_state)
{
	char path[128], why[WHY_MAX];
	struct tally_key fresh;
	struct ledger *l;

	/* The fixed chain's blocks, certified by its validators: a new key
	 * signed none of them. */
	ck_assert_msg(open_ledger(&l, dir, false, false, NULL, why) == 0, "%s", why);
	apply_fixchain(l);
	ledger_close(l);
	ck_assert_int_eq(key_generate(&fresh), 0);
	struct ledger_config lc = { .data_dir = dir, .genesis = &fx.c.genesis,
				    .validator_key = &fresh };
	ck_assert_msg(ledger_open(&l, &lc, why) == 0, "%s", why);
	ledger_close(l);
	path_in(path, sizeof(path), dir, "signer_state");
	/* The fixed chain's own validator signed block 5: refused. */
	ck_assert_int_eq(open_ledger(&l, dir, true, false, NULL, why), TALLY_E_ENCODING);
	ck_assert_msg(strstr(why, "signed block 5"), "%s", why);
	key_free(&fresh);
}
END_TEST

/* --- the SQLite store and its WAL ------------------------------------------- */

static void copy_file(const char *from, const char *to, size_t cut)
{
	size_t n;
	uint8_t *buf = read_file(from, &n);

	write_file(to, buf, cut < n ? cut : n);
	free(buf);
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Opens the store in d (no validator), and checks what it holds is one
 * consistent prefix of the chain: every stored block verifies from the
 * genesis, and the state is the one the tip's header names. Returns the
 * height. */
static uint64_t open_consistent(const char *d, const char *what)
{
	struct ledger *l;
	struct ledger_status st;
	struct block_header h;
	char why[WHY_MAX];
	uint64_t height;

	ck_assert_msg(open_ledger(&l, d, false, false, NULL, why) == 0, "%s: %s", what, why);
	ck_assert_int_eq(ledger_status(l, &st), 0);
	if (st.height) {
		ck_assert_int_eq(ledger_header(l, st.height, &h), 0);
		ck_assert_msg(!memcmp(h.state_root, st.state_root, HASH_LEN),
			      "%s: the state is not the one block %" PRIu64 " names", what,
			      st.height);
		ck_assert_msg(!memcmp(h.state_root,
				      fx.c.blocks[st.height - 1].header.state_root, HASH_LEN),
			      "%s: block %" PRIu64 " is not the chain's", what, st.height);
	}
	ledger_close(l);
	ck_assert_msg(ledger_verify_store(d, &fx.c.genesis, &height, why) == 0, "%s: %s", what,
		      why);
	ck_assert_uint_eq(height, st.height);
	return st.height;
}

START_TEST(store_wal_cut_anywhere_opens_at_a_consistent_height)
{
	char live[128], pristine[128], from[160], to[160], wal[160], why[WHY_MAX];
	struct ledger *l;
	size_t wal_len, cases = 0;
	uint64_t last = 0;

	/* The store as a SIGKILL leaves it: the blocks in the WAL, not yet
	 * checkpointed into the database file. */
	path_in(live, sizeof(live), dir, "live");
	path_in(pristine, sizeof(pristine), dir, "pristine");
	ck_assert_int_eq(mkdir(pristine, 0700), 0);
	ck_assert_msg(open_ledger(&l, live, false, false, NULL, why) == 0, "%s", why);
	apply_fixchain(l);
	path_in(from, sizeof(from), live, "ledger.sqlite");
	path_in(to, sizeof(to), pristine, "ledger.sqlite");
	copy_file(from, to, SIZE_MAX);
	path_in(from, sizeof(from), live, "ledger.sqlite-wal");
	path_in(wal, sizeof(wal), pristine, "ledger.sqlite-wal");
	copy_file(from, wal, SIZE_MAX);
	ledger_close(l);

	uint8_t *w = read_file(wal, &wal_len);
	ck_assert_uint_gt(wal_len, 32);
	size_t page = be32(w + 8), frame = 24 + page, frames = (wal_len - 32) / frame;
	ck_assert_uint_eq(32 + frames * frame, wal_len);
	/* Every STRIDE-th frame, and always the whole log. */
	for (size_t f = 0; f <= frames; f = f < frames && f + STRIDE > frames ? frames : f + STRIDE) {
		/* A frame boundary, and a cut in the middle of its page. */
		size_t cuts[] = { 32 + f * frame, 32 + f * frame + 24 + page / 2 };
		for (size_t k = 0; k < 2; k++) {
			char d[128], what[64];
			if (cuts[k] > wal_len || (k && f == frames))
				continue;
			snprintf(d, sizeof(d), "%s/wal-%zu", dir, cuts[k]);
			ck_assert_int_eq(mkdir(d, 0700), 0);
			path_in(from, sizeof(from), pristine, "ledger.sqlite");
			path_in(to, sizeof(to), d, "ledger.sqlite");
			copy_file(from, to, SIZE_MAX);
			path_in(to, sizeof(to), d, "ledger.sqlite-wal");
			write_file(to, w, cuts[k]);
			snprintf(what, sizeof(what), "WAL cut at %zu of %zu", cuts[k], wal_len);
			uint64_t h = open_consistent(d, what);
			ck_assert_msg(h >= last, "%s: height %" PRIu64 " after %" PRIu64
				      " at a shorter cut", what, h, last);
			last = h;
			cb_rm_tree(d);
			cases++;
		}
	}
	ck_assert_uint_eq(last, FIX_BLOCKS);
	/* A frame damaged in the middle of the log: SQLite's checksums end the
	 * log there, as a cut would. */
	size_t torn = 0;
	for (size_t f = 0; f < frames; f += 4 * STRIDE) {
		char d[128], what[64];
		snprintf(d, sizeof(d), "%s/torn-%zu", dir, f);
		ck_assert_int_eq(mkdir(d, 0700), 0);
		path_in(from, sizeof(from), pristine, "ledger.sqlite");
		path_in(to, sizeof(to), d, "ledger.sqlite");
		copy_file(from, to, SIZE_MAX);
		uint8_t *bad = malloc(wal_len);
		memcpy(bad, w, wal_len);
		memset(bad + 32 + f * frame + 24 + page / 4, 0, 512);
		path_in(to, sizeof(to), d, "ledger.sqlite-wal");
		write_file(to, bad, wal_len);
		free(bad);
		snprintf(what, sizeof(what), "WAL frame %zu of %zu torn", f, frames);
		open_consistent(d, what);
		cb_rm_tree(d);
		torn++;
	}
	report("SQLite WAL: %zu cuts (%zu frames of %zu bytes) and %zu torn frames, each opened "
	       "at a consistent height", cases, frames, frame, torn);
	free(w);
}
END_TEST

/* SQLite's own full check: a zeroed page it finds nothing wrong with was a
 * free page. */
static bool sqlite_intact(const char *path)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	bool ok = false;

	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK) {
		ok = sqlite3_step(st) == SQLITE_ROW &&
		     !strcmp((const char *)sqlite3_column_text(st, 0), "ok");
		sqlite3_finalize(st);
	}
	sqlite3_close(db);
	return ok;
}

START_TEST(store_database_cut_short_is_refused)
{
	char live[128], from[160], to[160], d[128], why[WHY_MAX];
	struct ledger *l;
	size_t n, cases = 0, zeroed = 0;

	path_in(live, sizeof(live), dir, "live");
	ck_assert_msg(open_ledger(&l, live, false, false, NULL, why) == 0, "%s", why);
	apply_fixchain(l);
	ledger_close(l);                 /* the last close checkpoints the WAL */
	path_in(from, sizeof(from), live, "ledger.sqlite");
	uint8_t *db = read_file(from, &n);
	size_t page = (size_t)db[16] << 8 | db[17];
	ck_assert_uint_eq(n % page, 0);
	path_in(d, sizeof(d), dir, "case");
	path_in(to, sizeof(to), d, "ledger.sqlite");
	/* Every page boundary and the middle of every page; 0 bytes is a store
	 * never written (a crash at the first start), which starts afresh. */
	for (size_t cut = 1; cut < n; cut += page / 2) {
		size_t at = cut == 1 ? 50 : cut - 1;
		ck_assert_int_eq(mkdir(d, 0700), 0);
		write_file(to, db, at);
		int rc = open_ledger(&l, d, false, false, NULL, why);
		ck_assert_msg(rc != 0, "ledger.sqlite cut at %zu of %zu bytes was opened", at, n);
		ck_assert_msg(strstr(why, "ledger.sqlite") && strstr(why, "restore"),
			      "cut at %zu: the refusal does not say what to do: %s", at, why);
		cb_rm_tree(d);
		cases++;
	}
	/* A page of zeros (a write the disk lost without saying so): refused
	 * when the store opens, or by its verification (ledger_verify_store,
	 * what an operator runs after a disk fault), or harmless (a free
	 * page); never read as another chain. */
	size_t at_open = 0, by_verify = 0;
	for (size_t p = 1; p < n / page; p++) {
		uint64_t h;
		ck_assert_int_eq(mkdir(d, 0700), 0);
		uint8_t *bad = malloc(n);
		memcpy(bad, db, n);
		memset(bad + p * page, 0, page);
		write_file(to, bad, n);
		free(bad);
		why[0] = '\0';
		int rc = open_ledger(&l, d, false, false, NULL, why);
		if (rc) {
			at_open++;
		} else {
			ledger_close(l);
			rc = ledger_verify_store(d, &fx.c.genesis, &h, why);
			if (rc)
				by_verify++;
			else
				ck_assert_msg(h == FIX_BLOCKS && sqlite_intact(to), "page %zu zeroed: "
					      "the damage went unseen (verified to %" PRIu64 ")", p, h);
		}
		ck_assert_msg(!rc || why[0], "page %zu zeroed: refused without a reason", p);
		cb_rm_tree(d);
		zeroed++;
	}
	report("SQLite database: %zu cuts refused; %zu zeroed pages: %zu refused at open, %zu by "
	       "the store's verification, %zu harmless", cases, zeroed, at_open, by_verify,
	       zeroed - at_open - by_verify);
	free(db);
}
END_TEST

/* --- the chain export file --------------------------------------------------- */

/* What `tally chain verify FILE` decides: the file loads, every block
 * replays from its genesis, and each lease state it claims is proven
 * against the state root of its (replayed, so verified) block. 0 when it
 * verifies. */
static int verify_chainfile(const char *path, char *why)
{
	struct chainfile f;
	struct replay r;
	int rc = chainfile_load(&f, path, why);

	if (rc)
		return rc;
	rc = replay_init(&r, &f.genesis, why);
	if (rc) {
		chainfile_free(&f);
		return rc;
	}
	for (size_t i = 0; !rc && i < f.nblocks; i++)
		rc = replay_block(&r, &f.blocks[i].block, f.blocks[i].cert,
				  f.blocks[i].next_vals, NULL, why);
	for (size_t k = 0; !rc && k < f.nleases; k++)
		rc = chainfile_check_lease(&f, &f.leases[k], why);
	replay_free(&r);
	chainfile_free(&f);
	return rc;
}

START_TEST(chainfile_cut_or_damaged_is_refused)
{
	char path[128], why[WHY_MAX];
	size_t n, cuts = 0, flips = 0, sectors = 0, metadata = 0;

	path_in(path, sizeof(path), dir, "chain.tally");
	cb_write_file(&fx.c, path);
	uint8_t *good = read_file(path, &n);
	ck_assert_msg(verify_chainfile(path, why) == 0, "%s", why);

	for (size_t cut = 0; cut < n; cut += STRIDE) {
		struct chainfile f;
		write_file(path, good, cut);
		ck_assert_msg(chainfile_load(&f, path, why) != 0, "cut at %zu of %zu loaded", cut, n);
		ck_assert_msg(strstr(why, "export it again"), "cut at %zu: %s", cut, why);
		cuts++;
	}

	/* The genesis's validator names and API addresses are not part of its
	 * hash: a changed byte there changes nothing the chain commits to. */
	char *gstart = memmem(good, n, "{\"chain_id\"", 11);
	ck_assert_ptr_nonnull(gstart);
	size_t g0 = (size_t)((uint8_t *)gstart - good), glen = strlen(fx.c.genesis_json);
	uint8_t *bad = malloc(n);
	for (size_t i = 0; i < n; i += STRIDE) {
		memcpy(bad, good, n);
		bad[i] ^= 0x01;
		write_file(path, bad, n);
		if (verify_chainfile(path, why) == 0) {
			struct chainfile f;
			uint8_t h1[HASH_LEN], h2[HASH_LEN];
			ck_assert_msg(i >= g0 && i < g0 + glen, "byte %zu changed and verified", i);
			ck_assert_int_eq(chainfile_load(&f, path, why), 0);
			genesis_hash(&f.genesis, h1);
			genesis_hash(&fx.c.genesis, h2);
			ck_assert_msg(!memcmp(h1, h2, HASH_LEN), "byte %zu: another genesis verified",
				      i);
			chainfile_free(&f);
			metadata++;
		}
		flips++;
	}
	for (size_t s = 0; s < n; s += 512) {
		memcpy(bad, good, n);
		memset(bad + s, 0, s + 512 <= n ? 512 : n - s);
		write_file(path, bad, n);
		ck_assert_msg(verify_chainfile(path, why) != 0, "sector at %zu zeroed verified", s);
		sectors++;
	}
	report("chain file: %zu cuts refused; %zu changed bytes refused (%zu more in validator "
	       "names or API addresses, which no hash covers); %zu zeroed sectors refused", cuts,
	       flips - metadata, metadata, sectors);
	free(bad);
	free(good);
}
END_TEST

Suite *torn_suite(void)
{
	Suite *s = suite_create("torn");
	TCase *tc = tcase_create("torn");

	tcase_add_unchecked_fixture(tc, base_setup, base_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, signer_state_cut_at_every_byte_is_refused);
	tcase_add_test(tc, signer_state_damaged_anywhere_is_refused);
	tcase_add_test(tc, signer_state_version_1_is_read_and_upgraded);
	tcase_add_test(tc, signer_state_repair_never_signs_twice);
	tcase_add_test(tc, ledger_refuses_a_damaged_signer_state_and_repairs_on_request);
	tcase_add_test(tc, ledger_refuses_a_signer_state_ahead_of_its_store);
	tcase_add_test(tc, ledger_refuses_a_lost_signer_state_of_a_validator_that_signed);
	tcase_add_test(tc, ledger_starts_a_new_validator_without_signer_state);
	tcase_add_test(tc, store_wal_cut_anywhere_opens_at_a_consistent_height);
	tcase_add_test(tc, store_database_cut_short_is_refused);
	tcase_add_test(tc, chainfile_cut_or_damaged_is_refused);
	suite_add_tcase(s, tc);
	return s;
}
