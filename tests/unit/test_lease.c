/* The lease state machine (contracts/lease.c): transitions allowed and
 * refused, the per-lease usage chain, escrow, exhaustion and the lease's
 * canonical encoding. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "contracts/contract.h"
#include "lib/errors.h"

#define S 1000000000ull
#define T0 1700000000000000000ull   /* block time of LEASE_START, unix ns */
#define TERM (3600 * S)

static const uint8_t TENANT[PUBKEY_LEN] = { 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
					    0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
					    0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
					    0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11 };
static const uint8_t PROVIDER[PUBKEY_LEN] = { 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
					      0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
					      0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22,
					      0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22, 0x22 };

/* 2 vCPUs, 2 GiB, no GPU, an hour metered by the minute: one vCPU busy
 * for a minute costs 60 x 12 + 240 = 960, both busy 1680. */
static void make_contract(struct lease_contract *c)
{
	memset(c, 0, sizeof(*c));
	c->version = CONTRACT_VERSION;
	strcpy(c->chain_id, "tally-devnet");
	memset(c->tenant, 0x11, PUBKEY_LEN);
	memset(c->provider, 0x22, PUBKEY_LEN);
	c->expiry = 1893456000;
	c->vm.vcpus = 2;
	c->vm.memory_mib = 2048;
	c->vm.disk_gib = 10;
	strcpy(c->vm.image, "debian-12");
	c->duration_s = 3600;
	c->deposit = 120000;
	c->interval_s = 60;
	c->prices.vcpu_second = 12;
	c->prices.mem_gib_second = 2;
	c->sla.max_delay_ppm = 50000;
	c->sla.credit_ppm = 100000;
}

static const uint8_t lease_id[LEASE_ID_LEN] = { 0x42, 0x42, 0x42 };

static void open_lease(struct lease *l, const struct lease_contract *c)
{
	char why[WHY_MAX];

	ck_assert_int_eq(lease_open(l, lease_id, c, 10, why), 0);
}

static void running_lease(struct lease *l, uint64_t deposit)
{
	struct lease_contract c;
	char why[WHY_MAX];

	make_contract(&c);
	c.deposit = deposit;
	open_lease(l, &c);
	ck_assert_int_eq(lease_start(l, PROVIDER, T0, why), 0);
}

/* The record that correctly follows the lease's last one. */
static void next_record(const struct lease *l, struct usage_record *u, uint64_t secs,
			uint64_t cpu_ns)
{
	memset(u, 0, sizeof(*u));
	memcpy(u->lease_id, l->id, LEASE_ID_LEN);
	u->seq = l->next_seq;
	memcpy(u->prev_hash, l->last_usage_hash, HASH_LEN);
	u->start_ns = l->last_end_ns;
	u->end_ns = u->start_ns + secs * S;
	u->cpu_ns = cpu_ns;
	u->mem_mib = l->contract.vm.memory_mib;
	u->mem_peak_bytes = 900ull << 20;
	u->gpu_source = l->contract.vm.gpus ? GPU_SOURCE_KMOD : GPU_SOURCE_NONE;
}

static void record_hash(const struct usage_record *u, uint8_t out[HASH_LEN])
{
	struct enc e;
	size_t n;

	enc_init(&e);
	usage_encode_to(&e, u);
	uint8_t *buf = enc_take(&e, &n);
	sha256(buf, n, out);
	free(buf);
}

static uint64_t apply_ok(struct lease *l, const struct usage_record *u)
{
	uint8_t h[HASH_LEN];
	struct usage_charge ch;
	uint64_t paid;
	char why[WHY_MAX];

	record_hash(u, h);
	ck_assert_msg(lease_apply_usage(l, PROVIDER, u, h, 30, (u)->end_ns, &ch, &paid, NULL, why) == 0, "%s", why);
	ck_assert_mem_eq(l->last_usage_hash, h, HASH_LEN);
	return paid;
}

/* A refused record returns want_rc, says want_why, and changes nothing. */
static void apply_refused(struct lease *l, const struct usage_record *u, int want_rc,
			  const char *want_why)
{
	struct lease before;
	uint8_t h[HASH_LEN];
	struct usage_charge ch;
	uint64_t paid = 77;
	char why[WHY_MAX] = "";
	int rc;

	memcpy(&before, l, sizeof(before));   /* padding too, for memcmp */
	record_hash(u, h);
	rc = lease_apply_usage(l, PROVIDER, u, h, 30, (u)->end_ns, &ch, &paid, NULL, why);
	ck_assert_msg(rc == want_rc, "rc %d (%s), want %d", rc, why, want_rc);
	ck_assert_msg(strstr(why, want_why) != NULL, "message \"%s\" lacks \"%s\"", why, want_why);
	ck_assert_mem_eq(l, &before, sizeof(before));
	ck_assert_uint_eq(paid, 77);
}

START_TEST(open_and_start)
{
	struct lease_contract c;
	struct lease l;
	char why[WHY_MAX];

	make_contract(&c);
	open_lease(&l, &c);
	ck_assert_uint_eq(l.state, LEASE_OPENED);
	ck_assert_uint_eq(l.close_reason, CLOSE_NONE);
	ck_assert_uint_eq(l.escrow, 120000);
	ck_assert_uint_eq(l.charged, 0);
	ck_assert_uint_eq(l.opened_height, 10);
	ck_assert_uint_eq(l.started_ns, 0);
	ck_assert_mem_eq(l.id, lease_id, LEASE_ID_LEN);
	ck_assert_uint_eq(lease_term_end_ns(&l), 0);

	ck_assert_int_eq(lease_start(&l, PROVIDER, 0, why), TALLY_E_INVALID);
	ck_assert_uint_eq(l.state, LEASE_OPENED);
	ck_assert_int_eq(lease_start(&l, PROVIDER, T0, why), 0);
	ck_assert_uint_eq(l.state, LEASE_RUNNING);
	ck_assert_uint_eq(l.started_ns, T0);
	ck_assert_uint_eq(l.last_end_ns, T0);
	ck_assert_uint_eq(lease_term_end_ns(&l), T0 + TERM);

	ck_assert_int_eq(lease_start(&l, PROVIDER, T0 + S, why), TALLY_E_STATE);
	ck_assert_str_eq(why, "lease is running; only an opened lease can start");
	ck_assert_uint_eq(l.started_ns, T0);
}
END_TEST

START_TEST(usage_needs_running_lease)
{
	struct lease_contract c;
	struct usage_record u;
	struct lease l;

	make_contract(&c);
	open_lease(&l, &c);
	next_record(&l, &u, 60, 0);
	apply_refused(&l, &u, TALLY_E_STATE,
		      "lease is opened; usage applies only to a running lease");
}
END_TEST

START_TEST(usage_charges_escrow)
{
	struct usage_record u;
	struct lease l;

	running_lease(&l, 120000);
	for (int i = 0; i < 4; i++) {
		next_record(&l, &u, 60, 60 * S);
		ck_assert_uint_eq(apply_ok(&l, &u), 960);
	}
	ck_assert_uint_eq(l.state, LEASE_RUNNING);
	ck_assert_uint_eq(l.next_seq, 4);
	ck_assert_uint_eq(l.escrow, 120000 - 4 * 960);
	ck_assert_uint_eq(l.charged, 4 * 960);
	ck_assert_uint_eq(l.cpu_ns, 240 * S);
	ck_assert_uint_eq(l.last_end_ns, T0 + 240 * S);
	ck_assert_uint_eq(l.sla_credits, 0);

	/* A record with too much run-queue delay earns the tenant a credit. */
	next_record(&l, &u, 60, 60 * S);
	u.run_delay_ns = 6 * S + 1;
	ck_assert_uint_eq(apply_ok(&l, &u), 960 - 96);
	ck_assert_uint_eq(l.sla_credits, 96);
	ck_assert_uint_eq(l.run_delay_ns, 6 * S + 1);
	ck_assert_uint_eq(l.charged + l.escrow, 120000);
}
END_TEST

START_TEST(chain_gap_reorder_duplicate)
{
	struct usage_record u, dup, r1, r2;
	struct lease l;

	running_lease(&l, 120000);
	for (int i = 0; i < 4; i++) {
		next_record(&l, &u, 60, 0);
		if (i == 3)
			dup = u;
		apply_ok(&l, &u);
	}
	/* A gap. */
	next_record(&l, &u, 60, 0);
	u.seq = 6;
	apply_refused(&l, &u, TALLY_E_USAGECHAIN, "expected seq 4, got 6");
	/* A duplicate. */
	apply_refused(&l, &dup, TALLY_E_USAGECHAIN, "expected seq 4, got 3 (already applied)");

	/* Reordered: 5 arrives before 4 and is refused; in order both apply. */
	next_record(&l, &r1, 60, 0);
	struct lease ahead = l;
	uint8_t h[HASH_LEN];
	record_hash(&r1, h);
	ahead.next_seq = 5;
	memcpy(ahead.last_usage_hash, h, HASH_LEN);
	ahead.last_end_ns = r1.end_ns;
	next_record(&ahead, &r2, 60, 0);
	apply_refused(&l, &r2, TALLY_E_USAGECHAIN, "expected seq 4, got 5");
	apply_ok(&l, &r1);
	apply_ok(&l, &r2);
	ck_assert_uint_eq(l.next_seq, 6);
}
END_TEST

START_TEST(chain_links_and_contiguity)
{
	struct usage_record u;
	struct lease l;

	running_lease(&l, 120000);
	/* The first record starts exactly when the lease did: not before... */
	next_record(&l, &u, 60, 0);
	u.start_ns = T0 - 1;
	apply_refused(&l, &u, TALLY_E_USAGECHAIN, "not when the lease started");
	/* ...nor after, which would leave time unbilled... */
	next_record(&l, &u, 60, 0);
	u.start_ns = T0 + 5 * S;
	apply_refused(&l, &u, TALLY_E_USAGECHAIN, "not when the lease started");
	/* ...and must link to nothing. */
	next_record(&l, &u, 60, 0);
	u.prev_hash[0] = 1;
	apply_refused(&l, &u, TALLY_E_USAGECHAIN, "record 0 does not link to the previous record");
	next_record(&l, &u, 60, 0);
	apply_ok(&l, &u);

	next_record(&l, &u, 60, 0);
	u.prev_hash[HASH_LEN - 1] ^= 1;
	apply_refused(&l, &u, TALLY_E_USAGECHAIN, "record 1 does not link to the previous record");
	next_record(&l, &u, 60, 0);
	u.start_ns += 1;                        /* a gap of 1 ns */
	apply_refused(&l, &u, TALLY_E_USAGECHAIN, "not where the previous one ended");
	next_record(&l, &u, 60, 0);
	u.start_ns -= 1;                        /* an overlap */
	apply_refused(&l, &u, TALLY_E_USAGECHAIN, "not where the previous one ended");
	next_record(&l, &u, 60, 0);
	u.lease_id[0] ^= 1;
	apply_refused(&l, &u, TALLY_E_INVALID, "usage record is for another lease");
	next_record(&l, &u, 60, 0);
	apply_ok(&l, &u);
}
END_TEST

START_TEST(record_quantities_checked)
{
	struct usage_record u;
	struct lease l;

	running_lease(&l, 120000);
	next_record(&l, &u, 0, 0);
	apply_refused(&l, &u, TALLY_E_RANGE, "not after its start");
	next_record(&l, &u, 60, 120 * S + 1);   /* more CPU than 2 vCPUs have */
	apply_refused(&l, &u, TALLY_E_RANGE, "cpu_ns 120000000001 exceeds 2 vCPUs busy");
	next_record(&l, &u, 60, 0);
	u.gpu_ns = 1;
	apply_refused(&l, &u, TALLY_E_RANGE, "gpu_ns 1 exceeds 0 GPUs assigned");
	next_record(&l, &u, 60, 0);
	u.mem_mib = 4096;
	apply_refused(&l, &u, TALLY_E_RANGE, "record bills 4096 MiB of memory, the contract leases 2048 MiB");
	next_record(&l, &u, 60, 0);
	u.gpu_source = GPU_SOURCE_LIBVIRT;
	apply_refused(&l, &u, TALLY_E_RANGE, "record of a lease without GPU names a GPU meter");
	next_record(&l, &u, 60, 0);
	u.gpu_source = 3;
	apply_refused(&l, &u, TALLY_E_RANGE, "gpu_source 3 is unknown");

	/* The limits themselves are allowed. */
	next_record(&l, &u, 120, 240 * S);      /* twice the interval, both vCPUs busy */
	ck_assert_uint_eq(apply_ok(&l, &u), 2 * 1680);
	/* After the provider was down, one record covers the whole gap. */
	next_record(&l, &u, 600, 1200 * S);     /* ten intervals, both vCPUs busy */
	ck_assert_uint_eq(apply_ok(&l, &u), 10 * 1680);
	/* A span the host kept the VM paused bills no memory (and no CPU ran). */
	next_record(&l, &u, 60, 0);
	u.mem_mib = 0;
	ck_assert_uint_eq(apply_ok(&l, &u), 0);
	next_record(&l, &u, 60, 0);
	u.mem_mib = 1;
	apply_refused(&l, &u, TALLY_E_RANGE, "record bills 1 MiB of memory");
}
END_TEST

START_TEST(gpu_lease_records)
{
	struct lease_contract c;
	struct usage_record u;
	struct lease l;
	char why[WHY_MAX];

	make_contract(&c);
	c.vm.gpus = 2;
	c.prices.gpu_second = 700;
	open_lease(&l, &c);
	ck_assert_int_eq(lease_start(&l, PROVIDER, T0, why), 0);
	next_record(&l, &u, 60, 0);
	u.gpu_source = GPU_SOURCE_NONE;
	apply_refused(&l, &u, TALLY_E_RANGE, "record of a GPU lease names no GPU meter");
	next_record(&l, &u, 60, 0);
	u.gpu_ns = 120 * S + 1;
	apply_refused(&l, &u, TALLY_E_RANGE, "gpu_ns 120000000001 exceeds 2 GPUs assigned");
	next_record(&l, &u, 60, 0);
	u.gpu_ns = 120 * S;
	u.gpu_source = GPU_SOURCE_LIBVIRT;
	ck_assert_uint_eq(apply_ok(&l, &u), 240 + 120 * 700);
	ck_assert_uint_eq(l.gpu_ns, 120 * S);
}
END_TEST

START_TEST(records_stay_within_term)
{
	struct usage_record u;
	struct lease l;

	running_lease(&l, 120000);
	for (int i = 0; i < 59; i++) {
		next_record(&l, &u, 60, 0);
		apply_ok(&l, &u);
	}
	ck_assert(!lease_term_ended(&l, l.last_end_ns));
	next_record(&l, &u, 61, 0);
	apply_refused(&l, &u, TALLY_E_RANGE, "after the term ends at");
	next_record(&l, &u, 60, 0);
	apply_ok(&l, &u);
	ck_assert_uint_eq(l.last_end_ns, T0 + TERM);
	ck_assert(lease_term_ended(&l, T0 + TERM));
	ck_assert(!lease_term_ended(&l, T0 + TERM - 1));
	ck_assert_uint_eq(l.charged, 60 * 240);
}
END_TEST

START_TEST(escrow_exhausted)
{
	struct usage_record u;
	struct lease l;
	uint64_t refund = 99;
	char why[WHY_MAX];
	uint8_t h[HASH_LEN];
	struct usage_charge ch;
	uint64_t paid;

	running_lease(&l, 2000);
	next_record(&l, &u, 60, 120 * S);
	ck_assert_uint_eq(apply_ok(&l, &u), 1680);
	ck_assert_uint_eq(l.escrow, 320);

	/* 960 owed, 320 left: the provider gets what is left and the lease ends. */
	next_record(&l, &u, 60, 60 * S);
	record_hash(&u, h);
	ck_assert_int_eq(lease_apply_usage(&l, PROVIDER, &u, h, 30, (&u)->end_ns, &ch, &paid, NULL, why), 0);
	ck_assert_uint_eq(ch.net, 960);
	ck_assert_uint_eq(paid, 320);
	ck_assert_uint_eq(l.escrow, 0);
	ck_assert_uint_eq(l.charged, 2000);
	ck_assert_uint_eq(l.state, LEASE_CLOSED);
	ck_assert_uint_eq(l.close_reason, CLOSE_EXHAUSTED);
	ck_assert_uint_eq(l.next_seq, 2);

	next_record(&l, &u, 60, 0);
	apply_refused(&l, &u, TALLY_E_STATE, "lease is closed");
	ck_assert_int_eq(lease_close(&l, TENANT, CLOSE_TENANT, 20, T0 + TERM, &refund, why), TALLY_E_STATE);
	ck_assert_str_eq(why, "lease is already closed (escrow-exhausted)");
	ck_assert_uint_eq(refund, 99);
	ck_assert(!lease_term_ended(&l, UINT64_MAX));
}
END_TEST

/* A charge equal to the escrow is covered: the lease keeps running on an
 * empty escrow, and the node closes it since the next interval is not. */
START_TEST(escrow_exactly_spent)
{
	struct usage_record u;
	struct lease l;
	uint64_t refund;
	char why[WHY_MAX];

	running_lease(&l, 1680);
	next_record(&l, &u, 60, 120 * S);
	ck_assert_uint_eq(apply_ok(&l, &u), 1680);
	ck_assert_uint_eq(l.state, LEASE_RUNNING);
	ck_assert_uint_eq(l.escrow, 0);
	ck_assert_int_eq(lease_close(&l, PROVIDER, CLOSE_EXHAUSTED, 30, T0 + TERM, &refund, why), 0);
	ck_assert_uint_eq(refund, 0);
	ck_assert_uint_eq(l.close_reason, CLOSE_EXHAUSTED);
}
END_TEST

/* "Short" is judged with the lease's carries: the next interval at full
 * use costs what settlement would charge it, one micro-unit more than
 * settle_max_interval_charge when the memory carry completes one. 1000 MiB
 * at 2 per GiB-second is 117.1875 an interval: after five full intervals the
 * carry holds 0.9375, and the sixth costs 1440 + 118 = 1558. */
START_TEST(escrow_short_counts_the_carry)
{
	struct lease_contract c;
	struct usage_record u;
	struct lease l, more, next;
	uint64_t max, refund;
	char why[WHY_MAX];

	make_contract(&c);
	c.vm.memory_mib = 1000;
	c.deposit = 5 * 1557 + 1557;
	open_lease(&l, &c);
	ck_assert_int_eq(lease_start(&l, PROVIDER, T0, why), 0);
	for (int i = 0; i < 5; i++) {
		next_record(&l, &u, 60, 120 * S);
		ck_assert_uint_eq(apply_ok(&l, &u), 1557);
	}
	ck_assert_int_eq(settle_max_interval_charge(&l.contract, &max), 0);
	ck_assert_uint_eq(max, 1557);
	ck_assert_uint_eq(l.escrow, 1557);
	ck_assert_int_eq(lease_next_interval_max(&l, &max), 0);
	ck_assert_uint_eq(max, 1558);
	ck_assert(lease_escrow_short(&l));
	/* It is: the next full interval costs more than the escrow holds. */
	next = l;
	next_record(&next, &u, 60, 120 * S);
	ck_assert_uint_eq(apply_ok(&next, &u), 1557);
	ck_assert_uint_eq(next.state, LEASE_CLOSED);
	ck_assert_uint_eq(next.close_reason, CLOSE_EXHAUSTED);
	/* One micro-unit more in escrow covers it: the provider may not close. */
	more = l;
	more.contract.deposit++;
	more.escrow++;
	ck_assert(!lease_escrow_short(&more));
	ck_assert_int_eq(lease_close(&more, PROVIDER, CLOSE_EXHAUSTED, 30, T0 + TERM, &refund, why),
			 TALLY_E_STATE);
	ck_assert_str_eq(why, "escrow 1558 still covers an interval (at most 1558)");
	ck_assert_int_eq(lease_close(&l, PROVIDER, CLOSE_EXHAUSTED, 30, T0 + TERM, &refund, why), 0);
	ck_assert_uint_eq(refund, 1557);
}
END_TEST

/* A record cannot bill time that has not happened: it ends at most
 * USAGE_MAX_AHEAD_NS after the block that commits it. */
START_TEST(records_bill_only_past_time)
{
	struct usage_record u;
	struct usage_charge ch;
	struct lease l, before;
	uint8_t h[HASH_LEN];
	uint64_t paid;
	char why[WHY_MAX];

	running_lease(&l, 120000);
	/* The case: a 600 s record sent 6 s after the start. */
	next_record(&l, &u, 600, 600 * S);
	u.cpu_ns = 2 * 600 * S;
	record_hash(&u, h);
	memcpy(&before, &l, sizeof(before));
	ck_assert_int_eq(lease_apply_usage(&l, PROVIDER, &u, h, 2, T0 + 6 * S, &ch, &paid, NULL,
					   why), TALLY_E_RANGE);
	ck_assert_ptr_nonnull(strstr(why, "bills time that has not happened"));
	ck_assert_mem_eq(&l, &before, sizeof(l));
	/* Within the allowed skew it applies. */
	next_record(&l, &u, 60, 0);
	record_hash(&u, h);
	ck_assert_int_eq(lease_apply_usage(&l, PROVIDER, &u, h, 2, u.end_ns - USAGE_MAX_AHEAD_NS,
					   &ch, &paid, NULL, why), 0);
	/* A vCPU cannot wait longer than the record lasts. */
	next_record(&l, &u, 60, 0);
	u.run_delay_ns = 2 * 60 * S + 1;
	apply_refused(&l, &u, TALLY_E_RANGE, "run_delay_ns");
}
END_TEST

START_TEST(close_from_running)
{
	struct usage_record u;
	struct lease l;
	uint64_t refund = 0;
	char why[WHY_MAX];

	running_lease(&l, 120000);
	next_record(&l, &u, 60, 60 * S);
	apply_ok(&l, &u);
	ck_assert_int_eq(lease_close(&l, PROVIDER, CLOSE_REJECTED, 20, T0 + TERM, &refund, why), TALLY_E_STATE);
	ck_assert_str_eq(why, "a lease that is running cannot close as rejected");
	ck_assert_int_eq(lease_close(&l, PROVIDER, CLOSE_NONE, 20, T0 + TERM, &refund, why), TALLY_E_INVALID);
	ck_assert_int_eq(lease_close(&l, PROVIDER, (enum lease_close_reason)9, 20, T0 + TERM, &refund, why),
			 TALLY_E_INVALID);
	ck_assert_uint_eq(l.state, LEASE_RUNNING);

	/* The tenant closes 90 s in: the lease waits, closing, for the
	 * provider's record of the last 30 s, which closes it. */
	refund = 77;
	ck_assert_int_eq(lease_close(&l, TENANT, CLOSE_TENANT, 20, T0 + 90 * S, &refund, why), 0);
	ck_assert_uint_eq(refund, 0);
	ck_assert_uint_eq(l.state, LEASE_CLOSING);
	ck_assert_uint_eq(l.closing_ns, T0 + 90 * S);
	ck_assert_uint_eq(l.escrow + l.charged, 120000);
	/* Nothing past the close, and the tenant waits for the grace. */
	next_record(&l, &u, 60, 0);
	apply_refused(&l, &u, TALLY_E_RANGE, "after the tenant closed the lease");
	ck_assert_int_eq(lease_close(&l, TENANT, CLOSE_TENANT, 21, T0 + 91 * S, &refund, why),
			 TALLY_E_STATE);
	ck_assert_ptr_nonnull(strstr(why, "the lease is closing"));
	next_record(&l, &u, 30, 30 * S);
	struct usage_charge ch;
	uint8_t h[HASH_LEN];
	uint64_t paid;
	record_hash(&u, h);
	ck_assert_int_eq(lease_apply_usage(&l, PROVIDER, &u, h, 22, T0 + 92 * S, &ch, &paid,
					   &refund, why), 0);
	ck_assert_uint_eq(paid, 30 * 12 + 120);
	ck_assert_uint_eq(refund, 120000 - 960 - 480);
	ck_assert_uint_eq(refund + l.charged, 120000);
	ck_assert_uint_eq(l.escrow, 0);
	ck_assert_uint_eq(l.state, LEASE_CLOSED);
	ck_assert_uint_eq(l.close_reason, CLOSE_TENANT);
	ck_assert_uint_eq(l.closed_height, 22);
	ck_assert_int_eq(lease_close(&l, TENANT, CLOSE_TENANT, 23, T0 + TERM, &refund, why), TALLY_E_STATE);
	ck_assert_str_eq(why, "lease is already closed (tenant-closed)");
	ck_assert_uint_eq(l.closed_height, 22);
	ck_assert(!lease_term_ended(&l, T0 + TERM));

	/* Without the provider's record: the tenant closes after the grace
	 * (two intervals, at least a minute), or the provider takes the close. */
	running_lease(&l, 120000);
	ck_assert_int_eq(lease_close(&l, TENANT, CLOSE_TENANT, 20, T0 + 10 * S, &refund, why), 0);
	ck_assert_uint_eq(l.state, LEASE_CLOSING);
	ck_assert_uint_eq(lease_close_grace_ns(&l.contract), 120 * S);
	ck_assert_int_eq(lease_close(&l, TENANT, CLOSE_TENANT, 21, T0 + 129 * S, &refund, why),
			 TALLY_E_STATE);
	ck_assert_int_eq(lease_close(&l, TENANT, CLOSE_TENANT, 21, T0 + 130 * S, &refund, why), 0);
	ck_assert_uint_eq(refund, 120000);
	ck_assert_uint_eq(l.state, LEASE_CLOSED);
	running_lease(&l, 120000);
	ck_assert_int_eq(lease_close(&l, PROVIDER, CLOSE_TENANT, 20, T0 + 10 * S, &refund, why),
			 TALLY_E_UNAUTHORIZED);
	ck_assert_int_eq(lease_close(&l, TENANT, CLOSE_TENANT, 20, T0 + 10 * S, &refund, why), 0);
	ck_assert_int_eq(lease_close(&l, PROVIDER, CLOSE_TENANT, 21, T0 + 11 * S, &refund, why), 0);
	ck_assert_uint_eq(refund, 120000);
	ck_assert_uint_eq(l.close_reason, CLOSE_TENANT);
	/* A close at or after the term's end asks for the record up to the
	 * term's end only. */
	running_lease(&l, 120000);
	ck_assert_int_eq(lease_close(&l, TENANT, CLOSE_TENANT, 20, T0 + TERM + 50 * S, &refund,
				     why), 0);
	ck_assert_uint_eq(l.closing_ns, T0 + TERM);

	/* Every reason but "rejected" and "tenant-closed" may close a running
	 * lease (at the term's end, with an escrow below one interval's 1680). */
	static const enum lease_close_reason ok[] = {
		CLOSE_TERM_ENDED, CLOSE_EXHAUSTED, CLOSE_PROVIDER_FAILED, CLOSE_GUEST_STOPPED,
	};
	for (size_t i = 0; i < 4; i++) {
		running_lease(&l, 1000);
		ck_assert_int_eq(lease_close(&l, PROVIDER, ok[i], 20, T0 + TERM, &refund, why), 0);
		ck_assert_uint_eq(refund, 1000);
	}
}
END_TEST

START_TEST(close_from_opened)
{
	struct lease_contract c;
	struct lease l;
	uint64_t refund = 0;
	char why[WHY_MAX];

	make_contract(&c);
	open_lease(&l, &c);
	ck_assert_int_eq(lease_close(&l, PROVIDER, CLOSE_TERM_ENDED, 20, T0 + TERM, &refund, why), TALLY_E_STATE);
	ck_assert_str_eq(why, "a lease that is opened cannot close as term-ended");
	ck_assert_int_eq(lease_close(&l, PROVIDER, CLOSE_EXHAUSTED, 20, T0 + TERM, &refund, why), TALLY_E_STATE);
	ck_assert_uint_eq(l.state, LEASE_OPENED);
	ck_assert_uint_eq(l.escrow, 120000);

	/* The provider refuses it: the whole deposit goes back. */
	ck_assert_int_eq(lease_close(&l, PROVIDER, CLOSE_REJECTED, 20, T0 + TERM, &refund, why), 0);
	ck_assert_uint_eq(refund, 120000);
	ck_assert_uint_eq(l.close_reason, CLOSE_REJECTED);
	ck_assert_int_eq(lease_start(&l, PROVIDER, T0, why), TALLY_E_STATE);
	ck_assert_str_eq(why, "lease is closed; only an opened lease can start");

	open_lease(&l, &c);
	ck_assert_int_eq(lease_close(&l, TENANT, CLOSE_TENANT, 20, T0 + TERM, &refund, why), 0);
	ck_assert_uint_eq(refund, 120000);
	open_lease(&l, &c);
	ck_assert_int_eq(lease_close(&l, PROVIDER, CLOSE_PROVIDER_FAILED, 20, T0 + TERM, NULL, NULL), 0);
	ck_assert_uint_eq(l.close_reason, CLOSE_PROVIDER_FAILED);
}
END_TEST

START_TEST(term_end)
{
	struct lease l;

	running_lease(&l, 120000);
	ck_assert(!lease_term_ended(&l, T0));
	ck_assert(!lease_term_ended(&l, T0 + TERM - 1));
	ck_assert(lease_term_ended(&l, T0 + TERM));
	ck_assert(lease_term_ended(&l, UINT64_MAX));
	/* A term beyond the end of time saturates instead of wrapping. */
	l.contract.duration_s = UINT64_MAX;
	ck_assert_uint_eq(lease_term_end_ns(&l), UINT64_MAX);
	ck_assert(!lease_term_ended(&l, UINT64_MAX - 1));
}
END_TEST

START_TEST(names)
{
	ck_assert_str_eq(lease_state_name(LEASE_OPENED), "opened");
	ck_assert_str_eq(lease_state_name(LEASE_RUNNING), "running");
	ck_assert_str_eq(lease_state_name(LEASE_CLOSED), "closed");
	ck_assert_str_eq(lease_state_name((enum lease_state)0), "unknown");
	ck_assert_str_eq(lease_close_reason_name(CLOSE_NONE), "none");
	ck_assert_str_eq(lease_close_reason_name(CLOSE_TERM_ENDED), "term-ended");
	ck_assert_str_eq(lease_close_reason_name(CLOSE_TENANT), "tenant-closed");
	ck_assert_str_eq(lease_close_reason_name(CLOSE_EXHAUSTED), "escrow-exhausted");
	ck_assert_str_eq(lease_close_reason_name(CLOSE_PROVIDER_FAILED), "provider-failed");
	ck_assert_str_eq(lease_close_reason_name(CLOSE_REJECTED), "rejected");
	ck_assert_str_eq(lease_close_reason_name(CLOSE_GUEST_STOPPED), "guest-stopped");
	ck_assert_str_eq(lease_close_reason_name((enum lease_close_reason)7), "unknown");
	ck_assert_str_eq(lease_state_name(LEASE_CLOSING), "closing");
}
END_TEST

/* --- encoding ---------------------------------------------------------------- */

static uint8_t *encode_lease(const struct lease *l, size_t *n)
{
	struct enc e;

	enc_init(&e);
	lease_encode_to(&e, l);
	ck_assert_int_eq(enc_error(&e), 0);
	return enc_take(&e, n);
}

static void assert_round_trip(const struct lease *l)
{
	struct lease back;
	size_t n, n2;
	uint8_t *buf = encode_lease(l, &n);

	ck_assert_uint_eq(n, 1 + 32 + 165 + strlen(l->contract.chain_id) +
			  strlen(l->contract.vm.image) + 2 + 17 * 8 + 32);
	ck_assert_int_eq(lease_decode(&back, buf, n), 0);
	uint8_t *again = encode_lease(&back, &n2);
	ck_assert_uint_eq(n, n2);
	ck_assert_mem_eq(buf, again, n);
	ck_assert_uint_eq(back.state, l->state);
	ck_assert_uint_eq(back.escrow, l->escrow);
	ck_assert_mem_eq(back.last_usage_hash, l->last_usage_hash, HASH_LEN);
	ck_assert_mem_eq(&back.carry, &l->carry, sizeof(l->carry));
	free(buf);
	free(again);
}

START_TEST(lease_round_trip_each_state)
{
	struct lease_contract c;
	struct usage_record u;
	struct lease l;
	char why[WHY_MAX];

	make_contract(&c);
	open_lease(&l, &c);
	assert_round_trip(&l);
	ck_assert_int_eq(lease_start(&l, PROVIDER, T0, why), 0);
	next_record(&l, &u, 60, 30 * S);
	u.run_delay_ns = 7 * S;
	apply_ok(&l, &u);
	assert_round_trip(&l);
	ck_assert_int_eq(lease_close(&l, PROVIDER, CLOSE_TERM_ENDED, 99, T0 + TERM, NULL, why), 0);
	assert_round_trip(&l);
}
END_TEST

START_TEST(lease_decode_strict)
{
	struct usage_record u;
	struct lease l, back;
	size_t n;
	/* Offsets of the fields after the contract. */
	size_t state_at = 1 + 32 + 165 + strlen("tally-devnet") + strlen("debian-12");
	size_t escrow_at = state_at + 2 + 3 * 8;

	running_lease(&l, 120000);
	next_record(&l, &u, 60, 30 * S);
	apply_ok(&l, &u);
	uint8_t *buf = encode_lease(&l, &n);

	for (size_t cut = 0; cut < n; cut++)
		ck_assert_msg(lease_decode(&back, buf, cut) == TALLY_E_TRUNCATED,
			      "lease cut at %zu of %zu not refused", cut, n);
	uint8_t *longer = calloc(1, n + 1);
	memcpy(longer, buf, n);
	ck_assert_int_eq(lease_decode(&back, longer, n + 1), TALLY_E_TRAILING);
	free(longer);

	ck_assert_uint_eq(buf[state_at], LEASE_RUNNING);
	buf[0] = 2;                                  /* the version before the carry */
	ck_assert_int_eq(lease_decode(&back, buf, n), TALLY_E_VERSION);
	buf[0] = 3;
	buf[33] = 1;                                 /* the contract's old version */
	ck_assert_int_eq(lease_decode(&back, buf, n), TALLY_E_VERSION);
	buf[33] = CONTRACT_VERSION;
	ck_assert_int_eq(lease_decode(&back, buf, n), 0);

	buf[state_at] = 5;                           /* no such state */
	ck_assert_int_eq(lease_decode(&back, buf, n), TALLY_E_RANGE);
	buf[state_at] = 0;
	ck_assert_int_eq(lease_decode(&back, buf, n), TALLY_E_RANGE);
	buf[state_at] = LEASE_RUNNING;
	buf[state_at + 1] = CLOSE_TENANT;            /* running, yet closed */
	ck_assert_int_eq(lease_decode(&back, buf, n), TALLY_E_RANGE);
	buf[state_at] = LEASE_CLOSED;                /* closed with escrow left */
	ck_assert_int_eq(lease_decode(&back, buf, n), TALLY_E_RANGE);
	buf[state_at + 1] = CLOSE_NONE;              /* closed without reason */
	ck_assert_int_eq(lease_decode(&back, buf, n), TALLY_E_RANGE);
	buf[state_at] = LEASE_RUNNING;
	ck_assert_int_eq(lease_decode(&back, buf, n), 0);
	buf[escrow_at] ^= 1;                         /* money from nowhere */
	ck_assert_int_eq(lease_decode(&back, buf, n), TALLY_E_RANGE);
	buf[escrow_at] ^= 1;
	ck_assert_int_eq(lease_decode(&back, buf, n), 0);
	/* Each carried remainder below its divisor (the last four u64s). */
	const uint64_t divisor[4] = { 1000000000ull, SETTLE_MEM_DIV, 1000000000ull, PPM_ONE };
	for (int f = 0; f < 4; f++) {
		uint8_t *at = buf + n - 32 + 8 * f, keep[8];

		memcpy(keep, at, 8);
		for (int b = 0; b < 8; b++)
			at[b] = (uint8_t)((divisor[f] - 1) >> (8 * b));
		ck_assert_int_eq(lease_decode(&back, buf, n), 0);
		for (int b = 0; b < 8; b++)
			at[b] = (uint8_t)(divisor[f] >> (8 * b));
		ck_assert_msg(lease_decode(&back, buf, n) == TALLY_E_RANGE,
			      "carry field %d at its divisor not refused", f);
		memcpy(at, keep, 8);
	}
	free(buf);
}
END_TEST

Suite *lease_suite(void)
{
	Suite *s = suite_create("lease");
	TCase *tc = tcase_create("transitions");

	tcase_add_test(tc, open_and_start);
	tcase_add_test(tc, usage_needs_running_lease);
	tcase_add_test(tc, usage_charges_escrow);
	tcase_add_test(tc, escrow_exhausted);
	tcase_add_test(tc, escrow_exactly_spent);
	tcase_add_test(tc, close_from_running);
	tcase_add_test(tc, records_bill_only_past_time);
	tcase_add_test(tc, close_from_opened);
	tcase_add_test(tc, term_end);
	tcase_add_test(tc, names);
	suite_add_tcase(s, tc);

	tc = tcase_create("usage chain");
	tcase_add_test(tc, chain_gap_reorder_duplicate);
	tcase_add_test(tc, chain_links_and_contiguity);
	tcase_add_test(tc, record_quantities_checked);
	tcase_add_test(tc, gpu_lease_records);
	tcase_add_test(tc, records_stay_within_term);
	tcase_add_test(tc, escrow_short_counts_the_carry);
	suite_add_tcase(s, tc);

	tc = tcase_create("encoding");
	tcase_add_test(tc, lease_round_trip_each_state);
	tcase_add_test(tc, lease_decode_strict);
	suite_add_tcase(s, tc);
	return s;
}
