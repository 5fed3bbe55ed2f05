/* Verifying a stored chain as an auditor would: every stored block read
 * back, decoded and replayed from the genesis (lib/chain/replay.h), with
 * the stored header checked against the header inside the stored body. */
#include "daemon/ledger/ledger_impl.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/chain/chainfile.h"
#include "lib/chain/replay.h"
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
	if (!rc)
		rc = replay_init(&r, g, why);
	if (!rc)
		rc = store_tip_height(st, &tip);
	for (uint64_t h = 1; !rc && h <= tip; h++) {
		rc = verify_one(st, &r, h, why);
		if (!rc)
			*height = h;
	}
	if (rc && !why[0])
		why_set(why, rc, "%s", tally_strerror(rc));
	free(gh);
	replay_free(&r);
	store_close(st);
	return rc;
}
