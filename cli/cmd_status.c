/* tally status: the node's chain, height, peers, sync and what it offers. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli/progress.h"
#include "cli/tally.h"

/* "caught up" or how far behind, from the node's own view of its peers. */
static void show_sync(json_t *j)
{
	json_t *s = json_object_get(j, "sync");

	if (!json_is_object(s))
		return;
	if (json_is_true(json_object_get(s, "caught_up")))
		printf("sync       caught up");
	else if (jget_u64(s, "best_peer_height") > jget_u64(j, "height"))
		printf("sync       behind: a peer is at %" PRIu64, jget_u64(s, "best_peer_height"));
	else
		printf("sync       unknown: no peer connected");
	printf(" (%" PRIu64 " blocks synced from peers)\n", jget_u64(s, "blocks_synced"));
}

/* Where the node's consensus engine is: the height being decided, its
 * round and step, and the round's proposer. */
static void show_consensus(json_t *j)
{
	json_t *c = json_object_get(j, "consensus");

	if (!json_is_object(c))
		return;
	printf("consensus  height %" PRIu64 " round %" PRIu64 " %s%s, proposer %.16s (%s)\n",
	       jget_u64(c, "height"), jget_u64(c, "round"), jget_str(c, "step"),
	       json_is_true(json_object_get(c, "idle")) ? " (waiting for transactions)" : "",
	       jget_str(c, "proposer"),
	       json_is_true(json_object_get(c, "validator")) ? "this node votes"
							     : "this node follows");
}

/* The mempool's queue, then what waits outside it when anything does: held
 * for an earlier nonce of their account, or received asynchronously and not
 * yet checked. */
static void show_mempool(json_t *j)
{
	uint64_t n = jget_u64(j, "mempool"), held = jget_u64(j, "held"),
		 inbox = jget_u64(j, "inbox");

	printf("mempool    %" PRIu64 " transaction%s waiting", n, n == 1 ? "" : "s");
	if (held)
		printf(", %" PRIu64 " held for an earlier nonce", held);
	if (inbox)
		printf(", %" PRIu64 " received and not yet checked", inbox);
	printf("\n");
}

/* Whether this node hears from more than 2/3 of the voting power: a
 * stalled chain otherwise looks merely idle. */
static void show_quorum(json_t *j)
{
	json_t *q = json_object_get(j, "quorum");
	double pct = json_number_value(json_object_get(q, "reachable_power_pct"));

	if (!json_is_object(q))
		return;
	if (json_is_true(json_object_get(q, "reachable")))
		printf("quorum     %.2f%% of the voting power is this node or its peers\n", pct);
	else
		printf("quorum     NONE: %.2f%% of the voting power is this node or its peers;"
		       " blocks need more than 2/3: none commit here unless its peers relay"
		       " the other validators' votes\n", pct);
}

static void show_peers(json_t *j)
{
	json_t *p = json_object_get(j, "peers"), *c;
	size_t i;

	if (!json_is_object(p))
		return;
	/* Peers dial each other both ways: a peer that dialed in is not one of
	 * this node's configured addresses answering. */
	size_t dialed = 0, n = json_array_size(json_object_get(p, "connected"));

	json_array_foreach(json_object_get(p, "connected"), i, c)
		dialed += !strcmp(jget_str(c, "direction"), "dialed");
	printf("peers      %zu connected: %zu of %" PRIu64 " configured dialed, %zu inbound\n",
	       n, dialed, jget_u64(p, "configured"), n - dialed);
	json_array_foreach(json_object_get(p, "connected"), i, c)
		printf("peer       %.16s  %-21s %-7s height %" PRIu64 "  up %" PRIu64 " s\n",
		       jget_str(c, "key"), jget_str(c, "address"), jget_str(c, "direction"),
		       jget_u64(c, "height"), jget_u64(c, "connected_s"));
}

const struct cmd_doc doc_status = {
	.name = "status",
	.synopsis = "[--node URL] [--json]",
	.summary = "the node's chain, height, peers and offer",
	.description =
		"The node's chain id, height, last block, usage log, whether it is caught up\n"
		"with its peers, where its consensus engine is (height, round, step, the\n"
		"round's proposer), how much of the voting power it hears from (more than\n"
		"2/3 is needed for blocks to commit), the peers it is connected to, the\n"
		"validator set with\n"
		"stake, voting power and the blocks each signed and missed since the node\n"
		"started, whether tenants can pick it as a provider (announced on the\n"
		"chain, with the SLA bounds announced; not announced or withdrawn) and\n"
		"the prices and metering interval of its configuration (GET /v1/status).",
};

/* This node's own key as a validator, when that is news: jailed, or staked
 * but outside the set. */
static void show_self(json_t *j)
{
	json_t *sv = json_object_get(j, "self_validator");

	if (!json_is_object(sv))
		return;
	if (json_is_true(json_object_get(sv, "jailed")))
		printf("jailed     this node's validator key, until block %" PRIu64 ": it does not vote;"
		       " tally unjail from then on\n", jget_u64(sv, "jailed_until"));
	else if (!json_is_true(json_object_get(sv, "in_set")) && jget_u64(sv, "stake") == 0)
		printf("validator  this node's key has no stake: not in the set (what it unstaked,"
		       " and when it comes back: tally account show)\n");
	else if (!json_is_true(json_object_get(sv, "in_set")))
		printf("validator  this node's key is staked but not in the set (below the chain's"
		       " min_self_stake, or outside the max_validators of most stake)\n");
}

/* Whether tenants can pick this node: its registry entry on the chain
 * (GET /v1/providers/{key}). The prices below are its configuration;
 * only an announcement offers them. Nothing printed when the node
 * cannot say. */
static void show_provider(const char *node, const char *key)
{
	struct client cl;
	char path[128];
	json_t *p;
	enum client_rc rc;

	if (client_init(&cl, node))
		return;
	snprintf(path, sizeof(path), "/v1/providers/%s", key);
	rc = client_get(&cl, path, &p);
	if (rc == CLIENT_OK && json_is_true(json_object_get(p, "withdrawn")))
		printf("provider   withdrawn at block %" PRIu64 ": tenants cannot pick this node\n",
		       jget_u64(p, "height"));
	else if (rc == CLIENT_OK)
		printf("provider   announced at block %" PRIu64 ": SLA credit at most %" PRIu64
		       " ppm, delay allowed at least %" PRIu64 " ppm\n", jget_u64(p, "height"),
		       jget_u64(p, "sla_max_credit_ppm"), jget_u64(p, "sla_min_delay_ppm"));
	else if (rc == CLIENT_REFUSED && cl.status == 404)
		printf("provider   not announced: tenants cannot pick this node\n");
	json_decref(p);
	client_free(&cl);
}

int cmd_status(int argc, char **argv)
{
	struct common co;
	json_t *j, *v, *prices;
	char a[32], b[32], g[32];
	size_t i;
	int rc;

	rc = parse_common_args(&co, argc, argv, &doc_status);
	if (rc != ARGS_PARSED)
		return rc;
	if (optind != argc)
		return usage_error("status", "unexpected argument '%s'", argv[optind]);
	rc = fetch_json(co.node, "/v1/status", &j);
	if (rc)
		return rc;
	/* An answer that is no node's status would print as a blank one, and a
	 * figure that is no number as 0. */
	static const char *const figures[] = {
		"?time_ns", "?usage_size", "?mempool", "?held", "?inbox", "?interval_s",
		"?sync.best_peer_height", "?sync.blocks_synced", "?consensus.height",
		"?consensus.round", "?prices.vcpu_second", "?prices.mem_gib_second",
		"?prices.gpu_second", NULL };
	if (status_bad(j) || answer_lacks_u64(j, "status", figures)) {
		json_decref(j);
		return EXIT_USAGE;
	}
	if (co.json)
		return print_json(j);
	printf("chain      %s\n", jget_str(j, "chain_id"));
	printf("height     %" PRIu64, jget_u64(j, "height"));
	if (jget_u64(j, "time_ns")) {
		char when[64];

		printf(" (block time %s)", fmt_local_time(jget_u64(j, "time_ns"), when,
							   sizeof(when)));
	}
	printf("\n");
	printf("block      %s\n", jget_str(j, "block_id"));
	printf("node       %s%s%s\n", jget_str(j, "node"),
	       json_object_get(j, "role") ? "  " : "", json_object_get(j, "role") ?
	       jget_str(j, "role") : "");
	show_self(j);
	show_sync(j);
	show_quorum(j);
	show_mempool(j);
	show_consensus(j);
	printf("usage log  %" PRIu64 " records, root %s\n", jget_u64(j, "usage_size"),
	       jget_str(j, "usage_root"));
	show_provider(co.node, jget_str(j, "node"));
	prices = json_object_get(j, "prices");
	if (json_is_object(prices))
		printf("prices     %s per vCPU-s, %s per GiB-s, %s per GPU-s (configured)\n",
		       fmt_amount(jget_u64(prices, "vcpu_second"), a),
		       fmt_amount(jget_u64(prices, "mem_gib_second"), b),
		       fmt_amount(jget_u64(prices, "gpu_second"), g));
	if (json_object_get(j, "interval_s"))
		printf("interval   %" PRIu64 " s\n", jget_u64(j, "interval_s"));
	json_array_foreach(json_object_get(j, "validators"), i, v) {
		if (json_is_string(v))
			printf("validator  %s\n", json_string_value(v));
		else if (json_is_number(json_object_get(v, "power_pct")))
			printf("validator  %s  stake %s  power %.2f%%  signed %" PRIu64
			       "  missed %" PRIu64 "\n", jget_str(v, "pubkey"),
			       fmt_amount(jget_u64(v, "stake"), a),
			       json_number_value(json_object_get(v, "power_pct")),
			       jget_u64(v, "signed_blocks"), jget_u64(v, "missed_blocks"));
		else
			printf("validator  %s  stake %s\n", jget_str(v, "pubkey"),
			       fmt_amount(jget_u64(v, "stake"), a));
	}
	show_peers(j);
	json_decref(j);
	return EXIT_OK;
}
