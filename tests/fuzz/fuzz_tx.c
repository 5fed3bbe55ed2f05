/* Signed transactions of every kind (lib/chain/tx.h), as POST /v1/tx, blocks
 * and chain files carry them: the decoder's canonical form, the format's
 * rules, and the stateless checks a node runs before its mempool. */
#include <stdlib.h>
#include <string.h>

#include "lib/chain/tx.h"
#include "lib/errors.h"
#include "tests/fuzz/fuzz.h"
#include "tests/vectors/examples.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t chain[HASH_LEN];
	struct tx *t = malloc(sizeof(*t));
	char why[WHY_MAX];
	struct enc e;

	if (!t)
		abort();
	if (tx_decode(t, data, size) != 0) {
		free(t);
		return 0;
	}
	fuzz_require(size <= TX_MAX_SIZE, "a transaction of %zu bytes", size);
	fuzz_require(t->version == TX_VERSION, "transaction version %u", t->version);
	fuzz_require(t->kind >= TX_LEASE_OPEN && t->kind <= TX_PROVIDER, "kind %u", t->kind);
	fuzz_require(fuzz_chain_id_ok(t->chain_id), "chain id '%s'", t->chain_id);
	enc_init(&e);
	tx_encode(&e, t);
	fuzz_same_bytes("transaction", data, size, &e);

	switch (t->kind) {
	case TX_LEASE_OPEN:
		fuzz_contract_props(&t->u.open);
		break;
	case TX_USAGE:
		fuzz_require(t->u.usage.gpu_source <= GPU_SOURCE_LIBVIRT, "gpu source %u",
			     t->u.usage.gpu_source);
		break;
	case TX_LEASE_CLOSE:
		fuzz_require(t->u.close.reason <= CLOSE_REASON_MAX, "close reason %u",
			     t->u.close.reason);
		break;
	case TX_EVIDENCE:
		fuzz_require(t->u.evidence.vote_a_len <= sizeof(t->u.evidence.vote_a) &&
			     t->u.evidence.vote_b_len <= sizeof(t->u.evidence.vote_b),
			     "evidence vote lengths");
		break;
	case TX_PROVIDER:
		fuzz_require(provider_offer_check(&t->u.provider, NULL) == 0,
			     "a decoded announcement breaks its rules");
		break;
	}
	/* What a node checks before its mempool; a refusal says why. */
	int rc = tx_check(t, data, size, t->chain_id, chain, EXAMPLE_NOW_S, why);
	fuzz_require(rc == 0 || why[0], "tx_check refused (%d) without a reason", rc);
	free(t);
	return 0;
}
