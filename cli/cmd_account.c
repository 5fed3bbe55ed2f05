/* tally account show [PUBKEY]: balance, nonce and stake of an account
 * (your own by default). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli/tally.h"

const struct cmd_doc doc_account_show = {
	.name = "account show",
	.synopsis = "[PUBKEY] [--key FILE] [--node URL] [--json]",
	.summary = "balance, nonce and stake of an account",
	.description =
		"Balance, nonce, stake and stake unbonding of PUBKEY (default: the public\n"
		"key of --key).\n"
		"Amounts are in units with six decimals (micro-units on the chain).",
};

int cmd_account_show(int argc, char **argv)
{
	struct common co;
	struct tally_key k;
	uint8_t pub[PUBKEY_LEN];
	char hex[65], path[128], a[32], s[32];
	json_t *j;
	int rc;

	rc = parse_common_args(&co, argc, argv, &doc_account_show);
	if (rc != ARGS_PARSED)
		return rc;
	if (argc - optind > 1)
		return usage_error("account show", "unexpected argument '%s'", argv[optind + 1]);
	if (optind < argc) {
		if (parse_hex32(argv[optind], pub, "public key"))
			return EXIT_USAGE;
	} else {
		if (load_key(&k, co.key))
			return EXIT_USAGE;
		memcpy(pub, k.pub, PUBKEY_LEN);
		key_free(&k);
	}
	hex_encode(pub, PUBKEY_LEN, hex);
	snprintf(path, sizeof(path), "/v1/accounts/%s", hex);
	rc = fetch_json(co.node, path, &j);
	if (rc)
		return rc;
	static const char *const fields[] = { "balance", "nonce", "stake", "?unbonding",
					      "?unbonding_release", NULL };
	if (answer_lacks_u64(j, "account", fields)) {
		json_decref(j);
		return EXIT_USAGE;
	}
	if (co.json)
		return print_json(j);
	printf("account  %s\n", hex);
	printf("balance  %s\n", fmt_amount(jget_u64(j, "balance"), a));
	printf("nonce    %" PRIu64 "\n", jget_u64(j, "nonce"));
	printf("stake    %s\n", fmt_amount(jget_u64(j, "stake"), s));
	if (jget_u64(j, "unbonding"))
		printf("unbonding %s (first back at the end of block %" PRIu64 ")\n",
		       fmt_amount(jget_u64(j, "unbonding"), s), jget_u64(j, "unbonding_release"));
	json_decref(j);
	return EXIT_OK;
}
