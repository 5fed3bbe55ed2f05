/* tally chain export FILE | chain verify FILE|--node URL: the whole chain
 * as one file (lib/chainfile.h), and its verification from genesis. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/chainsrc.h"
#include "cli/tally.h"
#include "lib/chain.h"
#include "lib/chainfile.h"
#include "lib/errors.h"

static int add_block(void *ctx, const struct block *b, const struct commit_cert *cert,
		     const struct validator_set *next_vals)
{
	if (chainfile_add_block(ctx, b, cert, next_vals)) {
		err("out of memory");
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

static int add_leases(struct client *cl, struct chainfile *f)
{
	json_t *j, *l;
	size_t i;
	char why[WHY_MAX];
	enum client_rc rc = client_get(cl, "/v1/leases", &j);

	if (rc)
		return client_fail(cl, rc);
	json_array_foreach(json_object_get(j, "leases"), i, l) {
		struct lease lease;
		if (lease_from_json(l, &lease, why)) {
			err("lease %.16s from the node: %s", jget_str(l, "id"), why);
			json_decref(j);
			return EXIT_USAGE;
		}
		if (chainfile_add_lease(f, &lease)) {
			json_decref(j);
			err("out of memory");
			return EXIT_USAGE;
		}
	}
	json_decref(j);
	return EXIT_OK;
}

int cmd_chain_export(int argc, char **argv)
{
	static const char help[] =
		"usage: tally chain export FILE [--node URL] [--json]\n\n"
		"Writes the node's chain to FILE (atomically): the genesis, every block with\n"
		"its commit certificate, the validator set wherever it changes, and the lease\n"
		"states the node reports, which `tally audit --chain FILE` compares its\n"
		"recomputed bills with. The format is in docs/PROTOCOL.md.\n\n" COMMON_USAGE;
	struct common co;
	struct client cl;
	struct chainfile f;
	struct genesis g;
	char *gjson = NULL, why[WHY_MAX];
	uint64_t tip1 = 0, tip2 = 0;
	int rc;

	rc = parse_common_args(&co, argc, argv, "chain export", help);
	if (rc != ARGS_PARSED)
		return rc;
	if (argc - optind != 1)
		return usage_error("chain export", "give one FILE");
	if (client_init(&cl, co.node))
		return err("%s", cl.err), EXIT_USAGE;
	chainfile_init(&f);
	memset(&g, 0, sizeof(g));
	rc = node_genesis(&cl, &gjson, &g);
	if (rc)
		goto out;
	if (chainfile_set_genesis(&f, gjson, why)) {
		err("%s", why);
		rc = EXIT_REFUSED;
		goto out;
	}
	rc = node_tip(&cl, &tip1);
	if (!rc && tip1)
		rc = node_blocks(&cl, 1, tip1, add_block, &f);
	if (!rc)
		rc = add_leases(&cl, &f);
	/* Blocks committed while the leases were read: the file holds every
	 * block up to a height at or after the lease states. */
	if (!rc)
		rc = node_tip(&cl, &tip2);
	if (!rc && tip2 > tip1)
		rc = node_blocks(&cl, tip1 + 1, tip2, add_block, &f);
	if (rc)
		goto out;
	f.states_height = tip2;
	if (chainfile_save(&f, argv[optind], why)) {
		err("%s", why);
		rc = EXIT_USAGE;
		goto out;
	}
	if (co.json)
		print_json(json_pack("{s:s,s:I,s:I,s:s}", "file", argv[optind], "blocks",
				     (json_int_t)f.nblocks, "leases", (json_int_t)f.nleases,
				     "chain_id", g.chain_id));
	else
		printf("exported %zu blocks and %zu leases of chain '%s' to %s\n", f.nblocks,
		       f.nleases, g.chain_id, argv[optind]);
out:
	free(gjson);
	genesis_free(&g);
	chainfile_free(&f);
	client_free(&cl);
	return rc;
}

struct verify {
	struct chain_verifier v;
	uint64_t blocks;
	int failed;
	char why[256];
};

static int verify_block(void *ctx, const struct block *b, const struct commit_cert *cert,
			const struct validator_set *next_vals)
{
	struct verify *s = ctx;

	s->blocks++;
	if (chain_verify_block(&s->v, b, cert, next_vals, s->why)) {
		s->failed = 1;
		return EXIT_REFUSED;
	}
	return EXIT_OK;
}

static int verify_report(const struct verify *s, const struct common *co, const char *source)
{
	char id[65], root[65];
	uint8_t r[HASH_LEN];

	hex_encode(s->v.last_block_id, HASH_LEN, id);
	merkle_frontier_root(&s->v.usage, r);
	hex_encode(r, HASH_LEN, root);
	if (co->json)
		print_json(json_pack("{s:b,s:s,s:I,s:I,s:s,s:I,s:s,s:o}", "verified", !s->failed,
				     "chain_id", s->v.chain_id, "blocks", (json_int_t)s->blocks,
				     "height", (json_int_t)s->v.height, "block_id", id,
				     "usage_size", (json_int_t)s->v.usage.size, "usage_root", root,
				     "errors", s->failed ? json_pack("[s]", s->why) : json_array()));
	else if (s->failed)
		printf("chain '%s' from %s NOT VERIFIED: %s (verified up to height %" PRIu64 ")\n",
		       s->v.chain_id, source, s->why, s->v.height);
	else
		printf("chain '%s' from %s verified: %" PRIu64 " blocks, height %" PRIu64
		       ", block %s, usage log %" PRIu64 " records\n", s->v.chain_id, source,
		       s->blocks, s->v.height, id, s->v.usage.size);
	return s->failed ? EXIT_REFUSED : EXIT_OK;
}

int cmd_chain_verify(int argc, char **argv)
{
	static const struct option opts[] = { COMMON_LONGOPTS, { NULL, 0, NULL, 0 } };
	static const char help[] =
		"usage: tally chain verify FILE | --node URL [--json]\n\n"
		"Verifies a whole chain from its genesis: links, heights, times, transaction\n"
		"and usage-log roots, every transaction signature, validator sets and commit\n"
		"certificates (more than 2/3 of the stake). FILE is a `tally chain export`\n"
		"file; with --node the chain is read from that node instead.\n\n"
		COMMON_USAGE "\nexit codes: 0 verified, 1 not verified, 2 usage or I/O error\n";
	struct common co;
	struct verify *s;
	bool node_given = false;
	char source[600];
	int c, rc;

	common_init(&co);
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (c == OPT_NODE)
			node_given = true;
		if (!common_opt(&co, c, optarg))
			return bad_option("chain verify", c, argv);
	}
	if (co.help)
		return fputs(help, stdout), EXIT_OK;
	if (argc - optind > 1 || (argc - optind == 1) == node_given)
		return usage_error("chain verify", "give either FILE or --node URL");
	s = calloc(1, sizeof(*s));
	if (!s)
		return err("out of memory"), EXIT_USAGE;
	if (!node_given) {
		struct chainfile f;
		char why[WHY_MAX];
		if (chainfile_load(&f, argv[optind], why)) {
			err("%s", why);
			free(s);
			return EXIT_USAGE;
		}
		snprintf(source, sizeof(source), "%.500s", argv[optind]);
		rc = chain_verifier_from_genesis(&s->v, &f.genesis);
		if (rc) {
			err("the genesis in %s is invalid: %s", argv[optind], tally_strerror(rc));
			rc = EXIT_REFUSED;
		}
		for (size_t i = 0; !rc && i < f.nblocks; i++)
			rc = verify_block(s, &f.blocks[i].block, f.blocks[i].cert,
					  f.blocks[i].next_vals);
		chainfile_free(&f);
	} else {
		struct client cl;
		struct genesis g;
		char *gjson = NULL;
		uint64_t tip = 0;
		if (client_init(&cl, co.node)) {
			free(s);
			return err("%s", cl.err), EXIT_USAGE;
		}
		snprintf(source, sizeof(source), "node %.500s", cl.base);
		memset(&g, 0, sizeof(g));
		rc = node_genesis(&cl, &gjson, &g);
		if (!rc && chain_verifier_from_genesis(&s->v, &g)) {
			err("the node's genesis is invalid");
			rc = EXIT_REFUSED;
		}
		if (!rc)
			rc = node_tip(&cl, &tip);
		if (!rc && tip)
			rc = node_blocks(&cl, 1, tip, verify_block, s);
		free(gjson);
		genesis_free(&g);
		client_free(&cl);
	}
	if (!rc || s->failed)
		rc = verify_report(s, &co, source);
	free(s);
	return rc;
}
