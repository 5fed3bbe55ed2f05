/* tally chain export FILE | chain verify FILE|--node URL: the whole chain
 * as one file (lib/chain/chainfile.h), and its verification from genesis:
 * every block replayed (lib/chain/replay.h), and the lease states a file
 * carries proven against the state root of the block each names. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/chainsrc.h"
#include "cli/genesis_pin.h"
#include "cli/progress.h"
#include "cli/tally.h"
#include "lib/chain/chainfile.h"
#include "lib/chain/replay.h"
#include "lib/errors.h"
#include "lib/json_u64.h"

struct export {
	struct chainfile *f;
	struct progress pr;
};

static int add_block(void *ctx, const struct block *b, const struct commit_cert *cert,
		     const struct validator_set *next_vals)
{
	struct export *e = ctx;

	if (chainfile_add_block(e->f, b, cert, next_vals)) {
		err("out of memory");
		return EXIT_USAGE;
	}
	progress_step(&e->pr, e->f->nblocks);
	return EXIT_OK;
}

static int cmp_id(const void *a, const void *b)
{
	return memcmp(a, b, LEASE_ID_LEN);
}

/* Every lease the node holds, each as its state proof: the state the node
 * committed at some height, which the file's readers check against that
 * block's state root. *max_height is the highest such height. */
static int add_leases(struct client *cl, struct chainfile *f, uint64_t *max_height)
{
	uint8_t (*ids)[LEASE_ID_LEN] = NULL;
	json_t *j, *l;
	size_t i, n = 0;
	char why[WHY_MAX];
	enum client_rc crc = client_get(cl, "/v1/leases", &j);
	int rc = EXIT_OK;

	if (crc)
		return client_fail(cl, crc);
	ids = calloc(json_array_size(json_object_get(j, "leases")) + 1, sizeof(*ids));
	if (!ids) {
		json_decref(j);
		return err("out of memory"), EXIT_USAGE;
	}
	json_array_foreach(json_object_get(j, "leases"), i, l) {
		if (parse_hex32(jget_str(l, "id"), ids[n], "the node's lease id")) {
			rc = EXIT_USAGE;
			break;
		}
		n++;
	}
	json_decref(j);
	qsort(ids, n, sizeof(*ids), cmp_id);
	for (i = 0; i < n && !rc; i++) {
		struct state_proof p;
		uint64_t height;

		rc = node_lease_proof(cl, ids[i], &height, &p);
		if (rc)
			break;
		if (chainfile_add_lease(f, ids[i], height, &p, why)) {
			err("the node's state proof: %s", why);
			rc = EXIT_REFUSED;
		}
		if (height > *max_height)
			*max_height = height;
		state_proof_free(&p);
	}
	free(ids);
	return rc;
}

enum { O_GENESIS = 256, O_FORCE };

static const struct opt_doc export_opts[] = {
	{ "force", O_FORCE, NULL, "replace FILE if it exists (without it, an existing FILE\n"
	  "is refused, exit 2)", 0 },
	{ NULL, 0, NULL, NULL, 0 },
};

const struct cmd_doc doc_chain_export = {
	.name = "chain export",
	.synopsis = "FILE [--force] [--node URL] [--json]",
	.summary = "write the node's chain to a file",
	.description =
		"Writes the node's chain to FILE (atomically): the genesis, every block with\n"
		"its commit certificate, the validator set wherever it changes, and each\n"
		"lease's state with its state proof, which `tally audit --chain FILE` and\n"
		"`tally chain verify FILE` check against the chain. The format is in\n"
		"docs/FORMATS.md. On a terminal, the blocks fetched so far are shown as it\n"
		"goes.",
	.opts = export_opts,
};

int cmd_chain_export(int argc, char **argv)
{
	struct common co;
	struct client cl;
	struct chainfile f;
	struct genesis g;
	char *gjson = NULL, why[WHY_MAX];
	uint64_t tip = 0, leases_height = 0;
	struct optable ot;
	bool force = false;
	struct stat st;
	int c, rc;

	cmd_optable(&ot, &doc_chain_export, ":");
	common_init(&co);
	while ((c = getopt_long(argc, argv, ot.shortopts, ot.longopts, NULL)) != -1) {
		if (c == O_FORCE)
			force = true;
		else if (!common_opt(&co, c, optarg))
			return bad_option("chain export", c, argv);
	}
	if (co.help)
		return cmd_help(&doc_chain_export);
	if (argc - optind != 1)
		return usage_error("chain export", "give one FILE");
	/* Checked first, so a long export does not end in a refusal; the
	 * file is replaced atomically either way. */
	if (!force && stat(argv[optind], &st) == 0) {
		err("%s exists: give --force to replace it", argv[optind]);
		return EXIT_USAGE;
	}
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
	/* The leases first, then every block up to the tip after them: the
	 * file holds the block each lease's proof names. */
	rc = add_leases(&cl, &f, &leases_height);
	if (!rc)
		rc = node_tip(&cl, &tip);
	if (!rc && tip) {
		struct export e = { .f = &f };

		progress_start(&e.pr, "blocks fetched", tip, co.json);
		rc = node_blocks(&cl, 1, tip, add_block, &e);
		progress_end(&e.pr);
	}
	if (!rc && leases_height > tip) {
		err("the node proved a lease at height %" PRIu64 ", above its tip %" PRIu64,
		    leases_height, tip);
		rc = EXIT_USAGE;
	}
	if (rc)
		goto out;
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
		printf("exported %zu block%s and %zu lease%s of chain '%s' to %s\n", f.nblocks,
		       f.nblocks == 1 ? "" : "s", f.nleases, f.nleases == 1 ? "" : "s",
		       g.chain_id, argv[optind]);
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
	const struct chainfile *file;    /* its lease states are checked, or NULL */
	const struct chainfile_lease **by_height;   /* the file's leases, by height */
	size_t next_lease;
	uint64_t leases_checked;
	int failed;
	char why[WHY_MAX];
};

static int cmp_height(const void *a, const void *b)
{
	const struct chainfile_lease *x = *(const struct chainfile_lease *const *)a;
	const struct chainfile_lease *y = *(const struct chainfile_lease *const *)b;

	return x->height < y->height ? -1 : x->height > y->height;
}

/* The file's leases whose state is of the block just replayed: each proof
 * must lead to that block's state root (which the replay recomputed), so
 * the file's claim is what the chain committed. */
static int check_leases(struct verify *s, uint64_t height)
{
	const struct chainfile *f = s->file;

	while (s->next_lease < f->nleases && s->by_height[s->next_lease]->height == height) {
		if (chainfile_check_lease(f, s->by_height[s->next_lease], s->why)) {
			s->failed = 1;
			return EXIT_REFUSED;
		}
		s->next_lease++;
		s->leases_checked++;
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
	return s->file ? check_leases(s, b->header.height) : EXIT_OK;
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
		print_json(json_pack("{s:b,s:s,s:s,s:b,s:o,s:o,s:s,s:s,s:o,s:s,s:o,s:o}",
				     "verified", !s->failed, "chain_id", v->chain_id,
				     "genesis_hash", gh, "genesis_pinned", s->pin.set,
				     "blocks", json_u64(s->blocks),
				     "height", json_u64(v->height), "block_id", id,
				     "state_root", sroot, "usage_size", json_u64(v->usage.size),
				     "usage_root", root, "leases_checked",
				     json_u64(s->leases_checked),
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
		       s->file ? (s->leases_checked == s->file->nleases ?
				  ", every lease state in the file proven against the chain" : "") : "");
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
		"export` file, whose lease states are also checked against what the chain\n"
		"committed (each state proof against its block's state root); with --node\n"
		"the chain is read from that node instead.",
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
		if ((rc = chainfile_load(&f, argv[optind], why))) {
			free(s);
			return chainfile_fail(rc, why, co.json);
		}
		snprintf(source, sizeof(source), "%.500s", argv[optind]);
		rc = start(s, &f.genesis, argv[optind]);
		s->file = &f;
		s->by_height = calloc(f.nleases + 1, sizeof(*s->by_height));
		if (!s->by_height) {
			err("out of memory");
			rc = EXIT_USAGE;
		}
		for (size_t i = 0; !rc && i < f.nleases; i++)
			s->by_height[i] = &f.leases[i];
		if (!rc)
			qsort(s->by_height, f.nleases, sizeof(*s->by_height), cmp_height);
		for (size_t i = 0; !rc && i < f.nblocks; i++)
			rc = verify_block(s, &f.blocks[i].block, f.blocks[i].cert,
					  f.blocks[i].next_vals);
		if (!rc || s->failed)
			rc = verify_report(s, &co, source);
		s->file = NULL;
		free(s->by_height);
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
