/* The chain export file (format in lib/chain/chainfile.h and docs/PROTOCOL.md). */
#include "lib/chain/chainfile.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/errors.h"

void chainfile_init(struct chainfile *f)
{
	memset(f, 0, sizeof(*f));
}

static void cfblock_free(struct chainfile_block *cb)
{
	block_free(&cb->block);
	free(cb->cert);
	free(cb->next_vals);
	memset(cb, 0, sizeof(*cb));
}

void chainfile_free(struct chainfile *f)
{
	for (size_t i = 0; i < f->nblocks; i++)
		cfblock_free(&f->blocks[i]);
	free(f->blocks);
	for (size_t i = 0; i < f->nleases; i++)
		state_proof_free(&f->leases[i].proof);
	free(f->leases);
	free(f->genesis_json);
	if (f->have_genesis)
		genesis_free(&f->genesis);
	chainfile_init(f);
}

int chainfile_set_genesis(struct chainfile *f, const char *json, char *why)
{
	struct genesis g;
	char gwhy[256] = "";
	int rc;

	memset(&g, 0, sizeof(g));
	rc = genesis_parse(&g, json, gwhy);
	if (rc) {
		why_set(why, 0, "genesis: %s", gwhy[0] ? gwhy : tally_strerror(rc));
		return rc;
	}
	char *copy = strdup(json);
	if (!copy) {
		genesis_free(&g);
		why_set(why, 0, "out of memory");
		return TALLY_E_NOMEM;
	}
	free(f->genesis_json);
	if (f->have_genesis)
		genesis_free(&f->genesis);
	f->genesis_json = copy;
	f->genesis = g;
	f->have_genesis = 1;
	return 0;
}

static int block_copy(struct block *dst, const struct block *src)
{
	memset(dst, 0, sizeof(*dst));
	dst->header = src->header;
	if (!src->ntx)
		return 0;
	dst->txs = calloc(src->ntx, sizeof(*dst->txs));
	if (!dst->txs)
		return TALLY_E_NOMEM;
	for (size_t i = 0; i < src->ntx; i++) {
		uint8_t *copy = malloc(src->txs[i].len ? src->txs[i].len : 1);

		if (!copy) {
			dst->ntx = i;
			block_free(dst);
			return TALLY_E_NOMEM;
		}
		memcpy(copy, src->txs[i].bytes, src->txs[i].len);
		dst->txs[i] = src->txs[i];   /* the same bytes: their hashes too */
		dst->txs[i].bytes = copy;
	}
	dst->ntx = src->ntx;
	return 0;
}

static int grow(void **arr, size_t n, size_t elem)
{
	/* Capacity is the next power of two at or above n + 1. */
	if (n & (n - 1) && n != 0)
		return 0;
	size_t cap = n ? n * 2 : 1;
	void *p = realloc(*arr, cap * elem);
	if (!p)
		return TALLY_E_NOMEM;
	*arr = p;
	return 0;
}

int chainfile_add_block(struct chainfile *f, const struct block *b,
			const struct commit_cert *cert, const struct validator_set *next_vals)
{
	struct chainfile_block cb;
	int rc;

	memset(&cb, 0, sizeof(cb));
	if (grow((void **)&f->blocks, f->nblocks, sizeof(*f->blocks)))
		return TALLY_E_NOMEM;
	cb.cert = malloc(sizeof(*cb.cert));
	if (!cb.cert)
		return TALLY_E_NOMEM;
	*cb.cert = *cert;
	if (next_vals) {
		cb.next_vals = malloc(sizeof(*cb.next_vals));
		if (!cb.next_vals) {
			free(cb.cert);
			return TALLY_E_NOMEM;
		}
		*cb.next_vals = *next_vals;
	}
	rc = block_copy(&cb.block, b);
	if (rc) {
		free(cb.cert);
		free(cb.next_vals);
		return rc;
	}
	f->blocks[f->nblocks++] = cb;
	return 0;
}

int chainfile_add_lease(struct chainfile *f, const uint8_t id[LEASE_ID_LEN], uint64_t height,
			const struct state_proof *proof, char *why)
{
	struct chainfile_lease *cl;
	char hex[17];
	int rc;

	hex_encode(id, 8, hex);
	if (f->nleases && memcmp(f->leases[f->nleases - 1].id, id, LEASE_ID_LEN) >= 0)
		return why_set(why, TALLY_E_ENCODING, "lease %s: leases must come in ascending id"
			       " order, each once", hex);
	if (grow((void **)&f->leases, f->nleases, sizeof(*f->leases)))
		return why_set(why, TALLY_E_NOMEM, "out of memory");
	cl = &f->leases[f->nleases];
	memset(cl, 0, sizeof(*cl));
	rc = state_proof_lease_value(proof, id, &cl->lease, why);
	if (rc)
		return rc;
	if (state_proof_copy(&cl->proof, proof))
		return why_set(why, TALLY_E_NOMEM, "out of memory");
	memcpy(cl->id, id, LEASE_ID_LEN);
	cl->height = height;
	f->nleases++;
	return 0;
}

const struct chainfile_lease *chainfile_find_lease(const struct chainfile *f,
						   const uint8_t id[LEASE_ID_LEN])
{
	size_t lo = 0, hi = f->nleases;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = memcmp(f->leases[mid].id, id, LEASE_ID_LEN);

		if (c == 0)
			return &f->leases[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

int chainfile_check_lease(const struct chainfile *f, const struct chainfile_lease *cl, char *why)
{
	char sub[WHY_MAX], hex[17];
	struct lease proven;
	int rc;

	hex_encode(cl->id, 8, hex);
	if (cl->height == 0 || cl->height > f->nblocks)
		return why_set(why, TALLY_E_HEIGHT, "lease %s: its state is of block %" PRIu64
			       ", which the file does not hold", hex, cl->height);
	rc = state_proof_lease(&cl->proof, cl->id,
			       f->blocks[cl->height - 1].block.header.state_root, &proven, sub);
	if (rc)
		return why_set(why, rc, "block %" PRIu64 ": lease %s: the claimed state"
			       " (%s, charged %" PRIu64 ", escrow %" PRIu64 ") is not what the chain"
			       " committed: %s", cl->height, hex, lease_state_name(cl->lease.state),
			       cl->lease.charged, cl->lease.escrow, sub);
	return 0;
}

int chainfile_check_prefix(const struct chainfile *f, size_t height, char *why)
{
	uint8_t prev[HASH_LEN], prev_cert[HASH_LEN] = { 0 }, h[HASH_LEN];

	if (height > f->nblocks)
		return why_set(why, TALLY_E_HEIGHT, "block %zu: the file holds %zu blocks", height,
			       f->nblocks);
	genesis_hash(&f->genesis, prev);
	for (size_t i = 0; i < height; i++) {
		const struct chainfile_block *cb = &f->blocks[i];
		const struct block_header *hd = &cb->block.header;

		if (memcmp(hd->prev_block_id, prev, HASH_LEN) != 0)
			return why_set(why, TALLY_E_LINK, "block %zu: previous block id does not "
				       "match %s", i + 1, i ? "the block before" : "the genesis hash");
		if (memcmp(hd->last_commit_hash, prev_cert, HASH_LEN) != 0)
			return why_set(why, TALLY_E_LINK, "block %zu: last commit hash does not "
				       "match the certificate the file holds for block %zu", i + 1, i);
		block_txs_root(&cb->block, h);
		if (memcmp(hd->txs_root, h, HASH_LEN) != 0)
			return why_set(why, TALLY_E_TXROOT, "block %zu: transactions root mismatch",
				       i + 1);
		if (cb->next_vals) {
			valset_hash(cb->next_vals, h);
			if (memcmp(hd->next_validators_hash, h, HASH_LEN) != 0)
				return why_set(why, TALLY_E_VALSET, "block %zu: the next validator "
					       "set does not match next validators hash", i + 1);
		}
		block_id(hd, prev);
		cert_hash(cb->cert, prev_cert);
	}
	return 0;
}

/* --- encoding ------------------------------------------------------------- */

void chainfile_encode(struct enc *e, const struct chainfile *f)
{
	struct enc sub;

	enc_fixed(e, CHAINFILE_MAGIC, CHAINFILE_MAGIC_LEN);
	enc_u32(e, CHAINFILE_VERSION);
	enc_str(e, f->genesis_json ? f->genesis_json : "");
	enc_u64(e, f->nblocks);
	for (size_t i = 0; i < f->nblocks; i++) {
		const struct chainfile_block *cb = &f->blocks[i];

		enc_init(&sub);
		block_encode(&sub, &cb->block);
		if (enc_error(&sub))
			e->err = enc_error(&sub);
		enc_bytes(e, sub.buf, sub.len);
		enc_free(&sub);
		cert_encode(&sub, cb->cert);
		if (enc_error(&sub))
			e->err = enc_error(&sub);
		enc_bytes(e, sub.buf, sub.len);
		enc_free(&sub);
		enc_bool(e, cb->next_vals != NULL);
		if (cb->next_vals)
			valset_encode(e, cb->next_vals);
	}
	enc_u32(e, (uint32_t)f->nleases);
	for (size_t i = 0; i < f->nleases; i++) {
		const struct chainfile_lease *cl = &f->leases[i];

		enc_fixed(e, cl->id, LEASE_ID_LEN);
		enc_u64(e, cl->height);
		enc_init(&sub);
		state_proof_encode(&sub, &cl->proof);
		if (enc_error(&sub))
			e->err = enc_error(&sub);
		enc_bytes(e, sub.buf, sub.len);
		enc_free(&sub);
	}
}

/* --- strict decoding ------------------------------------------------------ */

static int fail(char *why, int rc, const char *what)
{
	why_set(why, 0, "%s: %s", what, tally_strerror(rc));
	return rc;
}

static int decode_genesis(struct chainfile *f, struct dec *d, char *why)
{
	size_t n;
	const uint8_t *p = dec_bytes(d, &n, CHAINFILE_GENESIS_MAX);

	if (dec_error(d))
		return fail(why, dec_error(d), "genesis");
	if (memchr(p, 0, n))
		return fail(why, TALLY_E_ENCODING, "genesis");
	char *json = malloc(n + 1);
	if (!json)
		return fail(why, TALLY_E_NOMEM, "genesis");
	memcpy(json, p, n);
	json[n] = 0;
	int rc = chainfile_set_genesis(f, json, why);
	free(json);
	return rc;
}

static int decode_block(struct chainfile *f, struct dec *d, uint64_t height, char *why)
{
	struct chainfile_block *cb;
	const uint8_t *p;
	char where[64];
	size_t n;
	int rc;

	snprintf(where, sizeof(where), "block at height %llu", (unsigned long long)height);
	if (grow((void **)&f->blocks, f->nblocks, sizeof(*f->blocks)))
		return fail(why, TALLY_E_NOMEM, where);
	cb = &f->blocks[f->nblocks];
	memset(cb, 0, sizeof(*cb));
	p = dec_bytes(d, &n, CHAINFILE_BLOCK_MAX);
	if (dec_error(d))
		return fail(why, dec_error(d), where);
	rc = block_decode(&cb->block, p, n);
	if (rc)
		return fail(why, rc, where);
	f->nblocks++;           /* owned from here on: chainfile_free frees it */
	if (cb->block.header.height != height) {
		why_set(why, 0, "block at position %llu claims height %llu",
			 (unsigned long long)height,
			 (unsigned long long)cb->block.header.height);
		return TALLY_E_HEIGHT;
	}
	cb->cert = malloc(sizeof(*cb->cert));
	if (!cb->cert)
		return fail(why, TALLY_E_NOMEM, where);
	p = dec_bytes(d, &n, CHAINFILE_CERT_MAX);
	if (dec_error(d))
		return fail(why, dec_error(d), where);
	rc = cert_decode(cb->cert, p, n);
	if (rc) {
		why_set(why, 0, "%s: commit certificate: %s", where, tally_strerror(rc));
		return rc;
	}
	bool has_next = dec_bool(d);
	if (dec_error(d))
		return fail(why, dec_error(d), where);
	/* One chain, one file: the set is there exactly where the header
	 * announces a change (a set no check would read, or one withheld where
	 * a reader starting at a later checkpoint needs it, is refused). */
	const struct block_header *h = &cb->block.header;
	if (has_next != (memcmp(h->next_validators_hash, h->validators_hash, HASH_LEN) != 0)) {
		why_set(why, 0, has_next ? "%s: a next validator set follows, but its header"
			" announces no change of the set" : "%s: its header announces a change of"
			" the validator set, but no next set follows", where);
		return TALLY_E_ENCODING;
	}
	if (!has_next)
		return 0;
	cb->next_vals = malloc(sizeof(*cb->next_vals));
	if (!cb->next_vals)
		return fail(why, TALLY_E_NOMEM, where);
	rc = valset_decode_from(d, cb->next_vals);
	if (rc) {
		why_set(why, 0, "%s: next validator set: %s", where, tally_strerror(rc));
		return rc;
	}
	return 0;
}

static int decode_leases(struct chainfile *f, struct dec *d, char *why)
{
	uint32_t count = dec_u32(d);

	if (dec_error(d))
		return fail(why, dec_error(d), "lease count");
	/* Each lease takes at least its id, height and proof length: refuse
	 * counts the input cannot hold before allocating for them. */
	if (count > CHAINFILE_LEASES_MAX || count > dec_remaining(d) / (LEASE_ID_LEN + 12))
		return fail(why, TALLY_E_TRUNCATED, "lease count");
	for (uint32_t i = 0; i < count; i++) {
		uint8_t id[LEASE_ID_LEN];
		struct state_proof proof;
		uint64_t height;
		size_t n;
		const uint8_t *p;
		char where[48], sub[WHY_MAX];
		int rc;

		snprintf(where, sizeof(where), "lease %u", i);
		dec_fixed(d, id, LEASE_ID_LEN);
		height = dec_u64(d);
		p = dec_bytes(d, &n, CHAINFILE_PROOF_MAX);
		if (dec_error(d))
			return fail(why, dec_error(d), where);
		if (height == 0 || height > f->nblocks) {
			why_set(why, 0, "%s: its state is of block %" PRIu64 ", the file holds blocks"
				" 1..%zu", where, height, f->nblocks);
			return TALLY_E_HEIGHT;
		}
		rc = state_proof_decode(&proof, p, n);
		if (rc)
			return fail(why, rc, where);
		rc = chainfile_add_lease(f, id, height, &proof, sub);
		state_proof_free(&proof);
		if (rc) {
			why_set(why, 0, "%s: %s", where, sub);
			return rc;
		}
	}
	return 0;
}

int chainfile_decode(struct chainfile *f, const uint8_t *p, size_t n, char *why)
{
	uint8_t magic[CHAINFILE_MAGIC_LEN];
	struct dec d;
	int rc;

	chainfile_init(f);
	dec_init(&d, p, n);
	dec_fixed(&d, magic, sizeof(magic));
	if (dec_error(&d)) {
		rc = fail(why, dec_error(&d), "chain file header");
		goto err;
	}
	if (memcmp(magic, CHAINFILE_MAGIC, CHAINFILE_MAGIC_LEN)) {
		why_set(why, 0, "not a tally chain file (bad magic)");
		rc = TALLY_E_ENCODING;
		goto err;
	}
	uint32_t version = dec_u32(&d);
	if (dec_error(&d)) {
		rc = fail(why, dec_error(&d), "chain file header");
		goto err;
	}
	if (version != CHAINFILE_VERSION) {
		why_set(why, 0, "chain file version %u is not supported (expected %u)",
			 version, CHAINFILE_VERSION);
		rc = TALLY_E_VERSION;
		goto err;
	}
	rc = decode_genesis(f, &d, why);
	if (rc)
		goto err;
	uint64_t count = dec_u64(&d);
	if (dec_error(&d)) {
		rc = fail(why, dec_error(&d), "chain file header");
		goto err;
	}
	/* A block entry takes at least 9 bytes (two lengths and a flag). */
	if (count > dec_remaining(&d) / 9) {
		rc = fail(why, TALLY_E_TRUNCATED, "block count");
		goto err;
	}
	for (uint64_t i = 0; i < count; i++) {
		rc = decode_block(f, &d, i + 1, why);
		if (rc)
			goto err;
	}
	rc = decode_leases(f, &d, why);
	if (rc)
		goto err;
	rc = dec_finish(&d);
	if (rc) {
		fail(why, rc, "after the last lease");
		goto err;
	}
	return 0;
err:
	chainfile_free(f);
	return rc;
}

/* --- files ---------------------------------------------------------------- */

int chainfile_load(struct chainfile *f, const char *path, char *why)
{
	FILE *fp = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;
	int rc;

	chainfile_init(f);
	if (!fp) {
		why_set(why, 0, "cannot open %s: %s", path, strerror(errno));
		return errno == ENOENT ? TALLY_E_NOTFOUND : TALLY_E_IO;
	}
	for (;;) {
		if (len == cap) {
			cap = cap ? cap * 2 : 1 << 16;
			uint8_t *nb = realloc(buf, cap);
			if (!nb) {
				rc = TALLY_E_NOMEM;
				why_set(why, 0, "%s: out of memory", path);
				goto out;
			}
			buf = nb;
		}
		size_t got = fread(buf + len, 1, cap - len, fp);
		len += got;
		if (got == 0)
			break;
	}
	if (ferror(fp)) {
		rc = TALLY_E_IO;
		why_set(why, 0, "cannot read %s: %s", path, strerror(errno));
		goto out;
	}
	char inner[WHY_MAX];
	rc = chainfile_decode(f, buf, len, inner);
	if (rc == TALLY_E_NOTFOUND)
		rc = TALLY_E_ENCODING;
	/* A file cut short (an interrupted copy) or damaged is never read in
	 * part; the cure is a fresh export. */
	if (rc == TALLY_E_NOMEM)
		why_set(why, 0, "%s: %s", path, inner);
	else if (rc)
		why_set(why, 0, "%s is %s: export it again with `tally chain export` (%s)", path,
			rc == TALLY_E_TRUNCATED ? "cut short" : "damaged or not a chain file",
			inner);
out:
	free(buf);
	fclose(fp);
	return rc;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return errno == ENOSPC ? TALLY_E_DISKFULL : TALLY_E_IO;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int chainfile_save(const struct chainfile *f, const char *path, char *why)
{
	char tmp[4096];
	struct enc e;
	int rc, fd;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof(tmp)) {
		why_set(why, 0, "path too long");
		return TALLY_E_INVALID;
	}
	enc_init(&e);
	chainfile_encode(&e, f);
	if (enc_error(&e)) {
		rc = enc_error(&e);
		why_set(why, 0, "encoding the chain file: %s", tally_strerror(rc));
		goto out;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = TALLY_E_IO;
		/* Named as the user gave it: the temporary name is ours. */
		why_set(why, 0, "cannot create %s: %s", path, strerror(errno));
		goto out;
	}
	rc = write_all(fd, e.buf, e.len);
	if (!rc && fsync(fd) != 0)
		rc = TALLY_E_IO;
	if (close(fd) != 0 && !rc)
		rc = TALLY_E_IO;
	if (!rc && rename(tmp, path) != 0)
		rc = TALLY_E_IO;
	if (rc) {
		why_set(why, 0, "cannot write %s: %s", path, strerror(errno));
		unlink(tmp);
		goto out;
	}
	/* Make the rename itself durable. */
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s", path);
	int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
out:
	enc_free(&e);
	return rc;
}
