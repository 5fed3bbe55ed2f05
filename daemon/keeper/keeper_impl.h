/* The lease keeper's parts (daemon/keeper/): what they share. Not for other
 * modules: they use keeper.h. */
#ifndef TALLY_KEEPER_IMPL_H
#define TALLY_KEEPER_IMPL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "daemon/keeper/keeper.h"
#include "daemon/meter/cpumeter.h"
#include "daemon/meter/gpu.h"
#include "daemon/provision/provision.h"
#include "lib/chain/tx.h"

#define NS_PER_S 1000000000ull
#define TICK_MS 200
#define STOP_TIMEOUT_MS 5000
#define FAILURES_MAX 64
#define CUTS_MAX 8
#define PROMISES_MAX 256
#define CONSOLE_TAIL 4096

enum kept_phase {
	KEPT_STARTING,      /* VM up, LEASE_START submitted, not yet committed */
	KEPT_PROVISIONING,  /* the VM is being made on a thread of its own */
	KEPT_RUNNING,       /* metering */
	KEPT_CLOSING,       /* LEASE_CLOSE submitted */
};

struct kept {
	uint8_t id[LEASE_ID_LEN];
	char hex[2 * LEASE_ID_LEN + 1];
	char vm[PROV_NAME_MAX];          /* domain name, also the meter's VM name */
	enum kept_phase phase;
	struct vm_start *start;          /* while KEPT_PROVISIONING */
	bool metered;                    /* registered with the CPU meter */
	bool inflight;                   /* a USAGE record awaits its commit */
	uint64_t inflight_seq;
	uint8_t last_tx[HASH_LEN];       /* the last transaction sent for this lease */
	uint64_t submitted_ns;           /* when the last tx of this lease went out */
	uint64_t warned_ns;              /* the last "waits for a block" warning */
	uint64_t final_end_ns;           /* the lease is ending: its last record ends here */
	uint8_t final_reason;            /* ... and it closes for this reason */
	/* Pauses and resumes no record has reached yet: each ends a record at
	 * its time, so a record is all running or all paused, and a paused one
	 * bills no memory (mem_mib 0). */
	bool paused;                     /* as of the last record's end */
	struct cut {
		uint64_t at_ns;
		bool paused;             /* from at_ns on */
	} cuts[CUTS_MAX];
	size_t ncuts;
	size_t ngpus;
	char gpus[PROV_GPUS_MAX][PROV_PCI_ADDR_LEN + 1];
	struct meter_rate rate;          /* the operator view's CPU and wait % */
};

struct vm_stop;

/* Making one lease's VM (it may take seconds: disk, seed, boot under TCG)
 * on a thread of its own, so no other lease's records wait for it. The
 * thread writes only here; the keeper reads it once done. */
struct vm_start {
	struct keeper *k;
	struct prov_request req;
	bool done;                       /* under k->lock */
	int rc;
	char why[WHY_MAX];
	struct prov_vm_info info;
};

struct keeper {
	struct keeper_deps d;
	struct prov *prov;
	struct meter *meter;
	struct gpu_meter gpu;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stop;
	/* The last refusal logged by keeper_submit, and when: the same one
	 * again soon after (a record retried each tick while a close is
	 * pending) goes to the debug log. */
	char last_refusal[WHY_MAX + 64];
	uint64_t last_refusal_ns;
	struct kept *kept;
	size_t nkept;
	unsigned stopping;           /* VMs being stopped on their own threads */
	unsigned starting;           /* VMs being made on their own threads */
	/* Events from the libvirt thread, handled by the keeper thread:
	 * provider failures, and guests that powered themselves off (when). */
	uint8_t failed[FAILURES_MAX][LEASE_ID_LEN];
	size_t nfailed;
	uint8_t shut[FAILURES_MAX][LEASE_ID_LEN];
	uint64_t shut_ns[FAILURES_MAX];
	size_t nshut;
	struct pause_event {
		uint8_t id[LEASE_ID_LEN];
		uint64_t at_ns;
		bool paused;
	} pauses[FAILURES_MAX];
	size_t npauses;
	/* Stops of closed leases' VMs that found libvirt unreachable. */
	struct vm_stop *restops[FAILURES_MAX];
	size_t nrestops;
	bool libvirt_down;               /* an outage is under way (logged once) */
	uint64_t reconnect_ns;           /* the last try to reconnect */
	/* Room held for leases admitted but not yet provisioned. */
	struct promise {
		uint8_t id[LEASE_ID_LEN];
		struct vm_spec vm;
	} promised[PROMISES_MAX];
	size_t npromised;
};

/* keeper.c */
uint64_t keeper_now(void);
struct kept *kept_find(struct keeper *k, const uint8_t id[LEASE_ID_LEN]);
struct kept *kept_add(struct keeper *k, const uint8_t id[LEASE_ID_LEN]);
void kept_remove(struct keeper *k, struct kept *e);
/* Signs tx as this node and hands it to the ledger; hash_out (may be NULL)
 * receives its hash. */
int keeper_submit(struct keeper *k, struct tx *t, const char *what, const char *lease_hex,
		  uint8_t *hash_out);
/* A transaction this keeper sent that will never commit. */
bool keeper_tx_lost(struct keeper *k, const uint8_t hash[HASH_LEN]);
int keeper_submit_close(struct keeper *k, struct kept *e, enum lease_close_reason reason);

/* record.c: the next usage record of a running lease, for [last end, end_ns]. */
int keeper_submit_usage(struct keeper *k, struct kept *e, const struct lease *l,
			uint64_t end_ns, bool paused);

/* admission.c, called with k->lock held. */
int keeper_check_admission(struct keeper *k, const struct lease_contract *c,
			   const uint8_t except[LEASE_ID_LEN], char *why);
void keeper_unpromise(struct keeper *k, const uint8_t id[LEASE_ID_LEN]);
void keeper_tend_promises(struct keeper *k);

/* vmstop.c, called with k->lock held: stop a closed lease's VM; try again
 * the stops that found libvirt unreachable. */
void keeper_stop_vm(struct keeper *k, struct kept *e, const struct lease *l);
void keeper_retry_stops(struct keeper *k);

/* vm_events.c: libvirt's events (any thread), handled at the next tick. */
void keeper_on_prov_event(void *arg, const uint8_t id[LEASE_ID_LEN], enum prov_event_kind kind,
			  const char *detail);
void keeper_tend_shutdowns(struct keeper *k);
void keeper_tend_pauses(struct keeper *k);
void keeper_tend_failed(struct keeper *k);

#endif
