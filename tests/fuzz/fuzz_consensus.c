/* Consensus messages (daemon/consensus/msg.h): a proposal with its block
 * and the previous block's certificate, or a signed vote, in the encoding
 * the CONSENSUS frame carries.
 *
 * Property: only the canonical form decodes (re-encoding gives the same
 * bytes), and what decodes is in range: a vote is a prevote or a
 * precommit, a proposal's pol_round is -1 or below its round, the block
 * and the certificate within their bounds. */
#include "daemon/consensus/msg.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cs_msg m;
	struct enc e;

	if (cs_msg_decode(&m, data, size) != 0)
		return 0;
	if (m.kind == CS_MSG_VOTE) {
		fuzz_require(m.v.type == VOTE_PREVOTE || m.v.type == VOTE_PRECOMMIT,
			     "vote type %u", m.v.type);
	} else {
		fuzz_require(m.kind == CS_MSG_PROPOSAL, "message kind %u", m.kind);
		fuzz_require(m.p.pol_round >= -1 && (int64_t)m.p.pol_round < (int64_t)m.p.round,
			     "pol_round %d in round %u", m.p.pol_round, m.p.round);
		fuzz_require(m.block_len <= CS_BLOCK_BYTES_MAX, "a block of %zu bytes", m.block_len);
		fuzz_require(m.prev_cert_len <= CS_CERT_BYTES_MAX, "a certificate of %zu bytes",
			     m.prev_cert_len);
	}
	enc_init(&e);
	cs_msg_encode(&e, &m);
	fuzz_same_bytes("consensus message", data, size, &e);
	return 0;
}
