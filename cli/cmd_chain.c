/* tally chain export FILE | chain verify FILE|--node URL: the whole chain
 * as one file (lib/chain/chainfile.h), and its verification from genesis:
 * every block replayed (lib/chain/replay.h), and the lease states a file
 * carries compared with the state the chain committed at their height. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/chainsrc.h"
#include "cli/genesis_pin.h"
#include "cli/tally.h"
#include "lib/chain/chainfile.h"
#include "lib/chain/replay.h"
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

/* The node's leases and the height of the state they were read at. */
static int add_leases(struct client *cl, struct chainfile *f, uint64_t *height)
{
	json_t *j, *l, *h;
	size_t i;
	char why[WHY_MAX];
	enum client_rc rc = client_get(cl, "/v1/leases", &j);

	if (rc)
		return client_fail(cl, rc);
	h = json_object_get(j, "height");
	if (!json_is_integer(h) || json_integer_value(h) < 0) {
		json_decref(j);
		err("the node's lease list does not say at which height it was read");
		return EXIT_USAGE;
	}
	*height = (uint64_t)json_integer_value(h);
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

const struct cmd_doc doc_chain_export = {
	.name = "chain export",
	.synopsis = "FILE [--node URL] [--json]",
	.summary = "write the node's chain to a file",
	.description =
		"Writes the node's chain to FILE (atomically): the genesis, every block with\n"
		"its commit certificate, the validator set wherever it changes, and the lease\n"
		"states the node reports, which `tally audit --chain FILE` compares its\n"
		"recomputed bills with. The format is in docs/PROTOCOL.md. On a terminal,\n"
		"the blocks fetched so far are shown as it goes.",
};

int cmd_chain_export(int argc, char **argv)
{
	struct common co;
	struct client cl;
	struct chainfile f;
	struct genesis g;
	char *gjson = NULL, why[WHY_MAX];
	uint64_t tip1 = 0, tip2 = 0, states_height = 0;
	int rc;

	rc = parse_common_args(&co, argc, argv, &doc_chain_export);
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
		rc = add_leases(&cl, &f, &states_height);
	/* Blocks committed since: the file holds every block up to a height
	 * at or after the lease states'. */
	if (!rc)
		rc = node_tip(&cl, &tip2);
	if (!rc && tip2 > tip1)
		rc = node_blocks(&cl, tip1 + 1, tip2, add_block, &f);
	if (!rc && states_height > tip2) {
		err("the node read its leases at height %" PRIu64 ", above its tip %" PRIu64,
		    states_height, tip2);
		rc = EXIT_USAGE;
	}
	if (rc)
		goto out;
	f.states_height = states_height;
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
	struct replay rp;
	uint64_t blocks;
	uint8_t genesis_hash[HASH_LEN];
	struct genesis_pin pin;
	const struct chainfile *file;    /* its lease states are compared, or NULL */
	uint64_t leases_compared;
	int failed;
	char why[WHY_MAX];
};

/* Every lease the file carries against the state the chain committed at
 * the file's states_height (the replay's state now). */
static int compare_leases(struct verify *s)
{
	const struct chainfile *f = s->file;

	for (size_t i = 0; i < f->nleases; i++) {
		const struct lease *claim = &f->leases[i];
		struct lease l;
		struct enc a, b;
		char hex[17];
		int rc = state_lease_get(&s->rp.state, claim->id, &l), same;

		hex_encode(claim->id, 8, hex);
		if (rc) {
			why_set(s->why, rc, "lease %s: the file holds it, the chain's state at height"
				" %" PRIu64 " does not", hex, f->states_height);
			s->failed = 1;
			return EXIT_REFUSED;
		}
		enc_init(&a);
		enc_init(&b);
		lease_encode_to(&a, claim);
		lease_encode_to(&b, &l);
		same = !enc_error(&a) && !enc_error(&b) && a.len == b.len &&
		       !memcmp(a.buf, b.buf, a.len);
		enc_free(&a);
		enc_free(&b);
		if (!same) {
			why_set(s->why, TALLY_E_STATEROOT, "lease %s: the file's state (%s, charged %"
				PRIu64 ", escrow %" PRIu64 ") is not what the chain committed at height"
				" %" PRIu64 " (%s, charged %" PRIu64 ", escrow %" PRIu64 ")", hex,
				lease_state_name(claim->state), claim->charged, claim->escrow,
				f->states_height, lease_state_name(l.state), l.charged, l.escrow);
			s->failed = 1;
			return EXIT_REFUSED;
		}
		s->leases_compared++;
	}
	return EXIT_OK;
}

static int verify_block(void *ctx, const struct block *b, const struct commit_cert *cert,
			const struct validator_set *next_vals)
{
	struct verify *s = ctx;

	s->blocks++;
	if (replay_block(&s->rp, b, cert, next_vals, NULL, s->why)) {
		s->failed = 1;
		return EXIT_REFUSED;
	}
	if (s->file && b->header.height == s->file->states_height)
		return compare_leases(s);
	return EXIT_OK;
}

static int verify_report(const struct verify *s, const struct common *co, const char *source)
{
	const struct chain_verifier *v = &s->rp.v;
	char id[65], root[65], sroot[65], gh[65];
	uint8_t r[HASH_LEN];

	hex_encode(v->last_block_id, HASH_LEN, id);
	merkle_frontier_root(&v->usage, r);
	hex_encode(r, HASH_LEN, root);
	state_root(&s->rp.state, r);
	hex_encode(r, HASH_LEN, sroot);
	hex_encode(s->genesis_hash, HASH_LEN, gh);
	if (co->json)
		print_json(json_pack("{s:b,s:s,s:s,s:b,s:I,s:I,s:s,s:s,s:I,s:s,s:I,s:o}",
				     "verified", !s->failed, "chain_id", v->chain_id,
				     "genesis_hash", gh, "genesis_pinned", s->pin.set,
				     "blocks", (json_int_t)s->blocks,
				     "height", (json_int_t)v->height, "block_id", id,
				     "state_root", sroot, "usage_size", (json_int_t)v->usage.size,
				     "usage_root", root, "leases_compared",
				     (json_int_t)s->leases_compared,
				     "errors", s->failed ? json_pack("[s]", s->why) : json_array()));
	else if (s->failed)
		printf("chain '%s' (genesis %s, %s) from %s NOT VERIFIED: %s (verified up to"
		       " height %" PRIu64 ")\n", v->chain_id, gh, genesis_pin_word(&s->pin), source,
		       s->why, v->height);
	else
		printf("chain '%s' (genesis %s, %s) from %s verified: %" PRIu64 " blocks"
		       " replayed, height %" PRIu64 ", block %s, state root %s, usage log %" PRIu64
		       " records%s\n", v->chain_id, gh, genesis_pin_word(&s->pin), source,
		       s->blocks, v->height, id, sroot, v->usage.size,
		       s->file ? (s->leases_compared == s->file->nleases ?
				  ", every lease state in the file matches the chain" : "") : "");
	return s->failed ? EXIT_REFUSED : EXIT_OK;
}

/* The replay from the chain's genesis (where names it in a message). */
static int start(struct verify *s, const struct genesis *g, const char *where)
{
	char why[WHY_MAX];

	if (genesis_pin_check(&s->pin, g, s->genesis_hash))
		return EXIT_REFUSED;
	if (replay_init(&s->rp, g, why)) {
		err("the genesis of %s: %s", where, why);
		return EXIT_REFUSED;
	}
	return EXIT_OK;
}

enum { O_GENESIS = 256 };

static const struct opt_doc verify_opts[] = {
	{ "genesis", O_GENESIS, "FILE|HASH", "the chain to trust: a genesis file or its hash; a\n"
	  "chain with another genesis is refused (exit 1)", 0 },
	{ NULL, 0, NULL, NULL, 0 },
};

const struct cmd_doc doc_chain_verify = {
	.name = "chain verify",
	.synopsis = "FILE | --node URL [--genesis FILE|HASH] [--json]",
	.summary = "verify a chain file or a node's chain",
	.description =
		"Replays a whole chain from its genesis as every validator applies it: links,\n"
		"heights, times, transaction and usage-log roots, every transaction signature,\n"
		"every transaction's rules and the state root after each block, validator sets\n"
		"and commit certificates (more than 2/3 of the stake). FILE is a `tally chain\n"
		"export` file, whose lease states are also compared with what the chain\n"
		"committed; with --node the chain is read from that node instead. On a\n"
		"terminal, the blocks verified so far are shown as it goes.",
	.opts = verify_opts,
	.epilog = "exit codes: 0 verified, 1 not verified, 2 usage or I/O error",
};

int cmd_chain_verify(int argc, char **argv)
{
	struct genesis_pin pin = { 0 };
	struct optable ot;
	struct common co;
	struct verify *s;
	bool node_given = false;
	char source[600];
	int c, rc;

	cmd_optable(&ot, &doc_chain_verify, ":");
	common_init(&co);
	while ((c = getopt_long(argc, argv, ot.shortopts, ot.longopts, NULL)) != -1) {
		if (c == OPT_NODE)
			node_given = true;
		if (c == O_GENESIS) {
			if (genesis_pin_parse(optarg, &pin))
				return EXIT_USAGE;
			continue;
		}
		if (!common_opt(&co, c, optarg))
			return bad_option("chain verify", c, argv);
	}
	if (co.help)
		return cmd_help(&doc_chain_verify);
	if (argc - optind > 1 || (argc - optind == 1) == node_given)
		return usage_error("chain verify", "give either FILE or --node URL");
	s = calloc(1, sizeof(*s));
	if (!s)
		return err("out of memory"), EXIT_USAGE;
	s->pin = pin;
	if (!node_given) {
		struct chainfile f;
		char why[WHY_MAX];
		if (chainfile_load(&f, argv[optind], why)) {
			err("%s", why);
			free(s);
			return EXIT_USAGE;
		}
		snprintf(source, sizeof(source), "%.500s", argv[optind]);
		rc = start(s, &f.genesis, argv[optind]);
		if (!rc && f.states_height > f.nblocks) {
			err("%s: the lease states are of height %" PRIu64 ", beyond its %zu blocks",
			    argv[optind], f.states_height, f.nblocks);
			rc = EXIT_USAGE;
		}
		s->file = &f;
		if (!rc && f.states_height == 0)
			rc = compare_leases(s);
		for (size_t i = 0; !rc && i < f.nblocks; i++)
			rc = verify_block(s, &f.blocks[i].block, f.blocks[i].cert,
					  f.blocks[i].next_vals);
		if (!rc || s->failed)
			rc = verify_report(s, &co, source);
		s->file = NULL;
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
		if (!rc)
			rc = start(s, &g, "the node");
		if (!rc)
			rc = node_tip(&cl, &tip);
		if (!rc && tip)
			rc = node_blocks(&cl, 1, tip, verify_block, s);
		if (!rc || s->failed)
			rc = verify_report(s, &co, source);
		free(gjson);
		genesis_free(&g);
		client_free(&cl);
	}
	replay_free(&s->rp);
	free(s);
	return rc;
}
