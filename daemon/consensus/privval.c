/* The signing guard (see privval.h). */
#include "daemon/consensus/privval.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/consensus/durable.h"
#include "lib/codec.h"
#include "lib/errors.h"

#define PRIVVAL_VERSION 2
#define PRIVVAL_V1_LEN (PRIVVAL_FILE_LEN - HASH_LEN)

/* What the operator reads when the file cannot be trusted: signing without
 * knowing what was signed could sign twice. */
#define PRIVVAL_WHAT_TO_DO \
	": refusing to sign; restore it or run tallyd --repair-signer-state " \
	"(docs/OPERATING.md)"

static int privval_load(struct privval *pv, char *why)
{
	uint8_t buf[PRIVVAL_FILE_LEN + 1], sum[HASH_LEN];
	struct dec d;
	ssize_t n;
	int fd = open(pv->path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		snprintf(why, WHY_MAX, "cannot read %s: %s", pv->path, strerror(errno));
		return TALLY_E_IO;
	}
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n < 0) {
		snprintf(why, WHY_MAX, "cannot read %s: %s", pv->path, strerror(errno));
		return TALLY_E_IO;
	}
	size_t want = n > 0 && buf[0] == 1 ? PRIVVAL_V1_LEN : PRIVVAL_FILE_LEN;
	if (n == 0 || (buf[0] != 1 && buf[0] != PRIVVAL_VERSION))
		return why_set(why, TALLY_E_ENCODING, "%s is %s" PRIVVAL_WHAT_TO_DO, pv->path,
			       n ? "not a signer state file" : "empty");
	if ((size_t)n != want)
		return why_set(why, TALLY_E_ENCODING, "%s is %s (%zd bytes, not %zu)"
			       PRIVVAL_WHAT_TO_DO, pv->path,
			       (size_t)n < want ? "cut short" : "too long", n, want);
	if (buf[0] == PRIVVAL_VERSION) {
		sha256(buf, PRIVVAL_V1_LEN, sum);
		if (memcmp(sum, buf + PRIVVAL_V1_LEN, HASH_LEN))
			return why_set(why, TALLY_E_ENCODING, "%s is damaged (checksum)"
				       PRIVVAL_WHAT_TO_DO, pv->path);
	}
	dec_init(&d, buf + 1, PRIVVAL_V1_LEN - 1);
	pv->height = dec_u64(&d);
	pv->round = dec_u32(&d);
	pv->step = dec_u8(&d);
	dec_fixed(&d, pv->block_id, HASH_LEN);
	dec_fixed(&d, pv->sig, SIG_LEN);
	if (!dec_error(&d) && (pv->step < SIGN_PROPOSAL || pv->step > SIGN_PRECOMMIT))
		dec_fail(&d, TALLY_E_RANGE);
	if (dec_finish(&d))
		return why_set(why, TALLY_E_ENCODING, "%s is damaged (step %u)"
			       PRIVVAL_WHAT_TO_DO, pv->path, pv->step);
	pv->any = true;
	return 0;
}

int privval_open(struct privval *pv, const char *path, const struct tally_key *key, char *why)
{
	int rc;

	memset(pv, 0, sizeof(*pv));
	pv->key = key;
	pv->path = strdup(path);
	if (!pv->path)
		return TALLY_E_NOMEM;
	rc = privval_load(pv, why);
	if (rc)
		privval_close(pv);
	return rc;
}

void privval_close(struct privval *pv)
{
	free(pv->path);
	pv->path = NULL;
}

/* Write the new last-signed state durably: temp file, fsync, rename, fsync
 * the directory. Only then may the signature leave. */
static int privval_persist(const struct privval *next, char *why)
{
	char tmp[4096];
	struct enc e;
	uint8_t sum[HASH_LEN];
	int fd, rc = TALLY_E_IO;

	enc_init(&e);
	enc_u8(&e, PRIVVAL_VERSION);
	enc_u64(&e, next->height);
	enc_u32(&e, next->round);
	enc_u8(&e, next->step);
	enc_fixed(&e, next->block_id, HASH_LEN);
	enc_fixed(&e, next->sig, SIG_LEN);
	if (!enc_error(&e)) {
		sha256(e.buf, e.len, sum);
		enc_fixed(&e, sum, HASH_LEN);
	}
	if (enc_error(&e)) {
		enc_free(&e);
		return TALLY_E_NOMEM;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", next->path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		goto out;
	if (write(fd, e.buf, e.len) != (ssize_t)e.len || fsync(fd) != 0) {
		rc = errno == ENOSPC ? TALLY_E_DISKFULL : TALLY_E_IO;
		close(fd);
		unlink(tmp);
		goto out;
	}
	close(fd);
	if (rename(tmp, next->path) != 0) {
		unlink(tmp);
		goto out;
	}
	rc = durable_dir_of(next->path);
out:
	if (rc)
		snprintf(why, WHY_MAX, "cannot record the signing state in %s: %s", next->path,
			 tally_strerror(rc));
	enc_free(&e);
	return rc;
}

/* A repaired guard holds no signature to send again. */
static bool sig_is_zero(const uint8_t sig[SIG_LEN])
{
	uint8_t acc = 0;

	for (size_t i = 0; i < SIG_LEN; i++)
		acc |= sig[i];
	return acc == 0;
}

/* CometBFT's rule: (height, round, step) never goes back, and the same
 * (height, round, step) is signed again only for the same block. */
static int privval_check(const struct privval *pv, uint64_t height, uint32_t round,
			 uint8_t step, const uint8_t block_id[HASH_LEN], bool *same, char *why)
{
	*same = false;
	if (!pv->any)
		return 0;
	if (height != pv->height)
		goto cmp_height;
	if (round != pv->round)
		goto cmp_round;
	if (step != pv->step)
		goto cmp_step;
	if (memcmp(block_id, pv->block_id, HASH_LEN) == 0 && !sig_is_zero(pv->sig)) {
		*same = true;
		return 0;
	}
	snprintf(why, WHY_MAX, "refusing to sign a conflicting vote at height %" PRIu64
		 " round %u step %u: another block was signed there", height, round, step);
	return TALLY_E_STATE;
cmp_height:
	if (height > pv->height)
		return 0;
	goto regress;
cmp_round:
	if (round > pv->round)
		return 0;
	goto regress;
cmp_step:
	if (step > pv->step)
		return 0;
regress:
	snprintf(why, WHY_MAX, "refusing to sign height %" PRIu64 " round %u step %u: already"
		 " signed height %" PRIu64 " round %u step %u", height, round, step, pv->height,
		 pv->round, pv->step);
	return TALLY_E_STATE;
}

static int privval_sign(struct privval *pv, const uint8_t chain[HASH_LEN], enum sig_domain dom,
			uint64_t height, uint32_t round, uint8_t step,
			const uint8_t block_id[HASH_LEN], const struct enc *payload,
			uint8_t sig[SIG_LEN], char *why)
{
	struct privval next;
	bool same;
	int rc = privval_check(pv, height, round, step, block_id, &same, why);

	if (rc)
		return rc;
	if (same) {
		memcpy(sig, pv->sig, SIG_LEN);
		return 0;
	}
	next = *pv;
	rc = sig_sign(pv->key, dom, chain, payload->buf, payload->len, next.sig);
	if (rc) {
		snprintf(why, WHY_MAX, "signing failed: %s", tally_strerror(rc));
		return rc;
	}
	next.any = true;
	next.height = height;
	next.round = round;
	next.step = step;
	memcpy(next.block_id, block_id, HASH_LEN);
	rc = privval_persist(&next, why);
	if (rc)
		return rc;
	*pv = next;
	memcpy(sig, pv->sig, SIG_LEN);
	return 0;
}

int privval_sign_vote(struct privval *pv, const uint8_t chain[HASH_LEN], const struct vote *v,
		      uint8_t sig[SIG_LEN], char *why)
{
	struct enc e;
	int rc;

	if (v->type != VOTE_PREVOTE && v->type != VOTE_PRECOMMIT)
		return TALLY_E_INVALID;
	enc_init(&e);
	vote_encode(&e, v);
	rc = enc_error(&e);
	if (!rc)
		rc = privval_sign(pv, chain, SIG_VOTE, v->height, v->round,
				  v->type == VOTE_PREVOTE ? SIGN_PREVOTE : SIGN_PRECOMMIT,
				  v->block_id, &e, sig, why);
	enc_free(&e);
	return rc;
}

int privval_sign_proposal(struct privval *pv, const uint8_t chain[HASH_LEN],
			  const struct proposal *p,
			  uint8_t sig[SIG_LEN], char *why)
{
	struct enc e;
	int rc;

	enc_init(&e);
	proposal_encode(&e, p);
	rc = enc_error(&e);
	if (!rc)
		rc = privval_sign(pv, chain, SIG_PROPOSAL, p->height, p->round, SIGN_PROPOSAL,
				  p->block_id, &e, sig, why);
	enc_free(&e);
	return rc;
}

uint32_t privval_first_round(const struct privval *pv, uint64_t height)
{
	if (!pv || !pv->any || pv->height != height || pv->round < PRIVVAL_REPAIR_ROUND ||
	    pv->round == UINT32_MAX)
		return 0;
	return pv->round + 1;
}

int privval_repair(const char *path, uint64_t next_height, char *why)
{
	struct privval next = { .any = true, .height = next_height,
				.round = PRIVVAL_REPAIR_ROUND, .step = SIGN_PRECOMMIT };
	char damaged[4200];

	next.path = (char *)path;
	snprintf(damaged, sizeof(damaged), "%s.damaged", path);
	if (rename(path, damaged) != 0 && errno != ENOENT) {
		snprintf(why, WHY_MAX, "cannot move %s aside: %s", path, strerror(errno));
		return TALLY_E_IO;
	}
	return privval_persist(&next, why);
}
