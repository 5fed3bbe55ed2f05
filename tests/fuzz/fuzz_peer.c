/* Peer frames (daemon/net/wire.h, docs/PROTOCOL.md "Peer protocol"): one
 * whole frame as a peer sends it, head and body, through the receiver's
 * two steps (wire_head before buffering, wire_decode after).
 *
 * Property: a frame is taken only in its canonical form (encoding the
 * decoded message gives back every byte), a CONSENSUS body is a message
 * the engine's decoder takes, and nothing crashes or reads past the
 * frame. */
#include <string.h>

#include "daemon/consensus/msg.h"
#include "daemon/net/wire.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wire_msg m;
	struct enc e;
	size_t body_len;
	uint8_t type;

	if (size < WIRE_HEAD_LEN || wire_head(data, &type, &body_len) != 0)
		return 0;
	fuzz_require(body_len + 1 <= wire_max_len(type), "a %zu-byte body of type %u passed the"
		     " head check", body_len, type);
	if (body_len != size - WIRE_HEAD_LEN)
		return 0;
	if (wire_decode(type, data + WIRE_HEAD_LEN, body_len, &m) != 0)
		return 0;
	fuzz_require(m.type == type, "decoded type %u from a frame of type %u", m.type, type);
	if (type == WIRE_CONSENSUS) {
		struct cs_msg c;

		fuzz_require(cs_msg_decode(&c, m.u.consensus.bytes, m.u.consensus.len) == 0,
			     "a CONSENSUS frame whose message the engine cannot decode");
	}
	enc_init(&e);
	wire_encode(&e, &m);
	fuzz_same_bytes(wire_type_name(type), data, size, &e);
	return 0;
}
