/* Helpers the benchmarks in bench/ share: a monotonic clock, a fixed-seed
 * random index, the transaction skeleton they sign and its signed JSON
 * body, the raw Ed25519 verification baseline, an HTTP answer buffer,
 * starting and stopping tallyd children and temp-dir removal. Each
 * benchmark keeps its own die(): the messages name the benchmark. */
#ifndef TALLY_BENCH_UTIL_H
#define TALLY_BENCH_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/crypto.h"
#include "lib/chain/tx.h"

/* Seconds on CLOCK_MONOTONIC. */
double bench_now_s(void);

/* Process pid's CPU time so far (user + system, all its threads, in
 * seconds) and its minor page faults, from /proc/PID/stat (proc(5): fields
 * 10, 14 and 15, the times in clock ticks): 0, or -1 when it cannot be
 * read. Unlike a wall-clock rate, neither counts what other processes on
 * the machine take meanwhile. */
int bench_proc_usage(pid_t pid, double *cpu_s, uint64_t *minflt);

/* A fixed-seed xorshift below n: the same indices on every run. */
uint64_t bench_rng_below(uint64_t n);

/* Zeroes t and fills in the fields every transaction has. */
void bench_tx_base(struct tx *t, const char *chain_id, enum tx_kind kind,
		   const struct tally_key *k, uint64_t nonce);

/* The provider's PROVIDER body for leases of contract c: its prices,
 * interval, image and SLA terms as bounds (the chain's rule,
 * contracts/provider.h). */
void bench_offer_for(const struct lease_contract *c, struct provider_offer *o);

/* The leases the node and network benches meter: VCPUS vCPUs and
 * MEMORY_MIB of memory, image "tiny", at the prices a dev node announces
 * (`tally node init --dev`: 20 per vCPU-second, 5 per GiB-second; 1000 per
 * GPU-second, none used), records of SPAN_NS each. A record may not bill
 * time that has not happened yet (it ends at most USAGE_MAX_AHEAD_NS after
 * the block that commits it) and the benches sign records before they send
 * them, so each spans 20 ms: a lease's records end within seconds of its
 * start. The span changes nothing of what a record costs a node (a USAGE
 * transaction has a fixed size). */
#define BENCH_LEASE_VCPUS 2
#define BENCH_LEASE_MEMORY_MIB 1024
#define BENCH_LEASE_SPAN_NS 20000000ull

/* The contract of a lease of chain_id from tenant to provider, opened with
 * the tenant's nonce, for `records` intervals of interval_s, expiring at
 * expiry_s (Unix s), its deposit the whole term's maximum charge (no
 * record can exhaust it). TALLY_E_OVERFLOW when that charge overflows. */
int bench_lease_contract(struct lease_contract *c, const char *chain_id,
			 const uint8_t tenant[PUBKEY_LEN], const uint8_t provider[PUBKEY_LEN],
			 uint64_t nonce, uint64_t expiry_s, uint64_t records, uint32_t interval_s);

/* Synthetic meter input for record seq of lease number `lease` (which only
 * varies the figures): BENCH_LEASE_SPAN_NS from start_ns, CPU between 5%
 * and 100% of the vCPUs, run delay sometimes above the SLA's threshold,
 * memory as contracted; prev is the hash of the lease's previous USAGE
 * transaction (unused for seq 0). */
void bench_usage_record(struct usage_record *u, const uint8_t lease_id[LEASE_ID_LEN],
			uint64_t seq, const uint8_t prev[HASH_LEN], uint64_t start_ns,
			size_t lease);

/* The step of bench_raw_verify_rate() that failed. */
enum raw_verify_step {
	RAW_VERIFY_ALLOC,
	RAW_VERIFY_KEY,
	RAW_VERIFY_SIGN,
	RAW_VERIFY_CHECK,
};

/* The baseline: Ed25519 verifications per second over n distinct signed
 * msg_len-byte messages under one key, after `warmup` untimed ones (at
 * most n). Returns 0 and sets *rate, or the error of the step it names in
 * *failed (TALLY_E_NOMEM for RAW_VERIFY_ALLOC). */
int bench_raw_verify_rate(size_t n, size_t msg_len, size_t warmup, double *rate,
			  enum raw_verify_step *failed);

/* What went wrong in bench_raw_verify_rate(): "out of memory", or the step
 * ("key", "sign", "raw verify") and error rc, as "sign: <message>". The
 * text lives in a static buffer until the next call. */
const char *bench_raw_verify_failure(enum raw_verify_step step, int rc);

/* t signed by k for the chain whose genesis hash is chain, as the body of
 * POST /v1/tx, {"tx":"<hex>"} (malloc'd, into *body), with its hash and
 * its encoded length (into *len when len is not NULL). 0, or the error
 * with why[WHY_MAX] saying which step failed: "tx_sign: <error>",
 * "tx_encode: <error>" or "out of memory". */
int bench_sign_json(struct tx *t, const struct tally_key *k, const uint8_t chain[HASH_LEN],
		    char **body, uint8_t hash[HASH_LEN], size_t *len, char *why);

/* An HTTP answer's body as it arrives, NUL-terminated; p is malloc'd. */
struct bench_buf {
	char *p;
	size_t len, cap;
};

/* A libcurl CURLOPT_WRITEFUNCTION appending to the struct bench_buf ctx
 * (its CURLOPT_WRITEDATA): size * nmemb, or 0 (which ends the transfer)
 * when out of memory. */
size_t bench_buf_append(char *data, size_t size, size_t nmemb, void *ctx);

/* Forks `tallyd -c conf --no-vms` (tallyd a path), its stdout and stderr
 * into the file log (created or emptied), sent SIGTERM should the bench die
 * first. The child's pid, or -1 with errno when fork fails. */
pid_t bench_spawn_tallyd(const char *tallyd, const char *conf, const char *log);

/* Whether one of the child processes pids[0..n) has exited (slots <= 0
 * skipped): its index, reaped, its slot set to -1 and how it ended into
 * *how ("status N" or "signal N", static until the next call); or -1. */
int bench_child_exited(pid_t *pids, int n, const char **how);

/* Removes dir and all below it, best effort. */
void bench_rm_tree(const char *dir);

/* Stops the child processes pids[0..n) (tallyd nodes): SIGTERM to all,
 * then up to 5 s each to exit before SIGKILL; each is reaped and its slot
 * set to -1. Slots <= 0 are skipped. */
void bench_stop_children(pid_t *pids, int n);

#endif
