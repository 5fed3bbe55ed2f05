/* The chain export file: everything an auditor needs to verify a chain and
 * audit its leases offline, in one binary file that `tally chain export`
 * writes and `tally audit --chain` / `tally chain verify` read.
 *
 * Layout (canonical encoding of lib/codec.h; little-endian, bytes = u32
 * length then the bytes):
 *
 *   fixed8  magic            "TALLYCHN"
 *   u32     version          1
 *   bytes   genesis          the genesis JSON text (lib/chain/genesis.h), <= 16 MiB
 *   u64     states_height    the chain height when the lease states were read
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
 *   count x
 *     bytes lease            lease_encode_to() of a lease as the node
 *                            reported it (the settlement an audit checks)
 *
 * Decoding is strict: a wrong magic or version, any inner object that does
 * not decode canonically, a block whose height is not its position, a length
 * beyond its maximum and bytes after the last lease are all errors. There is
 * no checksum: the blocks' own hashes and certificates protect the content,
 * and a changed byte must surface as the record or height it breaks. */
#ifndef TALLY_CHAINFILE_H
#define TALLY_CHAINFILE_H

#include <stddef.h>
#include <stdint.h>

#include "contracts/contract.h"
#include "lib/chain/block.h"
#include "lib/codec.h"
#include "lib/chain/genesis.h"
#include "lib/chain/tx.h"

#define CHAINFILE_MAGIC "TALLYCHN"
#define CHAINFILE_MAGIC_LEN 8
#define CHAINFILE_VERSION 1
#define CHAINFILE_GENESIS_MAX (16u << 20)
/* A block holds at most BLOCK_MAX_TXS transactions of TX_MAX_SIZE bytes. */
#define CHAINFILE_BLOCK_MAX (512u + 4u + (size_t)BLOCK_MAX_TXS * (4u + TX_MAX_SIZE))
#define CHAINFILE_CERT_MAX (64u + (size_t)VALIDATORS_MAX * (PUBKEY_LEN + SIG_LEN))
#define CHAINFILE_LEASE_MAX 4096u
#define CHAINFILE_LEASES_MAX 10000000u

struct chainfile_block {
	struct block block;
	struct commit_cert *cert;          /* owned */
	struct validator_set *next_vals;   /* owned; NULL when the set does not change */
};

struct chainfile {
	char *genesis_json;                /* owned, NUL terminated */
	struct genesis genesis;            /* parsed from genesis_json on decode */
	int have_genesis;
	uint64_t states_height;
	size_t nblocks;
	struct chainfile_block *blocks;    /* blocks[i] is height i + 1 */
	size_t nleases;
	struct lease *leases;
};

void chainfile_init(struct chainfile *f);
void chainfile_free(struct chainfile *f);

/* Builders used by `tally chain export`; the file takes ownership of nothing
 * it is given: everything is copied. */
int chainfile_set_genesis(struct chainfile *f, const char *json, char *why);
int chainfile_add_block(struct chainfile *f, const struct block *b,
			const struct commit_cert *cert, const struct validator_set *next_vals);
int chainfile_add_lease(struct chainfile *f, const struct lease *l);
const struct lease *chainfile_find_lease(const struct chainfile *f,
					 const uint8_t id[LEASE_ID_LEN]);

void chainfile_encode(struct enc *e, const struct chainfile *f);
/* Strict decode; on failure why[WHY_MAX] says what and where
 * ("block at height 7: commit certificate: input truncated"). */
int chainfile_decode(struct chainfile *f, const uint8_t *p, size_t n, char *why);

/* Whole-file I/O. Saving writes a temporary file in the same directory,
 * fsyncs it and renames it over path, so a reader never sees half a file. */
int chainfile_load(struct chainfile *f, const char *path, char *why);
int chainfile_save(const struct chainfile *f, const char *path, char *why);


#endif
