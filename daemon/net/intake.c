/* Transactions from peers, checked off the network thread (see net_impl.h).
 *
 * A TX frame costs its receiver a signature check and, to enter the
 * mempool, the ledger's lock, which a block being committed holds for tens
 * of milliseconds. Done on the network thread, that work delayed every
 * frame behind it on every connection: under load a proposal waited
 * hundreds of milliseconds behind the transactions gossiped before it. So
 * the network thread only marks a transaction seen and queues it here;
 * worker threads (one per core, at most NET_INTAKE_THREADS) submit it to
 * the ledger, which relays it once it is in (gossip_admitted), and report a
 * peer that sent a forged one to the network thread (net_peer_misbehaved).
 *
 * The queue is bounded (NET_INTAKE_MAX transactions, NET_INTAKE_BYTES): a
 * transaction beyond it is dropped and counted. Nothing is lost for the
 * chain: the peers that sent it keep it in their mempools, and a block
 * that carries it reaches this node anyway. */
#include "daemon/net/net_impl.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/log.h"
#include "lib/errors.h"

struct intake_item {
	uint8_t from[PUBKEY_LEN];
	uint8_t *bytes;
	size_t len;
	struct intake_item *next;
};

/* The peer whose transaction this worker is submitting: read by the admit
 * hook (gossip_admitted) on the same thread, so the relay skips it. */
static __thread const uint8_t *current_source_key;

const uint8_t *intake_current_source(void)
{
	return current_source_key;
}

/* Errors that only a bad sender causes: the bytes are not a transaction of
 * this chain signed by its signer. A transaction that is merely stale (its
 * nonce used, already pending) is not held against anyone. */
static bool forged(int rc)
{
	return rc == TALLY_E_TRUNCATED || rc == TALLY_E_TRAILING || rc == TALLY_E_VERSION ||
	       rc == TALLY_E_TOOLONG || rc == TALLY_E_ENCODING || rc == TALLY_E_SIGNATURE ||
	       rc == TALLY_E_CHAIN_ID;
}

static void submit_one(struct net *n, const struct intake_item *it)
{
	uint8_t hash[HASH_LEN];
	char why[WHY_MAX] = "";
	int rc;

	current_source_key = it->from;
	rc = ledger_submit(n->ledger, it->bytes, it->len, hash, why);
	current_source_key = NULL;
	if (!rc) {
		STAT_ADD(n, txs_in, 1);
		return;
	}
	if (forged(rc)) {
		char line[WHY_MAX + 64];

		snprintf(line, sizeof(line), "it relayed a transaction that is not valid: %s",
			 why[0] ? why : tally_strerror(rc));
		net_peer_misbehaved(n, it->from, line);
	}
}

static void *intake_main(void *arg)
{
	struct net *n = arg;

	pthread_mutex_lock(&n->intake_mu);
	for (;;) {
		struct intake_item *it;

		while (!n->intake_head && !n->intake_stopping)
			pthread_cond_wait(&n->intake_cv, &n->intake_mu);
		if (n->intake_stopping)
			break;
		it = n->intake_head;
		n->intake_head = it->next;
		if (!n->intake_head)
			n->intake_tail = NULL;
		n->intake_n--;
		n->intake_bytes -= it->len;
		pthread_mutex_unlock(&n->intake_mu);
		submit_one(n, it);
		free(it->bytes);
		free(it);
		pthread_mutex_lock(&n->intake_mu);
	}
	pthread_mutex_unlock(&n->intake_mu);
	return NULL;
}

int intake_start(struct net *n, char *why)
{
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	size_t want = cores < 1 ? 1 : cores > NET_INTAKE_THREADS ? NET_INTAKE_THREADS :
		      (size_t)cores;

	pthread_mutex_init(&n->intake_mu, NULL);
	pthread_cond_init(&n->intake_cv, NULL);
	n->intake_init = true;
	for (n->nintake = 0; n->nintake < want; n->nintake++)
		if (pthread_create(&n->intake[n->nintake], NULL, intake_main, n))
			break;
	if (!n->nintake)
		return why_set(why, TALLY_E_NOMEM, "cannot start the threads that check peers'"
			       " transactions");
	return 0;
}

void intake_stop(struct net *n)
{
	if (!n->intake_init)
		return;
	pthread_mutex_lock(&n->intake_mu);
	n->intake_stopping = true;
	pthread_cond_broadcast(&n->intake_cv);
	pthread_mutex_unlock(&n->intake_mu);
	for (size_t i = 0; i < n->nintake; i++)
		pthread_join(n->intake[i], NULL);
	n->nintake = 0;
	while (n->intake_head) {
		struct intake_item *it = n->intake_head;

		n->intake_head = it->next;
		free(it->bytes);
		free(it);
	}
	n->intake_tail = NULL;
	n->intake_n = n->intake_bytes = 0;
	pthread_cond_destroy(&n->intake_cv);
	pthread_mutex_destroy(&n->intake_mu);
	n->intake_init = false;
}

bool intake_push(struct net *n, const uint8_t from[PUBKEY_LEN], const uint8_t *bytes, size_t len)
{
	struct intake_item *it;
	bool full;

	pthread_mutex_lock(&n->intake_mu);
	full = n->intake_n >= NET_INTAKE_MAX || n->intake_bytes + len > NET_INTAKE_BYTES;
	pthread_mutex_unlock(&n->intake_mu);
	if (full)
		return false;
	it = calloc(1, sizeof(*it));
	if (it)
		it->bytes = malloc(len ? len : 1);
	if (!it || !it->bytes) {
		free(it);
		return false;
	}
	memcpy(it->from, from, PUBKEY_LEN);
	memcpy(it->bytes, bytes, len);
	it->len = len;
	pthread_mutex_lock(&n->intake_mu);
	if (n->intake_tail)
		n->intake_tail->next = it;
	else
		n->intake_head = it;
	n->intake_tail = it;
	n->intake_n++;
	n->intake_bytes += len;
	pthread_cond_signal(&n->intake_cv);
	pthread_mutex_unlock(&n->intake_mu);
	return true;
}
