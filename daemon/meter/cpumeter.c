/* The CPU meter's loader and reader (see cpumeter.h).
 *
 * Pinned under the pin directory:
 *   counters, cg_table, cg_index,
 *   thread_seen, tid_seen, ledger           the maps of ebpf/cpumeter.bpf.c
 *   link_runtime, link_switch               the attached programs
 * A pinned link keeps its program attached after the daemon exits, so the
 * counting never stops; a new daemon adopts the links it finds instead of
 * attaching a second copy (which would count everything twice). */
#include "daemon/meter/cpumeter.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <limits.h>
#include <linux/magic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "contracts/contract.h"
#include "daemon/meter/cgroup.h"
#include "ebpf/cpumeter.h"
#include "lib/errors.h"
#include "cpumeter.skel.h"

#define BPFFS_MOUNT "/sys/fs/bpf"

enum {
	MAP_COUNTERS, MAP_CG_TABLE, MAP_CG_INDEX, MAP_TID_SEEN, MAP_LEDGER,
	MAP_THREAD_SEEN,        /* task storage: Linux 5.11 */
	MAP__COUNT
};
static const char *const map_names[MAP__COUNT] = {
	"counters", "cg_table", "cg_index", "tid_seen", "ledger",
	"thread_seen",
};

/* Maps only the tp_btf programs use, which an older kernel cannot make. */
static bool map_optional(int i)
{
	return i == MAP_THREAD_SEEN;
}

enum { HOOK_RUNTIME, HOOK_SWITCH, HOOK__COUNT };
static const char *const hook_names[HOOK__COUNT] = {
	"runtime", "switch",
};

/* What earlier versions of the meter pinned and this one does not use: an
 * old link left attached would keep costing every context switch. */
static const char *const stale_pins[] = {
	"link_wakeup", "link_wakeup_new", "cg_slot", "queued_at",
	"queued_since",
};

#define CG_TABLE_BYTES (TALLY_CG_BUCKETS * sizeof(uint64_t))

struct meter {
	struct cpumeter *skel;         /* NULL when read_only */
	int map_fd[MAP__COUNT];
	int link_fd[HOOK__COUNT];
	uint64_t *cg_table;            /* cg_table mapped; NULL when read_only */
	char kind[8];                  /* "tp_btf" / "raw_tp" */
	char pin_dir[PATH_MAX];
	char cg2_root[CG_PATH_MAX];
	int ncpus;
	bool read_only;
};

/* --- opening -------------------------------------------------------- */

static bool is_bpffs(const char *path)
{
	struct statfs sfs;

	return statfs(path, &sfs) == 0 && sfs.f_type == BPF_FS_MAGIC;
}

/* The pin directory must sit on a bpf file system. A host without one
 * mounted at /sys/fs/bpf (no systemd to do it) gets it mounted here. */
static int prepare_pin_dir(const char *pin_dir, bool create, char *why)
{
	char parent[PATH_MAX], *slash;

	snprintf(parent, sizeof(parent), "%s", pin_dir);
	slash = strrchr(parent, '/');
	if (!slash || slash == parent) {
		why_set(why, 0, "pin directory %s must be below a bpf "
		     "file system such as %s", pin_dir, BPFFS_MOUNT);
		return TALLY_E_INVALID;
	}
	*slash = '\0';
	if (!is_bpffs(parent) && !strcmp(parent, BPFFS_MOUNT) && create &&
	    mount("bpf", BPFFS_MOUNT, "bpf", 0, "mode=0700") < 0) {
		why_set(why, 0, "cannot mount the bpf file system on "
		     "%s: %s", BPFFS_MOUNT, strerror(errno));
		return TALLY_E_IO;
	}
	if (!is_bpffs(parent)) {
		why_set(why, 0, "%s is not on a bpf file system "
		     "(mount -t bpf bpf %s)", parent, parent);
		return TALLY_E_IO;
	}
	if (create && mkdir(pin_dir, 0700) < 0 && errno != EEXIST) {
		why_set(why, 0, "cannot create %s: %s", pin_dir,
		     strerror(errno));
		return TALLY_E_IO;
	}
	return 0;
}

/* pin_dir is checked at open to leave room for the longest name. */
static void pin_path(const struct meter *m, const char *name, char *out)
{
	if (snprintf(out, PATH_MAX, "%s/%s", m->pin_dir, name) >= PATH_MAX)
		out[0] = '\0';
}

/* The tp_btf programs need the kernel's own BTF with the tracepoint's typed
 * prototype, and task storage (Linux 5.11). */
static bool kernel_has_tp_btf(void)
{
	struct btf *btf;
	bool ok;

	if (libbpf_probe_bpf_map_type(BPF_MAP_TYPE_TASK_STORAGE, NULL) != 1)
		return false;
	btf = btf__load_vmlinux_btf();
	if (!btf)
		return false;
	ok = btf__find_by_name_kind(btf, "btf_trace_sched_stat_runtime",
				    BTF_KIND_TYPEDEF) > 0;
	btf__free(btf);
	return ok;
}

static struct bpf_program *hook_prog(struct cpumeter *s, int hook, bool btf)
{
	switch (hook) {
	case HOOK_RUNTIME:
		return btf ? s->progs.runtime_btf : s->progs.runtime_raw;
	default:
		return btf ? s->progs.switch_btf : s->progs.switch_raw;
	}
}

/* On failure *sys_err is the kernel's answer (a negative errno). */
static int load_skeleton(struct meter *m, const struct meter_opts *o,
			 bool btf, int *sys_err, char *why)
{
	LIBBPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = m->pin_dir,
		    .btf_custom_path = o->btf_path);
	int err, hook;

	m->skel = cpumeter__open_opts(&oo);
	if (!m->skel) {
		*sys_err = -errno;
		why_set(why, 0, "cannot open the meter's BPF object: %s",
		     strerror(errno));
		return TALLY_E_STATE;
	}
	for (hook = 0; hook < HOOK__COUNT; hook++) {
		bpf_program__set_autoload(hook_prog(m->skel, hook, true), btf);
		bpf_program__set_autoload(hook_prog(m->skel, hook, false), !btf);
	}
	if (libbpf_probe_bpf_map_type(BPF_MAP_TYPE_TASK_STORAGE, NULL) != 1)
		bpf_map__set_autocreate(m->skel->maps.thread_seen, false);
	err = cpumeter__load(m->skel);
	if (err) {
		*sys_err = err;
		if (err == -ENOSYS)
			why_set(why, 0, "this kernel has no bpf() system call "
			     "(CONFIG_BPF_SYSCALL off, or filtered): the "
			     "meter needs eBPF");
		else
			why_set(why, 0, "the kernel refused the meter's %s "
			     "programs: %s%s", btf ? "tp_btf" : "raw_tp",
			     strerror(-err), err == -EPERM ?
			     " (kernel lockdown, or CAP_BPF missing)" : "");
		cpumeter__destroy(m->skel);
		m->skel = NULL;
		return err == -EPERM ? TALLY_E_UNAUTHORIZED : TALLY_E_STATE;
	}
	snprintf(m->kind, sizeof(m->kind), "%s", btf ? "tp_btf" : "raw_tp");
	return 0;
}

static bool prog_uses_map(const __u32 *ids, __u32 n, int map_fd)
{
	struct bpf_map_info mi = {};
	__u32 len = sizeof(mi), i;

	if (bpf_obj_get_info_by_fd(map_fd, &mi, &len))
		return false;
	for (i = 0; i < n; i++)
		if (ids[i] == mi.id)
			return true;
	return false;
}

/* A pinned link is adopted only if its program still feeds our counters
 * map from our cg_table; one left from a deleted map would count into
 * nowhere, and one from an earlier version of the meter would not see the
 * cgroups registered in cg_table. */
static bool link_feeds_counters(const struct meter *m, int link_fd,
				char *prog_name)
{
	struct bpf_link_info li = {};
	struct bpf_prog_info pi = {};
	__u32 len = sizeof(li), ids[16];
	int prog_fd;
	bool ok = false;

	if (bpf_obj_get_info_by_fd(link_fd, &li, &len))
		return false;
	prog_fd = bpf_prog_get_fd_by_id(li.prog_id);
	if (prog_fd < 0)
		return false;
	pi.nr_map_ids = 16;
	pi.map_ids = (__u64)(unsigned long)ids;
	len = sizeof(pi);
	if (!bpf_obj_get_info_by_fd(prog_fd, &pi, &len)) {
		if (pi.nr_map_ids > 16)
			pi.nr_map_ids = 16;
		ok = prog_uses_map(ids, pi.nr_map_ids, m->map_fd[MAP_COUNTERS]) &&
		     prog_uses_map(ids, pi.nr_map_ids, m->map_fd[MAP_CG_TABLE]);
		snprintf(prog_name, 17, "%s", pi.name);
	}
	close(prog_fd);
	return ok;
}

static int attach_hook(struct meter *m, int hook, bool btf, char *why)
{
	char path[PATH_MAX], name[32], prog_name[17] = "";
	struct bpf_link *link;
	int fd, err;

	snprintf(name, sizeof(name), "link_%s", hook_names[hook]);
	pin_path(m, name, path);
	fd = bpf_obj_get(path);
	if (fd >= 0) {
		if (link_feeds_counters(m, fd, prog_name)) {
			m->link_fd[hook] = fd;
			if (hook == HOOK_RUNTIME)
				snprintf(m->kind, sizeof(m->kind), "%s",
					 strstr(prog_name, "_btf") ?
					 "tp_btf" : "raw_tp");
			return 0;
		}
		close(fd);
		unlink(path);
	}
	link = bpf_program__attach(hook_prog(m->skel, hook, btf));
	if (!link) {
		why_set(why, 0, "cannot attach the meter to "
		     "sched_%s: %s", hook == HOOK_RUNTIME ? "stat_runtime" :
		     hook_names[hook], strerror(errno));
		return TALLY_E_STATE;
	}
	err = bpf_link__pin(link, path);
	if (!err)
		m->link_fd[hook] = dup(bpf_link__fd(link));
	/* The pin holds the link; this process's handle can go. */
	bpf_link__disconnect(link);
	bpf_link__destroy(link);
	if (err || m->link_fd[hook] < 0) {
		why_set(why, 0, "cannot pin %s: %s", path,
		     strerror(err ? -err : errno));
		return TALLY_E_IO;
	}
	return 0;
}

static void remove_stale_pins(const struct meter *m)
{
	char path[PATH_MAX];
	size_t i;

	for (i = 0; i < sizeof(stale_pins) / sizeof(stale_pins[0]); i++) {
		pin_path(m, stale_pins[i], path);
		if (path[0])
			unlink(path);
	}
}

static int map_cg_table(struct meter *m, char *why)
{
	void *p = mmap(NULL, CG_TABLE_BYTES, PROT_READ | PROT_WRITE,
		       MAP_SHARED, m->map_fd[MAP_CG_TABLE], 0);

	if (p == MAP_FAILED) {
		why_set(why, 0, "cannot map the meter's cgroup table: %s",
			strerror(errno));
		return TALLY_E_IO;
	}
	m->cg_table = p;
	return 0;
}

static int republish_all(struct meter *m, char *why);

static int open_loaded(struct meter *m, const struct meter_opts *o, char *why)
{
	bool btf = !o->force_raw_tp && kernel_has_tp_btf();
	int err, i, sys_err = 0;

	remove_stale_pins(m);
	if (!btf && !o->btf_path && access("/sys/kernel/btf/vmlinux", R_OK)) {
		why_set(why, 0, "the kernel has no BTF "
		     "(/sys/kernel/btf/vmlinux), so the meter cannot be "
		     "relocated to it; give a BTF file for this kernel");
		return TALLY_E_STATE;
	}
	err = load_skeleton(m, o, btf, &sys_err, why);
	/* tp_btf refused (not bpf() as a whole): raw_tp may still load. */
	if (err == TALLY_E_STATE && btf && sys_err != -ENOSYS)
		err = load_skeleton(m, o, false, &sys_err, why);
	if (err)
		return err;
	for (i = 0; i < MAP__COUNT; i++) {
		struct bpf_map *map = bpf_object__find_map_by_name(
			m->skel->obj, map_names[i]);

		if (bpf_map__fd(map) < 0 && map_optional(i))
			continue;       /* not created: an older kernel */
		m->map_fd[i] = dup(bpf_map__fd(map));
		if (m->map_fd[i] < 0)
			return TALLY_E_IO;
	}
	err = map_cg_table(m, why);
	/* Point the programs at every cgroup the ledger meters (pinned maps
	 * of an earlier meter may have the ledger but not the table). */
	if (!err)
		err = republish_all(m, why);
	for (i = 0; !err && i < HOOK__COUNT; i++)
		err = attach_hook(m, i, strcmp(m->kind, "raw_tp") != 0, why);
	return err;
}

static int open_pinned(struct meter *m, char *why)
{
	char path[PATH_MAX], prog_name[17] = "";
	int i, fd;

	for (i = 0; i < MAP__COUNT; i++) {
		pin_path(m, map_names[i], path);
		m->map_fd[i] = bpf_obj_get(path);
		if (m->map_fd[i] < 0 && map_optional(i))
			continue;
		if (m->map_fd[i] < 0) {
			int e = errno;

			why_set(why, 0, "no meter is pinned at %s: %s",
			     m->pin_dir, strerror(e));
			return e == EACCES || e == EPERM ?
			       TALLY_E_UNAUTHORIZED : TALLY_E_NOTFOUND;
		}
	}
	pin_path(m, "link_runtime", path);
	fd = bpf_obj_get(path);
	snprintf(m->kind, sizeof(m->kind), "none");
	if (fd >= 0) {
		if (link_feeds_counters(m, fd, prog_name))
			snprintf(m->kind, sizeof(m->kind), "%s",
				 strstr(prog_name, "_btf") ? "tp_btf" : "raw_tp");
		close(fd);
	}
	return 0;
}

int meter_open(struct meter **out, const struct meter_opts *o, char *why)
{
	static const struct meter_opts defaults;
	struct meter *m;
	int err, i;

	*out = NULL;
	if (!o)
		o = &defaults;
	if (!o->read_only && geteuid() != 0) {
		why_set(why, 0, "the CPU meter must run as root: it loads "
		     "eBPF programs and pins them under %s",
		     o->pin_dir ? o->pin_dir : METER_PIN_DIR_DEFAULT);
		return TALLY_E_UNAUTHORIZED;
	}
	m = calloc(1, sizeof(*m));
	if (!m)
		return TALLY_E_NOMEM;
	for (i = 0; i < MAP__COUNT; i++)
		m->map_fd[i] = -1;
	for (i = 0; i < HOOK__COUNT; i++)
		m->link_fd[i] = -1;
	m->read_only = o->read_only;
	if (snprintf(m->pin_dir, sizeof(m->pin_dir), "%s",
		     o->pin_dir ? o->pin_dir : METER_PIN_DIR_DEFAULT) >=
	    (int)sizeof(m->pin_dir) - 32) {
		why_set(why, 0, "the pin directory's path is too long");
		err = TALLY_E_TOOLONG;
		goto fail;
	}
	m->ncpus = libbpf_num_possible_cpus();
	err = m->ncpus > 0 ? 0 : TALLY_E_IO;
	if (err) {
		why_set(why, 0, "cannot count the possible CPUs");
		goto fail;
	}
	if (o->cgroup2_root)
		snprintf(m->cg2_root, sizeof(m->cg2_root), "%s", o->cgroup2_root);
	else if (cg2_root(m->cg2_root))
		m->cg2_root[0] = '\0';
	if (!m->cg2_root[0] || !cg2_is_cgroup(m->cg2_root)) {
		why_set(why, 0, "no cgroup v2 hierarchy is mounted: the "
		     "meter counts per cgroup-v2 id (mount cgroup2 at "
		     "/sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid "
		     "host)");
		err = TALLY_E_NOTFOUND;
		goto fail;
	}
	err = prepare_pin_dir(m->pin_dir, !o->read_only, why);
	if (err)
		goto fail;
	err = o->read_only ? open_pinned(m, why) : open_loaded(m, o, why);
	if (err)
		goto fail;
	*out = m;
	return 0;
fail:
	meter_close(m);
	return err;
}

void meter_close(struct meter *m)
{
	int i;

	if (!m)
		return;
	for (i = 0; i < MAP__COUNT; i++)
		if (m->map_fd[i] >= 0)
			close(m->map_fd[i]);
	for (i = 0; i < HOOK__COUNT; i++)
		if (m->link_fd[i] >= 0)
			close(m->link_fd[i]);
	if (m->cg_table)
		munmap(m->cg_table, CG_TABLE_BYTES);
	cpumeter__destroy(m->skel);
	free(m);
}

int meter_unpin(const char *pin_dir)
{
	char path[PATH_MAX];
	size_t j;
	int i, err = 0;

	for (i = 0; i < HOOK__COUNT; i++) {
		snprintf(path, sizeof(path), "%s/link_%s", pin_dir, hook_names[i]);
		if (unlink(path) < 0 && errno != ENOENT)
			err = TALLY_E_IO;
	}
	for (j = 0; j < sizeof(stale_pins) / sizeof(stale_pins[0]); j++) {
		snprintf(path, sizeof(path), "%s/%s", pin_dir, stale_pins[j]);
		if (unlink(path) < 0 && errno != ENOENT)
			err = TALLY_E_IO;
	}
	for (i = 0; i < MAP__COUNT; i++) {
		snprintf(path, sizeof(path), "%s/%s", pin_dir, map_names[i]);
		if (unlink(path) < 0 && errno != ENOENT)
			err = TALLY_E_IO;
	}
	if (rmdir(pin_dir) < 0 && errno != ENOENT)
		err = TALLY_E_IO;
	return err;
}

const char *meter_attach_kind(const struct meter *m)
{
	return m->kind;
}

const char *meter_cgroup2_root(const struct meter *m)
{
	return m->cg2_root;
}

/* --- registration --------------------------------------------------- */

static uint64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
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
	char *why;
	bool slot_used[TALLY_MAX_CGROUPS];
};

static int ledger_keys(struct meter *m, uint64_t **keys, size_t *n);

/* Which counter slots the ledger has given out. */
static int find_used_slots(struct meter *m, bool used[TALLY_MAX_CGROUPS])
{
	struct tally_ledger l;
	uint64_t *keys;
	size_t n, i;
	int err;

	err = ledger_keys(m, &keys, &n);
	if (err)
		return err;
	memset(used, 0, TALLY_MAX_CGROUPS * sizeof(bool));
	for (i = 0; i < n; i++)
		if (!bpf_map_lookup_elem(m->map_fd[MAP_LEDGER], &keys[i], &l) &&
		    l.slot < TALLY_MAX_CGROUPS)
			used[l.slot] = true;
	free(keys);
	return 0;
}

/* A free slot, its counters zeroed on every CPU. */
static int take_slot(struct reg_ctx *c, __u32 *slot)
{
	struct tally_counters zero[c->m->ncpus];
	__u32 i;

	for (i = 0; i < TALLY_MAX_CGROUPS && c->slot_used[i]; i++)
		;
	if (i == TALLY_MAX_CGROUPS)
		return ENOSPC;
	memset(zero, 0, sizeof(zero));
	if (bpf_map_update_elem(c->m->map_fd[MAP_COUNTERS], &i, zero, BPF_ANY))
		return errno;
	c->slot_used[i] = true;
	*slot = i;
	return 0;
}

/* cg_table words are read by the programs with one load at any moment, so
 * they are only ever written whole, with one atomic store. */
static uint64_t *table_word(struct meter *m, uint64_t id)
{
	return &m->cg_table[id & TALLY_CG_BUCKET_MASK];
}

/* Point the programs at the cgroup's slot: in cg_index, then in its
 * cg_table bucket if the bucket is free or already its own, or else by
 * marking the bucket to send the programs to cg_index. Idempotent, so that
 * a registration cut short by a crash is completed by the next one. */
static int publish_slot(struct meter *m, uint64_t id,
			const struct tally_ledger *l)
{
	bool vcpu = l->flags & TALLY_LEDGER_VCPU;
	struct tally_cg_slot cs = {
		.slot = l->slot, .flags = vcpu ? TALLY_CG_VCPU : 0,
	};
	uint64_t *w = table_word(m, id), cur;

	if (bpf_map_update_elem(m->map_fd[MAP_CG_INDEX], &id, &cs, BPF_ANY))
		return errno;
	cur = __atomic_load_n(w, __ATOMIC_ACQUIRE);
	if (!(cur & TALLY_CGE_VALID) || tally_cge_is(cur, id))
		__atomic_store_n(w, tally_cge_make(id, l->slot, vcpu) |
				 (cur & TALLY_CGE_MORE), __ATOMIC_RELEASE);
	else
		__atomic_fetch_or(w, TALLY_CGE_MORE, __ATOMIC_RELEASE);
	return 0;
}

static int map_keys(int fd, uint64_t **keys, size_t *n);

/* Rewrite the bucket of a cgroup just taken out of cg_index from what
 * cg_index still holds: its owner stays if it is still metered, else
 * another cgroup of the bucket takes it over. */
static void table_rebuild(struct meter *m, uint64_t gone_id,
			  const uint64_t *keys, size_t n)
{
	uint64_t bucket = gone_id & TALLY_CG_BUCKET_MASK;
	uint64_t *w = table_word(m, gone_id), cur, owner = 0, word = 0;
	struct tally_cg_slot cs;
	size_t i, others = 0;

	cur = __atomic_load_n(w, __ATOMIC_ACQUIRE);
	for (i = 0; i < n; i++) {
		if ((keys[i] & TALLY_CG_BUCKET_MASK) != bucket)
			continue;
		if (!owner || tally_cge_is(cur, keys[i]))
			owner = keys[i];
		others++;
	}
	if (owner && !bpf_map_lookup_elem(m->map_fd[MAP_CG_INDEX], &owner, &cs)) {
		word = tally_cge_make(owner, cs.slot, cs.flags & TALLY_CG_VCPU);
		others--;
	}
	if (others)
		word |= TALLY_CGE_MORE;
	__atomic_store_n(w, word, __ATOMIC_RELEASE);
}

/* Publish every cgroup in the ledger (at open: the programs and the table
 * may be newer than the ledger). */
static int republish_all(struct meter *m, char *why)
{
	struct tally_ledger l;
	uint64_t *keys;
	size_t n, i;
	int err;

	err = map_keys(m->map_fd[MAP_LEDGER], &keys, &n);
	for (i = 0; !err && i < n; i++) {
		if (bpf_map_lookup_elem(m->map_fd[MAP_LEDGER], &keys[i], &l))
			continue;
		err = publish_slot(m, keys[i], &l);
		if (err) {
			why_set(why, 0, "cannot meter cgroup %s again: %s",
				l.path, strerror(err));
			err = TALLY_E_IO;
		}
	}
	free(keys);
	return err;
}

/* Meter one cgroup: a zeroed slot, its ledger entry, then the entries that
 * make the programs count it. */
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
	if (err) {
		why_set(c->why, 0, "%s: not a cgroup: %s", path, tally_strerror(err));
		return err;
	}
	if (!bpf_map_lookup_elem(m->map_fd[MAP_LEDGER], &id, &l)) {
		if (strcmp(l.vm, c->vm)) {
			why_set(c->why, 0, "cgroup %s is already metered for VM %s",
			     path, l.vm);
			return TALLY_E_EXISTS;
		}
		err = publish_slot(m, id, &l);
		goto out;
	}
	memset(&l, 0, sizeof(l));
	snprintf(l.vm, sizeof(l.vm), "%s", c->vm);
	l.flags = (is_root ? TALLY_LEDGER_ROOT : 0) |
		  (vcpu ? TALLY_LEDGER_VCPU : 0) |
		  (is_root && c->all_vcpu ? TALLY_LEDGER_ALL_VCPU : 0);
	l.registered_ns = realtime_ns();
	n = snprintf(l.path, sizeof(l.path), "%s", path);
	if (is_root) {
		l.mem_alloc_mib = c->mem_alloc_mib;
		n |= snprintf(l.mem_dir, sizeof(l.mem_dir), "%s",
			      c->mem_dir ? c->mem_dir : path);
	}
	if (n >= TALLY_PATH_LEN)
		return TALLY_E_TOOLONG;
	err = take_slot(c, &l.slot);
	if (!err && bpf_map_update_elem(m->map_fd[MAP_LEDGER], &id, &l,
					BPF_NOEXIST))
		err = errno;
	if (!err)
		err = publish_slot(m, id, &l);
out:
	if (err) {
		why_set(c->why, 0, "cannot meter cgroup %s: %s%s", path, strerror(err),
		     err == E2BIG || err == ENOSPC ?
		     " (the meter's maps are full)" : "");
		return err == E2BIG || err == ENOSPC ? TALLY_E_CAPACITY :
		       TALLY_E_IO;
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
	};
	int err;

	if (m->read_only) {
		why_set(why, 0, "the meter was opened read-only");
		return TALLY_E_STATE;
	}
	if (!valid_vm_name(s->name)) {
		why_set(why, 0, "a VM name is 1 to %d bytes without "
		     "'/' or control characters", METER_VM_NAME_MAX);
		return TALLY_E_INVALID;
	}
	if (!s->cgroup_dir || s->cgroup_dir[0] != '/' ||
	    strlen(s->cgroup_dir) >= TALLY_PATH_LEN ||
	    !cg2_is_cgroup(s->cgroup_dir)) {
		why_set(why, 0, "VM %s: %s is not a cgroup-v2 directory",
		     s->name, s->cgroup_dir ? s->cgroup_dir : "(none)");
		return TALLY_E_INVALID;
	}
	err = find_used_slots(m, c.slot_used);
	if (err)
		return err;
	return cg_walk(s->cgroup_dir, register_cgroup, &c);
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

/* --- reading -------------------------------------------------------- */

/* One VM as the ledger holds it, with each cgroup's totals now. */
struct vm_cgroup {
	uint64_t id;
	struct tally_ledger l;
	struct tally_totals now;
};

struct vm_view {
	struct vm_cgroup *cg;
	size_t n;
	ssize_t root;
};

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* A snapshot of a map's keys (the ledger's or cg_index's), sorted and
 * without duplicates (the kernel's iteration may restart if a key goes away
 * meanwhile). */
static int map_keys(int fd, uint64_t **keys, size_t *n)
{
	uint64_t *k = malloc(TALLY_MAX_CGROUPS * 2 * sizeof(*k)), key;
	size_t cnt = 0, i, j;
	void *prev = NULL;

	*keys = NULL;
	*n = 0;
	if (!k)
		return TALLY_E_NOMEM;
	while (cnt < TALLY_MAX_CGROUPS * 2 &&
	       !bpf_map_get_next_key(fd, prev, &key)) {
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

static int ledger_keys(struct meter *m, uint64_t **keys, size_t *n)
{
	return map_keys(m->map_fd[MAP_LEDGER], keys, n);
}

static void sum_counters(struct meter *m, __u32 slot, struct tally_totals *t)
{
	struct tally_counters v[m->ncpus];
	int cpu;

	memset(t, 0, sizeof(*t));
	if (bpf_map_lookup_elem(m->map_fd[MAP_COUNTERS], &slot, v))
		return;
	for (cpu = 0; cpu < m->ncpus; cpu++) {
		t->cpu_ns += v[cpu].cpu_ns;
		t->run_delay_ns += v[cpu].run_delay_ns;
		t->run_delay_count += v[cpu].run_delay_count;
	}
}

static void view_free(struct vm_view *v)
{
	free(v->cg);
	memset(v, 0, sizeof(*v));
}

static int view_load(struct meter *m, const char *vm, struct vm_view *v)
{
	uint64_t *keys;
	size_t n, i;
	int err;

	memset(v, 0, sizeof(*v));
	v->root = -1;
	err = ledger_keys(m, &keys, &n);
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
		view_free(v);
		return TALLY_E_NOTFOUND;
	}
	return 0;
}

static int view_store(struct meter *m, const struct vm_cgroup *c)
{
	if (m->read_only)
		return 0;
	return bpf_map_update_elem(m->map_fd[MAP_LEDGER], &c->id, &c->l,
				   BPF_EXIST) ? TALLY_E_IO : 0;
}

/* Registers cgroups created below the VM since the last look. */
static int rescan(struct meter *m, const char *vm)
{
	struct vm_view v;
	char why[WHY_MAX];
	struct reg_ctx c = { .m = m, .vm = vm, .why = why };
	struct tally_ledger *root;
	int err;

	if (m->read_only)
		return 0;
	err = view_load(m, vm, &v);
	if (err)
		return err;
	if (v.root < 0 || (v.cg[v.root].l.flags & TALLY_LEDGER_GONE)) {
		view_free(&v);
		return 0;
	}
	root = &v.cg[v.root].l;
	c.root = root->path;
	c.mem_dir = root->mem_dir;
	c.all_vcpu = root->flags & TALLY_LEDGER_ALL_VCPU;
	err = find_used_slots(m, c.slot_used);
	if (!err)
		err = cg_walk(root->path, register_cgroup, &c);
	view_free(&v);
	/* A root removed meanwhile is noticed by the caller. */
	return err == TALLY_E_NOTFOUND ? 0 : err;
}

/* Sums the VM's cgroups into s; marks removed cgroups as gone. */
static int view_measure(struct meter *m, struct vm_view *v,
			struct meter_sample *s)
{
	size_t i;
	int err;

	memset(s, 0, sizeof(*s));
	for (i = 0; i < v->n; i++) {
		struct vm_cgroup *c = &v->cg[i];
		struct tally_totals *b = &c->l.committed;
		uint64_t id;

		if (!(c->l.flags & TALLY_LEDGER_GONE) &&
		    (cg_id(c->l.path, &id) || id != c->id)) {
			c->l.flags |= TALLY_LEDGER_GONE;
			err = view_store(m, c);
			if (err)
				return err;
		}
		sum_counters(m, c->l.slot, &c->now);
		s->total.cpu_ns += c->now.cpu_ns;
		s->total.run_delay_ns += c->now.run_delay_ns;
		s->total.run_delay_count += c->now.run_delay_count;
		s->delta.cpu_ns += c->now.cpu_ns - b->cpu_ns;
		s->delta.run_delay_ns += c->now.run_delay_ns - b->run_delay_ns;
		s->delta.run_delay_count +=
			c->now.run_delay_count - b->run_delay_count;
		s->ncgroups++;
		s->ncgroups_gone += !!(c->l.flags & TALLY_LEDGER_GONE);
	}
	if (v->root >= 0) {
		struct vm_cgroup *r = &v->cg[v->root];
		uint64_t cur, peak;

		if (!(r->l.flags & TALLY_LEDGER_GONE) &&
		    !cg_memory(r->l.mem_dir, &cur, &peak)) {
			r->l.mem_current_bytes = cur;
			if (peak > r->l.mem_peak_bytes)
				r->l.mem_peak_bytes = peak;
			err = view_store(m, r);
			if (err)
				return err;
		}
		s->mem_current_bytes = r->l.mem_current_bytes;
		s->mem_peak_bytes = r->l.mem_peak_bytes;
		s->mem_alloc_mib = r->l.mem_alloc_mib;
		s->registered_ns = r->l.registered_ns;
	}
	return 0;
}

static int read_vm(struct meter *m, const char *vm, struct vm_view *v,
		   struct meter_sample *out)
{
	int err;

	err = rescan(m, vm);
	if (err)
		return err;
	err = view_load(m, vm, v);
	if (err)
		return err;
	err = view_measure(m, v, out);
	if (err)
		view_free(v);
	return err;
}

int meter_vm_read(struct meter *m, const char *vm, struct meter_sample *out)
{
	struct vm_view v;
	int err;

	err = read_vm(m, vm, &v, out);
	if (!err)
		view_free(&v);
	return err;
}

int meter_vm_prepare(struct meter *m, const char *vm, uint64_t seq,
		     struct meter_sample *out)
{
	struct vm_view v;
	size_t i;
	int err;

	if (m->read_only || seq == UINT64_MAX)
		return m->read_only ? TALLY_E_STATE : TALLY_E_RANGE;
	err = read_vm(m, vm, &v, out);
	if (err)
		return err;
	for (i = 0; i < v.n; i++) {
		if (v.cg[i].l.committed_seq1 > seq) {
			err = TALLY_E_STATE;    /* seq is at or before a commit */
			goto out;
		}
	}
	for (i = 0; i < v.n && !err; i++) {
		v.cg[i].l.pending = v.cg[i].now;
		v.cg[i].l.pending_seq1 = seq + 1;
		err = view_store(m, &v.cg[i]);
	}
out:
	view_free(&v);
	return err;
}

int meter_vm_commit(struct meter *m, const char *vm, uint64_t seq)
{
	struct vm_view v;
	size_t i, promoted = 0, committed = 0;
	int err;

	if (m->read_only || seq == UINT64_MAX)
		return m->read_only ? TALLY_E_STATE : TALLY_E_RANGE;
	err = view_load(m, vm, &v);
	if (err)
		return err;
	for (i = 0; i < v.n && !err; i++) {
		struct tally_ledger *l = &v.cg[i].l;

		if (l->pending_seq1 == seq + 1) {
			l->committed = l->pending;
			l->committed_seq1 = l->pending_seq1;
			l->pending_seq1 = 0;
			err = view_store(m, &v.cg[i]);
			promoted++;
		} else if (l->committed_seq1 == seq + 1) {
			committed++;
		}
	}
	view_free(&v);
	if (!err && !promoted && !committed)
		err = TALLY_E_NOTFOUND;
	return err;
}

int meter_vm_unregister(struct meter *m, const char *vm)
{
	struct vm_view v;
	uint64_t *keys;
	size_t i, nkeys;
	int err;

	if (m->read_only)
		return TALLY_E_STATE;
	err = view_load(m, vm, &v);
	if (err)
		return err;
	/* The programs' entries first, then the ledger's, which frees the
	 * slots. */
	for (i = 0; i < v.n; i++)
		bpf_map_delete_elem(m->map_fd[MAP_CG_INDEX], &v.cg[i].id);
	err = map_keys(m->map_fd[MAP_CG_INDEX], &keys, &nkeys);
	for (i = 0; !err && i < v.n; i++)
		table_rebuild(m, v.cg[i].id, keys, nkeys);
	free(keys);
	for (i = 0; !err && i < v.n; i++)
		if (bpf_map_delete_elem(m->map_fd[MAP_LEDGER], &v.cg[i].id) &&
		    errno != ENOENT)
			err = TALLY_E_IO;
	view_free(&v);
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
	err = ledger_keys(m, &keys, &nkeys);
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
