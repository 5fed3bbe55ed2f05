/* The deterministic consensus simulator.
 *
 * A run is one seed. From it: 4 to 7 validators with random stakes, at most
 * one of them byzantine (its stake below 1/3 of the total); link latencies;
 * until the faults heal (30 s of simulated time) message drops, duplicates,
 * long delays that reorder, partitions that come and go, crashes and
 * restarts of nodes (some leaving a torn WAL record and losing what they
 * had just sent), clock skews (sometimes one node far ahead); transactions
 * from three clients and stake changes from the validators throughout:
 * honest validators stake and unstake (never below their genesis stake, so
 * the byzantine stays below 1/3), and with one byzantine validator the
 * evidence an engine surfaces is sent to the chain as an EVIDENCE (once per
 * offence), which slashes and jails it (genesis version 2: unbonding 20
 * blocks, slash 10%, a jail longer than a run).
 *
 * Each node runs the real engine (daemon/consensus/engine.h) with its real
 * signing guard and WAL files, and commits blocks through the chain layer
 * on the in-memory state (tests/sim/chain.c). The in-memory state is the
 * choice here because a run makes a few hundred commits and check-sim runs
 * many runs a minute: SQLite's durable commits would make that hours; the
 * rules are the same code either way (lib/chain/state.h), and the SQLite
 * path runs under the ledger's unit tests and the end-to-end tests.
 *
 * The byzantine validator runs the same engine but equivocates around it:
 * it signs with its key directly (no guard) a second vote for another block
 * for every vote it sends, and a second block for every proposal it makes,
 * and shows one half of the honest nodes one view and the other half the
 * other (byzantine validators collude through what the adversary knows).
 *
 * Checked after every event:
 *   agreement  no two nodes commit different blocks at one height;
 *   validity   every committed block verifies with its certificate
 *              (lib/chain/verify.h) and executes to the roots its header
 *              names (lib/chain/exec.h), at its node and in an auditor's
 *              replay of the decided chain (lib/chain/replay.h);
 *   no equivocation by an honest node, across its crashes: every vote and
 *              proposal an honest node ever sends is compared with all the
 *              others it sent for the same height, round and step;
 *   evidence   what an engine surfaces is two valid conflicting votes, of
 *              the byzantine validator only;
 *   jailing    at the end no honest validator is jailed, and a jailed
 *              byzantine validator lost stake (on every node: agreement);
 *   no engine error at an honest node (nothing here fails a disk);
 *   progress   after the faults heal, every honest node commits two more
 *              heights than any node had at the heal within 60 s.
 *
 * The liveness scenario (--liveness) keeps the drops, duplicates, delays
 * and clock skews but has no byzantine validator, no other partition or
 * crash, and a genesis with a liveness window of 4 to 8 blocks and a jail
 * term of 4 to 12 (docs/FORMATS.md section 10.10). One validator whose
 * stake is below 1/3 of the total is stopped, crashed or cut off from all
 * others, 1 to 5 s into the run and until the rule jails it; then the
 * faults heal, it comes back and sends an UNJAIL. Checked, besides
 * agreement, validity, no equivocation, no engine error and progress:
 *   the rule   counted again here from the certificate each decided block
 *              names and the set that signed the block before: a validator
 *              is jailed at exactly the height where its missed count
 *              reaches the window (while what one block jails stays below
 *              1/3 of that set's stake), with jailed_until = height +
 *              jail_blocks and its stake unchanged (no slash); a set is left;
 *   the stopped validator is jailed (by 120 s), unjailed after its term,
 *              and its precommit is back in a certificate;
 *   no other validator is ever jailed, and at the end every node holds
 *              every validator unjailed and the stopped one's genesis stake
 *              (it sends no STAKE).
 * "No other jailed" is what the fault model should give, not a guarantee of
 * the protocol: a precommit can reach the next proposer after it built its
 * block, and one a validator signs only once it saw the decision (the
 * engine does so when it had none in the deciding round) may come later
 * still; the trace says why each absence happened, and the summary how
 * many there were and the longest run of them. Seeds 1..600 have none
 * longer than 2 (seed 438 once had four in a row, window 4, before the
 * engine signed that precommit; seed 418 stalled for good before the
 * engine's regossip sent the precommits that ended the previous round).
 *
 * A failing seed prints the violation and a command that replays it; a run
 * prints the same bytes every time (-v adds a trace of each node's
 * commits, crashes, restarts and engine log lines). */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon/consensus/msg.h"
#include "daemon/consensus/wal.h"
#include "lib/chain/evidence.h"
#include "lib/codec.h"
#include "lib/errors.h"
#include "tests/sim/sim.h"

#define HEAL_NS (30 * SEC)
#define PROGRESS_BOUND_NS (60 * SEC)
#define PROGRESS_HEIGHTS 2
#define TICK_NS SEC
#define GENESIS_NS ((uint64_t)1700000000000000000)
#define SYNC_GAP_NS (200 * MS)
#define LIVENESS_WINDOW_MIN 4
#define LIVENESS_WINDOW_MAX 8
#define LIVENESS_DEADLINE_NS (120 * SEC)

static struct sim S;
static const char *g_argv0 = "sim";
/* SIGINT or SIGTERM: stop at the next event, still removing the run's files. */
static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

/* --- output ------------------------------------------------------------------------- */

void sim_trace(struct sim *s, const char *fmt, ...)
{
	va_list ap;

	if (!s->o.verbose)
		return;
	printf("  [%4" PRIu64 ".%03" PRIu64 "] ", s->now / SEC, s->now % SEC / MS);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

void sim_fail(struct sim *s, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (s->failed)
		return;
	s->failed = true;
	n = snprintf(s->failure, sizeof(s->failure), "at %" PRIu64 ".%03" PRIu64 " s: ",
		     s->now / SEC, s->now % SEC / MS);
	va_start(ap, fmt);
	vsnprintf(s->failure + n, sizeof(s->failure) - (size_t)n, fmt, ap);
	va_end(ap);
	sim_trace(s, "VIOLATION %s", s->failure + n);
}

static void hex8(const uint8_t *p, char out[17])
{
	hex_encode(p, 8, out);
}

/* --- honest nodes never sign twice for one step -------------------------------------- */

struct signed_rec {
	bool used;
	uint8_t node, step;              /* step: 0 proposal, else the vote type */
	uint32_t round;
	uint64_t height;
	uint8_t id[HASH_LEN];
};

static uint64_t rec_hash(int node, uint8_t step, uint64_t height, uint32_t round)
{
	struct rng r = { height * 0x100000001b3ull ^ (uint64_t)round << 20 ^ (uint64_t)step << 8 ^
			 (uint64_t)node };

	return rng_next(&r);
}

static void signed_grow(struct sim *s)
{
	struct signed_rec *old = s->signed_recs;
	size_t oldcap = s->signed_cap;

	s->signed_cap = oldcap ? 2 * oldcap : 4096;
	s->signed_recs = calloc(s->signed_cap, sizeof(*s->signed_recs));
	if (!s->signed_recs)
		abort();
	s->nsigned = 0;
	for (size_t i = 0; i < oldcap; i++) {
		struct signed_rec *r = &old[i];
		size_t j;

		if (!r->used)
			continue;
		j = rec_hash(r->node, r->step, r->height, r->round) % s->signed_cap;
		while (s->signed_recs[j].used)
			j = (j + 1) % s->signed_cap;
		s->signed_recs[j] = *r;
		s->nsigned++;
	}
	free(old);
}

static void note_signed(struct sim *s, int node, uint8_t step, uint64_t height, uint32_t round,
			const uint8_t id[HASH_LEN])
{
	struct signed_rec *r;
	size_t j;

	if (2 * (s->nsigned + 1) > s->signed_cap)
		signed_grow(s);
	j = rec_hash(node, step, height, round) % s->signed_cap;
	for (;; j = (j + 1) % s->signed_cap) {
		r = &s->signed_recs[j];
		if (!r->used)
			break;
		if (r->node == node && r->step == step && r->height == height && r->round == round) {
			if (memcmp(r->id, id, HASH_LEN)) {
				char a[17], b[17];

				hex8(r->id, a);
				hex8(id, b);
				sim_fail(s, "honest node %d signed two different %s at height %" PRIu64
					 " round %u: %s and %s", node,
					 step == 0 ? "proposals" : step == VOTE_PREVOTE ? "prevotes" :
					 "precommits", height, round, a, b);
			}
			return;
		}
	}
	r->used = true;
	r->node = (uint8_t)node;
	r->step = step;
	r->height = height;
	r->round = round;
	memcpy(r->id, id, HASH_LEN);
	s->nsigned++;
}

/* What honest node signed for that step, or NULL. */
static const uint8_t *signed_find(const struct sim *s, int node, uint8_t step, uint64_t height,
				  uint32_t round)
{
	if (!s->signed_cap)
		return NULL;
	for (size_t j = rec_hash(node, step, height, round) % s->signed_cap;;
	     j = (j + 1) % s->signed_cap) {
		const struct signed_rec *r = &s->signed_recs[j];

		if (!r->used)
			return NULL;
		if (r->node == node && r->step == step && r->height == height && r->round == round)
			return r->id;
	}
}

/* --- the byzantine validators' shared knowledge --------------------------------------- */

/* The second block a byzantine proposer made for a round, so that its
 * accomplices vote for it in front of the same half of the honest nodes. */
struct alt_block {
	uint64_t height;
	uint32_t round;
	uint8_t id[HASH_LEN];
};

static struct alt_block alt[64];
static size_t nalt;

static const uint8_t *alt_for(uint64_t height, uint32_t round)
{
	for (size_t i = 0; i < nalt; i++)
		if (alt[i].height == height && alt[i].round == round)
			return alt[i].id;
	return NULL;
}

static void alt_note(uint64_t height, uint32_t round, const uint8_t id[HASH_LEN])
{
	struct alt_block *a = &alt[nalt++ % (sizeof(alt) / sizeof(alt[0]))];

	if (nalt > sizeof(alt) / sizeof(alt[0]))
		nalt = sizeof(alt) / sizeof(alt[0]);
	a->height = height;
	a->round = round;
	memcpy(a->id, id, HASH_LEN);
}

/* Which view an honest node gets at a height: half see one, half the other. */
static bool second_view(const struct sim *s, int to, uint64_t height)
{
	int rank = 0;

	for (int i = 0; i < to; i++)
		rank += !s->node[i].byzantine;
	return (rank + (int)(height % 2)) % 2;
}

static void send_all(struct sim *s, int from, const uint8_t *msg, size_t len)
{
	for (int i = 0; i < s->n; i++)
		net_send(s, from, i, MSG_CONSENSUS, msg, len, NULL, 0);
}

static void send_views(struct sim *s, int from, uint64_t height, const uint8_t *a, size_t alen,
		       const uint8_t *b, size_t blen)
{
	for (int i = 0; i < s->n; i++) {
		bool second = !s->node[i].byzantine && second_view(s, i, height);

		net_send(s, from, i, MSG_CONSENSUS, second ? b : a, second ? blen : alen, NULL, 0);
	}
}

static void encode_and(struct sim *s, int from, const struct cs_msg *m1, const struct cs_msg *m2,
		       uint64_t height)
{
	struct enc a, b;

	enc_init(&a);
	enc_init(&b);
	cs_msg_encode(&a, m1);
	cs_msg_encode(&b, m2);
	if (enc_error(&a) || enc_error(&b))
		abort();
	send_views(s, from, height, a.buf, a.len, b.buf, b.len);
	enc_free(&a);
	enc_free(&b);
}

static void byzantine_vote(struct sim *s, int from, const struct cs_msg *m)
{
	struct node *n = &s->node[from];
	const uint8_t *other = alt_for(m->v.height, m->v.round);
	struct cs_msg m2 = *m;

	if (other && !memcmp(other, m->v.block_id, HASH_LEN))
		other = NULL;
	if (other)
		memcpy(m2.v.block_id, other, HASH_LEN);
	else if (!cs_is_nil(m->v.block_id))
		memset(m2.v.block_id, 0, HASH_LEN);
	else
		for (int i = 0; i < HASH_LEN; i++)
			m2.v.block_id[i] = (uint8_t)rng_next(&s->rng);
	if (vote_sign(&m2.v, &n->key, s->genesis_hash, m2.sig))
		abort();
	s->f.equivocations++;
	encode_and(s, from, m, &m2, m->v.height);
}

/* Returns false when it could not make a second block (then the first goes
 * to everyone). */
static bool byzantine_proposal(struct sim *s, int from, const struct cs_msg *m)
{
	struct node *n = &s->node[from];
	struct engine_app app = chain_app(&n->chain);
	struct block_header h;
	struct cs_msg m2 = *m;
	uint8_t *block = NULL;
	size_t len = 0;
	char why[WHY_MAX];
	struct dec d;
	struct enc e;

	dec_init(&d, m->block, m->block_len);
	if (header_decode_from(&d, &h) ||
	    app.build(app.ctx, h.height, h.time_ns + MS, h.proposer, NULL, &block, &len, why)) {
		free(block);
		return false;
	}
	dec_init(&d, block, len);
	if (header_decode_from(&d, &h))
		abort();
	block_id(&h, m2.p.block_id);
	m2.block = block;
	m2.block_len = len;
	enc_init(&e);
	proposal_encode(&e, &m2.p);
	if (enc_error(&e) || sig_sign(&n->key, SIG_PROPOSAL, s->genesis_hash, e.buf, e.len, m2.sig))
		abort();
	enc_free(&e);
	alt_note(m->p.height, m->p.round, m2.p.block_id);
	s->f.bad_proposals++;
	encode_and(s, from, m, &m2, m->p.height);
	free(block);
	return true;
}

/* --- the nodes' I/O -------------------------------------------------------------------- */

/* A proposal this node signed (a regossiped one may be another's). */
static bool own_proposal(const struct sim *s, const struct node *n, const struct cs_msg *m)
{
	return m->kind == CS_MSG_PROPOSAL &&
	       proposal_verify(&m->p, n->key.pub, s->genesis_hash, m->sig) == 0;
}

static void io_broadcast(void *ctx, const uint8_t *msg, size_t len)
{
	struct node *n = ctx;
	struct sim *s = &S;
	bool own_vote;
	struct cs_msg m;

	if (cs_msg_decode(&m, msg, len))
		abort();   /* the engine's own encoding */
	own_vote = m.kind == CS_MSG_VOTE && !memcmp(m.validator, n->key.pub, PUBKEY_LEN);
	if (s->o.verbose && (own_vote || (m.kind == CS_MSG_PROPOSAL && own_proposal(s, n, &m)))) {
		char id[17];

		hex8(m.kind == CS_MSG_VOTE ? m.v.block_id : m.p.block_id, id);
		if (m.kind == CS_MSG_VOTE)
			sim_trace(s, "node %d %s %s at %" PRIu64 "/%u", n->id,
				  m.v.type == VOTE_PREVOTE ? "prevotes" : "precommits",
				  cs_is_nil(m.v.block_id) ? "nil" : id, m.v.height, m.v.round);
		else
			sim_trace(s, "node %d proposes %s at %" PRIu64 "/%u (proof-of-lock round %d)",
				  n->id, id, m.p.height, m.p.round, m.p.pol_round);
	}
	if (!n->byzantine) {
		if (own_vote)
			note_signed(s, n->id, m.v.type, m.v.height, m.v.round, m.v.block_id);
		else if (own_proposal(s, n, &m))
			note_signed(s, n->id, 0, m.p.height, m.p.round, m.p.block_id);
		send_all(s, n->id, msg, len);
		return;
	}
	if (own_vote)
		byzantine_vote(s, n->id, &m);
	else if (!(m.p.pol_round < 0 && own_proposal(s, n, &m) &&
		   byzantine_proposal(s, n->id, &m)))
		send_all(s, n->id, msg, len);
}

static void io_schedule(void *ctx, uint64_t at_ns, const struct cs_timeout *t)
{
	struct node *n = ctx;
	struct event e = { .kind = EV_TIMER, .node = n->id, .incarnation = n->incarnation, .t = *t };
	int64_t at = (int64_t)(at_ns - S.genesis_ns) - n->skew_ns;

	e.at = at < (int64_t)S.now ? S.now : (uint64_t)at;
	queue_push(&S.q, &e);
}

static uint64_t io_now(void *ctx)
{
	struct node *n = ctx;

	return S.genesis_ns + (uint64_t)((int64_t)S.now + n->skew_ns);
}

/* --- node life ---------------------------------------------------------------------- */

static int node_start(struct sim *s, struct node *n, char *why)
{
	struct engine_app app = chain_app(&n->chain);
	struct engine_io io = { .ctx = n, .broadcast = io_broadcast, .schedule = io_schedule,
				.now_ns = io_now };
	struct engine_config cfg = { .chain = s->genesis_hash, .wal_path = n->wal_path,
				     .pv = &n->pv };
	struct engine_status st;
	int rc = privval_open(&n->pv, n->pv_path, &n->key, why);

	if (rc)
		return rc;
	rc = engine_open(&n->eng, &cfg, &app, why);
	if (rc) {
		privval_close(&n->pv);
		return rc;
	}
	n->up = true;
	n->incarnation++;
	rc = engine_start(n->eng, &io, why);
	engine_status(n->eng, &st);
	if (st.replayed || st.wal_cut)
		sim_trace(s, "node %d restarts at height %" PRIu64 " round %u (%s): %" PRIu64
			  " WAL records replayed, %" PRIu64 " torn bytes cut", n->id, st.height,
			  st.round, cs_step_name(st.step), st.replayed, st.wal_cut);
	return 0;
}

static void node_stop(struct node *n)
{
	engine_close(n->eng);
	n->eng = NULL;
	privval_close(&n->pv);
	n->up = false;
	n->incarnation++;
}

/* A process killed inside an append leaves part of a record behind. */
static void tear_wal(struct sim *s, struct node *n)
{
	uint8_t junk[64];
	size_t len = 1 + rng_below(&s->rng, sizeof(junk));
	FILE *f = fopen(n->wal_path, "ab");
	uint32_t claimed = (uint32_t)(len + 1 + rng_below(&s->rng, 4096));

	if (!f)
		abort();
	for (size_t i = 0; i < len; i++)
		junk[i] = (uint8_t)rng_next(&s->rng);
	/* Mostly a record header that promises more than follows. */
	if (len >= 4 && rng_ppm(&s->rng, 700000))
		for (int i = 0; i < 4; i++)
			junk[i] = (uint8_t)(claimed >> (8 * i));
	if (fwrite(junk, 1, len, f) != len || fclose(f))
		abort();
	n->torn++;
	s->f.torn_tails++;
}

static void crash(struct sim *s, struct node *n, uint64_t down_ns)
{
	struct event e = { .at = s->now + down_ns, .kind = EV_RESTART, .node = n->id };
	uint64_t lost_since = s->now - (s->now < 50 * MS ? s->now : rng_below(&s->rng, 50 * MS));
	bool torn;

	if (!n->up)
		return;
	node_stop(n);
	n->crashes++;
	s->f.crashes++;
	n->down_since = s->now;
	/* What it sent in its last moments was still in its socket buffers. */
	for (size_t i = 0; i < s->q.n; i++) {
		struct event *q = &s->q.ev[i];

		if (q->kind == EV_DELIVER && q->from == n->id && q->sent_at >= lost_since &&
		    q->msg) {
			q->msg = 0;
			s->f.lost_in_crash++;
		}
	}
	torn = rng_ppm(&s->rng, 500000);
	if (torn)
		tear_wal(s, n);
	sim_trace(s, "node %d crashes%s (down %" PRIu64 " ms)", n->id,
		  torn ? ", leaving a torn WAL record" : "", down_ns / MS);
	if (e.at > s->heal_at)
		e.at = s->heal_at;
	queue_push(&s->q, &e);
}

/* --- invariants ------------------------------------------------------------------------ */

static uint64_t committed(const struct node *n)
{
	return n->chain.r.v.height;
}

/* The validator entries of the auditor's state (a missing one reads as
 * jailed with no stake). */
static void ref_entries(struct sim *s, struct validator_entry v[SIM_NODES_MAX])
{
	for (int i = 0; i < s->n; i++)
		if (state_validator_get(&s->ref.state, s->node[i].key.pub, &v[i]))
			v[i] = (struct validator_entry){ .jailed = true };
}

/* The liveness rule counted again, from outside the chain code, for block
 * height just replayed: named is the certificate of height - 1 it names,
 * signers the set that signed height - 1, before the entries before it. */
static bool cert_holds(const struct commit_cert *c, const uint8_t pub[PUBKEY_LEN])
{
	for (size_t i = 0; i < c->n; i++)
		if (!memcmp(c->sigs[i].validator, pub, PUBKEY_LEN))
			return true;
	return false;
}

static void liveness_count(struct sim *s, uint64_t height, const struct commit_cert *named,
			   const struct validator_set *set,
			   const struct validator_entry before[SIM_NODES_MAX])
{
	struct validator_entry after[SIM_NODES_MAX];
	uint64_t window = s->g.params.liveness_window, total, gone = 0;

	ref_entries(s, after);
	if (height >= 2) {
		total = valset_total_stake(set);
		for (int i = 0; i < s->n && !s->failed; i++) {
			const struct validator *v = valset_find(set, s->node[i].key.pub);
			bool expect = false, jailed = after[i].jailed && !before[i].jailed;
			struct liveness l;

			if (!v || before[i].jailed)
				continue;
			if (cert_holds(named, v->pubkey)) {
				s->missed[i] = 0;
				if (i == s->stopped && s->unjailed_at && !s->rejoined_at) {
					s->rejoined_at = height - 1;
					sim_trace(s, "liveness: validator %d signs again: its precommit"
						  " is in the certificate of height %" PRIu64, i,
						  height - 1);
				}
			} else {
				const uint8_t *id = signed_find(s, i, VOTE_PRECOMMIT, height - 1,
								named->round);
				bool late = id && !memcmp(id, named->block_id, HASH_LEN);

				s->missed[i]++;
				if (i != s->stopped) {
					s->live_absent++;
					s->live_late += late;
				}
				sim_trace(s, "liveness: validator %d is not in the certificate of"
					  " height %" PRIu64 " (%" PRIu64 " in a row): %s", i,
					  height - 1, s->missed[i], late ?
					  "its precommit came too late" :
					  "it signed no precommit for that block and round");
			}
			if (i != s->stopped) {
				s->live_counted++;
				if (s->missed[i] > s->live_missed_max)
					s->live_missed_max = s->missed[i];
			}
			/* The rule: jailed at the window, while what this block
			 * jails stays below 1/3 of the set that signed height - 1. */
			if (s->missed[i] >= window &&
			    ((unsigned __int128)gone + v->stake) * 3 < total) {
				expect = true;
				gone += v->stake;
			}
			if (jailed != expect) {
				sim_fail(s, "liveness: validator %d %s at height %" PRIu64 " after %"
					 PRIu64 " certificates in a row without its precommit"
					 " (window %" PRIu64 ")", i,
					 jailed ? "is jailed" : "is not jailed", height,
					 s->missed[i], window);
				break;
			}
			if (!jailed)
				continue;
			s->missed[i] = 0;
			if (state_liveness_get(&s->ref.state, v->pubkey, &l) ||
			    l.jailed_until != height + s->g.params.jail_blocks)
				sim_fail(s, "liveness: validator %d jailed at height %" PRIu64
					 " without a jail term to height %" PRIu64, i, height,
					 height + s->g.params.jail_blocks);
			else if (after[i].stake != before[i].stake)
				sim_fail(s, "liveness: validator %d jailed at height %" PRIu64
					 " for downtime lost stake: %" PRIu64 " of %" PRIu64, i,
					 height, before[i].stake - after[i].stake, before[i].stake);
			else if (i != s->stopped)
				sim_fail(s, "liveness: validator %d, never stopped, is jailed at"
					 " height %" PRIu64 ": %" PRIu64 " certificates in a row"
					 " lack its precommit", i, height, window);
			else if (s->jailed_at)
				sim_fail(s, "liveness: validator %d, back since height %" PRIu64
					 ", is jailed again at height %" PRIu64, i, s->unjailed_at,
					 height);
			else
				s->jailed_at = height;
			sim_trace(s, "liveness: validator %d jailed at height %" PRIu64
				  " (stake %" PRIu64 " kept)", i, height, after[i].stake);
		}
		if (!s->ref.v.vals.n)
			sim_fail(s, "liveness: no validator is left after height %" PRIu64, height);
	}
	for (int i = 0; i < s->n && !s->failed; i++)
		if (before[i].jailed && !after[i].jailed) {
			if (i != s->stopped || !s->jailed_at || s->unjailed_at)
				sim_fail(s, "liveness: validator %d unjailed at height %" PRIu64
					 " though never jailed by the rule", i, height);
			s->unjailed_at = height;
			sim_trace(s, "liveness: validator %d unjailed at height %" PRIu64, i, height);
		}
}

/* Block height of c (committed, its certificate final) into the auditor's
 * replay: verify with the certificate, execute, compare the roots. */
static void ref_replay(struct sim *s, const struct chain *c, uint64_t height)
{
	char why[WHY_MAX];
	struct block bl;
	int rc;

	/* What the liveness rule reads, as the verifier held it before. */
	static struct commit_cert named;
	static struct validator_set signers;
	struct validator_entry before[SIM_NODES_MAX];

	if (height != s->ref.v.height + 1 || height > c->nblocks)
		return;
	if (s->o.liveness) {
		ref_entries(s, before);
		named = s->ref.v.last_cert;
		signers = s->ref.v.last_vals;
	}
	rc = block_decode(&bl, c->block[height - 1], c->block_len[height - 1]);
	if (!rc) {
		rc = replay_block(&s->ref, &bl, &c->cert[height - 1], NULL, NULL, why);
		block_free(&bl);
	} else {
		snprintf(why, sizeof(why), "does not decode");
	}
	if (rc)
		sim_fail(s, "validity: the block decided at height %" PRIu64 " fails the auditor's"
			 " replay: %s", height, why);
	else if (s->o.liveness)
		liveness_count(s, height, &named, &signers, before);
}

/* Every node holds the same chain: the same blocks, and the same
 * certificate for every block but its last. */
static void check_same_chain(struct sim *s)
{
	const struct chain *best = &s->node[0].chain;

	for (int i = 1; i < s->n; i++)
		if (s->node[i].chain.nblocks > best->nblocks)
			best = &s->node[i].chain;
	for (int i = 0; i < s->n && !s->failed; i++) {
		const struct chain *c = &s->node[i].chain;

		for (size_t h = 0; h < c->nblocks && !s->failed; h++) {
			if (c->block_len[h] != best->block_len[h] ||
			    memcmp(c->block[h], best->block[h], c->block_len[h]))
				sim_fail(s, "node %d stores another block at height %zu", i, h + 1);
			else if (h + 1 < c->nblocks &&
				 memcmp(&c->cert[h], &best->cert[h], sizeof(c->cert[h])))
				sim_fail(s, "node %d stores another certificate for block %zu than"
					 " the chain's", i, h + 1);
		}
	}
	ref_replay(s, best, best->nblocks);
}

void sim_on_commit(struct sim *s, int node, uint64_t height, const uint8_t *block, size_t len,
		   const struct commit_cert *cert)
{
	struct block_header h;
	uint8_t id[HASH_LEN];
	char a[17], b[17];
	struct dec d;

	dec_init(&d, block, len);
	if (header_decode_from(&d, &h)) {
		sim_fail(s, "node %d committed a block whose header does not decode", node);
		return;
	}
	block_id(&h, id);
	if (cert->round > s->max_round)
		s->max_round = cert->round;
	if (height <= s->ndecided) {
		if (memcmp(s->decided[height - 1], id, HASH_LEN)) {
			hex8(s->decided[height - 1], a);
			hex8(id, b);
			sim_fail(s, "agreement: node %d committed %s at height %" PRIu64
				 " where %s was committed", node, b, height, a);
		}
		sim_trace(s, "node %d commits height %" PRIu64 " (round %u)", node, height,
			  cert->round);
		return;
	}
	if (height != s->ndecided + 1) {
		sim_fail(s, "node %d committed height %" PRIu64 " before height %zu", node, height,
			 s->ndecided + 1);
		return;
	}
	if (s->ndecided == s->decided_cap) {
		s->decided_cap = s->decided_cap ? 2 * s->decided_cap : 256;
		s->decided = realloc(s->decided, s->decided_cap * sizeof(*s->decided));
		if (!s->decided)
			abort();
	}
	memcpy(s->decided[s->ndecided++], id, HASH_LEN);
	/* The auditor's replay of the decided chain, one block behind: a block's
	 * certificate is the chain's once the next block names it. */
	if (height >= 2)
		ref_replay(s, &s->node[node].chain, height - 1);
	hex8(id, a);
	sim_trace(s, "node %d commits height %" PRIu64 " (round %u, %u signatures) %s first", node,
		  height, cert->round, (unsigned)cert->n, a);
}

/* Sends t, signed with k, to every node (clients reach them all). */
static void submit_tx(struct sim *s, struct tx *t, const struct tally_key *k)
{
	struct enc e;

	t->version = TX_VERSION;
	snprintf(t->chain_id, sizeof(t->chain_id), "%s", s->g.chain_id);
	memcpy(t->signer, k->pub, PUBKEY_LEN);
	if (tx_sign(t, k, s->genesis_hash))
		abort();
	enc_init(&e);
	tx_encode(&e, t);
	if (enc_error(&e))
		abort();
	for (int i = 0; i < s->n; i++)
		net_send(s, -1, i, MSG_TX, e.buf, e.len, NULL, 0);
	enc_free(&e);
}

/* The reporter's EVIDENCE, once per offence, with one byzantine validator
 * (with more, the run is meant to show a fork, not to jail them). */
static void report_evidence(struct sim *s, const struct cs_evidence *ev)
{
	struct signed_vote a = { .v = ev->a }, b = { .v = ev->b };
	struct tx t;

	if (s->nbyz != 1 || s->nreported == sizeof(s->reported) / sizeof(s->reported[0]))
		return;
	for (size_t i = 0; i < s->nreported; i++)
		if (s->reported[i].height == ev->a.height && s->reported[i].round == ev->a.round &&
		    s->reported[i].type == ev->a.type)
			return;
	s->reported[s->nreported].height = ev->a.height;
	s->reported[s->nreported].round = ev->a.round;
	s->reported[s->nreported].type = ev->a.type;
	s->nreported++;
	memcpy(a.validator, ev->validator, PUBKEY_LEN);
	memcpy(b.validator, ev->validator, PUBKEY_LEN);
	memcpy(a.sig, ev->sig_a, SIG_LEN);
	memcpy(b.sig, ev->sig_b, SIG_LEN);
	memset(&t, 0, sizeof(t));
	t.kind = TX_EVIDENCE;
	if (evidence_make(&t.u.evidence, &a, &b))
		abort();
	t.nonce = s->reporter_nonce++;
	submit_tx(s, &t, &s->reporter);
}

/* No honest validator jailed; a jailed byzantine one slashed. */
static void check_jails(struct sim *s)
{
	struct state *st = &s->ref.state;

	for (int i = 0; i < s->n && !s->failed; i++) {
		struct validator_entry v;

		if (state_validator_get(st, s->node[i].key.pub, &v))
			continue;
		if (v.jailed && !s->node[i].byzantine)
			sim_fail(s, "jailing: honest validator %d is jailed", i);
		/* At least one slash of 10% (floor), and byzantine validators
		 * never stake. */
		uint64_t g = s->g.validators.v[i].stake;
		if (v.jailed && v.stake > g - g / 10)
			sim_fail(s, "jailing: byzantine validator %d is jailed but kept its stake %"
				 PRIu64 " of %" PRIu64, i, v.stake, g);
		if (v.jailed)
			s->jailed++;
	}
}

void sim_on_evidence(struct sim *s, int node, const struct cs_evidence *ev)
{
	const struct validator *v = valset_find(&s->g.validators, ev->validator);
	int who = v ? (int)(v - s->g.validators.v) : -1;

	s->evidence++;
	if (ev->a.height != ev->b.height || ev->a.round != ev->b.round ||
	    ev->a.type != ev->b.type || !memcmp(ev->a.block_id, ev->b.block_id, HASH_LEN) ||
	    vote_verify(&ev->a, ev->validator, s->genesis_hash, ev->sig_a) ||
	    vote_verify(&ev->b, ev->validator, s->genesis_hash, ev->sig_b)) {
		s->evidence_bad++;
		sim_fail(s, "node %d surfaced evidence that is not two valid conflicting votes", node);
		return;
	}
	if (who < 0 || !s->node[who].byzantine) {
		s->evidence_bad++;
		sim_fail(s, "node %d surfaced evidence against honest validator %d", node, who);
		return;
	}
	sim_trace(s, "node %d: evidence against validator %d at height %" PRIu64 " round %u", node,
		  who, ev->a.height, ev->a.round);
	report_evidence(s, ev);
}

/* Nothing fails inside an honest engine here (no disk fails, no crash
 * comes inside an event): an error it reports is a bug. */
static void check_engines(struct sim *s)
{
	for (int i = 0; i < s->n && !s->failed; i++) {
		char why[WHY_MAX];

		if (s->node[i].up && !s->node[i].byzantine && engine_take_error(s->node[i].eng, why))
			sim_fail(s, "node %d's engine failed: %s", i, why);
	}
}

/* After the heal: every honest node gets PROGRESS_HEIGHTS past the highest
 * height any node had then. */
static bool progress_done(struct sim *s)
{
	for (int i = 0; i < s->n; i++)
		if (!s->node[i].byzantine && committed(&s->node[i]) < s->heal_height + PROGRESS_HEIGHTS)
			return false;
	return true;
}

/* --- events ------------------------------------------------------------------------------ */

static void send_status(struct sim *s, int from, int to)
{
	uint8_t h[8];
	uint64_t next = committed(&s->node[from]) + 1;

	for (int i = 0; i < 8; i++)
		h[i] = (uint8_t)(next >> (8 * i));
	net_send(s, from, to, MSG_STATUS, h, sizeof(h), NULL, 0);
}

/* The block sync the transport does: a peer behind gets the next block. */
static uint64_t last_sync[SIM_NODES_MAX][SIM_NODES_MAX];

static void serve_sync(struct sim *s, int from, int to, uint64_t height)
{
	struct chain *c = &s->node[from].chain;
	struct enc e, cert, prev;

	if (height == 0 || height > c->nblocks)
		return;
	if (last_sync[from][to] && s->now - last_sync[from][to] < SYNC_GAP_NS)
		return;
	last_sync[from][to] = s->now ? s->now : 1;
	/* The block, its certificate, and the certificate of the block before
	 * it that it names. */
	enc_init(&e);
	enc_init(&cert);
	enc_init(&prev);
	cert_encode(&cert, &c->cert[height - 1]);
	if (height > 1)
		cert_encode(&prev, &c->cert[height - 2]);
	enc_bytes(&e, cert.buf, cert.len);
	enc_bytes(&e, prev.buf, prev.len);
	enc_free(&cert);
	enc_free(&prev);
	if (enc_error(&e))
		abort();
	net_send(s, from, to, MSG_SYNC, c->block[height - 1], c->block_len[height - 1], e.buf,
		 e.len);
	enc_free(&e);
}

static uint64_t msg_height(const uint8_t *p, size_t len)
{
	struct cs_msg m;

	if (cs_msg_decode(&m, p, len))
		return 0;
	return m.kind == CS_MSG_VOTE ? m.v.height : m.p.height;
}

static void deliver(struct sim *s, struct event *e)
{
	struct node *n = &s->node[e->node];
	enum csm_check verdict;
	char why[WHY_MAX] = "";

	if (!n->up || !e->msg)
		return;
	switch (e->msg) {
	case MSG_CONSENSUS: {
		uint64_t h = msg_height(e->bytes, e->len);

		int rc = engine_receive(n->eng, e->bytes, e->len, &verdict, why);

		if ((verdict == CSM_REFUSED || rc == TALLY_E_SIGNATURE) &&
		    !s->node[e->from].byzantine)
			sim_fail(s, "node %d refused a message of honest node %d: %s", n->id, e->from,
				 why);
		/* As tallyd's driver does: a message the engine accepted goes on
		 * once to the peers but the one it came from. */
		if (!rc && verdict == CSM_ACCEPT && !n->byzantine)
			for (int i = 0; i < s->n; i++)
				if (i != e->from)
					net_send(s, n->id, i, MSG_CONSENSUS, e->bytes, e->len, NULL, 0);
		if (h && h <= committed(n))
			serve_sync(s, n->id, e->from, h);
		else if (verdict == CSM_AHEAD)
			send_status(s, n->id, e->from);
		break;
	}
	case MSG_STATUS: {
		uint64_t h = 0;

		for (int i = 0; i < 8 && i < (int)e->len; i++)
			h |= (uint64_t)e->bytes[i] << (8 * i);
		if (h <= committed(n))
			serve_sync(s, n->id, e->from, h);
		break;
	}
	case MSG_SYNC: {
		struct commit_cert cert, prev;
		const uint8_t *cp, *pp;
		size_t cl, pl;
		struct block_header h;
		struct dec d;

		dec_init(&d, e->bytes2, e->len2);
		cp = dec_bytes(&d, &cl, CS_CERT_BYTES_MAX);
		pp = dec_bytes(&d, &pl, CS_CERT_BYTES_MAX);
		if (dec_finish(&d) || cert_decode(&cert, cp, cl) || (pl && cert_decode(&prev, pp, pl)))
			break;
		dec_init(&d, e->bytes, e->len);
		if (header_decode_from(&d, &h) || h.height != committed(n) + 1)
			break;
		/* tallyd's rule for a synced block (ledger_apply_synced_block):
		 * never one dated too far ahead of this node's clock. */
		if (chain_check_block_time(h.time_ns, io_now(n), CS_MAX_FUTURE_MS * MS, why)) {
			sim_trace(s, "node %d refuses synced block %" PRIu64 ": %s", n->id, h.height,
				  why);
			break;
		}
		if (chain_commit(&n->chain, e->bytes, e->len, &cert, pl ? &prev : NULL, why)) {
			sim_fail(s, "node %d cannot apply synced block %" PRIu64 " from node %d: %s",
				 n->id, h.height, e->from, why);
			break;
		}
		engine_on_committed(n->eng);
		send_status(s, n->id, e->from);
		break;
	}
	case MSG_TX:
		chain_add_tx(&n->chain, e->bytes, e->len);
		break;
	}
}

static void make_tx(struct sim *s)
{
	struct tx t;
	const struct tally_key *k;
	struct event next = { .at = s->now + 100 * MS + rng_below(&s->rng, 600 * MS),
			      .kind = EV_TXGEN };

	memset(&t, 0, sizeof(t));
	if (rng_ppm(&s->rng, 150000)) {
		/* An honest validator adds stake, or takes back some it added:
		 * the set's powers change. */
		int v = (int)rng_below(&s->rng, (uint64_t)s->n);

		/* The stopped validator's stake stays as it was, to show
		 * that the liveness rule takes none. */
		if (s->node[v].byzantine || v == s->stopped)
			goto out;
		k = &s->node[v].key;
		t.nonce = s->validator_nonce[v]++;
		if (s->staked[v] && rng_ppm(&s->rng, 330000)) {
			t.kind = TX_UNSTAKE;
			t.u.stake.amount = 1 + rng_below(&s->rng, s->staked[v]);
			s->staked[v] -= t.u.stake.amount;
			s->unstakes++;
		} else {
			t.kind = TX_STAKE;
			t.u.stake.amount = 1 + rng_below(&s->rng, 5);
			s->staked[v] += t.u.stake.amount;
		}
	} else {
		int u = (int)rng_below(&s->rng, SIM_USERS);

		k = &s->user[u];
		t.kind = TX_TRANSFER;
		t.nonce = s->user_nonce[u]++;
		memcpy(t.u.transfer.to, s->user[(u + 1) % SIM_USERS].pub, PUBKEY_LEN);
		t.u.transfer.amount = 1 + rng_below(&s->rng, 100);
	}
	submit_tx(s, &t, k);
out:
	queue_push(&s->q, &next);
}

static void handle(struct sim *s, struct event *e)
{
	struct node *n = e->node >= 0 ? &s->node[e->node] : NULL;
	char why[WHY_MAX] = "";

	switch (e->kind) {
	case EV_DELIVER:
		deliver(s, e);
		break;
	case EV_TIMER:
		if (n->up && e->incarnation == n->incarnation)
			engine_on_timeout(n->eng, &e->t);
		break;
	case EV_TICK: {
		struct event next = { .at = s->now + TICK_NS, .kind = EV_TICK, .node = n->id };

		if (n->up) {
			engine_regossip(n->eng);
			for (int i = 0; i < s->n; i++)
				if (i != n->id)
					send_status(s, n->id, i);
		}
		queue_push(&s->q, &next);
		break;
	}
	case EV_CRASH:
		crash(s, n, e->arg);
		break;
	case EV_RESTART:
		if (n->up)
			break;
		if (node_start(s, n, why))
			sim_fail(s, "node %d cannot restart: %s", n->id, why);
		break;
	case EV_TXGEN:
		make_tx(s);
		break;
	}
}

/* --- the scenario ------------------------------------------------------------------------ */

static void key_for(struct sim *s, struct tally_key *k)
{
	uint8_t seed[32];

	for (int i = 0; i < 32; i++)
		seed[i] = (uint8_t)rng_next(&s->rng);
	if (key_from_seed(k, seed))
		abort();
}

static int cmp_node_keys(const void *a, const void *b)
{
	return memcmp(((const struct node *)a)->key.pub, ((const struct node *)b)->key.pub,
		      PUBKEY_LEN);
}

static int cmp_accounts(const void *a, const void *b)
{
	return memcmp(((const struct genesis_account *)a)->pubkey,
		      ((const struct genesis_account *)b)->pubkey, PUBKEY_LEN);
}

/* Clocks off by up to 200 ms, sometimes one far ahead. */
static void clock_skews(struct sim *s)
{
	for (int i = 0; i < s->n; i++)
		s->node[i].skew_ns = (int64_t)rng_below(&s->rng, 400 * MS) - 200 * (int64_t)MS;
	if (rng_ppm(&s->rng, 100000)) {
		int v = (int)rng_below(&s->rng, (uint64_t)s->n);

		s->node[v].skew_ns = 10 * (int64_t)SEC;   /* its proposals are too far ahead */
	}
}

/* The usual scenario's faults until the heal: partitions, clock skews,
 * crashes. */
static void random_faults(struct sim *s)
{
	s->nparts = (int)rng_below(&s->rng, 4);
	for (int i = 0; i < s->nparts; i++) {
		uint64_t from = rng_below(&s->rng, HEAL_NS - 2 * SEC);
		uint64_t len = SEC + rng_below(&s->rng, 12 * SEC);

		s->part[i].from = from;
		s->part[i].to = from + len < HEAL_NS ? from + len : HEAL_NS;
		s->part[i].side = 1 + (uint32_t)rng_below(&s->rng, (1u << s->n) - 2);
	}
	s->f.partitions = (uint64_t)s->nparts;
	clock_skews(s);
	for (int c = (int)rng_below(&s->rng, 4); c > 0; c--) {
		struct event e = { .at = SEC + rng_below(&s->rng, HEAL_NS - 3 * SEC),
				   .kind = EV_CRASH, .node = (int)rng_below(&s->rng, (uint64_t)s->n) };

		e.arg = 200 * MS + rng_below(&s->rng, 15 * SEC);   /* downtime */
		queue_push(&s->q, &e);
	}
}

/* The liveness scenario's chain: a short liveness window and jail term, so
 * that a run sees the rule jail and the validator come back. One validator
 * whose stake is below 1/3 of the total (the smallest always is, with four
 * or more) is the one to stop. */
static void liveness_params(struct sim *s)
{
	uint64_t total = valset_total_stake(&s->g.validators);
	int can[SIM_NODES_MAX], ncan = 0;

	s->g.params.liveness_window = LIVENESS_WINDOW_MIN +
				      rng_below(&s->rng, LIVENESS_WINDOW_MAX - LIVENESS_WINDOW_MIN + 1);
	s->g.params.jail_blocks = 4 + rng_below(&s->rng, 9);
	for (int i = 0; i < s->n; i++)
		if ((unsigned __int128)s->g.validators.v[i].stake * 3 < total)
			can[ncan++] = i;
	if (!ncan)
		abort();   /* n >= 4: the smallest stake is at most total / 4 */
	s->stopped = can[rng_below(&s->rng, (uint64_t)ncan)];
}

/* The liveness scenario's faults: drops, duplicates, delays and clock
 * skews as usual until the heal, and one validator stopped, crashed or cut
 * off from all the others, from early in the run until the rule jails it
 * (the heal comes then, run() sees to it) or LIVENESS_DEADLINE_NS. No other
 * node crashes or is cut off: any other validator the rule jails is a
 * violation. */
static void liveness_faults(struct sim *s)
{
	s->heal_at = LIVENESS_DEADLINE_NS;
	s->end_at = s->heal_at + PROGRESS_BOUND_NS;
	clock_skews(s);
	s->stop_at = SEC + rng_below(&s->rng, 4 * SEC);
	s->stop_by_crash = rng_ppm(&s->rng, 500000);
	if (s->stop_by_crash) {
		struct event e = { .at = s->stop_at, .kind = EV_CRASH, .node = s->stopped,
				   .arg = s->heal_at };

		queue_push(&s->q, &e);
	} else {
		s->nparts = 1;
		s->part[0].from = s->stop_at;
		s->part[0].to = s->heal_at;
		s->part[0].side = 1u << s->stopped;
		s->f.partitions = 1;
	}
}

static void setup(struct sim *s, char *why)
{
	uint64_t honest = 0, byz = 0;
	int nbyz;

	s->n = s->o.byzantine > 1 ? 4 : 4 + (int)rng_below(&s->rng, 4);
	for (int i = 0; i < s->n; i++)
		key_for(s, &s->node[i].key);
	qsort(s->node, (size_t)s->n, sizeof(s->node[0]), cmp_node_keys);
	if (s->o.liveness)
		nbyz = 0;
	else
		nbyz = s->o.byzantine >= 0 ? s->o.byzantine : rng_ppm(&s->rng, 850000) ? 1 : 0;
	for (int k = 0; k < nbyz; k++) {
		int v;

		do
			v = (int)rng_below(&s->rng, (uint64_t)s->n);
		while (s->node[v].byzantine);
		s->node[v].byzantine = true;
	}
	/* Stakes: random; a lone byzantine validator below 1/3 of the total.
	 * With more (to show the checks catching what the fault model rules
	 * out) every stake is equal. */
	memset(&s->g, 0, sizeof(s->g));
	s->g.version = 2;
	s->g.params = (struct chain_params){ .unbonding_blocks = 20, .slash_ppm = 100000,
		.jail_blocks = 1000000, .min_self_stake = 1, .max_validators = VALIDATORS_MAX };
	snprintf(s->g.chain_id, sizeof(s->g.chain_id), "tally-sim");
	s->g.genesis_time_ns = GENESIS_NS;
	s->g.validators.n = (size_t)s->n;
	for (int i = 0; i < s->n; i++) {
		struct validator *v = &s->g.validators.v[i];

		memcpy(v->pubkey, s->node[i].key.pub, PUBKEY_LEN);
		v->stake = nbyz > 1 ? 10 : 10 + rng_below(&s->rng, 91);
		if (!s->node[i].byzantine)
			honest += v->stake;
	}
	for (int i = 0; i < s->n; i++)
		if (s->node[i].byzantine && nbyz == 1) {
			uint64_t cap = honest / 2 - 1;   /* 3 b < b + honest */

			s->g.validators.v[i].stake = 1 + rng_below(&s->rng, cap);
			byz = s->g.validators.v[i].stake;
		}
	(void)byz;
	if (s->o.liveness)
		liveness_params(s);
	for (int i = 0; i < SIM_USERS; i++) {
		key_for(s, &s->user[i]);
		memcpy(s->accounts[i].pubkey, s->user[i].pub, PUBKEY_LEN);
		s->accounts[i].balance = 1000000000;
	}
	for (int i = 0; i < s->n; i++) {
		memcpy(s->accounts[SIM_USERS + i].pubkey, s->node[i].key.pub, PUBKEY_LEN);
		s->accounts[SIM_USERS + i].balance = 1000000;
	}
	qsort(s->accounts, (size_t)(SIM_USERS + s->n), sizeof(s->accounts[0]), cmp_accounts);
	s->g.accounts = s->accounts;
	s->g.naccounts = (size_t)(SIM_USERS + s->n);
	genesis_hash(&s->g, s->genesis_hash);
	s->genesis_ns = GENESIS_NS;

	/* The network and its faults. */
	for (int a = 0; a < s->n; a++)
		for (int b = a; b < s->n; b++)
			s->latency_ns[a][b] = s->latency_ns[b][a] = 2 * MS + rng_below(&s->rng, 60 * MS);
	s->drop_ppm = (uint32_t)rng_below(&s->rng, 300000);
	s->dup_ppm = (uint32_t)rng_below(&s->rng, 100000);
	s->slow_ppm = (uint32_t)rng_below(&s->rng, 150000);
	s->heal_at = HEAL_NS;
	s->end_at = HEAL_NS + PROGRESS_BOUND_NS;
	if (s->o.liveness)
		liveness_faults(s);
	else
		random_faults(s);
	for (int i = 0; i < s->n; i++) {
		struct event e = { .at = rng_below(&s->rng, TICK_NS), .kind = EV_TICK, .node = i };

		queue_push(&s->q, &e);
	}
	{
		struct event e = { .at = 100 * MS, .kind = EV_TXGEN, .node = -1 };

		queue_push(&s->q, &e);
	}

	if (replay_init(&s->ref, &s->g, why))
		abort();
	for (int i = 0; i < s->n; i++) {
		struct node *n = &s->node[i];

		n->id = i;
		snprintf(n->wal_path, sizeof(n->wal_path), "%s/node%d.wal", s->o.dir, i);
		snprintf(n->pv_path, sizeof(n->pv_path), "%s/node%d.signer", s->o.dir, i);
		unlink(n->wal_path);
		unlink(n->pv_path);
		if (chain_init(&n->chain, s, i, &s->g, why))
			abort();
	}
}

static void teardown(struct sim *s)
{
	struct event e;

	for (int i = 0; i < s->n; i++) {
		struct node *n = &s->node[i];

		if (n->up)
			node_stop(n);
		chain_free(&n->chain);
		key_free(&n->key);
		unlink(n->wal_path);
		unlink(n->pv_path);
	}
	for (int i = 0; i < SIM_USERS; i++)
		key_free(&s->user[i]);
	while (queue_pop(&s->q, &e)) {
		free(e.bytes);
		free(e.bytes2);
	}
	queue_free(&s->q);
	replay_free(&s->ref);
	free(s->decided);
	free(s->signed_recs);
}

/* --- one run ---------------------------------------------------------------------------- */

/* The faults end: from now on no message is lost or held up. In the
 * liveness scenario the stopped validator comes back (restarted, or its
 * partition over) and sends its UNJAIL, which the chain takes once the
 * jail term is over. Returns true (the run is healed). */
static bool heal(struct sim *s)
{
	s->heal_height = s->ndecided;
	sim_trace(s, "faults heal; height %" PRIu64 " is the highest committed", s->heal_height);
	if (!s->o.liveness)
		return true;
	if (!s->jailed_at) {
		sim_fail(s, "liveness: validator %d, stopped at %" PRIu64 ".%03" PRIu64 " s, is not"
			 " jailed %" PRIu64 " s later (window %" PRIu64 ", %zu heights decided)",
			 s->stopped, s->stop_at / SEC, s->stop_at % SEC / MS,
			 (s->now - s->stop_at) / SEC, s->g.params.liveness_window, s->ndecided);
		return true;
	}
	s->end_at = s->now + PROGRESS_BOUND_NS;
	if (s->stop_by_crash) {
		struct event e = { .at = s->now, .kind = EV_RESTART, .node = s->stopped };

		queue_push(&s->q, &e);
	} else {
		s->part[0].to = s->now;
	}
	{
		struct tx t;

		memset(&t, 0, sizeof(t));
		t.kind = TX_UNJAIL;
		t.nonce = s->validator_nonce[s->stopped]++;
		submit_tx(s, &t, &s->node[s->stopped].key);
	}
	return true;
}

/* The liveness scenario's end, on every node's state: the stopped
 * validator came back with its genesis stake (it sends no STAKE), and no
 * other validator is jailed. */
static void check_liveness_end(struct sim *s)
{
	if (!s->rejoined_at) {
		sim_fail(s, "liveness: validator %d, jailed at height %" PRIu64 ", %s", s->stopped,
			 s->jailed_at, s->unjailed_at ? "was unjailed but signs no certificate" :
			 "is not unjailed after its term");
		return;
	}
	for (int k = 0; k < s->n && !s->failed; k++)
		for (int i = 0; i < s->n && !s->failed; i++) {
			struct validator_entry v;
			uint64_t g = s->g.validators.v[i].stake;

			if (state_validator_get(&s->node[k].chain.r.state, s->node[i].key.pub, &v))
				sim_fail(s, "liveness: node %d holds no validator %d", k, i);
			else if (v.jailed)
				sim_fail(s, "liveness: node %d holds validator %d jailed at the end",
					 k, i);
			else if (i == s->stopped && v.stake != g)
				sim_fail(s, "liveness: node %d holds the stake of validator %d at %"
					 PRIu64 ", not %" PRIu64, k, i, v.stake, g);
		}
}

struct run_result {
	bool ok;
	uint64_t heights, evidence, max_round;
	uint64_t progress_ns;
	struct fault_stats f;
	int n, byzantine;
	uint64_t live_absent, live_late, live_counted, live_missed_max;   /* the liveness scenario */
};

/* The command that replays this run and prints these very lines again. */
static void print_command(const struct sim_opts *o)
{
	printf("replay: %s --seed %" PRIu64, g_argv0, o->seed);
	if (o->liveness)
		printf(" --liveness");
	if (o->byzantine >= 0)
		printf(" --byzantine %d", o->byzantine);
	printf("   (-v adds a trace)\n");
}

static struct run_result run(const struct sim_opts *o)
{
	struct run_result res = { 0 };
	struct sim *s = &S;
	char why[WHY_MAX] = "";
	bool healed = false;
	struct event e;
	int nbyz = 0;

	memset(s, 0, sizeof(*s));
	memset(last_sync, 0, sizeof(last_sync));
	nalt = 0;
	s->o = *o;
	s->stopped = -1;
	s->rng.s = o->seed * 0x2545f4914f6cdd1dull + 0x1234567;
	setup(s, why);
	for (int i = 0; i < s->n; i++)
		nbyz += s->node[i].byzantine;
	s->nbyz = nbyz;
	{
		uint8_t seed[32];

		memset(seed, 0x7e, sizeof(seed));   /* not from the run's generator */
		if (key_from_seed(&s->reporter, seed))
			abort();
	}
	sim_trace(s, "%d validators (%d byzantine); drop %u%%, duplicate %u%%, slow %u%%, %d"
		  " partitions", s->n, nbyz, s->drop_ppm / 10000, s->dup_ppm / 10000,
		  s->slow_ppm / 10000, s->nparts);
	for (int i = 0; i < s->n && s->o.verbose; i++)
		sim_trace(s, "node %d: stake %" PRIu64 "%s, clock %+" PRId64 " ms", i,
			  s->g.validators.v[i].stake, s->node[i].byzantine ? ", byzantine" : "",
			  s->node[i].skew_ns / (int64_t)MS);
	for (int i = 0; i < s->n && !s->failed; i++)
		if (node_start(s, &s->node[i], why))
			sim_fail(s, "node %d cannot start: %s", i, why);
	while (!s->failed && !interrupted && queue_pop(&s->q, &e)) {
		if (e.at > s->end_at) {
			free(e.bytes);
			free(e.bytes2);
			break;
		}
		s->now = e.at;
		if (!healed && s->now >= s->heal_at)
			healed = heal(s);
		handle(s, &e);
		free(e.bytes);
		free(e.bytes2);
		check_engines(s);
		/* The liveness scenario heals once the rule jailed the stopped
		 * validator. */
		if (!healed && !s->failed && s->jailed_at) {
			s->heal_at = s->now;
			healed = heal(s);
		}
		if (healed && !s->failed && !s->progress_at && progress_done(s))
			s->progress_at = s->now;
		if (s->progress_at && (!s->o.liveness || s->rejoined_at))
			break;
	}
	if (interrupted) {
		teardown(s);
		res.ok = false;
		return res;
	}
	if (!s->failed)
		check_same_chain(s);
	if (!s->failed && !s->o.liveness)
		check_jails(s);
	if (!s->failed && s->o.liveness)
		check_liveness_end(s);
	if (!s->failed && !s->progress_at) {
		char hs[128] = "";
		size_t off = 0;

		for (int i = 0; i < s->n; i++)
			off += (size_t)snprintf(hs + off, sizeof(hs) - off, "%s%" PRIu64, i ? " " : "",
						committed(&s->node[i]));
		sim_fail(s, "progress: %d s after the faults healed the nodes are at heights %s,"
			 " not all past %" PRIu64, (int)(PROGRESS_BOUND_NS / SEC), hs,
			 s->heal_height + PROGRESS_HEIGHTS);
	}
	res.ok = !s->failed;
	res.heights = s->ndecided;
	res.evidence = s->evidence;
	res.max_round = s->max_round;
	res.progress_ns = s->progress_at > s->heal_at ? s->progress_at - s->heal_at : 0;
	res.f = s->f;
	res.n = s->n;
	res.byzantine = nbyz;
	res.live_absent = s->live_absent;
	res.live_late = s->live_late;
	res.live_counted = s->live_counted;
	res.live_missed_max = s->live_missed_max;
	if (res.ok && s->o.liveness)
		printf("seed %" PRIu64 ": liveness, %d validators, window %" PRIu64 ", jail %" PRIu64
		       " blocks: validator %d (stake %" PRIu64 " of %" PRIu64 ") %s at %" PRIu64
		       ".%01" PRIu64 " s, jailed at height %" PRIu64 ", heal at %" PRIu64 ".%01" PRIu64
		       " s, unjailed at height %" PRIu64 ", signs again at %" PRIu64 "; %" PRIu64
		       " heights, max round %" PRIu64 ", %" PRIu64 " dropped; the others absent from"
		       " %" PRIu64 " of %" PRIu64 " certificates (%" PRIu64 " though they had"
		       " precommitted), at most %" PRIu64 " in a row;"
		       " progress %" PRIu64 ".%01" PRIu64 " s after heal: ok\n", o->seed, res.n,
		       s->g.params.liveness_window, s->g.params.jail_blocks, s->stopped,
		       s->g.validators.v[s->stopped].stake, valset_total_stake(&s->g.validators),
		       s->stop_by_crash ? "crashed" : "cut off", s->stop_at / SEC,
		       s->stop_at % SEC / (SEC / 10), s->jailed_at, s->heal_at / SEC,
		       s->heal_at % SEC / (SEC / 10), s->unjailed_at, s->rejoined_at, res.heights,
		       res.max_round, s->f.dropped, s->live_absent, s->live_counted,
		       s->live_late, s->live_missed_max, res.progress_ns / SEC, res.progress_ns % SEC / (SEC / 10));
	else if (res.ok)
		printf("seed %" PRIu64 ": %d validators (%d byzantine), %" PRIu64 " heights, max round %"
		       PRIu64 ", %" PRIu64 " crashes (%" PRIu64 " torn), %d partitions, %" PRIu64
		       " dropped, %" PRIu64 " equivocations, %" PRIu64 " evidence, %" PRIu64
		       " unstakes, %" PRIu64 " jailed, progress %" PRIu64
		       ".%01" PRIu64 " s after heal: ok\n", o->seed, res.n, nbyz, res.heights,
		       res.max_round, s->f.crashes, s->f.torn_tails, s->nparts,
		       s->f.dropped + s->f.cut_by_partition, s->f.equivocations + s->f.bad_proposals,
		       res.evidence, s->unstakes, s->jailed, res.progress_ns / SEC,
		       res.progress_ns % SEC / (SEC / 10));
	else {
		printf("seed %" PRIu64 ": FAIL %s\n", o->seed, s->failure);
		print_command(o);
	}
	teardown(s);
	return res;
}

/* --- main ---------------------------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: sim [--seed N | --seeds N [--from S]] [--byzantine K | --liveness] [-v]\n"
		"           [--dir DIR]\n"
		"\n"
		"Runs the consensus simulator: validators running the real engine over a\n"
		"simulated network with faults from each seed; checks agreement, validity,\n"
		"no honest equivocation, evidence and progress after the faults heal.\n"
		"With --liveness, each run instead stops one validator (below 1/3 of the\n"
		"stake) until the liveness rule jails it, then brings it back: checks that\n"
		"the rule jails it, without a slash, and no other, and that it returns.\n"
		"\n"
		"  --seed N        one run (default 1)\n"
		"  --seeds N       N runs, seeds S .. S+N-1 (--from S, default 1)\n"
		"  --byzantine K   K equivocating validators (default: from the seed, 0 or 1;\n"
		"                  K >= 2 of 4 exceeds what consensus tolerates)\n"
		"  --liveness      the liveness scenario (no byzantine validator; a liveness\n"
		"                  window of 4 to 8 blocks, a jail term of 4 to 12)\n"
		"  --expect-fail   exit 0 only if some run fails (checks that checks can fail)\n"
		"  -v              trace every commit, crash, restart and engine log line\n"
		"  --dir DIR       where the nodes' WAL and signer files go (default a new\n"
		"                  directory in /dev/shm, removed at the end)\n");
}

static double wall_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "seed", required_argument, NULL, 's' },
		{ "seeds", required_argument, NULL, 'n' },
		{ "from", required_argument, NULL, 'f' },
		{ "byzantine", required_argument, NULL, 'b' },
		{ "liveness", no_argument, NULL, 'l' },
		{ "expect-fail", no_argument, NULL, 'x' },
		{ "dir", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct sim_opts o = { .seed = 1, .byzantine = -1 };
	uint64_t nseeds = 0, from = 1, failed = 0, ran = 0;
	bool expect_fail = false, own_dir = false;
	char dir[256];
	struct fault_stats tot = { 0 };
	uint64_t heights = 0, hmin = UINT64_MAX, hmax = 0, evidence = 0, runs_with_evidence = 0;
	uint64_t byz_runs = 0, max_progress = 0, max_round = 0;
	uint64_t live_absent = 0, live_late = 0, live_counted = 0, live_missed_max = 0;
	double t0;
	int c;

	g_argv0 = argv[0];
	while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			o.seed = strtoull(optarg, NULL, 10);
			break;
		case 'n':
			nseeds = strtoull(optarg, NULL, 10);
			break;
		case 'f':
			from = strtoull(optarg, NULL, 10);
			break;
		case 'b':
			o.byzantine = atoi(optarg);
			if (o.byzantine < 0 || o.byzantine > 3) {
				fprintf(stderr, "sim: --byzantine takes 0 to 3\n");
				return 2;
			}
			break;
		case 'l':
			o.liveness = true;
			break;
		case 'x':
			expect_fail = true;
			break;
		case 'd':
			o.dir = optarg;
			break;
		case 'v':
			o.verbose = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (o.liveness && o.byzantine > 0) {
		fprintf(stderr, "sim: --liveness runs without byzantine validators\n");
		return 2;
	}
	if (!o.dir) {
		const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" :
				   getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";

		snprintf(dir, sizeof(dir), "%s/tally-sim-%d", base, (int)getpid());
		if (mkdir(dir, 0700) && errno != EEXIST) {
			fprintf(stderr, "sim: cannot create %s: %s\n", dir, strerror(errno));
			return 1;
		}
		o.dir = dir;
		own_dir = true;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* Output cut short (| head) must not leave the run's files behind. */
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if (!nseeds) {
		nseeds = 1;
		from = o.seed;
	}
	t0 = wall_s();
	for (uint64_t i = 0; i < nseeds && !interrupted; i++) {
		struct run_result r;

		o.seed = from + i;
		r = run(&o);
		ran++;
		if (!r.ok) {
			failed++;
			if (expect_fail)
				break;
			continue;
		}
		heights += r.heights;
		hmin = r.heights < hmin ? r.heights : hmin;
		hmax = r.heights > hmax ? r.heights : hmax;
		evidence += r.evidence;
		runs_with_evidence += r.evidence > 0;
		byz_runs += r.byzantine > 0;
		max_progress = r.progress_ns > max_progress ? r.progress_ns : max_progress;
		max_round = r.max_round > max_round ? r.max_round : max_round;
		live_absent += r.live_absent;
		live_late += r.live_late;
		live_counted += r.live_counted;
		if (r.live_missed_max > live_missed_max)
			live_missed_max = r.live_missed_max;
		tot.sent += r.f.sent;
		tot.dropped += r.f.dropped;
		tot.duplicated += r.f.duplicated;
		tot.delayed += r.f.delayed;
		tot.cut_by_partition += r.f.cut_by_partition;
		tot.lost_in_crash += r.f.lost_in_crash;
		tot.partitions += r.f.partitions;
		tot.crashes += r.f.crashes;
		tot.torn_tails += r.f.torn_tails;
		tot.equivocations += r.f.equivocations;
		tot.bad_proposals += r.f.bad_proposals;
	}
	if (own_dir)
		rmdir(dir);
	if (interrupted) {
		fprintf(stderr, "sim: interrupted\n");
		return 1;
	}
	if (nseeds > 1 || expect_fail) {
		double t = wall_s() - t0;
		uint64_t ok = ran - failed;

		fprintf(stderr,
			"sim: %" PRIu64 " seeds, %" PRIu64 " failed, %.1f s (%.2f s per seed)\n"
			"sim: faults: %" PRIu64 " messages sent, %" PRIu64 " dropped, %" PRIu64
			" cut by %" PRIu64 " partitions, %" PRIu64 " duplicated, %" PRIu64 " delayed,"
			" %" PRIu64 " lost in %" PRIu64 " crashes (%" PRIu64 " torn WAL tails)\n"
			"sim: byzantine in %" PRIu64 " runs: %" PRIu64 " conflicting votes, %" PRIu64
			" conflicting proposals; evidence surfaced %" PRIu64 " times in %" PRIu64 " runs\n"
			"sim: %" PRIu64 " heights committed (%" PRIu64 " to %" PRIu64 " per run), max round"
			" %" PRIu64 ", progress at most %.1f s after the heal\n",
			ran, failed, t, t / (double)ran, tot.sent, tot.dropped,
			tot.cut_by_partition, tot.partitions, tot.duplicated, tot.delayed,
			tot.lost_in_crash, tot.crashes, tot.torn_tails, byz_runs, tot.equivocations,
			tot.bad_proposals, evidence, runs_with_evidence, heights, ok ? hmin : 0, hmax,
			max_round, (double)max_progress / SEC);
		if (o.liveness)
			fprintf(stderr, "sim: liveness: in each of %" PRIu64 " runs the stopped validator"
				" was jailed by the rule, kept its stake and came back; the validators"
				" never stopped were absent from %" PRIu64 " of %" PRIu64 " certificates"
				" (%" PRIu64 " though they had precommitted the block), at most %"
				PRIu64 " in a row (windows %d to %d)\n", ok, live_absent,
				live_counted, live_late, live_missed_max, LIVENESS_WINDOW_MIN, LIVENESS_WINDOW_MAX);
	}
	if (expect_fail)
		return failed ? 0 : 1;
	return failed ? 1 : 0;
}
