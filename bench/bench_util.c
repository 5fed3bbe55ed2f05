/* Helpers the benchmarks share (see bench_util.h). */
#include "bench/bench_util.h"

#include <errno.h>
#include <ftw.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "contracts/contract.h"
#include "lib/codec.h"
#include "lib/errors.h"

int bench_proc_usage(pid_t pid, double *cpu_s, uint64_t *minflt)
{
	char path[64], buf[1024], *p;
	unsigned long long flt, ut, st;
	size_t got;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	got = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[got] = '\0';
	/* The command name may hold spaces and parentheses: fields count
	 * from the last ')'. */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %llu %*u %*u %*u %llu %llu",
			 &flt, &ut, &st) != 3)
		return -1;
	*cpu_s = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
	*minflt = flt;
	return 0;
}

double bench_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

uint64_t bench_rng_below(uint64_t n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state % n;
}

void bench_tx_base(struct tx *t, const char *chain_id, enum tx_kind kind,
		   const struct tally_key *k, uint64_t nonce)
{
	memset(t, 0, sizeof(*t));
	t->version = TX_VERSION;
	t->kind = kind;
	strcpy(t->chain_id, chain_id);
	memcpy(t->signer, k->pub, PUBKEY_LEN);
	t->nonce = nonce;
}

/* Signs n messages, each filled with its index, into msg and sig. */
static int sign_messages(const struct tally_key *k, uint8_t *msg, uint8_t (*sig)[SIG_LEN],
			 size_t n, size_t msg_len)
{
	int rc;

	for (size_t i = 0; i < n; i++) {
		uint8_t *m = msg + i * msg_len;

		memset(m, (int)(i & 0xff), msg_len);
		memcpy(m, &i, msg_len < sizeof(i) ? msg_len : sizeof(i));
		if ((rc = ed25519_sign(k, m, msg_len, sig[i])))
			return rc;
	}
	return 0;
}

int bench_raw_verify_rate(size_t n, size_t msg_len, size_t warmup, double *rate,
			  enum raw_verify_step *failed)
{
	struct tally_key k;
	uint8_t *msg = malloc(msg_len * n);
	uint8_t (*sig)[SIG_LEN] = malloc(sizeof(*sig) * n);
	double t;
	int rc = TALLY_E_NOMEM;

	*failed = RAW_VERIFY_ALLOC;
	if (!msg || !sig)
		goto out_free;
	*failed = RAW_VERIFY_KEY;
	if ((rc = key_generate(&k)))
		goto out_free;
	*failed = RAW_VERIFY_SIGN;
	if ((rc = sign_messages(&k, msg, sig, n, msg_len)))
		goto out;
	for (size_t i = 0; i < warmup && i < n; i++)
		ed25519_verify(k.pub, msg + i * msg_len, msg_len, sig[i]);
	*failed = RAW_VERIFY_CHECK;
	t = bench_now_s();
	for (size_t i = 0; i < n; i++)
		if ((rc = ed25519_verify(k.pub, msg + i * msg_len, msg_len, sig[i])))
			goto out;
	t = bench_now_s() - t;
	*rate = n / t;
out:
	key_free(&k);
out_free:
	free(msg);
	free(sig);
	return rc;
}

const char *bench_raw_verify_failure(enum raw_verify_step step, int rc)
{
	static char msg[128];
	const char *what = step == RAW_VERIFY_KEY ? "key" :
			   step == RAW_VERIFY_SIGN ? "sign" : "raw verify";

	if (step == RAW_VERIFY_ALLOC)
		return "out of memory";
	snprintf(msg, sizeof(msg), "%s: %s", what, tally_strerror(rc));
	return msg;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb; (void)flag; (void)ftw;
	return remove(p);
}

void bench_rm_tree(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

void bench_offer_for(const struct lease_contract *c, struct provider_offer *o)
{
	memset(o, 0, sizeof(*o));
	snprintf(o->endpoint, sizeof(o->endpoint), "http://127.0.0.1:1");
	o->prices = c->prices;
	o->interval_s = c->interval_s;
	o->sla_max_credit_ppm = c->sla.credit_ppm;
	o->sla_min_delay_ppm = c->sla.max_delay_ppm;
	o->nimages = 1;
	snprintf(o->images[0], sizeof(o->images[0]), "%s", c->vm.image);
}

int bench_lease_contract(struct lease_contract *c, const char *chain_id,
			 const uint8_t tenant[PUBKEY_LEN], const uint8_t provider[PUBKEY_LEN],
			 uint64_t nonce, uint64_t expiry_s, uint64_t records, uint32_t interval_s)
{
	memset(c, 0, sizeof(*c));
	c->version = CONTRACT_VERSION;
	snprintf(c->chain_id, sizeof(c->chain_id), "%s", chain_id);
	memcpy(c->tenant, tenant, PUBKEY_LEN);
	memcpy(c->provider, provider, PUBKEY_LEN);
	c->nonce = nonce;
	c->expiry = expiry_s;
	c->vm.vcpus = BENCH_LEASE_VCPUS;
	c->vm.memory_mib = BENCH_LEASE_MEMORY_MIB;
	c->vm.disk_gib = 10;
	strcpy(c->vm.image, "tiny");
	c->duration_s = records * interval_s;
	c->interval_s = interval_s;
	c->prices.vcpu_second = 20;
	c->prices.mem_gib_second = 5;
	c->prices.gpu_second = 1000;
	c->sla.max_delay_ppm = 50000;
	c->sla.credit_ppm = 100000;
	return settle_max_charge(c, c->duration_s, &c->deposit) ? TALLY_E_OVERFLOW : 0;
}

void bench_usage_record(struct usage_record *u, const uint8_t lease_id[LEASE_ID_LEN],
			uint64_t seq, const uint8_t prev[HASH_LEN], uint64_t start_ns,
			size_t lease)
{
	uint64_t span = BENCH_LEASE_SPAN_NS;
	uint64_t cap = (uint64_t)BENCH_LEASE_VCPUS * span;

	memset(u, 0, sizeof(*u));
	memcpy(u->lease_id, lease_id, LEASE_ID_LEN);
	u->seq = seq;
	if (seq)
		memcpy(u->prev_hash, prev, HASH_LEN);
	u->start_ns = start_ns;
	u->end_ns = start_ns + span;
	u->cpu_ns = cap / 20 * (1 + (lease * 7 + seq * 3) % 20);
	u->run_delay_ns = ((lease + seq) % 5) * (span / 8);
	u->mem_mib = BENCH_LEASE_MEMORY_MIB;
	u->mem_peak_bytes = ((uint64_t)BENCH_LEASE_MEMORY_MIB / 2 + (lease + seq) % 256) << 20;
	u->gpu_source = GPU_SOURCE_NONE;
}

void bench_stop_children(pid_t *pids, int n)
{
	int status;

	for (int i = 0; i < n; i++)
		if (pids[i] > 0)
			kill(pids[i], SIGTERM);
	for (int i = 0; i < n; i++) {
		bool gone = false;

		if (pids[i] <= 0)
			continue;
		for (int t = 0; t < 100 && !gone; t++) {
			gone = waitpid(pids[i], &status, WNOHANG) == pids[i];
			if (!gone)
				usleep(50000);
		}
		if (!gone) {
			kill(pids[i], SIGKILL);
			waitpid(pids[i], &status, 0);
		}
		pids[i] = -1;
	}
}

int bench_sign_json(struct tx *t, const struct tally_key *k, const uint8_t chain[HASH_LEN],
		    char **body, uint8_t hash[HASH_LEN], size_t *len, char *why)
{
	static const char head[] = "{\"tx\":\"", tail[] = "\"}";
	struct enc e;
	int rc = tx_sign(t, k, chain);

	if (rc)
		return why_set(why, rc, "tx_sign: %s", tally_strerror(rc));
	enc_init(&e);
	tx_encode(&e, t);
	if ((rc = enc_error(&e))) {
		enc_free(&e);
		return why_set(why, rc, "tx_encode: %s", tally_strerror(rc));
	}
	tx_hash(e.buf, e.len, hash);
	if (len)
		*len = e.len;
	*body = malloc(sizeof(head) - 1 + 2 * e.len + sizeof(tail));
	if (!*body) {
		enc_free(&e);
		return why_set(why, TALLY_E_NOMEM, "out of memory");
	}
	strcpy(*body, head);
	hex_encode(e.buf, e.len, *body + sizeof(head) - 1);
	strcat(*body, tail);
	enc_free(&e);
	return 0;
}

size_t bench_buf_append(char *data, size_t size, size_t nmemb, void *ctx)
{
	struct bench_buf *b = ctx;
	size_t n = size * nmemb;

	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 1024;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		if (!(p = realloc(b->p, cap)))
			return 0;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
	return n;
}

pid_t bench_spawn_tallyd(const char *tallyd, const char *conf, const char *log)
{
	pid_t pid = fork();

	if (pid == 0) {
		FILE *f = fopen(log, "w");

		/* The node must not outlive a bench killed with SIGKILL. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (f) {
			dup2(fileno(f), STDOUT_FILENO);
			dup2(fileno(f), STDERR_FILENO);
		}
		execl(tallyd, "tallyd", "-c", conf, "--no-vms", (char *)NULL);
		fprintf(stderr, "cannot run %s: %s\n", tallyd, strerror(errno));
		_exit(127);
	}
	return pid;
}

int bench_child_exited(pid_t *pids, int n, const char **how)
{
	static char text[32];
	int status;

	for (int i = 0; i < n; i++)
		if (pids[i] > 0 && waitpid(pids[i], &status, WNOHANG) == pids[i]) {
			pids[i] = -1;
			snprintf(text, sizeof(text), "%s %d", WIFEXITED(status) ? "status" : "signal",
				 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
			*how = text;
			return i;
		}
	return -1;
}
