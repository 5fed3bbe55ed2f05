/* The consensus driver (see driver.h). */
#include "daemon/driver.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/clock.h"
#include "daemon/consensus/timers.h"
#include "daemon/log.h"
#include "lib/chain/evidence.h"
#include "lib/errors.h"

#define POLL_MS 50
#define EVIDENCE_MAX 64
#define EVIDENCE_RETRY_MS 500         /* a submission refused for now is tried again ... */
#define EVIDENCE_RETRY_MAX_MS 30000   /* ... after twice as long each time, up to this */
#define MS 1000000ull

/* A message from a peer, waiting for the engine. */
struct dmsg {
	uint8_t from[PUBKEY_LEN];
	uint8_t *bytes;
	size_t len;
	struct dmsg *next;
};

struct driver {
	bool networked;
	struct engine_io io;
	struct driver_deps d;

	/* Guards everything below: the network thread, the engine's callbacks
	 * (under the ledger's lock, on whichever thread entered the engine)
	 * and the driver's thread meet here. Never held while calling the
	 * ledger or the transport. */
	pthread_mutex_t mu;
	pthread_cond_t cv;                /* on CLOCK_MONOTONIC */
	struct dmsg *q, *qtail;
	size_t nq, qbytes;
	uint64_t dropped;                 /* messages refused for a full queue */
	struct cs_timers timers;          /* on the node's clock */
	bool regossip;                    /* a peer connected */
	bool txs;                         /* a transaction entered the mempool */
	struct cs_evidence evidence[EVIDENCE_MAX];
	size_t nevidence;
	/* Evidence whose submission failed, tried again (driver thread only). */
	struct { struct cs_evidence ev; unsigned tries; uint64_t at_ns; } retry[EVIDENCE_MAX];
	size_t nretry;

	uint64_t height;                  /* the tip last logged */
};

static void wake_locked(struct driver *d)
{
	pthread_cond_signal(&d->cv);
}

/* --- the engine's I/O (called under the ledger's lock) ----------------------------- */

static void io_broadcast(void *ctx, const uint8_t *msg, size_t len)
{
	struct driver *d = ctx;
	int rc;

	if (!d->d.net)
		return;
	rc = net_broadcast_consensus(d->d.net, msg, len);
	/* The engine's regossip sends what matters again. */
	if (rc)
		log_debug("consensus: a message could not be queued for peers: %s",
			  tally_strerror(rc));
}

static void io_schedule(void *ctx, uint64_t at_ns, const struct cs_timeout *t)
{
	struct driver *d = ctx;

	pthread_mutex_lock(&d->mu);
	if (cs_timers_set(&d->timers, at_ns, t))
		log_error("consensus: out of memory for a timer (height %" PRIu64 " round %u);"
			  " regossip and peers' messages move on without it", t->height, t->round);
	wake_locked(d);
	pthread_mutex_unlock(&d->mu);
}

static uint64_t io_now(void *ctx)
{
	(void)ctx;
	return node_clock_ns();
}

void driver_on_evidence(void *ctx, const struct cs_evidence *ev)
{
	struct driver *d = ctx;

	pthread_mutex_lock(&d->mu);
	if (d->nevidence < EVIDENCE_MAX)
		d->evidence[d->nevidence++] = *ev;
	wake_locked(d);
	pthread_mutex_unlock(&d->mu);
}

void driver_on_txs(void *ctx)
{
	struct driver *d = ctx;

	pthread_mutex_lock(&d->mu);
	d->txs = true;
	wake_locked(d);
	pthread_mutex_unlock(&d->mu);
}

/* --- the transport's side (network thread) --------------------------------------------- */

static void on_message(void *ctx, const uint8_t from[PUBKEY_LEN], const uint8_t *msg, size_t len)
{
	struct driver *d = ctx;
	struct dmsg *m;
	bool full;

	pthread_mutex_lock(&d->mu);
	full = d->nq >= DRIVER_QUEUE_MAX || d->qbytes + len > DRIVER_QUEUE_BYTES;
	if (full)
		d->dropped++;
	pthread_mutex_unlock(&d->mu);
	if (full)
		return;
	m = calloc(1, sizeof(*m));
	if (m)
		m->bytes = malloc(len ? len : 1);
	if (!m || !m->bytes) {
		free(m);
		return;
	}
	memcpy(m->from, from, PUBKEY_LEN);
	memcpy(m->bytes, msg, len);
	m->len = len;
	pthread_mutex_lock(&d->mu);
	if (d->qtail)
		d->qtail->next = m;
	else
		d->q = m;
	d->qtail = m;
	d->nq++;
	d->qbytes += len;
	wake_locked(d);
	pthread_mutex_unlock(&d->mu);
}

static void on_peer(void *ctx, const uint8_t key[PUBKEY_LEN])
{
	struct driver *d = ctx;
	(void)key;

	pthread_mutex_lock(&d->mu);
	d->regossip = true;
	wake_locked(d);
	pthread_mutex_unlock(&d->mu);
}

/* --- life ------------------------------------------------------------------------------ */

struct driver *driver_new(bool networked)
{
	struct driver *d = calloc(1, sizeof(*d));
	pthread_condattr_t ca;

	if (!d)
		return NULL;
	d->networked = networked;
	d->io = (struct engine_io){ .ctx = d, .broadcast = io_broadcast,
				    .schedule = io_schedule, .now_ns = io_now };
	pthread_mutex_init(&d->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&d->cv, &ca);
	pthread_condattr_destroy(&ca);
	return d;
}

const struct engine_io *driver_io(struct driver *d)
{
	return d->networked ? &d->io : NULL;
}

void driver_attach(struct driver *d, const struct driver_deps *deps)
{
	d->d = *deps;
	if (d->d.net) {
		struct net_consensus c = { .ctx = d, .on_message = on_message, .on_peer = on_peer };

		net_set_consensus(d->d.net, &c);
	}
}

void driver_free(struct driver *d)
{
	if (!d)
		return;
	while (d->q) {
		struct dmsg *m = d->q;

		d->q = m->next;
		free(m->bytes);
		free(m);
	}
	cs_timers_free(&d->timers);
	pthread_cond_destroy(&d->cv);
	pthread_mutex_destroy(&d->mu);
	free(d);
}

/* --- the loop ---------------------------------------------------------------------------- */

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Waits on the condition for at most wait_ns (mu held). */
static void wait_locked(struct driver *d, uint64_t wait_ns)
{
	uint64_t until = mono_ns() + wait_ns;
	struct timespec ts = { .tv_sec = (time_t)(until / 1000000000ull),
			       .tv_nsec = (long)(until % 1000000000ull) };

	pthread_cond_timedwait(&d->cv, &d->mu, &ts);
}

/* Logs each block the tip moved by (decided here or synced). */
static void log_commits(struct driver *d)
{
	struct ledger_status st;
	struct block_header h;
	char who[2 * PUBKEY_LEN + 1];

	if (ledger_status(d->d.ledger, &st) || st.height == d->height)
		return;
	if (st.height == d->height + 1 && !ledger_header(d->d.ledger, st.height, &h)) {
		hex_encode(h.proposer, PUBKEY_LEN, who);
		char when[32];

		log_info("block %" PRIu64 " committed: proposer %.16s, time %s", st.height, who,
			 log_time_ns(h.time_ns, when));
	} else if (st.height > d->height) {
		log_info("blocks %" PRIu64 "..%" PRIu64 " committed", d->height + 1, st.height);
	}
	d->height = st.height;
}

/* Whether a refused submission may pass later: the node was short of room
 * (the mempool, the disk, memory) or its store failed. A rule's refusal
 * (the evidence judged already, too old, ...) is final. */
static bool evidence_transient(int rc)
{
	return rc == TALLY_E_CAPACITY || rc == TALLY_E_DISKFULL || rc == TALLY_E_NOMEM ||
	       rc == TALLY_E_STORE || rc == TALLY_E_IO || rc == TALLY_E_NONCE ||
	       rc == TALLY_E_REPLAY;
}

static const char *votes_name(const struct cs_evidence *ev)
{
	return ev->a.type == VOTE_PREVOTE ? "prevotes" : "precommits";
}

/* Signs and submits an EVIDENCE transaction for ev with the node key (the
 * keeper's account too: a nonce it took meanwhile makes this one stale, so
 * it is signed again with the next); gossip takes it to the others. An
 * offence seen once must not be lost to a passing shortage: a transient
 * refusal is tried again EVIDENCE_RETRY_MS later, then twice as long each
 * time up to EVIDENCE_RETRY_MAX_MS, until the node takes it or refuses it
 * for good (judged already, or older than the unbonding period: the chain's
 * own bound), EVIDENCE_MAX offences waiting at most. tries: the
 * submissions made before this one. */
static void submit_evidence(struct driver *d, const struct cs_evidence *ev, unsigned tries)
{
	struct signed_vote a = { .v = ev->a }, b = { .v = ev->b };
	char why[WHY_MAX] = "", hex[2 * PUBKEY_LEN + 1], th[2 * HASH_LEN + 1];
	uint8_t hash[HASH_LEN];
	struct tx t;
	int rc = 0;

	memcpy(a.validator, ev->validator, PUBKEY_LEN);
	memcpy(b.validator, ev->validator, PUBKEY_LEN);
	memcpy(a.sig, ev->sig_a, SIG_LEN);
	memcpy(b.sig, ev->sig_b, SIG_LEN);
	hex_encode(ev->validator, PUBKEY_LEN, hex);
	for (int attempt = 0; attempt < 3; attempt++) {
		struct enc e;

		memset(&t, 0, sizeof(t));
		t.version = TX_VERSION;
		t.kind = TX_EVIDENCE;
		snprintf(t.chain_id, sizeof(t.chain_id), "%s", d->d.chain_id);
		memcpy(t.signer, d->d.key->pub, PUBKEY_LEN);
		rc = evidence_make(&t.u.evidence, &a, &b);
		if (!rc)
			rc = ledger_next_nonce(d->d.ledger, t.signer, &t.nonce);
		if (!rc)
			rc = tx_sign(&t, d->d.key, d->d.genesis_hash);
		if (rc)
			break;
		enc_init(&e);
		tx_encode(&e, &t);
		rc = enc_error(&e);
		if (!rc)
			rc = ledger_submit(d->d.ledger, e.buf, e.len, hash, why);
		enc_free(&e);
		if (rc != TALLY_E_NONCE && rc != TALLY_E_REPLAY)
			break;
	}
	if (rc && evidence_transient(rc) && d->nretry < EVIDENCE_MAX) {
		unsigned shift = tries < 6 ? tries : 6;
		uint64_t wait_ms = (uint64_t)EVIDENCE_RETRY_MS << shift;

		if (wait_ms > EVIDENCE_RETRY_MAX_MS)
			wait_ms = EVIDENCE_RETRY_MAX_MS;
		if (tries == 0)
			log_warn("consensus: validator %.16s signed two different %s at height %"
				 PRIu64 " round %u; its EVIDENCE waits (tried again until the node"
				 " takes it): %s", hex, votes_name(ev), ev->a.height, ev->a.round,
				 why[0] ? why : tally_strerror(rc));
		else
			log_debug("consensus: evidence against validator %.16s (height %" PRIu64
				  " round %u) not submitted yet (try %u): %s", hex, ev->a.height,
				  ev->a.round, tries + 1, why[0] ? why : tally_strerror(rc));
		d->retry[d->nretry].ev = *ev;
		d->retry[d->nretry].tries = tries + 1;
		d->retry[d->nretry].at_ns = node_clock_ns() + wait_ms * MS;
		d->nretry++;
		return;
	}
	if (rc == TALLY_E_EXISTS) {
		/* Another node saw it too and its EVIDENCE came first (committed,
		 * or pending for the next block): the offence is punished once. */
		log_warn("consensus: validator %.16s signed two different %s at height %" PRIu64
			 " round %u; another node's EVIDENCE came first: %s", hex, votes_name(ev),
			 ev->a.height, ev->a.round, why[0] ? why : tally_strerror(rc));
		return;
	}
	if (rc) {
		log_error("consensus: evidence against validator %.16s (height %" PRIu64 " round %u)"
			  " not submitted (try %u)%s: %s", hex, ev->a.height, ev->a.round,
			  tries + 1, evidence_transient(rc) ? ", no room to keep it for later" : "",
			  why[0] ? why : tally_strerror(rc));
		return;
	}
	hex_encode(hash, HASH_LEN, th);
	if (tries)
		log_warn("consensus: validator %.16s signed two different %s at height %" PRIu64
			 " round %u; EVIDENCE %s submitted (try %u)", hex, votes_name(ev),
			 ev->a.height, ev->a.round, th, tries + 1);
	else
		log_warn("consensus: validator %.16s signed two different %s at height %" PRIu64
			 " round %u; EVIDENCE %s submitted", hex, votes_name(ev), ev->a.height,
			 ev->a.round, th);
}

/* The failed submissions whose time has come, tried again (a new failure
 * puts one back with its count). */
static void retry_evidence(struct driver *d, uint64_t now)
{
	struct cs_evidence due[EVIDENCE_MAX];
	unsigned tries[EVIDENCE_MAX];
	size_t ndue = 0, kept = 0;

	for (size_t i = 0; i < d->nretry; i++) {
		if (d->retry[i].at_ns <= now) {
			due[ndue] = d->retry[i].ev;
			tries[ndue++] = d->retry[i].tries;
		} else {
			d->retry[kept++] = d->retry[i];
		}
	}
	d->nretry = kept;
	for (size_t i = 0; i < ndue; i++)
		submit_evidence(d, &due[i], tries[i]);
}

/* One message from a peer, to the engine. */
static void deliver(struct driver *d, const struct dmsg *m)
{
	enum csm_check verdict = CSM_IGNORED;
	char why[WHY_MAX] = "", hex[2 * PUBKEY_LEN + 1];
	int rc = ledger_consensus_receive(d->d.ledger, m->bytes, m->len, &verdict, why);

	if (rc == TALLY_E_SIGNATURE || rc == TALLY_E_UNAUTHORIZED) {
		/* An honest node relays only what its engine accepted, which
		 * verifies: this peer forged it or relays forgeries. */
		char line[WHY_MAX + 64];

		snprintf(line, sizeof(line), "it sent a consensus message that does not verify: %s",
			 why);
		net_peer_misbehaved(d->d.net, m->from, line);
	} else if (rc == TALLY_E_IO || rc == TALLY_E_DISKFULL || rc == TALLY_E_STORE ||
		   rc == TALLY_E_NOMEM) {
		log_error("consensus: cannot take a message: %s", why[0] ? why : tally_strerror(rc));
	} else if (rc) {
		hex_encode(m->from, PUBKEY_LEN, hex);
		log_debug("consensus: a message from %.16s refused: %s", hex,
			  why[0] ? why : tally_strerror(rc));
	}
	if (!rc && verdict == CSM_ACCEPT)
		net_relay_consensus(d->d.net, m->bytes, m->len, m->from);
	if (verdict == CSM_AHEAD)
		net_sync_soon(d->d.net);
}

#define DUE_MAX 64

static void run_networked(struct driver *d, volatile sig_atomic_t *stopping)
{
	uint64_t next_regossip = node_clock_ns() + DRIVER_REGOSSIP_MS * MS, reported = 0;

	while (!*stopping) {
		struct cs_timeout due[DUE_MAX];
		struct cs_evidence ev[EVIDENCE_MAX];
		struct ledger_tick tick;
		struct dmsg *q;
		size_t ndue, nev;
		bool regossip;
		uint64_t now = node_clock_ns(), until, dropped;

		pthread_mutex_lock(&d->mu);
		until = cs_timers_next(&d->timers);
		if (until > next_regossip)
			until = next_regossip;
		if (until > now + POLL_MS * MS)
			until = now + POLL_MS * MS;
		if (!d->q && !d->regossip && !d->nevidence && !d->txs && until > now)
			wait_locked(d, until - now);
		d->txs = false;
		now = node_clock_ns();
		q = d->q;
		d->q = d->qtail = NULL;
		d->nq = d->qbytes = 0;
		for (ndue = 0; ndue < DUE_MAX && cs_timers_pop(&d->timers, now, &due[ndue]); ndue++)
			;
		regossip = d->regossip || now >= next_regossip;
		d->regossip = false;
		nev = d->nevidence;
		memcpy(ev, d->evidence, nev * sizeof(ev[0]));
		d->nevidence = 0;
		dropped = d->dropped;
		pthread_mutex_unlock(&d->mu);

		while (q) {
			struct dmsg *m = q;

			q = m->next;
			if (!*stopping)
				deliver(d, m);
			free(m->bytes);
			free(m);
		}
		for (size_t i = 0; i < ndue; i++)
			ledger_consensus_timeout(d->d.ledger, &due[i]);
		if (regossip) {
			ledger_consensus_regossip(d->d.ledger);
			next_regossip = now + DRIVER_REGOSSIP_MS * MS;
		}
		/* Transactions wait: an idle engine starts the height. */
		ledger_consensus_tick(d->d.ledger, now, &tick);
		if (tick.err)
			log_error("consensus: %s", tick.why[0] ? tick.why : tally_strerror(tick.err));
		for (size_t i = 0; i < nev; i++)
			submit_evidence(d, &ev[i], 0);
		retry_evidence(d, now);
		if (dropped > reported) {
			log_warn("consensus: %" PRIu64 " messages from peers dropped: the engine is"
				 " behind its queue (peers send them again)", dropped - reported);
			reported = dropped;
		}
		log_commits(d);
	}
}

/* The devnet's loopback: the ledger holds the timers. */
static void run_loopback(struct driver *d, volatile sig_atomic_t *stopping)
{
	while (!*stopping) {
		struct ledger_tick t;
		uint64_t now = node_clock_ns(), next = ledger_consensus_next_ns(d->d.ledger);
		uint64_t poll = now + POLL_MS * MS;

		pthread_mutex_lock(&d->mu);
		if (next > now && !d->txs)
			wait_locked(d, (next < poll ? next : poll) - now);
		d->txs = false;
		pthread_mutex_unlock(&d->mu);
		ledger_consensus_tick(d->d.ledger, node_clock_ns(), &t);
		if (t.err)
			log_error("consensus: %s", t.why[0] ? t.why : tally_strerror(t.err));
		if (t.committed)
			log_info("block %" PRIu64 " committed: %zu transactions (%zu dropped)",
				 t.last.height, t.last.ntx, t.last.ndropped);
	}
}

void driver_run(struct driver *d, volatile sig_atomic_t *stopping)
{
	struct engine_status es;
	struct ledger_status st;
	char why[WHY_MAX] = "";
	int rc;

	if (ledger_consensus_status(d->d.ledger, &es)) {
		log_info("this node's key is not a validator of the chain: it serves the chain"
			 " as stored and produces no blocks");
		pthread_mutex_lock(&d->mu);
		while (!*stopping)
			wait_locked(d, POLL_MS * 10 * MS);
		pthread_mutex_unlock(&d->mu);
		return;
	}
	if (!ledger_status(d->d.ledger, &st))
		d->height = st.height;
	if ((rc = ledger_consensus_start(d->d.ledger, why)))
		log_error("consensus: %s", why[0] ? why : tally_strerror(rc));
	ledger_consensus_status(d->d.ledger, &es);
	if (d->networked)
		log_info("consensus: %s at height %" PRIu64 " round %u over the peer network%s",
			 es.validator ? "validating" : "following (not a validator)", es.height,
			 es.round, es.replayed ? " (its WAL replayed)" : "");
	if (d->networked)
		run_networked(d, stopping);
	else
		run_loopback(d, stopping);
}
