/* The node's PROVIDER announcement: what it offers, from its configuration
 * ([prices], [metering] interval_s, its [image.*] catalogue, the classes of
 * its [gpu.*], and [provider] endpoint, region, capacity, sla_max_credit_ppm
 * and sla_min_delay_ppm), and a thread
 * that puts it on the chain.
 *
 * At start the announcer compares the announcement with the registry entry
 * the chain holds for the node's key; when they differ it signs a PROVIDER
 * transaction with the node key, submits it, and waits until it commits
 * (sending it again if a block left it out), then logs the height and
 * keeps watching the entry: an earlier PROVIDER of the key that commits
 * later (restored from mempool.log, or in a peer's mempool) is put right
 * the same way. A node with [provider] announce = no, or without images,
 * withdraws a standing announcement the same way. Leases are refused by the chain
 * until the announcement commits (docs/FORMATS.md section 10.3). */
#ifndef TALLY_ANNOUNCE_H
#define TALLY_ANNOUNCE_H

#include "contracts/provider.h"
#include "daemon/config.h"
#include "daemon/ledger/ledger.h"
#include "daemon/provision/provision.h"
#include "lib/crypto.h"

/* The announcement of this configuration (the withdrawal when announce is
 * no, or auto on a node that runs no VMs, or there is no image). Its
 * capacity (vCPUs, MiB of memory, in all) is *cap, the totals the node's
 * admission checks leases against (keeper_capacity); NULL on a node that
 * runs no VMs (--no-vms), which checks no room for a lease: [provider] vcpus
 * and memory_mib, UINT32_MAX (no limit) when unset.
 * TALLY_E_INVALID with why[WHY_MAX] naming the [provider] key when it
 * breaks the announcement's rules. */
int announce_offer(const struct config *cfg, bool runs_vms, const struct prov_capacity *cap,
		   struct provider_offer *o, char *why);

struct announce_deps {
	struct ledger *ledger;
	const struct tally_key *key;      /* the node's: signs PROVIDER */
	const char *chain_id;
	const uint8_t *genesis_hash;
};

struct announcer;

/* Starts the thread that brings the chain's entry to *o. */
int announcer_start(struct announcer **out, const struct announce_deps *d,
		    const struct provider_offer *o, char *why);
/* Stops it (at once, committed or not) and frees it; NULL is a no-op. */
void announcer_stop(struct announcer *a);

#endif
