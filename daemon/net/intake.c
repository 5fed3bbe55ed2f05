/* Transactions from peers, checked off the network thread (see net_impl.h).
 *
 * A TXS frame costs its receiver a signature check per transaction and, to
 * enter the mempool, the mempool's lock. Done on the network thread, that
 * work delayed every frame behind it on every connection: under load a
 * proposal waited hundreds of milliseconds behind the transactions gossiped
 * before it. So the network thread only marks a transaction seen and queues
 * it here; one intake thread hands what waits, in arrival order, to the
 * ledger as batches (ledger_submit_batch: signatures checked on the
 * ledger's worker pool, admitted in order), so an account's transactions
 * enter this node's mempool in the order they came. The ledger relays each
 * one that enters (gossip_admitted) to every peer but the one it came from.
 *
 * What the ledger refused: a forged transaction gets its sender dropped
 * (net_peer_misbehaved); one refused only for now (its nonce too far
 * ahead of what this node holds, no room, no memory, the disk short) is
 * taken out of the seen-set again (net_unsee), so the same transaction from
 * another peer is judged again instead of lost to this node; one merely
 * stale (its nonce used, already pending) is not held against anyone.
 *
 * The queue is bounded (NET_INTAKE_MAX transactions, NET_INTAKE_BYTES): a
 * transaction beyond it is dropped, counted, and also taken out of the
 * seen-set. Nothing is lost for the chain: the peers that sent it keep it
 * in their mempools, and a block that carries it reaches this node anyway. */
#include "daemon/net/net_impl.h"

#include <stdlib.h>
#include <string.h>

#include "daemon/log.h"
#include "lib/errors.h"

struct intake_item {
	uint8_t from[PUBKEY_LEN];
	uint8_t hash[HASH_LEN];      /* tx_hash of bytes, from the network thread */
	uint8_t *bytes;
	size_t len;
	struct intake_item *next;
};

/* Errors that only a bad sender causes: the bytes are not a transaction of
 * this chain signed by its signer. */
static bool forged(int rc)
{
	return rc == TALLY_E_TRUNCATED || rc == TALLY_E_TRAILING || rc == TALLY_E_VERSION ||
	       rc == TALLY_E_TOOLONG || rc == TALLY_E_ENCODING || rc == TALLY_E_SIGNATURE ||
	       rc == TALLY_E_CHAIN_ID;
}

/* Refusals that say nothing of the transaction, only of this node now. */
static bool for_now(int rc)
{
	return rc == TALLY_E_NONCE || rc == TALLY_E_CAPACITY || rc == TALLY_E_NOMEM ||
	       rc == TALLY_E_DISKFULL || rc == TALLY_E_STORE;
}

/* One batch: admitted in order, then each refusal judged. */
static void submit_batch(struct net *n, struct intake_item **its, size_t k,
			 struct ledger_batch_item *items)
{
	char why[WHY_MAX];
	int rc;

	memset(items, 0, k * sizeof(*items));
	for (size_t i = 0; i < k; i++) {
		items[i].bytes = its[i]->bytes;
		items[i].len = its[i]->len;
		items[i].origin = its[i]->from;
		/* Hashed once, for the seen-set: the ledger takes it as is. */
		memcpy(items[i].hash, its[i]->hash, HASH_LEN);
		items[i].hashed = true;
	}
	rc = ledger_submit_batch(n->ledger, items, k, NULL, why);
	for (size_t i = 0; i < k; i++) {
		if (rc) {
			items[i].rc = rc;
			snprintf(items[i].why, sizeof(items[i].why), "%s", why);
		}
		if (!items[i].rc) {
			STAT_ADD(n, txs_in, 1);
		} else if (forged(items[i].rc)) {
			char line[WHY_MAX + 64];

			snprintf(line, sizeof(line), "it relayed a transaction that is not valid: %s",
				 items[i].why[0] ? items[i].why : tally_strerror(items[i].rc));
			net_peer_misbehaved(n, its[i]->from, line);
		} else if (for_now(items[i].rc)) {
			net_unsee(n, its[i]->hash);
		}
	}
}

static void *intake_main(void *arg)
{
	struct net *n = arg;
	struct intake_item *its[LEDGER_BATCH_MAX];

	pthread_mutex_lock(&n->intake_mu);
	for (;;) {
		size_t k = 0;

		while (!n->intake_head && !n->intake_stopping)
			pthread_cond_wait(&n->intake_cv, &n->intake_mu);
		if (n->intake_stopping)
			break;
		while (n->intake_head && k < LEDGER_BATCH_MAX) {
			struct intake_item *it = n->intake_head;

			n->intake_head = it->next;
			if (!n->intake_head)
				n->intake_tail = NULL;
			n->intake_n--;
			n->intake_bytes -= it->len;
			its[k++] = it;
		}
		pthread_mutex_unlock(&n->intake_mu);
		submit_batch(n, its, k, n->intake_items);
		for (size_t i = 0; i < k; i++) {
			free(its[i]->bytes);
			free(its[i]);
		}
		pthread_mutex_lock(&n->intake_mu);
	}
	pthread_mutex_unlock(&n->intake_mu);
	return NULL;
}

int intake_start(struct net *n, char *why)
{
	n->intake_items = malloc(LEDGER_BATCH_MAX * sizeof(*n->intake_items));
	if (!n->intake_items)
		return why_set(why, TALLY_E_NOMEM, "no memory to check peers' transactions");
	pthread_mutex_init(&n->intake_mu, NULL);
	pthread_cond_init(&n->intake_cv, NULL);
	n->intake_init = true;
	if (pthread_create(&n->intake, NULL, intake_main, n)) {
		pthread_cond_destroy(&n->intake_cv);
		pthread_mutex_destroy(&n->intake_mu);
		n->intake_init = false;
		free(n->intake_items);
		n->intake_items = NULL;
		return why_set(why, TALLY_E_NOMEM, "cannot start the thread that checks peers'"
			       " transactions");
	}
	return 0;
}

void intake_drop(struct net *n)
{
	while (n->intake_head) {
		struct intake_item *it = n->intake_head;

		n->intake_head = it->next;
		free(it->bytes);
		free(it);
	}
	n->intake_tail = NULL;
	n->intake_n = n->intake_bytes = 0;
}

void intake_stop(struct net *n)
{
	if (!n->intake_init)
		return;
	pthread_mutex_lock(&n->intake_mu);
	n->intake_stopping = true;
	pthread_cond_broadcast(&n->intake_cv);
	pthread_mutex_unlock(&n->intake_mu);
	pthread_join(n->intake, NULL);
	intake_drop(n);
	pthread_cond_destroy(&n->intake_cv);
	pthread_mutex_destroy(&n->intake_mu);
	n->intake_init = false;
	free(n->intake_items);
	n->intake_items = NULL;
}

bool intake_push(struct net *n, const uint8_t from[PUBKEY_LEN], const uint8_t *bytes, size_t len,
		 const uint8_t hash[HASH_LEN])
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
	memcpy(it->hash, hash, HASH_LEN);
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
