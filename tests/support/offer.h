/* The announcement a test provider makes for the leases it will take: its
 * prices, interval, image and SLA bounds are those of the contract c (the
 * largest credit it promises c's credit_ppm, the smallest delay it allows
 * c's max_delay_ppm), so a LEASE_OPEN of c (or of one at or above its
 * prices, with no more credit and no less delay) meets the chain's provider
 * rule (contracts/provider.h). Header-only: every test and tool that builds a
 * chain with leases includes it without a build rule of its own. */
#ifndef TALLY_TEST_OFFER_H
#define TALLY_TEST_OFFER_H

#include <stdio.h>
#include <string.h>

#include "contracts/provider.h"

static inline void test_offer_for(const struct lease_contract *c, struct provider_offer *o)
{
	memset(o, 0, sizeof(*o));
	snprintf(o->endpoint, sizeof(o->endpoint), "http://127.0.0.1:7654");
	o->prices = c->prices;
	o->interval_s = c->interval_s;
	o->sla_max_credit_ppm = c->sla.credit_ppm;
	o->sla_min_delay_ppm = c->sla.max_delay_ppm;
	o->nimages = 1;
	snprintf(o->images[0], sizeof(o->images[0]), "%s", c->vm.image);
	o->vcpus = 64;
	o->memory_mib = 65536;
	o->gpus = c->vm.gpus;
	snprintf(o->region, sizeof(o->region), "test");
}

#endif
