/* Commit certificates (lib/chain/block.h): at most VALIDATORS_MAX signers in
 * strictly ascending order, one encoding; verification against the example
 * chain's validator set never crashes and never passes a changed one. */
#include <stdbool.h>
#include <string.h>

#include "lib/chain/block.h"
#include "tests/fuzz/fuzz.h"
#include "tests/vectors/examples.h"

static struct examples x;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	examples_build(&x);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct commit_cert c;
	struct enc e;

	if (cert_decode(&c, data, size) != 0)
		return 0;
	fuzz_require(c.n <= VALIDATORS_MAX, "%zu signers", c.n);
	for (size_t i = 1; i < c.n; i++)
		fuzz_require(memcmp(c.sigs[i - 1].validator, c.sigs[i].validator, PUBKEY_LEN) < 0,
			     "signers %zu and %zu not strictly ascending", i - 1, i);
	enc_init(&e);
	cert_encode(&e, &c);
	fuzz_same_bytes("commit certificate", data, size, &e);
	/* Only the examples' own certificates carry real precommits (certs[]
	 * the chain's, by the genesis validator; cert3 by vals3; the corpus
	 * must be made again by make fuzz-seeds when the vectors change):
	 * anything
	 * else that verifies is a forgery. */
	if (cert_verify(&c, &x.genesis.validators, x.genesis_hash) == 0) {
		bool known = false;

		for (size_t i = 0; i < 2; i++)
			known |= c.height == x.certs[i].height && c.round == x.certs[i].round &&
				 !memcmp(c.block_id, x.certs[i].block_id, HASH_LEN);
		/* cert3 may carry the genesis validator's precommit too */
		known |= c.height == x.cert3.height && c.round == x.cert3.round &&
			 !memcmp(c.block_id, x.cert3.block_id, HASH_LEN);
		fuzz_require(known, "a certificate for another block verifies");
	}
	if (cert_verify(&c, &x.vals3, x.genesis_hash) == 0)
		fuzz_require(c.height == x.cert3.height && c.round == x.cert3.round &&
			     !memcmp(c.block_id, x.cert3.block_id, HASH_LEN),
			     "a certificate for another block verifies against vals3");
	return 0;
}
