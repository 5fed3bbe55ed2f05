/* The fixed chain of fixchain.h. */
#include "tests/support/fixchain.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage_tx(struct fixchain *f, uint64_t seq, const uint8_t *prev, uint8_t out[HASH_LEN])
{
	struct tx t;

	cb_usage(&t, f->lease, seq, prev, FIX_BLOCK_NS(2) + seq * CB_SEC, CB_SEC, CB_SEC / 2);
	cb_tx(&f->c, &t, CB_VALIDATOR, false, out);
}

void fixchain_build(struct fixchain *f)
{
	struct chainbuild *c = &f->c;
	struct tx t;

	memset(f, 0, sizeof(*f));
	cb_init(c, FIX_CHAIN_ID, FIX_GENESIS_NS);

	memset(&t, 0, sizeof(t));
	t.kind = TX_LEASE_OPEN;
	cb_contract(c, &t.u.open, FIX_BLOCK_NS(1));
	cb_tx(c, &t, CB_TENANT, false, f->lease);
	memset(&t, 0, sizeof(t));
	t.kind = TX_TRANSFER;
	memcpy(t.u.transfer.to, c->key[CB_STRANGER].pub, PUBKEY_LEN);
	t.u.transfer.amount = 1000;
	cb_tx(c, &t, CB_VALIDATOR, false, f->transfer);
	cb_seal(c, FIX_BLOCK_NS(1), false, NULL, NULL);

	memset(&t, 0, sizeof(t));
	t.kind = TX_LEASE_START;
	memcpy(t.u.start.lease_id, f->lease, LEASE_ID_LEN);
	cb_tx(c, &t, CB_VALIDATOR, false, NULL);
	cb_seal(c, FIX_BLOCK_NS(2), false, NULL, NULL);

	usage_tx(f, 0, NULL, f->usage[0]);
	cb_seal(c, FIX_BLOCK_NS(3), false, NULL, NULL);

	usage_tx(f, 1, f->usage[0], f->usage[1]);
	memset(&t, 0, sizeof(t));
	t.kind = TX_STAKE;
	t.u.stake.amount = 50;
	cb_tx(c, &t, CB_VALIDATOR, false, NULL);
	cb_seal(c, FIX_BLOCK_NS(4), false, NULL, NULL);

	memset(&t, 0, sizeof(t));
	t.kind = TX_LEASE_CLOSE;
	memcpy(t.u.close.lease_id, f->lease, LEASE_ID_LEN);
	t.u.close.reason = CLOSE_TENANT;
	cb_tx(c, &t, CB_TENANT, false, NULL);
	cb_seal(c, FIX_BLOCK_NS(5), false, NULL, NULL);
}

void fixchain_free(struct fixchain *f)
{
	cb_free(&f->c);
}

void fixchain_encode_block(const struct fixchain *f, size_t i, struct enc *block,
			   struct enc *cert)
{
	enc_init(block);
	block_encode(block, &f->c.blocks[i]);
	enc_init(cert);
	cert_encode(cert, &f->c.certs[i]);
	if (enc_error(block) || enc_error(cert)) {
		fprintf(stderr, "fixchain: block %zu does not encode\n", i + 1);
		abort();
	}
}
