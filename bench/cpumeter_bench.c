/* What the CPU meter costs the scheduler.
 *
 * `perf bench sched pipe` pinned to one CPU is nearly all context switches.
 * It runs, interleaved in the same rounds (the order turns each round):
 *   base      no meter attached, the tasks in the bench's own cgroup
 *   base-cg   no meter attached, the tasks in the VM cgroup (not registered)
 *   meter     meter attached; the tasks are not metered (what every host
 *             process pays)
 *   metered   meter attached; the tasks sit in a registered vCPU cgroup (what
 *             a VM's threads pay)
 * The headline is the whole switch, in the CPU time perf and its two tasks
 * spend per context switch (their user and system time, from the kernel's
 * accounting of the waited-for children): what the switch costs the host,
 * with or without other work on CPU 0. perf's own figure, wall time per op,
 * is printed too: on a shared machine it also holds the time the tasks wait
 * for CPU 0 while other work runs there. Each config's median is set against
 * its baseline (meter against base, metered against base-cg, so that the
 * scheduler's own cost of a deeper cgroup is not put on the meter), as a
 * ratio and as nanoseconds added per context switch, with the spread of the
 * per-round differences. The CPU time includes perf's start-up, the same in
 * every config: only differences mean something.
 * Targets: at most 60 ns for vCPU threads, close to 0 for every other task.
 * Then the kernel's BPF statistics over one more metered run say how often
 * the meter's programs ran per switch.
 *
 * Before timing, it looks for BPF programs that already run on context
 * switches (a node's meter left pinned, a tracer): it refuses to measure
 * over them, naming their pin directory, unless --as-baseline is given, in
 * which case they are part of every config and it says so.
 * Needs root and perf (Debian's linux-perf). */
#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/bench_quiet.h"
#include "contracts/contract.h"
#include "daemon/meter/cgroup.h"
#include "daemon/meter/cpumeter.h"
#include "lib/errors.h"

#define ROUNDS 11
#define LOOPS "100000"
#define NLOOPS 100000.0

enum { BASE, BASE_CG, METER, METERED, NCONFIG };
static const char *const config_names[NCONFIG] = {
	"no meter", "no meter, tasks in a cgroup", "meter, tasks not in a VM",
	"meter, tasks in a vCPU cgroup",
};
/* Each config's baseline. */
static const int baseline_of[NCONFIG] = { BASE, BASE, BASE, BASE_CG };

static char pin_dir[64], cg_dir[CG_PATH_MAX];

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The q-quantile of v[n] (sorts v). */
static double quantile(double *v, int n, double q)
{
	double pos = q * (n - 1);
	int i = (int)pos;

	qsort(v, n, sizeof(*v), cmp_double);
	return i + 1 < n ? v[i] + (pos - i) * (v[i + 1] - v[i]) : v[i];
}

/* Context switches and CPU time (ns) of the waited-for children so far:
 * the benchmark's tasks leave the CPU once per switch (perf waits for its
 * workers, so their counts reach us through it). */
static unsigned long long ctxt_switches(double *cpu_ns)
{
	struct rusage ru;

	if (getrusage(RUSAGE_CHILDREN, &ru))
		return 0;
	if (cpu_ns)
		*cpu_ns = ((double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec) * 1e9 +
			  ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) * 1e3;
	return (unsigned long long)ru.ru_nvcsw + (unsigned long long)ru.ru_nivcsw;
}

/* One `perf bench sched pipe` on CPU 0, optionally inside cgroup dir;
 * returns its usecs/op (wall), or a negative value on failure; *cpu_per_op
 * gets the CPU ns its tasks spent per op. */
static double run_pipe(const char *dir, double *cpu_per_op)
{
	double cpu0, cpu1;
	char line[256], path[CG_PATH_MAX + 16];
	double usecs = -1;
	int pfd[2], status;
	pid_t pid;
	FILE *f;

	ctxt_switches(&cpu0);
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
	ctxt_switches(&cpu1);
	if (cpu_per_op)
		*cpu_per_op = (cpu1 - cpu0) / NLOOPS;
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
		fprintf(stderr, "cpumeter_bench: %s: %s\n", tally_strerror(err), why);
		return NULL;
	}
	return m;
}

static void detach(struct meter *m)
{
	char why[WHY_MAX] = "";

	meter_vm_unregister(m, "bench");
	meter_close(m);
	if (meter_unpin(pin_dir, why))
		fprintf(stderr, "cpumeter_bench: %s\n", why);
}

/* The meter's programs' runs and run time by the kernel's own count. */
static void prog_stats(unsigned long long *runs, unsigned long long *ns)
{
	const char *const *link;

	*runs = *ns = 0;
	for (link = meter_pin_links; *link; link++) {
		struct bpf_link_info li = {};
		struct bpf_prog_info pi = {};
		__u32 len = sizeof(li);
		char path[128];
		int lfd, pfd;

		snprintf(path, sizeof(path), "%s/%s", pin_dir, *link);
		lfd = bpf_obj_get(path);
		if (lfd < 0 || bpf_obj_get_info_by_fd(lfd, &li, &len)) {
			if (lfd >= 0)
				close(lfd);
			continue;
		}
		pfd = bpf_prog_get_fd_by_id(li.prog_id);
		len = sizeof(pi);
		if (pfd >= 0 && !bpf_obj_get_info_by_fd(pfd, &pi, &len)) {
			*runs += pi.run_cnt;
			*ns += pi.run_time_ns;
		}
		if (pfd >= 0)
			close(pfd);
		close(lfd);
	}
}

/* One metered run with the kernel's BPF statistics on. */
static int stats_run(void)
{
	unsigned long long c0, switches, runs0, ns0, runs, ns;
	struct meter *m;
	int stats_fd;

	stats_fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
	if (stats_fd < 0) {
		fprintf(stderr, "cpumeter_bench: BPF_ENABLE_STATS: %s\n", strerror(errno));
		return 1;
	}
	m = attach();
	if (!m) {
		close(stats_fd);
		return 1;
	}
	prog_stats(&runs0, &ns0);
	c0 = ctxt_switches(NULL);
	if (run_pipe(cg_dir, NULL) < 0) {
		detach(m);
		close(stats_fd);
		return 1;
	}
	switches = ctxt_switches(NULL) - c0;
	prog_stats(&runs, &ns);
	runs -= runs0;
	ns -= ns0;
	printf("the meter's BPF programs over one metered run (%llu context switches), by "
	       "the kernel's statistics:\n  %llu runs (%.6f per switch), %llu ns in all "
	       "(%.3f ns per switch): they run when a thread ends, never on a switch\n",
	       switches, runs, switches ? (double)runs / switches : 0, ns,
	       switches ? (double)ns / switches : 0);
	detach(m);
	close(stats_fd);
	return 0;
}

/* One figure of every config and round: its medians, and each config's
 * added ns per switch against its baseline (median of the per-round
 * differences, and the middle half of the rounds). */
static void report(const char *what, double t[NCONFIG][ROUNDS], double to_ns,
		   double added[NCONFIG])
{
	double med[NCONFIG], d[ROUNDS];
	int c, r;

	printf("%s\n", what);
	for (c = 0; c < NCONFIG; c++) {
		double tc[ROUNDS];

		memcpy(tc, t[c], sizeof(tc));
		med[c] = quantile(tc, ROUNDS, 0.5);
	}
	for (c = 0; c < NCONFIG; c++) {
		int b = baseline_of[c];
		double q1, q3;

		for (r = 0; r < ROUNDS; r++)
			d[r] = (t[c][r] - t[b][r]) * to_ns;
		added[c] = quantile(d, ROUNDS, 0.5);
		q1 = quantile(d, ROUNDS, 0.25);
		q3 = quantile(d, ROUNDS, 0.75);
		if (c == BASE) {
			printf("  %-30s %9.1f ns per switch   (baseline)\n", config_names[c],
			       med[c] * to_ns);
			continue;
		}
		printf("  %-30s %9.1f ns per switch   ratio %.4f to %-8s added %+7.1f ns "
		       "[%+.1f, %+.1f]\n", config_names[c], med[c] * to_ns,
		       med[c] / med[b], b == BASE ? "base" : "base-cg", added[c], q1, q3);
	}
}

static int bench(void)
{
	static const int order[NCONFIG][NCONFIG] = {
		{ BASE, BASE_CG, METER, METERED }, { METERED, METER, BASE_CG, BASE },
		{ BASE_CG, METERED, BASE, METER }, { METER, BASE, METERED, BASE_CG },
	};
	double wall[NCONFIG][ROUNDS], cpu[NCONFIG][ROUNDS], per_op, added[NCONFIG];
	double wall_added[NCONFIG];
	unsigned long long c0, switches = 0, nbase = 0;
	struct meter *m = NULL;
	int r, i, c;

	for (r = 0; r < ROUNDS; r++) {
		for (i = 0; i < NCONFIG; i++) {
			c = order[r % NCONFIG][i];
			if ((c == METER || c == METERED) && !m && !(m = attach()))
				return 1;
			if ((c == BASE || c == BASE_CG) && m) {
				detach(m);
				m = NULL;
			}
			c0 = ctxt_switches(NULL);
			wall[c][r] = run_pipe(c == BASE || c == METER ? NULL : cg_dir,
					      &cpu[c][r]);
			if (c == BASE) {
				switches += ctxt_switches(NULL) - c0;
				nbase++;
			}
			if (wall[c][r] < 0) {
				if (m)
					detach(m);
				fprintf(stderr, "cpumeter_bench: perf bench sched pipe failed "
					"(is linux-perf installed?)\n");
				return 1;
			}
		}
	}
	if (m)
		detach(m);
	per_op = (double)switches / (double)nbase / NLOOPS;
	printf("bench-cpumeter: what the CPU meter adds to a context switch\n"
	       "perf bench sched pipe -l %s on CPU 0, %d interleaved rounds, %.2f context "
	       "switches per op; added: the median of each round's difference to its "
	       "baseline [middle half of the rounds]\n", LOOPS, ROUNDS, per_op);
	report("CPU time per context switch (the headline; perf's start-up included):",
	       cpu, 1.0 / per_op, added);
	report("wall time per context switch (perf's usecs/op; on a busy host it holds "
	       "waits for the CPU):", wall, 1000.0 / per_op, wall_added);
	printf("target: vCPU threads at most +60 ns per switch: %s (%+.1f); other tasks "
	       "close to 0 (within 10 ns): %s (%+.1f)\n",
	       added[METERED] <= 60 ? "met" : "NOT met", added[METERED],
	       added[METER] <= 10 ? "met" : "NOT met", added[METER]);
	printf("(a task in a child cgroup costs the scheduler itself %+.1f ns per switch, "
	       "meter or not: base-cg against base)\n", added[BASE_CG]);
	return stats_run();
}

/* Its own meter and cgroup go whatever way the bench ends: normally, or on
 * ^C or SIGTERM (the bench is then waiting for perf, whose tasks die with
 * the terminal's signal or are killed here with the cgroup). */
static void cleanup(void)
{
	char kill_path[CG_PATH_MAX + 16];
	FILE *f;

	meter_unpin(pin_dir, NULL);
	snprintf(kill_path, sizeof(kill_path), "%s/cgroup.kill", cg_dir);
	f = fopen(kill_path, "we");
	if (f) {
		fputs("1", f);
		fclose(f);
	}
	for (int tries = 0; tries < 50 && rmdir(cg_dir) && errno == EBUSY; tries++)
		usleep(20000);
}

static void on_signal(int sig)
{
	cleanup();
	_exit(128 + sig);
}

static void usage(void)
{
	fprintf(stderr, "usage: cpumeter_bench [--as-baseline]\n\n"
		"  --as-baseline  measure even when other BPF programs run on context\n"
		"                 switches: they are then part of every config, the\n"
		"                 baseline included (the report says which)\n");
}

int main(int argc, char **argv)
{
	struct quiet_report q;
	char root[CG_PATH_MAX];
	bool as_baseline = false;
	int ret;

	if (argc == 2 && !strcmp(argv[1], "--as-baseline")) {
		as_baseline = true;
	} else if (argc != 1) {
		usage();
		return 2;
	}
	if (geteuid() != 0) {
		printf("SKIP: cpumeter_bench needs root\n");
		return 0;
	}
	if (cg2_root(root)) {
		fprintf(stderr, "cpumeter_bench: no cgroup v2 hierarchy\n");
		return 1;
	}
	quiet_probe(&q, NULL, 0, 0);
	if (q.nprogs && !as_baseline) {
		fprintf(stderr, "cpumeter_bench: refusing to measure: BPF programs already "
			"run on context switches, so the \"no meter\" baseline would not be "
			"one.\n");
		quiet_print(stderr, "cpumeter_bench: ", &q);
		fprintf(stderr, "cpumeter_bench: remove them, or measure them as part of "
			"the baseline with --as-baseline (make bench-cpumeter "
			"CPUMETER_BENCH_ARGS=--as-baseline)\n");
		return 1;
	}
	quiet_print(stdout, "", &q);
	if (q.nprogs)
		printf("NOTE: --as-baseline: the programs above run in every config, the "
		       "baseline included\n");
	snprintf(pin_dir, sizeof(pin_dir), "/sys/fs/bpf/tally-bench-%d", (int)getpid());
	if (snprintf(cg_dir, sizeof(cg_dir), "%s/tally-bench-%d", root, (int)getpid()) >=
		    (int)sizeof(cg_dir) || mkdir(cg_dir, 0755)) {
		fprintf(stderr, "cpumeter_bench: cannot create %s\n", cg_dir);
		return 1;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	ret = bench();
	cleanup();
	if (access(cg_dir, F_OK) == 0)
		fprintf(stderr, "cpumeter_bench: cannot remove %s\n", cg_dir);
	quiet_probe(&q, NULL, 0, 0);
	printf("after the run: ");
	quiet_print(stdout, "", &q);
	return ret;
}
