/* tally transfer --to PUBKEY AMOUNT: a signed TRANSFER with the sender's
 * next nonce. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli/tally.h"
#include "lib/errors.h"
#include "lib/json_u64.h"
#include "lib/chain/tx.h"

enum { O_TO = 256, O_FROM };

static const struct opt_doc transfer_opts[] = {
	{ "to", O_TO, "PUBKEY", "the receiving account (64 hex)", 0 },
	{ "from-key", O_FROM, "FILE", "the paying key (e.g. a devnet's faucet.pem)", 0 },
	{ NULL, 0, NULL, NULL, 0 },
};

const struct cmd_doc doc_transfer = {
	.name = "transfer",
	.synopsis = "--to PUBKEY AMOUNT [--from-key FILE] [--node URL] [--json]",
	.summary = "send funds to another account",
	.description =
		"Sends AMOUNT micro-units to PUBKEY, signed by --from-key (default: --key),\n"
		"with the sender's next nonce from the node. Prints the transaction hash.",
	.opts = transfer_opts,
};

int cmd_transfer(int argc, char **argv)
{
	struct optable ot;
	const char *to = NULL, *from = NULL;
	struct common co;
	struct client cl;
	struct tally_key k;
	struct tx t;
	struct chain_ref chain;
	char hash[65], amt[32];
	int c, rc;

	cmd_optable(&ot, &doc_transfer, ":");
	common_init(&co);
	while ((c = getopt_long(argc, argv, ot.shortopts, ot.longopts, NULL)) != -1) {
		if (common_opt(&co, c, optarg))
			continue;
		if (c == O_TO)
			to = optarg;
		else if (c == O_FROM)
			from = optarg;
		else
			return bad_option("transfer", c, argv);
	}
	if (co.help)
		return cmd_help(&doc_transfer);
	if (!to)
		return usage_error("transfer", "--to PUBKEY is required");
	if (argc - optind != 1)
		return usage_error("transfer", "give exactly one AMOUNT (micro-units)");
	memset(&t, 0, sizeof(t));
	if (parse_hex32(to, t.u.transfer.to, "--to") ||
	    parse_u64(argv[optind], &t.u.transfer.amount, "amount"))
		return EXIT_USAGE;
	if (t.u.transfer.amount == 0)
		return usage_error("transfer", "the amount must be above 0");
	if (open_key_and_client(&k, from ? from : co.key, &cl, co.node))
		return EXIT_USAGE;
	t.kind = TX_TRANSFER;
	rc = fetch_chain_and_nonce(&cl, k.pub, &chain, &t.nonce);
	if (!rc)
		rc = sign_and_submit(&cl, &k, &chain, &t, "transfer", hash);
	key_free(&k);
	client_free(&cl);
	if (rc)
		return rc;
	if (co.json)
		return print_json(json_pack("{s:s,s:s,s:o,s:o}", "hash", hash, "to", to,
					    "amount", json_u64(t.u.transfer.amount),
					    "nonce", json_u64(t.nonce)));
	printf("%s\n", hash);
	fprintf(stderr, "tally: transfer of %s to %.16s... submitted (nonce %" PRIu64 ")\n",
		fmt_amount(t.u.transfer.amount, amt), to, t.nonce);
	return EXIT_OK;
}
