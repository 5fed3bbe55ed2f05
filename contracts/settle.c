/* Settlement arithmetic: what one usage record of a lease costs
 * (docs/FORMATS.md section 11).
 *
 * Integers only. Every product is formed in 128 bits. Each division's
 * remainder is carried in the lease (struct settle_carry) into the next
 * record's numerator, so a lease pays the exact price of all its usage
 * floored once, however the provider cuts it into records: without the carry
 * a component worth less than one micro-unit per record would never be
 * billed, and splitting a record would change the SLA credit. Any result that
 * does not fit 64 bits is TALLY_E_OVERFLOW, never a wrapped number.
 *
 *   dur        = end_ns - start_ns
 *   cpu        = floor((cpu_ns * vcpu_second + carry.cpu) / 1e9)
 *   mem        = floor((mem_mib * dur * mem_gib_second + carry.mem) / (1024 * 1e9))
 *   gpu        = floor((gpu_ns * gpu_second + carry.gpu) / 1e9)
 *   gross      = cpu + mem + gpu
 *   windows    = max(1, floor((dur + interval_s * 1e9 / 2) / (interval_s * 1e9)))
 *   breached   = the largest k <= windows with
 *                run_delay_ns * 1e6 * windows > k * max_delay_ppm * vcpus * dur
 *   credited   = ceil(gross * breached / windows)
 *   sla_credit = floor((credited * credit_ppm + carry.credit) / 1e6)
 *   net        = gross - sla_credit
 *
 * The SLA is promised per metering interval, but a record may span many (one
 * record covers a node's outage): it is judged as `windows` equal windows,
 * its span in intervals rounded to the nearest, half up (a record shorter
 * than 1.5 intervals is one window; a longer one is cut into windows of
 * 0.75 to 1.25 intervals), and since the record does not say in which of them the delay fell, the
 * rule takes the tenant's side and counts as breached as many windows as the
 * delay could have breached. A one-window record is breached when its delay is above max_delay_ppm of vcpus x dur; a delay
 * exactly at the threshold is not a breach. */
#include "contracts/contract.h"

#include "lib/errors.h"

typedef unsigned __int128 u128;

#define NS_PER_S 1000000000u
#define U128_MAX (~(u128)0)

/* *out = a * b, or false when the product does not fit 128 bits. */
static bool mul128(u128 a, u128 b, u128 *out)
{
	if (a != 0 && b > U128_MAX / a)
		return false;
	*out = a * b;
	return true;
}

static int narrow(u128 v, uint64_t *out)
{
	if (v > UINT64_MAX)
		return TALLY_E_OVERFLOW;
	*out = (uint64_t)v;
	return 0;
}

/* *out = floor((num + *carry) / div), *carry = the remainder; num is
 * unchanged on error. */
static int carry_div(u128 num, uint64_t *carry, uint64_t div, uint64_t *out)
{
	if (num > U128_MAX - *carry)
		return TALLY_E_OVERFLOW;
	num += *carry;
	*carry = (uint64_t)(num % div);
	return narrow(num / div, out);
}

/* mem_mib * dur fits 96 bits; with the price it may not fit 128, but then
 * the quotient (divided by about 2^40) could not fit 64 either. */
static int mem_charge(uint32_t mem_mib, uint64_t dur_ns, uint64_t price, uint64_t *carry,
		      uint64_t *out)
{
	u128 product;

	if (!mul128((u128)mem_mib * dur_ns, price, &product))
		return TALLY_E_OVERFLOW;
	return carry_div(product, carry, SETTLE_MEM_DIV, out);
}

static int sum3(uint64_t a, uint64_t b, uint64_t c, uint64_t *out)
{
	return narrow((u128)a + b + c, out);
}

/* The record's SLA windows: its span in intervals rounded to the nearest,
 * half up, at least one. A record a little longer or shorter than an
 * interval (the keeper's, give or take a read's jitter) is one window; one
 * of 1.5 intervals or more is judged in two or more, so a bad interval is
 * not averaged over nearly two. */
static uint64_t sla_windows(const struct lease_contract *c, uint64_t dur_ns)
{
	uint64_t interval_ns = (uint64_t)c->interval_s * NS_PER_S;
	uint64_t n;

	if (!interval_ns)
		return 1;
	/* dur_ns + interval_ns / 2 may pass 2^64: in 128 bits. */
	n = (uint64_t)(((u128)dur_ns + interval_ns / 2) / interval_ns);
	return n ? n : 1;
}

/* How many of n windows of dur_ns / n each the delay could have breached:
 * the largest k <= n with delay * 1e6 * n > k * allowed, allowed being
 * max_delay_ppm * vcpus * dur (the delay a whole record may have). */
static uint64_t sla_breached(const struct lease_contract *c, uint64_t run_delay_ns,
			     uint64_t dur_ns, uint64_t n)
{
	/* run_delay_ns * 1e6 * n < 2^64 * 2^20 * 2^35: it fits 128 bits. */
	u128 delay = (u128)run_delay_ns * PPM_ONE * n;
	u128 allowed, k;

	if (run_delay_ns == 0)
		return 0;
	/* An allowance beyond 128 bits is beyond any delay (below 2^119). */
	if (!mul128((u128)c->sla.max_delay_ppm * c->vm.vcpus, dur_ns, &allowed))
		return 0;
	if (allowed == 0)
		return n;        /* no delay allowed: any delay breaches every window */
	k = (delay - 1) / allowed;
	return k < n ? (uint64_t)k : n;
}

int settle_usage(const struct lease_contract *c, const struct settle_carry *carry,
		 const struct usage_record *u, struct usage_charge *out,
		 struct settle_carry *carry_out)
{
	struct usage_charge ch = { 0 };
	struct settle_carry next = *carry;
	uint64_t dur, credited;
	int rc;

	if (u->end_ns < u->start_ns || c->sla.credit_ppm > PPM_ONE || !settle_carry_valid(carry))
		return TALLY_E_RANGE;
	dur = u->end_ns - u->start_ns;
	rc = carry_div((u128)u->cpu_ns * c->prices.vcpu_second, &next.cpu, NS_PER_S, &ch.cpu);
	if (!rc)
		rc = mem_charge(u->mem_mib, dur, c->prices.mem_gib_second, &next.mem, &ch.mem);
	if (!rc)
		rc = carry_div((u128)u->gpu_ns * c->prices.gpu_second, &next.gpu, NS_PER_S,
			       &ch.gpu);
	if (!rc)
		rc = sum3(ch.cpu, ch.mem, ch.gpu, &ch.gross);
	if (rc)
		return rc;
	ch.sla_windows = sla_windows(c, dur);
	ch.sla_breached = sla_breached(c, u->run_delay_ns, dur, ch.sla_windows);
	/* ceil(gross * k / n) <= gross; gross * k < 2^64 * 2^35 fits 128 bits. */
	credited = (uint64_t)(((u128)ch.gross * ch.sla_breached + ch.sla_windows - 1) /
			      ch.sla_windows);
	/* credited * credit_ppm + carry < (gross + 1) * 1e6: the credit is at
	 * most the gross. */
	rc = carry_div((u128)credited * c->sla.credit_ppm, &next.credit, PPM_ONE,
		       &ch.sla_credit);
	if (rc)
		return rc;
	ch.net = ch.gross - ch.sla_credit;
	*out = ch;
	if (carry_out)
		*carry_out = next;
	return 0;
}

bool settle_carry_valid(const struct settle_carry *c)
{
	return c->cpu < NS_PER_S && c->mem < SETTLE_MEM_DIV && c->gpu < NS_PER_S &&
	       c->credit < PPM_ONE;
}

uint64_t settle_paid(uint64_t net, uint64_t escrow)
{
	return net <= escrow ? net : escrow;
}

/* count * seconds * price, exactly. */
static int unit_charge(uint32_t count, uint64_t seconds, uint64_t price, uint64_t *out)
{
	u128 product;

	if (!mul128((u128)count * seconds, price, &product))
		return TALLY_E_OVERFLOW;
	return narrow(product, out);
}

int settle_max_charge(const struct lease_contract *c, uint64_t seconds, uint64_t *out)
{
	uint64_t cpu, mem, gpu;
	u128 product;
	int rc;

	/* The formulas of settle_usage with cpu_ns = vcpus * seconds * 1e9 and
	 * gpu_ns = gpus * seconds * 1e9: the 1e9 cancels exactly, so computing
	 * in seconds gives the same numbers without a nanosecond overflow. */
	rc = unit_charge(c->vm.vcpus, seconds, c->prices.vcpu_second, &cpu);
	if (!rc)
		rc = unit_charge(c->vm.gpus, seconds, c->prices.gpu_second, &gpu);
	if (rc)
		return rc;
	if (!mul128((u128)c->vm.memory_mib * seconds, c->prices.mem_gib_second, &product))
		return TALLY_E_OVERFLOW;
	rc = narrow(product / 1024, &mem);
	if (!rc)
		rc = sum3(cpu, mem, gpu, out);
	return rc;
}

int settle_max_interval_charge(const struct lease_contract *c, uint64_t *out)
{
	return settle_max_charge(c, c->interval_s, out);
}
