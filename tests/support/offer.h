/* The announcement a test provider makes for the leases it will take: its
 * prices, interval and image are those of the contract c, so a LEASE_OPEN
 * of c (or of one at or above its prices) meets the chain's provider rule
 * (contracts/provider.h). Header-only: every test and tool that builds a
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
	o->nimages = 1;
	snprintf(o->images[0], sizeof(o->images[0]), "%s", c->vm.image);
	o->vcpus = 64;
	o->memory_mib = 65536;
	o->gpus = c->vm.gpus;
	snprintf(o->region, sizeof(o->region), "test");
}

#endif
