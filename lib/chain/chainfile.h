/* The chain export file: everything an auditor needs to verify a chain and
 * audit its leases offline, in one binary file that `tally chain export`
 * writes and `tally audit --chain` / `tally chain verify` read.
 *
 * Layout (canonical encoding of lib/codec.h; little-endian, bytes = u32
 * length then the bytes; docs/FORMATS.md, "Chain export file"):
 *
 *   fixed8  magic            "TALLYCHN"
 *   u32     version          2
 *   bytes   genesis          the genesis JSON text (lib/chain/genesis.h), <= 16 MiB
 *   u64     block count      blocks 1..count, in height order
 *   count x
 *     bytes block            block_encode() of the block at that height
 *     bytes cert             cert_encode() of its commit certificate
 *     u8      has_next_vals  1 when header.next_validators_hash differs
 *                            from header.validators_hash, else 0
 *     [valset]               when has_next_vals: the set that signs the
 *                            next block: u32 n | n x (fixed32 pubkey | u64 stake),
 *                            pubkeys ascending and unique, 1 <= n <= 128,
 *                            every stake > 0 (the bytes valset_hash hashes)
 *   u32     lease count
 *   count x, lease ids strictly ascending
 *     fixed32 lease id
 *     u64     height         1..block count: the block whose state root
 *                            the proof leads to
 *     bytes   proof          a state proof (lib/chain/state_proof.h) of the
 *                            lease's key 0x03 || id, which holds the lease:
 *                            its state at that height, as the file claims it
 *
 * Decoding is strict: a wrong magic or version, any inner object that does
 * not decode canonically, a block whose height is not its position, a next
 * validator set present where its header announces no change or absent
 * where it does, a length beyond its maximum, leases out of order, a lease height outside the file's
 * blocks, a proof that does not hold its lease, and bytes after the last
 * lease are all errors. Whether a proof leads to its block's state root is
 * the verifiers' check (chainfile_check_lease), once that block verifies.
 * There is no checksum: the blocks' own hashes and certificates protect the
 * content, and a changed byte must surface as the record, lease or height it
 * breaks. */
#ifndef TALLY_CHAINFILE_H
#define TALLY_CHAINFILE_H

#include <stddef.h>
#include <stdint.h>

#include "contracts/contract.h"
#include "lib/chain/block.h"
#include "lib/codec.h"
#include "lib/chain/genesis.h"
#include "lib/chain/state_proof.h"
#include "lib/chain/tx.h"

#define CHAINFILE_MAGIC "TALLYCHN"
#define CHAINFILE_MAGIC_LEN 8
#define CHAINFILE_VERSION 2   /* 2: lease states carry state proofs */
#define CHAINFILE_GENESIS_MAX (16u << 20)
/* A block holds at most BLOCK_MAX_TXS transactions of TX_MAX_SIZE bytes. */
#define CHAINFILE_BLOCK_MAX (512u + 4u + (size_t)BLOCK_MAX_TXS * (4u + TX_MAX_SIZE))
#define CHAINFILE_CERT_MAX (64u + (size_t)VALIDATORS_MAX * (PUBKEY_LEN + SIG_LEN))
/* The largest state proof: STATE_PROOF_ENTRIES_MAX entries of the longest key
 * and value, and the siblings. */
#define CHAINFILE_PROOF_MAX (9u + (size_t)STATE_PROOF_ENTRIES_MAX * \
			     (8u + STATE_KEY_LEN + STATE_VALUE_MAX) + STATE_TREE_LEVELS * HASH_LEN)
#define CHAINFILE_LEASES_MAX 10000000u

struct chainfile_block {
	struct block block;
	struct commit_cert *cert;          /* owned */
	struct validator_set *next_vals;   /* owned; NULL when the set does not change */
};

/* A lease's state as the file claims it, and the proof of that claim. */
struct chainfile_lease {
	uint8_t id[LEASE_ID_LEN];
	uint64_t height;                   /* the block whose state root proof leads to */
	struct state_proof proof;          /* owned */
	struct lease lease;                /* the state the proof holds for the lease */
};

struct chainfile {
	char *genesis_json;                /* owned, NUL terminated */
	struct genesis genesis;            /* parsed from genesis_json on decode */
	int have_genesis;
	size_t nblocks;
	struct chainfile_block *blocks;    /* blocks[i] is height i + 1 */
	size_t nleases;
	struct chainfile_lease *leases;    /* ascending ids */
};

void chainfile_init(struct chainfile *f);
void chainfile_free(struct chainfile *f);

/* Builders used by `tally chain export`; the file takes ownership of nothing
 * it is given: everything is copied. */
int chainfile_set_genesis(struct chainfile *f, const char *json, char *why);
int chainfile_add_block(struct chainfile *f, const struct block *b,
			const struct commit_cert *cert, const struct validator_set *next_vals);
/* The lease id's state at block height, as proof holds it (copied).
 * Leases must come in strictly ascending id order (TALLY_E_ENCODING); a
 * proof that does not hold the lease is its state_proof_lease_value error.
 * why[WHY_MAX]. */
int chainfile_add_lease(struct chainfile *f, const uint8_t id[LEASE_ID_LEN], uint64_t height,
			const struct state_proof *proof, char *why);
const struct chainfile_lease *chainfile_find_lease(const struct chainfile *f,
						   const uint8_t id[LEASE_ID_LEN]);
/* Whether the file's claim for a lease is what the chain committed: its
 * proof leads to the state root of the block at its height
 * (state_proof_lease). Only as good as that block: the caller verifies it
 * first. On failure why[WHY_MAX] names the block and the lease. */
int chainfile_check_lease(const struct chainfile *f, const struct chainfile_lease *cl, char *why);

/* Whether blocks 1..height of the file are the ones the header at height
 * commits to, by hashes alone (no signature, no execution): each block's
 * prev_block_id is the id of the one before (block 1's the genesis hash),
 * its last_commit_hash the hash of the certificate the file holds for the
 * one before (zero for block 1), its txs_root the root of its transactions,
 * and a next validator set the file holds for it hashes to its
 * next_validators_hash. An audit from a checkpoint at height, which reads
 * the validator set and usage log from these blocks, so refuses a changed
 * byte before the checkpoint (TALLY_E_LINK, TALLY_E_TXROOT, TALLY_E_VALSET;
 * why[WHY_MAX] names the block). */
int chainfile_check_prefix(const struct chainfile *f, size_t height, char *why);

void chainfile_encode(struct enc *e, const struct chainfile *f);
/* Strict decode; on failure why[WHY_MAX] says what and where
 * ("block at height 7: commit certificate: input truncated"). */
int chainfile_decode(struct chainfile *f, const uint8_t *p, size_t n, char *why);

/* Whole-file I/O. Saving writes a temporary file in the same directory,
 * fsyncs it and renames it over path, so a reader never sees half a file.
 * Loading returns TALLY_E_NOTFOUND only for a file that does not exist,
 * TALLY_E_IO for one that cannot be read, TALLY_E_NOMEM; any other code is
 * chainfile_decode's refusal of the content (its TALLY_E_NOTFOUND, a lease
 * proof that does not hold its lease, becomes TALLY_E_ENCODING here, so a
 * damaged file is never taken for a missing one). */
int chainfile_load(struct chainfile *f, const char *path, char *why);
int chainfile_save(const struct chainfile *f, const char *path, char *why);


#endif
