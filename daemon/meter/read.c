/* Reading the meter: a VM's totals now, and the two-phase reads that make
 * each usage record's delta exactly-once across crashes (see cpumeter.h).
 *
 * A VM's CPU is its top cgroup's cpu.stat usage since registration: the
 * kernel's own count, to the microsecond, of every thread that ran in it,
 * those that ended included. Each reading also keeps the threads' own sum
 * (threads.c), read with it; once the cgroup is gone (the VM ended and
 * libvirt removed it) the CPU is its last reading plus what the threads used
 * since, from their final figures. Run delay is the threads' sum: their
 * shares now plus those of ended threads, folded into the root ledger entry.
 * The root entry also holds the baseline: the totals of the last committed
 * sample, and those of a prepared one waiting for its commit. */
#include "daemon/meter/meter_int.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <string.h>
#include <time.h>

#include "lib/errors.h"

/* How long a prepare waits for the final figures of threads that just
 * ended (they come when the kernel frees the thread, after an RCU grace
 * period, or are settled METER_SETTLE_NS after its exit), and how often it
 * looks. */
#define PENDING_WAIT_MS (METER_SETTLE_NS / 1000000 + 500)
#define PENDING_POLL_MS 2
/* A read-only reader retries while a writer folds threads under it. */
#define READER_TRIES 16

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Marks cgroups whose directory is gone. */
static int mark_gone(struct meter *m, struct vm_view *v, struct meter_sample *s)
{
	size_t i;
	int err;

	for (i = 0; i < v->n; i++) {
		struct vm_cgroup *c = &v->cg[i];
		uint64_t id;

		if (!(c->l.flags & TALLY_LEDGER_GONE) &&
		    (cg_id(c->l.path, &id) || id != c->id)) {
			c->l.flags |= TALLY_LEDGER_GONE;
			err = meter_view_store(m, c);
			if (err)
				return err;
		}
		s->ncgroups++;
		s->ncgroups_gone += !!(c->l.flags & TALLY_LEDGER_GONE);
	}
	return 0;
}

/* Memory from the top cgroup while it exists; its last figures after. */
static int read_memory(struct meter *m, struct vm_cgroup *r, struct meter_sample *s)
{
	uint64_t cur, peak;
	int err;

	if (!(r->l.flags & TALLY_LEDGER_GONE) && !cg_memory(r->l.mem_dir, &cur, &peak)) {
		r->l.mem_current_bytes = cur;
		if (peak > r->l.mem_peak_bytes)
			r->l.mem_peak_bytes = peak;
		err = meter_view_store(m, r);
		if (err)
			return err;
	}
	s->mem_current_bytes = r->l.mem_current_bytes;
	s->mem_peak_bytes = r->l.mem_peak_bytes;
	s->mem_alloc_mib = r->l.mem_alloc_mib;
	s->registered_ns = r->l.registered_ns;
	return 0;
}

static uint64_t sub0(uint64_t a, uint64_t b)
{
	return a > b ? a - b : 0;
}

/* The top cgroup's CPU usage now, in ns; false once it is gone. */
static bool root_usage(const struct vm_cgroup *r, uint64_t *ns)
{
	uint64_t usec;

	if ((r->l.flags & TALLY_LEDGER_GONE) || cg_usage_usec(r->l.path, &usec))
		return false;
	*ns = usec * 1000;
	return true;
}

/* The census, with the top cgroup's usage read around it: the pair is
 * consistent when the usage did not move while the threads were read (none
 * of them was charged meanwhile). A few tries; then the first reading,
 * which the threads' figures can only exceed. */
static int census_with_usage(struct meter *m, struct vm_view *v, struct census *c,
			     bool *have, uint64_t *usage)
{
	struct vm_cgroup *r = &v->cg[v->root];
	uint64_t after;
	int err, tries;

	for (tries = 0; tries < 4; tries++) {
		*have = root_usage(r, usage);
		err = meter_census(m, v, !m->read_only, c);
		if (err || !*have || (root_usage(r, &after) && after == *usage))
			return err;
	}
	return 0;
}

/* CPU: the kernel's own count for the top cgroup (cpu.stat) while it
 * exists; once it is gone, its last reading plus what the threads used
 * since (their own figures, read with it). Run delay: the threads'. */
static int totals_of(struct meter *m, struct vm_view *v, const struct census *c,
		     bool have_usage, uint64_t usage, struct meter_sample *s)
{
	struct vm_cgroup *root = &v->cg[v->root];
	struct tally_ledger *r = &root->l;
	uint64_t threads_cpu = r->ended.cpu_ns + c->live.cpu_ns;

	if (have_usage && (usage != r->cg_last_ns || threads_cpu != r->threads_cpu_last)) {
		r->cg_last_ns = usage;
		r->threads_cpu_last = threads_cpu;
		int err = meter_view_store(m, root);
		if (err)
			return err;
	}
	s->total.cpu_ns = sub0(r->cg_last_ns, r->cg_base_ns);
	if (!have_usage)
		s->total.cpu_ns += sub0(threads_cpu, r->threads_cpu_last);
	s->total.run_delay_ns = r->ended.run_delay_ns + c->live.run_delay_ns;
	s->total.run_delay_count = r->ended.run_delay_count + c->live.run_delay_count;
	/* Totals only grow; a baseline above them would be a bug, not usage. */
	s->delta.cpu_ns = sub0(s->total.cpu_ns, r->committed.cpu_ns);
	s->delta.run_delay_ns = sub0(s->total.run_delay_ns, r->committed.run_delay_ns);
	s->delta.run_delay_count = sub0(s->total.run_delay_count,
					r->committed.run_delay_count);
	s->threads_unsettled = r->unsettled;
	return 0;
}

/* A read-only reader's census is good if no writer folded a thread while
 * it counted. */
static bool folds_moved(struct meter *m, const struct vm_view *v)
{
	struct tally_ledger now;
	const struct vm_cgroup *r = &v->cg[v->root];

	return !bpf_map_lookup_elem(m->map_fd[MAP_LEDGER], &r->id, &now) &&
	       now.fold_seq != r->l.fold_seq;
}

/* One look at the VM: v is loaded and s filled. */
static int look(struct meter *m, const char *vm, struct vm_view *v,
		struct meter_sample *s, unsigned *pending)
{
	uint64_t usage = 0;
	struct census c;
	bool have = false;
	int err, tries;

	for (tries = 0; tries < READER_TRIES; tries++) {
		memset(s, 0, sizeof(*s));
		err = meter_rescan(m, vm);
		if (!err)
			err = meter_view_load(m, vm, v);
		if (err)
			return err;
		err = mark_gone(m, v, s);
		if (!err && v->root < 0)
			return 0;       /* a VM without its top cgroup: nothing to sum */
		if (!err)
			err = census_with_usage(m, v, &c, &have, &usage);
		if (!err && m->read_only && folds_moved(m, v)) {
			meter_view_free(v);
			continue;
		}
		if (!err)
			err = read_memory(m, &v->cg[v->root], s);
		if (!err)
			err = totals_of(m, v, &c, have, usage, s);
		if (err) {
			meter_view_free(v);
			return err;
		}
		/* While the top cgroup exists its cpu.stat holds the CPU of
		 * threads that just ended: what is pending is at most the
		 * last microseconds of their run delay, which the next
		 * reading has. Once it is gone, their final figures are the
		 * VM's last CPU, worth waiting for. */
		*pending = have ? 0 : c.pending;
		return 0;
	}
	return TALLY_E_STATE;
}

/* Reads the VM; with wait, until no thread's final figures are missing or
 * PENDING_WAIT_MS have passed. */
static int read_vm(struct meter *m, const char *vm, bool wait, struct vm_view *v,
		   struct meter_sample *out)
{
	uint64_t deadline = mono_ms() + PENDING_WAIT_MS;
	unsigned pending = 0;
	int err;

	for (;;) {
		err = look(m, vm, v, out, &pending);
		if (err || !pending || !wait || mono_ms() >= deadline)
			return err;
		meter_view_free(v);
		sleep_ms(PENDING_POLL_MS);
	}
}

int meter_vm_read(struct meter *m, const char *vm, struct meter_sample *out)
{
	struct vm_view v;
	int err;

	err = read_vm(m, vm, false, &v, out);
	if (!err)
		meter_view_free(&v);
	return err;
}

int meter_vm_prepare(struct meter *m, const char *vm, uint64_t seq,
		     struct meter_sample *out)
{
	struct vm_cgroup *root;
	struct vm_view v;
	int err;

	if (m->read_only || seq == UINT64_MAX)
		return m->read_only ? TALLY_E_STATE : TALLY_E_RANGE;
	err = read_vm(m, vm, true, &v, out);
	if (err)
		return err;
	if (v.root < 0) {
		meter_view_free(&v);
		return TALLY_E_NOTFOUND;
	}
	root = &v.cg[v.root];
	if (root->l.committed_seq1 > seq) {
		err = TALLY_E_STATE;    /* seq is at or before a commit */
	} else {
		root->l.pending.cpu_ns = out->total.cpu_ns;
		root->l.pending.run_delay_ns = out->total.run_delay_ns;
		root->l.pending.run_delay_count = out->total.run_delay_count;
		root->l.pending_seq1 = seq + 1;
		err = meter_view_store(m, root);
	}
	meter_view_free(&v);
	return err;
}

int meter_vm_commit(struct meter *m, const char *vm, uint64_t seq)
{
	struct tally_ledger *l;
	struct vm_view v;
	int err = 0;

	if (m->read_only || seq == UINT64_MAX)
		return m->read_only ? TALLY_E_STATE : TALLY_E_RANGE;
	err = meter_view_load(m, vm, &v);
	if (err)
		return err;
	if (v.root < 0) {
		meter_view_free(&v);
		return TALLY_E_NOTFOUND;
	}
	l = &v.cg[v.root].l;
	if (l->pending_seq1 == seq + 1) {
		l->committed = l->pending;
		l->committed_seq1 = l->pending_seq1;
		l->pending_seq1 = 0;
		err = meter_view_store(m, &v.cg[v.root]);
	} else if (l->committed_seq1 != seq + 1) {
		err = TALLY_E_NOTFOUND;
	}
	meter_view_free(&v);
	return err;
}
