/* Node and auditor paths over a built chain (cbpaths.h). */
#include "tests/support/cbpaths.h"

#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/chain/audit.h"

int cb_apply_blocks(struct ledger *l, const struct chainbuild *cb, size_t first, size_t last,
		    char *why)
{
	int rc = 0;

	for (size_t i = first; i <= last && !rc; i++) {
		struct enc b, c;

		enc_init(&b);
		enc_init(&c);
		block_encode(&b, &cb->blocks[i]);
		cert_encode(&c, &cb->certs[i]);
		ck_assert(!enc_error(&b) && !enc_error(&c));
		rc = ledger_apply_block(l, b.buf, b.len, c.buf, c.len, why);
		enc_free(&b);
		enc_free(&c);
	}
	return rc;
}

int cb_audit_code(const struct chainbuild *cb, const uint8_t lease[HASH_LEN], uint64_t h)
{
	struct audit_block *blocks = calloc(cb->nblocks ? cb->nblocks : 1, sizeof(*blocks));
	struct audit_input in;
	struct audit_result res;
	char why[WHY_MAX];
	int code = 0;

	ck_assert_ptr_nonnull(blocks);
	memset(&in, 0, sizeof(in));
	for (size_t i = 0; i < cb->nblocks; i++) {
		blocks[i].block = &cb->blocks[i];
		blocks[i].cert = &cb->certs[i];
		blocks[i].next_vals = NULL;
	}
	in.genesis = &cb->genesis;
	in.blocks = blocks;
	in.nblocks = cb->nblocks;
	memcpy(in.lease_id, lease, LEASE_ID_LEN);
	ck_assert_msg(audit_run(&in, &res, why) == 0, "%s", why);
	for (size_t i = 0; i < res.nerrors && !code; i++)
		if (res.errors[i].height == h)
			code = res.errors[i].code;
	if (!res.verified && !code)
		code = -2;
	audit_result_free(&res);
	free(blocks);
	return code;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	return remove(p);
}

void cb_rm_tree(const char *dir)
{
	nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}
