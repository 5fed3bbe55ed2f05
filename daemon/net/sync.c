/* Block sync (see net.h): peers announce their tip (HELLO, then STATUS on
 * every change); a node whose tip is below a peer's asks that peer for the
 * next blocks (GET_BLOCKS, at most WIRE_BLOCKS_MAX at once, one request out
 * at a time). Each BLOCK carries the block, its certificate and the
 * certificate of the block before it as the sender holds it now, which is
 * the one the block's header names (validators assemble different valid
 * certificates; the next block fixes the chain's). Only the block after
 * this node's tip is applied, with ledger_apply_synced_block: it adopts
 * that previous certificate (chain_adopt_last_cert), verifies header,
 * transactions and certificate as the auditor does (lib/chain/verify.h),
 * executes the block and compares the roots. A BLOCK for a height this node
 * reached meanwhile (its consensus engine decided it, which applying the
 * block before can let it do) is passed over. The validator set for the
 * next block is not sent: executing the block yields it, and the header's
 * next_validators_hash is checked against it.
 *
 * What gets a peer dropped here: a block that does not verify, a block or
 * NO_BLOCK nobody asked it for, a NO_BLOCK for a height at or below the tip
 * it announced (an honest node keeps every block it has). A peer that does
 * not answer in NET_SYNC_TIMEOUT_MS is only passed over for a while, and so
 * is one that serves a certified block dated too far ahead of this node's
 * clock (chain_check_block_time): the fault is more likely this node's
 * clock, and the log says so. */
#include "daemon/net/net_impl.h"

#include <event2/buffer.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "daemon/log.h"
#include "lib/errors.h"

/* Failures that are this node's, not the block's: never the peer's fault. */
static bool local_fault(int rc)
{
	return rc == TALLY_E_STORE || rc == TALLY_E_DISKFULL || rc == TALLY_E_NOMEM ||
	       rc == TALLY_E_IO || rc == TALLY_E_INTERNAL;
}

void sync_forget(struct conn *c)
{
	if (c->sync_asked)
		c->net->sync_active = false;
	c->sync_asked = false;
}

static void announce(struct net *n, const struct ledger_status *st)
{
	struct wire_msg m = { .type = WIRE_STATUS };

	m.u.status.height = st->height;
	memcpy(m.u.status.last_block_id, st->last_block_id, HASH_LEN);
	for (struct conn *c = n->conns; c; c = c->next)
		if (conn_ready(c))
			conn_send(c, &m);
}

/* The peer to ask: the highest tip above ours, among those not passed over. */
static struct conn *pick(struct net *n, uint64_t height, uint64_t now)
{
	struct conn *best = NULL;

	for (struct conn *c = n->conns; c; c = c->next)
		if (conn_ready(c) && c->height > height && now >= c->sync_skip_until_ms &&
		    (!best || c->height > best->height))
			best = c;
	return best;
}

void sync_tick(struct net *n)
{
	struct ledger_status st;
	uint64_t now = net_now_ms();

	if (ledger_status(n->ledger, &st))
		return;
	if (st.height != n->tip_height || memcmp(st.last_block_id, n->tip_id, HASH_LEN)) {
		pthread_mutex_lock(&n->mu);
		n->tip_height = st.height;
		memcpy(n->tip_id, st.last_block_id, HASH_LEN);
		pthread_mutex_unlock(&n->mu);
		announce(n, &st);
	}
	for (struct conn *c = n->conns; c; c = c->next) {
		if (c->sync_asked && now > c->sync_deadline_ms) {
			char name[80];
			log_info("peers: %s did not answer for blocks from %" PRIu64 "; asking "
				 "another peer", conn_name(c, name), c->sync_next);
			sync_forget(c);
			c->sync_skip_until_ms = now + 2 * NET_SYNC_TIMEOUT_MS;
		}
	}
	if (n->sync_active)
		return;
	struct conn *c = pick(n, st.height, now);
	if (!c)
		return;
	uint64_t count = c->height - st.height;
	struct wire_msg m = { .type = WIRE_GET_BLOCKS };
	m.u.get_blocks.from = st.height + 1;
	m.u.get_blocks.count = (uint32_t)(count > WIRE_BLOCKS_MAX ? WIRE_BLOCKS_MAX : count);
	if (conn_send(c, &m))
		return;
	c->sync_asked = true;
	c->sync_next = m.u.get_blocks.from;
	c->sync_to = m.u.get_blocks.from + m.u.get_blocks.count - 1;
	c->sync_deadline_ms = now + NET_SYNC_TIMEOUT_MS;
	n->sync_active = true;
	STAT_ADD(n, sync_requests, 1);
}

void sync_on_block(struct conn *c, const struct wire_msg *m)
{
	struct net *n = c->net;
	const struct wire_block *b = &m->u.block;
	struct ledger_status st;
	char why[WHY_MAX] = "";

	if (!c->sync_asked || b->height != c->sync_next) {
		conn_misbehave(c, "it sent block %" PRIu64 " that was not asked for", b->height);
		return;
	}
	c->sync_next++;
	c->sync_deadline_ms = net_now_ms() + NET_SYNC_TIMEOUT_MS;
	if (c->sync_next > c->sync_to)
		sync_forget(c);
	if (ledger_status(n->ledger, &st))
		return;
	if (b->height != st.height + 1)
		return;   /* this node moved on meanwhile (it decided or applied it) */
	int rc = ledger_apply_synced_block(n->ledger, b->block, b->block_len, b->cert, b->cert_len,
					   b->prev_cert_len ? b->prev_cert : NULL, b->prev_cert_len,
					   why);
	if (rc == TALLY_E_HEIGHT) {
		return;   /* the tip moved between the check and the apply */
	} else if (rc == TALLY_E_FUTURE) {
		char name[80];

		log_error("peers: block %" PRIu64 " from %s not applied: %s; this node's clock may"
			  " be behind (compare it with the validators'): docs/OPERATING.md, \"The"
			  " node's clock\"", b->height, conn_name(c, name), why);
		/* The rest of the batch still comes (and is passed over): this
		 * peer is not asked again for a while. */
		c->sync_skip_until_ms = net_now_ms() + NET_SYNC_TIMEOUT_MS;
		return;
	} else if (rc && local_fault(rc)) {
		log_error("peers: cannot apply block %" PRIu64 ": %s", b->height,
			  why[0] ? why : tally_strerror(rc));
		sync_forget(c);
		return;
	} else if (rc) {
		conn_misbehave(c, "it served block %" PRIu64 " that does not verify: %s", b->height,
			       why[0] ? why : tally_strerror(rc));
		return;
	}
	STAT_ADD(n, blocks_synced, 1);
	log_debug("peers: block %" PRIu64 " applied from a peer", b->height);
	if (!c->sync_asked)
		sync_tick(n);   /* the batch is done: the next one */
}

void sync_on_no_block(struct conn *c, const struct wire_msg *m)
{
	uint64_t h = m->u.no_block;

	if (!c->sync_asked || h != c->sync_next) {
		conn_misbehave(c, "it sent NO_BLOCK %" PRIu64 " for a block not asked for", h);
		return;
	}
	if (h <= c->height) {
		conn_misbehave(c, "it has no block %" PRIu64 " below the tip %" PRIu64 " it announced",
			       h, c->height);
		return;
	}
	sync_forget(c);
	c->sync_skip_until_ms = net_now_ms() + NET_SYNC_TIMEOUT_MS;
}

/* The certificate of block h as stored here, encoded into *e (empty at
 * height 0). */
static int stored_cert(struct ledger *l, uint64_t h, struct enc *e)
{
	struct commit_cert c;
	int rc;

	if (h == 0)
		return 0;
	rc = ledger_cert(l, h, &c);
	if (!rc) {
		cert_encode(e, &c);
		rc = enc_error(e);
	}
	return rc;
}

void sync_on_get_blocks(struct conn *c, const struct wire_msg *m)
{
	struct net *n = c->net;
	uint64_t from = m->u.get_blocks.from;
	struct enc prev;

	/* Block h carries the certificate of h - 1 as stored here: the one
	 * block h names, since this node holds h. */
	enc_init(&prev);
	for (uint64_t h = from; h < from + m->u.get_blocks.count && conn_ready(c); h++) {
		struct stored_block sb;
		struct wire_msg r;
		int rc;

		/* A slow reader gets what fits; it asks again when it times out. */
		if (evbuffer_get_length(bufferevent_get_output(c->bev)) > NET_OUTBUF_MAX)
			break;
		rc = ledger_block_raw(n->ledger, h, &sb);
		if (rc == TALLY_E_NOTFOUND) {
			r.type = WIRE_NO_BLOCK;
			r.u.no_block = h;
			conn_send(c, &r);
			break;
		}
		if (rc) {
			log_error("peers: cannot read block %" PRIu64 " for a peer: %s", h,
				  tally_strerror(rc));
			break;
		}
		if (h == from)
			rc = stored_cert(n->ledger, h - 1, &prev);
		if (rc || enc_error(&prev)) {
			log_error("peers: cannot read the certificate of block %" PRIu64 " for a"
				  " peer: %s", h - 1, tally_strerror(rc ? rc : enc_error(&prev)));
			stored_block_free(&sb);
			break;
		}
		memset(&r, 0, sizeof(r));
		r.type = WIRE_BLOCK;
		r.u.block.height = h;
		r.u.block.block = sb.body;
		r.u.block.block_len = sb.body_len;
		r.u.block.cert = sb.cert;
		r.u.block.cert_len = sb.cert_len;
		r.u.block.prev_cert = prev.buf;
		r.u.block.prev_cert_len = prev.len;
		rc = conn_send(c, &r);
		/* The next block names this one's certificate, as stored. */
		prev.len = 0;
		enc_fixed(&prev, sb.cert, sb.cert_len);
		stored_block_free(&sb);
		if (rc)
			break;
		STAT_ADD(n, blocks_served, 1);
	}
	enc_free(&prev);
}
