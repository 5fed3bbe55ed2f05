/* A lease's claimed state rewritten in an export file (fileclaim.h). */
#include "tests/support/fileclaim.h"

#include <stdio.h>
#include <string.h>

int fileclaim_undercharge(struct chainfile_lease *cl)
{
	uint8_t key[STATE_KEY_LEN];
	struct enc e;
	int done = -1;

	if (cl->lease.charged == 0) {
		fprintf(stderr, "fileclaim: the lease has nothing charged\n");
		return -1;
	}
	cl->lease.charged -= 1;
	if (cl->lease.state != LEASE_CLOSED)
		cl->lease.escrow += 1;
	state_key(key, STATE_KEY_LEASE, cl->id);
	enc_init(&e);
	lease_encode_to(&e, &cl->lease);
	for (size_t i = 0; i < cl->proof.n && !enc_error(&e); i++) {
		struct state_proof_entry *pe = &cl->proof.e[i];

		if (memcmp(pe->key, key, STATE_KEY_LEN) || pe->vlen != e.len)
			continue;
		memcpy(pe->value, e.buf, e.len);
		done = 0;
	}
	enc_free(&e);
	if (done)
		fprintf(stderr, "fileclaim: the lease's proof does not hold it\n");
	return done;
}
