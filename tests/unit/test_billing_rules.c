/* The billing rules as a provider trying to overcharge or a tenant trying to
 * underpay meets them (docs/FORMATS.md sections 3, 10.3..10.6 and 11).
 *
 * attacks: each case builds a real signed chain (tests/support/
 * chainbuild.h) up to a lease in some state, then one more block holding
 * the attack, and runs it through every path that judges a block:
 *   - a node's admission (ledger_submit), where the rule does not depend
 *     on the clock;
 *   - a node applying the block (ledger_apply_block);
 *   - the auditor replaying the chain from genesis (every rule);
 *   - the auditor from a checkpoint, which lacks the state and replays the
 *     lease through the lease rules alone.
 * The expected answer is written from the documents, not from the code. A
 * case the rules accept must leave the same lease on the node and in both
 * audits, byte for byte, and the money where it was (balances plus escrow).
 *
 * arithmetic: the rules of section 11 and the close rules at their edges:
 * which way each rounding falls, the biggest contract that validates, the
 * conservation of money over long random runs, and the grace of a close. */
#include <check.h>
#include <inttypes.h>
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
#define TERM (3600 * CB_SEC)

/* --- attacks through every path -------------------------------------------- */

/* Where the chain stands when the attack block is built. */
struct scene {
	struct chainbuild *cb;
	uint8_t lease[LEASE_ID_LEN];
	uint64_t started;            /* LEASE_START's block time; 0 when not started */
	uint64_t next_seq, last_end;
	uint8_t prev[HASH_LEN];      /* the last record's hash */
	uint64_t rec0_nonce;         /* the provider's nonce on record 0 */
	uint64_t when;               /* the attack block's time (BT(5) unless set) */
};

struct attack {
	const char *name;
	int want;                    /* the rule's answer, from the documents */
	bool started;                /* LEASE_START committed before the attack */
	bool record0;                /* and record 0 (1 s, half a vCPU: 12) */
	uint64_t deposit;            /* 0: cb_contract's 1e6 */
	bool clocked;                /* the rule reads the block's time: no admission */
	int cp_want;                 /* the checkpoint auditor's answer ... */
	bool cp_differs;             /* ... when it cannot be the chain's */
	void (*build)(struct scene *s);
	/* A case the rules accept: what the lease must be after it. */
	void (*after)(const struct scene *s, const struct lease *l);
	bool restart;                /* the node restarts before the attack */
};

/* The record that correctly follows the last one, of span ns using cpu ns. */
static void next_rec(const struct scene *s, struct tx *t, uint64_t span, uint64_t cpu)
{
	cb_usage(t, s->lease, s->next_seq, s->next_seq ? s->prev : NULL, s->last_end, span, cpu);
}

static void send(struct scene *s, struct tx *t, enum cb_who who)
{
	cb_tx(s->cb, t, who, false, NULL);
}

static void send_close(struct scene *s, enum cb_who who, uint8_t reason)
{
	struct tx t;

	memset(&t, 0, sizeof(t));
	t.kind = TX_LEASE_CLOSE;
	memcpy(t.u.close.lease_id, s->lease, LEASE_ID_LEN);
	t.u.close.reason = reason;
	send(s, &t, who);
}

static void never_started(struct scene *s)
{
	struct tx t;

	cb_usage(&t, s->lease, 0, NULL, BT(3), CB_SEC, 0);
	send(s, &t, CB_VALIDATOR);
}

static void seq0_before_start(struct scene *s)
{
	struct tx t;

	next_rec(s, &t, CB_SEC, 0);
	t.u.usage.start_ns -= 1;
	send(s, &t, CB_VALIDATOR);
}

static void seq0_after_start(struct scene *s)
{
	struct tx t;

	next_rec(s, &t, CB_SEC, 0);
	t.u.usage.start_ns += 1;
	send(s, &t, CB_VALIDATOR);
}

static void overlap(struct scene *s)
{
	struct tx t;

	next_rec(s, &t, CB_SEC, 0);
	t.u.usage.start_ns -= 1;
	send(s, &t, CB_VALIDATOR);
}

static void gap(struct scene *s)
{
	struct tx t;

	next_rec(s, &t, CB_SEC, 0);
	t.u.usage.start_ns += 1;
	t.u.usage.end_ns += 1;
	send(s, &t, CB_VALIDATOR);
}

static void backwards(struct scene *s)
{
	struct tx t;

	next_rec(s, &t, CB_SEC, 0);
	t.u.usage.end_ns = t.u.usage.start_ns - 1;
	send(s, &t, CB_VALIDATOR);
}

static void zero_span(struct scene *s)
{
	struct tx t;

	next_rec(s, &t, 0, 0);
	send(s, &t, CB_VALIDATOR);
}

/* Record 0's interval billed again as record 1. */
static void same_interval_again(struct scene *s)
{
	struct tx t;

	next_rec(s, &t, CB_SEC, CB_SEC / 2);
	t.u.usage.start_ns = s->started;
	t.u.usage.end_ns = s->started + CB_SEC;
	send(s, &t, CB_VALIDATOR);
}

/* Record 0 again under a new nonce (a restarted node resending it). */
static void seq0_again(struct scene *s)
{
	struct tx t;

	cb_usage(&t, s->lease, 0, NULL, s->started, CB_SEC, CB_SEC / 2);
	send(s, &t, CB_VALIDATOR);
}

/* Record 0's very transaction again. */
static void same_tx_again(struct scene *s)
{
	struct tx t;

	cb_usage(&t, s->lease, 0, NULL, s->started, CB_SEC, CB_SEC / 2);
	t.nonce = s->rec0_nonce;
	cb_tx(s->cb, &t, CB_VALIDATOR, true, NULL);
}

static void seq_skipped(struct scene *s)
{
	struct tx t;

	next_rec(s, &t, CB_SEC, 0);
	t.u.usage.seq++;
	send(s, &t, CB_VALIDATOR);
}

static void wrong_prev_hash(struct scene *s)
{
	struct tx t;

	next_rec(s, &t, CB_SEC, 0);
	t.u.usage.prev_hash[0] ^= 1;
	send(s, &t, CB_VALIDATOR);
}

/* Two records for one interval in one block: the second is refused. */
static void two_records_one_interval(struct scene *s)
{
	struct tx t;

	next_rec(s, &t, CB_SEC, 0);
	send(s, &t, CB_VALIDATOR);
	next_rec(s, &t, CB_SEC, CB_SEC);
	send(s, &t, CB_VALIDATOR);
}

static void past_term(struct scene *s)
{
	struct tx t;

	s->when = s->started + TERM + 10 * CB_SEC;
	next_rec(s, &t, s->started + TERM + 1 - s->last_end, 0);
	send(s, &t, CB_VALIDATOR);
}

static void up_to_term(struct scene *s)
{
	struct tx t;

	s->when = s->started + TERM + 10 * CB_SEC;
	next_rec(s, &t, s->started + TERM - s->last_end, 0);
	send(s, &t, CB_VALIDATOR);
}

static void after_term(const struct scene *s, const struct lease *l)
{
	/* 3599 s of 512 MiB at 5 per GiB-second: 8997.5, and record 0's 12.5:
	 * the halves carried (section 11), the lease pays 9010 exactly. */
	ck_assert_uint_eq(l->state, LEASE_RUNNING);
	ck_assert_uint_eq(l->last_end_ns, s->started + TERM);
	ck_assert_uint_eq(l->charged, 12 + 8998);
}

static void ahead_over(struct scene *s)
{
	struct tx t;

	next_rec(s, &t, s->when + 5 * CB_SEC + 1 - s->last_end, 0);
	send(s, &t, CB_VALIDATOR);
}

static void ahead_at(struct scene *s)
{
	struct tx t;

	next_rec(s, &t, s->when + 5 * CB_SEC - s->last_end, 0);
	send(s, &t, CB_VALIDATOR);
}

/* The tenant closes a running lease at BT(5); the attack is in BT(6). */
static void tenant_closes(struct scene *s)
{
	send_close(s, CB_TENANT, CLOSE_TENANT);
	cb_seal(s->cb, BT(5), false, NULL, NULL);
	s->when = BT(6);
}

static void past_closing(struct scene *s)
{
	struct tx t;

	tenant_closes(s);
	next_rec(s, &t, BT(5) + 1 - s->last_end, 0);
	send(s, &t, CB_VALIDATOR);
}

static void up_to_closing(struct scene *s)
{
	struct tx t;

	tenant_closes(s);
	next_rec(s, &t, BT(5) - s->last_end, 0);
	send(s, &t, CB_VALIDATOR);
}

static void after_closing(const struct scene *s, const struct lease *l)
{
	/* Record 1: BT(4) + 1 s .. BT(5), 19 s of memory, 47.5, with record 0's
	 * half carried: 48. */
	ck_assert_uint_eq(l->state, LEASE_CLOSED);
	ck_assert_uint_eq(l->close_reason, CLOSE_TENANT);
	ck_assert_uint_eq(l->closing_ns, BT(5));
	ck_assert_uint_eq(l->last_end_ns, BT(5));
	ck_assert_uint_eq(l->charged, 12 + 48);
	ck_assert_uint_eq(l->escrow, 0);
	(void)s;
}

/* The tenant's close twice: the second, before the grace, is refused. */
static void tenant_closes_again_early(struct scene *s)
{
	tenant_closes(s);
	s->when = BT(5) + 60 * CB_SEC - 1;     /* grace: max(2 x 1 s, 60 s) */
	send_close(s, CB_TENANT, CLOSE_TENANT);
}

static void tenant_closes_again_late(struct scene *s)
{
	tenant_closes(s);
	s->when = BT(5) + 60 * CB_SEC;
	send_close(s, CB_TENANT, CLOSE_TENANT);
}

static void after_grace(const struct scene *s, const struct lease *l)
{
	/* The time since record 0 is not billed: the rest goes back. */
	ck_assert_uint_eq(l->state, LEASE_CLOSED);
	ck_assert_uint_eq(l->close_reason, CLOSE_TENANT);
	ck_assert_uint_eq(l->charged, 12);
	ck_assert_uint_eq(l->last_end_ns, s->started + CB_SEC);
}

static void provider_fails(struct scene *s)
{
	send_close(s, CB_VALIDATOR, CLOSE_PROVIDER_FAILED);
	cb_seal(s->cb, BT(5), false, NULL, NULL);
	s->when = BT(6);
}

static void record_after_close(struct scene *s)
{
	struct tx t;

	provider_fails(s);
	next_rec(s, &t, CB_SEC, 0);
	send(s, &t, CB_VALIDATOR);
}

static void closed_twice(struct scene *s)
{
	provider_fails(s);
	send_close(s, CB_TENANT, CLOSE_TENANT);
}

/* A record and the close in one block, the record first: both count. */
static void record_then_provider_close(struct scene *s)
{
	struct tx t;

	next_rec(s, &t, CB_SEC, CB_SEC);
	send(s, &t, CB_VALIDATOR);
	send_close(s, CB_VALIDATOR, CLOSE_GUEST_STOPPED);
}

static void after_record_then_close(const struct scene *s, const struct lease *l)
{
	ck_assert_uint_eq(l->state, LEASE_CLOSED);
	ck_assert_uint_eq(l->close_reason, CLOSE_GUEST_STOPPED);
	/* 20 + 2.5, and record 0's half carried. */
	ck_assert_uint_eq(l->charged, 12 + 23);
	ck_assert_uint_eq(l->next_seq, 2);
	(void)s;
}

static void cpu_over(struct scene *s)
{
	struct tx t;

	next_rec(s, &t, CB_SEC, CB_SEC + 1);
	send(s, &t, CB_VALIDATOR);
}

static void cpu_at(struct scene *s)
{
	struct tx t;

	next_rec(s, &t, CB_SEC, CB_SEC);
	send(s, &t, CB_VALIDATOR);
}

static void delay_over(struct scene *s)
{
	struct tx t;

	next_rec(s, &t, CB_SEC, 0);
	t.u.usage.run_delay_ns = CB_SEC + 1;
	send(s, &t, CB_VALIDATOR);
}

/* All of the span waiting: a breach, 10% back to the tenant. */
static void delay_at(struct scene *s)
{
	struct tx t;

	next_rec(s, &t, CB_SEC, CB_SEC);
	t.u.usage.run_delay_ns = CB_SEC;
	send(s, &t, CB_VALIDATOR);
}

static void after_delay(const struct scene *s, const struct lease *l)
{
	/* 20 + 2.5 + record 0's half carried = 23 gross, credit floor(2.3) = 2. */
	ck_assert_uint_eq(l->charged, 12 + 21);
	ck_assert_uint_eq(l->sla_credits, 2);
	(void)s;
}

static void gpu_without_gpu(struct scene *s)
{
	struct tx t;

	next_rec(s, &t, CB_SEC, 0);
	t.u.usage.gpu_ns = 1;
	send(s, &t, CB_VALIDATOR);
}

static void gpu_meter_without_gpu(struct scene *s)
{
	struct tx t;

	next_rec(s, &t, CB_SEC, 0);
	t.u.usage.gpu_source = GPU_SOURCE_KMOD;
	send(s, &t, CB_VALIDATOR);
}

static void mem_more(struct scene *s)
{
	struct tx t;

	next_rec(s, &t, CB_SEC, 0);
	t.u.usage.mem_mib = 513;
	send(s, &t, CB_VALIDATOR);
}

static void mem_less(struct scene *s)
{
	struct tx t;

	next_rec(s, &t, CB_SEC, 0);
	t.u.usage.mem_mib = 256;
	send(s, &t, CB_VALIDATOR);
}

static void mem_paused(struct scene *s)
{
	struct tx t;

	next_rec(s, &t, CB_SEC, 0);
	t.u.usage.mem_mib = 0;
	send(s, &t, CB_VALIDATOR);
}

static void after_paused(const struct scene *s, const struct lease *l)
{
	ck_assert_uint_eq(l->charged, 12);
	ck_assert_uint_eq(l->next_seq, 2);
	(void)s;
}

static void usage_by_tenant(struct scene *s)
{
	struct tx t;

	next_rec(s, &t, CB_SEC, 0);
	send(s, &t, CB_TENANT);
}

static void usage_by_stranger(struct scene *s)
{
	struct tx t;

	next_rec(s, &t, CB_SEC, 0);
	send(s, &t, CB_STRANGER);
}

static void send_start(struct scene *s)
{
	struct tx t;

	memset(&t, 0, sizeof(t));
	t.kind = TX_LEASE_START;
	memcpy(t.u.start.lease_id, s->lease, LEASE_ID_LEN);
	send(s, &t, CB_VALIDATOR);
}

static void start_twice(struct scene *s)
{
	send_start(s);
}

static void start_by_tenant(struct scene *s)
{
	struct tx t;

	memset(&t, 0, sizeof(t));
	t.kind = TX_LEASE_START;
	memcpy(t.u.start.lease_id, s->lease, LEASE_ID_LEN);
	send(s, &t, CB_TENANT);
}

/* Deposit 30: record 0 leaves 18; ten seconds at full CPU cost 225. */
static void exhaust_mid_record(struct scene *s)
{
	struct tx t;

	next_rec(s, &t, 10 * CB_SEC, 10 * CB_SEC);
	send(s, &t, CB_VALIDATOR);
}

static void after_exhaust(const struct scene *s, const struct lease *l)
{
	ck_assert_uint_eq(l->state, LEASE_CLOSED);
	ck_assert_uint_eq(l->close_reason, CLOSE_EXHAUSTED);
	ck_assert_uint_eq(l->charged, 30);
	ck_assert_uint_eq(l->escrow, 0);
	ck_assert_uint_eq(l->cpu_ns, CB_SEC / 2 + 10 * CB_SEC);   /* metered in full */
	(void)s;
}

/* A record that costs exactly the escrow left: paid, the lease runs on. */
static void exhaust_exactly(struct scene *s)
{
	struct tx t;

	/* 18 left: 0.65 s of CPU (13) and 2 s of memory (5). */
	next_rec(s, &t, 2 * CB_SEC, 650000000);
	send(s, &t, CB_VALIDATOR);
}

static void after_exactly(const struct scene *s, const struct lease *l)
{
	ck_assert_uint_eq(l->state, LEASE_RUNNING);
	ck_assert_uint_eq(l->charged, 30);
	ck_assert_uint_eq(l->escrow, 0);
	(void)s;
}

/* The provider calls a lease short that still covers an interval. */
static void exhausted_close_not_short(struct scene *s)
{
	send_close(s, CB_VALIDATOR, CLOSE_EXHAUSTED);
}

/* 18 left, below one interval's 22: the provider may close; 18 go back. */
static void exhausted_close_short(struct scene *s)
{
	send_close(s, CB_VALIDATOR, CLOSE_EXHAUSTED);
}

static void after_short_close(const struct scene *s, const struct lease *l)
{
	ck_assert_uint_eq(l->state, LEASE_CLOSED);
	ck_assert_uint_eq(l->close_reason, CLOSE_EXHAUSTED);
	ck_assert_uint_eq(l->charged, 12);
	(void)s;
}

static const struct attack attacks[] = {
	{ "usage of a lease never started", TALLY_E_STATE, false, false, 0, false, 0, false,
	  never_started, NULL, false },
	{ "record 0 starting before the lease", TALLY_E_USAGECHAIN, true, false, 0, false, 0,
	  false, seq0_before_start, NULL, false },
	{ "record 0 starting after the lease", TALLY_E_USAGECHAIN, true, false, 0, false, 0,
	  false, seq0_after_start, NULL, false },
	{ "overlapping records", TALLY_E_USAGECHAIN, true, true, 0, false, 0, false, overlap,
	  NULL, false },
	{ "a gap between records", TALLY_E_USAGECHAIN, true, true, 0, false, 0, false, gap,
	  NULL, false },
	{ "a record ending before it starts", TALLY_E_RANGE, true, true, 0, false, 0, false,
	  backwards, NULL, false },
	{ "a record of no time", TALLY_E_RANGE, true, true, 0, false, 0, false, zero_span,
	  NULL, false },
	{ "record 0's interval billed again as record 1", TALLY_E_USAGECHAIN, true, true, 0,
	  false, 0, false, same_interval_again, NULL, false },
	{ "record 0 resent under a new nonce", TALLY_E_USAGECHAIN, true, true, 0, false, 0,
	  false, seq0_again, NULL, false },
	/* The checkpoint auditor has no nonces: it names the duplicate. */
	{ "record 0's transaction again", TALLY_E_REPLAY, true, true, 0, false,
	  TALLY_E_USAGECHAIN, true, same_tx_again, NULL, false },
	{ "record 0 resent after a node restart", TALLY_E_USAGECHAIN, true, true, 0, false, 0,
	  false, seq0_again, NULL, true },
	{ "record 0's transaction again after a node restart", TALLY_E_REPLAY, true, true, 0,
	  false, TALLY_E_USAGECHAIN, true, same_tx_again, NULL, true },
	{ "record 0's interval as record 1 after a node restart", TALLY_E_USAGECHAIN, true,
	  true, 0, false, 0, false, same_interval_again, NULL, true },
	{ "a skipped seq", TALLY_E_USAGECHAIN, true, true, 0, false, 0, false, seq_skipped,
	  NULL, false },
	{ "a wrong prev_hash", TALLY_E_USAGECHAIN, true, true, 0, false, 0, false,
	  wrong_prev_hash, NULL, false },
	{ "two records of one interval in a block", TALLY_E_USAGECHAIN, true, true, 0, false,
	  0, false, two_records_one_interval, NULL, false },
	{ "a record past the term", TALLY_E_RANGE, true, true, 0, true, 0, false, past_term,
	  NULL, false },
	{ "a record up to the term", 0, true, true, 0, true, 0, false, up_to_term,
	  after_term, false },
	{ "a record ending 5 s + 1 ns after its block", TALLY_E_RANGE, true, true, 0, true, 0,
	  false, ahead_over, NULL, false },
	{ "a record ending 5 s after its block", 0, true, true, 0, true, 0, false, ahead_at,
	  NULL, false },
	{ "a record past the tenant's close", TALLY_E_RANGE, true, true, 0, true, 0, false,
	  past_closing, NULL, false },
	{ "the last record up to the tenant's close", 0, true, true, 0, true, 0, false,
	  up_to_closing, after_closing, false },
	{ "the tenant's second close within the grace", TALLY_E_STATE, true, true, 0, true, 0,
	  false, tenant_closes_again_early, NULL, false },
	{ "the tenant's second close after the grace", 0, true, true, 0, true, 0, false,
	  tenant_closes_again_late, after_grace, false },
	{ "a record after the close", TALLY_E_STATE, true, true, 0, false, 0, false,
	  record_after_close, NULL, false },
	{ "a lease closed twice", TALLY_E_STATE, true, true, 0, false, 0, false, closed_twice,
	  NULL, false },
	{ "a record, then the provider's close, in one block", 0, true, true, 0, false, 0,
	  false, record_then_provider_close, after_record_then_close, false },
	{ "CPU beyond vCPUs x span", TALLY_E_RANGE, true, true, 0, false, 0, false, cpu_over,
	  NULL, false },
	{ "CPU of every vCPU the whole span", 0, true, true, 0, false, 0, false, cpu_at, NULL, false },
	{ "run delay beyond vCPUs x span", TALLY_E_RANGE, true, true, 0, false, 0, false,
	  delay_over, NULL, false },
	{ "run delay the whole span", 0, true, true, 0, false, 0, false, delay_at, after_delay, false },
	{ "GPU time on a lease without GPU", TALLY_E_RANGE, true, true, 0, false, 0, false,
	  gpu_without_gpu, NULL, false },
	{ "a GPU meter on a lease without GPU", TALLY_E_RANGE, true, true, 0, false, 0, false,
	  gpu_meter_without_gpu, NULL, false },
	{ "more memory than the contract's", TALLY_E_RANGE, true, true, 0, false, 0, false,
	  mem_more, NULL, false },
	{ "less memory than the contract's, not 0", TALLY_E_RANGE, true, true, 0, false, 0,
	  false, mem_less, NULL, false },
	{ "no memory (a paused span)", 0, true, true, 0, false, 0, false, mem_paused,
	  after_paused, false },
	{ "a record signed by the tenant", TALLY_E_UNAUTHORIZED, true, true, 0, false, 0, false,
	  usage_by_tenant, NULL, false },
	{ "a record signed by a stranger", TALLY_E_UNAUTHORIZED, true, true, 0, false, 0, false,
	  usage_by_stranger, NULL, false },
	{ "a second LEASE_START", TALLY_E_STATE, true, false, 0, false, 0, false, start_twice,
	  NULL, false },
	{ "a LEASE_START by the tenant", TALLY_E_UNAUTHORIZED, false, false, 0, false, 0, false,
	  start_by_tenant, NULL, false },
	{ "a record costing more than the escrow", 0, true, true, 30, false, 0, false,
	  exhaust_mid_record, after_exhaust, false },
	{ "a record costing exactly the escrow", 0, true, true, 30, false, 0, false,
	  exhaust_exactly, after_exactly, false },
	{ "escrow-exhausted while an interval is covered", TALLY_E_STATE, true, true, 0, false,
	  0, false, exhausted_close_not_short, NULL, false },
	{ "escrow-exhausted below an interval", 0, true, true, 30, false, 0, false,
	  exhausted_close_short, after_short_close, false },
};

/* The case's directory, made and removed in the runner's process: a test
 * whose assertion fails ends before its own clean-up, and leaves nothing. */
static char base[40];

static void case_begin(void)
{
	lt_case_dir(base, sizeof(base), "billing");
}

static void case_end(void)
{
	cb_rm_tree(base);
}

static void quiet(void *ctx, const char *line)
{
	(void)ctx, (void)line;
}

/* The chain up to the attack. Block 1 holds only the provider's
 * announcement, so that a checkpoint at height 1 precedes the lease. */
static void build_scene(struct chainbuild *cb, const struct attack *a, struct scene *s)
{
	struct tx t;

	memset(s, 0, sizeof(*s));
	s->cb = cb;
	s->when = BT(5);
	cb_init(cb, "billing-rules", G);
	cb_seal(cb, BT(1), false, NULL, NULL);
	memset(&t, 0, sizeof(t));
	t.kind = TX_LEASE_OPEN;
	cb_contract(cb, &t.u.open, BT(2));
	if (a->deposit)
		t.u.open.deposit = a->deposit;
	cb_tx(cb, &t, CB_TENANT, false, s->lease);
	cb_seal(cb, BT(2), false, NULL, NULL);
	if (!a->started)
		return;
	send_start(s);
	cb_seal(cb, BT(3), false, NULL, NULL);
	s->started = s->last_end = BT(3);
	if (!a->record0)
		return;
	s->rec0_nonce = cb->nonce[CB_VALIDATOR];
	cb_usage(&t, s->lease, 0, NULL, s->started, CB_SEC, CB_SEC / 2);
	cb_tx(cb, &t, CB_VALIDATOR, false, s->prev);
	cb_seal(cb, BT(4), false, NULL, NULL);
	s->next_seq = 1;
	s->last_end = s->started + CB_SEC;
}

/* The auditor's first error at height h (0 for none, -2 when it fails
 * elsewhere) and the lease it replayed; from genesis or from the checkpoint
 * at block 1. */
static int audit_at(const struct chainbuild *cb, const uint8_t lease[LEASE_ID_LEN],
		    uint64_t h, bool from_checkpoint, struct lease *out)
{
	struct audit_block blocks[16];
	struct chain_checkpoint cp;
	uint8_t pinned[HASH_LEN];
	struct audit_input in;
	struct audit_result res;
	size_t first = from_checkpoint ? 1 : 0;
	char why[WHY_MAX];
	int code = 0;

	ck_assert_uint_le(cb->nblocks, 16);
	memset(&in, 0, sizeof(in));
	memset(blocks, 0, sizeof(blocks));
	for (size_t i = first; i < cb->nblocks; i++) {
		blocks[i - first].block = &cb->blocks[i];
		blocks[i - first].cert = &cb->certs[i];
	}
	if (from_checkpoint) {
		memset(&cp, 0, sizeof(cp));
		cp.header = cb->blocks[0].header;
		cp.cert = cb->certs[0];
		cp.vals = cb->genesis.validators;
		merkle_frontier_init(&cp.usage);
		block_id(&cp.header, pinned);
		in.checkpoint = &cp;
		in.pinned_id = pinned;
	}
	in.genesis = &cb->genesis;
	in.blocks = blocks;
	in.nblocks = cb->nblocks - first;
	memcpy(in.lease_id, lease, LEASE_ID_LEN);
	ck_assert_msg(audit_run(&in, &res, why) == 0, "%s", why);
	for (size_t i = 0; i < res.nerrors && !code; i++)
		if (res.errors[i].height == h)
			code = res.errors[i].code;
	if (!res.verified && !code) {
		for (size_t i = 0; i < res.nerrors; i++)
			fprintf(stderr, "audit: %s\n", res.errors[i].msg);
		code = -2;
	}
	*out = res.lease;
	audit_result_free(&res);
	return code;
}

/* Balances of the three keys plus the lease's escrow. */
static uint64_t money(struct ledger *l, const struct chainbuild *cb, const uint8_t lease[])
{
	struct account acc;
	struct lease ls;
	uint64_t sum = 0;

	for (int k = 0; k < CB_NKEYS; k++) {
		ck_assert_int_eq(ledger_account(l, cb->key[k].pub, &acc), 0);
		sum += acc.balance;
	}
	ck_assert_int_eq(ledger_lease(l, lease, &ls), 0);
	return sum + ls.escrow;
}

START_TEST(attack)
{
	const struct attack *a = &attacks[_i];
	char dir[80], why[WHY_MAX] = "";
	struct chainbuild *cb = calloc(1, sizeof(*cb));
	struct ledger_config cfg = { .log = quiet };
	struct lease node, full, cp;
	uint8_t hash[HASH_LEN];
	struct ledger *l;
	struct scene s;
	uint64_t before, after;
	int applied, audited, cp_audited, admitted = 0;

	ck_assert_ptr_nonnull(cb);
	lt_test_dir(dir, sizeof(dir), base);
	build_scene(cb, a, &s);
	a->build(&s);
	cfg.data_dir = dir;
	cfg.genesis = &cb->genesis;
	ck_assert_msg(ledger_open(&l, &cfg, why) == 0, "%s", why);
	ck_assert_msg(cb_apply_blocks(l, cb, 0, cb->nblocks - 1, why) == 0, "%s: %s", a->name,
		      why);
	if (a->restart) {
		ledger_close(l);
		ck_assert_msg(ledger_open(&l, &cfg, why) == 0, "%s", why);
	}
	before = money(l, cb, s.lease);
	/* Each transaction before the last is admitted; the last is judged. */
	for (size_t i = 0; i < cb->npending && !admitted; i++)
		admitted = ledger_submit(l, cb->pending[i].bytes, cb->pending[i].len, hash, why);
	cb_seal(cb, s.when, true, NULL, NULL);
	applied = cb_apply_blocks(l, cb, cb->nblocks - 1, cb->nblocks - 1, why);
	ck_assert_int_eq(ledger_lease(l, s.lease, &node), 0);
	after = money(l, cb, s.lease);
	ledger_close(l);
	cb_rm_tree(dir);
	audited = audit_at(cb, s.lease, cb->height, false, &full);
	cp_audited = audit_at(cb, s.lease, cb->height, true, &cp);

	ck_assert_msg(applied == a->want, "%s: the node applied it with %d (%s), the rule says %d",
		      a->name, applied, why, a->want);
	ck_assert_msg(audited == a->want, "%s: the auditor says %d, the rule %d", a->name,
		      audited, a->want);
	ck_assert_msg(cp_audited == (a->cp_differs ? a->cp_want : a->want),
		      "%s: the auditor from a checkpoint says %d, the rule %d", a->name,
		      cp_audited, a->cp_differs ? a->cp_want : a->want);
	if (!a->clocked)
		ck_assert_msg(admitted == a->want, "%s: admission says %d, the rule %d", a->name,
			      admitted, a->want);
	ck_assert_msg(before == after, "%s: money moved from %llu to %llu", a->name,
		      (unsigned long long)before, (unsigned long long)after);
	if (a->want == 0) {
		ck_assert_msg(lease_same(&node, &full), "%s: the node and the auditor differ",
			      a->name);
		ck_assert_msg(lease_same(&node, &cp),
			      "%s: the node and the auditor from a checkpoint differ", a->name);
		if (a->after)
			a->after(&s, &node);
	}
	cb_free(cb);
	free(cb);
}
END_TEST

/* --- arithmetic ------------------------------------------------------------ */

typedef unsigned __int128 u128;

static const uint8_t TENANT[PUBKEY_LEN] = { [0 ... PUBKEY_LEN - 1] = 0x11 };
static const uint8_t PROVIDER[PUBKEY_LEN] = { [0 ... PUBKEY_LEN - 1] = 0x22 };
static const uint8_t LEASE_ID[LEASE_ID_LEN] = { 0x5a };

/* xorshift64*: a fixed sequence, so a failure repeats. */
static uint64_t rnd_state;

static uint64_t rnd(void)
{
	rnd_state ^= rnd_state >> 12;
	rnd_state ^= rnd_state << 25;
	rnd_state ^= rnd_state >> 27;
	return rnd_state * 2685821657736338717ull;
}

/* 0..n (inclusive), often one of the ends. */
static uint64_t upto(uint64_t n)
{
	switch (rnd() % 8) {
	case 0: return 0;
	case 1: return n;
	default: return n == UINT64_MAX ? rnd() : rnd() % (n + 1);
	}
}

/* A number of any magnitude, 0 included. */
static uint64_t any_size(unsigned max_bits)
{
	unsigned bits = (unsigned)(rnd() % (max_bits + 1));

	return bits ? rnd() >> (64 - bits) : 0;
}

static void base_contract(struct lease_contract *c)
{
	memset(c, 0, sizeof(*c));
	c->version = CONTRACT_VERSION;
	strcpy(c->chain_id, "tally-devnet");
	memcpy(c->tenant, TENANT, PUBKEY_LEN);
	memcpy(c->provider, PROVIDER, PUBKEY_LEN);
	c->expiry = 1893456000;
	c->vm.vcpus = 2;
	c->vm.memory_mib = 2048;
	strcpy(c->vm.image, "debian-12");
	c->duration_s = 3600;
	c->interval_s = 60;
	c->prices.vcpu_second = 12;
	c->prices.mem_gib_second = 2;
	c->sla.max_delay_ppm = 50000;
	c->sla.credit_ppm = 100000;
	c->deposit = 1000000;
}

/* A contract contract_validate accepts, anywhere in its ranges: the deposit
 * one interval's most (the least allowed) or a random amount above. */
static void random_contract(struct lease_contract *c)
{
	char why[WHY_MAX];
	uint64_t first;

	for (;;) {
		base_contract(c);
		c->vm.vcpus = 1 + (uint32_t)upto(CONTRACT_VCPUS_MAX - 1);
		c->vm.memory_mib = CONTRACT_MEMORY_MIB_MIN +
				   (uint32_t)upto(CONTRACT_MEMORY_MIB_MAX - CONTRACT_MEMORY_MIB_MIN);
		c->vm.gpus = (uint32_t)upto(CONTRACT_GPUS_MAX);
		c->interval_s = 1 + (uint32_t)upto(CONTRACT_INTERVAL_S_MAX - 1);
		c->duration_s = c->interval_s + upto(CONTRACT_DURATION_S_MAX - c->interval_s);
		c->prices.vcpu_second = any_size(63);
		c->prices.mem_gib_second = any_size(63);
		c->prices.gpu_second = any_size(63);
		c->sla.max_delay_ppm = (uint32_t)upto(PPM_ONE);
		c->sla.credit_ppm = (uint32_t)upto(PPM_ONE);
		if (settle_max_interval_charge(c, &first) || first > CONTRACT_U64_FIELD_MAX)
			continue;
		c->deposit = first ? first : 1;
		if (rnd() % 2)
			c->deposit += upto(CONTRACT_U64_FIELD_MAX - c->deposit);
		if (contract_validate(c, "tally-devnet", 1700000000, why) == 0)
			return;
	}
}

/* A record the quantity rules accept for span ns of contract c. */
static void random_quantities(const struct lease_contract *c, struct usage_record *u,
			      uint64_t span)
{
	u->cpu_ns = upto((uint64_t)c->vm.vcpus * span);
	u->run_delay_ns = upto((uint64_t)c->vm.vcpus * span);
	u->gpu_ns = upto((uint64_t)c->vm.gpus * span);
	u->mem_mib = rnd() % 4 ? c->vm.memory_mib : 0;
	u->gpu_source = c->vm.gpus ? GPU_SOURCE_KMOD : GPU_SOURCE_NONE;
}

/* The SLA windows and how many the delay could have breached, by the words
 * of section 11: the largest k <= n for which k windows of span / n each
 * could each hold more than their allowance. */
static uint64_t breached_windows(const struct lease_contract *c, const struct usage_record *u,
				 uint64_t *windows)
{
	uint64_t span = u->end_ns - u->start_ns;
	uint64_t interval = (uint64_t)c->interval_s * CB_SEC;
	uint64_t n = (uint64_t)(((u128)span + interval / 2) / interval);
	uint64_t k = 0;

	n = n ? n : 1;
	*windows = n;
	if (u->run_delay_ns == 0)
		return 0;
	/* Bisection over k: the condition holds for k and every smaller k. */
	for (uint64_t lo = 0, hi = n; lo <= hi;) {
		uint64_t mid = lo + (hi - lo) / 2;
		bool fits = (u128)u->run_delay_ns * PPM_ONE * n >
			    (u128)mid * c->sla.max_delay_ppm * c->vm.vcpus * span;
		if (fits) {
			k = mid;
			lo = mid + 1;
		} else {
			if (mid == 0)
				break;
			hi = mid - 1;
		}
	}
	return k;
}

/* Section 11, each rounding as the documents say it falls, with any carry
 * a lease may hold: each component is the floor of its exact amount plus
 * the carry, and the new carry is the rest (so nothing is lost or billed
 * twice across records); the credit is credit_ppm of the breached share of
 * the gross rounded up, plus its carry, floored; and no record a valid
 * contract allows overflows. */
START_TEST(rounding_and_range_of_every_valid_record)
{
	struct lease_contract c;
	struct usage_record u;
	struct usage_charge ch;
	struct settle_carry in, out;
	uint64_t term_max;

	rnd_state = 0x9e3779b97f4a7c15ull;
	for (int i = 0; i < 20000; i++) {
		uint64_t span, n, k;
		u128 exact;

		random_contract(&c);
		ck_assert_int_eq(settle_max_charge(&c, c.duration_s, &term_max), 0);
		memset(&u, 0, sizeof(u));
		span = 1 + upto(c.duration_s * CB_SEC - 1);
		u.start_ns = 1700000000ull * CB_SEC;
		u.end_ns = u.start_ns + span;
		random_quantities(&c, &u, span);
		in = (struct settle_carry){ upto(CB_SEC - 1), upto(SETTLE_MEM_DIV - 1),
					    upto(CB_SEC - 1), upto(PPM_ONE - 1) };
		if (i % 3 == 0)
			memset(&in, 0, sizeof(in));
		ck_assert_msg(settle_usage(&c, &in, &u, &ch, &out) == 0,
			      "case %d: a valid record of a valid contract overflows", i);
		exact = (u128)u.cpu_ns * c.prices.vcpu_second + in.cpu;
		ck_assert(exact == (u128)ch.cpu * CB_SEC + out.cpu && out.cpu < CB_SEC);
		exact = (u128)u.gpu_ns * c.prices.gpu_second + in.gpu;
		ck_assert(exact == (u128)ch.gpu * CB_SEC + out.gpu && out.gpu < CB_SEC);
		exact = (u128)u.mem_mib * span * c.prices.mem_gib_second + in.mem;
		ck_assert(exact == (u128)ch.mem * SETTLE_MEM_DIV + out.mem &&
			  out.mem < SETTLE_MEM_DIV);
		ck_assert((u128)ch.gross == (u128)ch.cpu + ch.mem + ch.gpu);
		/* The carry adds less than one unit to each component. */
		ck_assert((u128)ch.gross <= (u128)term_max + 3);
		k = breached_windows(&c, &u, &n);
		ck_assert_uint_eq(ch.sla_windows, n);
		ck_assert_uint_eq(ch.sla_breached, k);
		u128 credited = ((u128)ch.gross * k + n - 1) / n;
		exact = credited * c.sla.credit_ppm + in.credit;
		ck_assert(exact == (u128)ch.sla_credit * PPM_ONE + out.credit &&
			  out.credit < PPM_ONE);
		ck_assert_uint_le(ch.sla_credit, ch.gross);
		ck_assert_uint_eq(ch.net, ch.gross - ch.sla_credit);
	}
}
END_TEST

/* However a stretch of usage is cut into records, the lease pays the same
 * gross: the exact price of the whole, floored once. Random contracts, a
 * random stretch, cut at random points into 1..8 records with its CPU,
 * GPU and delay shared out at random. */
START_TEST(gross_does_not_depend_on_the_cut)
{
	struct lease_contract c;

	rnd_state = 0x2545f4914f6cdd1dull;
	for (int i = 0; i < 5000; i++) {
		struct usage_record whole, part;
		struct usage_charge ch;
		struct settle_carry carry = { 0 }, none = { 0 };
		uint64_t span, gross = 0, at, cpu_left, gpu_left;
		int cuts;

		random_contract(&c);
		memset(&whole, 0, sizeof(whole));
		span = 1 + upto(c.duration_s * CB_SEC - 1);
		whole.start_ns = 1700000000ull * CB_SEC;
		whole.end_ns = whole.start_ns + span;
		random_quantities(&c, &whole, span);
		whole.mem_mib = c.vm.memory_mib;
		ck_assert_int_eq(settle_usage(&c, &none, &whole, &ch, NULL), 0);
		cuts = (int)upto(7);
		part = whole;
		at = whole.start_ns;
		cpu_left = whole.cpu_ns;
		gpu_left = whole.gpu_ns;
		for (int j = 0; j <= cuts; j++) {
			struct usage_charge pc;
			uint64_t left = whole.end_ns - at;

			part.start_ns = at;
			part.end_ns = j == cuts || left < 2 ? whole.end_ns : at + 1 + upto(left - 2);
			part.cpu_ns = j == cuts || part.end_ns == whole.end_ns ? cpu_left
										: upto(cpu_left);
			part.gpu_ns = j == cuts || part.end_ns == whole.end_ns ? gpu_left
										: upto(gpu_left);
			cpu_left -= part.cpu_ns;
			gpu_left -= part.gpu_ns;
			ck_assert_int_eq(settle_usage(&c, &carry, &part, &pc, &carry), 0);
			gross += pc.gross;
			at = part.end_ns;
			if (at == whole.end_ns)
				break;
		}
		ck_assert_msg(gross == ch.gross, "case %d: %" PRIu64 " in parts, %" PRIu64
			      " whole", i, gross, ch.gross);
	}
}
END_TEST

/* The roundings by hand, at one micro-unit. */
START_TEST(rounding_by_hand)
{
	struct lease_contract c;
	struct usage_record u;
	struct usage_charge ch;
	struct settle_carry zero = { 0 }, carry;

	base_contract(&c);
	c.prices.vcpu_second = 999999999;
	c.prices.mem_gib_second = 1;
	memset(&u, 0, sizeof(u));
	u.start_ns = 1700000000ull * CB_SEC;
	u.end_ns = u.start_ns + 511;            /* 2048 MiB x 511 ns: 0.999 of a unit */
	u.cpu_ns = 1;                           /* 0.999999999 of a unit */
	u.mem_mib = 2048;
	ck_assert_int_eq(settle_usage(&c, &zero, &u, &ch, &carry), 0);
	ck_assert_uint_eq(ch.cpu, 0);
	ck_assert_uint_eq(ch.mem, 0);
	ck_assert_uint_eq(ch.net, 0);
	ck_assert_uint_eq(carry.cpu, 999999999);
	ck_assert_uint_eq(carry.mem, 2048ull * 511);
	/* The next such record pays the unit the two make together. */
	ck_assert_int_eq(settle_usage(&c, &carry, &u, &ch, &carry), 0);
	ck_assert_uint_eq(ch.cpu, 1);
	ck_assert_uint_eq(carry.cpu, 999999998);
	ck_assert_uint_eq(ch.mem, 0);
	/* 19 units gross, every vCPU waiting: 10% is 1.9, credited 1. */
	c.prices.vcpu_second = 19;
	c.prices.mem_gib_second = 0;
	u.end_ns = u.start_ns + CB_SEC;
	u.cpu_ns = CB_SEC;
	u.run_delay_ns = 2 * CB_SEC;
	ck_assert_int_eq(settle_usage(&c, &zero, &u, &ch, &carry), 0);
	ck_assert_uint_eq(ch.gross, 19);
	ck_assert_uint_eq(ch.sla_credit, 1);
	ck_assert_uint_eq(ch.net, 18);
	ck_assert_uint_eq(carry.credit, 900000);
	/* The second such record: 1.9 + 0.9 carried is 2.8, credited 2. */
	ck_assert_int_eq(settle_usage(&c, &carry, &u, &ch, &carry), 0);
	ck_assert_uint_eq(ch.sla_credit, 2);
	ck_assert_uint_eq(carry.credit, 800000);
	/* A record pays its net, or the escrow left when that is less. */
	ck_assert_uint_eq(settle_paid(18, 19), 18);
	ck_assert_uint_eq(settle_paid(18, 18), 18);
	ck_assert_uint_eq(settle_paid(18, 17), 17);
	ck_assert_uint_eq(settle_paid(UINT64_MAX, 0), 0);
}
END_TEST

/* Any order of records and closes a lease can see: money is conserved at
 * every step (escrow + charged = deposit while open; paid plus refunded =
 * deposit once closed), charged is the sum of what the records paid, a
 * refused step changes nothing, and a closed lease takes nothing more. */
START_TEST(money_conserved_over_random_leases)
{
	static const uint8_t *const who[] = { TENANT, PROVIDER };
	uint64_t closed_as[CLOSE_REASON_MAX + 1] = { 0 }, by_record = 0, refused = 0;
	char why[WHY_MAX];

	rnd_state = 0x243f6a8885a308d3ull;
	for (int run = 0; run < 3000; run++) {
		struct lease_contract c;
		struct lease l, before;
		uint64_t t = 1700000000ull * CB_SEC, paid_sum = 0, refund_sum = 0;
		uint64_t seq_hash = 0;
		int steps = 0;

		random_contract(&c);
		if (rnd() % 2) {   /* a lease that can run short */
			uint64_t first;
			settle_max_interval_charge(&c, &first);
			c.deposit = first ? first + upto(3 * first) : 1;
		}
		memset(&l, 0, sizeof(l));
		ck_assert_int_eq(lease_open(&l, LEASE_ID, &c, 1, why), 0);
		if (rnd() % 8)
			ck_assert_int_eq(lease_start(&l, PROVIDER, t, why), 0);
		while (l.state != LEASE_CLOSED && steps++ < 64) {
			uint64_t interval = (uint64_t)c.interval_s * CB_SEC;
			uint64_t gets = 0, refund = 0;
			struct usage_record u;
			uint8_t h[HASH_LEN];
			int rc;

			t += 1 + upto(3 * interval);
			memcpy(&before, &l, sizeof(l));
			if (rnd() % 4) {
				/* A record up to where the rules allow, maybe beyond. */
				uint64_t end = t + USAGE_MAX_AHEAD_NS, term = lease_term_end_ns(&l);
				if (l.state == LEASE_CLOSING && l.closing_ns < end)
					end = l.closing_ns;
				if (term && term < end)
					end = term;
				memset(&u, 0, sizeof(u));
				memcpy(u.lease_id, LEASE_ID, LEASE_ID_LEN);
				u.seq = l.next_seq;
				memcpy(u.prev_hash, l.last_usage_hash, HASH_LEN);
				u.start_ns = l.last_end_ns;
				if (end <= u.start_ns)
					end = u.start_ns + 1;          /* refused: beyond */
				u.end_ns = u.start_ns + 1 + upto(end - u.start_ns - 1);
				if (rnd() % 16 == 0)
					u.end_ns = end + 1;            /* refused: beyond */
				random_quantities(&c, &u, u.end_ns - u.start_ns);
				memset(h, 0, sizeof(h));
				seq_hash++;
				memcpy(h, &seq_hash, sizeof(seq_hash));
				rc = lease_apply_usage(&l, PROVIDER, &u, h, 2, t, NULL, &gets,
						       &refund, why);
				if (!rc) {
					ck_assert_uint_eq(before.escrow - l.escrow, gets + refund);
					ck_assert_uint_eq(l.charged, before.charged + gets);
				}
			} else {
				uint8_t reason = 1 + (uint8_t)(rnd() % CLOSE_REASON_MAX);
				rc = lease_close(&l, who[rnd() % 2], reason, 2, t, &refund, why);
				if (!rc)
					ck_assert_uint_eq(before.escrow - l.escrow, refund);
			}
			if (rc) {
				ck_assert_mem_eq(&l, &before, sizeof(l));
				refused++;
				continue;
			}
			if (l.state == LEASE_CLOSED) {
				closed_as[l.close_reason]++;
				by_record += before.next_seq != l.next_seq;
			}
			paid_sum += gets;
			refund_sum += refund;
			ck_assert_uint_eq(l.charged, paid_sum);
			if (l.state == LEASE_CLOSED)
				ck_assert_uint_eq(paid_sum + refund_sum, c.deposit);
			else
				ck_assert_uint_eq(l.escrow + l.charged, c.deposit);
			ck_assert_uint_le(l.last_end_ns, t + USAGE_MAX_AHEAD_NS);
		}
		if (l.state == LEASE_CLOSED) {
			struct usage_record u;
			memset(&u, 0, sizeof(u));
			memcpy(u.lease_id, LEASE_ID, LEASE_ID_LEN);
			u.seq = l.next_seq;
			memcpy(u.prev_hash, l.last_usage_hash, HASH_LEN);
			u.start_ns = l.last_end_ns;
			u.end_ns = u.start_ns + 1;
			ck_assert_int_eq(lease_apply_usage(&l, PROVIDER, &u, LEASE_ID, 3, u.end_ns,
							   NULL, NULL, NULL, why), TALLY_E_STATE);
			ck_assert_int_eq(lease_close(&l, TENANT, CLOSE_TENANT, 3, t, NULL, why),
					 TALLY_E_STATE);
		}
	}
	/* The runs reached every end a lease has, and were refused some steps. */
	for (int r = CLOSE_TERM_ENDED; r <= CLOSE_REASON_MAX; r++)
		ck_assert_msg(closed_as[r] > 0, "no run closed as %s",
			      lease_close_reason_name((enum lease_close_reason)r));
	ck_assert_uint_gt(by_record, 0);
	ck_assert_uint_gt(refused, 0);
	printf("billing_rules: random leases closed as term-ended %llu, tenant-closed %llu,"
	       " escrow-exhausted %llu, provider-failed %llu, rejected %llu, guest-stopped %llu;"
	       " %llu closed by a record, %llu steps refused\n",
	       (unsigned long long)closed_as[1], (unsigned long long)closed_as[2],
	       (unsigned long long)closed_as[3], (unsigned long long)closed_as[4],
	       (unsigned long long)closed_as[5], (unsigned long long)closed_as[6],
	       (unsigned long long)by_record, (unsigned long long)refused);
}
END_TEST

/* The tenant may close a closing lease again once the grace has passed:
 * t >= close_asked_ns + grace, exactly, even at the end of u64 time. */
START_TEST(grace_is_exact_at_the_end_of_time)
{
	const uint64_t grace = 120 * CB_SEC;    /* 2 x 60 s */
	struct lease_contract c;
	struct lease l;
	uint64_t asked = UINT64_MAX - 100 * CB_SEC;
	char why[WHY_MAX];

	base_contract(&c);
	ck_assert_uint_eq(lease_close_grace_ns(&c), grace);
	ck_assert_int_eq(lease_open(&l, LEASE_ID, &c, 1, why), 0);
	ck_assert_int_eq(lease_start(&l, PROVIDER, asked - 1000 * CB_SEC, why), 0);
	ck_assert_uint_eq(lease_term_end_ns(&l), UINT64_MAX);      /* capped */
	ck_assert_int_eq(lease_close(&l, TENANT, CLOSE_TENANT, 2, asked, NULL, why), 0);
	ck_assert_uint_eq(l.state, LEASE_CLOSING);
	ck_assert_uint_eq(l.close_asked_ns, asked);
	/* asked + grace is past 2^64 - 1: no block time reaches it. */
	ck_assert_int_eq(lease_close(&l, TENANT, CLOSE_TENANT, 3, asked + 10 * CB_SEC, NULL,
				     why), TALLY_E_STATE);
	ck_assert_int_eq(lease_close(&l, TENANT, CLOSE_TENANT, 3, UINT64_MAX, NULL, why),
			 TALLY_E_STATE);
	ck_assert_uint_eq(l.state, LEASE_CLOSING);
	/* The provider may still take the close. */
	ck_assert_int_eq(lease_close(&l, PROVIDER, CLOSE_TENANT, 3, UINT64_MAX, NULL, why), 0);

	/* Away from the end, the grace is exact to the nanosecond. */
	asked = 1700000000ull * CB_SEC;
	ck_assert_int_eq(lease_open(&l, LEASE_ID, &c, 1, why), 0);
	ck_assert_int_eq(lease_start(&l, PROVIDER, asked - 1000 * CB_SEC, why), 0);
	ck_assert_int_eq(lease_close(&l, TENANT, CLOSE_TENANT, 2, asked, NULL, why), 0);
	ck_assert_int_eq(lease_close(&l, TENANT, CLOSE_TENANT, 3, asked + grace - 1, NULL, why),
			 TALLY_E_STATE);
	ck_assert_int_eq(lease_close(&l, TENANT, CLOSE_TENANT, 3, asked + grace, NULL, why), 0);
	ck_assert_uint_eq(l.state, LEASE_CLOSED);
}
END_TEST


Suite *billing_rules_suite(void)
{
	Suite *s = suite_create("billing_rules");
	TCase *tc = tcase_create("attacks");

	tcase_add_unchecked_fixture(tc, case_begin, case_end);
	tcase_set_timeout(tc, 300);
	tcase_add_loop_test(tc, attack, 0, sizeof(attacks) / sizeof(attacks[0]));
	suite_add_tcase(s, tc);
	tc = tcase_create("arithmetic");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, rounding_by_hand);
	tcase_add_test(tc, rounding_and_range_of_every_valid_record);
	tcase_add_test(tc, gross_does_not_depend_on_the_cut);
	tcase_add_test(tc, money_conserved_over_random_leases);
	tcase_add_test(tc, grace_is_exact_at_the_end_of_time);
	suite_add_tcase(s, tc);
	return s;
}
