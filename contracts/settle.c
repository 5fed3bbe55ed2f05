/* Settlement arithmetic: what one usage record costs.
 *
 * Integers only. Every product is formed in 128 bits and divided once, so the
 * only rounding is the final floor of each component (cpu, mem, gpu,
 * sla_credit) of each record. The floors of cpu, mem and gpu fall to the
 * tenant's side (a record never costs more than its exact price); the floor
 * of sla_credit falls to the provider's (the credit is never more than
 * credit_ppm of the gross, so net is rounded up by less than one unit). Any
 * result that does not fit 64 bits is TALLY_E_OVERFLOW, never a wrapped
 * number.
 *
 *   dur        = end_ns - start_ns
 *   cpu        = floor(cpu_ns * vcpu_second / 1e9)
 *   mem        = floor(mem_mib * dur * mem_gib_second / (1024 * 1e9))
 *   gpu        = floor(gpu_ns * gpu_second / 1e9)
 *   gross      = cpu + mem + gpu
 *   breached   = run_delay_ns * 1e6 > max_delay_ppm * vcpus * dur
 *   sla_credit = breached ? floor(gross * credit_ppm / 1e6) : 0
 *   net        = gross - sla_credit
 *
 * A delay exactly at the threshold is not a breach. */
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

/* floor(a * b / div) with a, b below 2^64: the product always fits 128 bits. */
static int mul_div(uint64_t a, uint64_t b, uint64_t div, uint64_t *out)
{
	return narrow((u128)a * b / div, out);
}

static int mem_charge(uint32_t mem_mib, uint64_t dur_ns, uint64_t price, uint64_t *out)
{
	u128 product;

	/* mem_mib * dur fits 96 bits; with the price it may not fit 128, but then
	 * the quotient (divided by about 2^40) could not fit 64 either. */
	if (!mul128((u128)mem_mib * dur_ns, price, &product))
		return TALLY_E_OVERFLOW;
	return narrow(product / ((u128)1024 * NS_PER_S), out);
}

static int sum3(uint64_t a, uint64_t b, uint64_t c, uint64_t *out)
{
	return narrow((u128)a + b + c, out);
}

static bool sla_breached(const struct lease_contract *c, uint64_t run_delay_ns,
			 uint64_t dur_ns)
{
	u128 delay = (u128)run_delay_ns * PPM_ONE;
	u128 allowed;

	/* An allowance beyond 128 bits is beyond any delay (below 2^84). */
	if (!mul128((u128)c->sla.max_delay_ppm * c->vm.vcpus, dur_ns, &allowed))
		return false;
	return delay > allowed;
}

int settle_usage(const struct lease_contract *c, const struct usage_record *u,
		 struct usage_charge *out)
{
	struct usage_charge ch = { 0 };
	uint64_t dur;
	int rc;

	if (u->end_ns < u->start_ns || c->sla.credit_ppm > PPM_ONE)
		return TALLY_E_RANGE;
	dur = u->end_ns - u->start_ns;
	rc = mul_div(u->cpu_ns, c->prices.vcpu_second, NS_PER_S, &ch.cpu);
	if (!rc)
		rc = mem_charge(u->mem_mib, dur, c->prices.mem_gib_second, &ch.mem);
	if (!rc)
		rc = mul_div(u->gpu_ns, c->prices.gpu_second, NS_PER_S, &ch.gpu);
	if (!rc)
		rc = sum3(ch.cpu, ch.mem, ch.gpu, &ch.gross);
	if (rc)
		return rc;
	if (sla_breached(c, u->run_delay_ns, dur))
		ch.sla_credit = (uint64_t)((u128)ch.gross * c->sla.credit_ppm / PPM_ONE);
	ch.net = ch.gross - ch.sla_credit;
	*out = ch;
	return 0;
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
