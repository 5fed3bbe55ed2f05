/* forge: builds LEASE_OPEN transactions that a well-behaved client would
 * never send (unsigned, signed by the wrong key), so the end-to-end tests can
 * check that the node refuses them. Prints the transaction as hex.
 *
 *   forge CONTRACT.json [--sign-with KEY.pem | --unsigned]
 *
 * Signatures are bound to the chain whose genesis hash (64 hex) is in
 * $TALLY_GENESIS_HASH.
 * The signer field is always the contract's tenant. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contracts/contract.h"
#include "lib/codec.h"
#include "lib/chain/tx.h"

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0;

	if (!f)
		return NULL;
	FILE *m = open_memstream(&buf, &len);
	int c;
	while ((c = fgetc(f)) != EOF)
		fputc(c, m);
	fclose(f);
	fclose(m);
	return buf;
}

int main(int argc, char **argv)
{
	struct tx t = { .version = TX_VERSION, .kind = TX_LEASE_OPEN };
	char why[WHY_MAX] = "";
	struct tally_key key;
	struct enc e;

	if (argc != 3 && argc != 4) {
		fprintf(stderr, "usage: forge CONTRACT.json --sign-with KEY.pem | --unsigned\n");
		return 2;
	}
	char *text = slurp(argv[1]);
	if (!text || contract_from_json(&t.u.open, text, why)) {
		fprintf(stderr, "forge: %s: %s\n", argv[1], text ? why : "cannot read");
		return 2;
	}
	free(text);
	snprintf(t.chain_id, sizeof(t.chain_id), "%s", t.u.open.chain_id);
	memcpy(t.signer, t.u.open.tenant, PUBKEY_LEN);
	t.nonce = t.u.open.nonce;
	if (!strcmp(argv[2], "--sign-with") && argc == 4) {
		const char *gh_hex = getenv("TALLY_GENESIS_HASH");
		uint8_t gh[HASH_LEN];

		if (!gh_hex || hex_decode(gh_hex, gh, HASH_LEN)) {
			fprintf(stderr, "forge: set TALLY_GENESIS_HASH to the chain's genesis hash\n");
			return 2;
		}
		if (key_load_pem(&key, argv[3]) || tx_sign(&t, &key, gh)) {
			fprintf(stderr, "forge: cannot sign with %s\n", argv[3]);
			return 2;
		}
		key_free(&key);
	} else if (strcmp(argv[2], "--unsigned") || argc != 3) {
		fprintf(stderr, "usage: forge CONTRACT.json --sign-with KEY.pem | --unsigned\n");
		return 2;
	}
	enc_init(&e);
	tx_encode(&e, &t);
	char *hex = malloc(2 * e.len + 1);
	if (enc_error(&e) || !hex)
		return 2;
	hex_encode(e.buf, e.len, hex);
	printf("%s\n", hex);
	free(hex);
	enc_free(&e);
	return 0;
}
