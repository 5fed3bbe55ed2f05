/* The lease keeper (see keeper.h). One thread drives every lease of this
 * node by comparing the committed ledger state with the VMs it runs:
 *
 *   opened lease, no VM      -> provision it on a thread of its own (no
 *                               other lease's records wait for a boot),
 *                               then commit LEASE_START (or LEASE_CLOSE
 *                               rejected when it can't)
 *   running lease            -> every interval, one USAGE record: read the
 *                               meters (two-phase, see daemon/meter/cpumeter.h),
 *                               sign, submit; the next waits for its commit;
 *                               the meter starts counting when LEASE_START
 *                               commits, so boot time before it is not billed
 *   term ended               -> last record up to the end, LEASE_CLOSE term-ended
 *   escrow below one interval-> last record, LEASE_CLOSE escrow-exhausted
 *   tenant closed (closing)  -> last record up to the close, which closes it
 *   guest powered off (event)-> last record up to the stop, LEASE_CLOSE
 *                               guest-stopped
 *   VM failed (event)        -> LEASE_CLOSE provider-failed, no further charge
 *   closed lease, VM exists  -> stop the VM, delete its files
 *
 * A transaction the ledger left out of a block (its lease closed meanwhile,
 * or an earlier transaction of this node was dropped and its nonce with it)
 * is noticed at the next tick through ledger_tx_status and sent again with
 * a fresh nonce, so one dropped transaction never stalls the others.
 *
 * Capacity is promised once: a LEASE_OPEN admitted through this node's API
 * holds its room (a promise) from admission until its VM exists or it will
 * never need one, and admission counts every promise as well as the VMs.
 *
 * Because every decision is taken from committed state, a restart (even
 * after SIGKILL) resumes where the chain is: the next record starts where the
 * last committed one ended, and the meter's uncommitted sample is dropped so
 * its usage goes into that record instead of being counted twice. */
#include "daemon/keeper/keeper_impl.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/clock.h"
#include "daemon/log.h"
#include "lib/codec.h"
#include "lib/errors.h"


uint64_t keeper_now(void)
{
	return node_clock_ns();
}

struct kept *kept_find(struct keeper *k, const uint8_t id[LEASE_ID_LEN])
{
	for (size_t i = 0; i < k->nkept; i++)
		if (!memcmp(k->kept[i].id, id, LEASE_ID_LEN))
			return &k->kept[i];
	return NULL;
}

struct kept *kept_add(struct keeper *k, const uint8_t id[LEASE_ID_LEN])
{
	struct kept *grown = realloc(k->kept, (k->nkept + 1) * sizeof(*grown));

	if (!grown)
		return NULL;
	k->kept = grown;
	struct kept *e = &k->kept[k->nkept++];
	memset(e, 0, sizeof(*e));
	memcpy(e->id, id, LEASE_ID_LEN);
	hex_encode(id, LEASE_ID_LEN, e->hex);
	prov_domain_name(k->prov, id, e->vm);
	return e;
}

void kept_remove(struct keeper *k, struct kept *e)
{
	size_t i = (size_t)(e - k->kept);

	memmove(&k->kept[i], &k->kept[i + 1], (k->nkept - i - 1) * sizeof(*e));
	k->nkept--;
}

/* Signs tx as this node and hands it to the ledger; hash (may be NULL)
 * receives its hash. */
int keeper_submit(struct keeper *k, struct tx *t, const char *what, const char *lease_hex,
		  uint8_t *hash_out)
{
	const struct keeper_deps *d = &k->d;
	uint8_t hash[HASH_LEN];
	char why[WHY_MAX] = "";
	struct enc e;
	int rc;

	t->version = TX_VERSION;
	snprintf(t->chain_id, sizeof(t->chain_id), "%s", d->chain_id);
	memcpy(t->signer, d->key->pub, PUBKEY_LEN);
	if ((rc = ledger_next_nonce(d->ledger, d->key->pub, &t->nonce)))
		return rc;
	if ((rc = tx_sign(t, d->key, d->genesis_hash)))
		return rc;
	enc_init(&e);
	tx_encode(&e, t);
	rc = enc_error(&e);
	if (!rc)
		rc = ledger_submit(d->ledger, e.buf, e.len, hash, why);
	enc_free(&e);
	if (rc) {
		char line[sizeof(k->last_refusal)];
		uint64_t now = keeper_now();

		snprintf(line, sizeof(line), "lease %.12s: %s not submitted: %s", lease_hex, what,
			 why[0] ? why : tally_strerror(rc));
		if (!strcmp(line, k->last_refusal) && now - k->last_refusal_ns < 60 * NS_PER_S) {
			log_debug("%s", line);
		} else {
			log_warn("%s", line);
			snprintf(k->last_refusal, sizeof(k->last_refusal), "%s", line);
			k->last_refusal_ns = now;
		}
	} else
		log_info("lease %.12s: %s submitted", lease_hex, what);
	if (!rc && hash_out)
		memcpy(hash_out, hash, HASH_LEN);
	return rc;
}

/* A transaction this keeper sent that will never commit: the ledger left
 * it out of a block, or forgot it. */
bool keeper_tx_lost(struct keeper *k, const uint8_t hash[HASH_LEN])
{
	struct ledger_tx_status st;

	if (ledger_tx_status(k->d.ledger, hash, &st))
		return false;
	if (st.status == LEDGER_TX_DROPPED)
		log_info("transaction %02x%02x%02x%02x... was dropped: %s; sending again", hash[0],
			 hash[1], hash[2], hash[3], st.why);
	return st.status == LEDGER_TX_DROPPED || st.status == LEDGER_TX_UNKNOWN;
}

int keeper_submit_close(struct keeper *k, struct kept *e, enum lease_close_reason reason)
{
	struct tx t = { .kind = TX_LEASE_CLOSE };
	char what[64];

	memcpy(t.u.close.lease_id, e->id, LEASE_ID_LEN);
	t.u.close.reason = (uint8_t)reason;
	snprintf(what, sizeof(what), "LEASE_CLOSE (%s)", lease_close_reason_name(reason));
	int rc = keeper_submit(k, &t, what, e->hex, e->last_tx);
	if (!rc) {
		e->phase = KEPT_CLOSING;
		e->submitted_ns = keeper_now();
	}
	return rc;
}

static enum prov_lease_standing lease_standing(void *arg, const uint8_t id[LEASE_ID_LEN])
{
	struct keeper *k = arg;
	struct lease l;

	if (ledger_lease(k->d.ledger, id, &l) ||
	    memcmp(l.contract.provider, k->d.key->pub, PUBKEY_LEN))
		return PROV_LEASE_OTHER;
	return l.state == LEASE_CLOSED ? PROV_LEASE_ENDED : PROV_LEASE_ACTIVE;
}

static void meter_register(struct keeper *k, struct kept *e, const struct lease *l)
{
	char why[WHY_MAX] = "";

	if (e->metered)
		return;
	int rc = meter_vm_register_domain(k->meter, e->vm, NULL, l->contract.vm.memory_mib, why);
	if (rc) {
		log_warn("lease %.12s: VM %s not metered yet: %s", e->hex, e->vm, why);
		return;
	}
	e->metered = true;
	/* The committed records are the truth: a sample prepared but never
	 * committed by a previous run is dropped and counted again. */
	if (l->next_seq > 0)
		meter_vm_commit(k->meter, e->vm, l->next_seq - 1);
}

static void *start_thread(void *arg)
{
	struct vm_start *js = arg;
	struct keeper *k = js->k;
	int rc = prov_create(k->prov, &js->req, &js->info, js->why);

	pthread_mutex_lock(&k->lock);
	js->rc = rc;
	js->done = true;
	k->starting--;
	pthread_cond_broadcast(&k->wake);
	pthread_mutex_unlock(&k->lock);
	return NULL;
}

/* An opened lease without a VM: the node's own admission rules again (the
 * room was promised at admission), then its VM is made on a thread of its
 * own (finish_start takes over when it is done). */
static void start_lease(struct keeper *k, const struct lease *l)
{
	char why[WHY_MAX] = "";
	struct kept *e = kept_add(k, l->id);
	struct vm_start *js;
	pthread_attr_t attr;
	pthread_t t;

	if (!e)
		return;
	js = calloc(1, sizeof(*js));
	if (!js) {
		kept_remove(k, e);
		return;
	}
	js->k = k;
	js->req.vm = l->contract.vm;
	memcpy(js->req.lease_id, l->id, LEASE_ID_LEN);
	e->phase = KEPT_PROVISIONING;
	e->start = js;
	/* A VM adopted at reconcile (the node died between define and
	 * LEASE_START) is used as it is. */
	if (prov_lookup(k->prov, l->id, &js->info) == 0) {
		js->done = true;
		return;
	}
	js->rc = keeper_check_admission(k, &l->contract, l->id, why);
	if (js->rc) {
		snprintf(js->why, sizeof(js->why), "%s", why);
		js->done = true;
		return;
	}
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	k->starting++;
	if (pthread_create(&t, &attr, start_thread, js)) {
		k->starting--;
		/* No thread to spare: make it here. */
		js->rc = prov_create(k->prov, &js->req, &js->info, js->why);
		js->done = true;
	}
	pthread_attr_destroy(&attr);
}

/* The VM is made (or could not be): commit LEASE_START, or close the lease
 * as rejected. */
static void finish_start(struct keeper *k, struct kept *e)
{
	struct vm_start *js = e->start;
	char why[WHY_MAX] = "";

	e->start = NULL;
	keeper_unpromise(k, e->id);    /* the VM exists now, or never will */
	if (js->rc) {
		log_warn("lease %.12s: rejected: %s", e->hex, js->why);
		free(js);
		keeper_submit_close(k, e, CLOSE_REJECTED);
		return;
	}
	e->ngpus = js->info.n_gpus;
	memcpy(e->gpus, js->info.gpus, sizeof(e->gpus));
	free(js);
	if (gpu_meter_attach(&k->gpu, e->id, (const char (*)[13])e->gpus, e->ngpus, why))
		log_warn("lease %.12s: %s", e->hex, why);
	/* The CPU meter starts when LEASE_START commits (tend_running): the
	 * boot before it is not the tenant's. */
	struct tx t = { .kind = TX_LEASE_START };
	memcpy(t.u.start.lease_id, e->id, LEASE_ID_LEN);
	if (!keeper_submit(k, &t, "LEASE_START", e->hex, e->last_tx)) {
		e->phase = KEPT_STARTING;
		e->submitted_ns = keeper_now();
	}
}

/* One running lease: commit the meter sample of a committed record, then
 * decide whether the lease must end or the next record is due. */
static void tend_running(struct keeper *k, struct kept *e, const struct lease *l, uint64_t now)
{
	const struct lease_contract *c = &l->contract;
	uint64_t interval = (uint64_t)c->interval_s * NS_PER_S;
	uint64_t term_end = l->started_ns + c->duration_s * NS_PER_S;
	uint64_t last = l->next_seq ? l->last_end_ns : l->started_ns;

	e->phase = e->phase == KEPT_CLOSING ? KEPT_CLOSING : KEPT_RUNNING;
	meter_register(k, e, l);
	if (!e->metered)
		return;
	if (e->inflight) {
		if (l->next_seq <= e->inflight_seq) {
			/* Not committed yet. One the ledger left out or forgot
			 * never commits: send it again at once (with a fresh
			 * nonce). One still pending waits for a block, however
			 * long blocks take (a full disk, no quorum): sending the
			 * same record again could only be refused. */
			if (keeper_tx_lost(k, e->last_tx))
				e->inflight = false;
			else if (now - e->submitted_ns > 4 * interval + 10 * NS_PER_S &&
				 now - e->warned_ns > 60 * NS_PER_S) {
				log_warn("lease %.12s: USAGE %" PRIu64 " has waited %" PRIu64 " s for a"
					 " block", e->hex, e->inflight_seq,
					 (uint64_t)((now - e->submitted_ns) / NS_PER_S));
				e->warned_ns = now;
			}
			return;
		}
		meter_vm_commit(k->meter, e->vm, e->inflight_seq);
		e->inflight = false;
	}
	/* Pauses and resumes the committed records have reached. */
	while (e->ncuts && e->cuts[0].at_ns <= last) {
		e->paused = e->cuts[0].paused;
		memmove(e->cuts, e->cuts + 1, --e->ncuts * sizeof(e->cuts[0]));
	}
	if (e->phase == KEPT_CLOSING) {
		if (keeper_tx_lost(k, e->last_tx) || now - e->submitted_ns > 10 * NS_PER_S)
			e->phase = KEPT_RUNNING;   /* the close was lost; decide again */
		return;
	}
	if (l->state == LEASE_CLOSING) {
		/* The tenant closed: one last record up to the close closes it. */
		e->final_end_ns = l->closing_ns;
		e->final_reason = CLOSE_NONE;
		if (now - l->close_asked_ns > lease_close_grace_ns(c) / 2 && last < l->closing_ns &&
		    now - e->submitted_ns > interval) {
			/* The record keeps failing: take the close without it
			 * before the grace runs out, so the escrow is not held. */
			keeper_submit_close(k, e, CLOSE_TENANT);
			return;
		}
	}
	bool exhausted = lease_escrow_short(l);
	bool term_over = now >= term_end;
	if (!e->final_end_ns && (term_over || exhausted)) {
		/* Decide once where the last record ends, so the lease ends with
		 * one final record and a close rather than a trickle of records. */
		e->final_end_ns = term_over ? term_end : now;
		e->final_reason = term_over ? CLOSE_TERM_ENDED : CLOSE_EXHAUSTED;
	}
	/* A pause or resume ends the record at its time, so that no record
	 * mixes running and paused time. */
	if (e->ncuts && e->cuts[0].at_ns <= now &&
	    (!e->final_end_ns || e->cuts[0].at_ns < e->final_end_ns)) {
		keeper_submit_usage(k, e, l, e->cuts[0].at_ns, e->paused);
		return;
	}
	if (e->final_end_ns) {
		if (last < e->final_end_ns)
			keeper_submit_usage(k, e, l, e->final_end_ns, e->paused);
		else if (e->final_reason != CLOSE_NONE)
			keeper_submit_close(k, e, e->final_reason);
		return;
	}
	/* After downtime the record covers the whole gap: the pinned meter
	 * counted through it, and the contract takes a span of any length. */
	if (now - last >= interval)
		keeper_submit_usage(k, e, l, now, e->paused);
}


static void tend_lease(struct keeper *k, const struct lease *l, uint64_t now)
{
	struct kept *e = kept_find(k, l->id);

	switch (l->state) {
	case LEASE_OPENED:
		if (!e && !k->libvirt_down)     /* no VM can start without libvirt */
			start_lease(k, l);
		else if (e && e->phase == KEPT_PROVISIONING && e->start->done)
			finish_start(k, e);
		else if (e->phase == KEPT_STARTING &&
			 (keeper_tx_lost(k, e->last_tx) || now - e->submitted_ns > 10 * NS_PER_S)) {
			struct tx t = { .kind = TX_LEASE_START };
			memcpy(t.u.start.lease_id, l->id, LEASE_ID_LEN);
			if (!keeper_submit(k, &t, "LEASE_START (again)", e->hex, e->last_tx))
				e->submitted_ns = now;
		}
		break;
	case LEASE_CLOSING:
	case LEASE_RUNNING:
		if (!e) {
			/* Running on the chain but this node has no VM for it
			 * (lost while the node was down): a provider failure. */
			struct prov_vm_info info;
			e = kept_add(k, l->id);
			if (!e)
				break;
			if (prov_lookup(k->prov, l->id, &info)) {
				/* Closing: take the tenant's close without a record. */
				keeper_submit_close(k, e, l->state == LEASE_CLOSING ? CLOSE_TENANT
									    : CLOSE_PROVIDER_FAILED);
				break;
			}
			e->ngpus = info.n_gpus;   /* adopted after a restart */
			memcpy(e->gpus, info.gpus, sizeof(e->gpus));
			break;
		}
		tend_running(k, e, l, now);
		break;
	}
}

/* libvirtd died or restarted: reconnect (at most every second), and have
 * the provisioner deliver what happened to the VMs meanwhile. Metering goes
 * on through the outage (the meter reads cgroups, not libvirt). Called with
 * k->lock held; the provisioner's events take it, so it is let go around
 * the reconnect. */
static void tend_connection(struct keeper *k, uint64_t now)
{
	char why[WHY_MAX] = "";
	unsigned checked = 0;
	int rc;

	if (!k->libvirt_down && prov_connected(k->prov))
		return;
	if (!k->libvirt_down) {
		k->libvirt_down = true;
		k->reconnect_ns = 0;
		log_warn("libvirt connection lost: VMs keep running and are metered; starting"
			 " and stopping VMs waits until libvirt is back");
	}
	if (k->reconnect_ns && now - k->reconnect_ns < NS_PER_S)
		return;
	k->reconnect_ns = now;
	pthread_mutex_unlock(&k->lock);
	rc = prov_reconnect(k->prov, &checked, why);
	pthread_mutex_lock(&k->lock);
	if (rc)
		return;
	k->libvirt_down = false;
	log_info("libvirt is back: events registered again, %u VM%s checked", checked,
		 checked == 1 ? "" : "s");
}

/* Only opened, running and closing leases are listed, so a node's history of closed
 * leases costs nothing here; a lease this node still keeps that is no longer
 * among them has closed. */
static void tend(struct keeper *k)
{
	static const uint8_t active[] = { LEASE_OPENED, LEASE_RUNNING, LEASE_CLOSING };
	const struct keeper_deps *d = &k->d;
	uint64_t now = keeper_now();

	tend_connection(k, now);
	if (!k->libvirt_down)
		keeper_retry_stops(k);
	keeper_tend_promises(k);
	keeper_tend_pauses(k);
	keeper_tend_shutdowns(k);
	keeper_tend_failed(k);
	for (size_t s = 0; s < sizeof(active); s++) {
		struct lease_filter f = { .provider = d->key->pub, .state = active[s] };
		struct lease *leases = NULL;
		size_t count = 0;

		if (ledger_leases(d->ledger, &f, &leases, &count))
			return;
		for (size_t i = 0; i < count; i++)
			tend_lease(k, &leases[i], now);
		free(leases);
	}
	for (size_t i = k->nkept; i-- > 0;) {
		struct kept *e = &k->kept[i];
		struct lease l;
		if (ledger_lease(d->ledger, e->id, &l) || l.state != LEASE_CLOSED)
			continue;
		if (e->start) {
			/* Closed while its VM was being made: wait for that. */
			if (!e->start->done)
				continue;
			keeper_unpromise(k, e->id);
			free(e->start);
			e->start = NULL;
		}
		keeper_stop_vm(k, e, &l);
		kept_remove(k, e);
	}
}

static void *keeper_main(void *arg)
{
	struct keeper *k = arg;

	pthread_mutex_lock(&k->lock);
	while (!k->stop) {
		tend(k);
		struct timespec until;
		/* The condition waits on the monotonic clock: a step of the
		 * wall clock neither skips nor stalls a tick. */
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_nsec += TICK_MS * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&k->wake, &k->lock, &until);
	}
	pthread_mutex_unlock(&k->lock);
	return NULL;
}

static void on_commit(void *ctx, const struct ledger_committed *c)
{
	struct keeper *k = ctx;
	(void)c;

	/* Only a nudge: the keeper thread reads the committed state itself. */
	pthread_cond_signal(&k->wake);
}

/* The provisioner's configuration from the node's, into images[] and gpus[]
 * (CONFIG_IMAGES_MAX and CONFIG_GPUS_MAX, which *pc points to); owner, 64
 * hex or NULL, is borrowed too. One mapping for the keeper's start and
 * keeper_check_config. */
static void prov_config_of(const struct config *cfg, const char *owner,
			   struct prov_image *images, struct prov_gpu *gpus,
			   struct prov_config *pc)
{
	memset(images, 0, CONFIG_IMAGES_MAX * sizeof(*images));
	memset(gpus, 0, CONFIG_GPUS_MAX * sizeof(*gpus));
	for (size_t i = 0; i < cfg->nimages; i++) {
		const struct config_image *ci = &cfg->images[i];
		struct prov_image *pi = &images[i];
		snprintf(pi->name, sizeof(pi->name), "%s", ci->name);
		snprintf(pi->disk_path, sizeof(pi->disk_path), "%s", ci->path);
		snprintf(pi->disk_format, sizeof(pi->disk_format), "%s", ci->format);
		snprintf(pi->kernel, sizeof(pi->kernel), "%s", ci->kernel);
		snprintf(pi->initrd, sizeof(pi->initrd), "%s", ci->initrd);
		snprintf(pi->cmdline, sizeof(pi->cmdline), "%s", ci->cmdline);
		pi->min_memory_mib = ci->min_memory_mib;
		pi->cloud_init = ci->cloud_init;
		snprintf(pi->ssh_user, sizeof(pi->ssh_user), "%s", ci->ssh_user);
		char classes[sizeof(ci->gpu_classes)], *save = NULL;
		snprintf(classes, sizeof(classes), "%s", ci->gpu_classes);
		for (char *tok = strtok_r(classes, ", ", &save);
		     tok && pi->n_gpu_classes < PROV_IMAGE_CLASSES_MAX;
		     tok = strtok_r(NULL, ", ", &save))
			snprintf(pi->gpu_classes[pi->n_gpu_classes++], PROV_CLASS_MAX, "%s", tok);
	}
	for (size_t i = 0; i < cfg->ngpus; i++) {
		snprintf(gpus[i].pci_addr, sizeof(gpus[i].pci_addr), "%.12s", cfg->gpus[i].address);
		snprintf(gpus[i].class_name, sizeof(gpus[i].class_name), "%s",
			 cfg->gpus[i].class_name);
	}
	*pc = (struct prov_config){
		.uri = cfg->uri,
		.name_prefix = cfg->name_prefix,
		.owner = owner,
		.domain_type = strcmp(cfg->domain_type, "qemu") ? PROV_DOMAIN_KVM : PROV_DOMAIN_QEMU,
		.images = images,
		.n_images = cfg->nimages,
		.gpus = gpus,
		.n_gpus = cfg->ngpus,
		.cpu_overcommit = cfg->overcommit_cpu_milli / 1000.0,
		.mem_overcommit = cfg->overcommit_mem_milli / 1000.0,
		.max_vcpus = cfg->capacity_vcpus,
		.max_memory_mib = cfg->capacity_memory_mib,
		.state_dir = cfg->state_dir,
		.log_archive_dir = cfg->archive_dir,
		.net = !strcmp(cfg->network, "nat") ? PROV_NET_NAT :
		       !strcmp(cfg->network, "user") ? PROV_NET_USER : PROV_NET_NONE,
		.forward_address = cfg->forward_address,
		.forward_port_min = (uint16_t)cfg->forward_port_min,
		.forward_port_max = (uint16_t)cfg->forward_port_max,
		.guest_outbound = cfg->guest_outbound,
	};
}

int keeper_check_config(const struct config *cfg, char *why)
{
	struct prov_image images[CONFIG_IMAGES_MAX];
	struct prov_gpu gpus[CONFIG_GPUS_MAX];
	struct prov_config pc;

	prov_config_of(cfg, NULL, images, gpus, &pc);
	return prov_config_validate(&pc, why);
}

static int open_prov(struct keeper *k, char *why)
{
	struct prov_image images[CONFIG_IMAGES_MAX];
	struct prov_gpu gpus[CONFIG_GPUS_MAX];
	struct prov_config pc;
	char owner[2 * PUBKEY_LEN + 1];

	/* Other nodes on this host may use the same prefix: each domain
	 * records whose it is. */
	hex_encode(k->d.key->pub, PUBKEY_LEN, owner);
	prov_config_of(k->d.cfg, owner, images, gpus, &pc);
	pc.on_event = keeper_on_prov_event;
	pc.event_arg = k;
	return prov_open(&k->prov, &pc, why);
}

int keeper_start(struct keeper **out, const struct keeper_deps *deps, char *why)
{
	struct keeper *k = calloc(1, sizeof(*k));
	struct meter_opts mo = { .pin_dir = deps->cfg->pin_dir };
	struct prov_reconcile_report rep;
	char note[WHY_MAX] = "";
	int rc;

	if (!k)
		return TALLY_E_NOMEM;
	k->d = *deps;
	pthread_condattr_t ca;

	pthread_mutex_init(&k->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&k->wake, &ca);
	pthread_condattr_destroy(&ca);
	if ((rc = meter_open(&k->meter, &mo, why)))
		goto err;
	log_info("CPU meter attached (%s), pinned in %s", meter_attach_kind(k->meter),
		 deps->cfg->pin_dir);
	gpu_meter_open(&k->gpu, NULL, note);
	log_info("%s", note);
	if ((rc = open_prov(k, why)))
		goto err;
	if ((rc = prov_reconcile(k->prov, lease_standing, k, &rep, why)))
		goto err;
	log_info("reconciled VMs: %u adopted, %u orphans removed, %u stopped removed, "
		 "%u stray files removed", rep.adopted, rep.removed_orphans, rep.removed_stopped,
		 rep.removed_files);
	if (rep.foreign)
		log_info("reconciled VMs: %u domain%s named %s* left alone: made by another node"
			 " on this host (or by a tallyd that did not record its maker, for a lease"
			 " that is not this node's)", rep.foreign, rep.foreign == 1 ? "" : "s",
			 deps->cfg->name_prefix);
	ledger_set_commit_hook(deps->ledger, on_commit, k);
	if ((rc = pthread_create(&k->thread, NULL, keeper_main, k))) {
		snprintf(why, WHY_MAX, "cannot start the keeper thread: %s", strerror(rc));
		rc = TALLY_E_INTERNAL;
		ledger_set_commit_hook(deps->ledger, NULL, NULL);
		goto err;
	}
	*out = k;
	return 0;
err:
	if (k->prov)
		prov_close(k->prov);
	gpu_meter_close(&k->gpu);
	if (k->meter)
		meter_close(k->meter);
	free(k);
	return rc;
}

int keeper_capacity(struct keeper *k, struct prov_capacity *c, char *why)
{
	return prov_capacity(k->prov, c, why);
}

void keeper_stop(struct keeper *k)
{
	pthread_mutex_lock(&k->lock);
	k->stop = true;
	pthread_cond_signal(&k->wake);
	pthread_mutex_unlock(&k->lock);
	pthread_join(k->thread, NULL);
	ledger_set_commit_hook(k->d.ledger, NULL, NULL);
	pthread_mutex_lock(&k->lock);
	while (k->stopping || k->starting)
		pthread_cond_wait(&k->wake, &k->lock);
	/* Stops still waiting for libvirt: the next start's reconcile removes
	 * those VMs (their leases are closed). */
	for (size_t i = 0; i < k->nrestops; i++)
		free(k->restops[i]);
	k->nrestops = 0;
	pthread_mutex_unlock(&k->lock);
	/* VMs keep running and meters keep counting: a restarted node takes
	 * over where this one stopped. */
	prov_close(k->prov);
	gpu_meter_close(&k->gpu);
	meter_close(k->meter);
	for (size_t i = 0; i < k->nkept; i++)
		free(k->kept[i].start);
	free(k->kept);
	pthread_cond_destroy(&k->wake);
	pthread_mutex_destroy(&k->lock);
	free(k);
}
