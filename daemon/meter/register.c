/* VMs and their cgroups in the meter's ledger: registration, the cgroups a
 * VM grows later, unregistration, and the ledger's views of one VM.
 *
 * A VM is a name and a cgroup-v2 directory with every cgroup below it; each
 * gets a ledger entry keyed by its cgroup id, which is also what tells the
 * programs that a thread ending in it is metered. The top cgroup's entry
 * carries the VM's totals and its reader's two-phase baseline. */
#include "daemon/meter/meter_int.h"

#include <bpf/bpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/errors.h"

uint64_t meter_realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* In the unit of /proc/TID/stat's start times (boot-based clock ticks). */
uint64_t meter_boot_ticks(const struct meter *m)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * (uint64_t)m->ticks_per_s +
	       (uint64_t)ts.tv_nsec / (1000000000u / (uint64_t)m->ticks_per_s);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The kernel's iteration may restart if a key goes away meanwhile: hence
 * room for twice the map and the removal of duplicates. */
int meter_map_keys(int fd, uint64_t **keys, size_t *n)
{
	uint64_t *k = malloc(TALLY_MAX_CGROUPS * 2 * sizeof(*k)), key;
	size_t cnt = 0, i, j;
	void *prev = NULL;

	*keys = NULL;
	*n = 0;
	if (!k)
		return TALLY_E_NOMEM;
	while (cnt < TALLY_MAX_CGROUPS * 2 && !bpf_map_get_next_key(fd, prev, &key)) {
		k[cnt++] = key;
		prev = &k[cnt - 1];
	}
	qsort(k, cnt, sizeof(*k), cmp_u64);
	for (i = j = 0; i < cnt; i++)
		if (!j || k[j - 1] != k[i])
			k[j++] = k[i];
	*keys = k;
	*n = j;
	return 0;
}

void meter_view_free(struct vm_view *v)
{
	free(v->cg);
	memset(v, 0, sizeof(*v));
	v->root = -1;
}

int meter_view_load(struct meter *m, const char *vm, struct vm_view *v)
{
	uint64_t *keys;
	size_t n, i;
	int err;

	memset(v, 0, sizeof(*v));
	v->root = -1;
	err = meter_map_keys(m->map_fd[MAP_LEDGER], &keys, &n);
	if (err)
		return err;
	v->cg = calloc(n ? n : 1, sizeof(*v->cg));
	if (!v->cg) {
		free(keys);
		return TALLY_E_NOMEM;
	}
	for (i = 0; i < n; i++) {
		struct vm_cgroup *c = &v->cg[v->n];

		if (bpf_map_lookup_elem(m->map_fd[MAP_LEDGER], &keys[i], &c->l) ||
		    strncmp(c->l.vm, vm, sizeof(c->l.vm)))
			continue;
		c->id = keys[i];
		if (c->l.flags & TALLY_LEDGER_ROOT)
			v->root = (ssize_t)v->n;
		v->n++;
	}
	free(keys);
	if (!v->n) {
		meter_view_free(v);
		return TALLY_E_NOTFOUND;
	}
	return 0;
}

int meter_view_store(struct meter *m, const struct vm_cgroup *c)
{
	if (m->read_only)
		return 0;
	return bpf_map_update_elem(m->map_fd[MAP_LEDGER], &c->id, &c->l,
				   BPF_EXIST) ? TALLY_E_IO : 0;
}

static bool valid_vm_name(const char *name)
{
	size_t n = name ? strlen(name) : 0;

	if (n == 0 || n > METER_VM_NAME_MAX)
		return false;
	for (; *name; name++)
		if (*name == '/' || (unsigned char)*name < 0x20)
			return false;
	return true;
}

struct reg_ctx {
	struct meter *m;
	const char *vm;
	const char *root;
	const char *mem_dir;
	uint32_t mem_alloc_mib;
	bool all_vcpu;
	uint64_t registered_ns, registered_ticks;
	char *why;
};

/* Meter one cgroup: its ledger entry, which the programs see at once.
 * Idempotent, so that a registration cut short is completed by the next. */
static int register_cgroup(const char *path, void *arg)
{
	struct reg_ctx *c = arg;
	struct meter *m = c->m;
	bool is_root = !strcmp(path, c->root);
	const char *base = strrchr(path, '/');
	bool vcpu = c->all_vcpu || cg_is_vcpu_name(base ? base + 1 : path);
	struct tally_ledger l;
	uint64_t id;
	int err, n;

	err = cg_id(path, &id);
	if (err == TALLY_E_NOTFOUND && !is_root)
		return 0;               /* removed while we walked */
	if (err)
		return why_set(c->why, err, "%s: not a cgroup: %s", path,
			       tally_strerror(err));
	if (!bpf_map_lookup_elem(m->map_fd[MAP_LEDGER], &id, &l)) {
		if (strcmp(l.vm, c->vm))
			return why_set(c->why, TALLY_E_EXISTS, "cgroup %s is already "
				       "metered for VM %s", path, l.vm);
		return 0;
	}
	memset(&l, 0, sizeof(l));
	snprintf(l.vm, sizeof(l.vm), "%s", c->vm);
	l.flags = (is_root ? TALLY_LEDGER_ROOT : 0) |
		  (vcpu ? TALLY_LEDGER_VCPU : 0) |
		  (is_root && c->all_vcpu ? TALLY_LEDGER_ALL_VCPU : 0);
	l.registered_ns = c->registered_ns;
	l.registered_ticks = c->registered_ticks;
	n = snprintf(l.path, sizeof(l.path), "%s", path);
	if (is_root) {
		uint64_t usec;

		l.mem_alloc_mib = c->mem_alloc_mib;
		n |= snprintf(l.mem_dir, sizeof(l.mem_dir), "%s",
			      c->mem_dir ? c->mem_dir : path);
		err = cg_usage_usec(path, &usec);
		if (err)
			return why_set(c->why, err, "%s: no CPU usage (cpu.stat): %s",
				       path, tally_strerror(err));
		l.cg_base_ns = l.cg_last_ns = usec * 1000;
	}
	if (n >= TALLY_PATH_LEN)
		return TALLY_E_TOOLONG;
	if (bpf_map_update_elem(m->map_fd[MAP_LEDGER], &id, &l, BPF_NOEXIST)) {
		err = errno;
		return why_set(c->why, err == E2BIG || err == ENOSPC ?
			       TALLY_E_CAPACITY : TALLY_E_IO, "cannot meter cgroup "
			       "%s: %s%s", path, strerror(err), err == E2BIG ||
			       err == ENOSPC ? " (the meter's maps are full)" : "");
	}
	return 0;
}

int meter_vm_register(struct meter *m, const struct meter_vm_spec *s,
		      char *why)
{
	struct reg_ctx c = {
		.m = m, .vm = s->name, .root = s->cgroup_dir,
		.mem_dir = s->mem_dir, .mem_alloc_mib = s->mem_alloc_mib,
		.all_vcpu = s->flags & METER_VM_ALL_VCPU, .why = why,
		.registered_ns = meter_realtime_ns(),
		.registered_ticks = meter_boot_ticks(m),
	};
	struct meter_sample smp;
	int err;

	if (m->read_only)
		return why_set(why, TALLY_E_STATE, "the meter was opened read-only");
	if (!valid_vm_name(s->name))
		return why_set(why, TALLY_E_INVALID, "a VM name is 1 to %d bytes "
			       "without '/' or control characters", METER_VM_NAME_MAX);
	if (!s->cgroup_dir || s->cgroup_dir[0] != '/' ||
	    strlen(s->cgroup_dir) >= TALLY_PATH_LEN || !cg2_is_cgroup(s->cgroup_dir))
		return why_set(why, TALLY_E_INVALID, "VM %s: %s is not a cgroup-v2 "
			       "directory", s->name, s->cgroup_dir ? s->cgroup_dir :
			       "(none)");
	err = cg_walk(s->cgroup_dir, register_cgroup, &c);
	/* The threads running now are metered from here on: a first read
	 * takes their figures as their baseline. */
	if (!err)
		err = meter_vm_read(m, s->name, &smp);
	return err;
}

int meter_vm_register_domain(struct meter *m, const char *domain_name,
			     const char *vm_name, uint32_t mem_alloc_mib,
			     char *why)
{
	struct meter_vm_spec s = {
		.name = vm_name ? vm_name : domain_name,
		.mem_alloc_mib = mem_alloc_mib,
	};
	struct cg_domain d;
	int err;

	err = cg_domain_resolve(domain_name, &d, why);
	if (err)
		return err;
	s.cgroup_dir = d.v2_dir;
	s.mem_dir = d.mem_dir;
	return meter_vm_register(m, &s, why);
}

int meter_rescan(struct meter *m, const char *vm)
{
	struct vm_view v;
	char why[WHY_MAX];
	struct reg_ctx c = { .m = m, .vm = vm, .why = why };
	struct tally_ledger *root;
	int err;

	if (m->read_only)
		return 0;
	err = meter_view_load(m, vm, &v);
	if (err)
		return err;
	if (v.root < 0 || (v.cg[v.root].l.flags & TALLY_LEDGER_GONE)) {
		meter_view_free(&v);
		return 0;
	}
	root = &v.cg[v.root].l;
	c.root = root->path;
	c.mem_dir = root->mem_dir;
	c.all_vcpu = root->flags & TALLY_LEDGER_ALL_VCPU;
	c.registered_ns = root->registered_ns;
	c.registered_ticks = root->registered_ticks;
	err = cg_walk(root->path, register_cgroup, &c);
	meter_view_free(&v);
	/* A root removed meanwhile is noticed by the caller. */
	return err == TALLY_E_NOTFOUND ? 0 : err;
}

int meter_vm_unregister(struct meter *m, const char *vm)
{
	struct vm_view v;
	size_t i;
	int err;

	if (m->read_only)
		return TALLY_E_STATE;
	err = meter_view_load(m, vm, &v);
	if (err)
		return err;
	/* The ledger first: it stops the programs from recording more. */
	for (i = 0; !err && i < v.n; i++)
		if (bpf_map_delete_elem(m->map_fd[MAP_LEDGER], &v.cg[i].id) &&
		    errno != ENOENT)
			err = TALLY_E_IO;
	meter_threads_forget(m, &v);
	meter_view_free(&v);
	return err;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(a, b);
}

int meter_vm_list(struct meter *m, char (**names)[METER_VM_NAME_MAX + 1],
		  size_t *n)
{
	char (*out)[METER_VM_NAME_MAX + 1];
	uint64_t *keys;
	size_t nkeys, i;
	int err;

	*names = NULL;
	*n = 0;
	err = meter_map_keys(m->map_fd[MAP_LEDGER], &keys, &nkeys);
	if (err)
		return err;
	out = calloc(nkeys ? nkeys : 1, sizeof(*out));
	if (!out) {
		free(keys);
		return TALLY_E_NOMEM;
	}
	for (i = 0; i < nkeys; i++) {
		struct tally_ledger l;

		if (bpf_map_lookup_elem(m->map_fd[MAP_LEDGER], &keys[i], &l) ||
		    !(l.flags & TALLY_LEDGER_ROOT))
			continue;
		snprintf(out[(*n)++], METER_VM_NAME_MAX + 1, "%s", l.vm);
	}
	free(keys);
	qsort(out, *n, sizeof(*out), cmp_name);
	*names = out;
	return 0;
}
