/* The mempool's durable copy (see pending.h). */
#include "daemon/ledger/pending.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/consensus/durable.h"
#include "lib/crypto.h"
#include "lib/errors.h"

#define PENDING_WBUF (64 * 1024)         /* the rewrite's buffer */

struct pending_rec {
	size_t off, len;                 /* in data */
};

struct pending {
	char path[PATH_MAX];
	char tmp[PATH_MAX];
	int fd;                          /* -1: not written yet at this run */
	uint64_t size;                   /* bytes of whole records in the file */
	bool broken;                     /* a torn append could not be cut back */
	/* Read at open. */
	uint8_t *data;
	size_t ndata;
	struct pending_rec *recs;
	size_t nrecs;
	uint64_t cut;
	/* A rewrite under way: its file, what it wrote, its buffer. */
	int tmp_fd;
	uint64_t tmp_size;
	uint8_t *wbuf;
	size_t nwbuf;
	bool tmp_failed;
};

static int io_err(char *why, const char *what, const char *path)
{
	int rc = errno == ENOSPC ? TALLY_E_DISKFULL : TALLY_E_IO;

	return why_set(why, rc, "%s: cannot %s: %s", path, what, strerror(errno));
}

/* A record's check: the head of the transaction's hash (tx_hash: SHA-256
 * of its bytes, which the writers mostly have already). */
static void check_of(const uint8_t *tx, size_t len, uint8_t out[PENDING_CHECK_LEN])
{
	uint8_t h[HASH_LEN];

	tx_hash(tx, len, h);
	memcpy(out, h, PENDING_CHECK_LEN);
}

size_t pending_frame_hashed(uint8_t *out, const uint8_t *tx, size_t len,
			    const uint8_t hash[HASH_LEN])
{
	if (len == 0 || len > TX_MAX_SIZE)
		return 0;
	for (int i = 0; i < 4; i++)
		out[i] = (uint8_t)(len >> (8 * i));
	memcpy(out + 4, tx, len);
	memcpy(out + 4 + len, hash, PENDING_CHECK_LEN);
	return 4 + len + PENDING_CHECK_LEN;
}

size_t pending_frame(uint8_t *out, const uint8_t *tx, size_t len)
{
	uint8_t h[HASH_LEN];

	if (len == 0 || len > TX_MAX_SIZE)
		return 0;
	tx_hash(tx, len, h);
	return pending_frame_hashed(out, tx, len, h);
}

/* Reads up to n bytes; fewer only at the end of the file. */
static int read_full(FILE *f, uint8_t *p, size_t n, size_t *got)
{
	*got = fread(p, 1, n, f);
	return ferror(f) ? -1 : 0;
}

/* The whole records from the start, into p->data; stops at the first bad
 * one. */
static int read_records(struct pending *p, FILE *f, char *why)
{
	uint8_t rec[PENDING_RECORD_MAX], check[PENDING_CHECK_LEN];
	size_t cap = 0, rcap = 0, got;
	struct stat st;

	for (;;) {
		size_t len;

		if (read_full(f, rec, 4, &got))
			return io_err(why, "read", p->path);
		if (got < 4)
			break;
		len = (size_t)rec[0] | (size_t)rec[1] << 8 | (size_t)rec[2] << 16 |
		      (size_t)rec[3] << 24;
		if (len == 0 || len > TX_MAX_SIZE)
			break;
		if (read_full(f, rec + 4, len + PENDING_CHECK_LEN, &got))
			return io_err(why, "read", p->path);
		if (got < len + PENDING_CHECK_LEN)
			break;
		check_of(rec + 4, len, check);
		if (memcmp(check, rec + 4 + len, PENDING_CHECK_LEN))
			break;
		if (p->ndata + len > cap) {
			size_t ncap = cap ? 2 * cap : 64 * 1024;
			uint8_t *d = realloc(p->data, ncap);

			if (!d)
				return TALLY_E_NOMEM;
			p->data = d;
			cap = ncap;
		}
		if (p->nrecs == rcap) {
			size_t nrcap = rcap ? 2 * rcap : 256;
			struct pending_rec *r = realloc(p->recs, nrcap * sizeof(*r));

			if (!r)
				return TALLY_E_NOMEM;
			p->recs = r;
			rcap = nrcap;
		}
		memcpy(p->data + p->ndata, rec + 4, len);
		p->recs[p->nrecs++] = (struct pending_rec){ p->ndata, len };
		p->ndata += len;
		p->size += 4 + len + PENDING_CHECK_LEN;
	}
	if (fstat(fileno(f), &st))
		return io_err(why, "stat", p->path);
	p->cut = (uint64_t)st.st_size > p->size ? (uint64_t)st.st_size - p->size : 0;
	return 0;
}

int pending_open_named(struct pending **out, const char *data_dir, const char *name, char *why)
{
	struct pending *p = calloc(1, sizeof(*p));
	FILE *f;
	int rc = 0;

	*out = NULL;
	if (!p)
		return TALLY_E_NOMEM;
	p->fd = -1;
	p->tmp_fd = -1;
	if (snprintf(p->path, sizeof(p->path), "%s/%s", data_dir, name) >=
	    (int)sizeof(p->path) ||
	    snprintf(p->tmp, sizeof(p->tmp), "%s.tmp", p->path) >= (int)sizeof(p->tmp)) {
		free(p);
		return why_set(why, TALLY_E_INVALID, "data directory path too long");
	}
	f = fopen(p->path, "rbe");
	if (f) {
		rc = read_records(p, f, why);
		fclose(f);
	} else if (errno != ENOENT) {
		rc = io_err(why, "open", p->path);
	}
	if (rc) {
		pending_close(p);
		return rc;
	}
	/* What was read is the file's content for the appends' offsets only
	 * once this run writes it (pending_truncate, pending_rewrite_*). */
	p->size = 0;
	*out = p;
	return 0;
}

int pending_open_to_restore(struct pending **out, const char *data_dir, const char *name,
			    char *why)
{
	char line[WHY_MAX] = "";
	int rc = pending_open_named(out, data_dir, name, line);

	if (rc)
		return why_set(why, rc, "%s; move it aside to start without the transactions it"
			       " holds", line[0] ? line : tally_strerror(rc));
	return 0;
}

static void rewrite_abort(struct pending *p)
{
	if (p->tmp_fd < 0)
		return;
	close(p->tmp_fd);
	p->tmp_fd = -1;
	unlink(p->tmp);
	free(p->wbuf);
	p->wbuf = NULL;
}

void pending_close(struct pending *p)
{
	if (!p)
		return;
	rewrite_abort(p);
	if (p->fd >= 0)
		close(p->fd);
	pending_forget_read(p);
	free(p);
}

size_t pending_count(const struct pending *p)
{
	return p->nrecs;
}

const uint8_t *pending_record(const struct pending *p, size_t i, size_t *len)
{
	if (i >= p->nrecs)
		return NULL;
	*len = p->recs[i].len;
	return p->data + p->recs[i].off;
}

uint64_t pending_cut_bytes(const struct pending *p)
{
	return p->cut;
}

void pending_forget_read(struct pending *p)
{
	free(p->data);
	free(p->recs);
	p->data = NULL;
	p->recs = NULL;
	p->ndata = p->nrecs = 0;
}

uint64_t pending_size(const struct pending *p)
{
	return p->size;
}

int pending_append(struct pending *p, const uint8_t *recs, size_t n, char *why)
{
	if (p->fd < 0 || !n)
		return 0;
	if (p->broken)
		return why_set(why, TALLY_E_IO, "%s: an earlier append could not be cut back;"
			       " appends wait for the next rewrite", p->path);
	if (durable_write_at(p->fd, recs, n, p->size)) {
		int rc = io_err(why, "append", p->path);

		if (ftruncate(p->fd, (off_t)p->size))
			p->broken = true;
		return rc;
	}
	p->size += n;
	return 0;
}

int pending_truncate(struct pending *p, char *why)
{
	if (p->fd < 0) {
		p->fd = open(p->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (p->fd < 0)
			return io_err(why, "create", p->path);
	} else if (ftruncate(p->fd, 0)) {
		return io_err(why, "truncate", p->path);
	}
	p->size = 0;
	p->broken = false;
	return 0;
}

int pending_rewrite_begin(struct pending *p, char *why)
{
	rewrite_abort(p);
	p->wbuf = malloc(PENDING_WBUF);
	if (!p->wbuf)
		return TALLY_E_NOMEM;
	p->tmp_fd = open(p->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (p->tmp_fd < 0) {
		free(p->wbuf);
		p->wbuf = NULL;
		return io_err(why, "create", p->tmp);
	}
	p->tmp_size = 0;
	p->nwbuf = 0;
	p->tmp_failed = false;
	return 0;
}

static int rewrite_flush(struct pending *p, char *why)
{
	if (durable_write_at(p->tmp_fd, p->wbuf, p->nwbuf, p->tmp_size)) {
		p->tmp_failed = true;
		return io_err(why, "write", p->tmp);
	}
	p->tmp_size += p->nwbuf;
	p->nwbuf = 0;
	return 0;
}

int pending_rewrite_add(struct pending *p, const uint8_t *tx, size_t len, char *why)
{
	int rc;

	if (p->tmp_fd < 0 || p->tmp_failed)
		return why_set(why, TALLY_E_IO, "%s: the rewrite failed", p->tmp);
	if (p->nwbuf + PENDING_RECORD_MAX > PENDING_WBUF && (rc = rewrite_flush(p, why)))
		return rc;
	if (!pending_frame(p->wbuf + p->nwbuf, tx, len)) {
		p->tmp_failed = true;   /* a rewrite missing a record must not commit */
		return why_set(why, TALLY_E_TOOLONG, "a transaction of %zu bytes in the mempool",
			       len);
	}
	p->nwbuf += 4 + len + PENDING_CHECK_LEN;
	return 0;
}

int pending_rewrite_commit(struct pending *p, char *why)
{
	int rc;

	if (p->tmp_fd < 0 || p->tmp_failed) {
		rewrite_abort(p);
		return why_set(why, TALLY_E_IO, "%s: the rewrite failed", p->tmp);
	}
	if ((rc = rewrite_flush(p, why))) {
		rewrite_abort(p);
		return rc;
	}
	/* No fsync (pending.h): the rename makes the new content the log's
	 * for any process that opens it later, which is what a kill needs. */
	if (rename(p->tmp, p->path)) {
		rc = io_err(why, "rename it over the log", p->tmp);
		rewrite_abort(p);
		return rc;
	}
	if (p->fd >= 0)
		close(p->fd);
	p->fd = p->tmp_fd;
	p->tmp_fd = -1;
	p->size = p->tmp_size;
	p->broken = false;
	free(p->wbuf);
	p->wbuf = NULL;
	return 0;
}
