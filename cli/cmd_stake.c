/* tally stake AMOUNT, tally unstake AMOUNT, tally unjail: the signer's
 * STAKE, UNSTAKE and UNJAIL transactions (docs/FORMATS.md section 10.8,
 * 10.10), with --wait for the block that commits them; tally validators:
 * the set, every staker, its jail and the unbonding entries (GET
 * /v1/staking). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli/tally.h"
#include "lib/errors.h"
#include "lib/json_u64.h"
#include "lib/chain/tx.h"

/* Whether a tallyd runs with key pub on the network: the node the CLI
 * talks to is it, or one of its connected peers is. A STAKE or UNJAIL makes
 * its signer a validator; one that runs no node is offline stake, and once
 * offline stake passes 1/3 no block commits, not even the UNSTAKE that
 * would undo it. EXIT_OK when it runs, EXIT_REFUSED (with why) when not. */
static int validator_node_runs(struct client *cl, const uint8_t pub[PUBKEY_LEN], const char *name)
{
	char hex[65];
	json_t *st, *p;
	size_t i;
	enum client_rc rc = client_get(cl, "/v1/status", &st);
	bool found;

	if (rc)
		return client_fail(cl, rc);
	if (status_bad(st)) {
		json_decref(st);
		return EXIT_USAGE;
	}
	hex_encode(pub, PUBKEY_LEN, hex);
	found = !strcmp(jget_str(st, "node"), hex);
	json_array_foreach(json_object_get(json_object_get(st, "peers"), "connected"), i, p)
		found |= !strcmp(jget_str(p, "key"), hex);
	json_decref(st);
	if (found)
		return EXIT_OK;
	err("%s: no tallyd with key %.16s... is on this network (neither the node at %s nor "
	    "any of its peers): this %s makes the key a validator, and a validator that runs "
	    "no node is offline stake; once offline stake passes 1/3 no block commits, not "
	    "even the unstake that would undo it. Start the node with this key first, or "
	    "give --no-node-check", name, hex, cl->base, name);
	return EXIT_REFUSED;
}

/* Where a key stands once its staking transaction is in (GET /v1/staking):
 * its stake, whether it is in the set that signs the next block, jailed,
 * and the chain's min_self_stake. known is false when the node could not
 * say (the command's result stands without it). */
struct standing {
	bool known, in_set, jailed;
	uint64_t stake, jailed_until, min_self_stake, max_validators;
};

static void standing_of(struct client *cl, const uint8_t pub[PUBKEY_LEN], struct standing *s)
{
	char hex[65];
	json_t *j, *v;
	size_t i;

	memset(s, 0, sizeof(*s));
	hex_encode(pub, PUBKEY_LEN, hex);
	if (client_get(cl, "/v1/staking", &j))
		return;
	s->known = true;
	s->min_self_stake = jget_u64(json_object_get(j, "params"), "min_self_stake");
	s->max_validators = jget_u64(json_object_get(j, "params"), "max_validators");
	json_array_foreach(json_object_get(j, "validators"), i, v)
		if (!strcmp(jget_str(v, "pubkey"), hex)) {
			s->stake = jget_u64(v, "stake");
			s->jailed = json_is_true(json_object_get(v, "jailed"));
			s->jailed_until = jget_u64(v, "jailed_until");
		}
	json_array_foreach(json_object_get(j, "set"), i, v)
		s->in_set |= !strcmp(jget_str(v, "pubkey"), hex);
	json_decref(j);
}

/* An UNJAIL of a key the chain does not hold jailed can only be refused:
 * say so before anything else (the node check's advice is beside the
 * point). EXIT_OK when jailed, or when the node could not say. */
static int unjail_makes_sense(struct client *cl, const uint8_t pub[PUBKEY_LEN])
{
	struct standing s;
	char hex[65];

	standing_of(cl, pub, &s);
	if (!s.known || s.jailed)
		return EXIT_OK;
	hex_encode(pub, PUBKEY_LEN, hex);
	err("unjail: key %.16s... is not jailed, so there is nothing to unjail ('tally"
	    " validators' lists the jailed)", hex);
	return EXIT_REFUSED;
}

/* "; from block N ..." after "stake of X committed in block H". */
static void print_standing(const struct standing *s, uint64_t height)
{
	char a[32], b[32];

	if (!s->known)
		fprintf(stderr, "; the validator set follows from block %" PRIu64 "\n", height + 1);
	else if (s->in_set)
		fprintf(stderr, "; from block %" PRIu64 " the key is in the validator set, with"
			" stake %s\n", height + 1, fmt_amount(s->stake, a));
	else if (s->jailed)
		fprintf(stderr, "; the key is jailed until block %" PRIu64 " (tally unjail then),"
			" outside the validator set\n", s->jailed_until);
	else if (s->stake < s->min_self_stake)
		fprintf(stderr, "; its stake %s is below the chain's min_self_stake %s, so the key"
			" is not a validator candidate\n", fmt_amount(s->stake, a),
			fmt_amount(s->min_self_stake, b));
	else
		fprintf(stderr, "; the key is a candidate with stake %s, outside the set (the %"
			PRIu64 " candidates of most stake)\n", fmt_amount(s->stake, a),
			s->max_validators);
}

/* One signed staking transaction of kind, with AMOUNT unless UNJAIL. */
static int staking_tx(int argc, char **argv, uint8_t kind, const struct cmd_doc *doc)
{
	const char *name = doc->name;
	struct optable ot;
	struct wait_opts w = WAIT_OPTS_INIT;
	bool node_check = true;
	uint64_t height = 0;
	struct standing sd = { 0 };
	struct common co;
	struct client cl;
	struct tally_key k;
	struct tx t;
	struct chain_ref chain;
	char hash[65], amt[32];
	int c, r, rc, wrc = EXIT_OK;

	cmd_optable(&ot, doc, ":");
	common_init(&co);
	while ((c = getopt_long(argc, argv, ot.shortopts, ot.longopts, NULL)) != -1) {
		if (common_opt(&co, c, optarg))
			continue;
		if ((r = wait_opt(&w, c, optarg)) < 0)
			return EXIT_USAGE;
		if (r)
			continue;
		if (c == 'n' && kind != TX_UNSTAKE)
			node_check = false;
		else
			return bad_option(name, c, argv);
	}
	if (co.help)
		return cmd_help(doc);
	if ((rc = wait_opts_check(&w, name)))
		return rc;
	memset(&t, 0, sizeof(t));
	t.kind = kind;
	if (kind == TX_UNJAIL) {
		if (argc != optind)
			return usage_error(name, "takes no operand");
	} else {
		if (argc - optind != 1)
			return usage_error(name, "give exactly one AMOUNT (micro-units)");
		if (parse_u64(argv[optind], &t.u.stake.amount, "amount"))
			return EXIT_USAGE;
		if (t.u.stake.amount == 0)
			return usage_error(name, "the amount must be above 0");
	}
	if (open_key_and_client(&k, co.key, &cl, co.node))
		return EXIT_USAGE;
	rc = kind == TX_UNJAIL ? unjail_makes_sense(&cl, k.pub) : EXIT_OK;
	if (!rc && kind != TX_UNSTAKE && node_check)
		rc = validator_node_runs(&cl, k.pub, name);
	if (!rc)
		rc = fetch_chain_and_nonce(&cl, k.pub, &chain, &t.nonce);
	if (!rc)
		rc = sign_and_submit(&cl, &k, &chain, &t, name, hash);
	/* The node took it: its hash is the user's handle on it (tally tx
	 * HASH), also when the wait for its block fails. */
	if (!rc && !co.json) {
		printf("%s\n", hash);
		fflush(stdout);
	}
	if (!rc && w.wait)
		wrc = tx_wait_committed(&cl, hash, w.timeout_s, &height);
	if (!rc && w.wait && !wrc)
		standing_of(&cl, k.pub, &sd);
	key_free(&k);
	client_free(&cl);
	if (rc)
		return rc;
	if (co.json) {
		json_t *j = json_pack("{s:s,s:s,s:o}", "hash", hash, "kind", tx_kind_name(kind),
				      "nonce", json_u64(t.nonce));

		if (kind != TX_UNJAIL)
			json_object_set_new(j, "amount", json_u64(t.u.stake.amount));
		if (w.wait && !wrc)
			json_object_set_new(j, "height", json_u64(height));
		if (sd.known) {
			json_object_set_new(j, "stake", json_u64(sd.stake));
			json_object_set_new(j, "in_set", json_boolean(sd.in_set));
		}
		if (wrc) {
			json_object_set_new(j, "ok", json_false());
			json_object_set_new(j, "error", json_string(last_error()));
			json_object_set_new(j, "exit_code", json_integer(wrc));
		}
		print_json(j);
		return wrc;
	}
	if (wrc)
		return wrc;
	if (kind == TX_UNJAIL)
		fprintf(stderr, "tally: unjail %s", w.wait ? "committed" : "submitted");
	else
		fprintf(stderr, "tally: %s of %s %s", name, fmt_amount(t.u.stake.amount, amt),
			w.wait ? "committed" : "submitted");
	if (w.wait) {
		fprintf(stderr, " in block %" PRIu64, height);
		print_standing(&sd, height);
	}
	else
		fprintf(stderr, " (nonce %" PRIu64 ")\n", t.nonce);
	return EXIT_OK;
}

static const struct opt_doc wait_opts[] = {
	{ "wait", 'w', NULL, "wait until a block commits it (exit 1 if it is left out)", 0 },
	{ "timeout", 't', "S", "with --wait: give up after S seconds (default 60)", 0 },
	{ NULL, 0, NULL, NULL, 0 },
};

static const struct opt_doc validator_opts[] = {
	{ "wait", 'w', NULL, "wait until a block commits it (exit 1 if it is left out)", 0 },
	{ "timeout", 't', "S", "with --wait: give up after S seconds (default 60)", 0 },
	{ "no-node-check", 'n', NULL, "sign even when no tallyd with your key is on the\n"
	  "network (its stake is then offline)", 0 },
	{ NULL, 0, NULL, NULL, 0 },
};

const struct cmd_doc doc_stake = {
	.name = "stake",
	.synopsis = "AMOUNT [--wait [--timeout S]] [--no-node-check] [--node URL] [--key FILE]\n"
		    " [--json]",
	.summary = "bond funds as stake: become a validator candidate",
	.description =
		"Bonds AMOUNT micro-units of your balance as stake (a STAKE transaction).\n"
		"Once your stake reaches the chain's min_self_stake and you are not jailed,\n"
		"you are a validator candidate; the set is the max_validators candidates of\n"
		"most stake, and a change made in block h takes effect at block h + 1.\n"
		"A validator must run: tally refuses unless the node it talks to, or one of\n"
		"that node's peers, runs with your key (--no-node-check to skip), since\n"
		"offline stake above 1/3 stops every block. Prints the transaction hash.",
	.opts = validator_opts,
};

const struct cmd_doc doc_unstake = {
	.name = "unstake",
	.synopsis = "AMOUNT [--wait [--timeout S]] [--node URL] [--key FILE] [--json]",
	.summary = "unbond stake (back to the balance after the unbonding period)",
	.description =
		"Starts unbonding AMOUNT micro-units of your stake (an UNSTAKE transaction).\n"
		"The amount leaves your stake (and voting power from the next block) at\n"
		"once, and comes back to your balance at the end of block h + unbonding_blocks\n"
		"(h the block that commits it). Until then it can still be slashed for an\n"
		"offence committed before it. Refused if the validator set would be empty.\n"
		"Prints the transaction hash.",
	.opts = wait_opts,
};

const struct cmd_doc doc_unjail = {
	.name = "unjail",
	.synopsis = "[--wait [--timeout S]] [--no-node-check] [--node URL] [--key FILE] [--json]",
	.summary = "end your validator's jail once its term is over",
	.description =
		"Ends your validator's jail (an UNJAIL transaction), allowed from block\n"
		"jailed_until on ('tally validators' shows it). You are a candidate again\n"
		"if your stake is at least min_self_stake. As for stake, the node with your\n"
		"key must be on the network (--no-node-check to skip). A key that is not\n"
		"jailed is told so, and nothing is signed. Prints the transaction hash.",
	.opts = validator_opts,
};

int cmd_stake(int argc, char **argv)
{
	return staking_tx(argc, argv, TX_STAKE, &doc_stake);
}

int cmd_unstake(int argc, char **argv)
{
	return staking_tx(argc, argv, TX_UNSTAKE, &doc_unstake);
}

int cmd_unjail(int argc, char **argv)
{
	return staking_tx(argc, argv, TX_UNJAIL, &doc_unjail);
}

/* The row of the set for pub, or NULL. */
static json_t *set_member(json_t *set, const char *pub)
{
	size_t i;
	json_t *m;

	json_array_foreach(set, i, m)
		if (!strcmp(jget_str(m, "pubkey"), pub))
			return m;
	return NULL;
}

const struct cmd_doc doc_validators = {
	.name = "validators",
	.synopsis = "[--node URL] [--json]",
	.summary = "the validator set, stakers, jails and unbonding",
	.description =
		"The validator set that signs the next block (stake, share of the voting\n"
		"power, blocks this node saw it sign and miss since it started), every\n"
		"staker (jailed or not, jailed until which block, and IN A ROW: the\n"
		"commits it missed in a row as the chain counts them, which jail it\n"
		"without a slash when they reach the liveness window), the unbonding\n"
		"entries (amount, owner, the block that pays it back) and the chain's\n"
		"parameters. --json prints the node's /v1/staking answer (the chain's\n"
		"count is \"missed_in_a_row\").",
};

int cmd_validators(int argc, char **argv)
{
	struct common co;
	json_t *j, *params, *set, *vals, *ub, *v;
	char amt[32];
	size_t i;
	int rc = parse_common_args(&co, argc, argv, &doc_validators);

	if (rc != ARGS_PARSED)
		return rc;
	if (argc != optind)
		return usage_error("validators", "takes no operand");
	rc = fetch_json(co.node, "/v1/staking", &j);
	if (rc)
		return rc;
	if (co.json)
		return print_json(j);
	params = json_object_get(j, "params");
	set = json_object_get(j, "set");
	vals = json_object_get(j, "validators");
	ub = json_object_get(j, "unbonding");
	printf("height %" PRIu64 ": %zu validator%s the next block"
	       " (at most %" PRIu64 ", min self-stake %s)\n", jget_u64(j, "height"),
	       json_array_size(set), json_array_size(set) == 1 ? " signs" : "s sign",
	       jget_u64(params, "max_validators"),
	       fmt_amount(jget_u64(params, "min_self_stake"), amt));
	printf("%-16s  %16s  %7s  %-7s  %8s  %8s  %9s  %s\n", "PUBKEY", "STAKE", "POWER",
	       "IN SET", "SIGNED", "MISSED", "IN A ROW", "JAILED");
	json_array_foreach(vals, i, v) {
		const char *pub = jget_str(v, "pubkey");
		json_t *m = set_member(set, pub);
		char jail[48] = "no";

		if (json_is_true(json_object_get(v, "jailed")))
			snprintf(jail, sizeof(jail), "until block %" PRIu64,
				 jget_u64(v, "jailed_until"));
		printf("%.16s  %16s  %6.2f%%  %-7s  %8" PRIu64 "  %8" PRIu64 "  %9" PRIu64
		       "  %s\n", pub, fmt_amount(jget_u64(v, "stake"), amt),
		       m ? json_real_value(json_object_get(m, "power_pct")) : 0.0,
		       m ? "yes" : "no", m ? jget_u64(m, "signed_blocks") : 0,
		       m ? jget_u64(m, "missed_blocks") : 0, jget_u64(v, "missed_in_a_row"), jail);
	}
	if (json_array_size(ub)) {
		printf("\nunbonding (back to the balance at the end of the block shown):\n");
		json_array_foreach(ub, i, v)
			printf("  %.16s  %16s  block %" PRIu64 " (since %" PRIu64 ")\n",
			       jget_str(v, "owner"), fmt_amount(jget_u64(v, "amount"), amt),
			       jget_u64(v, "release"), jget_u64(v, "since"));
	}
	printf("\nunbonding %" PRIu64 " blocks, slash %.4g%%, jail %" PRIu64 " blocks, ",
	       jget_u64(params, "unbonding_blocks"),
	       (double)jget_u64(params, "slash_ppm") / 10000.0, jget_u64(params, "jail_blocks"));
	if (jget_u64(params, "liveness_window"))
		printf("jailed (no slash) after %" PRIu64 " missed commits in a row\n",
		       jget_u64(params, "liveness_window"));
	else
		printf("no jailing for missed commits\n");
	json_decref(j);
	return EXIT_OK;
}
