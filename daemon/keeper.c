/* The lease keeper (see keeper.h). One thread drives every lease of this
 * node by comparing the committed ledger state with the VMs it runs:
 *
 *   opened lease, no VM      -> provision it, commit LEASE_START
 *                               (or LEASE_CLOSE rejected when it can't)
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
#include "daemon/keeper.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon/clock.h"
#include "daemon/log.h"
#include "daemon/meter/cpumeter.h"
#include "daemon/meter/gpu.h"
#include "daemon/provision/provision.h"
#include "lib/codec.h"
#include "lib/errors.h"
#include "lib/chain/tx.h"

#define NS_PER_S 1000000000ull
#define TICK_MS 200
#define STOP_TIMEOUT_MS 5000
#define FAILURES_MAX 64
#define PROMISES_MAX 256
#define CONSOLE_TAIL 4096

enum kept_phase {
	KEPT_STARTING,      /* VM up, LEASE_START submitted, not yet committed */
	KEPT_RUNNING,       /* metering */
	KEPT_CLOSING,       /* LEASE_CLOSE submitted */
};

struct kept {
	uint8_t id[LEASE_ID_LEN];
	char hex[2 * LEASE_ID_LEN + 1];
	char vm[PROV_NAME_MAX];          /* domain name, also the meter's VM name */
	enum kept_phase phase;
	bool metered;                    /* registered with the CPU meter */
	bool inflight;                   /* a USAGE record awaits its commit */
	uint64_t inflight_seq;
	uint8_t last_tx[HASH_LEN];       /* the last transaction sent for this lease */
	uint64_t submitted_ns;           /* when the last tx of this lease went out */
	uint64_t final_end_ns;           /* the lease is ending: its last record ends here */
	uint8_t final_reason;            /* ... and it closes for this reason */
	size_t ngpus;
	char gpus[PROV_GPUS_MAX][PROV_PCI_ADDR_LEN + 1];
	struct meter_rate rate;          /* the operator view's CPU and wait % */
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
	struct kept *kept;
	size_t nkept;
	unsigned stopping;           /* VMs being stopped on their own threads */
	/* Events from the libvirt thread, handled by the keeper thread:
	 * provider failures, and guests that powered themselves off (when). */
	uint8_t failed[FAILURES_MAX][LEASE_ID_LEN];
	size_t nfailed;
	uint8_t shut[FAILURES_MAX][LEASE_ID_LEN];
	uint64_t shut_ns[FAILURES_MAX];
	size_t nshut;
	/* Room held for leases admitted but not yet provisioned. */
	struct promise {
		uint8_t id[LEASE_ID_LEN];
		struct vm_spec vm;
	} promised[PROMISES_MAX];
	size_t npromised;
};

static uint64_t wall_ns(void)
{
	return node_clock_ns();
}

static struct kept *kept_find(struct keeper *k, const uint8_t id[LEASE_ID_LEN])
{
	for (size_t i = 0; i < k->nkept; i++)
		if (!memcmp(k->kept[i].id, id, LEASE_ID_LEN))
			return &k->kept[i];
	return NULL;
}

static struct kept *kept_add(struct keeper *k, const uint8_t id[LEASE_ID_LEN])
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

static void kept_remove(struct keeper *k, struct kept *e)
{
	size_t i = (size_t)(e - k->kept);

	memmove(&k->kept[i], &k->kept[i + 1], (k->nkept - i - 1) * sizeof(*e));
	k->nkept--;
}

/* Signs tx as this node and hands it to the ledger; hash (may be NULL)
 * receives its hash. */
static int submit(struct keeper *k, struct tx *t, const char *what, const char *lease_hex,
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
	if (rc)
		log_warn("lease %.12s: %s not submitted: %s", lease_hex, what,
			 why[0] ? why : tally_strerror(rc));
	else
		log_info("lease %.12s: %s submitted", lease_hex, what);
	if (!rc && hash_out)
		memcpy(hash_out, hash, HASH_LEN);
	return rc;
}

/* A transaction this keeper sent that will never commit: the ledger left
 * it out of a block, or forgot it. */
static bool tx_lost(struct keeper *k, const uint8_t hash[HASH_LEN])
{
	struct ledger_tx_status st;

	if (ledger_tx_status(k->d.ledger, hash, &st))
		return false;
	if (st.status == LEDGER_TX_DROPPED)
		log_info("transaction %02x%02x%02x%02x... was dropped: %s; sending again", hash[0],
			 hash[1], hash[2], hash[3], st.why);
	return st.status == LEDGER_TX_DROPPED || st.status == LEDGER_TX_UNKNOWN;
}

static int submit_close(struct keeper *k, struct kept *e, enum lease_close_reason reason)
{
	struct tx t = { .kind = TX_LEASE_CLOSE };
	char what[64];

	memcpy(t.u.close.lease_id, e->id, LEASE_ID_LEN);
	t.u.close.reason = (uint8_t)reason;
	snprintf(what, sizeof(what), "LEASE_CLOSE (%s)", lease_close_reason_name(reason));
	int rc = submit(k, &t, what, e->hex, e->last_tx);
	if (!rc) {
		e->phase = KEPT_CLOSING;
		e->submitted_ns = wall_ns();
	}
	return rc;
}

static bool is_active(void *arg, const uint8_t id[LEASE_ID_LEN])
{
	struct keeper *k = arg;
	struct lease l;

	if (ledger_lease(k->d.ledger, id, &l))
		return false;
	return l.state != LEASE_CLOSED && !memcmp(l.contract.provider, k->d.key->pub, PUBKEY_LEN);
}

static void on_prov_event(void *arg, const uint8_t id[LEASE_ID_LEN], enum prov_event_kind kind,
			  const char *detail)
{
	struct keeper *k = arg;
	char hex[2 * LEASE_ID_LEN + 1];

	hex_encode(id, LEASE_ID_LEN, hex);
	log_info("lease %.12s: VM %s%s%s", hex, prov_event_name(kind), detail ? ": " : "",
		 detail ? detail : "");
	if (!prov_event_is_provider_failure(kind) && kind != PROV_EV_SHUTDOWN)
		return;
	pthread_mutex_lock(&k->lock);
	if (kind == PROV_EV_SHUTDOWN && k->nshut < FAILURES_MAX) {
		/* The tenant's own act: billed up to the moment it happened. */
		k->shut_ns[k->nshut] = wall_ns();
		memcpy(k->shut[k->nshut++], id, LEASE_ID_LEN);
	} else if (kind != PROV_EV_SHUTDOWN && k->nfailed < FAILURES_MAX) {
		memcpy(k->failed[k->nfailed++], id, LEASE_ID_LEN);
	}
	pthread_cond_signal(&k->wake);
	pthread_mutex_unlock(&k->lock);
}

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

/* The node's own admission rules for a lease addressed to it: its prices
 * and metering interval, an image from the catalogue, and room on the host.
 * Called with k->lock held. */
static int admit(struct keeper *k, const struct lease_contract *c,
		 const uint8_t except[LEASE_ID_LEN], char *why)
{
	const struct lease_prices *offer = &k->d.cfg->prices;

	if (c->prices.vcpu_second < offer->vcpu_second ||
	    c->prices.mem_gib_second < offer->mem_gib_second ||
	    c->prices.gpu_second < offer->gpu_second) {
		snprintf(why, WHY_MAX, "prices are below this node's offer (vcpu_second %" PRIu64
			 ", mem_gib_second %" PRIu64 ", gpu_second %" PRIu64 ")",
			 offer->vcpu_second, offer->mem_gib_second, offer->gpu_second);
		return TALLY_E_CONTRACT;
	}
	if (c->interval_s != k->d.cfg->interval_s) {
		snprintf(why, WHY_MAX, "the contract meters every %u s; this node meters every"
			 " %u s", c->interval_s, k->d.cfg->interval_s);
		return TALLY_E_CONTRACT;
	}
	return room_for(k, &c->vm, except, why);
}

static void unpromise(struct keeper *k, const uint8_t id[LEASE_ID_LEN])
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
	rc = admit(k, c, NULL, why);
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
	unpromise(k, lease_id);
	pthread_mutex_unlock(&k->lock);
}

/* Promises whose lease will never need the room: the LEASE_OPEN was left
 * out or forgotten, or the lease is past opened. (A lease still opened keeps
 * its promise until start_lease provisions it.) */
static void tend_promises(struct keeper *k)
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
		unpromise(k, id);
	}
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

static void start_lease(struct keeper *k, const struct lease *l)
{
	struct prov_request req = { .vm = l->contract.vm };
	struct prov_vm_info info;
	char why[WHY_MAX] = "";
	struct kept *e = kept_add(k, l->id);

	if (!e)
		return;
	memcpy(req.lease_id, l->id, LEASE_ID_LEN);
	/* A VM adopted at reconcile (the node died between define and
	 * LEASE_START) is used as it is. */
	int rc = prov_lookup(k->prov, l->id, &info);
	if (rc) {
		rc = admit(k, &l->contract, l->id, why);
		if (!rc)
			rc = prov_create(k->prov, &req, &info, why);
	}
	unpromise(k, l->id);    /* the VM exists now, or never will */
	if (rc) {
		log_warn("lease %.12s: rejected: %s", e->hex, why);
		submit_close(k, e, CLOSE_REJECTED);
		return;
	}
	e->ngpus = info.n_gpus;
	memcpy(e->gpus, info.gpus, sizeof(e->gpus));
	if (gpu_meter_attach(&k->gpu, l->id, (const char (*)[13])e->gpus, e->ngpus, why))
		log_warn("lease %.12s: %s", e->hex, why);
	/* The CPU meter starts when LEASE_START commits (tend_running): the
	 * boot before it is not the tenant's. */
	struct tx t = { .kind = TX_LEASE_START };
	memcpy(t.u.start.lease_id, l->id, LEASE_ID_LEN);
	if (!submit(k, &t, "LEASE_START", e->hex, e->last_tx)) {
		e->phase = KEPT_STARTING;
		e->submitted_ns = wall_ns();
	}
}

/* Builds, signs and submits the next usage record of a running lease, for
 * [last end, end_ns]. */
static int submit_usage(struct keeper *k, struct kept *e, const struct lease *l, uint64_t end_ns)
{
	const struct lease_contract *c = &l->contract;
	uint64_t start_ns = l->next_seq ? l->last_end_ns : l->started_ns;
	struct meter_sample s;
	struct tx t = { .kind = TX_USAGE };
	struct usage_record *u = &t.u.usage;
	char what[48];

	if (end_ns <= start_ns)
		return TALLY_E_RANGE;
	int rc = meter_vm_prepare(k->meter, e->vm, l->next_seq, &s);
	if (rc) {
		log_warn("lease %.12s: meter read failed: %s", e->hex, tally_strerror(rc));
		return rc;
	}
	uint64_t span = end_ns - start_ns;
	memcpy(u->lease_id, l->id, LEASE_ID_LEN);
	u->seq = l->next_seq;
	memcpy(u->prev_hash, l->last_usage_hash, HASH_LEN);
	u->start_ns = start_ns;
	u->end_ns = end_ns;
	/* The meter counts all of QEMU's threads (emulator, I/O too), and reads
	 * the counters a little after end_ns: both CPU time and run-queue
	 * delay can exceed what the VM's vCPUs could have in the span. The
	 * record carries at most the vCPUs' worth of each (the chain's rule,
	 * contracts/lease.c): the tenant pays for no more than it leased, and
	 * an SLA breach is judged against the same vCPUs x span. */
	unsigned __int128 all = (unsigned __int128)c->vm.vcpus * span;
	uint64_t vcpu_span = all > UINT64_MAX ? UINT64_MAX : (uint64_t)all;
	u->cpu_ns = s.delta.cpu_ns < vcpu_span ? s.delta.cpu_ns : vcpu_span;
	u->run_delay_ns = s.delta.run_delay_ns < vcpu_span ? s.delta.run_delay_ns : vcpu_span;
	u->mem_mib = c->vm.memory_mib;
	u->mem_peak_bytes = s.mem_peak_bytes;
	uint64_t gpu_total = 0;
	rc = gpu_meter_lease_ns(&k->gpu, l->id, (const char (*)[13])e->gpus, e->ngpus,
				end_ns - l->started_ns, &gpu_total, &u->gpu_source);
	if (rc)
		return rc;
	u->gpu_ns = gpu_total > l->gpu_ns ? gpu_total - l->gpu_ns : 0;
	if ((unsigned __int128)u->gpu_ns > (unsigned __int128)c->vm.gpus * span)
		u->gpu_ns = (uint64_t)c->vm.gpus * span;
	snprintf(what, sizeof(what), "USAGE %" PRIu64, u->seq);
	rc = submit(k, &t, what, e->hex, e->last_tx);
	if (!rc) {
		e->inflight = true;
		e->inflight_seq = u->seq;
		e->submitted_ns = wall_ns();
	}
	return rc;
}

/* A VM being taken down: a graceful shutdown may take STOP_TIMEOUT_MS, so it
 * runs on its own thread and never holds up the other leases' records. */
struct vm_stop {
	struct keeper *k;
	uint8_t id[LEASE_ID_LEN];
	char hex[2 * LEASE_ID_LEN + 1];
	char vm[PROV_NAME_MAX];
	uint8_t reason;
};

static void finish_stop(struct vm_stop *st)
{
	char why[WHY_MAX] = "";
	bool graceful = false;

	int rc = prov_stop(st->k->prov, st->id, STOP_TIMEOUT_MS, &graceful, why);
	if (rc && rc != TALLY_E_NOTFOUND)
		log_error("lease %.12s: VM not stopped: %s", st->hex, why);
	else
		log_info("lease %.12s: closed (%s), VM %s removed", st->hex,
			 lease_close_reason_name(st->reason), st->vm);
}

static void *stop_thread(void *arg)
{
	struct vm_stop *st = arg;
	struct keeper *k = st->k;

	finish_stop(st);
	free(st);
	pthread_mutex_lock(&k->lock);
	k->stopping--;
	pthread_cond_broadcast(&k->wake);
	pthread_mutex_unlock(&k->lock);
	return NULL;
}

/* Called with k->lock held. */
static void stop_vm(struct keeper *k, struct kept *e, const struct lease *l)
{
	struct vm_stop *st = calloc(1, sizeof(*st));
	pthread_attr_t attr;
	pthread_t t;

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
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	k->stopping++;
	if (pthread_create(&t, &attr, stop_thread, st)) {
		k->stopping--;
		finish_stop(st);     /* no thread to spare: stop it here */
		free(st);
	}
	pthread_attr_destroy(&attr);
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
			/* Not committed yet. One the ledger left out never
			 * commits: send it again at once (with a fresh nonce). */
			if (tx_lost(k, e->last_tx) ||
			    now - e->submitted_ns > 4 * interval + 10 * NS_PER_S)
				e->inflight = false;
			return;
		}
		meter_vm_commit(k->meter, e->vm, e->inflight_seq);
		e->inflight = false;
	}
	if (e->phase == KEPT_CLOSING) {
		if (tx_lost(k, e->last_tx) || now - e->submitted_ns > 10 * NS_PER_S)
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
			submit_close(k, e, CLOSE_TENANT);
			return;
		}
	}
	uint64_t max_charge = 0;
	bool exhausted = settle_max_interval_charge(c, &max_charge) || l->escrow < max_charge;
	bool term_over = now >= term_end;
	if (!e->final_end_ns && (term_over || exhausted)) {
		/* Decide once where the last record ends, so the lease ends with
		 * one final record and a close rather than a trickle of records. */
		e->final_end_ns = term_over ? term_end : now;
		e->final_reason = term_over ? CLOSE_TERM_ENDED : CLOSE_EXHAUSTED;
	}
	if (e->final_end_ns) {
		if (last < e->final_end_ns)
			submit_usage(k, e, l, e->final_end_ns);
		else if (e->final_reason != CLOSE_NONE)
			submit_close(k, e, e->final_reason);
		return;
	}
	/* After downtime the record covers the whole gap: the pinned meter
	 * counted through it, and the contract takes a span of any length. */
	if (now - last >= interval)
		submit_usage(k, e, l, now);
}

/* Guests that powered themselves off: the tenant's act, billed up to the
 * moment it happened by a last record, then closed as guest-stopped. */
static void tend_shutdowns(struct keeper *k)
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

static void tend_failed(struct keeper *k)
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
		submit_close(k, e, CLOSE_PROVIDER_FAILED);
	}
	k->nfailed = 0;
}

static void tend_lease(struct keeper *k, const struct lease *l, uint64_t now)
{
	struct kept *e = kept_find(k, l->id);

	switch (l->state) {
	case LEASE_OPENED:
		if (!e)
			start_lease(k, l);
		else if (e->phase == KEPT_STARTING &&
			 (tx_lost(k, e->last_tx) || now - e->submitted_ns > 10 * NS_PER_S)) {
			struct tx t = { .kind = TX_LEASE_START };
			memcpy(t.u.start.lease_id, l->id, LEASE_ID_LEN);
			if (!submit(k, &t, "LEASE_START (again)", e->hex, e->last_tx))
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
				submit_close(k, e, l->state == LEASE_CLOSING ? CLOSE_TENANT
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

/* Only opened, running and closing leases are listed, so a node's history of closed
 * leases costs nothing here; a lease this node still keeps that is no longer
 * among them has closed. */
static void tend(struct keeper *k)
{
	static const uint8_t active[] = { LEASE_OPENED, LEASE_RUNNING, LEASE_CLOSING };
	const struct keeper_deps *d = &k->d;
	uint64_t now = wall_ns();

	tend_promises(k);
	tend_shutdowns(k);
	tend_failed(k);
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
		stop_vm(k, e, &l);
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

static int open_prov(struct keeper *k, char *why)
{
	const struct config *cfg = k->d.cfg;
	struct prov_image images[CONFIG_IMAGES_MAX];
	struct prov_gpu gpus[CONFIG_GPUS_MAX];

	memset(images, 0, sizeof(images));
	memset(gpus, 0, sizeof(gpus));
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
	struct prov_config pc = {
		.uri = cfg->uri,
		.name_prefix = cfg->name_prefix,
		.domain_type = strcmp(cfg->domain_type, "qemu") ? PROV_DOMAIN_KVM : PROV_DOMAIN_QEMU,
		.images = images,
		.n_images = cfg->nimages,
		.gpus = gpus,
		.n_gpus = cfg->ngpus,
		.cpu_overcommit = cfg->overcommit_cpu_milli / 1000.0,
		.mem_overcommit = cfg->overcommit_mem_milli / 1000.0,
		.state_dir = cfg->state_dir,
		.log_archive_dir = cfg->archive_dir,
		.net = !strcmp(cfg->network, "nat") ? PROV_NET_NAT :
		       !strcmp(cfg->network, "user") ? PROV_NET_USER : PROV_NET_NONE,
		.forward_address = cfg->forward_address,
		.forward_port_min = (uint16_t)cfg->forward_port_min,
		.forward_port_max = (uint16_t)cfg->forward_port_max,
		.guest_outbound = cfg->guest_outbound,
		.on_event = on_prov_event,
		.event_arg = k,
	};
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
	if ((rc = prov_reconcile(k->prov, is_active, k, &rep, why)))
		goto err;
	log_info("reconciled VMs: %u adopted, %u orphans removed, %u stopped removed, "
		 "%u stray files removed", rep.adopted, rep.removed_orphans, rep.removed_stopped,
		 rep.removed_files);
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

void keeper_stop(struct keeper *k)
{
	pthread_mutex_lock(&k->lock);
	k->stop = true;
	pthread_cond_signal(&k->wake);
	pthread_mutex_unlock(&k->lock);
	pthread_join(k->thread, NULL);
	ledger_set_commit_hook(k->d.ledger, NULL, NULL);
	pthread_mutex_lock(&k->lock);
	while (k->stopping)
		pthread_cond_wait(&k->wake, &k->lock);
	pthread_mutex_unlock(&k->lock);
	/* VMs keep running and meters keep counting: a restarted node takes
	 * over where this one stopped. */
	prov_close(k->prov);
	gpu_meter_close(&k->gpu);
	meter_close(k->meter);
	free(k->kept);
	pthread_cond_destroy(&k->wake);
	pthread_mutex_destroy(&k->lock);
	free(k);
}

static json_t *console_tail(const char *path)
{
	char buf[CONSOLE_TAIL + 1];
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return json_string("");
	off_t size = lseek(fd, 0, SEEK_END);
	off_t from = size > CONSOLE_TAIL ? size - CONSOLE_TAIL : 0;
	ssize_t got = pread(fd, buf, CONSOLE_TAIL, from);
	close(fd);
	if (got < 0)
		got = 0;
	buf[got] = '\0';
	/* jansson refuses invalid UTF-8; a console log can hold anything. */
	for (ssize_t i = 0; i < got; i++)
		if ((unsigned char)buf[i] >= 0x80 || (buf[i] < 0x20 && buf[i] != '\n' &&
						      buf[i] != '\t'))
			buf[i] = '?';
	return json_string(buf);
}

/* How the tenant logs in: host, port and user, and the guest's host keys
 * once cloud-init has printed them on the console. */
static json_t *ssh_json(struct keeper *k, const struct prov_vm_info *info)
{
	struct prov_host_keys *hk = calloc(1, sizeof(*hk));
	json_t *keys = json_array(), *fps = json_array();

	if (hk && prov_host_keys_read(info->console_log, hk) == 0) {
		for (size_t i = 0; i < hk->n_keys; i++)
			json_array_append_new(keys, json_string(hk->keys[i]));
		for (size_t i = 0; i < hk->n_fingerprints; i++)
			json_array_append_new(fps, json_string(hk->fingerprints[i]));
	}
	free(hk);
	return json_pack("{s:s, s:i, s:s, s:o, s:o}", "host", k->d.cfg->public_host,
			 "port", info->ssh_port, "user", info->ssh_user,
			 "host_keys", keys, "host_key_fingerprints", fps);
}

int keeper_vm_private(struct keeper *k, const uint8_t lease_id[LEASE_ID_LEN], json_t **out)
{
	struct prov_vm_info *info = malloc(sizeof(*info));

	if (!info)
		return TALLY_E_NOMEM;
	if (prov_lookup(k->prov, lease_id, info)) {
		free(info);
		return TALLY_E_NOTFOUND;
	}
	const char *net = k->d.cfg->network;
	*out = json_pack("{s:s, s:s, s:s, s:b, s:s, s:o, s:o}", "domain", info->name,
			 "hostname", info->hostname, "network", net, "running", info->running,
			 "address",
			 !strcmp(net, "none") ? "none (no network)" :
			 !strcmp(net, "user") ? (info->ssh_port ? "user-mode network, SSH forwarded" :
						 "user-mode network, no forwarded port") :
						"NAT, see the guest's DHCP lease",
			 "ssh", info->ssh_port ? ssh_json(k, info) : json_null(),
			 "console", console_tail(info->console_log));
	free(info);
	return *out ? 0 : TALLY_E_NOMEM;
}

json_t *keeper_vms_json(struct keeper *k)
{
	json_t *arr = json_array();
	uint64_t now = wall_ns();

	pthread_mutex_lock(&k->lock);
	for (size_t i = 0; i < k->nkept; i++) {
		struct kept *e = &k->kept[i];
		struct meter_sample s;
		struct meter_share sh;
		struct lease l;
		if (!e->metered || meter_vm_read(k->meter, e->vm, &s) ||
		    ledger_lease(k->d.ledger, e->id, &l))
			continue;
		bool known = meter_rate_update(&e->rate, &s.total, &sh);
		json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:o, s:I, s:o,"
						     " s:I, s:I, s:I}",
						     "lease", e->hex, "domain", e->vm, "state",
						     lease_state_name(l.state),
						     "vcpus", (json_int_t)l.contract.vm.vcpus,
						     "memory_mib",
						     (json_int_t)l.contract.vm.memory_mib,
						     "cpu_ns", (json_int_t)s.total.cpu_ns,
						     "cpu_pct", known ? json_real(sh.cpu_pct) : json_null(),
						     "run_delay_ns", (json_int_t)s.total.run_delay_ns,
						     "run_delay_pct",
						     known ? json_real(sh.wait_pct) : json_null(),
						     "mem_bytes", (json_int_t)s.mem_current_bytes,
						     "mem_peak_bytes", (json_int_t)s.mem_peak_bytes,
						     "gpu_ns", (json_int_t)l.gpu_ns));
	}
	pthread_mutex_unlock(&k->lock);
	return json_pack("{s:I, s:o}", "time_ns", (json_int_t)now, "vms", arr);
}

size_t keeper_vm_count(struct keeper *k)
{
	pthread_mutex_lock(&k->lock);
	size_t n = k->nkept;
	pthread_mutex_unlock(&k->lock);
	return n;
}
