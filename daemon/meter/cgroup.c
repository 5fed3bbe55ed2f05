/* cgroup file-system helpers for the meter (see cgroup.h). */
#include "daemon/meter/cgroup.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "contracts/contract.h"
#include "lib/errors.h"

#define LIBVIRT_QEMU_RUN_DIR "/run/libvirt/qemu"

static void close_file(FILE **f)
{
	if (*f)
		fclose(*f);
}
#define _cleanup_file_ __attribute__((cleanup(close_file)))

/* Find a mount in /proc/self/mountinfo: fstype "cgroup2", or "cgroup" with
 * the controller among its super options. */
static int find_mount(const char *fstype, const char *controller,
		      char out[CG_PATH_MAX])
{
	_cleanup_file_ FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096];

	if (!f)
		return TALLY_E_IO;
	while (fgets(line, sizeof(line), f)) {
		char mnt[PATH_MAX], type[64], opts[1024];
		const char *sep = strstr(line, " - ");

		/* id parent major:minor root mount-point ... - type source opts */
		if (!sep || sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1)
			continue;
		if (sscanf(sep + 3, "%63s %*s %1023s", type, opts) != 2)
			continue;
		if (strcmp(type, fstype))
			continue;
		if (controller) {
			char *tok, *save = NULL;
			bool found = false;

			for (tok = strtok_r(opts, ",", &save); tok;
			     tok = strtok_r(NULL, ",", &save))
				found |= !strcmp(tok, controller);
			if (!found)
				continue;
		}
		if (strlen(mnt) >= CG_PATH_MAX)
			return TALLY_E_TOOLONG;
		strcpy(out, mnt);
		return 0;
	}
	return TALLY_E_NOTFOUND;
}

int cg2_root(char out[CG_PATH_MAX])
{
	return find_mount("cgroup2", NULL, out);
}

int cg1_root(const char *controller, char out[CG_PATH_MAX])
{
	return find_mount("cgroup", controller, out);
}

bool cg2_is_cgroup(const char *dir)
{
	struct statfs sfs;

	return statfs(dir, &sfs) == 0 && sfs.f_type == CGROUP2_SUPER_MAGIC;
}

int cg_id(const char *dir, uint64_t *id)
{
	struct {
		struct file_handle fh;
		uint64_t id;
	} h = { .fh.handle_bytes = sizeof(uint64_t) };
	int mount_id;

	/* A cgroup-v2 directory's file handle is its kernfs node id, which is
	 * the id the kernel gives bpf (cgroup->kn->id). */
	if (name_to_handle_at(AT_FDCWD, dir, &h.fh, &mount_id, 0) < 0)
		return errno == ENOENT ? TALLY_E_NOTFOUND : TALLY_E_IO;
	if (h.fh.handle_bytes != sizeof(uint64_t))
		return TALLY_E_INTERNAL;
	memcpy(id, h.fh.f_handle, sizeof(*id));
	return 0;
}

/* Reads "key value" lines of a cgroup file and returns key's value. */
static int read_keyed(const char *dir, const char *file, const char *key,
		      uint64_t *val)
{
	char path[PATH_MAX], name[64];
	_cleanup_file_ FILE *f = NULL;
	unsigned long long v;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? TALLY_E_NOTFOUND : TALLY_E_IO;
	while (fscanf(f, "%63s %llu", name, &v) == 2) {
		if (!strcmp(name, key)) {
			*val = v;
			return 0;
		}
	}
	return TALLY_E_NOTFOUND;
}

static int read_u64(const char *dir, const char *file, uint64_t *val)
{
	char path[PATH_MAX];
	_cleanup_file_ FILE *f = NULL;
	unsigned long long v;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? TALLY_E_NOTFOUND : TALLY_E_IO;
	if (fscanf(f, "%llu", &v) != 1)
		return TALLY_E_ENCODING;
	*val = v;
	return 0;
}

int cg_usage_usec(const char *dir, uint64_t *usec)
{
	return read_keyed(dir, "cpu.stat", "usage_usec", usec);
}

int cg_memory(const char *dir, uint64_t *current, uint64_t *peak)
{
	int err;

	err = read_u64(dir, "memory.current", current);
	if (err == 0) {
		if (read_u64(dir, "memory.peak", peak))
			*peak = *current;
		return 0;
	}
	if (err != TALLY_E_NOTFOUND)
		return err;
	err = read_u64(dir, "memory.usage_in_bytes", current);
	if (err)
		return err;
	return read_u64(dir, "memory.max_usage_in_bytes", peak);
}

int cg_pid_path(pid_t pid, const char *controller, char out[CG_PATH_MAX])
{
	char path[64], line[4096];
	_cleanup_file_ FILE *f = NULL;

	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return errno == ENOENT ? TALLY_E_NOTFOUND : TALLY_E_IO;
	/* hierarchy-id:controller-list:path */
	while (fgets(line, sizeof(line), f)) {
		char *ctrls = strchr(line, ':'), *cgpath, *tok, *save = NULL;
		bool match = false;

		if (!ctrls)
			continue;
		cgpath = strchr(++ctrls, ':');
		if (!cgpath)
			continue;
		*cgpath++ = '\0';
		cgpath[strcspn(cgpath, "\n")] = '\0';
		if (!controller) {
			match = !strncmp(line, "0:", 2) && !*ctrls;
		} else {
			for (tok = strtok_r(ctrls, ",", &save); tok;
			     tok = strtok_r(NULL, ",", &save))
				match |= !strcmp(tok, controller);
		}
		if (!match)
			continue;
		if (strlen(cgpath) >= CG_PATH_MAX)
			return TALLY_E_TOOLONG;
		strcpy(out, cgpath);
		return 0;
	}
	return TALLY_E_NOTFOUND;
}

static bool has_suffix(const char *s, size_t n, const char *suffix)
{
	size_t k = strlen(suffix);

	return n >= k && !memcmp(s + n - k, suffix, k);
}

size_t cg_libvirt_vm_prefix(const char *path)
{
	const char *seg = path;

	while (*seg) {
		size_t n;

		while (*seg == '/')
			seg++;
		n = strcspn(seg, "/");
		if (!n)
			break;
		/* plain: qemu-N-NAME.libvirt-qemu; systemd escapes '-' inside
		 * the unit name: machine-qemu\x2dN\x2dNAME.scope */
		if ((n > 5 && !strncmp(seg, "qemu-", 5) &&
		     has_suffix(seg, n, ".libvirt-qemu")) ||
		    (n > 12 && !strncmp(seg, "machine-qemu", 12) &&
		     has_suffix(seg, n, ".scope")))
			return (size_t)(seg - path) + n;
		seg += n;
	}
	return 0;
}

bool cg_is_vcpu_name(const char *name)
{
	if (strncmp(name, "vcpu", 4) || !name[4])
		return false;
	for (name += 4; *name; name++)
		if (!isdigit((unsigned char)*name))
			return false;
	return true;
}

int cg_walk(const char *dir, int (*fn)(const char *path, void *arg), void *arg)
{
	struct dirent *de;
	DIR *d;
	int err;

	err = fn(dir, arg);
	if (err)
		return err;
	d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : TALLY_E_IO;  /* removed meanwhile */
	while ((de = readdir(d))) {
		char sub[PATH_MAX];

		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		if (snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name) >=
		    CG_PATH_MAX) {
			err = TALLY_E_TOOLONG;
			break;
		}
		err = cg_walk(sub, fn, arg);
		if (err)
			break;
	}
	closedir(d);
	return err;
}

static int read_pidfile(const char *domain_name, pid_t *pid, char *why)
{
	char path[PATH_MAX];
	_cleanup_file_ FILE *f = NULL;
	int v;

	snprintf(path, sizeof(path), "%s/%s.pid", LIBVIRT_QEMU_RUN_DIR,
		 domain_name);
	f = fopen(path, "re");
	if (!f) {
		why_set(why, 0, "domain %s: no QEMU pid file %s: %s",
		     domain_name, path, strerror(errno));
		return TALLY_E_NOTFOUND;
	}
	if (fscanf(f, "%d", &v) != 1 || v <= 1) {
		why_set(why, 0, "domain %s: %s holds no pid",
		     domain_name, path);
		return TALLY_E_ENCODING;
	}
	*pid = v;
	return 0;
}

/* The memory cgroup: v1 controller on hybrid hosts, else the v2 directory
 * (the VM's own cgroup; its threaded children hold no memory controller). */
static void resolve_mem_dir(struct cg_domain *d)
{
	char mroot[CG_PATH_MAX], rel[CG_PATH_MAX];
	size_t n;

	strcpy(d->mem_dir, d->v2_dir);
	if (cg1_root("memory", mroot) || cg_pid_path(d->pid, "memory", rel))
		return;
	n = cg_libvirt_vm_prefix(rel);
	if (n)
		rel[n] = '\0';
	if (snprintf(d->mem_dir, CG_PATH_MAX, "%s%s", mroot,
		     strcmp(rel, "/") ? rel : "") >= CG_PATH_MAX)
		strcpy(d->mem_dir, d->v2_dir);
}

int cg_domain_resolve(const char *domain_name, struct cg_domain *out,
		      char *why)
{
	char root[CG_PATH_MAX], rel[CG_PATH_MAX];
	size_t n;
	int err;

	memset(out, 0, sizeof(*out));
	err = read_pidfile(domain_name, &out->pid, why);
	if (err)
		return err;
	err = cg2_root(root);
	if (err) {
		why_set(why, 0, "no cgroup v2 hierarchy is mounted");
		return err;
	}
	err = cg_pid_path(out->pid, NULL, rel);
	if (err) {
		why_set(why, 0, "domain %s: QEMU pid %d has no cgroup-v2 "
		     "path: %s", domain_name, (int)out->pid,
		     tally_strerror(err));
		return err;
	}
	n = cg_libvirt_vm_prefix(rel);
	if (!n) {
		why_set(why, 0, "domain %s: QEMU pid %d is in cgroup %s, "
		     "which is not a libvirt VM cgroup", domain_name,
		     (int)out->pid, rel);
		return TALLY_E_NOTFOUND;
	}
	rel[n] = '\0';
	if (snprintf(out->v2_dir, CG_PATH_MAX, "%s%s", root, rel) >=
	    CG_PATH_MAX)
		return TALLY_E_TOOLONG;
	resolve_mem_dir(out);
	return 0;
}
