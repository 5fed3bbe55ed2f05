/* The node's HTTP API (docs/PROTOCOL.md): one handler per route. Handlers
 * only read the ledger or hand it a signed transaction; they never trust the
 * request beyond what the strict decoders accept. */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "daemon/api/routes.h"
#include "daemon/api/txbody.h"
#include "daemon/api/views.h"
#include "daemon/clock.h"
#include "daemon/keeper/keeper.h"
#include "lib/codec.h"
#include "lib/decimal.h"
#include "lib/errors.h"
#include "lib/json_u64.h"

#define BLOCKS_PER_CALL 1000

static uint64_t now_s(void)
{
	return (uint64_t)time(NULL);
}

/* A path segment that must be 64 hex characters (an id or a key). */
static int seg_hash(const struct http_request *req, size_t i, uint8_t out[HASH_LEN],
		    struct http_response *resp)
{
	if (i >= req->nseg || hex_decode(req->seg[i], out, HASH_LEN)) {
		http_error(resp, 400, "encoding", "'%s' is not 64 hex characters",
			   i < req->nseg ? req->seg[i] : "");
		return TALLY_E_ENCODING;
	}
	return 0;
}

static int seg_u64(const struct http_request *req, size_t i, uint64_t *out,
		   struct http_response *resp)
{
	const char *s = req->seg[i];
	int rc = decimal_u64(s, strlen(s), out);

	if (rc)
		http_error(resp, 400, "encoding", "'%s' is not a height%s", s,
			   rc == TALLY_E_RANGE ? " (above 2^64 - 1)" : "");
	return rc;
}

/* Query argument key as a decimal u64 (lib/decimal.h) into *out: 0, or 404
 * when absent (*out untouched), or 400 with the error answered, naming the
 * argument. */
static int query_u64(const struct http_request *req, const char *key, uint64_t *out,
		     struct http_response *resp)
{
	int rc = http_query_u64(req, key, out);

	if (rc == TALLY_E_NOTFOUND)
		return 404;
	if (rc) {
		http_error(resp, 400, "encoding", "%s must be a decimal integer (digits only, no"
			   " leading zero) of at most 2^64 - 1", key);
		return 400;
	}
	return 0;
}

static void get_healthz(void *ctx, const struct http_request *req, struct http_response *resp)
{
	(void)ctx;
	(void)req;
	resp->status = 200;
	resp->text = strdup("ok\n");
}

static json_t *prices_json(const struct lease_prices *p)
{
	return json_pack("{s:o, s:o, s:o}", "vcpu_second", json_u64(p->vcpu_second),
			 "mem_gib_second", json_u64(p->mem_gib_second), "gpu_second",
			 json_u64(p->gpu_second));
}

#define STATUS_PEERS_MAX 256

/* The peer transport's figures; a node without one is its own chain. */
static void net_snapshot(struct api *n, const struct ledger_status *ls, struct net_stats *st,
			 struct net_peer_info *peers, size_t max, size_t *npeers)
{
	if (n->net) {
		net_status(n->net, st, peers, max, npeers);
		return;
	}
	memset(st, 0, sizeof(*st));
	st->caught_up = true;
	st->height = ls->height;
	*npeers = 0;
}

/* Per validator: its share of the voting power (stake / total stake) and,
 * since this node started, the blocks the chain's certificate holds its
 * precommit for and those it missed (ledger_vote_stats). */
static json_t *valset_with_power(struct api *n, const struct validator_set *vals)
{
	struct ledger_vote_stat *vs = calloc(VALIDATORS_MAX, sizeof(*vs));
	json_t *arr = view_valset(vals), *v;
	uint64_t total = valset_total_stake(vals);
	size_t i, nvs = 0;

	if (vs)
		ledger_vote_stats(n->ledger, vs, VALIDATORS_MAX, &nvs);
	json_array_foreach(arr, i, v) {
		uint64_t signed_blocks = 0, missed = 0;

		for (size_t j = 0; j < nvs; j++)
			if (!memcmp(vs[j].validator, vals->v[i].pubkey, PUBKEY_LEN)) {
				signed_blocks = vs[j].signed_blocks;
				missed = vs[j].missed_blocks;
			}
		json_object_set_new(v, "power_pct", json_real(total ? 100.0 * (double)vals->v[i].stake /
								 (double)total : 0.0));
		json_object_set_new(v, "signed_blocks", json_u64(signed_blocks));
		json_object_set_new(v, "missed_blocks", json_u64(missed));
	}
	free(vs);
	return arr;
}

/* The consensus engine's state, or JSON null on a node that runs none. */
static json_t *consensus_json(struct api *n)
{
	struct engine_status es;
	char hex[2 * PUBKEY_LEN + 1];

	if (ledger_consensus_status(n->ledger, &es))
		return json_null();
	hex_encode(es.proposer, PUBKEY_LEN, hex);
	return json_pack("{s:o, s:I, s:s, s:b, s:b, s:s, s:I, s:I, s:o, s:o, s:o}",
			 "height", json_u64(es.height), "round", (json_int_t)es.round,
			 "step", cs_step_name(es.step), "idle", es.idle, "validator", es.validator,
			 "proposer", hex, "locked_round", (json_int_t)es.locked_round,
			 "valid_round", (json_int_t)es.valid_round,
			 "committed", json_u64(es.committed), "evidence", json_u64(es.evidence),
			 "wal_replayed", json_u64(es.replayed));
}

/* The voting power this node can hear from: its own (a validator) and its
 * connected peers' that are validators, in percent of the set's, and
 * whether that is more than 2/3 (what a block's certificate needs). Below
 * it the node cannot decide blocks with its peers: the chain stalls for it
 * unless peers it cannot see carry the votes (docs/OPERATING.md). */
static json_t *quorum_json(struct api *n, const struct validator_set *vals,
			   const struct net_peer_info *p, size_t np)
{
	unsigned __int128 reach = 0, total = valset_total_stake(vals);

	for (size_t i = 0; i < vals->n; i++) {
		bool heard = !memcmp(vals->v[i].pubkey, n->node_pub, PUBKEY_LEN);

		for (size_t k = 0; !heard && k < np; k++)
			heard = !memcmp(vals->v[i].pubkey, p[k].key, PUBKEY_LEN);
		if (heard)
			reach += vals->v[i].stake;
	}
	return json_pack("{s:f, s:b}", "reachable_power_pct",
			 total ? 100.0 * (double)reach / (double)total : 0.0,
			 "reachable", total && 3 * reach > 2 * total);
}

static json_t *peers_json(const struct net_stats *ns, const struct net_peer_info *p, size_t np)
{
	json_t *list = json_array();

	for (size_t i = 0; i < np; i++)
		json_array_append_new(list, json_pack("{s:o, s:s, s:s, s:o, s:o, s:o, s:o}",
					"key", json_hex(p[i].key, PUBKEY_LEN), "address", p[i].addr,
					"direction", p[i].outbound ? "dialed" : "inbound",
					"height", json_u64(p[i].height),
					"connected_s", json_u64(p[i].connected_s),
					"msgs_in", json_u64(p[i].msgs_in),
					"msgs_out", json_u64(p[i].msgs_out)));
	return json_pack("{s:o, s:I}", "connected", list, "configured", (json_int_t)ns->configured);
}

/* This node's key as a validator, read under the ledger's lock. */
struct self_read {
	const uint8_t *pub;
	struct validator_entry v;
	struct liveness l;
	bool found;
};

static int self_read(void *ctx, struct state *s)
{
	struct self_read *sr = ctx;
	int rc = state_validator_get(s, sr->pub, &sr->v);

	if (rc == TALLY_E_NOTFOUND)
		return 0;
	if (!rc)
		rc = state_liveness_get(s, sr->pub, &sr->l);
	if (rc == TALLY_E_NOTFOUND)
		rc = 0;
	sr->found = !rc;
	return rc;
}

/* {"stake", "in_set", "jailed", "jailed_until"} of this node's key, or null
 * when it has no validator entry (never staked). */
static json_t *self_validator_json(struct api *n, const struct validator_set *vals)
{
	struct self_read sr = { .pub = n->node_pub };
	uint64_t height;
	bool in_set = false;

	memset(&sr.l, 0, sizeof(sr.l));
	if (ledger_read_state(n->ledger, self_read, &sr, &height) || !sr.found)
		return json_null();
	for (size_t i = 0; i < vals->n; i++)
		in_set = in_set || !memcmp(vals->v[i].pubkey, n->node_pub, PUBKEY_LEN);
	return json_pack("{s:o, s:b, s:b, s:o}", "stake", json_u64(sr.v.stake), "in_set", in_set,
			 "jailed", sr.v.jailed, "jailed_until", json_u64(sr.l.jailed_until));
}

static void get_status(void *ctx, const struct http_request *req, struct http_response *resp)
{
	struct api *n = ctx;
	struct ledger_status st;
	struct validator_set vals;
	struct net_stats ns;
	struct inbox_stats in = { 0 };
	struct net_peer_info *peers = calloc(STATUS_PEERS_MAX, sizeof(*peers));
	size_t np = 0;
	(void)req;

	if (!peers || ledger_status(n->ledger, &st) ||
	    ledger_valset(n->ledger, st.height + 1, &vals)) {
		free(peers);
		http_error(resp, 500, "internal", "cannot read the ledger status");
		return;
	}
	net_snapshot(n, &st, &ns, peers, STATUS_PEERS_MAX, &np);
	if (n->inbox)
		inbox_stats(n->inbox, &in);
	json_t *sync = json_pack("{s:b, s:o, s:o}", "caught_up", ns.caught_up,
				 "best_peer_height", json_u64(ns.best_peer_height),
				 "blocks_synced", json_u64(ns.blocks_synced));
	json_t *pj = peers_json(&ns, peers, np);
	json_t *quorum = quorum_json(n, &vals, peers, np);
	free(peers);
	/* The images it starts VMs of: none under --no-vms, whatever is
	 * configured, so that a tenant is told at once it is no provider. */
	json_t *images = json_array();
	for (size_t i = 0; n->keeper && i < n->cfg->nimages; i++)
		json_array_append_new(images, json_string(n->cfg->images[i].name));
	http_json(resp, 200, json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:I, s:I,"
				       " s:I, s:o, s:o, s:I, s:I}",
				       "chain_id", st.chain_id,
				       "genesis_hash", json_hex(st.genesis_hash, HASH_LEN),
				       "height", json_u64(st.height),
				       "block_id", json_hex(st.last_block_id, HASH_LEN),
				       "time_ns", json_u64(st.time_ns),
				       "state_root", json_hex(st.state_root, HASH_LEN),
				       "usage_size", json_u64(st.usage_size),
				       "usage_root", json_hex(st.usage_root, HASH_LEN),
				       "node", json_hex(n->node_pub, PUBKEY_LEN),
				       "mempool", (json_int_t)st.mempool_size,
				       "held", (json_int_t)st.mempool_held,
				       "inbox", (json_int_t)in.waiting,
				       "validators", valset_with_power(n, &vals),
				       "prices", prices_json(&n->cfg->prices),
				       "interval_s", (json_int_t)n->cfg->interval_s,
				       "vms", (json_int_t)(n->keeper ? keeper_vm_count(n->keeper) : 0)));
	json_object_set_new(resp->json, "images", images);
	json_object_set_new(resp->json, "sla_max_credit_ppm",
			    json_integer(n->cfg->sla_max_credit_ppm));
	json_object_set_new(resp->json, "sla_min_delay_ppm",
			    json_integer(n->cfg->sla_min_delay_ppm));
	json_object_set_new(resp->json, "runs_vms", json_boolean(n->keeper != NULL));
	/* The set of the next height, as the chain's STAKE, UNSTAKE and jails
	 * have made it, not the genesis's. */
	json_object_set_new(resp->json, "role", json_string(valset_find(&vals, n->node_pub)
							    ? "validator" : "full node"));
	json_object_set_new(resp->json, "self_validator", self_validator_json(n, &vals));
	json_object_set_new(resp->json, "peers", pj);
	json_object_set_new(resp->json, "sync", sync);
	json_object_set_new(resp->json, "quorum", quorum);
	json_object_set_new(resp->json, "consensus", consensus_json(n));
}

static void get_genesis(void *ctx, const struct http_request *req, struct http_response *resp)
{
	struct api *n = ctx;
	(void)req;

	resp->status = 200;
	resp->text = genesis_to_json(n->genesis);
	resp->content_type = "application/json";
	if (!resp->text)
		http_error(resp, 500, "internal", "out of memory");
}

/* An account as of one height: balance and nonce, stake, and the stake on
 * its way back (the sum of its unbonding entries and the first block at
 * whose end one is paid back, 0: none), read in one go so the figures
 * agree (an entry paid back is in the balance or in unbonding, never both
 * or neither). */
struct account_read {
	const uint8_t *pub;
	struct account a;
	struct validator_entry v;
	uint64_t unbonding, next_release;
};

static int add_owned(void *ctx, const struct unbonding *u)
{
	struct account_read *r = ctx;

	if (memcmp(u->owner, r->pub, PUBKEY_LEN))
		return 0;
	if (u->amount > UINT64_MAX - r->unbonding)
		return TALLY_E_OVERFLOW;
	r->unbonding += u->amount;
	if (!r->next_release || u->release < r->next_release)
		r->next_release = u->release;
	return 0;
}

static int read_account(void *ctx, struct state *s)
{
	struct account_read *r = ctx;
	int rc = state_account_get(s, r->pub, &r->a);

	if (rc && rc != TALLY_E_NOTFOUND)
		return rc;
	rc = state_validator_get(s, r->pub, &r->v);
	if (rc && rc != TALLY_E_NOTFOUND)
		return rc;
	return state_unbonding_each(s, add_owned, r);
}

static void get_account(void *ctx, const struct http_request *req, struct http_response *resp)
{
	struct api *n = ctx;
	uint8_t pub[PUBKEY_LEN];
	struct account_read r = { .pub = pub };
	uint64_t at, next;
	int rc;

	if (seg_hash(req, 2, pub, resp))
		return;
	if ((rc = ledger_read_state(n->ledger, read_account, &r, &at))) {
		http_error_from(resp, rc, "cannot read the account");
		return;
	}
	/* The nonce a new transaction of this account takes here: after the
	 * ones waiting in this node's mempool, so that commands sent one after
	 * another do not reuse a nonce before the first commits. */
	next = r.a.nonce;
	if (ledger_next_nonce(n->ledger, pub, &next) || next < r.a.nonce)
		next = r.a.nonce;
	/* Ids are echoed in their canonical lowercase, whatever case was asked. */
	http_json(resp, 200, json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "pubkey",
				       json_hex(pub, PUBKEY_LEN),
				       "balance", json_u64(r.a.balance), "nonce",
				       json_u64(r.a.nonce), "next_nonce", json_u64(next),
				       "stake", json_u64(r.v.stake), "unbonding",
				       json_u64(r.unbonding), "unbonding_release",
				       json_u64(r.next_release)));
}

static int parse_state(const char *s, uint8_t *state)
{
	for (uint8_t st = LEASE_OPENED; st <= LEASE_STATE_MAX; st++) {
		if (!strcmp(s, lease_state_name(st))) {
			*state = st;
			return 0;
		}
	}
	return -1;
}

static void get_leases(void *ctx, const struct http_request *req, struct http_response *resp)
{
	struct api *n = ctx;
	uint8_t tenant[PUBKEY_LEN], provider[PUBKEY_LEN];
	struct lease_filter f = { 0 };
	const char *q;
	struct lease *leases = NULL;
	size_t count = 0;

	if ((q = http_query(req, "tenant"))) {
		if (hex_decode(q, tenant, PUBKEY_LEN)) {
			http_error(resp, 400, "encoding", "tenant is not 64 hex characters");
			return;
		}
		f.tenant = tenant;
	}
	if ((q = http_query(req, "provider"))) {
		if (hex_decode(q, provider, PUBKEY_LEN)) {
			http_error(resp, 400, "encoding", "provider is not 64 hex characters");
			return;
		}
		f.provider = provider;
	}
	if ((q = http_query(req, "state")) && parse_state(q, &f.state)) {
		http_error(resp, 400, "invalid", "state must be opened, running, closing or closed");
		return;
	}
	uint64_t height = 0;
	int rc = ledger_leases_at(n->ledger, &f, &leases, &count, &height);
	if (rc) {
		http_error_from(resp, rc, "cannot list leases");
		return;
	}
	json_t *arr = json_array();
	for (size_t i = 0; i < count; i++)
		json_array_append_new(arr, view_lease(&leases[i]));
	free(leases);
	/* The height tells an exporter which state these leases are. */
	http_json(resp, 200, json_pack("{s:o,s:o}", "leases", arr, "height", json_u64(height)));
}

static int find_lease(struct api *n, const struct http_request *req, struct lease *l,
		      struct http_response *resp)
{
	uint8_t id[LEASE_ID_LEN];

	if (seg_hash(req, 2, id, resp))
		return TALLY_E_ENCODING;
	int rc = ledger_lease(n->ledger, id, l);
	if (rc == TALLY_E_NOTFOUND)
		http_error(resp, 404, "not_found", "no lease %s", req->seg[2]);
	else if (rc)
		http_error_from(resp, rc, "cannot read the lease");
	return rc;
}

static void get_lease(void *ctx, const struct http_request *req, struct http_response *resp)
{
	struct lease l;

	if (!find_lease(ctx, req, &l, resp))
		http_json(resp, 200, view_lease(&l));
}

/* The proof's encoding as hex, freeing the proof; NULL (and a 500 answered)
 * when it cannot be encoded. */
static json_t *proof_hex(struct state_proof *p, struct http_response *resp)
{
	struct enc e;
	json_t *j = NULL;

	enc_init(&e);
	state_proof_encode(&e, p);
	state_proof_free(p);
	if (enc_error(&e))
		http_error_from(resp, TALLY_E_NOMEM, "cannot encode the proof");
	else
		j = json_hex(e.buf, e.len);
	enc_free(&e);
	return j;
}

/* The lease's state proven against the committed state root: what an
 * exporter writes and an auditor checks (docs/FORMATS.md, "State proofs"). */
static void get_lease_proof(void *ctx, const struct http_request *req,
			    struct http_response *resp)
{
	struct api *n = ctx;
	uint8_t id[LEASE_ID_LEN], key[STATE_KEY_LEN], root[HASH_LEN];
	struct state_proof p;
	uint64_t height;
	int rc;

	if (seg_hash(req, 2, id, resp))
		return;
	state_key(key, STATE_KEY_LEASE, id);
	rc = ledger_state_proof(n->ledger, key, &p, &height, root);
	if (rc) {
		http_error_from(resp, rc, "cannot prove the lease's state");
		return;
	}
	/* The proof holds the whole bucket: a lease it does not hold is not
	 * in the state (and the proof says so), but this route is for leases. */
	if (state_proof_lease_value(&p, id, &(struct lease){ 0 }, NULL) == TALLY_E_NOTFOUND) {
		state_proof_free(&p);
		http_error(resp, 404, "not_found", "no lease %s", req->seg[2]);
		return;
	}
	json_t *hex = proof_hex(&p, resp);
	if (!hex)
		return;
	http_json(resp, 200, json_pack("{s:o,s:o,s:o,s:o}", "id", json_hex(id, LEASE_ID_LEN),
				       "height", json_u64(height), "state_root",
				       json_hex(root, HASH_LEN), "proof", hex));
}

static void get_providers(void *ctx, const struct http_request *req,
			  struct http_response *resp)
{
	struct api *n = ctx;
	uint8_t (*keys)[PUBKEY_LEN] = NULL;
	struct provider_entry *e = NULL;
	uint64_t height = 0;
	size_t count = 0;
	json_t *arr;
	int rc;

	(void)req;
	rc = ledger_providers(n->ledger, &keys, &e, &count, &height);
	if (rc) {
		http_error_from(resp, rc, "cannot read the provider registry");
		return;
	}
	arr = json_array();
	for (size_t i = 0; i < count; i++)
		json_array_append_new(arr, view_provider(keys[i], &e[i]));
	free(keys);
	free(e);
	http_json(resp, 200, json_pack("{s:o, s:o}", "height", json_u64(height), "providers",
				       arr));
}

/* One provider's entry (withdrawn ones too) with its state proof. */
static void get_provider(void *ctx, const struct http_request *req, struct http_response *resp)
{
	struct api *n = ctx;
	uint8_t pub[PUBKEY_LEN], key[STATE_KEY_LEN], root[HASH_LEN];
	struct provider_entry pe;
	struct state_proof p;
	uint64_t height;
	int rc;

	if (seg_hash(req, 2, pub, resp))
		return;
	state_key(key, STATE_KEY_PROVIDER, pub);
	rc = ledger_state_proof(n->ledger, key, &p, &height, root);
	if (rc) {
		http_error_from(resp, rc, "cannot prove the provider's entry");
		return;
	}
	rc = state_proof_provider_value(&p, pub, &pe);
	if (rc) {
		state_proof_free(&p);
		if (rc == TALLY_E_NOTFOUND)
			http_error(resp, 404, "not_found", "provider %s has never announced itself",
				   req->seg[2]);
		else
			http_error_from(resp, rc, "the provider's entry does not decode");
		return;
	}
	json_t *hex = proof_hex(&p, resp);
	if (!hex)
		return;
	json_t *j = view_provider(pub, &pe);
	json_object_set_new(j, "state_height", json_u64(height));
	json_object_set_new(j, "state_root", json_hex(root, HASH_LEN));
	json_object_set_new(j, "proof", hex);
	http_json(resp, 200, j);
}

/* A record and its charge; *carry is the lease's settlement carry before
 * it (zero before seq 0), advanced past it. */
static json_t *usage_entry(const struct lease *l, const struct ledger_usage *u,
			   struct settle_carry *carry)
{
	struct tx t;
	struct usage_charge charge = { 0 };

	if (tx_decode(&t, u->tx, u->tx_len) || t.kind != TX_USAGE)
		return NULL;
	settle_usage(&l->contract, carry, &t.u.usage, &charge, carry);
	return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "seq", json_u64(u->seq),
			 "index", json_u64(u->index), "height", json_u64(u->height),
			 "hash", json_hex(u->tx_hash, HASH_LEN), "tx", json_hex(u->tx, u->tx_len),
			 "record", view_usage_record(&t.u.usage), "charge", view_charge(&charge));
}

static void get_lease_usage(void *ctx, const struct http_request *req,
			    struct http_response *resp)
{
	struct api *n = ctx;
	struct lease l;
	struct ledger_usage *u = NULL;
	size_t count = 0;

	if (find_lease(n, req, &l, resp))
		return;
	int rc = ledger_lease_usage(n->ledger, l.id, &u, &count);
	if (rc) {
		http_error_from(resp, rc, "cannot read usage records");
		return;
	}
	json_t *arr = json_array();
	struct settle_carry carry = { 0 };
	/* In seq order from 0, as the chain charged them. */
	for (size_t i = 0; i < count; i++)
		json_array_append_new(arr, usage_entry(&l, &u[i], &carry));
	ledger_usage_free(u, count);
	http_json(resp, 200, json_pack("{s:o}", "records", arr));
}

/* Only the lease's tenant may read this, so the checks that need no replay
 * state come first: a stranger's request, or one for a lease this node runs
 * no VM for, is refused before its nonce is recorded (docs/PROTOCOL.md). */
static void get_lease_private(void *ctx, const struct http_request *req,
			      struct http_response *resp)
{
	struct api *n = ctx;
	struct lease l;
	struct auth_signed as;
	json_t *info = NULL;

	if (!req->tls && !req->from_loopback) {
		http_error(resp, 403, "tls_required", "private reads from another host need the "
			   "API over TLS ([api] tls_cert and tls_key)");
		return;
	}
	if (auth_verify(req, n->genesis_hash, now_s(), &as, resp))
		return;
	if (find_lease(n, req, &l, resp))
		return;
	if (memcmp(as.key, l.contract.tenant, PUBKEY_LEN)) {
		http_error(resp, 403, "unauthorized", "only the lease's tenant may read this");
		return;
	}
	int rc = n->keeper ? keeper_vm_private(n->keeper, l.id, &info) : TALLY_E_NOTFOUND;
	if (rc == TALLY_E_NOTFOUND) {
		struct provider_entry pe;
		char key[2 * PUBKEY_LEN + 1];

		hex_encode(l.contract.provider, PUBKEY_LEN, key);
		/* Another node's lease: say where its VM is. */
		if (memcmp(l.contract.provider, n->node_pub, PUBKEY_LEN) &&
		    !ledger_provider(n->ledger, l.contract.provider, &pe) &&
		    !provider_offer_withdrawn(&pe.offer))
			http_error(resp, 404, "not_found", "this node runs no VM for lease %s (state"
				   " %s): its provider is %.16s, whose node is at %s (ask it: --node"
				   " %s)", req->seg[2], lease_state_name(l.state), key,
				   pe.offer.endpoint, pe.offer.endpoint);
		else if (memcmp(l.contract.provider, n->node_pub, PUBKEY_LEN))
			http_error(resp, 404, "not_found", "this node runs no VM for lease %s (state"
				   " %s): its provider is %.16s, another node", req->seg[2],
				   lease_state_name(l.state), key);
		else if (!n->keeper)
			http_error(resp, 404, "not_found", "this node runs no VM for lease %s"
				   " (state %s): it was started with --no-vms, so it runs no VMs at"
				   " all", req->seg[2], lease_state_name(l.state));
		else
			http_error(resp, 404, "not_found", "this node runs no VM for lease %s"
				   " (state %s)", req->seg[2], lease_state_name(l.state));
		return;
	}
	if (rc) {
		http_error_from(resp, rc, "cannot read the VM");
		return;
	}
	if (auth_spend_nonce(&n->auth, &as, now_s(), resp)) {
		json_decref(info);
		return;
	}
	http_json(resp, 200, info);
}

static json_t *block_entry(struct api *n, uint64_t height, int *rc)
{
	struct stored_block sb;
	struct block_header h;

	*rc = ledger_block_raw(n->ledger, height, &sb);
	if (*rc)
		return NULL;
	*rc = header_decode(&h, sb.header, sb.header_len);
	json_t *j = *rc ? NULL : json_pack("{s:o, s:o, s:o, s:o, s:o}", "height",
					   json_u64(height), "id", json_hex(sb.id, HASH_LEN),
					   "header", view_header(&h),
					   "block", json_hex(sb.body, sb.body_len),
					   "cert", json_hex(sb.cert, sb.cert_len));
	stored_block_free(&sb);
	return j;
}

static void get_block(void *ctx, const struct http_request *req, struct http_response *resp)
{
	uint64_t height;
	int rc;

	if (seg_u64(req, 2, &height, resp))
		return;
	json_t *j = block_entry(ctx, height, &rc);
	if (rc == TALLY_E_NOTFOUND)
		http_error(resp, 404, "not_found", "no block at height %" PRIu64, height);
	else if (rc)
		http_error_from(resp, rc, "cannot read the block");
	else
		http_json(resp, 200, j);
}

static void get_blocks(void *ctx, const struct http_request *req, struct http_response *resp)
{
	struct api *n = ctx;
	struct ledger_status st;
	uint64_t from = 1, to;

	if (ledger_status(n->ledger, &st)) {
		http_error(resp, 500, "internal", "cannot read the ledger status");
		return;
	}
	to = st.height;
	if (query_u64(req, "from", &from, resp) == 400 || query_u64(req, "to", &to, resp) == 400)
		return;
	/* from = to + 1 asks for nothing (a follower at the tip): no error. */
	if (from == 0 || (to != UINT64_MAX && from > to + 1)) {
		http_error(resp, 400, "range", "from must be at least 1 and at most to + 1, not"
			   " %" PRIu64 " (to %" PRIu64 ")", from, to);
		return;
	}
	if (to > st.height)
		to = st.height;
	if (to >= from && to - from >= BLOCKS_PER_CALL)
		to = from + BLOCKS_PER_CALL - 1;
	json_t *arr = json_array();
	for (uint64_t h = from; h <= to; h++) {
		int rc;
		json_t *e = block_entry(n, h, &rc);
		if (rc) {
			json_decref(arr);
			http_error_from(resp, rc, "cannot read a block");
			return;
		}
		json_array_append_new(arr, e);
	}
	http_json(resp, 200, json_pack("{s:o, s:o}", "blocks", arr, "height",
				       json_u64(st.height)));
}

static void get_validators(void *ctx, const struct http_request *req,
			   struct http_response *resp)
{
	struct api *n = ctx;
	struct ledger_status st;
	struct validator_set vals;
	uint64_t height;

	if (ledger_status(n->ledger, &st)) {
		http_error(resp, 500, "internal", "cannot read the ledger status");
		return;
	}
	height = st.height;
	if (query_u64(req, "height", &height, resp) == 400)
		return;
	if (height > st.height) {
		http_error(resp, 400, "range", "height must be at most %" PRIu64, st.height);
		return;
	}
	int rc = ledger_valset(n->ledger, height + 1, &vals);
	if (rc) {
		http_error_from(resp, rc, "cannot read the validator set");
		return;
	}
	http_json(resp, 200, json_pack("{s:o, s:o}", "height", json_u64(height),
				       "validators", view_valset(&vals)));
}

/* The staking state read under the ledger's lock: parameters, every
 * validator entry with its jail and liveness, every unbonding entry. */
struct staking_read {
	struct chain_params p;
	json_t *validators, *unbonding;
	struct state *s;
};

static int staking_validator(void *ctx, const uint8_t pub[PUBKEY_LEN],
			     const struct validator_entry *v)
{
	struct staking_read *sr = ctx;
	struct liveness l;
	int rc = state_liveness_get(sr->s, pub, &l);

	if (rc && rc != TALLY_E_NOTFOUND)
		return rc;
	json_array_append_new(sr->validators,
			      json_pack("{s:o, s:o, s:b, s:o, s:o}", "pubkey", json_hex(pub, PUBKEY_LEN),
					"stake", json_u64(v->stake), "jailed", v->jailed,
					"jailed_until", json_u64(l.jailed_until),
					"missed_in_a_row", json_u64(l.missed)));
	return 0;
}

static int staking_unbonding(void *ctx, const struct unbonding *u)
{
	struct staking_read *sr = ctx;

	json_array_append_new(sr->unbonding,
			      json_pack("{s:o, s:o, s:o, s:o}", "owner", json_hex(u->owner, PUBKEY_LEN),
					"amount", json_u64(u->amount), "since", json_u64(u->since),
					"release", json_u64(u->release)));
	return 0;
}

static int staking_read(void *ctx, struct state *s)
{
	struct staking_read *sr = ctx;
	int rc = state_params(s, &sr->p);

	sr->s = s;
	if (!rc)
		rc = state_validator_each(s, staking_validator, sr);
	if (!rc)
		rc = state_unbonding_each(s, staking_unbonding, sr);
	return rc;
}

/* GET /v1/staking: the set that signs the next block (with power and this
 * node's vote counts), every staker, the unbonding entries and the chain's
 * parameters, all of one height. */
static void get_staking(void *ctx, const struct http_request *req, struct http_response *resp)
{
	struct api *n = ctx;
	struct staking_read sr = { .validators = json_array(), .unbonding = json_array() };
	struct validator_set vals;
	uint64_t height;
	int rc;

	(void)req;
	rc = ledger_read_state(n->ledger, staking_read, &sr, &height);
	if (!rc)
		rc = ledger_valset(n->ledger, height + 1, &vals);
	if (rc) {
		json_decref(sr.validators);
		json_decref(sr.unbonding);
		http_error_from(resp, rc, "cannot read the staking state");
		return;
	}
	http_json(resp, 200, json_pack(
		"{s:o, s:o, s:o, s:o, s:{s:o, s:I, s:o, s:o, s:I, s:o}}",
		"height", json_u64(height), "set", valset_with_power(n, &vals),
		"validators", sr.validators, "unbonding", sr.unbonding, "params",
		"unbonding_blocks", json_u64(sr.p.unbonding_blocks),
		"slash_ppm", (json_int_t)sr.p.slash_ppm,
		"jail_blocks", json_u64(sr.p.jail_blocks),
		"min_self_stake", json_u64(sr.p.min_self_stake),
		"max_validators", (json_int_t)sr.p.max_validators,
		"liveness_window", json_u64(sr.p.liveness_window)));
}

static void get_tx(void *ctx, const struct http_request *req, struct http_response *resp)
{
	struct api *n = ctx;
	uint8_t hash[HASH_LEN];
	uint8_t *bytes = NULL;
	size_t len = 0;
	uint64_t height;
	uint32_t index;
	struct tx t;

	if (seg_hash(req, 2, hash, resp))
		return;
	int rc = ledger_tx(n->ledger, hash, &bytes, &len, &height, &index);
	if (rc == TALLY_E_NOTFOUND) {
		http_error(resp, 404, "not_found", "transaction %s is not committed", req->seg[2]);
		return;
	}
	if (rc || tx_decode(&t, bytes, len)) {
		free(bytes);
		http_error(resp, 500, "internal", "cannot read the transaction");
		return;
	}
	http_json(resp, 200, json_pack("{s:o, s:o, s:I, s:s, s:o}", "hash",
				       json_hex(hash, HASH_LEN),
				       "height", json_u64(height), "index", (json_int_t)index,
				       "kind", tx_kind_name(t.kind), "tx", json_hex(bytes, len)));
	free(bytes);
}

/* GET /v1/tx/{hash}/status: what became of a transaction this node
 * admitted: committed (and where), pending, dropped (and why), or unknown. */
static void get_tx_status(void *ctx, const struct http_request *req, struct http_response *resp)
{
	static const char *const names[] = {
		[LEDGER_TX_UNKNOWN] = "unknown", [LEDGER_TX_PENDING] = "pending",
		[LEDGER_TX_HELD] = "held",
		[LEDGER_TX_COMMITTED] = "committed", [LEDGER_TX_DROPPED] = "dropped",
	};
	struct api *n = ctx;
	struct ledger_tx_status st;
	struct inbox_status in = { 0 };
	uint8_t hash[HASH_LEN];
	json_t *j;

	if (seg_hash(req, 2, hash, resp))
		return;
	/* The inbox first: a transaction leaves it only once the ledger has
	 * it or it is refused, so asking in this order misses none. */
	if (n->inbox)
		inbox_status(n->inbox, hash, &in);
	if (in.state == INBOX_RECEIVED) {
		http_json(resp, 200, json_pack("{s:o, s:s}", "hash", json_hex(hash, HASH_LEN),
					       "status", "received"));
		return;
	}
	int rc = ledger_tx_status(n->ledger, hash, &st);
	if (rc) {
		http_error_from(resp, rc, "cannot read the transaction's status");
		return;
	}
	/* Refused when its turn came, and not taken since (sent again). */
	if (st.status == LEDGER_TX_UNKNOWN && in.state == INBOX_REFUSED) {
		char msg[HTTP_ERROR_MAX];
		const char *code;
		unsigned status = http_status_of(in.rc, &code);

		http_clean_text(msg, sizeof(msg), in.why);
		http_json(resp, 200, json_pack("{s:o, s:s, s:i, s:s, s:s}", "hash",
					       json_hex(hash, HASH_LEN), "status", "refused",
					       "http_status", (int)status, "code", code,
					       "reason", msg));
		return;
	}
	j = json_pack("{s:o, s:s}", "hash", json_hex(hash, HASH_LEN), "status", names[st.status]);
	if (st.status == LEDGER_TX_COMMITTED || st.status == LEDGER_TX_DROPPED)
		json_object_set_new(j, "height", json_u64(st.height));
	if (st.status == LEDGER_TX_DROPPED)
		json_object_set_new(j, "reason", json_string(st.why));
	http_json(resp, 200, j);
}

static json_t *proof_json(uint8_t proof[][HASH_LEN], size_t count)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < count; i++)
		json_array_append_new(arr, json_hex(proof[i], HASH_LEN));
	return arr;
}

/* Proofs are only for trees the log has had: sizes up to its current one. */
static int usage_size_check(struct api *n, uint64_t size, struct http_response *resp)
{
	struct ledger_status st;

	if (ledger_status(n->ledger, &st)) {
		http_error(resp, 500, "internal", "cannot read the ledger status");
		return -1;
	}
	if (size > st.usage_size) {
		http_error(resp, 400, "range", "size %" PRIu64 " is beyond the usage log's %" PRIu64
			   " records", size, st.usage_size);
		return -1;
	}
	return 0;
}

static void get_inclusion(void *ctx, const struct http_request *req,
			  struct http_response *resp)
{
	struct api *n = ctx;
	uint8_t proof[MERKLE_MAX_PROOF][HASH_LEN], leaf[HASH_LEN], root[HASH_LEN];
	uint64_t index, size;
	size_t count;

	if (query_u64(req, "index", &index, resp) == 400 ||
	    query_u64(req, "size", &size, resp) == 400)
		return;
	if (!http_query(req, "index") || !http_query(req, "size")) {
		http_error(resp, 400, "invalid", "index and size are required decimal integers");
		return;
	}
	if (usage_size_check(n, size, resp))
		return;
	if (index >= size) {
		http_error(resp, 400, "range", "index %" PRIu64 " is not below size %" PRIu64, index,
			   size);
		return;
	}
	int rc = ledger_usage_inclusion(n->ledger, index, size, leaf, proof, &count);
	if (!rc)
		rc = ledger_usage_root(n->ledger, size, root);
	if (rc) {
		http_error_from(resp, rc,
				"no such index or size in the usage log");
		return;
	}
	http_json(resp, 200, json_pack("{s:o, s:o, s:o, s:o, s:o}", "index", json_u64(index),
				       "size", json_u64(size), "leaf_hash",
				       json_hex(leaf, HASH_LEN), "root", json_hex(root, HASH_LEN),
				       "proof", proof_json(proof, count)));
}

static void get_consistency(void *ctx, const struct http_request *req,
			    struct http_response *resp)
{
	struct api *n = ctx;
	uint8_t proof[MERKLE_MAX_PROOF][HASH_LEN], old_root[HASH_LEN], new_root[HASH_LEN];
	uint64_t old_size, new_size;
	size_t count;

	if (query_u64(req, "old", &old_size, resp) == 400 ||
	    query_u64(req, "new", &new_size, resp) == 400)
		return;
	if (!http_query(req, "old") || !http_query(req, "new")) {
		http_error(resp, 400, "invalid", "old and new are required decimal integers");
		return;
	}
	if (usage_size_check(n, new_size, resp))
		return;
	if (old_size > new_size) {
		http_error(resp, 400, "range", "old size %" PRIu64 " is above new size %" PRIu64,
			   old_size, new_size);
		return;
	}
	int rc = ledger_usage_consistency(n->ledger, old_size, new_size, proof, &count);
	if (!rc)
		rc = ledger_usage_root(n->ledger, old_size, old_root);
	if (!rc)
		rc = ledger_usage_root(n->ledger, new_size, new_root);
	if (rc) {
		http_error_from(resp, rc,
				"no such sizes in the usage log");
		return;
	}
	http_json(resp, 200, json_pack("{s:o, s:o, s:o, s:o, s:o}", "old", json_u64(old_size),
				       "new", json_u64(new_size), "old_root",
				       json_hex(old_root, HASH_LEN), "new_root",
				       json_hex(new_root, HASH_LEN), "proof",
				       proof_json(proof, count)));
}

static void get_node_vms(void *ctx, const struct http_request *req, struct http_response *resp)
{
	struct api *n = ctx;
	(void)req;

	if (!n->keeper) {
		/* Said, so that an empty list is not read as an idle host. */
		http_json(resp, 200, json_pack("{s:[],s:b}", "vms", "no_vms", 1));
		return;
	}
	http_json(resp, 200, keeper_vms_json(n->keeper));
}

/* A lease addressed to this node must also pass the node's own rules
 * (its images, capacity and current SLA bounds) before it is accepted: refusing it
 * later would move the tenant's deposit for nothing. Called once the
 * transaction is known valid, so a contract the chain refuses is refused
 * for that, not for the node's capacity. */
static int admit_lease(void *ctx, const struct tx *t, const uint8_t hash[HASH_LEN], char *why)
{
	struct api *n = ctx;

	if (!n->keeper || t->kind != TX_LEASE_OPEN ||
	    memcmp(t->u.open.provider, n->node_pub, PUBKEY_LEN))
		return 0;
	return keeper_admit(n->keeper, hash, &t->u.open, why);
}

static void release_lease(void *ctx, const uint8_t hash[HASH_LEN])
{
	struct api *n = ctx;

	if (n->keeper)
		keeper_release(n->keeper, hash);
}

int api_inbox_start(struct api *n, char *why)
{
	n->adm = (struct ledger_admission){ n, admit_lease, release_lease };
	n->inbox = inbox_new(n->ledger, n->genesis->chain_id, &n->adm, 0, why);
	return n->inbox ? 0 : TALLY_E_NOMEM;
}

void api_inbox_stop(struct api *n)
{
	inbox_free(n->inbox);
	n->inbox = NULL;
}

static void post_tx(void *ctx, const struct http_request *req, struct http_response *resp)
{
	struct api *n = ctx;
	json_error_t jerr;
	uint8_t hash[HASH_LEN];
	char why[WHY_MAX] = "";

	json_t *body = json_loadb((const char *)req->body, req->body_len, JSON_REJECT_DUPLICATES,
				  &jerr);
	const char *hex = json_string_value(json_object_get(body, "tx"));
	if (!body || !hex || json_object_size(body) != 1) {
		json_decref(body);
		http_error(resp, 400, "invalid", "body must be {\"tx\": \"<hex of a signed "
			   "transaction>\"}");
		return;
	}
	size_t hexlen = strlen(hex);
	if (hexlen % 2 || hexlen / 2 > TX_MAX_SIZE) {
		json_decref(body);
		http_error(resp, 400, "encoding", "tx is not hex of at most %d bytes", TX_MAX_SIZE);
		return;
	}
	uint8_t *bytes = malloc(hexlen / 2 + 1);
	if (!bytes || hex_decode(hex, bytes, hexlen / 2)) {
		free(bytes);
		json_decref(body);
		http_error(resp, 400, "encoding", "tx is not hex");
		return;
	}
	json_decref(body);
	if (n->inbox && http_prefers(req, "respond-async")) {
		int rc = inbox_put(n->inbox, bytes, hexlen / 2, now_s(), hash, why);

		free(bytes);
		resp->preference_applied = "respond-async";
		if (rc) {
			http_error_from(resp, rc, why);
			if (rc == TALLY_E_UNAVAILABLE)
				resp->retry_after_s = 1;
			return;
		}
		http_json(resp, 202, json_pack("{s:o, s:s}", "hash", json_hex(hash, HASH_LEN),
					       "status", "received"));
		return;
	}
	struct ledger_admission adm = { n, admit_lease, release_lease };
	bool held;
	int rc = ledger_submit_admitted(n->ledger, bytes, hexlen / 2, &adm, hash, &held, why);
	free(bytes);
	if (rc) {
		http_error_from(resp, rc, why);
		return;
	}
	http_json(resp, 202, json_pack("{s:o, s:s}", "hash", json_hex(hash, HASH_LEN), "status",
				       held ? "held" : "pending"));
}

/* One item's answer in a batch: what POST /v1/tx would have answered
 * (received: it went to the inbox, asynchronously). */
static json_t *batch_answer(const struct ledger_batch_item *it, bool received)
{
	char msg[HTTP_ERROR_MAX];
	const char *code;
	unsigned status;

	if (!it->rc)
		return json_pack("{s:o, s:s}", "hash", json_hex(it->hash, HASH_LEN), "status",
				 received ? "received" : it->held ? "held" : "pending");
	status = http_status_of(it->rc, &code);
	http_clean_text(msg, sizeof(msg), it->why[0] ? it->why : tally_strerror(it->rc));
	return json_pack("{s:s, s:i, s:s, s:s}", "status", "refused", "http_status", (int)status,
			 "code", code, "error", msg);
}

/* Whether a request's Content-Type names the binary batch body (any
 * parameters after ';' aside). */
static bool is_octet_stream(const char *type)
{
	static const char want[] = "application/octet-stream";
	size_t n = sizeof(want) - 1;

	return type && !strncasecmp(type, want, n) &&
	       (type[n] == '\0' || type[n] == ';' || type[n] == ' ' || type[n] == '\t');
}

/* {"txs": [hex, ...]} into items[*count], the hex decoded into *bytes
 * (the caller frees both); or the whole body refused into resp (false). */
static bool txs_from_json(const struct http_request *req, struct http_response *resp,
			  struct ledger_batch_item **items, uint8_t **bytes, size_t *count)
{
	json_error_t jerr;
	json_t *body, *txs, *v;
	size_t i, at = 0, n;
	bool ok = false;

	body = json_loadb((const char *)req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
	txs = json_object_get(body, "txs");
	n = json_array_size(txs);
	if (!body || !json_is_array(txs) || json_object_size(body) != 1 || !n) {
		http_error(resp, 400, "invalid", "body must be {\"txs\": [\"<hex of a signed "
			   "transaction>\", ...]} with 1 to %d transactions", LEDGER_BATCH_MAX);
		goto out;
	}
	if (n > LEDGER_BATCH_MAX) {
		http_error(resp, 400, "too_long", "a batch holds at most %d transactions, not %zu;"
			   " nothing was submitted", LEDGER_BATCH_MAX, n);
		goto out;
	}
	json_array_foreach(txs, i, v) {
		if (!json_is_string(v)) {
			http_error(resp, 400, "invalid", "txs[%zu] is not a string; nothing was"
				   " submitted", i);
			goto out;
		}
	}
	/* The body is at most HTTP_BODY_MAX: its hex decodes into half that. */
	*items = calloc(n, sizeof(**items));
	*bytes = malloc(req->body_len / 2 + 1);
	if (!*items || !*bytes) {
		http_error(resp, 503, "unavailable", "no memory for a batch of %zu", n);
		goto out;
	}
	json_array_foreach(txs, i, v) {
		const char *hex = json_string_value(v);
		size_t hexlen = json_string_length(v);
		struct ledger_batch_item *it = &(*items)[i];

		if (hexlen % 2 || hexlen / 2 > TX_MAX_SIZE || strlen(hex) != hexlen ||
		    hex_decode(hex, *bytes + at, hexlen / 2)) {
			it->rc = TALLY_E_ENCODING;
			snprintf(it->why, sizeof(it->why), "tx is not hex of at most %d bytes",
				 TX_MAX_SIZE);
			continue;
		}
		it->bytes = *bytes + at;
		it->len = hexlen / 2;
		at += hexlen / 2;
	}
	*count = n;
	ok = true;
out:
	json_decref(body);
	return ok;
}

/* The binary body (daemon/api/txbody.h) into items[*count], views into
 * the request's body; or the whole body refused into resp (false). */
static bool txs_from_binary(const struct http_request *req, struct http_response *resp,
			    struct ledger_batch_item **items, size_t *count)
{
	struct txbody_tx txs[LEDGER_BATCH_MAX];
	char why[WHY_MAX];
	size_t n;
	int rc = txbody_split(req->body, req->body_len, txs, LEDGER_BATCH_MAX, &n, why);

	if (rc) {
		http_error(resp, 400, rc == TALLY_E_TOOLONG ? "too_long" : "invalid",
			   "%s; nothing was submitted", why);
		return false;
	}
	*items = calloc(n, sizeof(**items));
	if (!*items) {
		http_error(resp, 503, "unavailable", "no memory for a batch of %zu", n);
		return false;
	}
	for (size_t i = 0; i < n; i++) {
		(*items)[i].bytes = txs[i].bytes;
		(*items)[i].len = txs[i].len;
	}
	*count = n;
	return true;
}

/* The answer to a batch, as text: the same JSON as json_dumps(JSON_COMPACT)
 * of {"results": [batch_answer(..., received)...], "accepted": n,
 * "refused": n}, without
 * a tree of objects per transaction (an accepted one's answer holds no
 * text to escape; a refused one's is built as before). NULL without
 * memory. */
static char *batch_answers(const struct ledger_batch_item *items, size_t n, bool received)
{
	static const char head[] = "{\"results\":[";
	const size_t one = sizeof(",{\"hash\":\"\",\"status\":\"received\"}") - 1 + 2 * HASH_LEN;
	char **refused = calloc(n ? n : 1, sizeof(*refused)), *out = NULL;
	size_t cap = sizeof(head) + n * one + 64, at, accepted = 0;

	if (!refused)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		json_t *j;

		if (!items[i].rc)
			continue;
		j = batch_answer(&items[i], received);
		refused[i] = j ? json_dumps(j, JSON_COMPACT) : NULL;
		json_decref(j);
		if (!refused[i])
			goto out;
		cap += strlen(refused[i]) + 1;
	}
	if (!(out = malloc(cap)))
		goto out;
	at = (size_t)snprintf(out, cap, "%s", head);
	for (size_t i = 0; i < n; i++) {
		char hex[2 * HASH_LEN + 1];

		if (refused[i]) {
			at += (size_t)snprintf(out + at, cap - at, "%s%s", i ? "," : "", refused[i]);
			continue;
		}
		accepted++;
		hex_encode(items[i].hash, HASH_LEN, hex);
		at += (size_t)snprintf(out + at, cap - at, "%s{\"hash\":\"%s\",\"status\":\"%s\"}",
				       i ? "," : "", hex,
				       received ? "received" : items[i].held ? "held" : "pending");
	}
	snprintf(out + at, cap - at, "],\"accepted\":%zu,\"refused\":%zu}\n", accepted,
		 n - accepted);
out:
	for (size_t i = 0; i < n; i++)
		free(refused[i]);
	free(refused);
	return out;
}

/* POST /v1/txs: {"txs": [hex, ...]}, or the binary body of
 * daemon/api/txbody.h with Content-Type application/octet-stream: 1 to
 * LEDGER_BATCH_MAX signed transactions, each answered in its place
 * (docs/PROTOCOL.md). A body of any other shape is refused whole, and
 * nothing of it is admitted. */
static void post_txs(void *ctx, const struct http_request *req, struct http_response *resp)
{
	struct api *n = ctx;
	struct ledger_admission adm = { n, admit_lease, release_lease };
	bool async = n->inbox && http_prefers(req, "respond-async");
	struct ledger_batch_item *items = NULL;
	uint8_t *bytes = NULL;
	char why[WHY_MAX], *text;
	size_t count = 0;
	int rc;

	if (is_octet_stream(http_header(req, "Content-Type")) ?
	    !txs_from_binary(req, resp, &items, &count) :
	    !txs_from_json(req, resp, &items, &bytes, &count))
		goto out;
	if (async) {
		/* Each answered on its own: one refused (the inbox full)
		 * leaves the others received; those refused already (not
		 * hex) are skipped. */
		resp->preference_applied = "respond-async";
		inbox_put_batch(n->inbox, items, count, now_s());
	} else if ((rc = ledger_submit_batch(n->ledger, items, count, &adm, why))) {
		http_error_from(resp, rc, why);
		goto out;
	}
	text = batch_answers(items, count, async);
	if (!text) {
		/* Admitted all the same: the client learns each one's fate from
		 * GET /v1/tx/{hash}/status. */
		http_error(resp, 503, "unavailable", "the batch was taken but its answer could"
			   " not be built (out of memory)");
		goto out;
	}
	resp->status = 200;
	resp->text = text;
	resp->content_type = "application/json";
out:
	free(items);
	free(bytes);
}

static void get_metrics(void *ctx, const struct http_request *req, struct http_response *resp);

const struct http_route api_routes[] = {
	{ "GET", "/healthz", get_healthz },
	{ "GET", "/metrics", get_metrics },
	{ "GET", "/v1/status", get_status },
	{ "GET", "/v1/genesis", get_genesis },
	{ "GET", "/v1/accounts/*", get_account },
	{ "GET", "/v1/leases", get_leases },
	{ "GET", "/v1/leases/*", get_lease },
	{ "GET", "/v1/leases/*/usage", get_lease_usage },
	{ "GET", "/v1/leases/*/proof", get_lease_proof },
	{ "GET", "/v1/leases/*/private", get_lease_private },
	{ "GET", "/v1/blocks", get_blocks },
	{ "GET", "/v1/blocks/*", get_block },
	{ "GET", "/v1/validators", get_validators },
	{ "GET", "/v1/providers", get_providers },
	{ "GET", "/v1/providers/*", get_provider },
	{ "GET", "/v1/staking", get_staking },
	{ "GET", "/v1/tx/*", get_tx },
	{ "GET", "/v1/tx/*/status", get_tx_status },
	{ "POST", "/v1/tx", post_tx },
	{ "POST", "/v1/txs", post_txs },
	{ "GET", "/v1/proofs/inclusion", get_inclusion },
	{ "GET", "/v1/proofs/consistency", get_consistency },
	{ "GET", "/v1/node/vms", get_node_vms },
};
const size_t api_nroutes = sizeof(api_routes) / sizeof(api_routes[0]);

/* The peer transport's figures for /metrics. */
static void metrics_peers(FILE *f, struct api *n, const struct ledger_status *ls)
{
	static const struct {
		const char *name, *type, *help;
		size_t off;
	} m[] = {
#define NS(field) offsetof(struct net_stats, field)
		{ "tally_sync_blocks_total", "counter", "Blocks fetched from peers and applied.",
		  NS(blocks_synced) },
		{ "tally_sync_requests_total", "counter", "Requests for blocks sent to peers.",
		  NS(sync_requests) },
		{ "tally_sync_blocks_served_total", "counter", "Blocks sent to peers that asked.",
		  NS(blocks_served) },
		{ "tally_gossip_txs_received_total", "counter",
		  "Transactions from peers admitted to the mempool.", NS(txs_in) },
		{ "tally_gossip_txs_dropped_total", "counter",
		  "Transactions from peers dropped unchecked: too many were waiting for a check.",
		  NS(txs_intake_dropped) },
		{ "tally_gossip_txs_sent_total", "counter", "Transactions sent to peers.",
		  NS(txs_out) },
		{ "tally_gossip_txs_reoffered_total", "counter",
		  "Of them, pending transactions offered a peer again (each peer every 15 s).",
		  NS(txs_reoffered) },
		{ "tally_consensus_messages_received_total", "counter",
		  "Proposals and votes received from peers.", NS(consensus_in) },
		{ "tally_peers_dropped_total", "counter",
		  "Peers disconnected for breaking the protocol.", NS(peers_dropped) },
		{ "tally_peer_handshakes_refused_total", "counter",
		  "Connections refused: unknown key, another chain, failed TLS.",
		  NS(handshakes_refused) },
#undef NS
	};
	struct net_stats st;
	size_t np;

	net_snapshot(n, ls, &st, NULL, 0, &np);
	fprintf(f, "# HELP tally_consensus_messages_sent_total Proposals and votes sent to peers"
		   " (each peer counts).\n# TYPE tally_consensus_messages_sent_total counter\n"
		   "tally_consensus_messages_sent_total %" PRIu64 "\n", st.consensus_out);
	fprintf(f, "# HELP tally_peers Peers connected.\n# TYPE tally_peers gauge\n"
		   "tally_peers %zu\n", st.peers);
	fprintf(f, "# HELP tally_peer_best_height Highest tip a connected peer reported.\n"
		   "# TYPE tally_peer_best_height gauge\ntally_peer_best_height %" PRIu64 "\n",
		st.best_peer_height);
	fprintf(f, "# HELP tally_sync_caught_up 1 when no connected peer is ahead of this node.\n"
		   "# TYPE tally_sync_caught_up gauge\ntally_sync_caught_up %d\n", st.caught_up);
	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
		fprintf(f, "# HELP %s %s\n# TYPE %s %s\n%s %" PRIu64 "\n", m[i].name, m[i].help,
			m[i].name, m[i].type, m[i].name,
			*(const uint64_t *)((const char *)&st + m[i].off));
}

/* tally_validator_{signed,missed}_blocks_total, one line per validator. */
static void vote_counter(FILE *f, const char *what, const char *verb,
			 const struct ledger_vote_stat *vs, size_t nvs)
{
	fprintf(f, "# HELP tally_validator_%s_blocks_total Blocks whose certificate %s the"
		   " validator's precommit, since this node started.\n"
		   "# TYPE tally_validator_%s_blocks_total counter\n", what, verb, what);
	for (size_t i = 0; i < nvs; i++) {
		char hex[2 * PUBKEY_LEN + 1];

		hex_encode(vs[i].validator, PUBKEY_LEN, hex);
		fprintf(f, "tally_validator_%s_blocks_total{validator=\"%s\"} %" PRIu64 "\n", what,
			hex, *what == 'm' ? vs[i].missed_blocks : vs[i].signed_blocks);
	}
}

/* The consensus engine's figures, the last block interval and each
 * validator's power and votes. */
static void metrics_consensus(FILE *f, struct api *n, const struct ledger_status *ls)
{
	struct engine_status es;
	struct validator_set vals;
	struct block_header prev;
	struct ledger_vote_stat *vs = calloc(VALIDATORS_MAX, sizeof(*vs));
	uint64_t prev_ns = n->genesis->genesis_time_ns, total;
	size_t nvs = 0;

	if (ls->height > 1 && !ledger_header(n->ledger, ls->height - 1, &prev))
		prev_ns = prev.time_ns;
	fprintf(f, "# HELP tally_block_interval_seconds Time between the last two blocks.\n"
		   "# TYPE tally_block_interval_seconds gauge\ntally_block_interval_seconds %.3f\n",
		ls->height && ls->time_ns > prev_ns ? (double)(ls->time_ns - prev_ns) / 1e9 : 0.0);
	if (!ledger_consensus_status(n->ledger, &es)) {
		fprintf(f, "# HELP tally_consensus_height Height being decided.\n"
			   "# TYPE tally_consensus_height gauge\ntally_consensus_height %" PRIu64 "\n",
			es.height);
		fprintf(f, "# HELP tally_consensus_round Round of the height being decided.\n"
			   "# TYPE tally_consensus_round gauge\ntally_consensus_round %u\n", es.round);
		fprintf(f, "# HELP tally_consensus_step Step: 0 new height, 1 propose, 2 prevote,"
			   " 3 precommit, 4 decided.\n# TYPE tally_consensus_step gauge\n"
			   "tally_consensus_step %u\n", es.step);
		fprintf(f, "# HELP tally_consensus_evidence_total Conflicting votes seen (one per"
			   " validator, height, round and type).\n"
			   "# TYPE tally_consensus_evidence_total counter\n"
			   "tally_consensus_evidence_total %" PRIu64 "\n", es.evidence);
	}
	if (vs)
		ledger_vote_stats(n->ledger, vs, VALIDATORS_MAX, &nvs);
	if (!ledger_valset(n->ledger, ls->height + 1, &vals) && (total = valset_total_stake(&vals))) {
		fprintf(f, "# HELP tally_validator_power Share of the voting power of the next"
			   " block's validator set.\n# TYPE tally_validator_power gauge\n");
		for (size_t i = 0; i < vals.n; i++) {
			char hex[2 * PUBKEY_LEN + 1];

			hex_encode(vals.v[i].pubkey, PUBKEY_LEN, hex);
			fprintf(f, "tally_validator_power{validator=\"%s\"} %.6f\n", hex,
				(double)vals.v[i].stake / (double)total);
		}
	}
	vote_counter(f, "missed", "lacks", vs, nvs);
	vote_counter(f, "signed", "holds", vs, nvs);
	free(vs);
}

/* Prometheus text exposition. Lease totals come from the committed state, so
 * they are what was billed, not an estimate. */
/* The inbox of asynchronous submissions (Prefer: respond-async). */
static void metrics_inbox(FILE *f, struct api *n)
{
	struct inbox_stats s = { 0 };

	if (n->inbox)
		inbox_stats(n->inbox, &s);
	fprintf(f, "# HELP tally_inbox_received_total Transactions taken asynchronously (Prefer:"
		   " respond-async), before their checks.\n"
		   "# TYPE tally_inbox_received_total counter\n"
		   "tally_inbox_received_total %" PRIu64 "\n", s.received);
	fprintf(f, "# HELP tally_inbox_admitted_total Of them, admitted to the mempool once"
		   " checked.\n# TYPE tally_inbox_admitted_total counter\n"
		   "tally_inbox_admitted_total %" PRIu64 "\n", s.admitted);
	fprintf(f, "# HELP tally_inbox_refused_total Of them, refused once checked.\n"
		   "# TYPE tally_inbox_refused_total counter\n"
		   "tally_inbox_refused_total %" PRIu64 "\n", s.refused);
	fprintf(f, "# HELP tally_inbox_waiting Transactions taken asynchronously and not yet"
		   " checked.\n# TYPE tally_inbox_waiting gauge\ntally_inbox_waiting %zu\n",
		s.waiting);
}

static void get_metrics(void *ctx, const struct http_request *req, struct http_response *resp)
{
	struct api *n = ctx;
	struct ledger_status st;
	struct lease *leases = NULL;
	size_t count = 0, by_state[LEASE_STATE_MAX + 1] = { 0 };
	uint64_t cpu = 0, delay = 0, gpu = 0, charged = 0;
	char *buf = NULL;
	size_t len = 0;
	(void)req;

	if (ledger_status(n->ledger, &st) ||
	    ledger_leases(n->ledger, &(struct lease_filter){ 0 }, &leases, &count)) {
		http_error(resp, 500, "internal", "cannot read the ledger");
		return;
	}
	for (size_t i = 0; i < count; i++) {
		if (leases[i].state <= LEASE_STATE_MAX)
			by_state[leases[i].state]++;
		cpu += leases[i].cpu_ns;
		delay += leases[i].run_delay_ns;
		gpu += leases[i].gpu_ns;
		charged += leases[i].charged;
	}
	free(leases);
	FILE *f = open_memstream(&buf, &len);
	if (!f) {
		http_error(resp, 500, "internal", "out of memory");
		return;
	}
	fprintf(f, "# HELP tally_block_height Height of the last committed block.\n"
		   "# TYPE tally_block_height gauge\ntally_block_height %" PRIu64 "\n",
		st.height);
	fprintf(f, "# HELP tally_blocks_committed_total Blocks committed since the node"
		   " started.\n# TYPE tally_blocks_committed_total counter\n"
		   "tally_blocks_committed_total %" PRIu64 "\n", st.committed);
	fprintf(f, "# HELP tally_blocks_committed_from_trial_total Of them, blocks whose"
		   " state was written from the trial this node made when it built or checked"
		   " the block, not executed a second time.\n"
		   "# TYPE tally_blocks_committed_from_trial_total counter\n"
		   "tally_blocks_committed_from_trial_total %" PRIu64 "\n",
		st.committed_from_trial);
	fprintf(f, "# HELP tally_clock_skew_seconds How far the wall clock stands from the"
		   " node's clock (wall - node; a step the node did not follow).\n"
		   "# TYPE tally_clock_skew_seconds gauge\ntally_clock_skew_seconds %.3f\n",
		(double)node_clock_skew_ns() / 1e9);
	fprintf(f, "# HELP tally_mempool_transactions Transactions waiting for a block.\n"
		   "# TYPE tally_mempool_transactions gauge\ntally_mempool_transactions %zu\n",
		st.mempool_size);
	fprintf(f, "# HELP tally_mempool_held_transactions Transactions held until an earlier"
		   " nonce of their account arrives.\n# TYPE tally_mempool_held_transactions gauge\n"
		   "tally_mempool_held_transactions %zu\n", st.mempool_held);
	fprintf(f, "# HELP tally_mempool_held_dropped_total Held transactions dropped: their gap"
		   " outlived the timeout, their nonce was used, or they no longer applied.\n"
		   "# TYPE tally_mempool_held_dropped_total counter\n"
		   "tally_mempool_held_dropped_total %" PRIu64 "\n", st.held_dropped);
	metrics_inbox(f, n);
	fprintf(f, "# HELP tally_usage_records Usage records in the usage log.\n"
		   "# TYPE tally_usage_records gauge\ntally_usage_records %" PRIu64 "\n",
		st.usage_size);
	fprintf(f, "# HELP tally_leases Leases by state.\n# TYPE tally_leases gauge\n");
	for (uint8_t s = LEASE_OPENED; s <= LEASE_STATE_MAX; s++)
		fprintf(f, "tally_leases{state=\"%s\"} %zu\n", lease_state_name(s), by_state[s]);
	fprintf(f, "# HELP tally_vms VMs this node runs.\n# TYPE tally_vms gauge\n"
		   "tally_vms %zu\n", n->keeper ? keeper_vm_count(n->keeper) : (size_t)0);
	fprintf(f, "# HELP tally_metered_cpu_seconds_total CPU time billed in usage records.\n"
		   "# TYPE tally_metered_cpu_seconds_total counter\n"
		   "tally_metered_cpu_seconds_total %" PRIu64 ".%09" PRIu64 "\n",
		cpu / 1000000000, cpu % 1000000000);
	fprintf(f, "# HELP tally_metered_run_delay_seconds_total vCPU run-queue delay recorded.\n"
		   "# TYPE tally_metered_run_delay_seconds_total counter\n"
		   "tally_metered_run_delay_seconds_total %" PRIu64 ".%09" PRIu64 "\n",
		delay / 1000000000, delay % 1000000000);
	fprintf(f, "# HELP tally_metered_gpu_seconds_total GPU assignment time recorded.\n"
		   "# TYPE tally_metered_gpu_seconds_total counter\n"
		   "tally_metered_gpu_seconds_total %" PRIu64 ".%09" PRIu64 "\n",
		gpu / 1000000000, gpu % 1000000000);
	fprintf(f, "# HELP tally_charged_micros_total Amount charged to tenants, micro-units.\n"
		   "# TYPE tally_charged_micros_total counter\n"
		   "tally_charged_micros_total %" PRIu64 "\n", charged);
	metrics_peers(f, n, &st);
	metrics_consensus(f, n, &st);
	fprintf(f, "# HELP tally_api_errors_total API requests answered with an error.\n"
		   "# TYPE tally_api_errors_total counter\ntally_api_errors_total %" PRIu64 "\n",
		http_server_errors(n->http));
	fprintf(f, "# HELP tally_api_faults_total API requests answered 5xx: the node's own faults.\n"
		   "# TYPE tally_api_faults_total counter\ntally_api_faults_total %" PRIu64 "\n",
		http_server_faults(n->http));
	fprintf(f, "# HELP tally_api_rate_limited_total API requests refused by the per-address "
		   "rate limit.\n# TYPE tally_api_rate_limited_total counter\n"
		   "tally_api_rate_limited_total %" PRIu64 "\n", http_server_limited(n->http));
	fclose(f);
	resp->status = 200;
	resp->text = buf;
	resp->content_type = "text/plain; version=0.0.4";
}
