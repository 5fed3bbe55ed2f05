/* Genesis JSON (lib/chain/genesis.h), as an operator's file or a chain
 * export carries it: strict parse; the JSON it writes back parses to the
 * same genesis (the same canonical encoding and hash) and is written the
 * same way again. */
#include <stdlib.h>
#include <string.h>

#include "lib/chain/genesis.h"
#include "lib/errors.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct genesis g, back;
	char why[WHY_MAX] = "";
	char *text = fuzz_text(data, size);
	struct enc e1, e2;

	int rc = genesis_parse(&g, text, why);
	free(text);
	if (rc) {
		fuzz_require(why[0], "genesis refused (%d) without a reason", rc);
		return 0;
	}
	fuzz_require(fuzz_chain_id_ok(g.chain_id), "chain id '%s'", g.chain_id);
	fuzz_require(valset_check(&g.validators) == 0, "the validator set breaks the rules");
	for (size_t i = 1; i < g.naccounts; i++)
		fuzz_require(memcmp(g.accounts[i - 1].pubkey, g.accounts[i].pubkey, PUBKEY_LEN) < 0,
			     "accounts %zu and %zu not strictly ascending", i - 1, i);
	char *json = genesis_to_json(&g);
	fuzz_require(json != NULL, "an accepted genesis has no JSON form");
	rc = genesis_parse(&back, json, why);
	fuzz_require(rc == 0, "the genesis JSON written back is refused: %s\n%s", why, json);
	enc_init(&e1);
	genesis_encode(&e1, &g);
	enc_init(&e2);
	genesis_encode(&e2, &back);
	fuzz_same_bytes("genesis through JSON", e1.buf, e1.len, &e2);
	char *again = genesis_to_json(&back);
	fuzz_require(again && !strcmp(json, again), "genesis JSON is not written the same twice");
	free(again);
	free(json);
	enc_free(&e1);
	genesis_free(&back);
	genesis_free(&g);
	return 0;
}
