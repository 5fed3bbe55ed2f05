/* What libvirt tells of the VMs: the events arrive on libvirt's thread and
 * are queued; the keeper's thread acts on them at its next tick. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/keeper/keeper_impl.h"
#include "daemon/log.h"
#include "lib/errors.h"


void keeper_on_prov_event(void *arg, const uint8_t id[LEASE_ID_LEN], enum prov_event_kind kind,
			  const char *detail)
{
	struct keeper *k = arg;
	char hex[2 * LEASE_ID_LEN + 1];

	hex_encode(id, LEASE_ID_LEN, hex);
	log_info("lease %.12s: VM %s%s%s", hex, prov_event_name(kind), detail ? ": " : "",
		 detail ? detail : "");
	if (!prov_event_is_provider_failure(kind) && kind != PROV_EV_SHUTDOWN &&
	    kind != PROV_EV_SUSPENDED && kind != PROV_EV_RESUMED)
		return;
	pthread_mutex_lock(&k->lock);
	if ((kind == PROV_EV_SUSPENDED || kind == PROV_EV_RESUMED) &&
	    k->npauses < FAILURES_MAX) {
		struct pause_event *pe = &k->pauses[k->npauses++];

		memcpy(pe->id, id, LEASE_ID_LEN);
		pe->at_ns = keeper_now();
		pe->paused = kind == PROV_EV_SUSPENDED;
	} else if (kind == PROV_EV_SHUTDOWN && k->nshut < FAILURES_MAX) {
		/* The tenant's own act: billed up to the moment it happened. */
		k->shut_ns[k->nshut] = keeper_now();
		memcpy(k->shut[k->nshut++], id, LEASE_ID_LEN);
	} else if (prov_event_is_provider_failure(kind) && k->nfailed < FAILURES_MAX) {
		memcpy(k->failed[k->nfailed++], id, LEASE_ID_LEN);
	}
	pthread_cond_signal(&k->wake);
	pthread_mutex_unlock(&k->lock);
}

/* Guests that powered themselves off: the tenant's act, billed up to the
 * moment it happened by a last record, then closed as guest-stopped. */
void keeper_tend_shutdowns(struct keeper *k)
{
	for (size_t i = 0; i < k->nshut; i++) {
		struct kept *e = kept_find(k, k->shut[i]);
		struct lease l;
		uint64_t at = k->shut_ns[i], term_end;

		if (!e || e->final_end_ns || ledger_lease(k->d.ledger, e->id, &l) ||
		    l.state != LEASE_RUNNING)
			continue;
		term_end = lease_term_end_ns(&l);
		e->final_end_ns = at < term_end ? at : term_end;
		if (e->final_end_ns < l.last_end_ns)
			e->final_end_ns = l.last_end_ns;
		e->final_reason = CLOSE_GUEST_STOPPED;
	}
	k->nshut = 0;
}

void keeper_tend_failed(struct keeper *k)
{
	for (size_t i = 0; i < k->nfailed; i++) {
		struct kept *e = kept_find(k, k->failed[i]);
		struct lease l;
		if (!e || e->phase == KEPT_CLOSING || ledger_lease(k->d.ledger, e->id, &l) ||
		    l.state == LEASE_CLOSED)
			continue;
		/* No record for the interval the VM failed in: the tenant does
		 * not pay for it. */
		e->inflight = false;
		keeper_submit_close(k, e, CLOSE_PROVIDER_FAILED);
	}
	k->nfailed = 0;
}

/* Pauses and resumes become cuts of the lease's record stream (see struct
 * kept): the host paused the VM (from outside tally, or on an I/O error),
 * so the tenant could use neither its vCPUs nor its memory until it
 * resumed, and the span is billed as paused. */
void keeper_tend_pauses(struct keeper *k)
{
	for (size_t i = 0; i < k->npauses; i++) {
		const struct pause_event *pe = &k->pauses[i];
		struct kept *e = kept_find(k, pe->id);
		bool last = e && e->ncuts ? e->cuts[e->ncuts - 1].paused : e && e->paused;

		if (!e || last == pe->paused)
			continue;
		if (e->ncuts == CUTS_MAX) {
			/* Flapping faster than records commit: merge into the
			 * last cut, billing the doubt as paused. */
			e->cuts[CUTS_MAX - 1].paused = true;
			continue;
		}
		e->cuts[e->ncuts].at_ns = pe->at_ns;
		e->cuts[e->ncuts++].paused = pe->paused;
	}
	k->npauses = 0;
}
