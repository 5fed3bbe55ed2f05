/* Gossip (see net.h): transactions and consensus messages, each sent once
 * to each peer.
 *
 * A transaction enters the mempool through ledger_submit, from wherever it
 * came; the ledger's admit hook (gossip_admitted) queues it, and the network
 * thread sends it to every peer but the one it came from, once: the
 * seen-set remembers what was received, sent or refused, and which peers
 * sent each transaction (a bit per peer): a peer that sent it before it
 * was relayed is not sent it back (it holds it). Among validators that
 * all gossip to each other, a transaction then often crosses a link
 * between two relaying nodes once instead of once each way. What was queued
 * between two turns of the network thread goes out as TXS frames of up to
 * WIRE_TXS_MAX transactions each, so a node under load sends each peer a
 * few frames per turn, not one per transaction. A transaction from a peer
 * already in the set is ignored without being checked again, so a
 * transaction crosses each link at most once each way and loops end at the
 * first node that has it; a new one is checked off this thread (intake.c).
 * A peer that sends a transaction which does not decode or whose signature
 * fails is dropped: an honest node relays only what passed tx_check.
 *
 * Consensus messages are handed to the engine as they come: peers send
 * them again on purpose (regossip, for whoever missed them), and the engine
 * recognises what it holds before it checks a signature. The engine's own
 * messages go to every peer whenever it sends them; one it accepted from a
 * peer is relayed once to the others (net_relay_consensus), since it
 * accepts each message once. A peer the engine finds sending forged
 * messages is dropped here, on the network thread. */
#include "daemon/net/net_impl.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/log.h"
#include "lib/errors.h"

/* Queues an encoded frame for every peer (any thread). Takes frame. */
static int queue_frame(struct net *n, uint8_t *frame, size_t len, const uint8_t hash[HASH_LEN],
		       bool consensus, const uint8_t *except_key)
{
	struct outmsg *o = calloc(1, sizeof(*o));

	if (!o) {
		free(frame);
		return TALLY_E_NOMEM;
	}
	o->frame = frame;
	o->len = len;
	if (hash)
		memcpy(o->hash, hash, HASH_LEN);
	o->consensus = consensus;
	if (except_key) {
		o->has_except_key = true;
		memcpy(o->except_key, except_key, PUBKEY_LEN);
	}
	pthread_mutex_lock(&n->mu);
	if (n->stopping || n->noutq >= NET_QUEUE_MAX) {
		pthread_mutex_unlock(&n->mu);
		free(frame);
		free(o);
		return TALLY_E_CAPACITY;
	}
	if (n->outq_tail)
		n->outq_tail->next = o;
	else
		n->outq = o;
	n->outq_tail = o;
	n->noutq++;
	pthread_mutex_unlock(&n->mu);
	event_active(n->wake, EV_TIMEOUT, 0);
	return 0;
}

static int encode_frame(const struct wire_msg *m, uint8_t **frame, size_t *len)
{
	struct enc e;
	int rc;

	enc_init(&e);
	wire_encode(&e, m);
	rc = enc_error(&e);
	if (rc) {
		enc_free(&e);
		return rc;
	}
	*frame = enc_take(&e, len);
	return 0;
}

void gossip_admitted(void *ctx, const uint8_t *bytes, size_t len, const uint8_t hash[HASH_LEN],
		     const uint8_t *origin)
{
	struct net *n = ctx;
	uint8_t *copy = malloc(len);

	/* From a peer, the network thread marked it seen when it queued it:
	 * it goes to every other peer once, now that it is in. */
	if (copy)
		memcpy(copy, bytes, len);
	if (!copy || queue_frame(n, copy, len, hash, false, origin))
		log_warn("peers: a transaction could not be queued for gossip (queue full or out "
			 "of memory); it stays in this node's mempool");
}

/* Sends items[0..n) to c as TXS frames of up to WIRE_TXS_MAX each. */
static void send_txs(struct conn *c, const struct wire_bytes *items, size_t n)
{
	for (size_t at = 0; at < n && conn_ready(c); at += WIRE_TXS_MAX) {
		struct wire_msg m = { .type = WIRE_TXS };

		m.u.txs.n = (uint16_t)(n - at < WIRE_TXS_MAX ? n - at : WIRE_TXS_MAX);
		m.u.txs.items = items + at;
		if (conn_send(c, &m))
			log_warn("peers: cannot encode a TXS message (out of memory)");
	}
}

/* The peers the engine accused: dropped if connected, refused for a while
 * either way. */
static void drop_accused(struct net *n)
{
	struct accused a[NET_ACCUSED_MAX];
	size_t na;

	pthread_mutex_lock(&n->mu);
	na = n->naccused;
	memcpy(a, n->accused, na * sizeof(a[0]));
	n->naccused = 0;
	pthread_mutex_unlock(&n->mu);
	for (size_t i = 0; i < na; i++) {
		struct conn *c;

		for (c = n->conns; c; c = c->next)
			if (c->state == CONN_READY && !memcmp(c->key, a[i].key, PUBKEY_LEN))
				break;
		if (c)
			conn_misbehave(c, "%s", a[i].why);
		else
			net_ban_key(n, a[i].key, a[i].why);
	}
}

static bool send_to(const struct outmsg *o, const struct conn *c)
{
	return conn_ready(c) && !(o->holders & c->mark) &&
	       !(o->has_except_key && !memcmp(c->key, o->except_key, PUBKEY_LEN));
}

/* The transactions of q that go out (each once: the seen-set), for each
 * peer in one go. */
static void flush_txs(struct net *n, struct outmsg **txs, size_t ntxs)
{
	struct wire_bytes *items;

	if (!ntxs)
		return;
	items = malloc(ntxs * sizeof(*items));
	if (!items) {
		log_warn("peers: %zu transactions not gossiped (out of memory); they stay in this"
			 " node's mempool", ntxs);
		return;
	}
	for (struct conn *c = n->conns; c; c = c->next) {
		size_t k = 0;

		for (size_t i = 0; i < ntxs; i++)
			if (send_to(txs[i], c))
				items[k++] = (struct wire_bytes){ txs[i]->frame, txs[i]->len };
		send_txs(c, items, k);
		STAT_ADD(n, txs_out, k);
	}
	free(items);
}

void net_unsee(struct net *n, const uint8_t hash[HASH_LEN])
{
	pthread_mutex_lock(&n->mu);
	if (n->nunsee < NET_UNSEE_MAX)
		memcpy(n->unsee[n->nunsee++], hash, HASH_LEN);
	pthread_mutex_unlock(&n->mu);
}

void gossip_flush(struct net *n)
{
	struct outmsg *q, **txs = NULL;
	size_t ntxs = 0, cap = 0;

	drop_accused(n);
	pthread_mutex_lock(&n->mu);
	q = n->outq;
	n->outq = n->outq_tail = NULL;
	n->noutq = 0;
	for (size_t i = 0; i < n->nunsee; i++)
		seen_forget(n->seen_tx, n->unsee[i]);
	n->nunsee = 0;
	pthread_mutex_unlock(&n->mu);
	for (struct outmsg *o = q; o; o = o->next) {
		if (o->consensus) {
			for (struct conn *c = n->conns; c; c = c->next)
				if (send_to(o, c)) {
					conn_send_frame(c, o->frame, o->len);
					STAT_ADD(n, consensus_out, 1);
				}
			continue;
		}
		if (!o->has_except_key && !seen_add(n->seen_tx, o->hash))
			continue;
		/* A relay skips the peers that sent it too, meanwhile: they hold it. */
		if (o->has_except_key)
			o->holders = seen_marks(n->seen_tx, o->hash);
		if (ntxs == cap) {
			size_t ncap = cap ? 2 * cap : 64;
			struct outmsg **grown = realloc(txs, ncap * sizeof(*txs));

			/* This one is not gossiped (it stays in the mempool); the
			 * consensus messages after it still go. */
			if (!grown)
				continue;
			txs = grown;
			cap = ncap;
		}
		txs[ntxs++] = o;
	}
	flush_txs(n, txs, ntxs);
	free(txs);
	while (q) {
		struct outmsg *o = q;
		q = o->next;
		free(o->frame);
		free(o);
	}
}

void gossip_free_queue(struct net *n)
{
	while (n->outq) {
		struct outmsg *o = n->outq;
		n->outq = o->next;
		free(o->frame);
		free(o);
	}
	n->outq_tail = NULL;
	n->noutq = 0;
}

void gossip_on_txs(struct conn *c, const struct wire_msg *m)
{
	struct net *n = c->net;
	struct wire_txs_iter it;
	struct wire_bytes tx;

	wire_txs_begin(&it, &m->u.txs);
	while (wire_txs_next(&it, &tx)) {
		uint8_t hash[HASH_LEN];

		tx_hash(tx.bytes, tx.len, hash);
		/* Seen now, so the same transaction from another peer is not
		 * checked again while this one waits for its check; marked with
		 * the peer either way, which is not sent it again (flush_txs). */
		if (!seen_add_marked(n->seen_tx, hash, c->mark))
			continue;
		if (!intake_push(n, c->key, tx.bytes, tx.len, hash)) {
			STAT_ADD(n, txs_intake_dropped, 1);
			seen_forget(n->seen_tx, hash);
		}
	}
}

static struct net_consensus engine_of(struct net *n)
{
	struct net_consensus cs;

	pthread_mutex_lock(&n->mu);
	cs = n->cs;
	pthread_mutex_unlock(&n->mu);
	return cs;
}

void gossip_on_consensus(struct conn *c, const struct wire_msg *m)
{
	struct net_consensus cs = engine_of(c->net);

	STAT_ADD(c->net, consensus_in, 1);
	if (cs.on_message)
		cs.on_message(cs.ctx, c->key, m->u.consensus.bytes, m->u.consensus.len);
}

/* A new peer's greeting, and each offer again (gossip_reoffer): the pending
 * transactions, up to NET_PENDING_SEND_MAX, but those the peer sent this
 * node, as long as its output buffer has room. The walk holds the
 * mempool's lock, so a batch is copied out of it. */
struct greet {
	struct conn *c;
	struct wire_bytes items[WIRE_TXS_MAX];
	size_t n, sent;
	bool nomem;
};

static bool greet_send(struct greet *g)
{
	send_txs(g->c, g->items, g->n);
	g->sent += g->n;
	for (size_t i = 0; i < g->n; i++)
		free((uint8_t *)g->items[i].bytes);
	g->n = 0;
	return conn_ready(g->c) &&
	       evbuffer_get_length(bufferevent_get_output(g->c->bev)) <= NET_OUTBUF_MAX;
}

static int greet_one(void *ctx, const uint8_t *bytes, size_t len, const uint8_t hash[HASH_LEN])
{
	struct greet *g = ctx;
	uint8_t *copy;

	if (g->sent + g->n >= NET_PENDING_SEND_MAX)
		return 1;
	if (g->c->mark && (seen_marks(g->c->net->seen_tx, hash) & g->c->mark))
		return 0;
	if (!(copy = malloc(len))) {
		g->nomem = true;
		return 1;
	}
	memcpy(copy, bytes, len);
	g->items[g->n++] = (struct wire_bytes){ copy, len };
	return g->n == WIRE_TXS_MAX && !greet_send(g);
}

static void offer_pending(struct conn *c, bool again)
{
	struct greet *g = calloc(1, sizeof(*g));
	const char *to_whom = again ? "a peer again" : "a new peer";

	c->offered_ms = net_now_ms();
	if (!g) {
		log_warn("peers: no pending transaction was sent to %s (out of memory)", to_whom);
		return;
	}
	g->c = c;
	ledger_pending_each(c->net->ledger, greet_one, g);
	greet_send(g);
	if (g->nomem)
		log_warn("peers: not every pending transaction was sent to %s (out of memory)",
			 to_whom);
	STAT_ADD(c->net, txs_out, g->sent);
	if (again)
		STAT_ADD(c->net, txs_reoffered, g->sent);
	free(g);
}

void gossip_greet(struct conn *c)
{
	struct net_consensus cs = engine_of(c->net);

	offer_pending(c, false);
	if (cs.on_peer)
		cs.on_peer(cs.ctx, c->key);
}

void gossip_reoffer(struct conn *c)
{
	offer_pending(c, true);
}

/* --- the consensus engine's side ---------------------------------------- */

void net_set_consensus(struct net *n, const struct net_consensus *c)
{
	pthread_mutex_lock(&n->mu);
	if (c)
		n->cs = *c;
	else
		memset(&n->cs, 0, sizeof(n->cs));
	pthread_mutex_unlock(&n->mu);
}

static int queue_consensus(struct net *n, const uint8_t *msg, size_t len, const uint8_t *except)
{
	struct wire_msg m = { .type = WIRE_CONSENSUS };
	uint8_t *frame;
	size_t flen;
	int rc;

	m.u.consensus.bytes = msg;
	m.u.consensus.len = len;
	rc = encode_frame(&m, &frame, &flen);
	return rc ? rc : queue_frame(n, frame, flen, NULL, true, except);
}

int net_broadcast_consensus(struct net *n, const uint8_t *msg, size_t len)
{
	return queue_consensus(n, msg, len, NULL);
}

int net_relay_consensus(struct net *n, const uint8_t *msg, size_t len,
			const uint8_t from[PUBKEY_LEN])
{
	return queue_consensus(n, msg, len, from);
}

void net_peer_misbehaved(struct net *n, const uint8_t key[PUBKEY_LEN], const char *why)
{
	pthread_mutex_lock(&n->mu);
	/* A full list: the ones already listed go first; the engine accuses
	 * again if this one keeps at it. */
	if (n->naccused < NET_ACCUSED_MAX) {
		memcpy(n->accused[n->naccused].key, key, PUBKEY_LEN);
		snprintf(n->accused[n->naccused].why, sizeof(n->accused[0].why), "%s", why);
		n->naccused++;
	}
	pthread_mutex_unlock(&n->mu);
	event_active(n->wake, EV_TIMEOUT, 0);
}

void net_sync_soon(struct net *n)
{
	pthread_mutex_lock(&n->mu);
	n->sync_soon = true;
	pthread_mutex_unlock(&n->mu);
	event_active(n->wake, EV_TIMEOUT, 0);
}
