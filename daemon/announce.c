/* The node's PROVIDER announcement (announce.h). */
#include "daemon/announce.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/log.h"
#include "lib/errors.h"

#define ANNOUNCE_POLL_MS 200
#define ANNOUNCE_RETRY_MS 2000
#define ANNOUNCE_WATCH_MS 1000

static int by_name(const void *a, const void *b)
{
	return strcmp(a, b);
}

int announce_offer(const struct config *cfg, bool runs_vms, const struct prov_capacity *cap,
		   struct provider_offer *o, char *why)
{
	char inner[WHY_MAX];

	memset(o, 0, sizeof(*o));
	if (!(cfg->announce > 0 || (cfg->announce < 0 && runs_vms)) || cfg->nimages == 0)
		return 0;
	if (cfg->endpoint[0])
		snprintf(o->endpoint, sizeof(o->endpoint), "%s", cfg->endpoint);
	else
		snprintf(o->endpoint, sizeof(o->endpoint), "%s://%.200s",
			 cfg->api.tls_cert[0] ? "https" : "http", cfg->listen);
	o->prices = cfg->prices;
	o->interval_s = cfg->interval_s;
	/* The bounds the keeper checks a lease against (keeper_check_admission):
	 * announced, the chain holds every LEASE_OPEN to them. */
	o->sla_max_credit_ppm = cfg->sla_max_credit_ppm;
	o->sla_min_delay_ppm = cfg->sla_min_delay_ppm;
	if (cfg->nimages > PROVIDER_IMAGES_MAX)
		return why_set(why, TALLY_E_INVALID, "%zu images in the catalogue; an announcement"
			       " holds at most %d", cfg->nimages, PROVIDER_IMAGES_MAX);
	for (size_t i = 0; i < cfg->nimages; i++)
		snprintf(o->images[o->nimages++], sizeof(o->images[0]), "%s", cfg->images[i].name);
	qsort(o->images, o->nimages, sizeof(o->images[0]), by_name);
	for (size_t i = 0; i < cfg->ngpus; i++) {
		bool seen = false;

		for (uint32_t j = 0; j < o->ngpu_classes; j++)
			seen |= !strcmp(o->gpu_classes[j], cfg->gpus[i].class_name);
		if (seen || !cfg->gpus[i].class_name[0])
			continue;
		if (o->ngpu_classes == PROVIDER_GPU_CLASSES_MAX)
			return why_set(why, TALLY_E_INVALID, "more than %d GPU classes",
				       PROVIDER_GPU_CLASSES_MAX);
		snprintf(o->gpu_classes[o->ngpu_classes++], sizeof(o->gpu_classes[0]), "%s",
			 cfg->gpus[i].class_name);
	}
	qsort(o->gpu_classes, o->ngpu_classes, sizeof(o->gpu_classes[0]), by_name);
	/* Admission's totals (prov_capacity). A node that runs no VMs checks
	 * no room for a lease (its keeper is what would): it announces what
	 * [provider] says, or no limit. */
	o->vcpus = cap ? cap->vcpus : cfg->capacity_vcpus ? cfg->capacity_vcpus : UINT32_MAX;
	o->memory_mib = cap ? cap->memory_mib :
			cfg->capacity_memory_mib ? cfg->capacity_memory_mib : UINT32_MAX;
	o->gpus = (uint32_t)cfg->ngpus;
	snprintf(o->region, sizeof(o->region), "%s", cfg->region);
	if (provider_offer_check(o, inner))
		return why_set(why, TALLY_E_INVALID, "[provider]: the node's announcement would be"
			       " refused: %s", inner);
	return 0;
}

struct announcer {
	struct announce_deps d;
	struct provider_offer want;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stop;
};

static bool same_offer(const struct provider_offer *a, const struct provider_offer *b)
{
	struct enc x, y;
	bool same;

	enc_init(&x);
	enc_init(&y);
	provider_offer_encode_to(&x, a);
	provider_offer_encode_to(&y, b);
	same = !enc_error(&x) && !enc_error(&y) && x.len == y.len && !memcmp(x.buf, y.buf, x.len);
	enc_free(&x);
	enc_free(&y);
	return same;
}

enum standing { CHAIN_DIFFERS, CHAIN_CURRENT, CHAIN_UNREAD };

/* Whether the chain holds what the node wants; *height the entry's.
 * CHAIN_UNREAD when the registry could not be read (the caller waits and
 * asks again: an unread entry is not one that differs). */
static enum standing chain_current(struct announcer *a, uint64_t *height)
{
	struct provider_entry e;
	int rc = ledger_provider(a->d.ledger, a->d.key->pub, &e);

	*height = rc ? 0 : e.height;
	if (rc == TALLY_E_NOTFOUND)
		return provider_offer_withdrawn(&a->want) ? CHAIN_CURRENT : CHAIN_DIFFERS;
	if (rc)
		return CHAIN_UNREAD;
	if (provider_offer_withdrawn(&a->want))
		return provider_offer_withdrawn(&e.offer) ? CHAIN_CURRENT : CHAIN_DIFFERS;
	return same_offer(&e.offer, &a->want) ? CHAIN_CURRENT : CHAIN_DIFFERS;
}

static int submit(struct announcer *a, uint8_t hash[HASH_LEN], char *why)
{
	struct tx *t = calloc(1, sizeof(*t));
	struct enc e;
	int rc;

	if (!t)
		return why_set(why, TALLY_E_NOMEM, "out of memory");
	t->version = TX_VERSION;
	t->kind = TX_PROVIDER;
	snprintf(t->chain_id, sizeof(t->chain_id), "%s", a->d.chain_id);
	memcpy(t->signer, a->d.key->pub, PUBKEY_LEN);
	t->u.provider = a->want;
	enc_init(&e);
	rc = ledger_next_nonce(a->d.ledger, t->signer, &t->nonce);
	if (!rc)
		rc = tx_sign(t, a->d.key, a->d.genesis_hash);
	if (!rc) {
		tx_encode(&e, t);
		rc = enc_error(&e);
	}
	if (!rc)
		rc = ledger_submit(a->d.ledger, e.buf, e.len, hash, why);
	else
		why_set(why, rc, "cannot sign the announcement: %s", tally_strerror(rc));
	enc_free(&e);
	free(t);
	return rc;
}

/* Sleeps ms unless stopped; true when stopped. */
static bool nap(struct announcer *a, unsigned ms)
{
	struct timespec ts;
	bool stop;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&a->lock);
	if (!a->stop)
		pthread_cond_timedwait(&a->wake, &a->lock, &ts);
	stop = a->stop;
	pthread_mutex_unlock(&a->lock);
	return stop;
}

/* Brings the chain's entry to a->want, then keeps watching it: a PROVIDER
 * this key signed before (a start that failed, or a node started since with
 * another configuration) may still be in a mempool, this node's restored
 * from mempool.log or a peer's, and commit after the entry was found
 * current. Only this node signs with its key, so any later change is such
 * a stale one, and is put right. */
static void *announcer_main(void *arg)
{
	struct announcer *a = arg;
	const char *what = provider_offer_withdrawn(&a->want) ? "withdrawal" : "announcement";
	uint8_t hash[HASH_LEN];
	bool pending = false, current = false;
	uint64_t height;

	do {
		struct ledger_tx_status st = { 0 };
		char why[WHY_MAX] = "";
		enum standing cs = chain_current(a, &height);

		if (cs == CHAIN_UNREAD)
			continue;
		if (cs == CHAIN_CURRENT) {
			if (pending)
				log_info("provider %s committed at height %" PRIu64, what, height);
			else if (height && !current)
				log_info("provider announcement on the chain is current (height %"
					 PRIu64 ")", height);
			pending = false;
			current = true;
			continue;
		}
		if (current && !pending)
			log_warn("provider: an earlier PROVIDER of this node's key committed at height %"
				 PRIu64 " (sent before this start); sending the %s again", height,
				 what);
		current = false;
		if (pending && !ledger_tx_status(a->d.ledger, hash, &st) &&
		    (st.status == LEDGER_TX_PENDING || st.status == LEDGER_TX_COMMITTED))
			continue;
		if (pending)
			log_info("provider %s was not committed (%s); sending it again", what,
				 st.why[0] ? st.why : "forgotten");
		pending = submit(a, hash, why) == 0;
		if (pending) {
			log_info("provider %s submitted; waiting for it to commit", what);
		} else {
			log_warn("provider %s not submitted: %s", what, why);
			if (nap(a, ANNOUNCE_RETRY_MS))
				return NULL;
		}
	} while (!nap(a, current ? ANNOUNCE_WATCH_MS : ANNOUNCE_POLL_MS));
	return NULL;
}

int announcer_start(struct announcer **out, const struct announce_deps *d,
		    const struct provider_offer *o, char *why)
{
	struct announcer *a = calloc(1, sizeof(*a));

	*out = NULL;
	if (!a)
		return why_set(why, TALLY_E_NOMEM, "out of memory");
	a->d = *d;
	a->want = *o;
	pthread_mutex_init(&a->lock, NULL);
	pthread_cond_init(&a->wake, NULL);
	if (pthread_create(&a->thread, NULL, announcer_main, a)) {
		pthread_mutex_destroy(&a->lock);
		pthread_cond_destroy(&a->wake);
		free(a);
		return why_set(why, TALLY_E_NOMEM, "cannot start the announcer's thread");
	}
	*out = a;
	return 0;
}

void announcer_stop(struct announcer *a)
{
	if (!a)
		return;
	pthread_mutex_lock(&a->lock);
	a->stop = true;
	pthread_cond_signal(&a->wake);
	pthread_mutex_unlock(&a->lock);
	pthread_join(a->thread, NULL);
	pthread_mutex_destroy(&a->lock);
	pthread_cond_destroy(&a->wake);
	free(a);
}
