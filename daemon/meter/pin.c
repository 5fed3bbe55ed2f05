/* The CPU meter's programs and maps: loading, pinning and adoption.
 *
 * Pinned under the pin directory (lib/meter_pins.h names them):
 *   ledger, exits, threads      the maps of ebpf/cpumeter.bpf.c
 *   link_exit, link_free        the attached programs
 * A pinned link keeps its program attached after the daemon exits, so that
 * threads ending meanwhile keep their final figures; a new daemon adopts the
 * links it finds instead of attaching a second copy. A meter that writes
 * holds a lock on the directory while it is open, so that `tally node
 * meter-detach` cannot pull it away from a running node. */
#include "daemon/meter/meter_int.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "lib/errors.h"
#include "lib/meter_pins.h"
#include "cpumeter.skel.h"

#define BPFFS_MOUNT "/sys/fs/bpf"

/* Where each hook attaches (ebpf/cpumeter.bpf.c). */
static const char *const hook_points[HOOK__COUNT] = {
	"sched_process_exit", "sched_process_free",
};

static bool is_bpffs(const char *path)
{
	struct statfs sfs;

	return statfs(path, &sfs) == 0 && sfs.f_type == BPF_FS_MAGIC;
}

/* The pin directory must sit on a bpf file system. A host without one
 * mounted at /sys/fs/bpf (no systemd to do it) gets it mounted here.
 * *made: the directory is new (an open that fails removes it again). */
static int prepare_pin_dir(const char *pin_dir, bool create, bool *made, char *why)
{
	char parent[PATH_MAX], *slash;

	snprintf(parent, sizeof(parent), "%s", pin_dir);
	slash = strrchr(parent, '/');
	if (!slash || slash == parent)
		return why_set(why, TALLY_E_INVALID, "pin directory %s must be below "
			       "a bpf file system such as %s", pin_dir, BPFFS_MOUNT);
	*slash = '\0';
	if (!is_bpffs(parent) && !strcmp(parent, BPFFS_MOUNT) && create &&
	    mount("bpf", BPFFS_MOUNT, "bpf", 0, "mode=0700") < 0)
		return why_set(why, TALLY_E_IO, "cannot mount the bpf file system on "
			       "%s: %s", BPFFS_MOUNT, strerror(errno));
	if (!is_bpffs(parent))
		return why_set(why, TALLY_E_IO, "%s is not on a bpf file system "
			       "(mount -t bpf bpf %s)", parent, parent);
	if (!create)
		return 0;
	if (mkdir(pin_dir, 0700) == 0)
		*made = true;
	else if (errno != EEXIST)
		return why_set(why, TALLY_E_IO, "cannot create %s: %s", pin_dir,
			       strerror(errno));
	return 0;
}

/* pin_dir is checked at open to leave room for the longest name. */
static void pin_path(const struct meter *m, const char *name, char *out)
{
	if (snprintf(out, PATH_MAX, "%s/%s", m->pin_dir, name) >= PATH_MAX)
		out[0] = '\0';
}

/* The meter reads every figure from the kernel's per-thread schedstat:
 * kernels without CONFIG_SCHED_INFO have none, or show zeros. Asked of
 * PID 1, which has surely run (a task that just started may not have been
 * charged yet). */
static int check_schedstat(char *why)
{
	unsigned long long cpu = 0;
	FILE *f = fopen("/proc/1/schedstat", "re");
	int n = f ? fscanf(f, "%llu", &cpu) : 0;

	if (f)
		fclose(f);
	if (n != 1 || cpu == 0)
		return why_set(why, TALLY_E_STATE, "this kernel keeps no per-thread "
			       "scheduler statistics (/proc/TID/schedstat, "
			       "CONFIG_SCHED_INFO): the meter reads CPU time and run "
			       "delay from them");
	return 0;
}

/* The tp_btf programs need the kernel's own BTF with the tracepoints'
 * typed prototypes. */
static bool kernel_has_tp_btf(void)
{
	struct btf *btf = btf__load_vmlinux_btf();
	bool ok;

	if (!btf)
		return false;
	ok = btf__find_by_name_kind(btf, "btf_trace_sched_process_exit",
				    BTF_KIND_TYPEDEF) > 0 &&
	     btf__find_by_name_kind(btf, "btf_trace_sched_process_free",
				    BTF_KIND_TYPEDEF) > 0;
	btf__free(btf);
	return ok;
}

static struct bpf_program *hook_prog(struct cpumeter *s, int hook, bool btf)
{
	if (hook == HOOK_EXIT)
		return btf ? s->progs.exit_btf : s->progs.exit_raw;
	return btf ? s->progs.free_btf : s->progs.free_raw;
}

/* A map pinned by another version of the meter has another layout: libbpf
 * would refuse to reuse it with a bare EINVAL, so say what it is. */
static int check_pinned_layout(const struct meter *m, char *why)
{
	static const struct { const char *name; __u32 key, value; } want[] = {
		{ "ledger", sizeof(__u64), sizeof(struct tally_ledger) },
		{ "exits", sizeof(struct tally_thread_key), sizeof(struct tally_exit) },
		{ "threads", sizeof(struct tally_thread_key), sizeof(struct tally_thread) },
	};
	char path[PATH_MAX];
	size_t i;

	if (meter_pins_stale(m->pin_dir))
		return why_set(why, TALLY_E_STATE, "%s holds an earlier version of "
			       "the meter, whose programs run on every context switch: "
			       "detach it with `tally node meter-detach --pin-dir %s` "
			       "(its uncommitted counts are lost)", m->pin_dir,
			       m->pin_dir);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		struct bpf_map_info mi = {};
		__u32 len = sizeof(mi);
		int fd, bad;

		pin_path(m, want[i].name, path);
		fd = bpf_obj_get(path);
		if (fd < 0)
			continue;
		bad = bpf_obj_get_info_by_fd(fd, &mi, &len) ||
		      mi.key_size != want[i].key || mi.value_size != want[i].value;
		close(fd);
		if (bad)
			return why_set(why, TALLY_E_STATE, "the map %s pinned in %s has "
				       "another layout than this meter's (another "
				       "version?): detach it with `tally node "
				       "meter-detach --pin-dir %s`", want[i].name,
				       m->pin_dir, m->pin_dir);
	}
	return 0;
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
		return why_set(why, TALLY_E_STATE, "cannot open the meter's BPF "
			       "object: %s", strerror(errno));
	}
	for (hook = 0; hook < HOOK__COUNT; hook++) {
		bpf_program__set_autoload(hook_prog(m->skel, hook, true), btf);
		bpf_program__set_autoload(hook_prog(m->skel, hook, false), !btf);
	}
	m->skel->rodata->ns_per_tick = 1000000000ull / (unsigned long long)m->ticks_per_s;
	err = cpumeter__load(m->skel);
	if (err) {
		*sys_err = err;
		if (err == -ENOSYS)
			why_set(why, 0, "this kernel has no bpf() system call "
				"(CONFIG_BPF_SYSCALL off, or filtered): the meter "
				"needs eBPF");
		else
			why_set(why, 0, "the kernel refused the meter's %s programs: "
				"%s%s", btf ? "tp_btf" : "raw_tp", strerror(-err),
				err == -EPERM ? " (kernel lockdown, or CAP_BPF missing)" : "");
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

/* A pinned link is adopted only if its program still writes our exits map
 * and reads our ledger; one left from deleted maps would record into
 * nowhere. prog_name gets the program's name. */
static bool link_is_ours(const struct meter *m, int link_fd, char prog_name[17])
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
		ok = prog_uses_map(ids, pi.nr_map_ids, m->map_fd[MAP_EXITS]) &&
		     prog_uses_map(ids, pi.nr_map_ids, m->map_fd[MAP_LEDGER]);
		snprintf(prog_name, 17, "%s", pi.name);
	}
	close(prog_fd);
	return ok;
}

static void kind_from_prog(struct meter *m, const char *prog_name)
{
	snprintf(m->kind, sizeof(m->kind), "%s",
		 strstr(prog_name, "_btf") ? "tp_btf" : "raw_tp");
}

static int attach_hook(struct meter *m, int hook, bool btf, char *why)
{
	char path[PATH_MAX], name[32], prog_name[17] = "";
	struct bpf_link *link;
	int fd, err;

	snprintf(name, sizeof(name), "%s", meter_pin_links[hook]);
	pin_path(m, name, path);
	fd = bpf_obj_get(path);
	if (fd >= 0) {
		if (link_is_ours(m, fd, prog_name)) {
			m->link_fd[hook] = fd;
			if (hook == HOOK_EXIT)
				kind_from_prog(m, prog_name);
			return 0;
		}
		close(fd);
		unlink(path);
	}
	link = bpf_program__attach(hook_prog(m->skel, hook, btf));
	if (!link)
		return why_set(why, TALLY_E_STATE, "cannot attach the meter to %s: %s",
			       hook_points[hook], strerror(errno));
	err = bpf_link__pin(link, path);
	if (!err)
		m->link_fd[hook] = dup(bpf_link__fd(link));
	/* The pin holds the link; this process's handle can go. */
	bpf_link__disconnect(link);
	bpf_link__destroy(link);
	if (err || m->link_fd[hook] < 0)
		return why_set(why, TALLY_E_IO, "cannot pin %s: %s", path,
			       strerror(err ? -err : errno));
	return 0;
}

static int open_loaded(struct meter *m, const struct meter_opts *o, char *why)
{
	bool btf = !o->force_raw_tp && kernel_has_tp_btf();
	int err, i, sys_err = 0;

	err = meter_pins_lock(m->pin_dir, &m->lock_fd, why);
	if (!err)
		err = check_pinned_layout(m, why);
	if (err)
		return err;
	if (!btf && !o->btf_path && access("/sys/kernel/btf/vmlinux", R_OK))
		return why_set(why, TALLY_E_STATE, "the kernel has no BTF "
			       "(/sys/kernel/btf/vmlinux), so the meter cannot be "
			       "relocated to it; give a BTF file for this kernel");
	err = load_skeleton(m, o, btf, &sys_err, why);
	/* tp_btf refused (not bpf() as a whole): raw_tp may still load. */
	if (err == TALLY_E_STATE && btf && sys_err != -ENOSYS)
		err = load_skeleton(m, o, false, &sys_err, why);
	if (err)
		return err;
	for (i = 0; i < MAP__COUNT; i++) {
		struct bpf_map *map = bpf_object__find_map_by_name(m->skel->obj,
								   meter_pin_maps[i]);

		m->map_fd[i] = map ? dup(bpf_map__fd(map)) : -1;
		if (m->map_fd[i] < 0)
			return why_set(why, TALLY_E_IO, "the meter's map %s has no "
				       "file descriptor", meter_pin_maps[i]);
	}
	for (i = 0; !err && i < HOOK__COUNT; i++)
		err = attach_hook(m, i, strcmp(m->kind, "raw_tp") != 0, why);
	return err;
}

static int open_pinned(struct meter *m, char *why)
{
	char path[PATH_MAX], prog_name[17] = "";
	int i, fd;

	for (i = 0; i < MAP__COUNT; i++) {
		pin_path(m, meter_pin_maps[i], path);
		m->map_fd[i] = bpf_obj_get(path);
		if (m->map_fd[i] < 0) {
			int e = errno;

			why_set(why, 0, "no meter is pinned at %s: %s", m->pin_dir,
				strerror(e));
			return e == EACCES || e == EPERM ? TALLY_E_UNAUTHORIZED :
			       TALLY_E_NOTFOUND;
		}
	}
	pin_path(m, meter_pin_links[HOOK_EXIT], path);
	fd = bpf_obj_get(path);
	snprintf(m->kind, sizeof(m->kind), "none");
	if (fd >= 0) {
		if (link_is_ours(m, fd, prog_name))
			kind_from_prog(m, prog_name);
		close(fd);
	}
	return 0;
}

static int find_cgroup2(struct meter *m, const struct meter_opts *o, char *why)
{
	if (o->cgroup2_root)
		snprintf(m->cg2_root, sizeof(m->cg2_root), "%s", o->cgroup2_root);
	else if (cg2_root(m->cg2_root))
		m->cg2_root[0] = '\0';
	if (!m->cg2_root[0] || !cg2_is_cgroup(m->cg2_root))
		return why_set(why, TALLY_E_NOTFOUND, "no cgroup v2 hierarchy is "
			       "mounted: the meter finds a VM's threads by its "
			       "cgroup-v2 directory (mount cgroup2 at /sys/fs/cgroup, "
			       "or /sys/fs/cgroup/unified on a hybrid host)");
	return 0;
}

/* Lock descriptors of this process's open meters: a child made with
 * fork() closes its copies, so that the lock does not outlive the parent's
 * meter in a child that never execs. */
#define HELD_MAX 8
static int held_locks[HELD_MAX] = { -1, -1, -1, -1, -1, -1, -1, -1 };
static pthread_mutex_t held_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t held_once = PTHREAD_ONCE_INIT;

static void held_drop_in_child(void)
{
	int i;

	for (i = 0; i < HELD_MAX; i++)
		if (held_locks[i] >= 0)
			close(held_locks[i]);
}

static void held_init(void)
{
	pthread_atfork(NULL, NULL, held_drop_in_child);
}

static void held_set(int fd, int value)
{
	int i;

	pthread_once(&held_once, held_init);
	pthread_mutex_lock(&held_lock);
	for (i = 0; i < HELD_MAX; i++) {
		if (held_locks[i] == fd) {
			held_locks[i] = value;
			break;
		}
	}
	pthread_mutex_unlock(&held_lock);
}

int meter_open(struct meter **out, const struct meter_opts *o, char *why)
{
	static const struct meter_opts defaults;
	char path_buf[PATH_MAX];
	struct meter *m;
	bool made = false;
	int err, i;

	*out = NULL;
	if (!o)
		o = &defaults;
	if (!o->read_only && geteuid() != 0)
		return why_set(why, TALLY_E_UNAUTHORIZED, "the CPU meter must run as "
			       "root: it loads eBPF programs and pins them under %s",
			       o->pin_dir ? o->pin_dir : METER_PIN_DIR_DEFAULT);
	m = calloc(1, sizeof(*m));
	if (!m)
		return TALLY_E_NOMEM;
	for (i = 0; i < MAP__COUNT; i++)
		m->map_fd[i] = -1;
	for (i = 0; i < HOOK__COUNT; i++)
		m->link_fd[i] = -1;
	m->lock_fd = -1;
	m->read_only = o->read_only;
	m->ticks_per_s = sysconf(_SC_CLK_TCK);
	if (m->ticks_per_s <= 0 || m->ticks_per_s > 1000000000) {
		err = why_set(why, TALLY_E_STATE, "sysconf(_SC_CLK_TCK) gives no "
			      "clock tick rate");
		goto fail;
	}
	if (snprintf(m->pin_dir, sizeof(m->pin_dir), "%s",
		     o->pin_dir ? o->pin_dir : METER_PIN_DIR_DEFAULT) >=
	    (int)sizeof(m->pin_dir) - 32) {
		err = why_set(why, TALLY_E_TOOLONG, "the pin directory's path is too "
			      "long");
		goto fail;
	}
	err = find_cgroup2(m, o, why);
	if (!err)
		err = check_schedstat(why);
	if (!err)
		err = prepare_pin_dir(m->pin_dir, !o->read_only, &made, why);
	if (!err)
		err = o->read_only ? open_pinned(m, why) : open_loaded(m, o, why);
	if (err)
		goto fail;
	if (m->lock_fd >= 0)
		held_set(-1, m->lock_fd);
	*out = m;
	return 0;
fail:
	/* A meter this open began from nothing goes again, half-attached
	 * programs included; one it found pinned is left as it was. */
	snprintf(path_buf, sizeof(path_buf), "%s", m->pin_dir);
	meter_close(m);
	if (made)
		meter_unpin(path_buf, NULL);
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
	cpumeter__destroy(m->skel);
	if (m->lock_fd >= 0) {
		held_set(m->lock_fd, -1);
		close(m->lock_fd);
	}
	free(m);
}

int meter_unpin(const char *pin_dir, char *why)
{
	struct meter_pins_removal r;

	return meter_pins_remove(pin_dir, &r, why);
}

const char *meter_attach_kind(const struct meter *m)
{
	return m->kind;
}

const char *meter_cgroup2_root(const struct meter *m)
{
	return m->cg2_root;
}
