/* The peer protocol's pure parts: frames and messages round-trip and every
 * malformed one is refused with its own error; the seen-set forgets the
 * oldest first and keeps who sent what; a relay skips the peers that sent
 * the transaction (gossip on connections without sockets); the TLS
 * identity carries exactly the node key; [peers] in the configuration. The
 * transport itself runs in tests/net/ with real tallyd processes. */
#include <check.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "daemon/config.h"
#include "daemon/ledger/txqueue.h"
#include "daemon/net/net_impl.h"
#include "lib/seen.h"
#include "daemon/net/tlsid.h"
#include "daemon/net/wire.h"
#include "lib/errors.h"
#include "tests/support/cbpaths.h"
#include "tests/support/ledgertest.h"

/* The case's directory, made and removed in the runner's process: a test
 * whose assertion fails ends before its own clean-up, and leaves nothing. */
static char base[40];

static void case_begin(void)
{
	lt_case_dir(base, sizeof(base), "net");
}

static void case_end(void)
{
	cb_rm_tree(base);
}

/* Encodes m, checks the head, decodes the body into out. */
static int round_trip(const struct wire_msg *m, struct wire_msg *out, struct enc *e)
{
	uint8_t type;
	size_t body_len;

	enc_init(e);
	wire_encode(e, m);
	ck_assert_int_eq(enc_error(e), 0);
	ck_assert_int_eq(wire_head(e->buf, &type, &body_len), 0);
	ck_assert_uint_eq(type, m->type);
	ck_assert_uint_eq(body_len + WIRE_HEAD_LEN, e->len);
	return wire_decode(type, e->buf + WIRE_HEAD_LEN, body_len, out);
}

START_TEST(messages_round_trip)
{
	struct wire_msg m = { .type = WIRE_HELLO }, out;
	struct enc e;
	uint8_t blk[100], cert[40];

	m.u.hello.version = WIRE_VERSION;
	memset(m.u.hello.genesis_hash, 7, HASH_LEN);
	snprintf(m.u.hello.chain_id, sizeof(m.u.hello.chain_id), "tally-dev");
	memset(m.u.hello.node_key, 9, PUBKEY_LEN);
	m.u.hello.height = 42;
	ck_assert_int_eq(round_trip(&m, &out, &e), 0);
	ck_assert(!memcmp(&out.u.hello, &m.u.hello, sizeof(m.u.hello)));
	enc_free(&e);

	memset(blk, 1, sizeof(blk));
	memset(cert, 2, sizeof(cert));
	m = (struct wire_msg){ .type = WIRE_BLOCK };
	m.u.block.height = 1;
	m.u.block.block = blk;
	m.u.block.block_len = sizeof(blk);
	m.u.block.cert = cert;
	m.u.block.cert_len = sizeof(cert);
	ck_assert_int_eq(round_trip(&m, &out, &e), 0);
	ck_assert_uint_eq(out.u.block.height, 1);
	ck_assert_uint_eq(out.u.block.prev_cert_len, 0);
	ck_assert_uint_eq(out.u.block.block_len, sizeof(blk));
	ck_assert(!memcmp(out.u.block.block, blk, sizeof(blk)));
	ck_assert(!memcmp(out.u.block.cert, cert, sizeof(cert)));
	enc_free(&e);

	/* The previous block's certificate rides with every block but the first. */
	m.u.block.height = 5;
	m.u.block.prev_cert = cert;
	m.u.block.prev_cert_len = sizeof(cert) - 1;
	ck_assert_int_eq(round_trip(&m, &out, &e), 0);
	ck_assert_uint_eq(out.u.block.prev_cert_len, sizeof(cert) - 1);
	ck_assert(!memcmp(out.u.block.prev_cert, cert, sizeof(cert) - 1));
	enc_free(&e);

	/* A consensus frame is the engine's message itself, byte for byte. */
	struct cs_msg cm = { .kind = CS_MSG_VOTE };
	struct enc ce;
	cm.v.type = VOTE_PRECOMMIT;
	cm.v.height = 3;
	cm.v.round = 1;
	memset(cm.validator, 4, PUBKEY_LEN);
	memset(cm.sig, 5, SIG_LEN);
	enc_init(&ce);
	cs_msg_encode(&ce, &cm);
	m = (struct wire_msg){ .type = WIRE_CONSENSUS };
	m.u.consensus.bytes = ce.buf;
	m.u.consensus.len = ce.len;
	ck_assert_int_eq(round_trip(&m, &out, &e), 0);
	ck_assert_uint_eq(out.u.consensus.len, ce.len);
	ck_assert(!memcmp(out.u.consensus.bytes, ce.buf, ce.len));
	ck_assert(!memcmp(e.buf + WIRE_HEAD_LEN, ce.buf, ce.len));
	enc_free(&e);
	enc_free(&ce);

	cm = (struct cs_msg){ .kind = CS_MSG_PROPOSAL };
	cm.p.height = 3;
	cm.p.round = 2;
	cm.p.pol_round = -1;
	cm.block = blk;
	cm.block_len = sizeof(blk);
	cm.prev_cert = cert;
	cm.prev_cert_len = sizeof(cert);
	enc_init(&ce);
	cs_msg_encode(&ce, &cm);
	m.u.consensus.bytes = ce.buf;
	m.u.consensus.len = ce.len;
	ck_assert_int_eq(round_trip(&m, &out, &e), 0);
	ck_assert_uint_eq(out.u.consensus.len, ce.len);
	enc_free(&e);
	enc_free(&ce);

	m = (struct wire_msg){ .type = WIRE_GET_BLOCKS };
	m.u.get_blocks.from = 1;
	m.u.get_blocks.count = WIRE_BLOCKS_MAX;
	ck_assert_int_eq(round_trip(&m, &out, &e), 0);
	ck_assert_uint_eq(out.u.get_blocks.count, WIRE_BLOCKS_MAX);
	enc_free(&e);

	/* A TXS frame: the transactions come back in order, as sent. */
	static uint8_t txb[WIRE_TXS_MAX][8];
	struct wire_bytes items[WIRE_TXS_MAX];
	for (size_t i = 0; i < WIRE_TXS_MAX; i++) {
		memset(txb[i], (int)i, sizeof(txb[i]));
		items[i] = (struct wire_bytes){ txb[i], 1 + i % sizeof(txb[i]) };
	}
	m = (struct wire_msg){ .type = WIRE_TXS };
	m.u.txs.n = WIRE_TXS_MAX;
	m.u.txs.items = items;
	ck_assert_int_eq(round_trip(&m, &out, &e), 0);
	ck_assert_uint_eq(out.u.txs.n, WIRE_TXS_MAX);
	struct wire_txs_iter it;
	struct wire_bytes got;
	size_t k = 0;
	wire_txs_begin(&it, &out.u.txs);
	while (wire_txs_next(&it, &got)) {
		ck_assert_uint_lt(k, WIRE_TXS_MAX);
		ck_assert_uint_eq(got.len, items[k].len);
		ck_assert(!memcmp(got.bytes, items[k].bytes, got.len));
		k++;
	}
	ck_assert_uint_eq(k, WIRE_TXS_MAX);
	enc_free(&e);
}
END_TEST

/* Encodes m and returns wire_decode's verdict on its body, after fix()
 * changed the frame (may be NULL). */
static int decode_changed(struct wire_msg *m, void (*fix)(struct enc *e))
{
	struct wire_msg out;
	struct enc e;
	int rc;

	enc_init(&e);
	wire_encode(&e, m);
	ck_assert_int_eq(enc_error(&e), 0);
	if (fix)
		fix(&e);
	rc = wire_decode(e.buf[4], e.buf + WIRE_HEAD_LEN, e.len - WIRE_HEAD_LEN, &out);
	enc_free(&e);
	return rc;
}

static void flip_magic(struct enc *e) { e->buf[WIRE_HEAD_LEN] ^= 1; }
static void bump_version(struct enc *e) { e->buf[WIRE_HEAD_LEN + 8]++; }
static void add_byte(struct enc *e) { enc_u8(e, 0); }
static void cut_byte(struct enc *e) { e->len--; }

/* wire_decode's verdict on a consensus frame carrying cm's encoding
 * (written raw: the engine's encoder refuses what is out of range), after
 * fix() changed it (may be NULL). */
static int decode_consensus(const struct cs_msg *cm, void (*fix)(struct enc *e))
{
	struct wire_msg out;
	struct enc e;
	int rc;

	enc_init(&e);
	enc_u8(&e, cm->kind);
	if (cm->kind == CS_MSG_PROPOSAL) {
		proposal_encode(&e, &cm->p);
		enc_fixed(&e, cm->sig, SIG_LEN);
		enc_bytes(&e, cm->block, cm->block_len);
		enc_bytes(&e, cm->prev_cert, cm->prev_cert_len);
	} else {
		enc_u8(&e, cm->v.type);
		enc_u64(&e, cm->v.height);
		enc_u32(&e, cm->v.round);
		enc_fixed(&e, cm->v.block_id, HASH_LEN);
		enc_fixed(&e, cm->validator, PUBKEY_LEN);
		enc_fixed(&e, cm->sig, SIG_LEN);
	}
	ck_assert_int_eq(enc_error(&e), 0);
	if (fix)
		fix(&e);
	rc = wire_decode(WIRE_CONSENSUS, e.buf, e.len, &out);
	enc_free(&e);
	return rc;
}

START_TEST(malformed_messages_are_refused)
{
	struct wire_msg m = { .type = WIRE_HELLO };

	m.u.hello.version = WIRE_VERSION;
	snprintf(m.u.hello.chain_id, sizeof(m.u.hello.chain_id), "c");
	ck_assert_int_eq(decode_changed(&m, flip_magic), TALLY_E_VERSION);
	ck_assert_int_eq(decode_changed(&m, bump_version), TALLY_E_VERSION);
	ck_assert_int_eq(decode_changed(&m, add_byte), TALLY_E_TRAILING);
	ck_assert_int_eq(decode_changed(&m, cut_byte), TALLY_E_TRUNCATED);

	m = (struct wire_msg){ .type = WIRE_GET_BLOCKS };
	m.u.get_blocks.from = 1;
	m.u.get_blocks.count = WIRE_BLOCKS_MAX + 1;
	ck_assert_int_eq(decode_changed(&m, NULL), TALLY_E_RANGE);
	m.u.get_blocks.count = 0;
	ck_assert_int_eq(decode_changed(&m, NULL), TALLY_E_RANGE);
	m.u.get_blocks.count = 1;
	m.u.get_blocks.from = 0;
	ck_assert_int_eq(decode_changed(&m, NULL), TALLY_E_RANGE);

	/* A block other than the first without the certificate before it,
	 * and the first with one. */
	uint8_t blk[8] = { 0 }, cert[8] = { 0 };
	m = (struct wire_msg){ .type = WIRE_BLOCK };
	m.u.block.height = 2;
	m.u.block.block = blk;
	m.u.block.block_len = sizeof(blk);
	m.u.block.cert = cert;
	m.u.block.cert_len = sizeof(cert);
	ck_assert_int_eq(decode_changed(&m, NULL), TALLY_E_RANGE);
	m.u.block.prev_cert = cert;
	m.u.block.prev_cert_len = sizeof(cert);
	ck_assert_int_eq(decode_changed(&m, NULL), 0);
	m.u.block.height = 1;
	ck_assert_int_eq(decode_changed(&m, NULL), TALLY_E_RANGE);

	/* Consensus frames are judged by the engine's decoder: a proof-of-lock
	 * round must be -1 or an earlier round, a vote's type 1 or 2, a kind
	 * 1 or 2, and nothing may trail. */
	struct cs_msg cm = { .kind = CS_MSG_PROPOSAL };
	cm.p.round = 2;
	cm.p.pol_round = 2;
	ck_assert_int_eq(decode_consensus(&cm, NULL), TALLY_E_RANGE);
	cm.p.pol_round = -2;
	ck_assert_int_eq(decode_consensus(&cm, NULL), TALLY_E_RANGE);
	cm.p.pol_round = -1;
	ck_assert_int_eq(decode_consensus(&cm, NULL), 0);
	ck_assert_int_eq(decode_consensus(&cm, add_byte), TALLY_E_TRAILING);
	ck_assert_int_eq(decode_consensus(&cm, cut_byte), TALLY_E_TRUNCATED);
	cm = (struct cs_msg){ .kind = CS_MSG_VOTE };
	cm.v.type = VOTE_PREVOTE;
	ck_assert_int_eq(decode_consensus(&cm, NULL), 0);
	cm.v.type = 3;
	ck_assert_int_eq(decode_consensus(&cm, NULL), TALLY_E_RANGE);
	ck_assert_int_eq(wire_decode(WIRE_CONSENSUS, (const uint8_t *)"\x03", 1, &m),
			 TALLY_E_RANGE);
	ck_assert_int_eq(wire_decode(WIRE_CONSENSUS, (const uint8_t *)"", 0, &m),
			 TALLY_E_TRUNCATED);

	/* An empty transaction, one above TX_MAX_SIZE, no transaction, more
	 * than WIRE_TXS_MAX, a count above what follows, bytes after them. */
	uint8_t big[TX_MAX_SIZE + 1];
	struct wire_bytes item = { big, 0 };
	memset(big, 0, sizeof(big));
	struct enc e;
	m = (struct wire_msg){ .type = WIRE_TXS };
	m.u.txs.n = 1;
	m.u.txs.items = &item;
	enc_init(&e);
	wire_encode(&e, &m);
	ck_assert_int_eq(enc_error(&e), TALLY_E_RANGE);
	enc_free(&e);
	ck_assert_int_eq(wire_decode(WIRE_TXS, (const uint8_t *)"\x01\0\0\0\0\0", 6, &m),
			 TALLY_E_TRUNCATED);
	ck_assert_int_eq(wire_decode(WIRE_TXS, (const uint8_t *)"\x02\0\x01\0\0\0\x07\0\0\0\0",
				     11, &m), TALLY_E_TRUNCATED);
	enc_init(&e);
	m = (struct wire_msg){ .type = WIRE_TXS };
	m.u.txs.n = 1;
	m.u.txs.items = &item;
	item.len = sizeof(big);
	wire_encode(&e, &m);
	ck_assert_int_eq(enc_error(&e), TALLY_E_TOOLONG);
	enc_free(&e);
	item.len = 5;
	ck_assert_int_eq(decode_changed(&m, NULL), 0);
	ck_assert_int_eq(decode_changed(&m, add_byte), TALLY_E_TRAILING);
	ck_assert_int_eq(decode_changed(&m, cut_byte), TALLY_E_TRUNCATED);
	ck_assert_int_eq(wire_decode(WIRE_TXS, (const uint8_t *)"\0\0", 2, &m), TALLY_E_RANGE);
	/* A count of 257, and a count of 2 over one transaction. */
	ck_assert_int_eq(wire_decode(WIRE_TXS, (const uint8_t *)"\x01\x01", 2, &m),
			 TALLY_E_RANGE);
	ck_assert_int_eq(wire_decode(WIRE_TXS, (const uint8_t *)"\x02\0\x01\0\0\0\x07", 7,
				     &m), TALLY_E_TRUNCATED);
	ck_assert_int_eq(wire_decode(WIRE_TXS, (const uint8_t *)"\x01\0\x01\0\0\0\x07", 7,
				     &m), 0);
	m = (struct wire_msg){ .type = WIRE_TXS };
	enc_init(&e);
	wire_encode(&e, &m);   /* no transaction: nothing to send */
	ck_assert_int_eq(enc_error(&e), TALLY_E_RANGE);
	enc_free(&e);
	ck_assert_int_eq(wire_decode(99, big, 4, &m), TALLY_E_RANGE);
}
END_TEST

START_TEST(frame_heads_are_judged_before_the_body)
{
	uint8_t head[WIRE_HEAD_LEN], type;
	size_t len;

	/* The largest block frame is accepted, one byte more is not. */
	size_t max = wire_max_len(WIRE_BLOCK);
	for (int i = 0; i < 4; i++)
		head[i] = (uint8_t)(max >> (8 * i));
	head[4] = WIRE_BLOCK;
	ck_assert_int_eq(wire_head(head, &type, &len), 0);
	ck_assert_uint_eq(len, max - 1);
	max++;
	for (int i = 0; i < 4; i++)
		head[i] = (uint8_t)(max >> (8 * i));
	ck_assert_int_eq(wire_head(head, &type, &len), TALLY_E_TOOLONG);
	/* A PING of 1 GiB, an unknown type, a zero length. */
	memcpy(head, "\x00\x00\x00\x40\x09", 5);
	ck_assert_int_eq(wire_head(head, &type, &len), TALLY_E_TOOLONG);
	memcpy(head, "\x09\x00\x00\x00\x63", 5);
	ck_assert_int_eq(wire_head(head, &type, &len), TALLY_E_RANGE);
	memcpy(head, "\x00\x00\x00\x00\x09", 5);
	ck_assert_int_eq(wire_head(head, &type, &len), TALLY_E_TRUNCATED);
	/* Every type's limit fits the u32 length; type 8 (VOTE in version 1)
	 * is unknown now. */
	for (uint8_t t = 1; t < WIRE__COUNT; t++)
		ck_assert(t == 8 ? wire_max_len(t) == 0
				 : wire_max_len(t) > 0 && wire_max_len(t) < UINT32_MAX);
	ck_assert_uint_eq(wire_max_frame(), wire_max_len(WIRE_BLOCK));
	ck_assert_str_eq(wire_type_name(8), "unknown");
}
END_TEST

START_TEST(the_seen_set_forgets_the_oldest)
{
	struct seen *s = seen_new(3);
	uint8_t h[5][HASH_LEN];

	ck_assert_ptr_nonnull(s);
	for (int i = 0; i < 5; i++)
		memset(h[i], i + 1, HASH_LEN);
	ck_assert(seen_add(s, h[0]));
	ck_assert(!seen_add(s, h[0]));
	ck_assert(seen_add(s, h[1]));
	ck_assert(seen_add(s, h[2]));
	ck_assert(seen_add(s, h[3]));     /* h[0] goes */
	ck_assert_uint_eq(seen_size(s), 3);
	ck_assert(!seen_has(s, h[0]));
	ck_assert(seen_has(s, h[1]) && seen_has(s, h[2]) && seen_has(s, h[3]));
	ck_assert(seen_add(s, h[4]));     /* h[1] goes */
	ck_assert(!seen_has(s, h[1]));
	/* Forgotten: judged again when it comes back; its slot is passed over. */
	seen_forget(s, h[3]);
	seen_forget(s, h[3]);
	ck_assert(!seen_has(s, h[3]));
	ck_assert_uint_eq(seen_size(s), 2);
	ck_assert(seen_add(s, h[3]));     /* h[2] goes */
	ck_assert(!seen_has(s, h[2]));
	ck_assert(seen_has(s, h[4]) && seen_has(s, h[3]));
	ck_assert(seen_add(s, h[0]));     /* the forgotten slot goes */
	ck_assert(seen_has(s, h[4]) && seen_has(s, h[3]) && seen_has(s, h[0]));
	ck_assert(seen_add(s, h[1]));     /* h[4] goes */
	ck_assert(!seen_has(s, h[4]));
	ck_assert_uint_eq(seen_size(s), 3);
	seen_free(s);
}
END_TEST

/* Marks: ORed in whether the hash was there or not, read back, cleared
 * from every hash at once; a hash new to the set starts with the marks it
 * was added with. */
START_TEST(the_seen_set_keeps_marks)
{
	struct seen *s = seen_new(4);
	uint8_t h[3][HASH_LEN];

	ck_assert_ptr_nonnull(s);
	for (int i = 0; i < 3; i++)
		memset(h[i], i + 1, HASH_LEN);
	ck_assert(seen_add_marked(s, h[0], 1));
	ck_assert(!seen_add_marked(s, h[0], 4));
	ck_assert(seen_add(s, h[1]));
	ck_assert(!seen_add_marked(s, h[1], 2));
	ck_assert(!seen_add(s, h[1]));
	ck_assert_uint_eq(seen_marks(s, h[0]), 5);
	ck_assert_uint_eq(seen_marks(s, h[1]), 2);
	ck_assert_uint_eq(seen_marks(s, h[2]), 0);      /* not there */
	seen_unmark(s, 4 | 2);
	ck_assert_uint_eq(seen_marks(s, h[0]), 1);
	ck_assert_uint_eq(seen_marks(s, h[1]), 0);
	seen_forget(s, h[0]);
	ck_assert(seen_add(s, h[0]));                     /* back without its marks */
	ck_assert_uint_eq(seen_marks(s, h[0]), 0);
	seen_free(s);
}
END_TEST

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

static size_t queued(const struct conn *c)
{
	return evbuffer_get_length(bufferevent_get_output(c->bev));
}

/* A transaction comes from peer A first, then from peer B while this node
 * checks it; admitted, it is relayed to C alone: not back to A, which it
 * came from, nor to B, which sent it too (gossip.c). Connections without a
 * socket: what is sent stays in their output buffers. */
START_TEST(a_relay_skips_the_peers_that_sent_it)
{
	struct net n;
	struct conn c[3];
	struct wire_bytes item;
	struct wire_msg m = { .type = WIRE_TXS }, got;
	struct enc e;
	uint8_t tx[100], hash[HASH_LEN];
	char why[WHY_MAX];

	memset(&n, 0, sizeof(n));
	memset(c, 0, sizeof(c));
	ck_assert_ptr_nonnull(n.base = event_base_new());
	ck_assert_ptr_nonnull(n.wake = event_new(n.base, -1, 0, wake_cb, NULL));
	ck_assert_ptr_nonnull(n.seen_tx = seen_new(16));
	pthread_mutex_init(&n.mu, NULL);
	ck_assert_int_eq(intake_new(&n, why), 0);   /* not started: nothing is checked */
	for (int i = 0; i < 3; i++) {
		c[i].net = &n;
		c[i].state = CONN_READY;
		c[i].dial = -1;
		c[i].mark = 1u << i;
		memset(c[i].key, 'a' + i, PUBKEY_LEN);
		ck_assert_ptr_nonnull(c[i].bev = bufferevent_socket_new(n.base, -1, 0));
		c[i].next = i < 2 ? &c[i + 1] : NULL;
	}
	n.conns = &c[0];
	n.marks_used = 7;

	memset(tx, 7, sizeof(tx));
	tx_hash(tx, sizeof(tx), hash);
	item = (struct wire_bytes){ tx, sizeof(tx) };
	m.u.txs.n = 1;
	m.u.txs.items = &item;
	ck_assert_int_eq(round_trip(&m, &got, &e), 0);
	gossip_on_txs(&c[0], &got);                       /* first: to the intake */
	gossip_on_txs(&c[1], &got);                       /* seen: B holds it */
	ck_assert_uint_eq(txqueue_count(n.intake), 1);
	gossip_admitted(&n, tx, sizeof(tx), hash, c[0].key);
	gossip_flush(&n);
	ck_assert_uint_eq(queued(&c[0]), 0);
	ck_assert_uint_eq(queued(&c[1]), 0);
	ck_assert_uint_eq(queued(&c[2]), e.len);          /* the same TXS frame */

	/* B's bit is cleared when it goes: a peer after it with that bit is sent
	 * what B had sent. */
	conn_close(&c[1], NULL);
	ck_assert_uint_eq(n.marks_used, 5);
	ck_assert_uint_eq(seen_marks(n.seen_tx, hash), 1);
	enc_free(&e);

	for (int i = 0; i < 3; i++)
		if (c[i].bev)
			bufferevent_free(c[i].bev);
	intake_stop(&n);
	seen_free(n.seen_tx);
	event_free(n.wake);
	event_base_free(n.base);
	pthread_mutex_destroy(&n.mu);
}
END_TEST

static int accept_all(int ok, X509_STORE_CTX *st)
{
	(void)ok;
	(void)st;
	return 1;
}

START_TEST(the_tls_certificate_carries_the_node_key)
{
	struct tally_key k;
	SSL_CTX *ctx;
	uint8_t pub[PUBKEY_LEN];
	char why[WHY_MAX] = "";

	ck_assert_int_eq(key_generate(&k), 0);
	ck_assert_int_eq(tlsid_ctx_new(&ctx, &k, accept_all, why), 0);
	X509 *cert = SSL_CTX_get0_certificate(ctx);
	ck_assert_int_eq(tlsid_cert_key(cert, pub), 0);
	ck_assert(!memcmp(pub, k.pub, PUBKEY_LEN));
	/* Self-signed by that key. */
	ck_assert_int_eq(X509_verify(cert, X509_get0_pubkey(cert)), 1);
	ck_assert_int_eq(SSL_CTX_get_min_proto_version(ctx), TLS1_3_VERSION);
	SSL_CTX_free(ctx);
	key_free(&k);
}
END_TEST

static int load_peers(const char *text, struct config *c, char *why)
{
	char path[96];
	int fd;

	snprintf(path, sizeof(path), "%s/conf-XXXXXX", base);
	fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	int rc = config_load(c, path, why);
	unlink(path);
	return rc;
}

START_TEST(the_peers_section_is_read_strictly)
{
	static const char key[] =
		"3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29";
	struct config c;
	char why[WHY_MAX] = "", text[1024];

	snprintf(text, sizeof(text), "[peers]\nlisten = 127.0.0.1:7700\npeer = %s@127.0.0.1:7701\n"
		 "peer = [::1]:7702\nallow = %s\nmax_peers = 8\n", key, key);
	ck_assert_int_eq(load_peers(text, &c, why), 0);
	ck_assert_str_eq(c.peers.listen, "127.0.0.1:7700");
	ck_assert_uint_eq(c.peers.npeers, 2);
	ck_assert(c.peers.peers[0].has_key);
	ck_assert_str_eq(c.peers.peers[0].addr, "127.0.0.1:7701");
	ck_assert(!c.peers.peers[1].has_key);
	ck_assert_str_eq(c.peers.peers[1].addr, "[::1]:7702");
	ck_assert_uint_eq(c.peers.nallow, 1);
	ck_assert_uint_eq(c.peers.max_peers, 8);

	static const char *const bad[] = {
		"[peers]\npeer = 127.0.0.1\n",                 /* no port */
		"[peers]\npeer = 127.0.0.1:0\n",               /* port 0 */
		"[peers]\npeer = 127.0.0.1:70000\n",
		"[peers]\npeer = abc@127.0.0.1:7000\n",        /* not a key */
		"[peers]\nallow = 00\n",
		/* 64 hex digits that are not a point of large order (zero) */
		"[peers]\nallow = 0000000000000000000000000000000000000000000000000000000000000000\n",
		"[peers]\nlisten = nowhere\n",
		"[peers]\nmax_peers = 0\n",
		"[peers]\nfriends = all\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = '\0';
		ck_assert_int_eq(load_peers(bad[i], &c, why), TALLY_E_INVALID);
		ck_assert_msg(strstr(why, "[peers]"), "'%s' gave '%s'", bad[i], why);
	}
}
END_TEST

Suite *net_suite(void)
{
	Suite *s = suite_create("net");
	TCase *tc = tcase_create("wire");

	tcase_add_unchecked_fixture(tc, case_begin, case_end);
	tcase_add_test(tc, messages_round_trip);
	tcase_add_test(tc, malformed_messages_are_refused);
	tcase_add_test(tc, frame_heads_are_judged_before_the_body);
	tcase_add_test(tc, the_seen_set_forgets_the_oldest);
	tcase_add_test(tc, the_seen_set_keeps_marks);
	tcase_add_test(tc, a_relay_skips_the_peers_that_sent_it);
	tcase_add_test(tc, the_tls_certificate_carries_the_node_key);
	tcase_add_test(tc, the_peers_section_is_read_strictly);
	suite_add_tcase(s, tc);
	return s;
}
