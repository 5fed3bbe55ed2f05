/* Consensus messages (see msg.h). */
#include "daemon/consensus/msg.h"

#include <string.h>

#include "lib/errors.h"

void cs_msg_encode(struct enc *e, const struct cs_msg *m)
{
	enc_u8(e, m->kind);
	switch (m->kind) {
	case CS_MSG_PROPOSAL:
		if (m->block_len > CS_BLOCK_BYTES_MAX || m->prev_cert_len > CS_CERT_BYTES_MAX) {
			if (!e->err)
				e->err = TALLY_E_TOOLONG;
			return;
		}
		proposal_encode(e, &m->p);
		enc_fixed(e, m->sig, SIG_LEN);
		enc_bytes(e, m->block, m->block_len);
		enc_bytes(e, m->prev_cert, m->prev_cert_len);
		return;
	case CS_MSG_VOTE:
		vote_encode(e, &m->v);
		enc_fixed(e, m->validator, PUBKEY_LEN);
		enc_fixed(e, m->sig, SIG_LEN);
		return;
	default:
		if (!e->err)
			e->err = TALLY_E_RANGE;
	}
}

int cs_msg_decode(struct cs_msg *m, const uint8_t *p, size_t n)
{
	struct dec d;
	int rc;

	memset(m, 0, sizeof(*m));
	dec_init(&d, p, n);
	m->kind = dec_u8(&d);
	if (!dec_error(&d)) {
		switch (m->kind) {
		case CS_MSG_PROPOSAL:
			proposal_decode_from(&d, &m->p);
			dec_fixed(&d, m->sig, SIG_LEN);
			m->block = dec_bytes(&d, &m->block_len, CS_BLOCK_BYTES_MAX);
			m->prev_cert = dec_bytes(&d, &m->prev_cert_len, CS_CERT_BYTES_MAX);
			break;
		case CS_MSG_VOTE:
			vote_decode_from(&d, &m->v);
			dec_fixed(&d, m->validator, PUBKEY_LEN);
			dec_fixed(&d, m->sig, SIG_LEN);
			break;
		default:
			dec_fail(&d, TALLY_E_RANGE);
		}
	}
	rc = dec_finish(&d);
	if (rc)
		memset(m, 0, sizeof(*m));
	return rc;
}
