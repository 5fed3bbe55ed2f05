/* tally audit ID: verify a lease from the chain, against a node or an
 * exported chain file, and recompute its bill (lib/chain/audit.h does the work). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/chainsrc.h"
#include "cli/genesis_pin.h"
#include "cli/progress.h"
#include "cli/tally.h"
#include "lib/chain/audit.h"
#include "lib/chain/chainfile.h"
#include "lib/errors.h"
#include "lib/json_u64.h"

struct feed {
	struct auditor *a;
	struct progress pr;
	uint64_t fed;
};

static int feed_block(void *ctx, const struct block *b, const struct commit_cert *cert,
		      const struct validator_set *next_vals)
{
	struct feed *f = ctx;

	if (auditor_add_block(f->a, b, cert, next_vals)) {
		err("out of memory");
		return EXIT_USAGE;
	}
	progress_step(&f->pr, ++f->fed);
	return EXIT_OK;
}

static int report_json(const struct audit_result *r, const char *id,
		       const struct genesis_pin *pin)
{
	char gh[65];
	json_t *errs = json_array(), *recs = json_array();
	char bid[65], root[65];

	for (size_t i = 0; i < r->nerrors; i++)
		json_array_append_new(errs, json_string(r->errors[i].msg));
	if (r->errors_dropped) {
		char more[64];
		snprintf(more, sizeof(more), "%zu more errors not listed", r->errors_dropped);
		json_array_append_new(errs, json_string(more));
	}
	for (size_t i = 0; i < r->nrecords; i++) {
		const struct audit_record *x = &r->records[i];
		json_array_append_new(recs, json_pack(
			"{s:o,s:o,s:I,s:b,s:b,s:o,s:o}", "seq", json_u64(x->rec.seq),
			"height", json_u64(x->height), "index", (json_int_t)x->index,
			"signature_ok", x->signature_ok, "proven", x->proven,
			"gross", json_u64(x->charge.gross), "paid", json_u64(x->paid)));
	}
	hex_encode(r->verified_block_id, HASH_LEN, bid);
	hex_encode(r->usage_root, HASH_LEN, root);
	hex_encode(r->genesis_hash, HASH_LEN, gh);
	/* Every u64 through json_u64: above 2^63 - 1 it is a decimal string,
	 * never a negative integer (docs/PROTOCOL.md, "Numbers"). */
	return print_json(json_pack(
		"{s:b,s:s,s:b,s:b,s:I,s:o,s:s,s:o,s:s,s:o,s:s,s:b,s:b,"
		"s:{s:s,s:s,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:{s:o,s:o,s:o,s:o}},s:o}",
		"verified", r->verified, "genesis_hash", gh, "genesis_pinned", pin->set,
		"state_replayed", r->replayed_state,
		"records", (json_int_t)r->nrecords, "errors", errs,
		"lease", id, "verified_height", json_u64(r->verified_height),
		"verified_block_id", bid, "usage_size", json_u64(r->usage_size),
		"usage_root", root, "replayed", r->replayed, "compared", r->compared,
		"bill", "state", lease_state_name(r->lease.state),
		"close_reason", lease_close_reason_name(r->lease.close_reason),
		"charged", json_u64(r->lease.charged),
		"sla_credits", json_u64(r->lease.sla_credits),
		"refund", json_u64(r->refund), "escrow", json_u64(r->lease.escrow),
		"cpu_ns", json_u64(r->lease.cpu_ns),
		"run_delay_ns", json_u64(r->lease.run_delay_ns),
		"gpu_ns", json_u64(r->lease.gpu_ns), "mem_mib_s", json_u64(r->mem_mib_s),
		"carry", "cpu", json_u64(r->lease.carry.cpu), "mem", json_u64(r->lease.carry.mem),
		"gpu", json_u64(r->lease.carry.gpu), "credit", json_u64(r->lease.carry.credit),
		"record_list", recs));
}

static void report_human(const struct audit_result *r, const char *id, const char *source,
			 const struct genesis_pin *pin)
{
	char gh[65];
	char a[32], b[32], c[32];
	size_t proven = 0, signed_ok = 0;

	for (size_t i = 0; i < r->nrecords; i++) {
		proven += r->records[i].proven;
		signed_ok += r->records[i].signature_ok;
	}
	hex_encode(r->genesis_hash, HASH_LEN, gh);
	printf("audit of lease %s\n", id);
	printf("  source          %s\n", source);
	printf("  genesis         %s (%s)\n", gh, genesis_pin_word(pin));
	printf("  state           %s\n", r->replayed_state ?
	       "every transaction replayed, every state root checked" :
	       "not replayed (from a checkpoint, or the chain broke first)");
	printf("  chain           %" PRIu64 " blocks read, verified to height %" PRIu64 "\n",
	       r->blocks_seen, r->verified_height);
	printf("  usage records   %zu found, %zu signatures valid, %zu inclusion proofs valid"
	       " (log size %" PRIu64 ")\n", r->nrecords, signed_ok, proven, r->usage_size);
	if (r->lease_found) {
		printf("  recomputed      %s%s%s\n", lease_state_name(r->lease.state),
		       r->lease.state == LEASE_CLOSED ? ", " : "",
		       r->lease.state == LEASE_CLOSED ?
		       lease_close_reason_name(r->lease.close_reason) : "");
		printf("    charged       %s\n    sla credits   %s\n    refund        %s\n",
		       fmt_amount(r->lease.charged, a), fmt_amount(r->lease.sla_credits, b),
		       fmt_amount(r->refund, c));
		printf("    cpu %" PRIu64 " ns, run delay %" PRIu64 " ns, gpu %" PRIu64
		       " ns, memory %" PRIu64 " MiB*s\n", r->lease.cpu_ns, r->lease.run_delay_ns,
		       r->lease.gpu_ns, r->mem_mib_s);
		printf("  settlement      %s\n", !r->compared ? "not compared" :
		       !strncmp(source, "chain file", 10) ?
		       "compared with the one the file carries (its state proof checked)" :
		       "compared with the node's");
	}
	for (size_t i = 0; i < r->nerrors; i++)
		printf("  FAIL  %s\n", r->errors[i].msg);
	if (r->errors_dropped)
		printf("  FAIL  ... and %zu more\n", r->errors_dropped);
	printf("%s\n", r->verified ? "VERIFIED" : "NOT VERIFIED");
}

/* The lease a typed id names among the file's leases (the export holds
 * every lease the node listed): the full id, or a unique prefix of 8 or
 * more hex characters, as against a node. */
static int resolve_file_lease(const struct chainfile *f, const char *arg, char out[65])
{
	struct hex_match m;
	char hex[65];
	int rc = hex_match_begin(&m, "lease id", arg);

	for (size_t i = 0; !rc && m.n < 64 && i < f->nleases; i++) {
		hex_encode(f->leases[i].id, LEASE_ID_LEN, hex);
		hex_match_offer(&m, hex);
	}
	return rc ? rc : hex_match_end(&m, "lease id", " among the file's leases", out);
}

static int audit_file(const struct chainfile *f, const uint8_t id[LEASE_ID_LEN], bool have_cp,
		      uint64_t cp_height, const uint8_t cp_id[HASH_LEN],
		      const struct genesis_pin *pin, bool quiet, struct audit_result *res)
{
	uint8_t gh[HASH_LEN];
	struct progress pr;
	struct chain_checkpoint *cp = NULL;
	struct auditor *a = NULL;
	char why[WHY_MAX];
	int rc;

	rc = genesis_pin_check(pin, &f->genesis, gh);
	if (rc)
		goto out;
	size_t first = 0;
	if (have_cp) {
		if (cp_height > f->nblocks) {
			err("checkpoint height %" PRIu64 " is beyond the file's %zu blocks",
			    cp_height, f->nblocks);
			rc = EXIT_USAGE;
			goto out;
		}
		cp = calloc(1, sizeof(*cp));
		if (!cp) {
			rc = EXIT_USAGE;
			goto out;
		}
		/* The validator set and usage-log frontier at the checkpoint come
		 * from the file's earlier blocks; the checkpoint check binds them
		 * to the pinned header, and their hashes bind every byte of them. */
		rc = chainfile_check_prefix(f, cp_height, why);
		if (rc) {
			char msg[WHY_MAX + 32];

			snprintf(msg, sizeof(msg), "%s (before the checkpoint)", why);
			rc = chainfile_fail(rc, msg, quiet);
			goto out;
		}
		cp->vals = f->genesis.validators;
		merkle_frontier_init(&cp->usage);
		for (size_t i = 0; i < cp_height; i++) {
			const struct chainfile_block *cb = &f->blocks[i];
			if (cb->next_vals)
				cp->vals = *cb->next_vals;
			for (size_t k = 0; k < cb->block.ntx; k++) {
				struct tx t;
				uint8_t leaf[HASH_LEN];
				const uint8_t *p = cb->block.txs[k].bytes;
				size_t n = cb->block.txs[k].len;
				if (!tx_decode(&t, p, n) && tx_usage_leaf(&t, p, n, leaf))
					merkle_frontier_append(&cp->usage, leaf);
			}
		}
		cp->header = f->blocks[cp_height - 1].block.header;
		cp->cert = *f->blocks[cp_height - 1].cert;
		first = cp_height;
	}
	/* The settlement compared is the lease state the file claims, which
	 * its state proof must show the chain committed. */
	const struct chainfile_lease *claim = chainfile_find_lease(f, id);
	rc = auditor_new(&a, &f->genesis, cp, cp_id, id, NULL, why);
	if (!rc && claim)
		rc = auditor_set_claim(a, claim->height, &claim->proof, why);
	if (rc) {
		/* A checkpoint that is not the pinned block, a claim that does
		 * not decode: the audit's answer, not a usage error. */
		rc = chainfile_fail(rc, why, quiet);
		goto out;
	}
	progress_start(&pr, "blocks replayed", f->nblocks - first, quiet);
	for (size_t i = first; i < f->nblocks && !rc; i++) {
		rc = auditor_add_block(a, &f->blocks[i].block, f->blocks[i].cert,
				       f->blocks[i].next_vals);
		progress_step(&pr, i + 1 - first);
	}
	progress_end(&pr);
	if (!rc)
		rc = auditor_finish(a, NULL, NULL, res);
	if (rc) {
		err("out of memory");
		rc = EXIT_USAGE;
		goto out;
	}
	/* The file's other lease states are claims too, which its blocks must
	 * prove (as tally chain verify checks them): a file that holds a false
	 * one is refused, whichever lease is audited. */
	for (size_t i = 0; res->verified && i < f->nleases; i++) {
		if (f->leases[i].height > res->verified_height)
			continue;   /* beyond the verified chain: the audit said so */
		if (chainfile_check_lease(f, &f->leases[i], why)) {
			rc = chainfile_fail(TALLY_E_PROOF_ROOT, why, quiet);
			goto out;
		}
	}
out:
	auditor_free(a);
	free(cp);
	return rc;
}

static int audit_node(struct client *cl, const uint8_t id[LEASE_ID_LEN],
		      bool have_cp, uint64_t cp_height, const uint8_t cp_id[HASH_LEN],
		      const struct genesis_pin *pin, bool quiet, struct audit_result *res)
{
	uint8_t gh[HASH_LEN];
	struct chain_checkpoint *cp = NULL;
	struct genesis g;
	struct state_proof claim;
	uint64_t claim_height = 0;
	bool have_claim = false;
	struct feed feed = { .a = NULL };
	char *gjson = NULL, why[WHY_MAX];
	uint64_t tip;
	int rc;

	memset(&g, 0, sizeof(g));
	/* The settlement first, as the node's state proof: the blocks read
	 * after it hold the block it names, whose state root it must reach. */
	rc = node_lease_proof(cl, id, &claim_height, &claim);
	if (rc)
		return rc;
	have_claim = true;
	rc = node_genesis(cl, &gjson, &g);
	if (!rc)
		rc = genesis_pin_check(pin, &g, gh);
	if (!rc)
		rc = node_tip(cl, &tip);
	if (rc)
		goto out;
	/* Before the checkpoint's block is asked for: a node short of it
	 * answers 404, which would read as a failed audit (1), not a
	 * checkpoint the node cannot serve (2). */
	if (have_cp && tip < cp_height) {
		err("the node's chain ends at block %" PRIu64 ", before the checkpoint's %" PRIu64,
		    tip, cp_height);
		rc = EXIT_USAGE;
		goto out;
	}
	if (have_cp) {
		cp = calloc(1, sizeof(*cp));
		rc = cp ? node_checkpoint(cl, cp_height, cp) : EXIT_USAGE;
		if (rc)
			goto out;
	}
	if ((rc = auditor_new(&feed.a, &g, cp, cp_id, id, NULL, why))) {
		rc = chainfile_fail(rc, why, quiet);
		goto out;
	}
	/* A proof that does not hold the lease is the node's false claim: not
	 * verified (1), as a chain file's would be, not a fault of the command
	 * (chainfile_fail would take its TALLY_E_NOTFOUND for one). */
	if ((rc = auditor_set_claim(feed.a, claim_height, &claim, why))) {
		rc = chainfile_fail(rc == TALLY_E_NOTFOUND ? TALLY_E_PROOF_ROOT : rc, why, quiet);
		goto out;
	}
	progress_start(&feed.pr, "blocks replayed", tip - (have_cp ? cp_height : 0), quiet);
	rc = node_blocks(cl, have_cp ? cp_height + 1 : 1, tip, feed_block, &feed);
	progress_end(&feed.pr);
	if (!rc && auditor_finish(feed.a, node_inclusion_proof, cl, res)) {
		err("out of memory");
		rc = EXIT_USAGE;
	}
out:
	auditor_free(feed.a);
	if (have_claim)
		state_proof_free(&claim);
	free(cp);
	free(gjson);
	genesis_free(&g);
	return rc;
}

enum { O_CHAIN = 256, O_CP, O_GENESIS };

static const struct opt_doc audit_opts[] = {
	{ "genesis", O_GENESIS, "FILE|HASH", "the chain to trust: a genesis file or its hash; a node\n"
	  "or file of another chain is refused. Without it the\n"
	  "genesis is taken from the node or file, and printed", 0 },
	{ "chain", O_CHAIN, "FILE", "audit from an exported chain file (tally chain export)\n"
	  "instead of a node; the settlement compared is the one\nthe file carries", 0 },
	{ "checkpoint", O_CP, "H:ID", "trust block H with id ID instead of starting at genesis\n"
	  "(the lease must open after it)", 0 },
	{ NULL, 0, NULL, NULL, 0 },
};

const struct cmd_doc doc_audit = {
	.name = "audit",
	.synopsis = "ID [--node URL | --chain FILE] [--genesis FILE|HASH]\n"
		    " [--checkpoint HEIGHT:BLOCKID] [--json]",
	.summary = "verify a lease's usage and bill from the chain",
	.description =
		"Verifies lease ID from genesis (or the pinned checkpoint): every header and\n"
		"commit certificate and every signature; from genesis, every transaction of\n"
		"the chain replayed through the validators' own rules with the state root\n"
		"checked at every height; the hash chain of the lease's usage records (no\n"
		"gap, reorder or duplicate), the inclusion proof of each record against the\n"
		"latest verified header; and the recomputed bill (state, charged, SLA\n"
		"credits, escrow, refund, metered totals and the settlement's carries)\n"
		"compared with what the node settled. Each failure names the block\n"
		"height or the record (seq), and the rule. On a terminal, the blocks read so\n"
		"far are shown as it goes. ID may be a unique prefix of 8 or more hex\n"
		"characters, of a lease the node (or, with --chain, the file) holds.",
	.opts = audit_opts,
	.epilog =
		"exit codes: 0 verified, 1 not verified, 2 usage or I/O error\n"
		"--json prints {\"verified\", \"records\", \"errors\": [...], \"bill\": {...}, ...}",
};

int cmd_audit(int argc, char **argv)
{
	struct optable ot;
	const char *chain = NULL, *cparg = NULL;
	struct genesis_pin pin = { 0 };
	uint8_t id[LEASE_ID_LEN], cp_id[HASH_LEN];
	uint64_t cp_height = 0;
	struct audit_result res;
	struct common co;
	struct client cl;
	char idhex[65], source[600];
	bool node_given = false;
	int c, rc;

	cmd_optable(&ot, &doc_audit, ":");
	common_init(&co);
	while ((c = getopt_long(argc, argv, ot.shortopts, ot.longopts, NULL)) != -1) {
		if (c == OPT_NODE)
			node_given = true;
		if (common_opt(&co, c, optarg))
			continue;
		if (c == O_CHAIN)
			chain = optarg;
		else if (c == O_CP)
			cparg = optarg;
		else if (c == O_GENESIS) {
			if (genesis_pin_parse(optarg, &pin))
				return EXIT_USAGE;
		}
		else
			return bad_option("audit", c, argv);
	}
	if (co.help)
		return cmd_help(&doc_audit);
	if (argc - optind != 1)
		return usage_error("audit", "give one lease ID");
	if (chain && node_given)
		return usage_error("audit", "give --node or --chain, not both");
	if (cparg && parse_checkpoint(cparg, &cp_height, cp_id))
		return EXIT_USAGE;
	memset(&res, 0, sizeof(res));
	if (chain) {
		struct chainfile f;
		char why[WHY_MAX];

		rc = chainfile_load(&f, chain, why);
		if (rc)
			return chainfile_fail(rc, why, co.json);
		rc = resolve_file_lease(&f, argv[optind], idhex);
		if (!rc) {
			hex_decode(idhex, id, LEASE_ID_LEN);
			snprintf(source, sizeof(source), "chain file %.500s", chain);
			rc = audit_file(&f, id, cparg != NULL, cp_height, cp_id, &pin, co.json,
					&res);
		}
		chainfile_free(&f);
	} else {
		if (client_init(&cl, co.node))
			return err("%s", cl.err), EXIT_USAGE;
		rc = resolve_lease_id(&cl, argv[optind], idhex);
		if (!rc) {
			hex_decode(idhex, id, LEASE_ID_LEN);
			snprintf(source, sizeof(source), "node %.500s", cl.base);
			rc = audit_node(&cl, id, cparg != NULL, cp_height, cp_id, &pin,
					co.json, &res);
		}
		client_free(&cl);
	}
	if (rc) {
		audit_result_free(&res);
		return rc;
	}
	if (cparg)
		snprintf(source + strlen(source), sizeof(source) - strlen(source),
			 ", from checkpoint %" PRIu64, cp_height);
	if (co.json)
		report_json(&res, idhex, &pin);
	else
		report_human(&res, idhex, source, &pin);
	rc = res.verified ? EXIT_OK : EXIT_REFUSED;
	audit_result_free(&res);
	return rc;
}
