/* Who may close a lease with which reason, and when: every combination of
 * signer (tenant, provider, stranger), reason, lease state (opened,
 * running), time (before or after the term's end) and escrow (covering an
 * interval or not), run through three paths that must agree with each other
 * and with the rule as docs/FORMATS.md states it:
 *   - a node's admission (ledger_submit: the mempool's check state),
 *   - a node applying a block that holds the close (ledger_apply_block),
 *   - the auditor replaying that block (audit_run).
 * The chains are certified by their validator's key (tests/support/
 * chainbuild.h), so a refusal can only come from the rule. */
#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/ledger/ledger.h"
#include "lib/chain/audit.h"
#include "lib/errors.h"
#include "tests/support/cbpaths.h"
#include "tests/support/ledgertest.h"

#define G 1700000000000000000ull
#define BT(h) (G + (uint64_t)(h) * 10 * CB_SEC)

struct combo {
	enum cb_who who;
	uint8_t reason;
	bool started;        /* LEASE_START committed */
	bool late;           /* the close's block is after the term's end */
	bool low_escrow;     /* the escrow cannot pay one more interval */
};

/* The rule, written from the documents and not from the code. */
static int expected(const struct combo *c)
{
	if (c->who == CB_STRANGER)
		return TALLY_E_UNAUTHORIZED;
	if (c->who == CB_TENANT)
		return c->reason == CLOSE_TENANT ? 0 : TALLY_E_UNAUTHORIZED;
	switch (c->reason) {
	case CLOSE_TENANT:
		return TALLY_E_UNAUTHORIZED;
	case CLOSE_TERM_ENDED:
		return c->started && c->late ? 0 : TALLY_E_STATE;
	case CLOSE_EXHAUSTED:
		return c->started && c->low_escrow ? 0 : TALLY_E_STATE;
	case CLOSE_PROVIDER_FAILED:
		return 0;
	case CLOSE_REJECTED:
		return c->started ? TALLY_E_STATE : 0;
	}
	return -1;
}

/* The chain up to the close: the lease opens (deposit 40 when the escrow
 * must run low, one interval costing at most 22), starts, and bills one
 * record of 12 (escrow left 28 or 999988; with a low escrow a second record
 * leaves 16). Returns the close's block time. */
static uint64_t build(struct chainbuild *cb, const struct combo *c, uint8_t lease[HASH_LEN])
{
	uint8_t prev[HASH_LEN];
	uint64_t started = BT(2);
	struct tx t;

	cb_init(cb, "close-rules", G);
	memset(&t, 0, sizeof(t));
	t.kind = TX_LEASE_OPEN;
	cb_contract(cb, &t.u.open, BT(1));
	if (c->low_escrow)
		t.u.open.deposit = 40;
	cb_tx(cb, &t, CB_TENANT, false, lease);
	cb_seal(cb, BT(1), false, NULL, NULL);
	if (c->started) {
		memset(&t, 0, sizeof(t));
		t.kind = TX_LEASE_START;
		memcpy(t.u.start.lease_id, lease, LEASE_ID_LEN);
		cb_tx(cb, &t, CB_VALIDATOR, false, NULL);
		cb_seal(cb, started, false, NULL, NULL);
		cb_usage(&t, lease, 0, NULL, started, CB_SEC, CB_SEC / 2);
		cb_tx(cb, &t, CB_VALIDATOR, false, prev);
		if (c->low_escrow) {
			cb_usage(&t, lease, 1, prev, started + CB_SEC, CB_SEC, CB_SEC / 2);
			cb_tx(cb, &t, CB_VALIDATOR, false, NULL);
		}
		cb_seal(cb, BT(3), false, NULL, NULL);
	}
	return c->late ? started + 3600 * CB_SEC + 5 * CB_SEC : BT(4);
}

static void close_tx(struct chainbuild *cb, const struct combo *c, const uint8_t lease[HASH_LEN])
{
	struct tx t;

	memset(&t, 0, sizeof(t));
	t.kind = TX_LEASE_CLOSE;
	memcpy(t.u.close.lease_id, lease, LEASE_ID_LEN);
	t.u.close.reason = c->reason;
	cb_tx(cb, &t, c->who, false, NULL);
}

/* The case's directory, made and removed in the runner's process: a test
 * whose assertion fails ends before its own clean-up, and leaves nothing. */
static char base[40];

static void case_begin(void)
{
	lt_case_dir(base, sizeof(base), "close");
}

static void case_end(void)
{
	cb_rm_tree(base);
}

static void quiet(void *ctx, const char *line)
{
	(void)ctx, (void)line;
}

static void run_combo(const struct combo *c)
{
	char dir[80], why[WHY_MAX] = "";
	struct chainbuild *cb = calloc(1, sizeof(*cb));
	uint8_t lease[HASH_LEN], hash[HASH_LEN];
	struct ledger_config cfg = { .log = quiet };
	struct ledger *l;
	uint64_t when;
	int want = expected(c), admitted, applied, audited;
	const struct cb_pending *p;

	ck_assert_ptr_nonnull(cb);
	lt_test_dir(dir, sizeof(dir), base);
	when = build(cb, c, lease);
	close_tx(cb, c, lease);
	p = &cb->pending[0];

	cfg.data_dir = dir;
	cfg.genesis = &cb->genesis;
	ck_assert_msg(ledger_open(&l, &cfg, why) == 0, "%s", why);
	ck_assert_msg(cb_apply_blocks(l, cb, 0, cb->nblocks - 1, why) == 0, "%s", why);
	/* Admission judges at the node's clock; the term-ended case needs the
	 * block's time, so admission is compared only where time does not
	 * matter. */
	admitted = ledger_submit(l, p->bytes, p->len, hash, why);
	cb_seal(cb, when, true, NULL, NULL);
	applied = cb_apply_blocks(l, cb, cb->nblocks - 1, cb->nblocks - 1, why);
	ledger_close(l);
	cb_rm_tree(dir);
	audited = cb_audit_code(cb, lease, cb->height);

	ck_assert_msg(applied == want,
		      "who %d reason %u started %d late %d low %d: the node applied it with %d"
		      " (%s), the rule says %d", c->who, c->reason, c->started, c->late,
		      c->low_escrow, applied, why, want);
	ck_assert_msg(audited == want,
		      "who %d reason %u started %d late %d low %d: the auditor says %d, the"
		      " rule %d", c->who, c->reason, c->started, c->late, c->low_escrow, audited,
		      want);
	if (!(c->reason == CLOSE_TERM_ENDED && c->who == CB_VALIDATOR && c->started))
		ck_assert_msg(admitted == want,
			      "who %d reason %u started %d late %d low %d: admission says %d,"
			      " the rule %d", c->who, c->reason, c->started, c->late,
			      c->low_escrow, admitted, want);
	cb_free(cb);
	free(cb);
}

START_TEST(every_signer_reason_state_and_time)
{
	static const enum cb_who who[] = { CB_TENANT, CB_VALIDATOR, CB_STRANGER };
	size_t n = 0;

	for (size_t w = 0; w < 3; w++)
		for (uint8_t reason = CLOSE_TERM_ENDED; reason <= CLOSE_REJECTED; reason++)
			for (int mask = 0; mask < 8; mask++) {
				struct combo c = { who[w], reason, mask & 1, mask & 2, mask & 4 };

				run_combo(&c);
				n++;
			}
	ck_assert_uint_eq(n, 3 * 5 * 8);
}
END_TEST

/* The two examples the auditor used to accept. */
START_TEST(tenant_provider_failed_and_early_term_end)
{
	struct combo a = { CB_TENANT, CLOSE_PROVIDER_FAILED, true, false, false };
	struct combo b = { CB_VALIDATOR, CLOSE_TERM_ENDED, true, false, false };

	ck_assert_int_eq(expected(&a), TALLY_E_UNAUTHORIZED);
	ck_assert_int_eq(expected(&b), TALLY_E_STATE);
	run_combo(&a);
	run_combo(&b);
}
END_TEST

Suite *close_rules_suite(void)
{
	Suite *s = suite_create("close_rules");
	TCase *tc = tcase_create("close_rules");

	tcase_add_unchecked_fixture(tc, case_begin, case_end);

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, tenant_provider_failed_and_early_term_end);
	tcase_add_test(tc, every_signer_reason_state_and_time);
	suite_add_tcase(s, tc);
	return s;
}
