/* The lease keeper: turns committed lease transactions into VMs and VMs into
 * usage records. It provisions the VM of every lease addressed to this node
 * and commits LEASE_START; every metering interval it reads the meters and
 * submits a USAGE record chained to the lease's previous one; it stops the
 * VM and commits LEASE_CLOSE at the end of the term, on the tenant's close,
 * when the escrow runs out, or when the VM fails on the provider's side. */
#ifndef TALLY_KEEPER_KEEPER_H
#define TALLY_KEEPER_KEEPER_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "contracts/contract.h"
#include "daemon/config.h"
#include "daemon/ledger/ledger.h"
#include "daemon/provision/provision.h"
#include "lib/crypto.h"

struct keeper;

/* What the keeper acts with, borrowed for its whole life. */
struct keeper_deps {
	const struct config *cfg;         /* [libvirt], [metering], [prices], images */
	const struct tally_key *key;      /* the node's: signs LEASE_START, USAGE, LEASE_CLOSE */
	const char *chain_id;
	const uint8_t *genesis_hash;      /* HASH_LEN bytes; signatures are bound to it */
	struct ledger *ledger;
};

/* Opens the provisioner and the meters, reconciles the VMs on the host with
 * the chain, and starts the keeper's thread. why[WHY_MAX]. */
int keeper_start(struct keeper **out, const struct keeper_deps *deps, char *why);
void keeper_stop(struct keeper *k);
/* The checks of its configuration keeper_start makes before it touches the
 * host (the image catalogue and its files, the GPU inventory, [libvirt]):
 * for `tallyd --check-config`. TALLY_E_INVALID, or TALLY_E_NOTFOUND naming
 * a file it cannot read, with why[WHY_MAX] as keeper_start says it. */
int keeper_check_config(const struct config *cfg, char *why);

/* This node's own rules for a lease addressed to it, checked before the
 * LEASE_OPEN enters the mempool: SLA terms within [provider]
 * sla_max_credit_ppm and sla_min_delay_ppm (the bounds it announces now;
 * the chain holds the lease to those of the announcement it was opened
 * under), an image from the catalogue and room on the host counting the
 * leases already promised (prices, interval and SLA bounds are the chain's
 * rule, against the node's PROVIDER announcement). On success the room is promised to lease_id (the
 * LEASE_OPEN's hash) until its VM exists or it will never need one;
 * keeper_release gives it back at once (the submission failed).
 * TALLY_E_CONTRACT for SLA terms out of bounds, TALLY_E_CAPACITY when it
 * does not fit. */
int keeper_admit(struct keeper *k, const uint8_t lease_id[LEASE_ID_LEN],
		 const struct lease_contract *c, char *why);
void keeper_release(struct keeper *k, const uint8_t lease_id[LEASE_ID_LEN]);
/* What the host leases in all, the totals keeper_admit checks against
 * (prov_capacity): what the node announces. why[WHY_MAX]. */
int keeper_capacity(struct keeper *k, struct prov_capacity *c, char *why);

/* The VM's private details for its tenant: {"domain", "hostname", "network",
 * "running", "state", "address", "ssh", "console"}; "running" is true only
 * for a VM that runs now, "state" is "running", "paused", "stopped" or
 * "unknown" (libvirt unreachable and no QEMU process found), as libvirt or
 * the QEMU process says at the time of the read; "ssh" is null without a forwarded
 * port, else {"host", "port", "user", "host_keys", "host_key_fingerprints"}.
 * TALLY_E_NOTFOUND when this node runs no VM for the lease. */
int keeper_vm_private(struct keeper *k, const uint8_t lease_id[LEASE_ID_LEN], json_t **out);
/* The operator view: {"vms": [{"lease", "domain", "vcpus", "cpu_ns", "cpu_pct",
 * "run_delay_ns", "run_delay_pct", "mem_bytes", "mem_peak_bytes", "gpu_ns"}]}.
 * The two shares (% of one host CPU, daemon/meter/rate.c) are null until the
 * node has read a VM twice. */
json_t *keeper_vms_json(struct keeper *k);
size_t keeper_vm_count(struct keeper *k);

#endif
