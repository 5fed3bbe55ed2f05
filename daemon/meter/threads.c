/* A VM's threads and what each adds to its totals: the census behind every
 * read of the meter.
 *
 * The kernel keeps each thread's CPU time, run delay and switch-in count
 * (/proc/TID/schedstat): the census sums, over every thread that ran in the
 * VM's cgroups since registration, its figures now minus its figures when
 * metering of it began. That sum is the VM's run delay; its CPU is the VM's
 * once the VM's own cgroup, whose cpu.stat read.c prefers, is gone. A thread
 * comes from three places:
 *   - the cgroup.threads files of the VM's cgroups: the live ones;
 *   - the threads map: the ones this reader has seen, with their baseline
 *     and their last figures;
 *   - the exits map: ones that ended in the VM, with the figures the
 *     programs took at exit and, once the thread is freed, its final ones.
 * A thread born into the VM after registration counts from zero (all of its
 * life was the VM's); one already running at registration, or first seen
 * later (moved in from outside), from its figures when first seen.
 *
 * Between the moment a thread leaves /proc and the one it is freed its
 * final figures are nowhere; the census counts its last known ones meanwhile
 * and reports it as pending, so that totals never go down and a caller that
 * needs the final figures (the last record of a VM) can wait a moment. A
 * kernel may put a task's freeing off indefinitely: METER_SETTLE_NS after its
 * exit, a thread is settled with its figures at exit (it misses the CPU of
 * its last microseconds of exit) and counted in the root's `unsettled`.
 *
 * A writer folds each ended thread, once its figures are final, into the
 * root's `ended` totals and forgets it, so that the maps hold only threads
 * that can still change. One fold is: root entry with the thread's share
 * added and its key in `folding` (one map update, atomic), then the two
 * deletions. A fold cut short by a crash is completed at the next census,
 * which deletes what `folding` names before anything else. */
#include "daemon/meter/meter_int.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/errors.h"

enum row_state {
	ROW_LIVE,       /* in /proc: figures now */
	ROW_PENDING,    /* ended, final figures not in yet: last known ones */
	ROW_FINAL,      /* ended and freed: final figures */
	ROW_UNSETTLED,  /* ended long ago, never freed: figures at exit */
	ROW_LEFT,       /* ended unseen by the programs, or moved out of the
			 * VM: its last known figures are all it gets */
};

struct row {
	struct tally_thread_key key;
	struct tally_thread t;       /* as stored, or being made */
	struct tally_sched now;
	struct tally_exit exit;
	bool known;                  /* in the threads map */
	bool exited;                 /* in the exits map */
	bool listed;                 /* in one of the VM's cgroup.threads */
	bool vcpu;                   /* ... in a vCPU cgroup */
	enum row_state state;
};

struct rows {
	struct row *r;
	size_t n, cap;
};

static struct row *row_get(struct rows *rs, const struct tally_thread_key *k)
{
	size_t i;

	for (i = 0; i < rs->n; i++)
		if (!memcmp(&rs->r[i].key, k, sizeof(*k)))
			return &rs->r[i];
	if (rs->n == rs->cap) {
		size_t cap = rs->cap ? rs->cap * 2 : 64;
		struct row *r = realloc(rs->r, cap * sizeof(*r));

		if (!r)
			return NULL;
		rs->r = r;
		rs->cap = cap;
	}
	memset(&rs->r[rs->n], 0, sizeof(rs->r[0]));
	rs->r[rs->n].key = *k;
	return &rs->r[rs->n++];
}

/* --- the kernel's figures ------------------------------------------------ */

/* Field 22 of /proc/TID/stat: the start time, in clock ticks since boot. */
static int proc_start_ticks(uint32_t tid, uint64_t *ticks)
{
	char path[64], buf[1024], *p;
	unsigned long long v;
	FILE *f;
	size_t n;
	int i;

	snprintf(path, sizeof(path), "/proc/%u/stat", tid);
	f = fopen(path, "re");
	if (!f)
		return TALLY_E_NOTFOUND;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* The command in parentheses may hold anything: count from the last ')'. */
	p = strrchr(buf, ')');
	if (!p)
		return TALLY_E_ENCODING;
	for (i = 0; i < 20 && p; i++)
		p = strchr(p + 1, ' ');
	if (!p || sscanf(p, " %llu", &v) != 1)
		return TALLY_E_ENCODING;
	*ticks = v;
	return 0;
}

/* The thread's schedstat, if it is still the thread of key. */
static int proc_sched(const struct tally_thread_key *k, struct tally_sched *s)
{
	unsigned long long cpu, delay, pcount;
	uint64_t start;
	char path[64];
	FILE *f;
	int n;

	snprintf(path, sizeof(path), "/proc/%u/schedstat", k->tid);
	f = fopen(path, "re");
	if (!f)
		return TALLY_E_NOTFOUND;
	n = fscanf(f, "%llu %llu %llu", &cpu, &delay, &pcount);
	fclose(f);
	if (n != 3)
		return TALLY_E_NOTFOUND;
	/* Checked after the read: a reused id is caught either way. */
	if (proc_start_ticks(k->tid, &start) || start != k->start_ticks)
		return TALLY_E_NOTFOUND;
	s->cpu_ns = cpu;
	s->run_delay_ns = delay;
	s->pcount = pcount;
	return 0;
}

/* The exits map's entry for key, read twice until two reads agree: the
 * programs replace an entry whole, and a reader must not see one half of
 * each. */
static bool exit_lookup(struct meter *m, const struct tally_thread_key *k,
			struct tally_exit *e)
{
	struct tally_exit again;
	int tries;

	for (tries = 0; tries < 8; tries++) {
		if (bpf_map_lookup_elem(m->map_fd[MAP_EXITS], k, e) ||
		    bpf_map_lookup_elem(m->map_fd[MAP_EXITS], k, &again))
			return false;
		if (!memcmp(e, &again, sizeof(again)))
			return true;
	}
	return true;
}

/* --- gathering ------------------------------------------------------------- */

static const struct vm_cgroup *vm_cgroup_by_id(const struct vm_view *v, uint64_t id)
{
	size_t i;

	for (i = 0; i < v->n; i++)
		if (v->cg[i].id == id)
			return &v->cg[i];
	return NULL;
}

static bool all_vcpu(const struct vm_view *v)
{
	return v->root >= 0 && (v->cg[v->root].l.flags & TALLY_LEDGER_ALL_VCPU);
}

static int gather_listed(const struct vm_view *v, struct rows *rs)
{
	size_t i;

	for (i = 0; i < v->n; i++) {
		const struct vm_cgroup *c = &v->cg[i];
		char path[TALLY_PATH_LEN + 32];
		unsigned tid;
		FILE *f;

		if (c->l.flags & TALLY_LEDGER_GONE)
			continue;
		snprintf(path, sizeof(path), "%s/cgroup.threads", c->l.path);
		f = fopen(path, "re");
		if (!f)
			continue;       /* removed meanwhile */
		while (fscanf(f, "%u", &tid) == 1) {
			struct tally_thread_key k = { .tid = tid };
			uint64_t start;
			struct row *r;

			if (proc_start_ticks(tid, &start))
				continue;       /* ended: the exits map has it */
			k.start_ticks = start;
			r = row_get(rs, &k);
			if (!r) {
				fclose(f);
				return TALLY_E_NOMEM;
			}
			r->listed = true;
			r->vcpu |= (c->l.flags & TALLY_LEDGER_VCPU) || all_vcpu(v);
		}
		fclose(f);
	}
	return 0;
}

static int gather_known(struct meter *m, const struct vm_view *v, struct rows *rs)
{
	struct tally_thread_key k, cur, *prev = NULL;
	uint64_t vm_id = v->cg[v->root].id;
	struct tally_thread t;

	while (!bpf_map_get_next_key(m->map_fd[MAP_THREADS], prev, &k)) {
		cur = k;
		prev = &cur;
		if (bpf_map_lookup_elem(m->map_fd[MAP_THREADS], &k, &t) || t.vm_id != vm_id)
			continue;
		struct row *r = row_get(rs, &k);

		if (!r)
			return TALLY_E_NOMEM;
		r->known = true;
		r->t = t;
	}
	return 0;
}

/* Ended threads of the VM; with fold, also removes entries of cgroups the
 * ledger no longer has (a thread that ended while its VM was unregistered). */
static int gather_exits(struct meter *m, const struct vm_view *v, bool fold,
			struct rows *rs)
{
	struct tally_thread_key k, cur, *prev = NULL;
	struct tally_exit e;

	while (!bpf_map_get_next_key(m->map_fd[MAP_EXITS], prev, &k)) {
		cur = k;
		prev = &cur;
		if (!exit_lookup(m, &k, &e))
			continue;
		if (!vm_cgroup_by_id(v, e.cgid)) {
			struct tally_ledger l;

			if (fold && bpf_map_lookup_elem(m->map_fd[MAP_LEDGER], &e.cgid, &l))
				bpf_map_delete_elem(m->map_fd[MAP_EXITS], &k);
			continue;
		}
		struct row *r = row_get(rs, &k);

		if (!r)
			return TALLY_E_NOMEM;
		r->exited = true;
		r->exit = e;
	}
	return 0;
}

/* A live thread the cgroup files did not list: still in one of the VM's
 * cgroups (it moved between two of them while they were read)? */
static bool still_inside(const struct meter *m, const struct vm_view *v,
			 uint32_t tid)
{
	char rel[CG_PATH_MAX], abs[CG_PATH_MAX * 2];
	size_t i;

	if (cg_pid_path((pid_t)tid, NULL, rel))
		return false;
	snprintf(abs, sizeof(abs), "%s%s", m->cg2_root, strcmp(rel, "/") ? rel : "");
	for (i = 0; i < v->n; i++)
		if (!strcmp(v->cg[i].l.path, abs))
			return true;
	return false;
}

/* --- each thread's share ------------------------------------------------- */

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

static void sched_max(struct tally_sched *a, const struct tally_sched *b)
{
	a->cpu_ns = max_u64(a->cpu_ns, b->cpu_ns);
	a->run_delay_ns = max_u64(a->run_delay_ns, b->run_delay_ns);
	a->pcount = max_u64(a->pcount, b->pcount);
}

/* Where the thread stands now, and its figures. The order matters: /proc
 * first, then the exits map, because the programs record a thread's exit
 * before it leaves /proc. */
static void settle(struct meter *m, const struct vm_view *v, struct row *r,
		   uint64_t now_ns)
{
	if (r->exited && (r->exit.flags & TALLY_EXIT_FINAL)) {
		r->state = ROW_FINAL;
		r->now = r->exit.at;
		return;
	}
	if (!proc_sched(&r->key, &r->now)) {
		r->state = ROW_LIVE;
		/* Not listed: exiting (past its cgroup), or moved out. */
		if (r->listed || r->exited)
			return;
		r->exited = exit_lookup(m, &r->key, &r->exit);
		if (!r->exited && r->known && !still_inside(m, v, r->key.tid)) {
			r->state = ROW_LEFT;
			r->now = r->t.last;
		}
		return;
	}
	r->exited = exit_lookup(m, &r->key, &r->exit);
	if (!r->exited) {
		r->state = ROW_LEFT;            /* the programs missed its exit */
		r->now = r->t.last;
		return;
	}
	r->now = r->exit.at;
	if (r->exit.flags & TALLY_EXIT_FINAL)
		r->state = ROW_FINAL;
	else if (now_ns > r->exit.exit_ns + METER_SETTLE_NS)
		r->state = ROW_UNSETTLED;
	else
		r->state = ROW_PENDING;
}

/* The baseline of a thread seen for the first time, and whether its run
 * delay counts. */
static void first_sight(const struct vm_view *v, struct row *r)
{
	const struct tally_ledger *root = &v->cg[v->root].l;
	bool born_inside = r->key.start_ticks >= root->registered_ticks;

	r->t.vm_id = v->cg[v->root].id;
	if (r->exited && !r->listed) {
		const struct vm_cgroup *c = vm_cgroup_by_id(v, r->exit.cgid);

		r->vcpu = all_vcpu(v) || (c && (c->l.flags & TALLY_LEDGER_VCPU));
	}
	r->t.flags = r->vcpu ? TALLY_THREAD_VCPU : 0;
	if (!born_inside)
		r->t.base = r->now;
	r->t.last = r->now;
}

/* A known thread now in a vCPU cgroup: its waits count from now on. */
static void latch_vcpu(struct row *r)
{
	if (!r->vcpu || (r->t.flags & TALLY_THREAD_VCPU))
		return;
	r->t.flags |= TALLY_THREAD_VCPU;
	r->t.base.run_delay_ns = r->now.run_delay_ns;
	r->t.base.pcount = r->now.pcount;
}

static void share(const struct row *r, struct tally_totals *t)
{
	const struct tally_sched *now = &r->now, *base = &r->t.base;

	t->cpu_ns = now->cpu_ns - base->cpu_ns;
	t->run_delay_ns = 0;
	t->run_delay_count = 0;
	if (r->t.flags & TALLY_THREAD_VCPU) {
		t->run_delay_ns = now->run_delay_ns - base->run_delay_ns;
		t->run_delay_count = now->pcount - base->pcount;
	}
}

static void totals_add(struct tally_totals *a, const struct tally_totals *b)
{
	a->cpu_ns += b->cpu_ns;
	a->run_delay_ns += b->run_delay_ns;
	a->run_delay_count += b->run_delay_count;
}

/* --- folding --------------------------------------------------------------- */

static bool key_set(const struct tally_thread_key *k)
{
	return k->tid || k->start_ticks;
}

/* Completes a fold cut short: its share is in `ended` already. */
static int fold_recover(struct meter *m, struct vm_cgroup *root)
{
	struct tally_thread_key k = root->l.folding;

	if (!key_set(&k))
		return 0;
	bpf_map_delete_elem(m->map_fd[MAP_THREADS], &k);
	bpf_map_delete_elem(m->map_fd[MAP_EXITS], &k);
	memset(&root->l.folding, 0, sizeof(root->l.folding));
	return meter_view_store(m, root);
}

static int fold(struct meter *m, struct vm_cgroup *root, const struct row *r,
		const struct tally_totals *s)
{
	int err;

	totals_add(&root->l.ended, s);
	root->l.unsettled += r->state == ROW_UNSETTLED;
	root->l.fold_seq++;
	root->l.folding = r->key;
	err = meter_view_store(m, root);
	if (err)
		return err;
	return fold_recover(m, root);
}

/* Remembers a thread that can still change: its baseline when new, its
 * last figures. One never seen alive is not: its share is worked out from
 * its exit entry alone, each time. */
static int remember(struct meter *m, struct row *r)
{
	bool changed = !r->known || memcmp(&r->t.last, &r->now, sizeof(r->now));

	r->t.last = r->now;
	if (!changed || (!r->known && r->exited))
		return 0;
	if (bpf_map_update_elem(m->map_fd[MAP_THREADS], &r->key, &r->t,
				r->known ? BPF_EXIST : BPF_NOEXIST)) {
		if (errno == E2BIG || errno == ENOSPC)
			return TALLY_E_CAPACITY;
		/* EEXIST/ENOENT: it ended or was folded meanwhile. */
		return errno == EEXIST || errno == ENOENT ? 0 : TALLY_E_IO;
	}
	return 0;
}

int meter_census(struct meter *m, struct vm_view *v, bool do_fold,
		 struct census *out)
{
	struct rows rs = { 0 };
	struct vm_cgroup *root;
	struct tally_totals s;
	struct timespec ts;
	uint64_t now_ns;
	size_t i;
	int err;

	memset(out, 0, sizeof(*out));
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	if (v->root < 0)
		return 0;               /* a VM whose top cgroup was never seen */
	root = &v->cg[v->root];
	if (do_fold && (err = fold_recover(m, root)))
		return err;
	err = gather_listed(v, &rs);
	if (!err)
		err = gather_known(m, v, &rs);
	if (!err)
		err = gather_exits(m, v, do_fold, &rs);
	for (i = 0; !err && i < rs.n; i++) {
		struct row *r = &rs.r[i];

		/* Folded already, its deletions not done (readers only). */
		if (!memcmp(&r->key, &root->l.folding, sizeof(r->key)))
			continue;
		settle(m, v, r, now_ns);
		if (r->state == ROW_LEFT && !r->known)
			continue;       /* never seen, gone: nothing of it is known */
		if (r->known) {
			sched_max(&r->now, &r->t.last);   /* never backwards */
			latch_vcpu(r);
		} else {
			first_sight(v, r);
		}
		share(r, &s);
		out->pending += r->state == ROW_PENDING;
		if (do_fold && (r->state == ROW_FINAL || r->state == ROW_UNSETTLED ||
				r->state == ROW_LEFT))
			err = fold(m, root, r, &s);
		else if (do_fold && (err = remember(m, r)))
			break;
		else
			totals_add(&out->live, &s);
	}
	free(rs.r);
	return err;
}

void meter_threads_forget(struct meter *m, const struct vm_view *v)
{
	struct rows rs = { 0 };
	size_t i;

	if (v->root >= 0)
		gather_known(m, v, &rs);
	gather_exits(m, v, false, &rs);
	for (i = 0; i < rs.n; i++) {
		bpf_map_delete_elem(m->map_fd[MAP_THREADS], &rs.r[i].key);
		bpf_map_delete_elem(m->map_fd[MAP_EXITS], &rs.r[i].key);
	}
	free(rs.r);
}
