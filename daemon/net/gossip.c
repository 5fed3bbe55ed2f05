/* Gossip (see net.h): transactions and consensus messages, each sent once
 * to each peer.
 *
 * A transaction enters the mempool through ledger_submit, from wherever it
 * came; the ledger's admit hook (gossip_admitted) queues it, and the network
 * thread sends it to every peer but the one it came from, once: the
 * seen-set remembers what was sent or refused. A TX from a peer already in
 * the set is ignored without being checked again, so a transaction crosses
 * each link at most once each way and loops end at the first node that has
 * it. A peer that sends a transaction which does not decode or whose
 * signature fails is dropped: an honest node relays only what passed
 * tx_check. A transaction that is merely stale (its nonce used, already
 * pending) is not held against anyone.
 *
 * Proposals and votes are deduplicated by the hash of their frame body in a
 * seen-set of their own and handed to the consensus engine; the engine
 * relays what it accepts by broadcasting it again. */
#include "daemon/net/net_impl.h"

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/log.h"
#include "lib/errors.h"

/* The peer a transaction being submitted came from: set on the network
 * thread around ledger_submit, read by the admit hook on the same thread. */
static __thread const struct conn *current_source;

/* Queues an encoded frame for every peer (any thread). Takes frame. */
static int queue_frame(struct net *n, uint8_t *frame, size_t len, const uint8_t hash[HASH_LEN],
		       bool consensus, const struct conn *except)
{
	struct outmsg *o = calloc(1, sizeof(*o));

	if (!o) {
		free(frame);
		return TALLY_E_NOMEM;
	}
	o->frame = frame;
	o->len = len;
	memcpy(o->hash, hash, HASH_LEN);
	o->consensus = consensus;
	o->except = except;
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

void gossip_admitted(void *ctx, const uint8_t *bytes, size_t len, const uint8_t hash[HASH_LEN])
{
	struct net *n = ctx;
	struct wire_msg m = { .type = WIRE_TX };
	uint8_t *frame;
	size_t flen;

	m.u.tx.bytes = bytes;
	m.u.tx.len = len;
	if (encode_frame(&m, &frame, &flen) ||
	    queue_frame(n, frame, flen, hash, false, current_source))
		log_warn("peers: a transaction could not be queued for gossip (queue full or out "
			 "of memory); it stays in this node's mempool");
}

void gossip_flush(struct net *n)
{
	struct outmsg *q;

	pthread_mutex_lock(&n->mu);
	q = n->outq;
	n->outq = n->outq_tail = NULL;
	n->noutq = 0;
	pthread_mutex_unlock(&n->mu);
	while (q) {
		struct outmsg *o = q;
		q = o->next;
		if (seen_add(o->consensus ? n->seen_cs : n->seen_tx, o->hash)) {
			for (struct conn *c = n->conns; c; c = c->next) {
				if (!conn_ready(c) || c == o->except)
					continue;
				conn_send_frame(c, o->frame, o->len);
				if (!o->consensus)
					STAT_ADD(n, txs_out, 1);
			}
		}
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

/* Errors that only a bad sender causes: the bytes are not a transaction of
 * this chain signed by its signer. */
static bool forged(int rc)
{
	return rc == TALLY_E_TRUNCATED || rc == TALLY_E_TRAILING || rc == TALLY_E_VERSION ||
	       rc == TALLY_E_TOOLONG || rc == TALLY_E_ENCODING || rc == TALLY_E_SIGNATURE ||
	       rc == TALLY_E_CHAIN_ID;
}

void gossip_on_tx(struct conn *c, const struct wire_msg *m)
{
	struct net *n = c->net;
	uint8_t hash[HASH_LEN];
	char why[WHY_MAX] = "";
	int rc;

	tx_hash(m->u.tx.bytes, m->u.tx.len, hash);
	if (seen_has(n->seen_tx, hash))
		return;
	current_source = c;
	rc = ledger_submit(n->ledger, m->u.tx.bytes, m->u.tx.len, hash, why);
	current_source = NULL;
	if (!rc) {
		STAT_ADD(n, txs_in, 1);
		/* Relay now, so the seen-set holds it before the next message. */
		gossip_flush(n);
		return;
	}
	seen_add(n->seen_tx, hash);
	if (forged(rc))
		conn_misbehave(c, "it relayed a transaction that is not valid: %s",
			       why[0] ? why : tally_strerror(rc));
}

void gossip_on_consensus(struct conn *c, const struct wire_msg *m, const uint8_t *body,
			 size_t len)
{
	struct net *n = c->net;
	struct net_consensus cs;
	uint8_t hash[HASH_LEN];

	sha256(body, len, hash);
	if (!seen_add(n->seen_cs, hash))
		return;
	STAT_ADD(n, consensus_in, 1);
	pthread_mutex_lock(&n->mu);
	cs = n->cs;
	pthread_mutex_unlock(&n->mu);
	if (m->type == WIRE_PROPOSAL && cs.on_proposal)
		cs.on_proposal(cs.ctx, c->key, &m->u.proposal.p, m->u.proposal.sig,
			       m->u.proposal.block, m->u.proposal.block_len);
	else if (m->type == WIRE_VOTE && cs.on_vote)
		cs.on_vote(cs.ctx, c->key, &m->u.vote.v, m->u.vote.validator, m->u.vote.sig);
}

struct greet {
	struct conn *c;
	size_t sent;
};

static int greet_one(void *ctx, const uint8_t *bytes, size_t len, const uint8_t hash[HASH_LEN])
{
	struct greet *g = ctx;
	struct wire_msg m = { .type = WIRE_TX };
	(void)hash;

	if (g->sent >= NET_PENDING_SEND_MAX || !conn_ready(g->c) ||
	    evbuffer_get_length(bufferevent_get_output(g->c->bev)) > NET_OUTBUF_MAX)
		return 1;
	m.u.tx.bytes = bytes;
	m.u.tx.len = len;
	conn_send(g->c, &m);
	g->sent++;
	return 0;
}

void gossip_greet(struct conn *c)
{
	struct greet g = { c, 0 };

	ledger_pending_each(c->net->ledger, greet_one, &g);
	STAT_ADD(c->net, txs_out, g.sent);
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

/* The frame's body hash, as gossip_on_consensus computes it on arrival. */
static int broadcast(struct net *n, const struct wire_msg *m)
{
	uint8_t *frame, hash[HASH_LEN];
	size_t len;
	int rc = encode_frame(m, &frame, &len);

	if (rc)
		return rc;
	sha256(frame + WIRE_HEAD_LEN, len - WIRE_HEAD_LEN, hash);
	return queue_frame(n, frame, len, hash, true, NULL);
}

int net_broadcast_proposal(struct net *n, const struct proposal *p, const uint8_t sig[SIG_LEN],
			   const uint8_t *block, size_t block_len)
{
	struct wire_msg m = { .type = WIRE_PROPOSAL };

	m.u.proposal.p = *p;
	memcpy(m.u.proposal.sig, sig, SIG_LEN);
	m.u.proposal.block = block;
	m.u.proposal.block_len = block_len;
	return broadcast(n, &m);
}

int net_broadcast_vote(struct net *n, const struct vote *v, const uint8_t validator[PUBKEY_LEN],
		       const uint8_t sig[SIG_LEN])
{
	struct wire_msg m = { .type = WIRE_VOTE };

	m.u.vote.v = *v;
	memcpy(m.u.vote.validator, validator, PUBKEY_LEN);
	memcpy(m.u.vote.sig, sig, SIG_LEN);
	return broadcast(n, &m);
}
