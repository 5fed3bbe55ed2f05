/* Commit certificates (lib/chain/block.h): at most VALIDATORS_MAX signers in
 * strictly ascending order, one encoding; verification against the example
 * chain's validator set never crashes and never passes a changed one. */
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
	/* Only the example's own certificate carries the validator's real
	 * precommit; anything else that verifies is a forgery. */
	int rc = cert_verify(&c, &x.genesis.validators, x.genesis_hash);
	if (rc == 0)
		fuzz_require(c.height == x.cert.height && c.round == x.cert.round &&
			     !memcmp(c.block_id, x.cert.block_id, HASH_LEN),
			     "a certificate for another block verifies");
	return 0;
}
