/* A small, real chain built in memory for the auditor and chain-file tests:
 * one validator (also the provider), one tenant, one lease with four usage
 * records and a tenant close, every transaction signed, every block with the
 * transactions root, usage log, state root and next validator set that
 * executing it gives (lib/chain/exec.h), and a commit certificate.
 *
 *   block 1  TRANSFER (tenant -> provider), so that the lease opens later;
 *            PROVIDER: the provider announces the lease's prices and image
 *   block 2  LEASE_OPEN
 *   block 3  LEASE_START
 *   block 4  USAGE seq 0, USAGE seq 1
 *   block 5  USAGE seq 2 (run delay above the SLA: 10% credit)
 *   block 6  USAGE seq 3
 *   block 7  LEASE_CLOSE (tenant-closed) by the tenant, then by the provider,
 *            which takes the close without a last record
 *
 * Each record: 1 s, cpu 0.5 s at 20 per vCPU-second = 10, 512 MiB at 5 per
 * GiB-second = 2.5, the half carried to the next record (FORMATS section
 * 11): gross 12, 13, 12, 13; seq 2 nets 11 after a credit of 1.2 floored
 * (0.2 carried). Charged 49, SLA credits 1, refund FIXTURE_DEPOSIT - 49. */
#ifndef TALLY_TEST_CHAIN_FIXTURE_H
#define TALLY_TEST_CHAIN_FIXTURE_H

#include "contracts/contract.h"
#include "lib/chain/block.h"
#include "lib/chain/genesis.h"
#include "lib/chain/state_proof.h"
#include "lib/chain/tx.h"

#define FIXTURE_BLOCKS 7
#define FIXTURE_RECORDS 4
#define FIXTURE_DEPOSIT 1000000u
#define FIXTURE_CHARGED 49u
#define FIXTURE_SLA 1u

struct fixture {
	struct genesis genesis;
	struct tally_key validator, tenant;
	uint8_t lease_id[LEASE_ID_LEN];
	struct block blocks[FIXTURE_BLOCKS];     /* blocks[i] is height i + 1 */
	struct commit_cert certs[FIXTURE_BLOCKS];
	struct lease settled;                    /* what an honest node reports */
	struct state_proof settled_proof;        /* its state proof at the last block */
};

/* Builds the chain; aborts the test on failure. */
void fixture_build(struct fixture *f);
void fixture_free(struct fixture *f);
/* Replaces the transactions of blocks[i] with copies of txs (the header is
 * left as it was, as a tamperer without the validator key must). */
void fixture_set_txs(struct fixture *f, size_t i, const uint8_t *const *txs,
		     const size_t *lens, size_t n);

#endif
