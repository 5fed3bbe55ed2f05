/* What the CPU meter costs the scheduler.
 *
 * `perf bench sched pipe` pinned to one CPU is nearly all context switches.
 * It runs, interleaved in the same rounds:
 *   base     no meter attached
 *   meter    meter attached; the benchmark's tasks are not metered (what
 *            every host process pays)
 *   metered  meter attached; the tasks sit in a registered vCPU cgroup (what
 *            a VM's threads pay: CPU counter, run delay)
 * and prints the medians, their ratios against base, and the added
 * nanoseconds per context switch (target: at most 60). Then one more
 * metered run with the kernel's BPF statistics on gives each program's
 * run_time_ns / run_cnt. Needs root and perf (Debian's linux-perf). */
#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "contracts/contract.h"
#include "daemon/meter/cgroup.h"
#include "daemon/meter/cpumeter.h"
#include "lib/errors.h"

#define ROUNDS 11
#define LOOPS "100000"
#define NLOOPS 100000.0

enum { BASE, METER, METERED, NCONFIG };
static const char *const config_names[NCONFIG] = { "base", "meter", "metered" };

static char pin_dir[64], cg_dir[CG_PATH_MAX];

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Context switches of the waited-for children so far: the benchmark's
 * tasks leave the CPU once per switch (perf waits for its workers, so their
 * counts reach us through it). */
static unsigned long long ctxt_switches(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_CHILDREN, &ru))
		return 0;
	return (unsigned long long)ru.ru_nvcsw + (unsigned long long)ru.ru_nivcsw;
}

/* One `perf bench sched pipe` on CPU 0, optionally inside cgroup dir;
 * returns its usecs/op, or a negative value on failure. */
static double run_pipe(const char *dir)
{
	char line[256], path[CG_PATH_MAX + 16];
	double usecs = -1;
	int pfd[2], status;
	pid_t pid;
	FILE *f;

	if (pipe(pfd))
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		close(pfd[0]);
		dup2(pfd[1], STDOUT_FILENO);
		if (dir) {
			snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
			f = fopen(path, "we");
			if (!f || fprintf(f, "%d", (int)getpid()) < 0 || fclose(f))
				_exit(126);
		}
		execlp("taskset", "taskset", "-c", "0", "perf", "bench", "sched",
		       "pipe", "-l", LOOPS, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	f = fdopen(pfd[0], "r");
	while (f && fgets(line, sizeof(line), f))
		if (strstr(line, "usecs/op"))
			sscanf(line, "%lf", &usecs);
	if (f)
		fclose(f);
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status))
		return -1;
	return usecs;
}

static struct meter *attach(void)
{
	struct meter_opts o = { .pin_dir = pin_dir };
	struct meter_vm_spec s = { .name = "bench", .cgroup_dir = cg_dir,
				   .flags = METER_VM_ALL_VCPU };
	char why[WHY_MAX] = "";
	struct meter *m;
	int err;

	err = meter_open(&m, &o, why);
	if (!err)
		err = meter_vm_register(m, &s, why);
	if (err) {
		fprintf(stderr, "cpumeter_bench: %s: %s\n", tally_strerror(err),
			why);
		return NULL;
	}
	return m;
}

/* Each attached program's cost by the kernel's own count; returns the sum
 * of their run times. */
static unsigned long long print_prog_stats(unsigned long long *runs)
{
	static const char *const links[] = {
		"link_runtime", "link_switch",
	};
	unsigned long long total = 0;
	size_t i;

	for (i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
		struct bpf_link_info li = {};
		struct bpf_prog_info pi = {};
		__u32 len = sizeof(li);
		char path[128];
		int lfd, pfd;

		snprintf(path, sizeof(path), "%s/%s", pin_dir, links[i]);
		lfd = bpf_obj_get(path);
		if (lfd < 0 || bpf_obj_get_info_by_fd(lfd, &li, &len))
			continue;
		pfd = bpf_prog_get_fd_by_id(li.prog_id);
		len = sizeof(pi);
		if (pfd >= 0 && !bpf_obj_get_info_by_fd(pfd, &pi, &len)) {
			printf("    %-16s run_cnt %9llu  run_time_ns %11llu  "
			       "%6.1f ns/run\n", pi.name,
			       (unsigned long long)pi.run_cnt,
			       (unsigned long long)pi.run_time_ns,
			       pi.run_cnt ? (double)pi.run_time_ns / pi.run_cnt : 0);
			total += pi.run_time_ns;
			*runs += pi.run_cnt;
		}
		if (pfd >= 0)
			close(pfd);
		close(lfd);
	}
	return total;
}

/* What the statistics themselves add to each run (two clock reads): the
 * kernel's figure for empty programs on the meter's two tracepoints, with
 * the benchmark's tasks in the same cgroup as the run it is set against
 * (a task in a child cgroup makes the scheduler touch more memory, which
 * the programs' loads then pay for too). */
static double empty_prog_ns(const char *dir)
{
	static const char *const tps[] = { "sched_switch", "sched_stat_runtime" };
	struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	unsigned long long runs = 0, ns = 0;
	int pfd[2], lfd[2], i;

	for (i = 0; i < 2; i++) {
		pfd[i] = bpf_prog_load(BPF_PROG_TYPE_RAW_TRACEPOINT, "empty",
				       "GPL", insns, 2, NULL);
		lfd[i] = pfd[i] < 0 ? -1 :
			 bpf_raw_tracepoint_open(tps[i], pfd[i]);
	}
	if (lfd[0] >= 0 && lfd[1] >= 0)
		run_pipe(dir);
	for (i = 0; i < 2; i++) {
		struct bpf_prog_info pi = {};
		__u32 len = sizeof(pi);

		if (lfd[0] >= 0 && lfd[1] >= 0 &&
		    !bpf_obj_get_info_by_fd(pfd[i], &pi, &len)) {
			runs += pi.run_cnt;
			ns += pi.run_time_ns;
		}
		if (lfd[i] >= 0)
			close(lfd[i]);
		if (pfd[i] >= 0)
			close(pfd[i]);
	}
	return runs ? (double)ns / runs : 0;
}

/* One run with BPF statistics on. They cost what empty programs cost per
 * run, measured just before in the same cgroup; the net figure takes that
 * out. */
static int stats_run(const char *dir, const char *label)
{
	unsigned long long c0, switches, bpf_ns, runs = 0;
	double floor = empty_prog_ns(dir);
	struct meter *m = attach();

	if (!m)
		return 1;
	c0 = ctxt_switches();
	if (run_pipe(dir) < 0)
		return 1;
	switches = ctxt_switches() - c0;
	printf("  %s (an empty program costs %.1f ns/run here):\n", label,
	       floor);
	bpf_ns = print_prog_stats(&runs);
	printf("    BPF time per context switch: %.1f ns measured, %.1f ns net "
	       "of the stats' own cost\n",
	       switches ? (double)bpf_ns / switches : 0,
	       switches ? ((double)bpf_ns - floor * runs) / switches : 0);
	meter_vm_unregister(m, "bench");
	meter_close(m);
	meter_unpin(pin_dir);
	return 0;
}

static int bench(void)
{
	double t[NCONFIG][ROUNDS], med[NCONFIG], per_op;
	unsigned long long c0, switches = 0;
	struct meter *m;
	int r, stats_fd;

	for (r = 0; r < ROUNDS; r++) {
		c0 = ctxt_switches();
		t[BASE][r] = run_pipe(NULL);
		switches += ctxt_switches() - c0;
		m = attach();
		if (!m)
			return 1;
		t[METER][r] = run_pipe(NULL);
		t[METERED][r] = run_pipe(cg_dir);
		meter_vm_unregister(m, "bench");
		meter_close(m);
		meter_unpin(pin_dir);
		if (t[BASE][r] < 0 || t[METER][r] < 0 || t[METERED][r] < 0) {
			fprintf(stderr, "cpumeter_bench: perf bench sched pipe "
				"failed (is linux-perf installed?)\n");
			return 1;
		}
	}
	per_op = (double)switches / ROUNDS / NLOOPS;
	printf("perf bench sched pipe -l %s on CPU 0, %d rounds, %.2f context "
	       "switches per op:\n", LOOPS, ROUNDS, per_op);
	for (r = 0; r < NCONFIG; r++) {
		med[r] = median(t[r], ROUNDS);
		printf("  %-8s median %8.3f usecs/op  ratio %.4f  added %6.1f ns "
		       "per switch\n", config_names[r], med[r], med[r] / med[BASE],
		       (med[r] - med[BASE]) * 1000 / per_op);
	}
	printf("target: at most 60 ns per switch (unmetered tasks: %s, metered "
	       "vCPU tasks: %s)\n",
	       (med[METER] - med[BASE]) * 1000 / per_op <= 60 ? "met" : "NOT met",
	       (med[METERED] - med[BASE]) * 1000 / per_op <= 60 ? "met" : "NOT met");

	stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
	if (stats_fd < 0) {
		fprintf(stderr, "cpumeter_bench: BPF_ENABLE_STATS: %s\n",
			strerror(errno));
		return 1;
	}
	printf("BPF program cost by the kernel's stats (run_time_ns / "
	       "run_cnt):\n");
	if (stats_run(NULL, "meter (tasks not metered)") ||
	    stats_run(cg_dir, "metered (tasks in a vCPU cgroup)")) {
		close(stats_fd);
		return 1;
	}
	close(stats_fd);
	return 0;
}

int main(void)
{
	char root[CG_PATH_MAX];
	int ret;

	if (geteuid() != 0) {
		printf("SKIP: cpumeter_bench needs root\n");
		return 0;
	}
	if (cg2_root(root)) {
		fprintf(stderr, "cpumeter_bench: no cgroup v2 hierarchy\n");
		return 1;
	}
	snprintf(pin_dir, sizeof(pin_dir), "/sys/fs/bpf/tally-bench-%d",
		 (int)getpid());
	if (snprintf(cg_dir, sizeof(cg_dir), "%s/tally-bench-%d", root,
		     (int)getpid()) >= (int)sizeof(cg_dir) ||
	    mkdir(cg_dir, 0755)) {
		fprintf(stderr, "cpumeter_bench: cannot create %s\n", cg_dir);
		return 1;
	}
	ret = bench();
	meter_unpin(pin_dir);
	if (rmdir(cg_dir))
		fprintf(stderr, "cpumeter_bench: cannot remove %s: %s\n", cg_dir,
			strerror(errno));
	return ret;
}
