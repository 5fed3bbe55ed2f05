/* The ledger's consensus engine (daemon/consensus/engine.h): opened with the
 * ledger, its WAL in the data directory, its application this ledger
 * (execute.c), its I/O a transport given in the configuration or, for the
 * single-validator devnet, a loopback: no peers to send to, timers kept
 * here and fired by ledger_consensus_tick (tallyd's loop) or by
 * ledger_produce_block, which runs one height to its end at once. */
#include "daemon/ledger/ledger_impl.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/clock.h"
#include "lib/errors.h"

/* --- the loopback I/O ------------------------------------------------------------ */

static void loop_broadcast(void *ctx, const uint8_t *msg, size_t len)
{
	/* The devnet's validator is alone: the engine fed its own messages to
	 * itself already. */
	(void)ctx, (void)msg, (void)len;
}

static void loop_schedule(void *ctx, uint64_t at_ns, const struct cs_timeout *t)
{
	struct ledger *l = ctx;

	if (cs_timers_set(&l->timers, at_ns, t))
		ledger_logf(l, "out of memory for a consensus timer");
}

static uint64_t loop_now(void *ctx)
{
	struct ledger *l = ctx;

	return l->loop_clock_ns ? l->loop_clock_ns : node_clock_ns();
}

/* The earliest timer due at or before until; false when none. */
static bool loop_pop(struct ledger *l, uint64_t until, struct cs_timeout *t)
{
	return cs_timers_pop(&l->timers, until, t);
}

/* --- open, start, close -------------------------------------------------------------- */

int ledger_consensus_open(struct ledger *l, const struct ledger_config *cfg, char *why)
{
	struct engine_app app = ledger_engine_app(l);
	struct engine_config ec = {
		.chain = l->genesis_hash,
		.pv = l->has_pv ? &l->pv : NULL,
		.timeouts = cfg->timeouts,
		.max_future_ns = cfg->max_future_ns,
		.wait_for_txs = !cfg->empty_blocks,
	};
	char path[4096];
	int rc;

	if (!l->has_pv && !cfg->consensus_io)
		return 0;   /* a store read by itself: no consensus */
	if (snprintf(path, sizeof(path), "%s/%s", cfg->data_dir, LEDGER_CONSENSUS_WAL) >=
	    (int)sizeof(path))
		return why_set(why, TALLY_E_INVALID, "data directory path too long");
	ec.wal_path = path;
	if (cfg->consensus_io) {
		l->cs_io = *cfg->consensus_io;
	} else {
		l->cs_loopback = true;
		l->cs_io.ctx = l;
		l->cs_io.broadcast = loop_broadcast;
		l->cs_io.schedule = loop_schedule;
		l->cs_io.now_ns = loop_now;
	}
	l->in_engine = true;
	rc = engine_open(&l->cs, &ec, &app, why);
	l->in_engine = false;
	return rc;
}

void ledger_consensus_close(struct ledger *l)
{
	engine_close(l->cs);
	l->cs = NULL;
	cs_timers_free(&l->timers);
}

int ledger_consensus_ensure_started(struct ledger *l, char *why)
{
	int rc;

	if (!l->cs)
		return why_set(why, TALLY_E_STATE, "this node runs no consensus (no validator key)");
	if (l->cs_started)
		return 0;
	l->in_engine = true;
	rc = engine_start(l->cs, &l->cs_io, why);
	l->in_engine = false;
	l->cs_started = true;
	return rc;
}

int ledger_consensus_start(struct ledger *l, char *why)
{
	int rc;

	why[0] = '\0';
	ledger_lock(l);
	rc = ledger_consensus_ensure_started(l, why);
	ledger_unlock(l);
	return rc;
}

/* --- inputs ---------------------------------------------------------------------------- */

int ledger_consensus_receive(struct ledger *l, const uint8_t *msg, size_t len,
			     enum csm_check *verdict, char *why)
{
	int rc;

	why[0] = '\0';
	ledger_lock(l);
	rc = ledger_consensus_ensure_started(l, why);
	if (!rc) {
		l->in_engine = true;
		rc = engine_receive(l->cs, msg, len, verdict, why);
		l->in_engine = false;
	}
	ledger_unlock(l);
	return rc;
}

int ledger_consensus_timeout(struct ledger *l, const struct cs_timeout *t)
{
	char why[WHY_MAX];
	int rc;

	ledger_lock(l);
	rc = ledger_consensus_ensure_started(l, why);
	if (!rc) {
		l->in_engine = true;
		rc = engine_on_timeout(l->cs, t);
		l->in_engine = false;
	}
	ledger_unlock(l);
	return rc;
}

void ledger_consensus_regossip(struct ledger *l)
{
	ledger_lock(l);
	if (l->cs && l->cs_started) {
		l->in_engine = true;
		engine_regossip(l->cs);
		l->in_engine = false;
	}
	ledger_unlock(l);
}

int ledger_consensus_status(struct ledger *l, struct engine_status *st)
{
	int rc = 0;

	ledger_lock(l);
	if (l->cs)
		engine_status(l->cs, st);
	else
		rc = TALLY_E_STATE;
	ledger_unlock(l);
	return rc;
}

/* --- the devnet's loop ------------------------------------------------------------------ */

int ledger_consensus_tick(struct ledger *l, uint64_t now_ns, struct ledger_tick *out)
{
	uint64_t before;
	struct cs_timeout t;
	char why[WHY_MAX] = "";
	int rc;

	if (out)
		memset(out, 0, sizeof(*out));
	ledger_lock(l);
	before = l->ncommitted;
	rc = ledger_consensus_ensure_started(l, why);
	l->in_engine = true;
	if (!rc && l->cs_loopback) {
		l->loop_clock_ns = now_ns;
		while (loop_pop(l, now_ns, &t))
			engine_on_timeout(l->cs, &t);
		l->loop_clock_ns = 0;
	}
	if (!rc && mempool_size(l->mp))
		engine_txs_available(l->cs);
	if (!rc)
		engine_retry(l->cs);
	l->in_engine = false;
	if (!rc)
		rc = engine_take_error(l->cs, why);
	if (out) {
		out->committed = l->ncommitted - before;
		out->last = l->last;
		out->err = rc;
		snprintf(out->why, sizeof(out->why), "%s", why);
	}
	ledger_unlock(l);
	return rc;
}

uint64_t ledger_consensus_next_ns(struct ledger *l)
{
	uint64_t next;

	ledger_lock(l);
	next = cs_timers_next(&l->timers);
	ledger_unlock(l);
	return next;
}

/* The loopback engine through one height at time_ns: the wait between
 * heights ends now, and any timer the height needs (a round this validator
 * cannot finish alone at once, after a restart) fires at once, up to a
 * bound. */
#define PRODUCE_TIMERS_MAX 64

static int produce_locked(struct ledger *l, uint64_t time_ns, struct ledger_block_result *res,
			  char *why)
{
	uint64_t height = l->tip.height;
	struct cs_timeout t;
	int rc, err = 0;

	if (!l->has_pv)
		return why_set(why, TALLY_E_UNAUTHORIZED, "this node has no validator key");
	if (time_ns <= l->tip.time_ns)
		return why_set(why, TALLY_E_INVALID, "block time %" PRIu64 " ns is not after the"
			       " previous block's %" PRIu64 " ns", time_ns, l->tip.time_ns);
	if (!l->cs_loopback)
		return why_set(why, TALLY_E_STATE, "blocks come from the network's consensus here");
	l->loop_clock_ns = time_ns;
	rc = ledger_consensus_ensure_started(l, why);
	l->in_engine = true;
	if (!rc)
		engine_skip_wait(l->cs);
	for (int i = 0; !rc && l->tip.height == height && i < PRODUCE_TIMERS_MAX; i++) {
		char sub[WHY_MAX] = "";
		int e = engine_take_error(l->cs, sub);

		if (e) {
			err = e;
			snprintf(why, WHY_MAX, "%s", sub);
		}
		if (!loop_pop(l, UINT64_MAX, &t))
			break;
		engine_on_timeout(l->cs, &t);
	}
	l->in_engine = false;
	l->loop_clock_ns = 0;
	if (rc)
		return rc;
	if (l->tip.height == height) {
		char sub[WHY_MAX] = "";
		int e = engine_take_error(l->cs, sub);

		if (e) {
			err = e;
			snprintf(why, WHY_MAX, "%s", sub);
		}
		if (err)
			return err;
		return why_set(why, TALLY_E_QUORUM, "no commit at height %" PRIu64 ": this node's"
			       " validator holds 2/3 of the stake or less, and the loopback has no"
			       " peers", height + 1);
	}
	if (res)
		*res = l->last;
	return 0;
}

int ledger_produce_block(struct ledger *l, uint64_t time_ns, struct ledger_block_result *res,
			 char *why)
{
	int rc;

	why[0] = '\0';
	ledger_lock(l);
	rc = produce_locked(l, time_ns, res, why);
	ledger_unlock(l);
	return rc;
}
