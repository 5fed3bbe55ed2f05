/* Headers, blocks, votes, validator sets and commit certificates. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "lib/chain/block.h"
#include "lib/errors.h"
#include "lib/merkle.h"
#include "lib/chain/tx.h"

#define CHAIN "tally-test"
/* The genesis hash signatures are bound to (any 32 bytes will do here). */
#define GH ((const uint8_t *)"tally-test genesis hash (32 B)..")
#define GH_OTHER ((const uint8_t *)"another chain's genesis hash....")
#define NKEYS 3

static struct tally_key keys[NKEYS];   /* sorted by public key */

static void keys_setup(void)
{
	uint8_t seed[32];

	for (int i = 0; i < NKEYS; i++) {
		memset(seed, 0x31 + i, sizeof(seed));
		ck_assert_int_eq(key_from_seed(&keys[i], seed), 0);
	}
	/* Sort so keys[i] is validator i of a sorted set. */
	for (int i = 0; i < NKEYS; i++)
		for (int j = i + 1; j < NKEYS; j++)
			if (memcmp(keys[j].pub, keys[i].pub, PUBKEY_LEN) < 0) {
				struct tally_key t = keys[i];
				keys[i] = keys[j];
				keys[j] = t;
			}
}

static void keys_teardown(void)
{
	for (int i = 0; i < NKEYS; i++)
		key_free(&keys[i]);
}

static void make_header(struct block_header *h)
{
	memset(h, 0, sizeof(*h));
	h->version = BLOCK_VERSION;
	strcpy(h->chain_id, CHAIN);
	h->height = 42;
	h->time_ns = 1700000000123456789ull;
	for (int i = 0; i < HASH_LEN; i++) {
		h->prev_block_id[i] = (uint8_t)i;
		h->txs_root[i] = (uint8_t)(i + 1);
		h->usage_root[i] = (uint8_t)(i + 2);
		h->state_root[i] = (uint8_t)(i + 3);
		h->validators_hash[i] = (uint8_t)(i + 4);
		h->next_validators_hash[i] = (uint8_t)(i + 5);
		h->proposer[i] = (uint8_t)(i + 6);
		h->last_commit_hash[i] = (uint8_t)(i + 7);
	}
	h->usage_size = 99;
}

static uint8_t *header_bytes(const struct block_header *h, size_t *n)
{
	struct enc e;

	enc_init(&e);
	header_encode(&e, h);
	ck_assert_int_eq(enc_error(&e), 0);
	return enc_take(&e, n);
}

START_TEST(test_header_round_trip)
{
	struct block_header h, back;
	uint8_t id[HASH_LEN], want[HASH_LEN];
	size_t n;
	uint8_t *p;

	make_header(&h);
	p = header_bytes(&h, &n);
	ck_assert_uint_eq(n, 285 + strlen(CHAIN));
	ck_assert_int_eq(header_decode(&back, p, n), 0);
	ck_assert_mem_eq(&back, &h, sizeof(h));
	block_id(&h, id);
	sha256(p, n, want);
	ck_assert_mem_eq(id, want, HASH_LEN);

	for (size_t cut = 0; cut < n; cut++) {
		uint8_t *q = malloc(cut ? cut : 1);

		memcpy(q, p, cut);
		ck_assert_int_ne(header_decode(&back, q, cut), 0);
		free(q);
	}
	p = realloc(p, n + 1);
	p[n] = 7;
	ck_assert_int_eq(header_decode(&back, p, n + 1), TALLY_E_TRAILING);
	p[0] = 2;
	ck_assert_int_eq(header_decode(&back, p, n), TALLY_E_VERSION);
	free(p);
}
END_TEST

/* A block of ntx distinct small byte strings (their validity as
 * transactions is the chain verifier's question, not the block codec's). */
static void make_block(struct block *b, size_t ntx)
{
	memset(b, 0, sizeof(*b));
	make_header(&b->header);
	b->ntx = ntx;
	b->txs = calloc(ntx ? ntx : 1, sizeof(*b->txs));
	for (size_t i = 0; i < ntx; i++) {
		uint8_t *bytes = malloc(10 + i);

		memset(bytes, (int)(0x40 + i), 10 + i);
		b->txs[i].len = 10 + i;
		b->txs[i].bytes = bytes;
	}
}

static uint8_t *block_bytes(const struct block *b, size_t *n)
{
	struct enc e;

	enc_init(&e);
	block_encode(&e, b);
	ck_assert_int_eq(enc_error(&e), 0);
	return enc_take(&e, n);
}

START_TEST(test_block_round_trip)
{
	struct block b, back;
	size_t n, n2;
	uint8_t *p, *q;

	for (size_t ntx = 0; ntx < 4; ntx++) {
		make_block(&b, ntx);
		p = block_bytes(&b, &n);
		ck_assert_int_eq(block_decode(&back, p, n), 0);
		ck_assert_uint_eq(back.ntx, ntx);
		ck_assert_mem_eq(&back.header, &b.header, sizeof(b.header));
		for (size_t i = 0; i < ntx; i++) {
			ck_assert_uint_eq(back.txs[i].len, b.txs[i].len);
			ck_assert_mem_eq(back.txs[i].bytes, b.txs[i].bytes, b.txs[i].len);
		}
		q = block_bytes(&back, &n2);
		ck_assert_uint_eq(n2, n);
		ck_assert_mem_eq(q, p, n);
		free(q);
		block_free(&back);

		for (size_t cut = 0; cut < n; cut++) {
			q = malloc(cut ? cut : 1);
			memcpy(q, p, cut);
			ck_assert_int_ne(block_decode(&back, q, cut), 0);
			ck_assert_uint_eq(back.ntx, 0);
			ck_assert_ptr_null(back.txs);
			free(q);
		}
		p = realloc(p, n + 1);
		p[n] = 0;
		ck_assert_int_eq(block_decode(&back, p, n + 1), TALLY_E_TRAILING);
		free(p);
		block_free(&b);
	}
}
END_TEST

/* block_tx_each: each transaction's place in the encoding, in order; the
 * same refusals as block_decode for every cut and a trailing byte; a
 * refusal of the callback stops the walk and is returned. */
struct spans {
	const uint8_t *p;
	const struct block *b;
	size_t seen;
	size_t stop_at;
};

static int span_check(void *ctx, size_t i, size_t off, size_t len)
{
	struct spans *s = ctx;

	ck_assert_uint_eq(i, s->seen);
	ck_assert_uint_eq(len, s->b->txs[i].len);
	ck_assert_mem_eq(s->p + off, s->b->txs[i].bytes, len);
	s->seen++;
	return i + 1 == s->stop_at ? TALLY_E_STORE : 0;
}

START_TEST(test_block_tx_each)
{
	for (size_t ntx = 0; ntx < 4; ntx++) {
		struct block b, back;
		size_t n;
		uint8_t *p;

		make_block(&b, ntx);
		p = block_bytes(&b, &n);
		struct spans s = { p, &b, 0, 0 };
		ck_assert_int_eq(block_tx_each(p, n, span_check, &s), 0);
		ck_assert_uint_eq(s.seen, ntx);
		for (size_t cut = 0; cut < n; cut++) {
			int want = block_decode(&back, p, cut);

			s.seen = 0;
			ck_assert_int_ne(want, 0);
			ck_assert_int_eq(block_tx_each(p, cut, span_check, &s), want);
		}
		if (ntx) {
			s.seen = 0;
			s.stop_at = 1;
			ck_assert_int_eq(block_tx_each(p, n, span_check, &s), TALLY_E_STORE);
			ck_assert_uint_eq(s.seen, 1);
			s.stop_at = 0;
		}
		p = realloc(p, n + 1);
		p[n] = 0;
		s.p = p;
		s.seen = 0;
		ck_assert_int_eq(block_tx_each(p, n + 1, span_check, &s), TALLY_E_TRAILING);
		free(p);
		block_free(&b);
	}
}
END_TEST

START_TEST(test_block_limits)
{
	struct block b, back;
	size_t n, hlen = 285 + strlen(CHAIN);
	uint8_t *p;
	struct enc e;

	/* A count above BLOCK_MAX_TXS is refused before anything is allocated. */
	make_block(&b, 0);
	p = block_bytes(&b, &n);
	ck_assert_uint_eq(n, hlen + 4);
	uint32_t count = BLOCK_MAX_TXS + 1;
	memcpy(p + hlen, &count, 4);   /* little-endian host */
	ck_assert_int_eq(block_decode(&back, p, n), TALLY_E_TOOLONG);
	free(p);
	block_free(&b);

	/* A transaction longer than TX_MAX_SIZE, both ways. */
	make_block(&b, 1);
	free((void *)b.txs[0].bytes);
	b.txs[0].len = TX_MAX_SIZE + 1;
	b.txs[0].bytes = calloc(1, TX_MAX_SIZE + 1);
	enc_init(&e);
	block_encode(&e, &b);
	ck_assert_int_eq(enc_error(&e), TALLY_E_TOOLONG);
	enc_free(&e);
	b.txs[0].len = TX_MAX_SIZE;
	p = block_bytes(&b, &n);
	ck_assert_int_eq(block_decode(&back, p, n), 0);
	block_free(&back);
	uint32_t len = TX_MAX_SIZE + 1;
	memcpy(p + hlen + 4, &len, 4);
	p = realloc(p, n + 1);
	p[n] = 0;
	ck_assert_int_eq(block_decode(&back, p, n + 1), TALLY_E_TOOLONG);
	free(p);
	block_free(&b);
}
END_TEST

START_TEST(test_txs_root)
{
	struct block b;
	uint8_t root[HASH_LEN], want[HASH_LEN], l[3][HASH_LEN], node[HASH_LEN];
	uint8_t buf[1 + 64];

	make_block(&b, 0);
	block_txs_root(&b, root);
	sha256("", 0, want);
	ck_assert_mem_eq(root, want, HASH_LEN);
	block_free(&b);

	/* RFC 6962 by hand: leaf = H(0x00 || tx), node = H(0x01 || l || r). */
	make_block(&b, 3);
	for (int i = 0; i < 3; i++) {
		uint8_t leaf[64];

		leaf[0] = 0x00;
		memcpy(leaf + 1, b.txs[i].bytes, b.txs[i].len);
		sha256(leaf, 1 + b.txs[i].len, l[i]);
	}
	buf[0] = 0x01;
	memcpy(buf + 1, l[0], HASH_LEN);
	memcpy(buf + 1 + HASH_LEN, l[1], HASH_LEN);
	sha256(buf, sizeof(buf), node);
	memcpy(buf + 1, node, HASH_LEN);
	memcpy(buf + 1 + HASH_LEN, l[2], HASH_LEN);
	sha256(buf, sizeof(buf), want);
	block_txs_root(&b, root);
	ck_assert_mem_eq(root, want, HASH_LEN);
	block_free(&b);
}
END_TEST

/* tx_hash and the RFC 6962 leaf of bytes[n], computed here. */
static void hashes_of(const uint8_t *bytes, size_t n, uint8_t hash[HASH_LEN],
		      uint8_t leaf[HASH_LEN])
{
	uint8_t buf[TX_MAX_SIZE + 1];

	sha256(bytes, n, hash);
	buf[0] = 0x00;
	memcpy(buf + 1, bytes, n);
	sha256(buf, 1 + n, leaf);
}

/* A decoded block keeps each transaction's hashes, and they are always
 * those of the bytes it holds: after decoding, after a transaction is
 * replaced (never the old one's), and for a block put together by hand
 * (none kept: computed when asked). The root follows the bytes. */
START_TEST(test_block_tx_hashes)
{
	static const uint8_t other[] = "another transaction's bytes";
	struct block b, back, by_hand;
	uint8_t hash[HASH_LEN], leaf[HASH_LEN], got[HASH_LEN], root[HASH_LEN];
	uint8_t root_before[HASH_LEN], root_by_hand[HASH_LEN];
	size_t n;
	uint8_t *p;

	make_block(&b, 3);
	p = block_bytes(&b, &n);
	ck_assert_int_eq(block_decode(&back, p, n), 0);
	free(p);
	for (size_t i = 0; i < 3; i++) {
		ck_assert(!b.txs[i].hashed);
		ck_assert(back.txs[i].hashed);
		hashes_of(back.txs[i].bytes, back.txs[i].len, hash, leaf);
		ck_assert_mem_eq(back.txs[i].hash, hash, HASH_LEN);
		ck_assert_mem_eq(back.txs[i].leaf, leaf, HASH_LEN);
		block_tx_hash(&b.txs[i], got);
		ck_assert_mem_eq(got, hash, HASH_LEN);
		block_tx_leaf(&b.txs[i], got);
		ck_assert_mem_eq(got, leaf, HASH_LEN);
	}
	block_txs_root(&b, root_by_hand);
	block_txs_root(&back, root_before);
	ck_assert_mem_eq(root_before, root_by_hand, HASH_LEN);

	/* Transaction 1 replaced: its hashes are the new bytes', the root
	 * moves, and is the root of the same bytes put together by hand. */
	ck_assert_int_eq(block_tx_replace(&back, 1, other, sizeof(other)), 0);
	ck_assert_uint_eq(back.txs[1].len, sizeof(other));
	ck_assert_mem_eq(back.txs[1].bytes, other, sizeof(other));
	hashes_of(other, sizeof(other), hash, leaf);
	block_tx_hash(&back.txs[1], got);
	ck_assert_mem_eq(got, hash, HASH_LEN);
	block_tx_leaf(&back.txs[1], got);
	ck_assert_mem_eq(got, leaf, HASH_LEN);
	block_txs_root(&back, root);
	ck_assert_mem_ne(root, root_before, HASH_LEN);
	by_hand = b;
	by_hand.txs = calloc(3, sizeof(*by_hand.txs));
	ck_assert_ptr_nonnull(by_hand.txs);
	by_hand.txs[0] = b.txs[0];
	by_hand.txs[1].bytes = other;
	by_hand.txs[1].len = sizeof(other);
	by_hand.txs[2] = b.txs[2];
	block_txs_root(&by_hand, root_by_hand);
	free(by_hand.txs);
	ck_assert_mem_eq(root, root_by_hand, HASH_LEN);

	/* Two transactions trading places take their hashes with them. */
	struct block_tx tmp = back.txs[0];

	back.txs[0] = back.txs[2];
	back.txs[2] = tmp;
	for (size_t i = 0; i < 3; i++) {
		hashes_of(back.txs[i].bytes, back.txs[i].len, hash, leaf);
		ck_assert_mem_eq(back.txs[i].hash, hash, HASH_LEN);
		ck_assert_mem_eq(back.txs[i].leaf, leaf, HASH_LEN);
	}

	/* Refused: no such transaction, or too long; nothing changes. */
	ck_assert_int_eq(block_tx_replace(&back, 3, other, sizeof(other)), TALLY_E_RANGE);
	p = calloc(1, TX_MAX_SIZE + 1);
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(block_tx_replace(&back, 0, p, TX_MAX_SIZE + 1), TALLY_E_TOOLONG);
	free(p);
	ck_assert_mem_eq(back.txs[1].bytes, other, sizeof(other));
	block_free(&back);
	block_free(&b);
}
END_TEST

START_TEST(test_votes)
{
	struct vote v = { .type = VOTE_PRECOMMIT, .height = 5, .round = 2 }, back;
	uint8_t sig[SIG_LEN];
	struct enc e;

	memset(v.block_id, 0xee, HASH_LEN);
	enc_init(&e);
	vote_encode(&e, &v);
	ck_assert_uint_eq(e.len, VOTE_LEN);
	ck_assert_int_eq(vote_decode(&back, e.buf, e.len), 0);
	ck_assert_uint_eq(back.type, v.type);
	ck_assert_uint_eq(back.height, v.height);
	ck_assert_uint_eq(back.round, v.round);
	ck_assert_mem_eq(back.block_id, v.block_id, HASH_LEN);
	e.buf[0] = 3;
	ck_assert_int_eq(vote_decode(&back, e.buf, e.len), TALLY_E_RANGE);
	e.buf[0] = VOTE_PRECOMMIT;
	ck_assert_int_eq(vote_decode(&back, e.buf, e.len - 1), TALLY_E_TRUNCATED);
	enc_free(&e);

	ck_assert_int_eq(vote_sign(&v, &keys[0], GH, sig), 0);
	ck_assert_int_eq(vote_verify(&v, keys[0].pub, GH, sig), 0);
	ck_assert_int_eq(vote_verify(&v, keys[1].pub, GH, sig), TALLY_E_SIGNATURE);
	ck_assert_int_eq(vote_verify(&v, keys[0].pub, GH_OTHER, sig), TALLY_E_SIGNATURE);
	v.round = 3;
	ck_assert_int_eq(vote_verify(&v, keys[0].pub, GH, sig), TALLY_E_SIGNATURE);
	v.round = 2;
	v.type = VOTE_PREVOTE;
	ck_assert_int_eq(vote_verify(&v, keys[0].pub, GH, sig), TALLY_E_SIGNATURE);
	/* The vote domain: the same payload signed as a transaction is not a vote. */
	uint8_t msg[VOTE_LEN];
	v.type = VOTE_PRECOMMIT;
	enc_init(&e);
	vote_encode(&e, &v);
	memcpy(msg, e.buf, VOTE_LEN);
	enc_free(&e);
	ck_assert_int_eq(sig_sign(&keys[0], SIG_TX, GH, msg, VOTE_LEN, sig), 0);
	ck_assert_int_eq(vote_verify(&v, keys[0].pub, GH, sig), TALLY_E_SIGNATURE);
	v.type = 9;
	ck_assert_int_eq(vote_sign(&v, &keys[0], GH, sig), TALLY_E_INVALID);
}
END_TEST

static void make_valset(struct validator_set *s, const uint64_t *stakes)
{
	memset(s, 0, sizeof(*s));
	s->n = NKEYS;
	for (int i = 0; i < NKEYS; i++) {
		memcpy(s->v[i].pubkey, keys[i].pub, PUBKEY_LEN);
		s->v[i].stake = stakes[i];
	}
}

START_TEST(test_valset)
{
	static const uint64_t stakes[NKEYS] = { 10, 20, 30 };
	struct validator_set s;
	uint8_t h[HASH_LEN], want[HASH_LEN];
	struct enc e;

	make_valset(&s, stakes);
	ck_assert_int_eq(valset_check(&s), 0);
	ck_assert_uint_eq(valset_total_stake(&s), 60);
	for (int i = 0; i < NKEYS; i++)
		ck_assert_ptr_eq(valset_find(&s, keys[i].pub), &s.v[i]);
	uint8_t stranger[PUBKEY_LEN] = { 0 };
	ck_assert_ptr_null(valset_find(&s, stranger));

	enc_init(&e);
	enc_u32(&e, NKEYS);
	for (int i = 0; i < NKEYS; i++) {
		enc_fixed(&e, keys[i].pub, PUBKEY_LEN);
		enc_u64(&e, stakes[i]);
	}
	sha256(e.buf, e.len, want);
	enc_free(&e);
	valset_hash(&s, h);
	ck_assert_mem_eq(h, want, HASH_LEN);
	/* Priority is not hashed. */
	s.v[1].priority = -5;
	valset_hash(&s, h);
	ck_assert_mem_eq(h, want, HASH_LEN);

	s.v[1].stake = 0;
	ck_assert_int_eq(valset_check(&s), TALLY_E_VALSET);
	make_valset(&s, stakes);
	s.v[1] = s.v[0];
	ck_assert_int_eq(valset_check(&s), TALLY_E_VALSET);
	make_valset(&s, stakes);
	s.v[0].stake = UINT64_MAX - 25;
	ck_assert_int_eq(valset_check(&s), TALLY_E_VALSET);
	s.n = 0;
	ck_assert_int_eq(valset_check(&s), TALLY_E_VALSET);
}
END_TEST

/* A certificate for (7, 1, id) signed by the validators in mask. */
static void make_cert(struct commit_cert *c, unsigned mask)
{
	struct vote v = { .type = VOTE_PRECOMMIT, .height = 7, .round = 1 };

	memset(c, 0, sizeof(*c));
	c->height = 7;
	c->round = 1;
	memset(c->block_id, 0x77, HASH_LEN);
	memcpy(v.block_id, c->block_id, HASH_LEN);
	for (int i = 0; i < NKEYS; i++) {
		if (!(mask & (1u << i)))
			continue;
		memcpy(c->sigs[c->n].validator, keys[i].pub, PUBKEY_LEN);
		ck_assert_int_eq(vote_sign(&v, &keys[i], GH, c->sigs[c->n].sig), 0);
		c->n++;
	}
}

START_TEST(test_cert_codec)
{
	struct commit_cert c, back;
	uint8_t h[HASH_LEN], want[HASH_LEN];
	struct enc e;

	make_cert(&c, 7);
	enc_init(&e);
	cert_encode(&e, &c);
	ck_assert_uint_eq(e.len, 48 + 96 * 3);
	ck_assert_int_eq(cert_decode(&back, e.buf, e.len), 0);
	ck_assert_mem_eq(&back, &c, sizeof(c));
	cert_hash(&c, h);
	sha256(e.buf, e.len, want);
	ck_assert_mem_eq(h, want, HASH_LEN);
	for (size_t cut = 0; cut < e.len; cut++)
		ck_assert_int_ne(cert_decode(&back, e.buf, cut), 0);
	/* Signers out of order: swap the first two entries. */
	uint8_t tmp[96];
	memcpy(tmp, e.buf + 48, 96);
	memcpy(e.buf + 48, e.buf + 48 + 96, 96);
	memcpy(e.buf + 48 + 96, tmp, 96);
	ck_assert_int_eq(cert_decode(&back, e.buf, e.len), TALLY_E_ENCODING);
	/* The same signer twice. */
	memcpy(e.buf + 48, e.buf + 48 + 96, 96);
	ck_assert_int_eq(cert_decode(&back, e.buf, e.len), TALLY_E_ENCODING);
	/* More signers than a set can hold. */
	uint32_t count = VALIDATORS_MAX + 1;
	memcpy(e.buf + 44, &count, 4);
	ck_assert_int_eq(cert_decode(&back, e.buf, e.len), TALLY_E_TOOLONG);
	enc_free(&e);

	enc_init(&e);
	cert_encode(&e, &c);
	enc_u8(&e, 0);
	ck_assert_int_eq(cert_decode(&back, e.buf, e.len), TALLY_E_TRAILING);
	enc_free(&e);
}
END_TEST

START_TEST(test_cert_verify_members_and_sigs)
{
	static const uint64_t stakes[NKEYS] = { 100, 100, 100 };
	struct validator_set s;
	struct commit_cert c;

	make_valset(&s, stakes);
	make_cert(&c, 7);
	ck_assert_int_eq(cert_verify(&c, &s, GH), 0);
	ck_assert_int_eq(cert_verify(&c, &s, GH_OTHER), TALLY_E_SIGNATURE);

	/* A duplicate signer: the same validator's stake must not count twice. */
	make_cert(&c, 3);
	c.sigs[2] = c.sigs[1];
	c.n = 3;
	ck_assert_int_eq(cert_verify(&c, &s, GH), TALLY_E_CERT);
	/* Out of order. */
	make_cert(&c, 7);
	struct commit_sig t = c.sigs[0];
	c.sigs[0] = c.sigs[1];
	c.sigs[1] = t;
	ck_assert_int_eq(cert_verify(&c, &s, GH), TALLY_E_CERT);
	/* A signer outside the set: the set without validator 2. */
	make_cert(&c, 7);
	s.n = 2;
	ck_assert_int_eq(cert_verify(&c, &s, GH), TALLY_E_CERT);
	s.n = 3;
	/* A bad signature, even when the others alone would be a quorum. */
	make_cert(&c, 7);
	c.sigs[1].sig[5] ^= 0x01;
	ck_assert_int_eq(cert_verify(&c, &s, GH), TALLY_E_SIGNATURE);
	/* Signatures over another block, round or height. */
	make_cert(&c, 7);
	c.block_id[0] ^= 1;
	ck_assert_int_eq(cert_verify(&c, &s, GH), TALLY_E_SIGNATURE);
	make_cert(&c, 7);
	c.round = 2;
	ck_assert_int_eq(cert_verify(&c, &s, GH), TALLY_E_SIGNATURE);
	make_cert(&c, 7);
	c.height = 8;
	ck_assert_int_eq(cert_verify(&c, &s, GH), TALLY_E_SIGNATURE);
	/* Prevotes are not precommits. */
	struct vote pv = { .type = VOTE_PREVOTE, .height = 7, .round = 1 };
	make_cert(&c, 7);
	memcpy(pv.block_id, c.block_id, HASH_LEN);
	ck_assert_int_eq(vote_sign(&pv, &keys[0], GH, c.sigs[0].sig), 0);
	ck_assert_int_eq(cert_verify(&c, &s, GH), TALLY_E_SIGNATURE);
}
END_TEST

START_TEST(test_cert_quorum)
{
	struct validator_set s;
	struct commit_cert c;

	/* Equal stakes: two of three is exactly 2/3, not more. */
	static const uint64_t equal[NKEYS] = { 100, 100, 100 };
	make_valset(&s, equal);
	make_cert(&c, 3);
	ck_assert_int_eq(cert_verify(&c, &s, GH), TALLY_E_QUORUM);
	make_cert(&c, 1);
	ck_assert_int_eq(cert_verify(&c, &s, GH), TALLY_E_QUORUM);
	make_cert(&c, 0);
	ck_assert_int_eq(cert_verify(&c, &s, GH), TALLY_E_QUORUM);
	make_cert(&c, 7);
	ck_assert_int_eq(cert_verify(&c, &s, GH), 0);

	/* One unit more on a signer tips it over: 201 of 301. */
	static const uint64_t over[NKEYS] = { 101, 100, 100 };
	make_valset(&s, over);
	make_cert(&c, 3);
	ck_assert_int_eq(cert_verify(&c, &s, GH), 0);
	make_cert(&c, 6);   /* 200 of 301 */
	ck_assert_int_eq(cert_verify(&c, &s, GH), TALLY_E_QUORUM);

	/* Stakes whose products overflow 64 bits: 2^62 each, total 3 * 2^62. */
	static const uint64_t huge[NKEYS] = { 1ull << 62, 1ull << 62, 1ull << 62 };
	make_valset(&s, huge);
	make_cert(&c, 3);
	ck_assert_int_eq(cert_verify(&c, &s, GH), TALLY_E_QUORUM);
	s.v[0].stake++;
	ck_assert_int_eq(cert_verify(&c, &s, GH), 0);
	make_cert(&c, 6);
	ck_assert_int_eq(cert_verify(&c, &s, GH), TALLY_E_QUORUM);
}
END_TEST

Suite *block_suite(void)
{
	Suite *s = suite_create("block");
	TCase *tc = tcase_create("block");

	tcase_add_checked_fixture(tc, keys_setup, keys_teardown);
	tcase_add_test(tc, test_header_round_trip);
	tcase_add_test(tc, test_block_round_trip);
	tcase_add_test(tc, test_block_limits);
	tcase_add_test(tc, test_block_tx_each);
	tcase_add_test(tc, test_txs_root);
	tcase_add_test(tc, test_block_tx_hashes);
	tcase_add_test(tc, test_votes);
	tcase_add_test(tc, test_valset);
	tcase_add_test(tc, test_cert_codec);
	tcase_add_test(tc, test_cert_verify_members_and_sigs);
	tcase_add_test(tc, test_cert_quorum);
	suite_add_tcase(s, tc);
	return s;
}
