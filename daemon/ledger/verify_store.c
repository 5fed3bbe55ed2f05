/* Verifying a stored chain as an auditor would: every stored block read
 * back, decoded and replayed from the genesis (lib/chain/replay.h), with
 * the stored header checked against the header inside the stored body;
 * then the state the store keeps checked against the state the replay
 * made. */
#include "daemon/ledger/ledger_impl.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/chain/chainfile.h"
#include "lib/chain/memstate.h"
#include "lib/chain/replay.h"
#include "lib/crypto.h"
#include "lib/merkle.h"
#include "lib/errors.h"

static int verify_one(struct store *st, struct replay *r, uint64_t h, char *why)
{
	struct validator_set next, *nextp = NULL;
	struct stored_block sb;
	struct block_header hdr;
	struct commit_cert cert;
	struct block b;
	struct enc e;
	int rc = store_block_get(st, h, &sb);

	memset(&b, 0, sizeof(b));
	if (rc)
		return why_set(why, rc, "block %" PRIu64 " cannot be read", h);
	rc = header_decode(&hdr, sb.header, sb.header_len);
	if (rc) {
		why_set(why, rc, "block %" PRIu64 ": stored header does not decode", h);
		goto out;
	}
	rc = block_decode(&b, sb.body, sb.body_len);
	if (rc) {
		why_set(why, rc, "block %" PRIu64 ": stored body does not decode", h);
		goto out;
	}
	enc_init(&e);
	header_encode(&e, &b.header);
	if (e.len != sb.header_len || memcmp(e.buf, sb.header, e.len))
		rc = why_set(why, TALLY_E_LINK, "block %" PRIu64 ": stored header differs from the"
			     " header in the stored body", h);
	enc_free(&e);
	if (rc)
		goto out;
	rc = cert_decode(&cert, sb.cert, sb.cert_len);
	if (rc) {
		why_set(why, rc, "block %" PRIu64 ": stored certificate does not decode", h);
		goto out;
	}
	if (sb.next_vals) {
		struct dec d;

		dec_init(&d, sb.next_vals, sb.next_vals_len);
		rc = valset_decode_from(&d, &next);
		if (!rc)
			rc = dec_finish(&d);
		if (rc) {
			why_set(why, rc, "block %" PRIu64 ": stored next validator set does not"
				" decode", h);
			goto out;
		}
		nextp = &next;
	}
	rc = replay_block(r, &b, &cert, nextp, NULL, why);
out:
	block_free(&b);
	stored_block_free(&sb);
	return rc;
}

/* A running digest of entries in the order given, and how many. */
struct entries_digest {
	struct sha256_stream *h;
	uint64_t n;
};

static int digest_entry(void *ctx, const uint8_t *key, size_t klen, const uint8_t *val,
			size_t vlen)
{
	struct entries_digest *d = ctx;
	uint8_t len[8];

	for (int i = 0; i < 4; i++) {
		len[i] = (uint8_t)(klen >> (8 * i));
		len[4 + i] = (uint8_t)(vlen >> (8 * i));
	}
	sha256_add(d->h, len, 4);
	sha256_add(d->h, key, klen);
	sha256_add(d->h, len + 4, 4);
	sha256_add(d->h, val, vlen);
	d->n++;
	return 0;
}

/* Every entry be holds, of every key type in key order: their digest and
 * number. */
static int entries_of(const struct state_backend *be, uint8_t out[HASH_LEN], uint64_t *n)
{
	struct entries_digest d = { sha256_begin(), 0 };
	int rc = 0;

	if (!d.h)
		return TALLY_E_NOMEM;
	for (int type = 0; type < 256 && !rc; type++)
		rc = be->scan_type(be->ctx, (uint8_t)type, digest_entry, &d);
	sha256_end(d.h, out);
	*n = d.n;
	return rc;
}

/* Every node of the usage log's tree that the store keeps (each perfect
 * subtree of its size leaves: inclusion proofs read them) is the replay's. */
static int verify_usage(struct merkle_store *mine, struct merkle_store *chain, uint64_t size,
			char *why)
{
	for (unsigned level = 0; level < 64 && (size >> level); level++) {
		for (uint64_t i = 0; i < size >> level; i++) {
			uint8_t a[HASH_LEN], b[HASH_LEN];
			int rc = mine->get(mine->ctx, level, i, a);

			if (!rc)
				rc = chain->get(chain->ctx, level, i, b);
			if (rc || memcmp(a, b, HASH_LEN))
				return why_set(why, rc ? rc : TALLY_E_USAGEROOT, "the stored usage log"
					       " of %" PRIu64 " records is not the one the stored blocks"
					       " make (level %u node %" PRIu64 ")", size, level, i);
		}
	}
	return 0;
}

/* The state the store keeps beside its blocks is the state they make (r,
 * every block replayed): the same entries, kept bucket hashes that give
 * its root, and its usage log. A node commits its state without
 * replaying it (a decided block from its trial, execute.c), so replaying
 * the blocks alone would not see a store whose state went astray. */
static int verify_state(struct store *st, struct replay *r, char *why)
{
	struct state_backend be = store_state_backend(st);
	uint8_t mine[HASH_LEN], chain[HASH_LEN];
	uint64_t nmine, nchain;
	struct state kept;
	int rc = entries_of(&be, mine, &nmine);

	if (!rc)
		rc = entries_of(&r->state.be, chain, &nchain);
	if (rc)
		return why_set(why, rc, "cannot read the stored state: %s", tally_strerror(rc));
	if (nmine != nchain || memcmp(mine, chain, HASH_LEN))
		return why_set(why, TALLY_E_STATEROOT, "the stored state entries (%" PRIu64 ") are"
			       " not the ones the stored blocks make (%" PRIu64 ")", nmine, nchain);
	rc = state_open(&kept, &be, r->state.usage_size);
	if (rc)
		return why_set(why, rc, "cannot load the stored state-root buckets: %s",
			       tally_strerror(rc));
	state_root(&kept, mine);
	state_close(&kept);
	state_root(&r->state, chain);
	if (memcmp(mine, chain, HASH_LEN))
		return why_set(why, TALLY_E_STATEROOT, "the stored state-root bucket hashes do not"
			       " give the state root of the stored blocks");
	return verify_usage(store_merkle(st), memstate_usage(r->mem), r->state.usage_size, why);
}

int ledger_verify_store(const char *data_dir, const struct genesis *g, uint64_t *height,
			char *why)
{
	struct replay r = { 0 };
	struct store *st = NULL;
	char path[4096];
	uint8_t *gh = NULL, want[HASH_LEN];
	size_t ghl;
	uint64_t tip;
	int rc;

	why[0] = '\0';
	*height = 0;
	snprintf(path, sizeof(path), "%s/%s", data_dir, LEDGER_DB);
	rc = store_open(&st, path, false, why);
	if (rc)
		return rc;
	genesis_hash(g, want);
	rc = store_meta_get(st, "genesis_hash", &gh, &ghl);
	if (!rc && (ghl != HASH_LEN || memcmp(gh, want, HASH_LEN)))
		rc = why_set(why, TALLY_E_INVALID, "the store was made from another genesis");
	/* One snapshot: a node that commits meanwhile is not seen half-way. */
	if (!rc && (rc = store_snapshot_renew(st)))
		why_set(why, rc, "cannot read %s: %s", path, store_errmsg(st));
	if (!rc)
		rc = replay_init(&r, g, why);
	if (!rc)
		rc = store_tip_height(st, &tip);
	for (uint64_t h = 1; !rc && h <= tip; h++) {
		rc = verify_one(st, &r, h, why);
		if (!rc)
			*height = h;
	}
	if (!rc)
		rc = verify_state(st, &r, why);
	store_snapshot_release(st);
	if (rc && !why[0])
		why_set(why, rc, "%s", tally_strerror(rc));
	free(gh);
	replay_free(&r);
	store_close(st);
	return rc;
}
