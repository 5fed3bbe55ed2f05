/* Peer messages and frames (see wire.h; the byte layouts are in
 * docs/PROTOCOL.md, "Peer protocol"). */
#include "daemon/net/wire.h"

#include <string.h>

#include "lib/errors.h"

static const char *const names[WIRE__COUNT] = {
	[WIRE_HELLO] = "HELLO",         [WIRE_STATUS] = "STATUS",
	[WIRE_TXS] = "TXS",             [WIRE_GET_BLOCKS] = "GET_BLOCKS",
	[WIRE_BLOCK] = "BLOCK",         [WIRE_NO_BLOCK] = "NO_BLOCK",
	[WIRE_CONSENSUS] = "CONSENSUS",
	[WIRE_PING] = "PING",           [WIRE_PONG] = "PONG",
};

const char *wire_type_name(uint8_t type)
{
	return type && type < WIRE__COUNT && names[type] ? names[type] : "unknown";
}

/* Each maximum is the type byte plus the largest body its decoder accepts. */
size_t wire_max_len(uint8_t type)
{
	switch (type) {
	case WIRE_HELLO:
		return 1 + 8 + 2 + HASH_LEN + 4 + CHAIN_ID_MAX + PUBKEY_LEN + 8 + HASH_LEN;
	case WIRE_STATUS:
		return 1 + 8 + HASH_LEN;
	case WIRE_TXS:
		return 1 + 2 + (size_t)WIRE_TXS_MAX * (4 + TX_MAX_SIZE);
	case WIRE_GET_BLOCKS:
		return 1 + 8 + 4;
	case WIRE_BLOCK:
		return 1 + 8 + 4 + WIRE_BLOCK_MAX + 2 * (4 + WIRE_CERT_MAX);
	case WIRE_NO_BLOCK:
	case WIRE_PING:
	case WIRE_PONG:
		return 1 + 8;
	case WIRE_CONSENSUS:
		return 1 + CS_MSG_MAX;
	default:
		return 0;
	}
}

size_t wire_max_frame(void)
{
	size_t max = 0;

	for (uint8_t t = 1; t < WIRE__COUNT; t++)
		if (wire_max_len(t) > max)
			max = wire_max_len(t);
	return max;
}

static void encode_body(struct enc *e, const struct wire_msg *m)
{
	const struct wire_hello *h = &m->u.hello;

	switch (m->type) {
	case WIRE_HELLO:
		enc_fixed(e, WIRE_MAGIC, 8);
		enc_u16(e, h->version);
		enc_fixed(e, h->genesis_hash, HASH_LEN);
		enc_str(e, h->chain_id);
		enc_fixed(e, h->node_key, PUBKEY_LEN);
		enc_u64(e, h->height);
		enc_fixed(e, h->last_block_id, HASH_LEN);
		break;
	case WIRE_STATUS:
		enc_u64(e, m->u.status.height);
		enc_fixed(e, m->u.status.last_block_id, HASH_LEN);
		break;
	case WIRE_TXS:
		if (m->u.txs.n == 0 || m->u.txs.n > WIRE_TXS_MAX) {
			if (!e->err)
				e->err = TALLY_E_RANGE;
			break;
		}
		enc_u16(e, m->u.txs.n);
		if (!m->u.txs.items)   /* a decoded one, as it came */
			enc_fixed(e, m->u.txs.body, m->u.txs.len);
		else
			for (size_t i = 0; i < m->u.txs.n; i++) {
				size_t len = m->u.txs.items[i].len;

				if ((len == 0 || len > TX_MAX_SIZE) && !e->err)
					e->err = len ? TALLY_E_TOOLONG : TALLY_E_RANGE;
				enc_bytes(e, m->u.txs.items[i].bytes, len);
			}
		break;
	case WIRE_GET_BLOCKS:
		enc_u64(e, m->u.get_blocks.from);
		enc_u32(e, m->u.get_blocks.count);
		break;
	case WIRE_BLOCK:
		enc_u64(e, m->u.block.height);
		enc_bytes(e, m->u.block.block, m->u.block.block_len);
		enc_bytes(e, m->u.block.cert, m->u.block.cert_len);
		enc_bytes(e, m->u.block.prev_cert, m->u.block.prev_cert_len);
		break;
	case WIRE_NO_BLOCK:
		enc_u64(e, m->u.no_block);
		break;
	case WIRE_PING:
	case WIRE_PONG:
		enc_u64(e, m->u.ping);
		break;
	case WIRE_CONSENSUS:
		enc_fixed(e, m->u.consensus.bytes, m->u.consensus.len);
		break;
	}
}

void wire_encode(struct enc *e, const struct wire_msg *m)
{
	size_t max = wire_max_len(m->type), start = e->len;

	if (!max) {
		if (!e->err)
			e->err = TALLY_E_RANGE;
		return;
	}
	enc_u32(e, 0);                 /* the length, filled in below */
	enc_u8(e, m->type);
	encode_body(e, m);
	if (e->err)
		return;
	size_t len = e->len - start - 4;
	if (len > max) {
		e->err = TALLY_E_TOOLONG;
		return;
	}
	for (int i = 0; i < 4; i++)
		e->buf[start + i] = (uint8_t)(len >> (8 * i));
}

int wire_head(const uint8_t head[WIRE_HEAD_LEN], uint8_t *type, size_t *body_len)
{
	uint32_t len = (uint32_t)head[0] | (uint32_t)head[1] << 8 | (uint32_t)head[2] << 16 |
		       (uint32_t)head[3] << 24;
	size_t max = wire_max_len(head[4]);

	*type = head[4];
	*body_len = 0;
	if (len == 0)
		return TALLY_E_TRUNCATED;
	if (!max)
		return TALLY_E_RANGE;
	if (len > max)
		return TALLY_E_TOOLONG;
	*body_len = len - 1;
	return 0;
}

static void decode_hello(struct dec *d, struct wire_hello *h)
{
	uint8_t magic[8];

	dec_fixed(d, magic, sizeof(magic));
	h->version = dec_u16(d);
	if (!dec_error(d) && (memcmp(magic, WIRE_MAGIC, 8) || h->version != WIRE_VERSION))
		dec_fail(d, TALLY_E_VERSION);
	dec_fixed(d, h->genesis_hash, HASH_LEN);
	dec_str(d, h->chain_id, CHAIN_ID_MAX);
	dec_fixed(d, h->node_key, PUBKEY_LEN);
	h->height = dec_u64(d);
	dec_fixed(d, h->last_block_id, HASH_LEN);
}

static void decode_txs(struct dec *d, struct wire_txs *t)
{
	size_t start;

	t->n = dec_u16(d);
	if (!dec_error(d) && (t->n == 0 || t->n > WIRE_TXS_MAX))
		dec_fail(d, TALLY_E_RANGE);
	start = d->off;
	for (size_t i = 0; i < t->n && !dec_error(d); i++) {
		size_t len;

		dec_bytes(d, &len, TX_MAX_SIZE);
		if (!dec_error(d) && len == 0)
			dec_fail(d, TALLY_E_TRUNCATED);
	}
	if (!dec_error(d)) {
		t->body = d->p + start;
		t->len = d->off - start;
	}
}

void wire_txs_begin(struct wire_txs_iter *it, const struct wire_txs *t)
{
	it->p = t->body;
	it->end = t->body ? t->body + t->len : NULL;
}

bool wire_txs_next(struct wire_txs_iter *it, struct wire_bytes *tx)
{
	size_t len;

	/* The decoder checked every length: each fits what follows it. */
	if (!it->p || it->end - it->p < 4)
		return false;
	len = (size_t)it->p[0] | (size_t)it->p[1] << 8 | (size_t)it->p[2] << 16 |
	      (size_t)it->p[3] << 24;
	if ((size_t)(it->end - it->p - 4) < len)
		return false;
	tx->bytes = it->p + 4;
	tx->len = len;
	it->p += 4 + len;
	return true;
}

int wire_decode(uint8_t type, const uint8_t *body, size_t len, struct wire_msg *m)
{
	struct dec d;

	memset(m, 0, sizeof(*m));
	m->type = type;
	dec_init(&d, body, len);
	switch (type) {
	case WIRE_HELLO:
		decode_hello(&d, &m->u.hello);
		break;
	case WIRE_STATUS:
		m->u.status.height = dec_u64(&d);
		dec_fixed(&d, m->u.status.last_block_id, HASH_LEN);
		break;
	case WIRE_TXS:
		decode_txs(&d, &m->u.txs);
		break;
	case WIRE_GET_BLOCKS:
		m->u.get_blocks.from = dec_u64(&d);
		m->u.get_blocks.count = dec_u32(&d);
		if (!dec_error(&d) && (m->u.get_blocks.from == 0 || m->u.get_blocks.count == 0 ||
				       m->u.get_blocks.count > WIRE_BLOCKS_MAX))
			dec_fail(&d, TALLY_E_RANGE);
		break;
	case WIRE_BLOCK:
		m->u.block.height = dec_u64(&d);
		m->u.block.block = dec_bytes(&d, &m->u.block.block_len, WIRE_BLOCK_MAX);
		m->u.block.cert = dec_bytes(&d, &m->u.block.cert_len, WIRE_CERT_MAX);
		m->u.block.prev_cert = dec_bytes(&d, &m->u.block.prev_cert_len, WIRE_CERT_MAX);
		/* Block 1 has no block before it; every other names one. */
		if (!dec_error(&d) && (m->u.block.height == 0 ||
				       (m->u.block.height == 1) != (m->u.block.prev_cert_len == 0)))
			dec_fail(&d, TALLY_E_RANGE);
		break;
	case WIRE_NO_BLOCK:
		m->u.no_block = dec_u64(&d);
		break;
	case WIRE_PING:
	case WIRE_PONG:
		m->u.ping = dec_u64(&d);
		break;
	case WIRE_CONSENSUS: {
		struct cs_msg cm;

		m->u.consensus.bytes = body;
		m->u.consensus.len = len;
		return cs_msg_decode(&cm, body, len);
	}
	default:
		return TALLY_E_RANGE;
	}
	return dec_finish(&d);
}
