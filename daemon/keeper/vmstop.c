/* Taking down the VM of a closed lease: a graceful shutdown may take
 * STOP_TIMEOUT_MS, so each runs on its own thread and never holds up the
 * other leases' records. A VM is reported removed only once libvirt says it
 * is gone; while libvirt is unreachable the stop waits and is tried again
 * (keeper_retry_stops). */
#include <pthread.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/keeper/keeper_impl.h"
#include "daemon/log.h"
#include "lib/errors.h"

/* A VM being taken down: a graceful shutdown may take STOP_TIMEOUT_MS, so it
 * runs on its own thread and never holds up the other leases' records. */
struct vm_stop {
	struct keeper *k;
	uint8_t id[LEASE_ID_LEN];
	char hex[2 * LEASE_ID_LEN + 1];
	char vm[PROV_NAME_MAX];
	uint8_t reason;
};

static int finish_stop(struct vm_stop *st)
{
	char why[WHY_MAX] = "";
	bool graceful = false;

	int rc = prov_stop(st->k->prov, st->id, STOP_TIMEOUT_MS, &graceful, why);
	if (rc == TALLY_E_UNAVAILABLE)
		log_warn("lease %.12s: VM %s not stopped yet: %s; trying again when libvirt"
			 " is back", st->hex, st->vm, why);
	else if (rc && rc != TALLY_E_NOTFOUND)
		log_error("lease %.12s: VM not stopped: %s", st->hex, why);
	else
		log_info("lease %.12s: closed (%s), VM %s removed", st->hex,
			 lease_close_reason_name(st->reason), st->vm);
	return rc;
}

/* Called with k->lock held: st is kept for another try, or freed. */
static void park(struct keeper *k, struct vm_stop *st)
{
	if (k->nrestops < FAILURES_MAX) {
		k->restops[k->nrestops++] = st;
		return;
	}
	log_error("lease %.12s: too many VMs wait for libvirt; %s is left for the next"
		  " reconcile", st->hex, st->vm);
	free(st);
}

static void *stop_thread(void *arg)
{
	struct vm_stop *st = arg;
	struct keeper *k = st->k;
	int rc = finish_stop(st);

	pthread_mutex_lock(&k->lock);
	if (rc == TALLY_E_UNAVAILABLE)
		park(k, st);
	else
		free(st);
	k->stopping--;
	pthread_cond_broadcast(&k->wake);
	pthread_mutex_unlock(&k->lock);
	return NULL;
}

/* Called with k->lock held. */
static void launch(struct keeper *k, struct vm_stop *st)
{
	pthread_attr_t attr;
	pthread_t t;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	k->stopping++;
	if (pthread_create(&t, &attr, stop_thread, st)) {
		k->stopping--;
		/* No thread to spare: stop it here. */
		if (finish_stop(st) == TALLY_E_UNAVAILABLE)
			park(k, st);
		else
			free(st);
	}
	pthread_attr_destroy(&attr);
}

void keeper_retry_stops(struct keeper *k)
{
	size_t n = k->nrestops;
	struct vm_stop *again[FAILURES_MAX];

	memcpy(again, k->restops, n * sizeof(again[0]));
	k->nrestops = 0;
	for (size_t i = 0; i < n; i++)
		launch(k, again[i]);
}

/* Called with k->lock held. */
void keeper_stop_vm(struct keeper *k, struct kept *e, const struct lease *l)
{
	struct vm_stop *st = calloc(1, sizeof(*st));

	if (e->metered) {
		meter_vm_unregister(k->meter, e->vm);
		e->metered = false;
	}
	gpu_meter_detach(&k->gpu, e->id, (const char (*)[13])e->gpus, e->ngpus);
	if (!st) {
		log_error("lease %.12s: out of memory; VM %s left for the next reconcile",
			  e->hex, e->vm);
		return;
	}
	st->k = k;
	memcpy(st->id, e->id, LEASE_ID_LEN);
	memcpy(st->hex, e->hex, sizeof(st->hex));
	memcpy(st->vm, e->vm, sizeof(st->vm));
	st->reason = l->close_reason;
	launch(k, st);
}

