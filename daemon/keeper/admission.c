/* Admission and promises: whether this node takes a lease addressed to it
 * (its catalogue, free room and the SLA bounds it announces now; prices,
 * interval and the announced SLA bounds are the chain's), and the room it
 * holds for leases admitted and not yet started, so capacity is promised
 * once. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contracts/provider.h"
#include "daemon/keeper/keeper_impl.h"
#include "daemon/log.h"
#include "lib/errors.h"

/* Room for vm beside every promise but the one of lease `except`. Called
 * with k->lock held. */
static int room_for(struct keeper *k, const struct vm_spec *vm,
		    const uint8_t except[LEASE_ID_LEN], char *why)
{
	struct vm_spec all = *vm;
	size_t n = 0;
	int rc = prov_admit_check(k->prov, vm, why);

	if (rc)
		return rc;
	for (size_t i = 0; i < k->npromised; i++) {
		const struct vm_spec *p = &k->promised[i].vm;

		if (except && !memcmp(k->promised[i].id, except, LEASE_ID_LEN))
			continue;
		all.vcpus += p->vcpus;
		all.memory_mib += p->memory_mib;
		all.gpus += p->gpus;
		n++;
	}
	if (n == 0)
		return 0;
	rc = prov_admit_check(k->prov, &all, why);
	if (rc == TALLY_E_CAPACITY)
		snprintf(why, WHY_MAX, "the host has room for this lease alone, but not beside"
			 " the %zu lease%s promised and not yet started (%u vCPUs, %u MiB, %u GPUs"
			 " more)", n, n == 1 ? "" : "s", all.vcpus - vm->vcpus,
			 all.memory_mib - vm->memory_mib, all.gpus - vm->gpus);
	return rc;
}

/* The node's own admission rule for a lease addressed to it: SLA terms
 * within the bounds it announces now, an image of its catalogue and room on
 * the host. Prices, interval, the images it offers and the SLA bounds of
 * its announcement are the chain's rule (its PROVIDER announcement, checked
 * by every node's mempool and in blocks: contracts/provider.h); the SLA
 * bounds are checked here again, by the same rule against [provider]
 * sla_max_credit_ppm and sla_min_delay_ppm (the numbers announce_offer
 * announces), for a lease opened under an earlier announcement with looser
 * ones. Called with k->lock held. */
int keeper_check_admission(struct keeper *k, const struct lease_contract *c,
		 const uint8_t except[LEASE_ID_LEN], char *why)
{
	struct provider_offer now = {
		.sla_max_credit_ppm = k->d.cfg->sla_max_credit_ppm,
		.sla_min_delay_ppm = k->d.cfg->sla_min_delay_ppm,
	};
	int rc = provider_offer_sla_admits(&now, c, why);

	if (rc)
		return rc;
	return room_for(k, &c->vm, except, why);
}

void keeper_unpromise(struct keeper *k, const uint8_t id[LEASE_ID_LEN])
{
	for (size_t i = 0; i < k->npromised; i++) {
		if (memcmp(k->promised[i].id, id, LEASE_ID_LEN))
			continue;
		k->promised[i] = k->promised[--k->npromised];
		return;
	}
}

int keeper_admit(struct keeper *k, const uint8_t lease_id[LEASE_ID_LEN],
		 const struct lease_contract *c, char *why)
{
	int rc;

	pthread_mutex_lock(&k->lock);
	rc = keeper_check_admission(k, c, NULL, why);
	if (!rc && k->npromised == PROMISES_MAX)
		rc = why_set(why, TALLY_E_CAPACITY, "this node has %d leases waiting to start;"
			     " try again in a moment", PROMISES_MAX);
	if (!rc) {
		memcpy(k->promised[k->npromised].id, lease_id, LEASE_ID_LEN);
		k->promised[k->npromised++].vm = c->vm;
	}
	pthread_mutex_unlock(&k->lock);
	return rc;
}

void keeper_release(struct keeper *k, const uint8_t lease_id[LEASE_ID_LEN])
{
	pthread_mutex_lock(&k->lock);
	keeper_unpromise(k, lease_id);
	pthread_mutex_unlock(&k->lock);
}

/* Promises whose lease will never need the room: the LEASE_OPEN was left
 * out or forgotten, or the lease is past opened. (A lease still opened keeps
 * its promise until start_lease provisions it.) */
void keeper_tend_promises(struct keeper *k)
{
	for (size_t i = k->npromised; i-- > 0;) {
		struct ledger_tx_status st;
		struct lease l;
		const uint8_t *id = k->promised[i].id;

		if (ledger_tx_status(k->d.ledger, id, &st))
			continue;
		if (st.status == LEDGER_TX_PENDING)
			continue;
		if (st.status == LEDGER_TX_COMMITTED && !ledger_lease(k->d.ledger, id, &l) &&
		    l.state == LEASE_OPENED)
			continue;
		keeper_unpromise(k, id);
	}
}
