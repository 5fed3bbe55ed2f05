/* tally tx HASH [--wait]: what became of a transaction the node admitted
 * or received (GET /v1/tx/{hash}/status): committed in which block,
 * pending, held for an earlier nonce, dropped and why, received and not yet
 * checked, refused when checked and why, or unknown to the node. */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli/tally.h"
#include "lib/errors.h"

static const struct opt_doc tx_opts[] = {
	{ "wait", 'w', NULL, "wait until it is committed (exit 0), dropped or refused (exit 1)",
	  0 },
	{ "timeout", 't', "S", "with --wait, give up after S seconds (default 60, exit 1)", 0 },
	{ NULL, 0, NULL, NULL, 0 },
};

const struct cmd_doc doc_tx = {
	.name = "tx",
	.synopsis = "HASH [--wait [--timeout S]] [--node URL] [--json]",
	.summary = "what became of a transaction",
	.description =
		"What became of the transaction with this hash (what transfer, stake,\n"
		"lease close and the others print) at the node: committed in a block,\n"
		"pending in its mempool, held there for an earlier nonce of its account,\n"
		"dropped (and why), received (sent with Prefer: respond-async) and not yet\n"
		"checked, refused when the node checked it (and why), or unknown to it.\n"
		"A node remembers the last 1024 dropped and 4096 refused transactions; its\n"
		"mempool survives a restart, but what it had received and not yet checked\n"
		"when it was killed is unknown to it afterwards.",
	.opts = tx_opts,
	.epilog = "exit codes: 0 committed, pending, held or received; 1 dropped, refused,\n"
		  "unknown, or not committed by --timeout; 2 usage or I/O error",
};

int cmd_tx(int argc, char **argv)
{
	struct wait_opts w = WAIT_OPTS_INIT;
	uint64_t height = 0;
	const char *status;
	struct optable ot;
	struct common co;
	struct client cl;
	char hash[65], path[160];
	json_t *j;
	size_t n;
	int c, r, rc;

	cmd_optable(&ot, &doc_tx, ":");
	common_init(&co);
	while ((c = getopt_long(argc, argv, ot.shortopts, ot.longopts, NULL)) != -1) {
		if (common_opt(&co, c, optarg))
			continue;
		if ((r = wait_opt(&w, c, optarg)) < 0)
			return EXIT_USAGE;
		if (!r)
			return bad_option("tx", c, argv);
	}
	if (co.help)
		return cmd_help(&doc_tx);
	if ((rc = wait_opts_check(&w, "tx")))
		return rc;
	if (argc - optind != 1)
		return usage_error("tx", "give one transaction HASH (64 hex)");
	n = strlen(argv[optind]);
	for (size_t i = 0; i < n && i < 64; i++)
		hash[i] = (char)tolower((unsigned char)argv[optind][i]);
	hash[n < 64 ? n : 64] = '\0';
	if (n != 64 || strspn(hash, "0123456789abcdef") != 64)
		return usage_error("tx", "transaction hash '%s' is not 64 hex characters",
				   argv[optind]);
	if (client_init(&cl, co.node))
		return err("%s", cl.err), EXIT_USAGE;
	if (w.wait) {
		rc = tx_wait_committed(&cl, hash, w.timeout_s, &height);
		if (rc) {
			client_free(&cl);
			return rc;
		}
	}
	snprintf(path, sizeof(path), "/v1/tx/%s/status", hash);
	rc = client_get(&cl, path, &j);
	if (rc) {
		rc = client_fail(&cl, rc);
		client_free(&cl);
		return rc;
	}
	client_free(&cl);
	status = jget_str(j, "status");
	rc = !strcmp(status, "committed") || !strcmp(status, "pending") ||
	     !strcmp(status, "held") || !strcmp(status, "received") ? EXIT_OK : EXIT_REFUSED;
	if (co.json) {
		print_json(j);
		return rc;
	}
	if (!strcmp(status, "committed"))
		printf("transaction %s: committed in block %" PRIu64 "\n", hash,
		       jget_u64(j, "height"));
	else if (!strcmp(status, "dropped"))
		printf("transaction %s: dropped at block %" PRIu64 ": %s\n", hash,
		       jget_u64(j, "height"), jget_str(j, "reason"));
	else if (!strcmp(status, "held"))
		printf("transaction %s: held in the mempool for an earlier nonce of its account\n",
		       hash);
	else if (!strcmp(status, "pending"))
		printf("transaction %s: pending in the mempool\n", hash);
	else if (!strcmp(status, "received"))
		printf("transaction %s: received (submitted asynchronously), waiting for the"
		       " node's checks\n", hash);
	else if (!strcmp(status, "refused"))
		printf("transaction %s: refused when the node checked it (%" PRIu64 " %s): %s\n",
		       hash, jget_u64(j, "http_status"), jget_str(j, "code"),
		       jget_str(j, "reason"));
	else
		printf("transaction %s: unknown to the node at %s (not admitted there, dropped"
		       " or refused long ago or before the node restarted, or lost when its"
		       " host lost power; submit it again)\n", hash,
		       co.node ? co.node : "the default node");
	json_decref(j);
	return rc;
}
