/* What else was running while a benchmark measured (see bench_quiet.h). */
#include "bench/bench_quiet.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/meter_pins.h"

#define PROBE_ROUND_TRIPS 20000
#define PROGS_SCAN_MAX 4096

struct seen {
	unsigned id;
	unsigned long long runs;
};

static size_t prog_runs(struct seen *out, size_t max)
{
	__u32 id = 0;
	size_t n = 0;

	while (n < max && !bpf_prog_get_next_id(id, &id)) {
		struct bpf_prog_info pi = {};
		__u32 len = sizeof(pi);
		int fd = bpf_prog_get_fd_by_id(id);

		if (fd < 0)
			continue;
		if (!bpf_obj_get_info_by_fd(fd, &pi, &len)) {
			out[n].id = id;
			out[n].runs = pi.run_cnt;
			n++;
		}
		close(fd);
	}
	return n;
}

static void pin_cpu0(void)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(0, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

/* Two processes on CPU 0 bounce a byte: at least two switches a trip. */
static unsigned long long switch_burst(void)
{
	int ab[2], ba[2], i;
	pid_t a, b;
	char c = 0;

	if (pipe(ab) || pipe(ba))
		return 0;
	a = fork();
	if (a == 0) {
		pin_cpu0();
		for (i = 0; i < PROBE_ROUND_TRIPS; i++)
			if (write(ab[1], &c, 1) != 1 || read(ba[0], &c, 1) != 1)
				_exit(1);
		_exit(0);
	}
	b = fork();
	if (b == 0) {
		pin_cpu0();
		for (i = 0; i < PROBE_ROUND_TRIPS; i++)
			if (read(ab[0], &c, 1) != 1 || write(ba[1], &c, 1) != 1)
				_exit(1);
		_exit(0);
	}
	close(ab[0]);
	close(ab[1]);
	close(ba[0]);
	close(ba[1]);
	if (a > 0)
		waitpid(a, NULL, 0);
	if (b > 0)
		waitpid(b, NULL, 0);
	return 2ull * PROBE_ROUND_TRIPS;
}

/* Where a link attaches, in words. */
static void link_hook(const struct bpf_link_info *li, struct btf *vmlinux,
		      char *out, size_t len)
{
	const struct btf_type *t;
	const char *name;

	switch (li->type) {
	case BPF_LINK_TYPE_RAW_TRACEPOINT:
		snprintf(out, len, "tracepoint %s", li->raw_tracepoint.tp_name ?
			 (const char *)(unsigned long)li->raw_tracepoint.tp_name : "?");
		return;
	case BPF_LINK_TYPE_TRACING:
		t = vmlinux && li->tracing.target_obj_id == 0 ?
		    btf__type_by_id(vmlinux, li->tracing.target_btf_id) : NULL;
		name = t ? btf__name_by_offset(vmlinux, t->name_off) : NULL;
		if (name && !strncmp(name, "btf_trace_", 10))
			snprintf(out, len, "tp_btf %s", name + 10);
		else
			snprintf(out, len, "tracing %s", name ? name : "?");
		return;
	case BPF_LINK_TYPE_PERF_EVENT:
		snprintf(out, len, "perf event (kprobe, uprobe or tracepoint)");
		return;
	default:
		snprintf(out, len, "link type %u", li->type);
	}
}

/* Fills the hook of every link of a reported program. */
static void find_links(struct quiet_report *r)
{
	struct btf *vmlinux = btf__load_vmlinux_btf();
	__u32 id = 0;

	while (!bpf_link_get_next_id(id, &id)) {
		char tp[128] = "";
		struct bpf_link_info li = {
			.raw_tracepoint.tp_name = (__u64)(unsigned long)tp,
			.raw_tracepoint.tp_name_len = sizeof(tp),
		};
		__u32 len = sizeof(li);
		int fd = bpf_link_get_fd_by_id(id);
		size_t i;

		if (fd < 0)
			continue;
		if (!bpf_obj_get_info_by_fd(fd, &li, &len))
			for (i = 0; i < r->nprogs; i++)
				if (r->progs[i].id == li.prog_id && !r->progs[i].hook[0])
					link_hook(&li, vmlinux, r->progs[i].hook,
						  sizeof(r->progs[i].hook));
		close(fd);
	}
	btf__free(vmlinux);
}

static bool is_tally_dir(const char *dir)
{
	const char *const *n;
	char path[PATH_MAX];

	for (n = meter_pin_maps; *n; n++) {
		snprintf(path, sizeof(path), "%s/%s", dir, *n);
		if (access(path, F_OK) == 0)
			return true;
	}
	return meter_pins_stale(dir);
}

/* What a bpf fd is: "bpf-link", "bpf-prog" or "bpf-map". */
static bool fd_is(int fd, const char *kind)
{
	char link[64], target[64];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof(target) - 1);
	if (n <= 0)
		return false;
	target[n] = '\0';
	return strstr(target, kind) != NULL;
}

/* The program a pinned object runs: its own id for a pinned program, its
 * program's for a pinned link, 0 for anything else. */
static unsigned pinned_prog(int fd)
{
	if (fd_is(fd, "bpf-link")) {
		struct bpf_link_info li = {};
		__u32 len = sizeof(li);

		return bpf_obj_get_info_by_fd(fd, &li, &len) ? 0 : li.prog_id;
	}
	if (fd_is(fd, "bpf-prog")) {
		struct bpf_prog_info pi = {};
		__u32 len = sizeof(pi);

		return bpf_obj_get_info_by_fd(fd, &pi, &len) ? 0 : pi.id;
	}
	return 0;
}

/* Walks a bpffs directory for pins of the reported programs. */
static void find_pins(struct quiet_report *r, const char *dir, int depth)
{
	struct dirent *de;
	DIR *d;

	if (depth > 4 || !(d = opendir(dir)))
		return;
	while ((de = readdir(d))) {
		char path[PATH_MAX];
		unsigned prog;
		size_t i;
		int fd;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (de->d_type == DT_DIR) {
			find_pins(r, path, depth + 1);
			continue;
		}
		fd = bpf_obj_get(path);
		if (fd < 0)
			continue;
		prog = pinned_prog(fd);
		close(fd);
		for (i = 0; prog && i < r->nprogs; i++) {
			if (r->progs[i].id != prog || r->progs[i].pin[0])
				continue;
			snprintf(r->progs[i].pin, sizeof(r->progs[i].pin), "%.255s", path);
			if (is_tally_dir(dir))
				snprintf(r->progs[i].tally_dir, sizeof(r->progs[i].tally_dir),
					 "%.255s", dir);
		}
	}
	closedir(d);
}

/* A process holding a reported program or one of its links by fd. */
static void find_holders(struct quiet_report *r)
{
	DIR *procs = opendir("/proc");
	struct dirent *pe;

	while (procs && (pe = readdir(procs))) {
		char path[PATH_MAX], line[128];
		struct dirent *fe;
		DIR *fds;
		pid_t pid = (pid_t)atoi(pe->d_name);

		if (pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/fdinfo", (int)pid);
		fds = opendir(path);
		while (fds && (fe = readdir(fds))) {
			FILE *f;

			if (fe->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "/proc/%d/fdinfo/%s", (int)pid,
				 fe->d_name);
			f = fopen(path, "re");
			while (f && fgets(line, sizeof(line), f)) {
				unsigned id;
				size_t i;

				if (sscanf(line, "prog_id: %u", &id) != 1)
					continue;
				for (i = 0; i < r->nprogs; i++) {
					if (r->progs[i].id != id || r->progs[i].holder)
						continue;
					r->progs[i].holder = pid;
					snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
					FILE *c = fopen(path, "re");

					if (c && fgets(r->progs[i].holder_comm, 16, c))
						r->progs[i].holder_comm[strcspn(
							r->progs[i].holder_comm, "\n")] = '\0';
					if (c)
						fclose(c);
				}
			}
			if (f)
				fclose(f);
		}
		if (fds)
			closedir(fds);
	}
	if (procs)
		closedir(procs);
}

static void count_processes(struct quiet_report *r, pid_t my_pid)
{
	DIR *procs = opendir("/proc");
	struct dirent *pe;

	while (procs && (pe = readdir(procs))) {
		char path[64], comm[32] = "";
		pid_t pid = (pid_t)atoi(pe->d_name);
		FILE *f;

		if (pid <= 0 || pid == getpid() || (my_pid && pid == my_pid))
			continue;
		snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
		f = fopen(path, "re");
		if (!f)
			continue;
		if (fgets(comm, sizeof(comm), f))
			comm[strcspn(comm, "\n")] = '\0';
		fclose(f);
		r->tallyd += !strcmp(comm, "tallyd");
		r->qemu += !strncmp(comm, "qemu-system", 11);
	}
	if (procs)
		closedir(procs);
}

void quiet_probe(struct quiet_report *r, const unsigned *skip, size_t nskip,
		 pid_t my_pid)
{
	static struct seen before[PROGS_SCAN_MAX], after[PROGS_SCAN_MAX];
	size_t nb, na, i, j, k;
	FILE *f;
	int stats;

	memset(r, 0, sizeof(*r));
	count_processes(r, my_pid);
	f = fopen("/proc/loadavg", "re");
	if (f) {
		if (fscanf(f, "%lf", &r->load1) != 1)
			r->load1 = 0;
		fclose(f);
	}
	stats = bpf_enable_stats(BPF_STATS_RUN_TIME);
	if (stats < 0)
		return;
	r->stats_ok = true;
	nb = prog_runs(before, PROGS_SCAN_MAX);
	r->switches = switch_burst();
	na = prog_runs(after, PROGS_SCAN_MAX);
	close(stats);
	for (i = 0; i < na && r->nprogs < QUIET_PROGS_MAX; i++) {
		unsigned long long runs = after[i].runs;
		bool mine = false;

		for (j = 0; j < nb; j++)
			if (before[j].id == after[i].id)
				runs -= before[j].runs;
		for (k = 0; k < nskip; k++)
			mine |= skip[k] == after[i].id;
		/* Ran at least once per ten switches: it is on the switch path
		 * (a program that runs on other events, such as exits, runs a
		 * few times at most). */
		if (mine || runs * 10 < r->switches)
			continue;
		struct quiet_prog *p = &r->progs[r->nprogs++];
		struct bpf_prog_info pi = {};
		__u32 len = sizeof(pi);
		int fd = bpf_prog_get_fd_by_id(after[i].id);

		p->id = after[i].id;
		p->runs = runs;
		if (fd >= 0 && !bpf_obj_get_info_by_fd(fd, &pi, &len))
			snprintf(p->name, sizeof(p->name), "%s", pi.name);
		if (fd >= 0)
			close(fd);
	}
	if (!r->nprogs)
		return;
	find_links(r);
	find_pins(r, "/sys/fs/bpf", 0);
	find_holders(r);
}

void quiet_print(FILE *out, const char *prefix, const struct quiet_report *r)
{
	size_t i;

	fprintf(out, "%salso running: %u other tallyd, %u QEMU; load average %.2f; ",
		prefix, r->tallyd, r->qemu, r->load1);
	if (!r->stats_ok) {
		fprintf(out, "BPF programs on context switches: unknown (BPF "
			"statistics need root)\n");
		return;
	}
	fprintf(out, "BPF programs on context switches: %zu (over %llu switches)\n",
		r->nprogs, r->switches);
	for (i = 0; i < r->nprogs; i++) {
		const struct quiet_prog *p = &r->progs[i];

		fprintf(out, "%s  program %u '%s' on %s: %.2f runs per switch", prefix,
			p->id, p->name, p->hook[0] ? p->hook : "(no link: attached "
			"another way)", (double)p->runs / (double)r->switches);
		if (p->tally_dir[0])
			fprintf(out, "; a tally meter pinned in %s: remove it with "
				"`tally node meter-detach --pin-dir %s`\n", p->tally_dir,
				p->tally_dir);
		else if (p->pin[0])
			fprintf(out, "; pinned at %s: remove the pin (rm %s)\n", p->pin,
				p->pin);
		else if (p->holder)
			fprintf(out, "; held by %s (pid %d): stop it\n",
				p->holder_comm[0] ? p->holder_comm : "a process",
				(int)p->holder);
		else
			fprintf(out, "\n");
	}
}
