/* Reading the chain from a node (see cli/chainsrc.h). */
#include "cli/chainsrc.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/tally.h"
#include "contracts/contract.h"
#include "lib/errors.h"
#include "lib/json_u64.h"

#define BLOCKS_PER_CALL 1000

int node_genesis(struct client *c, char **json, struct genesis *g)
{
	char why[256] = "";
	size_t len;
	enum client_rc rc = client_get_raw(c, "/v1/genesis", json, &len);

	if (rc)
		return client_fail(c, rc);
	memset(g, 0, sizeof(*g));
	if (genesis_parse(g, *json, why)) {
		err("the node's genesis is invalid: %s", why);
		free(*json);
		*json = NULL;
		return EXIT_REFUSED;
	}
	return EXIT_OK;
}

int node_tip(struct client *c, uint64_t *height)
{
	json_t *j;
	enum client_rc rc = client_get(c, "/v1/status", &j);

	if (rc)
		return client_fail(c, rc);
	/* A status without a height is no tip: taken as 0 it would verify
	 * nothing and say the chain verified. */
	int bad = status_bad(j) || json_u64_get(json_object_get(j, "height"), height);
	json_decref(j);
	return bad ? EXIT_REFUSED : EXIT_OK;
}

/* Hex of a canonical object into a malloc'd buffer. */
static uint8_t *unhex(const char *hex, size_t *n)
{
	size_t len = strlen(hex);
	uint8_t *p;

	if (len % 2)
		return NULL;
	p = malloc(len / 2 + 1);
	if (p && hex_decode(hex, p, len / 2)) {
		free(p);
		return NULL;
	}
	*n = len / 2;
	return p;
}

static int parse_valset(const json_t *j, struct validator_set *s)
{
	const json_t *arr = json_is_array(j) ? j : json_object_get(j, "validators");
	const json_t *v;
	size_t i;

	memset(s, 0, sizeof(*s));
	if (!json_is_array(arr) || json_array_size(arr) == 0 ||
	    json_array_size(arr) > VALIDATORS_MAX)
		return -1;
	json_array_foreach(arr, i, v) {
		if (strlen(jget_str(v, "pubkey")) != 64 ||
		    hex_decode(jget_str(v, "pubkey"), s->v[i].pubkey, PUBKEY_LEN))
			return -1;
		s->v[i].stake = jget_u64(v, "stake");
	}
	s->n = json_array_size(arr);
	return 0;
}

static int node_valset(struct client *c, uint64_t height, struct validator_set *s)
{
	char path[96];
	json_t *j;
	enum client_rc rc;

	snprintf(path, sizeof(path), "/v1/validators?height=%" PRIu64, height);
	rc = client_get(c, path, &j);
	if (rc)
		return client_fail(c, rc);
	int bad = parse_valset(j, s);
	json_decref(j);
	if (bad) {
		err("node's validator set after block %" PRIu64 " is malformed", height);
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

/* One block of the API's answer. The node's JSON is transport only: the
 * block and certificate are its hex encodings, decoded strictly here. */
static int decode_entry(const json_t *e, struct block *b, struct commit_cert *cert)
{
	size_t n;
	uint8_t *p = unhex(jget_str(e, "block"), &n);
	int rc;

	if (!p)
		return TALLY_E_ENCODING;
	rc = block_decode(b, p, n);
	free(p);
	if (rc)
		return rc;
	p = unhex(jget_str(e, "cert"), &n);
	rc = p ? cert_decode(cert, p, n) : TALLY_E_ENCODING;
	free(p);
	if (rc)
		block_free(b);
	return rc;
}

int node_blocks(struct client *c, uint64_t from, uint64_t to, block_fn fn, void *ctx)
{
	struct commit_cert *cert = malloc(sizeof(*cert));
	struct validator_set *vals = malloc(sizeof(*vals));
	int rc = EXIT_OK;

	if (!cert || !vals) {
		err("out of memory");
		rc = EXIT_USAGE;
		goto out;
	}
	for (uint64_t h = from; h <= to && !rc;) {
		uint64_t last = to - h >= BLOCKS_PER_CALL ? h + BLOCKS_PER_CALL - 1 : to;
		char path[128];
		json_t *j, *e;
		size_t i;
		enum client_rc crc;

		snprintf(path, sizeof(path), "/v1/blocks?from=%" PRIu64 "&to=%" PRIu64, h, last);
		crc = client_get(c, path, &j);
		if (crc) {
			rc = client_fail(c, crc);
			break;
		}
		json_t *arr = json_object_get(j, "blocks");
		if (!json_array_size(arr)) {
			err("node returned no block from height %" PRIu64, h);
			json_decref(j);
			rc = EXIT_USAGE;
			break;
		}
		json_array_foreach(arr, i, e) {
			struct block b;
			int drc = decode_entry(e, &b, cert);
			if (drc) {
				err("block %" PRIu64 " from the node does not decode: %s", h,
				    tally_strerror(drc));
				rc = EXIT_REFUSED;
				break;
			}
			const struct validator_set *next = NULL;
			if (memcmp(b.header.next_validators_hash, b.header.validators_hash,
				   HASH_LEN)) {
				rc = node_valset(c, b.header.height, vals);
				next = vals;
			}
			if (!rc)
				rc = fn(ctx, &b, cert, next);
			block_free(&b);
			if (rc)
				break;
			h++;
			if (h > to)
				break;
		}
		json_decref(j);
	}
out:
	free(cert);
	free(vals);
	return rc;
}

int node_inclusion_proof(void *ctx, uint64_t index, uint64_t size,
			 uint8_t proof[][HASH_LEN], size_t *n, char *why)
{
	struct client *c = ctx;
	char path[128];
	json_t *j, *p;
	size_t i;
	enum client_rc rc;

	*n = 0;
	snprintf(path, sizeof(path), "/v1/proofs/inclusion?index=%" PRIu64 "&size=%" PRIu64,
		 index, size);
	rc = client_get(c, path, &j);
	if (rc) {
		snprintf(why, WHY_MAX, "%.200s", c->err);
		return TALLY_E_IO;
	}
	json_t *arr = json_object_get(j, "proof");
	if (!json_is_array(arr) || json_array_size(arr) > MERKLE_MAX_PROOF) {
		snprintf(why, WHY_MAX, "the node's proof is malformed");
		json_decref(j);
		return TALLY_E_ENCODING;
	}
	json_array_foreach(arr, i, p) {
		const char *h = json_string_value(p);
		if (!h || strlen(h) != 64 || hex_decode(h, proof[i], HASH_LEN)) {
			snprintf(why, WHY_MAX, "the node's proof hash %zu is malformed", i);
			json_decref(j);
			return TALLY_E_ENCODING;
		}
	}
	*n = json_array_size(arr);
	json_decref(j);
	return 0;
}

/* The usage-log frontier at size from the node: the inclusion proof of the
 * last leaf lists exactly the right-edge subtrees of the tree before it
 * (lowest first), and appending the leaf gives the frontier at size. The
 * checkpoint check (usage root in the pinned header) authenticates it. */
static int node_frontier(struct client *c, uint64_t size, struct merkle_frontier *f)
{
	uint8_t proof[MERKLE_MAX_PROOF][HASH_LEN], leaf[HASH_LEN];
	char path[128], why[WHY_MAX];
	size_t n, k = 0;
	json_t *j;

	merkle_frontier_init(f);
	if (size == 0)
		return EXIT_OK;
	if (node_inclusion_proof(c, size - 1, size, proof, &n, why)) {
		err("usage-log frontier at size %" PRIu64 ": %s", size, why);
		return EXIT_USAGE;
	}
	snprintf(path, sizeof(path), "/v1/proofs/inclusion?index=%" PRIu64 "&size=%" PRIu64,
		 size - 1, size);
	if (client_get(c, path, &j) != CLIENT_OK ||
	    strlen(jget_str(j, "leaf_hash")) != 64 ||
	    hex_decode(jget_str(j, "leaf_hash"), leaf, HASH_LEN)) {
		err("usage-log frontier at size %" PRIu64 ": no leaf hash from the node", size);
		return EXIT_USAGE;
	}
	json_decref(j);
	f->size = size - 1;
	for (int bit = 0; bit < 64; bit++) {
		if (!(f->size & ((uint64_t)1 << bit)))
			continue;
		if (k == n) {
			err("usage-log frontier at size %" PRIu64 ": proof too short", size);
			return EXIT_REFUSED;
		}
		memcpy(f->edge[bit], proof[k++], HASH_LEN);
	}
	if (k != n) {
		err("usage-log frontier at size %" PRIu64 ": proof too long", size);
		return EXIT_REFUSED;
	}
	merkle_frontier_append(f, leaf);
	return EXIT_OK;
}

int node_checkpoint(struct client *c, uint64_t height, struct chain_checkpoint *cp)
{
	char path[96];
	json_t *j;
	struct block b;
	enum client_rc crc;
	int rc;

	memset(cp, 0, sizeof(*cp));
	snprintf(path, sizeof(path), "/v1/blocks/%" PRIu64, height);
	crc = client_get(c, path, &j);
	if (crc)
		return client_fail(c, crc);
	rc = decode_entry(j, &b, &cp->cert);
	json_decref(j);
	if (rc) {
		err("checkpoint block %" PRIu64 " does not decode: %s", height, tally_strerror(rc));
		return EXIT_REFUSED;
	}
	cp->header = b.header;
	block_free(&b);
	rc = node_valset(c, height, &cp->vals);
	if (!rc)
		rc = node_frontier(c, cp->header.usage_size, &cp->usage);
	return rc;
}

int node_lease_proof(struct client *c, const uint8_t id[LEASE_ID_LEN], uint64_t *height,
		     struct state_proof *p)
{
	char path[128], hex[2 * LEASE_ID_LEN + 1];
	json_t *j;
	uint8_t *bytes;
	size_t n;
	uint64_t h = 0;
	enum client_rc crc;
	int rc;

	hex_encode(id, LEASE_ID_LEN, hex);
	snprintf(path, sizeof(path), "/v1/leases/%s/proof", hex);
	crc = client_get(c, path, &j);
	if (crc)
		return client_fail(c, crc);
	bytes = unhex(jget_str(j, "proof"), &n);
	rc = !json_u64_get(json_object_get(j, "height"), &h) && h > 0 && bytes ?
	     state_proof_decode(p, bytes, n) : TALLY_E_ENCODING;
	if (!rc)
		*height = h;
	free(bytes);
	json_decref(j);
	if (rc) {
		err("the node's state proof of lease %.16s does not decode: %s", hex,
		    tally_strerror(rc));
		return EXIT_REFUSED;
	}
	return EXIT_OK;
}

int parse_checkpoint(const char *arg, uint64_t *height, uint8_t id[HASH_LEN])
{
	const char *colon = strchr(arg, ':');
	char num[32];

	if (!colon || colon == arg || (size_t)(colon - arg) >= sizeof(num)) {
		err("--checkpoint '%s' is not HEIGHT:BLOCKID", arg);
		return EXIT_USAGE;
	}
	memcpy(num, arg, (size_t)(colon - arg));
	num[colon - arg] = 0;
	if (parse_u64(num, height, "checkpoint height") ||
	    parse_hex32(colon + 1, id, "checkpoint block id"))
		return EXIT_USAGE;
	if (*height == 0) {
		err("checkpoint height 0 is the genesis: leave --checkpoint out");
		return EXIT_USAGE;
	}
	return EXIT_OK;
}
