/* The deterministic consensus simulator (see sim.c for what a run is).
 *
 * Everything a run does follows from its seed: one thread, a simulated
 * clock, a priority queue of events ordered by (time, sequence number), one
 * pseudo-random generator. The nodes run the real engine, round state
 * machine, signing guard and WAL (daemon/consensus/), and the real block
 * verification and execution (lib/chain/) on the in-memory state; only the
 * network, the clocks and the disk's survival of a crash are simulated. */
#ifndef TALLY_SIM_H
#define TALLY_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/consensus/engine.h"
#include "daemon/consensus/privval.h"
#include "lib/chain/genesis.h"
#include "lib/chain/replay.h"

#define SIM_NODES_MAX 7
#define SIM_USERS 3
#define MS ((uint64_t)1000000)
#define SEC ((uint64_t)1000000000)

/* --- pseudo-random numbers (splitmix64) ------------------------------------------ */

struct rng {
	uint64_t s;
};

uint64_t rng_next(struct rng *r);
/* Uniform in [0, n) (n > 0). */
uint64_t rng_below(struct rng *r, uint64_t n);
/* True with probability ppm / 1e6. */
bool rng_ppm(struct rng *r, uint32_t ppm);

/* --- events --------------------------------------------------------------------- */

enum ev_kind {
	EV_DELIVER = 1,      /* a message reaches a node */
	EV_TIMER,            /* a consensus timer of a node fires */
	EV_TICK,             /* a node's gossip tick: regossip and status */
	EV_CRASH,
	EV_RESTART,
	EV_TXGEN,            /* a client submits a transaction */
};

enum msg_kind {
	MSG_CONSENSUS = 1,   /* daemon/consensus/msg.h bytes */
	MSG_STATUS,          /* "my next height is h" (u64) */
	MSG_SYNC,            /* a committed block and its certificate */
	MSG_TX,              /* a signed transaction */
};

struct event {
	uint64_t at;                     /* simulated ns */
	uint64_t seq;
	uint8_t kind;                    /* enum ev_kind */
	int node;                        /* target */
	int from;                        /* EV_DELIVER */
	uint8_t msg;                     /* EV_DELIVER: enum msg_kind */
	uint64_t incarnation;            /* EV_TIMER: the node's life it was set in */
	uint64_t arg;                    /* EV_CRASH: how long the node stays down */
	struct cs_timeout t;             /* EV_TIMER */
	uint64_t sent_at;                /* EV_DELIVER */
	uint8_t *bytes;                  /* EV_DELIVER: owned */
	size_t len;
	uint8_t *bytes2;                 /* EV_DELIVER MSG_SYNC: the certificate */
	size_t len2;
};

struct queue {
	struct event *ev;
	size_t n, cap;
	uint64_t seq;
};

void queue_push(struct queue *q, struct event *e);
bool queue_pop(struct queue *q, struct event *out);
void queue_free(struct queue *q);

/* --- one node's chain: the application ------------------------------------------ */

struct pending_tx {
	uint8_t *bytes;
	size_t len;
	uint8_t hash[HASH_LEN];
	struct tx tx;
};

struct chain {
	struct sim *sim;
	int node;
	struct replay r;                 /* verifier and state after the last block */
	struct validator_set vals;       /* S_{height+1} with priorities */
	uint8_t **block;                 /* block[h - 1]: committed, block_encode bytes */
	size_t *block_len;
	struct commit_cert *cert;
	size_t nblocks, cap;
	struct pending_tx *pool;         /* the mempool, in arrival order */
	size_t npool, pool_cap;
};

int chain_init(struct chain *c, struct sim *s, int node, const struct genesis *g, char *why);
void chain_free(struct chain *c);
struct engine_app chain_app(struct chain *c);
/* A transaction arrives (duplicates ignored). */
void chain_add_tx(struct chain *c, const uint8_t *bytes, size_t len);
/* A decided block, or one from a peer's store, committed with its
 * certificate; prev (may be NULL) is the last block's certificate it names,
 * which replaces the one this node holds. */
int chain_commit(struct chain *c, const uint8_t *block, size_t len,
		 const struct commit_cert *cert, const struct commit_cert *prev, char *why);

/* --- the run --------------------------------------------------------------------- */

struct sim_opts {
	uint64_t seed;
	bool verbose;
	int byzantine;                   /* -1: from the seed; else that many equivocating validators */
	bool liveness;                   /* the liveness scenario (sim.c) instead of the usual one */
	const char *dir;                 /* where the nodes' WAL and signer files go */
};

struct node {
	int id;
	struct tally_key key;
	bool byzantine;
	bool up;
	uint64_t incarnation;
	int64_t skew_ns;                 /* its clock minus the simulated time */
	struct chain chain;              /* survives crashes: the committed store */
	struct engine *eng;              /* NULL while down */
	struct privval pv;
	char wal_path[512], pv_path[512];
	uint64_t down_since;
	uint64_t crashes, torn;
};

/* What the faults were, for the summary. */
struct fault_stats {
	uint64_t sent, dropped, duplicated, delayed, cut_by_partition, lost_in_crash;
	uint64_t partitions, crashes, torn_tails, equivocations, bad_proposals;
};

struct sim {
	struct sim_opts o;
	struct rng rng;
	struct queue q;
	uint64_t now;                    /* simulated ns since the genesis time */
	uint64_t genesis_ns;
	struct genesis g;
	uint8_t genesis_hash[HASH_LEN];
	int n;
	struct node node[SIM_NODES_MAX];
	struct tally_key user[SIM_USERS];
	uint64_t user_nonce[SIM_USERS];
	uint64_t validator_nonce[SIM_NODES_MAX];
	uint64_t staked[SIM_NODES_MAX];  /* stake each honest validator added (STAKE sent) */
	struct tally_key reporter;       /* signs the EVIDENCE of what the engines surface */
	uint64_t reporter_nonce;
	struct { uint64_t height; uint32_t round; uint8_t type; } reported[32];
	size_t nreported;
	int nbyz;
	struct genesis_account accounts[SIM_USERS + SIM_NODES_MAX];

	/* the network */
	uint64_t latency_ns[SIM_NODES_MAX][SIM_NODES_MAX];
	uint32_t drop_ppm, dup_ppm, slow_ppm;
	uint64_t heal_at, end_at;
	struct { uint64_t from, to; uint32_t side; } part[4];   /* side: bit set of nodes */
	int nparts;

	/* invariants */
	uint8_t (*decided)[HASH_LEN];    /* first block committed at each height */
	size_t ndecided, decided_cap;
	struct replay ref;               /* the auditor's replay of the decided chain */
	struct signed_rec *signed_recs;  /* every honest vote and proposal sent */
	size_t nsigned, signed_cap;
	uint64_t heal_height;            /* the highest height committed anywhere at heal */
	uint64_t progress_at;            /* when every honest node passed it by 2 */
	uint64_t evidence, evidence_bad;
	uint64_t unstakes;               /* UNSTAKE transactions sent */
	uint64_t jailed;                 /* validators jailed at the end */
	uint32_t max_round;

	/* the liveness scenario: one validator stopped until the liveness rule
	 * jails it, then back; the rule counted again here from the
	 * certificates the decided blocks name */
	int stopped;                     /* the stopped validator, -1 in the usual scenario */
	bool stop_by_crash;              /* else cut off by a partition */
	uint64_t stop_at;                /* simulated ns */
	uint64_t missed[SIM_NODES_MAX];  /* consecutive named certificates without it */
	uint64_t live_missed_max;        /* the most in a row of a validator never stopped */
	uint64_t live_absent, live_counted;   /* their absences, of all their counts */
	uint64_t live_late;              /* absences though it had precommitted that block */
	uint64_t jailed_at, unjailed_at, rejoined_at;   /* heights, of the stopped one */
	bool failed;
	char failure[512];
	struct fault_stats f;
};

/* Stops the run with a violation (the first one is kept). */
void sim_fail(struct sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sim_trace(struct sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Sends a message from node from to node to through the network model
 * (bytes2 only for MSG_SYNC); copies the bytes. */
void net_send(struct sim *s, int from, int to, uint8_t kind, const uint8_t *bytes, size_t len,
	      const uint8_t *bytes2, size_t len2);
/* A node committed block id at height (the agreement and validity checks). */
void sim_on_commit(struct sim *s, int node, uint64_t height, const uint8_t *block, size_t len,
		   const struct commit_cert *cert);
/* An honest node surfaced evidence. */
void sim_on_evidence(struct sim *s, int node, const struct cs_evidence *ev);

#endif
