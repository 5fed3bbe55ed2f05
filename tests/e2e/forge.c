/* forge: builds transactions that a well-behaved client or provider would
 * never send (unsigned, signed by the wrong key, billing time that has not
 * happened), so the end-to-end tests can check that the node refuses them.
 * Prints the transaction as hex.
 *
 *   forge CONTRACT.json [--sign-with KEY.pem | --unsigned]
 *   forge usage LEASE SEQ PREV START_NS END_NS CPU_NS MEM_MIB NONCE KEY.pem [DELAY_NS]
 *       a USAGE record (PREV: 64 hex, or 0 for none) signed by KEY.pem, for
 *       the chain id in $TALLY_CHAIN_ID, with DELAY_NS of run-queue delay
 *       (default 0)
 *   forge start LEASE NONCE KEY.pem
 *       a LEASE_START signed by KEY.pem (a --no-vms node's key starts a
 *       lease no keeper will), for the chain id in $TALLY_CHAIN_ID
 *   forge transfer TO AMOUNT NONCE KEY.pem [COUNT]
 *       a TRANSFER to any 64 hex, a weak key too, signed by KEY.pem, for the
 *       chain id in $TALLY_CHAIN_ID; with COUNT, COUNT of them (one a line)
 *       with nonces NONCE, NONCE + 1, ...
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

/* Signs t with KEY.pem for $TALLY_CHAIN_ID and $TALLY_GENESIS_HASH and
 * prints it as hex; 2 on any failure. */
static int sign_and_print(struct tx *t, const char *key_path)
{
	const char *chain = getenv("TALLY_CHAIN_ID"), *gh_hex = getenv("TALLY_GENESIS_HASH");
	uint8_t gh[HASH_LEN];
	struct tally_key key;
	struct enc e;

	if (!chain || !gh_hex || hex_decode(gh_hex, gh, HASH_LEN)) {
		fprintf(stderr, "forge: set TALLY_CHAIN_ID and TALLY_GENESIS_HASH\n");
		return 2;
	}
	snprintf(t->chain_id, sizeof(t->chain_id), "%s", chain);
	if (key_load_pem(&key, key_path)) {
		fprintf(stderr, "forge: cannot load %s\n", key_path);
		return 2;
	}
	memcpy(t->signer, key.pub, PUBKEY_LEN);
	int rc = tx_sign(t, &key, gh);
	key_free(&key);
	if (rc)
		return 2;
	enc_init(&e);
	tx_encode(&e, t);
	char *hex = malloc(2 * e.len + 1);
	if (enc_error(&e) || !hex)
		return 2;
	hex_encode(e.buf, e.len, hex);
	printf("%s\n", hex);
	free(hex);
	enc_free(&e);
	return 0;
}

static int forge_transfer(int argc, char **argv)
{
	struct tx t = { .version = TX_VERSION, .kind = TX_TRANSFER };

	unsigned long count = argc == 7 ? strtoul(argv[6], NULL, 10) : 1;
	uint64_t nonce;
	int rc = 0;

	if ((argc != 6 && argc != 7) || !count ||
	    hex_decode(argv[2], t.u.transfer.to, PUBKEY_LEN)) {
		fprintf(stderr, "usage: forge transfer TO AMOUNT NONCE KEY.pem [COUNT]\n");
		return 2;
	}
	t.u.transfer.amount = strtoull(argv[3], NULL, 10);
	nonce = strtoull(argv[4], NULL, 10);
	for (unsigned long i = 0; i < count && !rc; i++) {
		t.nonce = nonce + i;
		rc = sign_and_print(&t, argv[5]);
	}
	return rc;
}

static int forge_usage(int argc, char **argv)
{
	struct tx t = { .version = TX_VERSION, .kind = TX_USAGE };
	struct usage_record *u = &t.u.usage;

	if ((argc != 11 && argc != 12) || hex_decode(argv[2], u->lease_id, LEASE_ID_LEN) ||
	    (strcmp(argv[4], "0") && hex_decode(argv[4], u->prev_hash, HASH_LEN))) {
		fprintf(stderr, "usage: forge usage LEASE SEQ PREV START_NS END_NS CPU_NS MEM_MIB"
			" NONCE KEY.pem [DELAY_NS]\n");
		return 2;
	}
	u->seq = strtoull(argv[3], NULL, 10);
	u->start_ns = strtoull(argv[5], NULL, 10);
	u->end_ns = strtoull(argv[6], NULL, 10);
	u->cpu_ns = strtoull(argv[7], NULL, 10);
	u->mem_mib = (uint32_t)strtoul(argv[8], NULL, 10);
	u->gpu_source = GPU_SOURCE_NONE;
	if (argc == 12)
		u->run_delay_ns = strtoull(argv[11], NULL, 10);
	t.nonce = strtoull(argv[9], NULL, 10);
	return sign_and_print(&t, argv[10]);
}

static int forge_start(int argc, char **argv)
{
	struct tx t = { .version = TX_VERSION, .kind = TX_LEASE_START };

	if (argc != 5 || hex_decode(argv[2], t.u.start.lease_id, LEASE_ID_LEN)) {
		fprintf(stderr, "usage: forge start LEASE NONCE KEY.pem\n");
		return 2;
	}
	t.nonce = strtoull(argv[3], NULL, 10);
	return sign_and_print(&t, argv[4]);
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "usage"))
		return forge_usage(argc, argv);
	if (argc > 1 && !strcmp(argv[1], "transfer"))
		return forge_transfer(argc, argv);
	if (argc > 1 && !strcmp(argv[1], "start"))
		return forge_start(argc, argv);
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
