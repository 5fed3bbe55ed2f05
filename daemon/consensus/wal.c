/* The consensus write-ahead log (see wal.h). */
#include "daemon/consensus/wal.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/consensus/durable.h"
#include "lib/codec.h"
#include "lib/errors.h"

static const char wal_magic[8] = { 't', 'a', 'l', 'l', 'y', 'w', 'a', 'l' };

struct wal {
	int fd;
	char *path;
	uint64_t size;                   /* bytes of whole records in the file */
	bool broken;                     /* a failed append could not be cut back */
	uint8_t *data;                   /* the file as read at open */
	struct wal_rec *recs;
	size_t nrecs;
	uint64_t cut;
};

/* --- CRC-32C (Castagnoli), reflected ---------------------------------------- */

/* Table-driven, a byte at a time; on x86-64 with SSE4.2, the CPU's crc32
 * instruction (the same polynomial), 8 bytes at a time: a record holds a
 * whole proposed block, and the main thread writes one at every height. */
static uint32_t crc_table[256];
static bool crc_hw;
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
		crc_table[i] = c;
	}
#if defined(__x86_64__)
	__builtin_cpu_init();
	crc_hw = __builtin_cpu_supports("sse4.2");
#endif
}

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
static uint32_t crc_sse42(uint32_t c, const uint8_t *b, size_t n)
{
	uint64_t c64 = c;

	for (; n >= 8; b += 8, n -= 8) {
		uint64_t v;

		memcpy(&v, b, 8);   /* little-endian: the reflected order */
		c64 = __builtin_ia32_crc32di(c64, v);
	}
	c = (uint32_t)c64;
	while (n--)
		c = __builtin_ia32_crc32qi(c, *b++);
	return c;
}
#endif

uint32_t wal_crc32c(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint32_t c = 0xffffffffu;

	pthread_once(&crc_once, crc_init);
#if defined(__x86_64__)
	if (crc_hw)
		return crc_sse42(c, b, n) ^ 0xffffffffu;
#endif
	while (n--)
		c = crc_table[(c ^ *b++) & 0xff] ^ (c >> 8);
	return c ^ 0xffffffffu;
}

/* --- bodies ------------------------------------------------------------------- */

static void body_encode(struct enc *e, const struct wal_rec *r)
{
	enc_u8(e, r->kind);
	switch (r->kind) {
	case WAL_HEIGHT:
		enc_fixed(e, wal_magic, sizeof(wal_magic));
		enc_u32(e, WAL_VERSION);
		enc_u64(e, r->height);
		break;
	case WAL_MESSAGE:
		enc_u64(e, r->received_ns);
		enc_u8(e, r->flags);
		enc_bytes(e, r->msg, r->msg_len);
		break;
	case WAL_TIMEOUT:
		enc_u64(e, r->height);
		enc_u32(e, r->round);
		enc_u8(e, r->wait);
		break;
	default:
		if (!e->err)
			e->err = TALLY_E_RANGE;
	}
}

static int body_decode(struct wal_rec *r, const uint8_t *p, size_t n)
{
	uint8_t magic[sizeof(wal_magic)];
	struct dec d;

	memset(r, 0, sizeof(*r));
	dec_init(&d, p, n);
	r->kind = dec_u8(&d);
	switch (r->kind) {
	case WAL_HEIGHT:
		dec_fixed(&d, magic, sizeof(magic));
		if (!dec_error(&d) && memcmp(magic, wal_magic, sizeof(magic)))
			dec_fail(&d, TALLY_E_ENCODING);
		if (dec_u32(&d) != WAL_VERSION && !dec_error(&d))
			dec_fail(&d, TALLY_E_VERSION);
		r->height = dec_u64(&d);
		break;
	case WAL_MESSAGE:
		r->received_ns = dec_u64(&d);
		r->flags = dec_u8(&d);
		if (r->flags & ~(WAL_FLAG_VALID | WAL_FLAG_TIMELY))
			dec_fail(&d, TALLY_E_RANGE);
		r->msg = dec_bytes(&d, &r->msg_len, CS_MSG_MAX);
		break;
	case WAL_TIMEOUT:
		r->height = dec_u64(&d);
		r->round = dec_u32(&d);
		r->wait = dec_u8(&d);
		if (r->wait > 3)
			dec_fail(&d, TALLY_E_RANGE);
		break;
	default:
		dec_fail(&d, TALLY_E_RANGE);
	}
	return dec_finish(&d);
}

/* --- the file ------------------------------------------------------------------- */

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int io_err(char *why, const char *what, const char *path)
{
	int rc = errno == ENOSPC ? TALLY_E_DISKFULL : TALLY_E_IO;

	return why_set(why, rc, "consensus WAL %s: cannot %s: %s", path, what, strerror(errno));
}

static int read_all(struct wal *w, char *why)
{
	struct stat st;
	size_t got = 0;

	if (fstat(w->fd, &st))
		return io_err(why, "stat", w->path);
	w->data = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!w->data)
		return TALLY_E_NOMEM;
	while (got < (size_t)st.st_size) {
		ssize_t n = pread(w->fd, w->data + got, (size_t)st.st_size - got, (off_t)got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return io_err(why, "read", w->path);
		if (n == 0)
			break;
		got += (size_t)n;
	}
	w->size = got;
	return 0;
}

/* Splits the bytes into records up to the first one that does not check. */
static int scan(struct wal *w)
{
	uint64_t off = 0;
	size_t cap = 0;

	while (w->size - off >= 8) {
		const uint8_t *h = w->data + off;
		uint32_t len = le32(h), crc = le32(h + 4);
		struct wal_rec r;

		if (len == 0 || len > WAL_RECORD_MAX || len > w->size - off - 8 ||
		    wal_crc32c(h + 8, len) != crc || body_decode(&r, h + 8, len))
			break;
		/* Only the first record may be, and must be, the height record. */
		if ((w->nrecs == 0) != (r.kind == WAL_HEIGHT))
			break;
		if (w->nrecs == cap) {
			cap = cap ? 2 * cap : 64;
			struct wal_rec *grown = realloc(w->recs, cap * sizeof(*grown));

			if (!grown)
				return TALLY_E_NOMEM;
			w->recs = grown;
		}
		w->recs[w->nrecs++] = r;
		off += 8 + (uint64_t)len;
	}
	w->cut = w->size - off;
	w->size = off;
	return 0;
}

int wal_open(struct wal **out, const char *path, char *why)
{
	struct wal *w = calloc(1, sizeof(*w));
	bool created;
	int rc;

	*out = NULL;
	if (!w)
		return TALLY_E_NOMEM;
	w->fd = -1;
	w->path = strdup(path);
	if (!w->path) {
		rc = TALLY_E_NOMEM;
		goto err;
	}
	created = access(path, F_OK) != 0;
	w->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (w->fd < 0) {
		rc = io_err(why, "open", path);
		goto err;
	}
	if (created && durable_dir_of(path)) {
		rc = io_err(why, "record the new file in its directory", path);
		goto err;
	}
	rc = read_all(w, why);
	if (!rc)
		rc = scan(w);
	if (rc)
		goto err;
	if (w->cut && (ftruncate(w->fd, (off_t)w->size) || fsync(w->fd))) {
		rc = io_err(why, "cut the torn tail", path);
		goto err;
	}
	*out = w;
	return 0;
err:
	wal_close(w);
	return rc;
}

void wal_close(struct wal *w)
{
	if (!w)
		return;
	if (w->fd >= 0)
		close(w->fd);
	free(w->path);
	free(w->data);
	free(w->recs);
	free(w);
}

size_t wal_nrecords(const struct wal *w)
{
	return w->nrecs;
}

const struct wal_rec *wal_record(const struct wal *w, size_t i)
{
	return i < w->nrecs ? &w->recs[i] : NULL;
}

uint64_t wal_cut_bytes(const struct wal *w)
{
	return w->cut;
}

int wal_append(struct wal *w, const struct wal_rec *r, char *why)
{
	struct enc e;
	uint8_t frame[8];
	uint32_t crc;
	int rc = 0;

	if (w->broken)
		return why_set(why, TALLY_E_IO, "consensus WAL %s: an earlier append failed and"
			       " could not be undone; restart the node", w->path);
	enc_init(&e);
	enc_u32(&e, 0);
	enc_u32(&e, 0);
	body_encode(&e, r);
	if (enc_error(&e) || e.len - 8 > WAL_RECORD_MAX) {
		rc = enc_error(&e) ? enc_error(&e) : TALLY_E_TOOLONG;
		enc_free(&e);
		return why_set(why, rc, "consensus WAL: cannot encode a record: %s",
			       tally_strerror(rc));
	}
	crc = wal_crc32c(e.buf + 8, e.len - 8);
	for (int i = 0; i < 4; i++) {
		frame[i] = (uint8_t)((e.len - 8) >> (8 * i));
		frame[4 + i] = (uint8_t)(crc >> (8 * i));
	}
	memcpy(e.buf, frame, sizeof(frame));
	if (durable_write_at(w->fd, e.buf, e.len, w->size) || fdatasync(w->fd)) {
		rc = io_err(why, "append", w->path);
		/* Leave no partial record for the next append to follow. */
		if (ftruncate(w->fd, (off_t)w->size) || fdatasync(w->fd))
			w->broken = true;
	} else {
		w->size += e.len;
	}
	enc_free(&e);
	return rc;
}

int wal_start_height(struct wal *w, uint64_t height, char *why)
{
	struct wal_rec r = { .kind = WAL_HEIGHT, .height = height };

	if (ftruncate(w->fd, 0) || fsync(w->fd)) {
		w->broken = true;
		return io_err(why, "empty the log for a new height", w->path);
	}
	w->size = 0;
	w->broken = false;
	return wal_append(w, &r, why);
}
