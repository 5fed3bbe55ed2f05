/* tamper: damages a copy of an exported chain the way a dishonest provider
 * might, so the end-to-end tests can check that `tally audit` notices.
 *
 *   tamper IN OUT LEASE byte SEQ      change one byte of usage record SEQ
 *   tamper IN OUT LEASE drop SEQ      remove usage record SEQ from its block
 *   tamper IN OUT LEASE swap SEQ SEQ  exchange two usage records
 *   tamper IN OUT LEASE header HEIGHT change the time in block HEIGHT's header
 *   tamper IN OUT LEASE state 0       claim one unit less charged for the lease
 *                                     (its state proof then fails) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/chain/chainfile.h"
#include "lib/codec.h"
#include "lib/chain/tx.h"
#include "tests/support/fileclaim.h"

struct where {
	struct block *b;
	size_t i;
};

/* The block and index of the lease's usage record seq. */
static int find_record(struct chainfile *f, const uint8_t lease[LEASE_ID_LEN], uint64_t seq,
		       struct where *w)
{
	for (size_t h = 0; h < f->nblocks; h++) {
		struct block *b = &f->blocks[h].block;
		for (size_t i = 0; i < b->ntx; i++) {
			struct tx t;
			if (tx_decode(&t, b->txs[i].bytes, b->txs[i].len) || t.kind != TX_USAGE ||
			    memcmp(t.u.usage.lease_id, lease, LEASE_ID_LEN) || t.u.usage.seq != seq)
				continue;
			w->b = b;
			w->i = i;
			return 0;
		}
	}
	fprintf(stderr, "tamper: no usage record %llu of that lease\n", (unsigned long long)seq);
	return 1;
}

int main(int argc, char **argv)
{
	struct chainfile f;
	uint8_t lease[LEASE_ID_LEN];
	char why[WHY_MAX] = "";
	struct where a, b;

	if (argc < 6 || hex_decode(argv[3], lease, LEASE_ID_LEN)) {
		fprintf(stderr, "usage: tamper IN OUT LEASE byte|drop|swap|header|state N [N]\n");
		return 2;
	}
	chainfile_init(&f);
	if (chainfile_load(&f, argv[1], why)) {
		fprintf(stderr, "tamper: %s\n", why);
		return 2;
	}
	const char *what = argv[4];
	uint64_t n = strtoull(argv[5], NULL, 10);
	if (!strcmp(what, "byte")) {
		if (find_record(&f, lease, n, &a))
			return 2;
		/* A byte in the middle: inside the metered figures. */
		uint8_t changed[TX_MAX_SIZE];
		size_t len = a.b->txs[a.i].len;

		memcpy(changed, a.b->txs[a.i].bytes, len);
		changed[len / 2] ^= 0x01;
		if (block_tx_replace(a.b, a.i, changed, len))
			return 2;
	} else if (!strcmp(what, "drop")) {
		if (find_record(&f, lease, n, &a))
			return 2;
		free((void *)a.b->txs[a.i].bytes);   /* the chain file's own copy */
		memmove(&a.b->txs[a.i], &a.b->txs[a.i + 1], (a.b->ntx - a.i - 1) * sizeof(a.b->txs[0]));
		a.b->ntx--;
	} else if (!strcmp(what, "swap") && argc == 7) {
		if (find_record(&f, lease, n, &a) ||
		    find_record(&f, lease, strtoull(argv[6], NULL, 10), &b))
			return 2;
		struct block_tx tmp = a.b->txs[a.i];
		a.b->txs[a.i] = b.b->txs[b.i];
		b.b->txs[b.i] = tmp;
	} else if (!strcmp(what, "state")) {
		const struct chainfile_lease *cl = chainfile_find_lease(&f, lease);
		if (!cl) {
			fprintf(stderr, "tamper: the file holds no state of that lease\n");
			return 2;
		}
		if (fileclaim_undercharge(&f.leases[cl - f.leases]))
			return 2;
	} else if (!strcmp(what, "header")) {
		if (n == 0 || n > f.nblocks) {
			fprintf(stderr, "tamper: no block %llu\n", (unsigned long long)n);
			return 2;
		}
		f.blocks[n - 1].block.header.time_ns += 1;
	} else {
		fprintf(stderr, "tamper: unknown change '%s'\n", what);
		return 2;
	}
	int rc = chainfile_save(&f, argv[2], why);
	if (rc)
		fprintf(stderr, "tamper: %s\n", why);
	chainfile_free(&f);
	return rc ? 2 : 0;
}
