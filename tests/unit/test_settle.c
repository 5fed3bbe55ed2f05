/* Settlement arithmetic (contracts/settle.c): hand-computed charges, floor
 * rounding, SLA credit at and above its threshold, overflow detection. */
#include <check.h>
#include <string.h>

#include "contracts/contract.h"
#include "lib/errors.h"

#define S 1000000000ull           /* one second in ns */
#define T0 1700000000000000000ull  /* an arbitrary record start, unix ns */

static const struct settle_carry zero_carry;   /* a lease before its first record */

/* 2 vCPUs, 2 GiB, 1 GPU; 12 / 2 / 700 micro-units per unit-second; credit
 * 10% when the vCPUs waited more than 5% of the time. */
static void make_contract(struct lease_contract *c)
{
	memset(c, 0, sizeof(*c));
	c->version = CONTRACT_VERSION;
	strcpy(c->chain_id, "tally-devnet");
	c->vm.vcpus = 2;
	c->vm.memory_mib = 2048;
	c->vm.gpus = 1;
	strcpy(c->vm.image, "debian-12");
	c->duration_s = 3600;
	c->deposit = 10000000;
	c->interval_s = 60;
	c->prices.vcpu_second = 12;
	c->prices.mem_gib_second = 2;
	c->prices.gpu_second = 700;
	c->sla.max_delay_ppm = 50000;
	c->sla.credit_ppm = 100000;
}

static void make_usage(struct usage_record *u, uint64_t seconds)
{
	memset(u, 0, sizeof(*u));
	u->start_ns = T0;
	u->end_ns = T0 + seconds * S;
	u->mem_mib = 2048;
	u->gpu_source = GPU_SOURCE_KMOD;
}

START_TEST(hand_computed_charge)
{
	struct lease_contract c;
	struct usage_record u;
	struct usage_charge ch;

	make_contract(&c);
	make_usage(&u, 60);
	u.cpu_ns = 90 * S;          /* 1.5 of 2 vCPUs busy for a minute */
	u.gpu_ns = 60 * S;
	ck_assert_int_eq(settle_usage(&c, &zero_carry, &u, &ch, NULL), 0);
	ck_assert_uint_eq(ch.cpu, 1080);      /* 90 s x 12 */
	ck_assert_uint_eq(ch.mem, 240);       /* 2 GiB x 60 s x 2 */
	ck_assert_uint_eq(ch.gpu, 42000);     /* 60 s x 700 */
	ck_assert_uint_eq(ch.gross, 43320);
	ck_assert_uint_eq(ch.sla_credit, 0);
	ck_assert_uint_eq(ch.net, 43320);
}
END_TEST

/* Each component is rounded down on its own: 14.81 + 6.83 + 699.99 is billed
 * 14 + 6 + 699 = 719, not floor(721.64). */
START_TEST(floor_per_component)
{
	struct lease_contract c;
	struct usage_record u;
	struct usage_charge ch;

	make_contract(&c);
	c.prices.mem_gib_second = 1;
	make_usage(&u, 7);
	u.mem_mib = 1000;
	u.cpu_ns = 1234567891;      /* x 12 = 14.814814692 */
	u.gpu_ns = 999999999;       /* x 700 = 699.9999993 */
	ck_assert_int_eq(settle_usage(&c, &zero_carry, &u, &ch, NULL), 0);
	ck_assert_uint_eq(ch.cpu, 14);
	ck_assert_uint_eq(ch.mem, 6);         /* 1000 x 7 / 1024 = 6.836 */
	ck_assert_uint_eq(ch.gpu, 699);
	ck_assert_uint_eq(ch.gross, 719);
	ck_assert_uint_eq(ch.net, 719);

	/* Below one micro-unit is nothing. */
	u.cpu_ns = 83333333;        /* x 12 = 0.999999996 */
	u.gpu_ns = 0;
	u.mem_mib = 0;
	ck_assert_int_eq(settle_usage(&c, &zero_carry, &u, &ch, NULL), 0);
	ck_assert_uint_eq(ch.cpu, 0);
	u.cpu_ns = 83333334;        /* x 12 = 1.000000008 */
	ck_assert_int_eq(settle_usage(&c, &zero_carry, &u, &ch, NULL), 0);
	ck_assert_uint_eq(ch.cpu, 1);
}
END_TEST

START_TEST(sla_credit_threshold)
{
	struct lease_contract c;
	struct usage_record u;
	struct usage_charge ch;

	make_contract(&c);
	make_usage(&u, 60);
	u.cpu_ns = 90 * S;
	u.gpu_ns = 60 * S;
	/* 5% of 2 vCPUs x 60 s = 6 s of delay is allowed. */
	u.run_delay_ns = 6 * S;
	ck_assert_int_eq(settle_usage(&c, &zero_carry, &u, &ch, NULL), 0);
	ck_assert_uint_eq(ch.sla_credit, 0);
	ck_assert_uint_eq(ch.net, 43320);

	u.run_delay_ns = 6 * S + 1;
	ck_assert_int_eq(settle_usage(&c, &zero_carry, &u, &ch, NULL), 0);
	ck_assert_uint_eq(ch.gross, 43320);
	ck_assert_uint_eq(ch.sla_credit, 4332);   /* 10% */
	ck_assert_uint_eq(ch.net, 38988);

	/* The credit is rounded down too: 43320 x 0.333333 = 14439.98. */
	c.sla.credit_ppm = 333333;
	ck_assert_int_eq(settle_usage(&c, &zero_carry, &u, &ch, NULL), 0);
	ck_assert_uint_eq(ch.sla_credit, 14439);
	ck_assert_uint_eq(ch.net, 28881);

	/* A 100% credit makes the interval free. */
	c.sla.credit_ppm = PPM_ONE;
	ck_assert_int_eq(settle_usage(&c, &zero_carry, &u, &ch, NULL), 0);
	ck_assert_uint_eq(ch.net, 0);

	/* With no tolerance, any delay is a breach, and none is not. */
	c.sla.max_delay_ppm = 0;
	c.sla.credit_ppm = 100000;
	u.run_delay_ns = 1;
	ck_assert_int_eq(settle_usage(&c, &zero_carry, &u, &ch, NULL), 0);
	ck_assert_uint_eq(ch.sla_credit, 4332);
	u.run_delay_ns = 0;
	ck_assert_int_eq(settle_usage(&c, &zero_carry, &u, &ch, NULL), 0);
	ck_assert_uint_eq(ch.sla_credit, 0);

	/* The threshold scales with the vCPU count: 4 vCPUs allow 12 s. */
	c.sla.max_delay_ppm = 50000;
	c.vm.vcpus = 4;
	u.run_delay_ns = 12 * S;
	ck_assert_int_eq(settle_usage(&c, &zero_carry, &u, &ch, NULL), 0);
	ck_assert_uint_eq(ch.sla_credit, 0);
	u.run_delay_ns = 12 * S + 1;
	ck_assert_int_eq(settle_usage(&c, &zero_carry, &u, &ch, NULL), 0);
	ck_assert_uint_eq(ch.sla_credit, 4332);
}
END_TEST

START_TEST(overflow_detected)
{
	struct lease_contract c;
	struct usage_record u;
	struct usage_charge ch, untouched;

	make_contract(&c);
	memset(&c.prices, 0, sizeof(c.prices));
	make_usage(&u, 1);
	u.mem_mib = 0;

	/* The largest CPU charge that fits. */
	c.prices.vcpu_second = UINT64_MAX;
	u.cpu_ns = S;
	ck_assert_int_eq(settle_usage(&c, &zero_carry, &u, &ch, NULL), 0);
	ck_assert_uint_eq(ch.cpu, UINT64_MAX);
	ck_assert_uint_eq(ch.gross, UINT64_MAX);

	/* One more micro-unit anywhere overflows the gross. */
	c.prices.gpu_second = 1;
	u.gpu_ns = S;
	memset(&ch, 0x5a, sizeof(ch));
	untouched = ch;
	ck_assert_int_eq(settle_usage(&c, &zero_carry, &u, &ch, NULL), TALLY_E_OVERFLOW);
	ck_assert_mem_eq(&ch, &untouched, sizeof(ch));   /* nothing written */

	/* CPU: the product fits 128 bits, the quotient not 64. */
	u.gpu_ns = 0;
	u.cpu_ns = UINT64_MAX;
	ck_assert_int_eq(settle_usage(&c, &zero_carry, &u, &ch, NULL), TALLY_E_OVERFLOW);
	u.cpu_ns = S + 1;
	ck_assert_int_eq(settle_usage(&c, &zero_carry, &u, &ch, NULL), TALLY_E_OVERFLOW);

	/* GPU likewise. */
	u.cpu_ns = 0;
	c.prices.gpu_second = UINT64_MAX;
	u.gpu_ns = 2 * S;
	ck_assert_int_eq(settle_usage(&c, &zero_carry, &u, &ch, NULL), TALLY_E_OVERFLOW);

	/* Memory: exactly 1 GiB-second at the largest price fits... */
	u.gpu_ns = 0;
	c.prices.gpu_second = 0;
	c.prices.vcpu_second = 0;
	c.prices.mem_gib_second = UINT64_MAX;
	u.mem_mib = 1024;
	ck_assert_int_eq(settle_usage(&c, &zero_carry, &u, &ch, NULL), 0);
	ck_assert_uint_eq(ch.mem, UINT64_MAX);
	/* ...two do not... */
	u.mem_mib = 2048;
	ck_assert_int_eq(settle_usage(&c, &zero_carry, &u, &ch, NULL), TALLY_E_OVERFLOW);
	/* ...and a product beyond 128 bits is caught before it wraps. */
	u.mem_mib = UINT32_MAX;
	u.start_ns = 0;
	u.end_ns = UINT64_MAX;
	ck_assert_int_eq(settle_usage(&c, &zero_carry, &u, &ch, NULL), TALLY_E_OVERFLOW);
}
END_TEST

START_TEST(bad_records_refused)
{
	struct lease_contract c;
	struct usage_record u;
	struct usage_charge ch;

	make_contract(&c);
	make_usage(&u, 60);
	u.end_ns = u.start_ns - 1;
	ck_assert_int_eq(settle_usage(&c, &zero_carry, &u, &ch, NULL), TALLY_E_RANGE);
	make_usage(&u, 60);
	c.sla.credit_ppm = PPM_ONE + 1;     /* a credit above the charge */
	ck_assert_int_eq(settle_usage(&c, &zero_carry, &u, &ch, NULL), TALLY_E_RANGE);
}
END_TEST

START_TEST(max_charge_of_examples)
{
	struct lease_contract c;
	uint64_t v;

	/* contracts/examples/cpu-small.json */
	make_contract(&c);
	c.vm.gpus = 0;
	c.prices.gpu_second = 0;
	ck_assert_int_eq(settle_max_interval_charge(&c, &v), 0);
	ck_assert_uint_eq(v, 1680);
	ck_assert_int_eq(settle_max_charge(&c, 3600, &v), 0);
	ck_assert_uint_eq(v, 100800);
	/* contracts/examples/gpu-day.json */
	c.vm.vcpus = 8;
	c.vm.memory_mib = 65536;
	c.vm.gpus = 1;
	c.interval_s = 300;
	c.prices.gpu_second = 700;
	ck_assert_int_eq(settle_max_interval_charge(&c, &v), 0);
	ck_assert_uint_eq(v, 277200);
	ck_assert_int_eq(settle_max_charge(&c, 86400, &v), 0);
	ck_assert_uint_eq(v, 79833600);
	/* Memory rounds down over the whole span, not per second. */
	c.vm.memory_mib = 100;
	c.vm.vcpus = 0;
	c.vm.gpus = 0;
	c.prices.mem_gib_second = 1;
	ck_assert_int_eq(settle_max_charge(&c, 11, &v), 0);
	ck_assert_uint_eq(v, 1);              /* 1100 / 1024 */
}
END_TEST

START_TEST(max_charge_overflow)
{
	struct lease_contract c;
	uint64_t v = 42;

	make_contract(&c);
	c.prices.vcpu_second = UINT64_MAX;    /* 2 vCPUs x 1 s x the price */
	ck_assert_int_eq(settle_max_charge(&c, 1, &v), TALLY_E_OVERFLOW);
	c.prices.vcpu_second = UINT64_MAX / 2; /* fits alone, not with memory */
	ck_assert_int_eq(settle_max_charge(&c, 1, &v), TALLY_E_OVERFLOW);
	ck_assert_uint_eq(v, 42);
	c.prices.vcpu_second = 0;
	c.prices.gpu_second = 0;
	c.prices.mem_gib_second = UINT64_MAX;
	c.vm.memory_mib = UINT32_MAX;
	ck_assert_int_eq(settle_max_charge(&c, UINT64_MAX, &v), TALLY_E_OVERFLOW);
	c.vm.memory_mib = 1024;
	ck_assert_int_eq(settle_max_charge(&c, 1, &v), 0);
	ck_assert_uint_eq(v, UINT64_MAX);
}
END_TEST

/* The maximum charge is what settle_usage bills for a fully busy interval. */
START_TEST(max_charge_matches_settle)
{
	uint64_t seed = 12345;

	for (int i = 0; i < 2000; i++) {
		struct lease_contract c;
		struct usage_record u;
		struct usage_charge ch;
		uint64_t max, secs;

		make_contract(&c);
#define NEXT(mod) (seed = seed * 6364136223846793005ull + 1442695040888963407ull, \
		   (seed >> 33) % (mod))
		c.vm.vcpus = (uint32_t)NEXT(256) + 1;
		c.vm.memory_mib = (uint32_t)NEXT(1u << 20) + 64;
		c.vm.gpus = (uint32_t)NEXT(17);
		c.prices.vcpu_second = NEXT(100000);
		c.prices.mem_gib_second = NEXT(100000);
		c.prices.gpu_second = NEXT(10000000);
		secs = NEXT(7200) + 1;
#undef NEXT
		make_usage(&u, secs);
		u.cpu_ns = c.vm.vcpus * secs * S;
		u.gpu_ns = c.vm.gpus * secs * S;
		u.mem_mib = c.vm.memory_mib;
		ck_assert_int_eq(settle_usage(&c, &zero_carry, &u, &ch, NULL), 0);
		ck_assert_int_eq(settle_max_charge(&c, secs, &max), 0);
		ck_assert_uint_eq(max, ch.gross);
	}
}
END_TEST

Suite *settle_suite(void)
{
	Suite *s = suite_create("settle");
	TCase *tc = tcase_create("settle");

	tcase_add_test(tc, hand_computed_charge);
	tcase_add_test(tc, floor_per_component);
	tcase_add_test(tc, sla_credit_threshold);
	tcase_add_test(tc, overflow_detected);
	tcase_add_test(tc, bad_records_refused);
	tcase_add_test(tc, max_charge_of_examples);
	tcase_add_test(tc, max_charge_overflow);
	tcase_add_test(tc, max_charge_matches_settle);
	suite_add_tcase(s, tc);
	return s;
}
