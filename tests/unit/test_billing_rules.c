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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/ledger/ledger.h"
#include "lib/chain/audit.h"
#include "lib/errors.h"
#include "tests/support/cbpaths.h"

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
	/* 3599 s of 512 MiB at 5 per GiB-second, floored: 8997 (.5). */
	ck_assert_uint_eq(l->state, LEASE_RUNNING);
	ck_assert_uint_eq(l->last_end_ns, s->started + TERM);
	ck_assert_uint_eq(l->charged, 12 + 8997);
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
	/* Record 1: BT(4) + 1 s .. BT(5), 19 s of memory, 47 (.5 floored). */
	ck_assert_uint_eq(l->state, LEASE_CLOSED);
	ck_assert_uint_eq(l->close_reason, CLOSE_TENANT);
	ck_assert_uint_eq(l->closing_ns, BT(5));
	ck_assert_uint_eq(l->last_end_ns, BT(5));
	ck_assert_uint_eq(l->charged, 12 + 47);
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
	ck_assert_uint_eq(l->charged, 12 + 22);
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
	/* 20 + 2 = 22 gross, credit floor(2.2) = 2. */
	ck_assert_uint_eq(l->charged, 12 + 20);
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
	  never_started, NULL },
	{ "record 0 starting before the lease", TALLY_E_USAGECHAIN, true, false, 0, false, 0,
	  false, seq0_before_start, NULL },
	{ "record 0 starting after the lease", TALLY_E_USAGECHAIN, true, false, 0, false, 0,
	  false, seq0_after_start, NULL },
	{ "overlapping records", TALLY_E_USAGECHAIN, true, true, 0, false, 0, false, overlap,
	  NULL },
	{ "a gap between records", TALLY_E_USAGECHAIN, true, true, 0, false, 0, false, gap,
	  NULL },
	{ "a record ending before it starts", TALLY_E_RANGE, true, true, 0, false, 0, false,
	  backwards, NULL },
	{ "a record of no time", TALLY_E_RANGE, true, true, 0, false, 0, false, zero_span,
	  NULL },
	{ "record 0's interval billed again as record 1", TALLY_E_USAGECHAIN, true, true, 0,
	  false, 0, false, same_interval_again, NULL },
	{ "record 0 resent under a new nonce", TALLY_E_USAGECHAIN, true, true, 0, false, 0,
	  false, seq0_again, NULL },
	/* The checkpoint auditor has no nonces: it names the duplicate. */
	{ "record 0's transaction again", TALLY_E_REPLAY, true, true, 0, false,
	  TALLY_E_USAGECHAIN, true, same_tx_again, NULL },
	{ "a skipped seq", TALLY_E_USAGECHAIN, true, true, 0, false, 0, false, seq_skipped,
	  NULL },
	{ "a wrong prev_hash", TALLY_E_USAGECHAIN, true, true, 0, false, 0, false,
	  wrong_prev_hash, NULL },
	{ "two records of one interval in a block", TALLY_E_USAGECHAIN, true, true, 0, false,
	  0, false, two_records_one_interval, NULL },
	{ "a record past the term", TALLY_E_RANGE, true, true, 0, true, 0, false, past_term,
	  NULL },
	{ "a record up to the term", 0, true, true, 0, true, 0, false, up_to_term,
	  after_term },
	{ "a record ending 5 s + 1 ns after its block", TALLY_E_RANGE, true, true, 0, true, 0,
	  false, ahead_over, NULL },
	{ "a record ending 5 s after its block", 0, true, true, 0, true, 0, false, ahead_at,
	  NULL },
	{ "a record past the tenant's close", TALLY_E_RANGE, true, true, 0, true, 0, false,
	  past_closing, NULL },
	{ "the last record up to the tenant's close", 0, true, true, 0, true, 0, false,
	  up_to_closing, after_closing },
	{ "the tenant's second close within the grace", TALLY_E_STATE, true, true, 0, true, 0,
	  false, tenant_closes_again_early, NULL },
	{ "the tenant's second close after the grace", 0, true, true, 0, true, 0, false,
	  tenant_closes_again_late, after_grace },
	{ "a record after the close", TALLY_E_STATE, true, true, 0, false, 0, false,
	  record_after_close, NULL },
	{ "a lease closed twice", TALLY_E_STATE, true, true, 0, false, 0, false, closed_twice,
	  NULL },
	{ "a record, then the provider's close, in one block", 0, true, true, 0, false, 0,
	  false, record_then_provider_close, after_record_then_close },
	{ "CPU beyond vCPUs x span", TALLY_E_RANGE, true, true, 0, false, 0, false, cpu_over,
	  NULL },
	{ "CPU of every vCPU the whole span", 0, true, true, 0, false, 0, false, cpu_at, NULL },
	{ "run delay beyond vCPUs x span", TALLY_E_RANGE, true, true, 0, false, 0, false,
	  delay_over, NULL },
	{ "run delay the whole span", 0, true, true, 0, false, 0, false, delay_at, after_delay },
	{ "GPU time on a lease without GPU", TALLY_E_RANGE, true, true, 0, false, 0, false,
	  gpu_without_gpu, NULL },
	{ "a GPU meter on a lease without GPU", TALLY_E_RANGE, true, true, 0, false, 0, false,
	  gpu_meter_without_gpu, NULL },
	{ "more memory than the contract's", TALLY_E_RANGE, true, true, 0, false, 0, false,
	  mem_more, NULL },
	{ "less memory than the contract's, not 0", TALLY_E_RANGE, true, true, 0, false, 0,
	  false, mem_less, NULL },
	{ "no memory (a paused span)", 0, true, true, 0, false, 0, false, mem_paused,
	  after_paused },
	{ "a record signed by the tenant", TALLY_E_UNAUTHORIZED, true, true, 0, false, 0, false,
	  usage_by_tenant, NULL },
	{ "a record signed by a stranger", TALLY_E_UNAUTHORIZED, true, true, 0, false, 0, false,
	  usage_by_stranger, NULL },
	{ "a second LEASE_START", TALLY_E_STATE, true, false, 0, false, 0, false, start_twice,
	  NULL },
	{ "a LEASE_START by the tenant", TALLY_E_UNAUTHORIZED, false, false, 0, false, 0, false,
	  start_by_tenant, NULL },
	{ "a record costing more than the escrow", 0, true, true, 30, false, 0, false,
	  exhaust_mid_record, after_exhaust },
	{ "a record costing exactly the escrow", 0, true, true, 30, false, 0, false,
	  exhaust_exactly, after_exactly },
	{ "escrow-exhausted while an interval is covered", TALLY_E_STATE, true, true, 0, false,
	  0, false, exhausted_close_not_short, NULL },
	{ "escrow-exhausted below an interval", 0, true, true, 30, false, 0, false,
	  exhausted_close_short, after_short_close },
};

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

static bool same_lease(const struct lease *x, const struct lease *y)
{
	struct enc a, b;
	bool same;

	enc_init(&a);
	enc_init(&b);
	lease_encode_to(&a, x);
	lease_encode_to(&b, y);
	same = !enc_error(&a) && !enc_error(&b) && a.len == b.len && !memcmp(a.buf, b.buf, a.len);
	enc_free(&a);
	enc_free(&b);
	return same;
}

START_TEST(attack)
{
	const struct attack *a = &attacks[_i];
	char dir[] = "/tmp/tally-billing-XXXXXX", why[WHY_MAX] = "";
	struct chainbuild *cb = calloc(1, sizeof(*cb));
	struct ledger_config cfg = { .log = quiet };
	struct lease node, full, cp;
	uint8_t hash[HASH_LEN];
	struct ledger *l;
	struct scene s;
	uint64_t before, after;
	int applied, audited, cp_audited, admitted = 0;

	ck_assert_ptr_nonnull(cb);
	ck_assert_ptr_nonnull(mkdtemp(dir));
	build_scene(cb, a, &s);
	a->build(&s);
	cfg.data_dir = dir;
	cfg.genesis = &cb->genesis;
	ck_assert_msg(ledger_open(&l, &cfg, why) == 0, "%s", why);
	ck_assert_msg(cb_apply_blocks(l, cb, 0, cb->nblocks - 1, why) == 0, "%s: %s", a->name,
		      why);
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
		ck_assert_msg(same_lease(&node, &full), "%s: the node and the auditor differ",
			      a->name);
		ck_assert_msg(same_lease(&node, &cp),
			      "%s: the node and the auditor from a checkpoint differ", a->name);
		if (a->after)
			a->after(&s, &node);
	}
	cb_free(cb);
	free(cb);
}
END_TEST

/* --- arithmetic ------------------------------------------------------------ */

Suite *billing_rules_suite(void)
{
	Suite *s = suite_create("billing_rules");
	TCase *tc = tcase_create("attacks");

	tcase_set_timeout(tc, 300);
	tcase_add_loop_test(tc, attack, 0, sizeof(attacks) / sizeof(attacks[0]));
	suite_add_tcase(s, tc);
	return s;
}
