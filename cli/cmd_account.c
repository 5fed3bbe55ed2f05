/* tally account show [PUBKEY]: balance, nonce and stake of an account
 * (your own by default). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli/tally.h"

int cmd_account_show(int argc, char **argv)
{
	static const struct option opts[] = { COMMON_LONGOPTS, { NULL, 0, NULL, 0 } };
	static const char help[] =
		"usage: tally account show [PUBKEY] [--key FILE] [--node URL] [--json]\n\n"
		"Balance, nonce and stake of PUBKEY (default: the public key of --key).\n"
		"Amounts are in units with six decimals (micro-units on the chain).\n\n"
		COMMON_USAGE;
	struct common co;
	struct client cl;
	struct tally_key k;
	uint8_t pub[PUBKEY_LEN];
	char hex[65], path[128], a[32], s[32];
	enum client_rc rc;
	json_t *j;
	int c;

	common_init(&co);
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1)
		if (!common_opt(&co, c, optarg))
			return bad_option("account show", c, argv);
	if (co.help)
		return fputs(help, stdout), EXIT_OK;
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
	if (client_init(&cl, co.node))
		return err("%s", cl.err), EXIT_USAGE;
	rc = client_get(&cl, path, &j);
	if (rc) {
		int ec = client_fail(&cl, rc);
		client_free(&cl);
		return ec;
	}
	client_free(&cl);
	if (co.json)
		return print_json(j);
	printf("account  %s\n", hex);
	printf("balance  %s\n", fmt_amount(jget_u64(j, "balance"), a));
	printf("nonce    %" PRIu64 "\n", jget_u64(j, "nonce"));
	printf("stake    %s\n", fmt_amount(jget_u64(j, "stake"), s));
	json_decref(j);
	return EXIT_OK;
}
