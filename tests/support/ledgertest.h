/* What the ledger's unit tests do to a real ledger (daemon/ledger/ledger.h)
 * over and over: sign a transaction into its wire bytes, submit it, make a
 * block, read a balance. Each one asserts success with Check (a failure
 * ends the test, naming the ledger's reason). For unit tests: links the
 * ledger. */
#ifndef TALLY_TEST_LEDGERTEST_H
#define TALLY_TEST_LEDGERTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/ledger/ledger.h"
#include "lib/chain/genesis.h"
#include "lib/chain/tx.h"

/* A transaction as a client sends it: its bytes and their hash. */
struct signed_tx {
	uint8_t bytes[TX_MAX_SIZE];
	size_t len;
	uint8_t hash[HASH_LEN];
};

/* A test case's directory, /tmp/tally-NAME-XXXXXX, made into base (size
 * bytes); for an unchecked fixture (the runner's process), so it aborts
 * when it cannot. */
void lt_case_dir(char *base, size_t size, const char *name);
/* A test's own directory inside the case's base, made into dir (size
 * bytes). */
void lt_test_dir(char *dir, size_t size, const char *base);

/* The world of a ledger test on real files (test_inbox.c, test_pending.c):
 * a validator with stake and two funded accounts, the genesis naming them,
 * a directory per test case and one per test inside it. */
enum { LT_VAL, LT_TENANT, LT_OTHER, LT_NKEYS };
struct lt_world {
	struct tally_key keys[LT_NKEYS];
	struct genesis gen;
	struct genesis_account accounts[2];
	char base[40];   /* per test case, made and removed in the runner's process */
	char dir[80];    /* per test, inside base */
};
/* A test case's unchecked fixture: base made as /tmp/tally-NAME-XXXXXX
 * (lt_case_dir), then removed with all below it. */
void lt_world_case_begin(struct lt_world *w, const char *name);
void lt_world_case_end(struct lt_world *w);
/* A test's checked fixture: the keys from seed0 (lt_keys), the genesis of
 * chain at t0_ns (ns since the epoch) with the validator's stake and funds
 * micro-units for tenant and other each, and dir made; then dir removed
 * and the keys freed. */
void lt_world_begin(struct lt_world *w, const char *chain, uint64_t t0_ns, uint8_t seed0,
		    uint64_t stake, uint64_t funds);
void lt_world_end(struct lt_world *w);

/* keys[0..n) from fixed seeds: every byte of key i's seed is seed0 + i. */
void lt_keys(struct tally_key *keys, int n, uint8_t seed0);
/* A genesis of chain at t0_ns (ns since the epoch) with one validator, val
 * with stake (named "node0"), and two accounts, a with balance fa and b
 * with fb, in the key order a genesis requires; accounts is the storage g
 * points into. */
void lt_genesis(struct genesis *g, struct genesis_account accounts[2], const char *chain,
		uint64_t t0_ns, const struct tally_key *val, uint64_t stake,
		const struct tally_key *a, uint64_t fa, const struct tally_key *b, uint64_t fb);

/* t signed by k for the chain of genesis g, encoded into out. */
void lt_sign(struct tx *t, const struct tally_key *k, const struct genesis *g,
	     struct signed_tx *out);
/* A TRANSFER of amount from `from` to `to` at nonce, for chain (which may
 * differ from g's, for a transaction of another chain), signed by from for
 * the chain of genesis g. */
void lt_transfer(struct signed_tx *out, const char *chain, const struct tally_key *from,
		 const struct tally_key *to, uint64_t nonce, uint64_t amount,
		 const struct genesis *g);
/* s submitted through admission (ledger_submit_admitted): true when it is
 * held for a nonce gap, false when queued. */
bool lt_submit_held(struct ledger *l, const struct signed_tx *s);
/* The block the ledger makes and commits at time_ns (ns since the epoch). */
struct ledger_block_result lt_produce(struct ledger *l, uint64_t time_ns);
/* Where the ledger has the transaction of hash (the lookup must succeed). */
enum ledger_tx_state lt_tx_state(struct ledger *l, const uint8_t hash[HASH_LEN]);
/* An account's balance, micro-units; 0 for an account the chain lacks. */
uint64_t lt_balance(struct ledger *l, const uint8_t pub[PUBKEY_LEN]);

#endif
