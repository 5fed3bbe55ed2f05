/* Integration tests of the CPU meter on the host kernel, as root.
 *
 * Each test meters real processes or a real libvirt/QEMU guest and compares
 * with the kernel's own accounting (cgroup cpu.stat usage_usec,
 * /proc/TID/schedstat) and with libvirt's cpu.time. A live figure is checked
 * between two kernel readings taken just before and just after the meter's
 * (the kernel's counters move while they are read); a figure of threads that
 * have all ended must equal the kernel's to the microsecond (cpu.stat) or to
 * the nanosecond (schedstat). Everything a test makes carries the prefix
 * tally-test-<pid> (cgroups, domains, the pin directory), and main()
 * removes whatever is left, pass or fail. */
#include <bpf/bpf.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <linux/filter.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "contracts/contract.h"
#include "daemon/meter/cgroup.h"
#include "daemon/meter/cpumeter.h"
#include "ebpf/cpumeter.h"
#include "lib/errors.h"

#define MS 1000000ull

static pid_t main_pid;
static char prefix[64];          /* tally-test-<main pid> */
static char cg2[CG_PATH_MAX];    /* cgroup-v2 mount point */
static char pin_dir[128];
static char skip_reason[256];    /* set when this machine cannot run them */

/* --- helpers ------------------------------------------------------------ */

static bool skip(void)
{
	if (skip_reason[0])
		printf("SKIP: %s\n", skip_reason);
	return skip_reason[0] != '\0';
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void test_cgroup(const char *name, char out[CG_PATH_MAX])
{
	ck_assert(snprintf(out, CG_PATH_MAX, "%s/%s-%s", cg2, prefix, name) <
		  CG_PATH_MAX);
	ck_assert_msg(mkdir(out, 0755) == 0, "mkdir %s: %s", out,
		      strerror(errno));
}

/* A child does not keep the meter's pin directory open: the lock a writing
 * meter holds on it would live on in the child (clone3 runs no atfork
 * handlers) and keep the next meter out. */
static void drop_pin_dir_fds(void)
{
	char link[64], target[256];
	int fd;
	ssize_t n;

	for (fd = 3; fd < 1024; fd++) {
		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		n = readlink(link, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		if (!strcmp(target, pin_dir))
			close(fd);
	}
}

/* fork(), but the child is born in cgroup dir (clone3 CLONE_INTO_CGROUP):
 * all of its life is the cgroup's, as for a VM's threads. */
static pid_t fork_into(const char *dir)
{
	struct clone_args ca = { .flags = CLONE_INTO_CGROUP,
				 .exit_signal = SIGCHLD };
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	long pid;

	ck_assert_msg(fd >= 0, "open %s: %s", dir, strerror(errno));
	ca.cgroup = (uint64_t)fd;
	pid = syscall(SYS_clone3, &ca, sizeof(ca));
	if (pid == 0) {
		drop_pin_dir_fds();
		return 0;
	}
	close(fd);
	ck_assert_msg(pid > 0, "clone3 into %s: %s", dir, strerror(errno));
	return (pid_t)pid;
}

static void pin_to_cpu(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

/* A child process born in dir, spinning on one CPU (cpu < 0: any). It dies
 * with the test process. */
static pid_t start_burner(const char *dir, int cpu)
{
	pid_t pid = fork_into(dir);

	if (pid == 0) {
		volatile unsigned long spin = 0;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		pin_to_cpu(cpu);
		for (;;)
			spin++;
	}
	return pid;
}

static void stop_burner(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static uint64_t usage_ns(const char *dir)
{
	uint64_t usec = 0;
	int err = cg_usage_usec(dir, &usec);

	ck_assert_msg(!err, "cpu.stat of %s: %s", dir, tally_strerror(err));
	return usec * 1000;
}

static struct meter *open_meter(bool raw_tp)
{
	struct meter_opts o = { .pin_dir = pin_dir, .force_raw_tp = raw_tp };
	char why[WHY_MAX] = "";
	struct meter *m;
	int err = meter_open(&m, &o, why);

	ck_assert_msg(!err, "meter_open: %s: %s", tally_strerror(err), why);
	return m;
}

static void register_vm(struct meter *m, const char *vm, const char *dir,
			unsigned flags)
{
	struct meter_vm_spec s = { .name = vm, .cgroup_dir = dir,
				   .flags = flags };
	char why[WHY_MAX] = "";
	int err = meter_vm_register(m, &s, why);

	ck_assert_msg(!err, "register %s: %s: %s", vm, tally_strerror(err), why);
}

static struct meter_sample read_vm(struct meter *m, const char *vm)
{
	struct meter_sample s;
	int err = meter_vm_read(m, vm, &s);

	ck_assert_msg(!err, "read %s: %s", vm, tally_strerror(err));
	return s;
}

static struct meter_sample prepare_vm(struct meter *m, const char *vm,
				      uint64_t seq)
{
	struct meter_sample s;
	int err = meter_vm_prepare(m, vm, seq, &s);

	ck_assert_msg(!err, "prepare %s seq %" PRIu64 ": %s", vm, seq,
		      tally_strerror(err));
	return s;
}

static void commit_vm(struct meter *m, const char *vm, uint64_t seq)
{
	int err = meter_vm_commit(m, vm, seq);

	ck_assert_msg(!err, "commit %s seq %" PRIu64 ": %s", vm, seq,
		      tally_strerror(err));
}

/* A live figure: the meter's, read between two kernel readings lo and hi
 * (cpu.stat is in whole microseconds: hi gets one more). */
static void assert_between(const char *what, uint64_t got, uint64_t lo,
			   uint64_t hi)
{
	printf("  %-34s kernel before %12" PRIu64 "  meter %12" PRIu64
	       "  kernel after %12" PRIu64 " ns\n", what, lo, got, hi);
	ck_assert_msg(lo <= got && got <= hi, "%s: meter %" PRIu64 " ns outside "
		      "the kernel's %" PRIu64 "..%" PRIu64 " ns", what, got, lo, hi);
}

/* The CPU of a VM whose cgroup is gone: its last cpu.stat reading (whole
 * microseconds) plus its threads' own nanoseconds since, within a
 * microsecond of what cpu.stat showed at the end. Unless the kernel kept
 * some thread unfreed past the meter's wait: then that thread counts with
 * its figures at exit, short by the last microseconds of its exit (the
 * sample says how many such threads there were). */
static void assert_cpu_final(const char *what, const struct meter_sample *s,
			     uint64_t usage_ns_)
{
	uint64_t meter_ns = s->total.cpu_ns;

	printf("  %-34s meter %12" PRIu64 " ns  cpu.stat %12" PRIu64 " us%s\n",
	       what, meter_ns, usage_ns_ / 1000, s->threads_unsettled ?
	       "  (threads the kernel did not free in time: figures at exit)" : "");
	if (!s->threads_unsettled) {
		ck_assert_msg(meter_ns < usage_ns_ + 1000 && meter_ns + 1000 > usage_ns_,
			      "%s: meter %" PRIu64 " ns, cpu.stat %" PRIu64 " us", what,
			      meter_ns, usage_ns_ / 1000);
		return;
	}
	ck_assert_msg(meter_ns <= usage_ns_ + 999 && usage_ns_ - meter_ns < 1 * MS,
		      "%s: meter %" PRIu64 " ns, cpu.stat %" PRIu64 " us", what,
		      meter_ns, usage_ns_ / 1000);
}

/* The CPU of a VM whose top cgroup still exists: cpu.stat's own figure. */
static void assert_cpu_exact(const char *what, uint64_t meter_ns,
			     uint64_t usage_ns_)
{
	printf("  %-34s meter %12" PRIu64 " ns  cpu.stat %12" PRIu64 " us\n",
	       what, meter_ns, usage_ns_ / 1000);
	ck_assert_msg(meter_ns / 1000 == usage_ns_ / 1000, "%s: meter %" PRIu64
		      " ns, cpu.stat %" PRIu64 " us", what, meter_ns,
		      usage_ns_ / 1000);
}

static void setup(void)
{
	meter_unpin(pin_dir, NULL);
}

static void teardown(void)
{
	meter_unpin(pin_dir, NULL);
}

/* Entries in one of the meter's pinned maps. */
static unsigned pinned_entries(const char *map)
{
	char path[256], key[64], cur[64];
	unsigned n = 0;
	void *prev = NULL;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", pin_dir, map);
	fd = bpf_obj_get(path);
	ck_assert_msg(fd >= 0, "%s: %s", path, strerror(errno));
	while (!bpf_map_get_next_key(fd, prev, key)) {
		memcpy(cur, key, sizeof(cur));
		prev = cur;
		n++;
	}
	close(fd);
	return n;
}

/* A VM whose threads have all ended leaves nothing in the meter's maps once
 * their final figures are in and folded (or, for a thread the kernel keeps
 * unfreed, once it is settled): reads of a writer fold them. */
static void assert_maps_drain(struct meter *m, const char *vm)
{
	unsigned exits = 0, threads = 0;
	int tries;

	for (tries = 0; tries < 40; tries++) {
		read_vm(m, vm);
		exits = pinned_entries("exits");
		threads = pinned_entries("threads");
		if (!exits && !threads)
			return;
		sleep_ms(100);
	}
	ck_abort_msg("after 4 s the maps still hold %u ended and %u live threads",
		     exits, threads);
}

/* --- CPU time against cpu.stat -------------------------------------------- */

/* _i: 0 = tp_btf, 1 = the raw_tp fallback. */
START_TEST(burner_matches_cgroup_usage)
{
	struct meter *m;
	char dir[CG_PATH_MAX], vm[64];
	uint64_t lo, hi, first_lo, first_hi;
	struct meter_sample now, first;
	pid_t burner;
	int i;

	if (skip())
		return;
	m = open_meter(_i == 1);
	ck_assert_str_eq(meter_attach_kind(m), _i == 1 ? "raw_tp" : "tp_btf");
	snprintf(vm, sizeof(vm), "burner-%d", _i);
	test_cgroup(vm, dir);
	register_vm(m, vm, dir, 0);
	burner = start_burner(dir, -1);
	sleep_ms(200);

	/* The burner was born after registration: the VM's CPU is all of
	 * the cgroup's. */
	first_lo = usage_ns(dir);
	first = read_vm(m, vm);
	first_hi = usage_ns(dir) + 999;
	printf("burner (%s), 5 intervals of 400 ms:\n", meter_attach_kind(m));
	assert_between("cpu at start", first.total.cpu_ns, first_lo, first_hi);
	for (i = 0; i < 5; i++) {
		sleep_ms(400);
		lo = usage_ns(dir);
		now = read_vm(m, vm);
		hi = usage_ns(dir) + 999;
		/* The burner must have run, or the comparison proves nothing. */
		ck_assert_uint_gt(now.total.cpu_ns - first.total.cpu_ns, 20 * MS);
		assert_between("cpu so far", now.total.cpu_ns, lo, hi);
	}
	/* It ends: the final figure is the kernel's, to the microsecond. */
	stop_burner(burner);
	now = prepare_vm(m, vm, 0);
	assert_cpu_exact("whole life, ended", now.total.cpu_ns, usage_ns(dir));
	/* Nothing but the burner ran in the cgroup: no vCPU, no run delay. */
	ck_assert_uint_eq(now.total.run_delay_count, 0);
	/* Its final figures are folded in: nothing is left in the maps. */
	assert_maps_drain(m, vm);
	ck_assert_int_eq(meter_vm_unregister(m, vm), 0);
	ck_assert_int_eq(rmdir(dir), 0);
	meter_close(m);
}
END_TEST

/* --- threads that come and go between two reads ---------------------------- */

static void *short_thread(void *arg)
{
	volatile unsigned long spin = 0;
	struct timespec t0, t;

	(void)arg;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
	do {
		spin++;
		clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	} while ((t.tv_sec - t0.tv_sec) * 1000000000L + t.tv_nsec - t0.tv_nsec < 3000000);
	return NULL;
}

/* A process born in dir: waves of threads that burn 3 ms each and end, and
 * children that do the same, none of them ever seen alive by a read. */
static void churn(const char *dir, int waves)
{
	pid_t pid = fork_into(dir);
	int status, w, i;

	if (pid == 0) {
		for (w = 0; w < waves; w++) {
			pthread_t t[8];
			pid_t kid = fork();

			if (kid == 0) {
				short_thread(NULL);
				_exit(0);
			}
			for (i = 0; i < 8; i++)
				pthread_create(&t[i], NULL, short_thread, NULL);
			for (i = 0; i < 8; i++)
				pthread_join(t[i], NULL);
			waitpid(kid, NULL, 0);
		}
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

START_TEST(short_threads_counted)
{
	char dir[CG_PATH_MAX], vm[64];
	struct meter_sample s;
	struct meter *m;

	if (skip())
		return;
	m = open_meter(_i == 1);
	snprintf(vm, sizeof(vm), "churn-%d", _i);
	test_cgroup(vm, dir);
	register_vm(m, vm, dir, METER_VM_ALL_VCPU);
	churn(dir, 20);
	s = prepare_vm(m, vm, 0);
	printf("churn (%s): 20 waves of 8 threads and a child, 3 ms each:\n",
	       meter_attach_kind(m));
	ck_assert_uint_gt(s.total.cpu_ns, 20 * 9 * 3 * MS);
	assert_cpu_exact("all ended before the read", s.total.cpu_ns, usage_ns(dir));
	commit_vm(m, vm, 0);
	churn(dir, 10);
	s = prepare_vm(m, vm, 1);
	assert_cpu_exact("and again", s.total.cpu_ns, usage_ns(dir));
	assert_maps_drain(m, vm);
	ck_assert_int_eq(meter_vm_unregister(m, vm), 0);
	ck_assert_int_eq(rmdir(dir), 0);
	meter_close(m);
}
END_TEST

/* --- restart: nothing lost, nothing counted twice --------------------------- */

START_TEST(restart_loses_and_repeats_nothing)
{
	const char *vm = "restart";
	struct meter *m;
	struct meter_sample s;
	char dir[CG_PATH_MAX];
	uint64_t u0, billed0, billed = 0;
	pid_t burner, late;

	if (skip())
		return;
	m = open_meter(false);
	test_cgroup(vm, dir);
	register_vm(m, vm, dir, 0);
	burner = start_burner(dir, -1);
	sleep_ms(100);

	/* Record 0 (whatever ran since registration), stored and committed. */
	u0 = usage_ns(dir);
	s = prepare_vm(m, vm, 0);
	billed0 = s.delta.cpu_ns;
	commit_vm(m, vm, 0);
	printf("restart:\n");
	assert_between("record 0", billed0, u0, usage_ns(dir) + 999);

	/* The daemon stops mid-interval; meanwhile a second burner is born,
	 * runs and ends, unseen by any read: the programs keep its figures. */
	sleep_ms(300);
	meter_close(m);
	late = start_burner(dir, -1);
	sleep_ms(200);
	stop_burner(late);
	sleep_ms(100);
	m = open_meter(false);
	s = prepare_vm(m, vm, 1);
	billed += s.delta.cpu_ns;
	commit_vm(m, vm, 1);

	/* Record 2 is prepared, then the daemon dies before storing it: after
	 * the restart its last durable record is 1, so record 2 is made again
	 * and must hold everything since record 1. */
	sleep_ms(200);
	s = prepare_vm(m, vm, 2);
	meter_close(m);
	sleep_ms(300);
	m = open_meter(false);
	commit_vm(m, vm, 1);            /* recovery: a no-op, 1 is committed */
	s = prepare_vm(m, vm, 2);
	billed += s.delta.cpu_ns;

	/* This time record 2 was stored, and the daemon died before the
	 * commit: recovery commits it, and record 3 starts after it. */
	meter_close(m);
	sleep_ms(300);
	m = open_meter(false);
	commit_vm(m, vm, 2);
	ck_assert_int_eq(meter_vm_commit(m, vm, 7), TALLY_E_NOTFOUND);
	ck_assert_int_eq(meter_vm_prepare(m, vm, 1, &s), TALLY_E_STATE);

	/* The VM ends; record 3 holds the rest, and records 0-3 add up to
	 * all the cgroup ever used, to the microsecond. */
	stop_burner(burner);
	s = prepare_vm(m, vm, 3);
	billed += s.delta.cpu_ns;
	commit_vm(m, vm, 3);
	ck_assert_uint_eq(billed0 + billed, s.total.cpu_ns);
	assert_cpu_exact("records 0-3 vs cpu.stat", billed0 + billed, usage_ns(dir));
	ck_assert_int_eq(meter_vm_unregister(m, vm), 0);
	ck_assert_int_eq(rmdir(dir), 0);
	meter_close(m);
}
END_TEST

/* --- a VM that ends between two reads -------------------------------------- */

START_TEST(ended_vm_reported_in_full)
{
	const char *vm = "ends";
	struct meter *m;
	struct meter_sample s;
	char dir[CG_PATH_MAX];
	uint64_t u0, u_end;
	pid_t burner;
	char (*names)[METER_VM_NAME_MAX + 1];
	size_t n;

	if (skip())
		return;
	m = open_meter(false);
	test_cgroup(vm, dir);
	register_vm(m, vm, dir, 0);
	burner = start_burner(dir, -1);
	sleep_ms(100);
	u0 = usage_ns(dir);
	s = prepare_vm(m, vm, 0);
	commit_vm(m, vm, 0);
	printf("ended VM:\n");
	assert_between("record 0", s.total.cpu_ns, u0, usage_ns(dir) + 999);

	/* It runs on, ends, and its cgroup is removed before the next read. */
	sleep_ms(500);
	stop_burner(burner);
	u_end = usage_ns(dir);
	ck_assert_int_eq(rmdir(dir), 0);

	s = prepare_vm(m, vm, 1);
	assert_cpu_final("whole life, read after the end", &s, u_end);
	ck_assert_uint_gt(s.delta.cpu_ns, 50 * MS);
	ck_assert_uint_eq(s.ncgroups, 1);
	ck_assert_uint_eq(s.ncgroups_gone, 1);
	commit_vm(m, vm, 1);
	/* Nothing more comes from a VM that is gone. */
	s = prepare_vm(m, vm, 2);
	ck_assert_uint_eq(s.delta.cpu_ns, 0);
	ck_assert_int_eq(meter_vm_unregister(m, vm), 0);
	ck_assert_int_eq(meter_vm_read(m, vm, &s), TALLY_E_NOTFOUND);
	ck_assert_int_eq(meter_vm_list(m, &names, &n), 0);
	ck_assert_uint_eq(n, 0);
	free(names);
	meter_close(m);
}
END_TEST

/* --- vCPU run-queue delay against schedstat --------------------------------- */

/* /proc/TID/schedstat: run time, run delay, times switched in. */
static uint64_t schedstat_run_delay(pid_t tid, uint64_t *switched_in)
{
	char path[64];
	unsigned long long run, delay, pcount;
	FILE *f;
	int n;

	snprintf(path, sizeof(path), "/proc/%d/schedstat", (int)tid);
	f = fopen(path, "re");
	ck_assert_msg(f, "open %s: %s", path, strerror(errno));
	n = fscanf(f, "%llu %llu %llu", &run, &delay, &pcount);
	fclose(f);
	ck_assert_int_eq(n, 3);
	if (switched_in)
		*switched_in = pcount;
	return delay;
}

/* Kill a burner and wait until it has ended, leaving it a zombie whose
 * schedstat still holds its final figures. */
static void end_burner_keep_zombie(pid_t pid)
{
	siginfo_t si;

	kill(pid, SIGKILL);
	ck_assert_int_eq(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0);
}

START_TEST(run_delay_matches_schedstat)
{
	const char *vm = "rundelay";
	char vdir[CG_PATH_MAX], odir[CG_PATH_MAX];
	struct meter_sample s, s2;
	uint64_t d_lo, d_hi, n_lo, n_hi, d2, n2;
	struct meter *m;
	pid_t vcpu, other;
	int i;

	if (skip())
		return;
	m = open_meter(_i == 1);        /* 0: tp_btf, 1: raw_tp */
	test_cgroup("rundelay-vcpu", vdir);
	test_cgroup("rundelay-other", odir);
	register_vm(m, vm, vdir, METER_VM_ALL_VCPU);
	/* Two burners share CPU 1: each waits while the other runs. The vCPU
	 * was born metered: all of its waits are the VM's. */
	vcpu = start_burner(vdir, 1);
	other = start_burner(odir, 1);

	printf("run delay (%s, two burners on CPU 1):\n", meter_attach_kind(m));
	for (i = 0; i < 3; i++) {
		sleep_ms(700);
		d_lo = schedstat_run_delay(vcpu, &n_lo);
		s = read_vm(m, vm);
		d_hi = schedstat_run_delay(vcpu, &n_hi);
		assert_between("vCPU run delay", s.total.run_delay_ns, d_lo, d_hi);
		assert_between("vCPU switch-ins (a count)", s.total.run_delay_count,
			       n_lo, n_hi);
	}
	/* Each gets about half the CPU, so the vCPU waited about 1 s. */
	ck_assert_uint_gt(s.total.run_delay_ns, 500 * MS);

	/* The vCPU thread ends (a VM stopping): its figures are final, and
	 * the meter's are the kernel's to the nanosecond. */
	end_burner_keep_zombie(vcpu);
	d2 = schedstat_run_delay(vcpu, &n2);
	s2 = read_vm(m, vm);
	printf("  ended vCPU: meter %" PRIu64 " ns in %" PRIu64 " waits, schedstat "
	       "%" PRIu64 " ns in %" PRIu64 "\n", s2.total.run_delay_ns,
	       s2.total.run_delay_count, d2, n2);
	ck_assert_uint_eq(s2.total.run_delay_ns, d2);
	ck_assert_uint_eq(s2.total.run_delay_count, n2);
	/* Reaped and freed: the programs' final figures, the same (or, if the
	 * kernel did not free it in time, its figures at exit: no more). */
	waitpid(vcpu, NULL, 0);
	s2 = prepare_vm(m, vm, 0);
	printf("  reaped vCPU: meter %" PRIu64 " ns in %" PRIu64 " waits%s\n",
	       s2.total.run_delay_ns, s2.total.run_delay_count,
	       s2.threads_unsettled ? " (not freed in time: figures at exit)" : "");
	if (!s2.threads_unsettled) {
		ck_assert_uint_eq(s2.total.run_delay_ns, d2);
		ck_assert_uint_eq(s2.total.run_delay_count, n2);
	} else {
		ck_assert_uint_le(s2.total.run_delay_ns, d2);
		ck_assert_uint_le(s2.total.run_delay_count, n2);
	}
	stop_burner(other);
	ck_assert_int_eq(meter_vm_unregister(m, vm), 0);
	ck_assert_int_eq(rmdir(vdir), 0);
	ck_assert_int_eq(rmdir(odir), 0);
	meter_close(m);
}
END_TEST

/* --- what a context switch pays ------------------------------------------------ */

/* Two processes born in dir bounce a byte over pipes n times: 2n context
 * switches, or more. */
static void ping_pong(const char *dir, int n)
{
	int ab[2], ba[2], i, status;
	pid_t a, b;
	char c = 0;

	ck_assert(pipe(ab) == 0 && pipe(ba) == 0);
	a = fork_into(dir);
	if (a == 0) {
		for (i = 0; i < n; i++)
			if (write(ab[1], &c, 1) != 1 || read(ba[0], &c, 1) != 1)
				_exit(1);
		_exit(0);
	}
	b = fork_into(dir);
	if (b == 0) {
		for (i = 0; i < n; i++)
			if (read(ab[0], &c, 1) != 1 || write(ba[1], &c, 1) != 1)
				_exit(1);
		_exit(0);
	}
	close(ab[0]);
	close(ab[1]);
	close(ba[0]);
	close(ba[1]);
	ck_assert_int_eq(waitpid(a, &status, 0), a);
	ck_assert(WIFEXITED(status) && !WEXITSTATUS(status));
	ck_assert_int_eq(waitpid(b, &status, 0), b);
	ck_assert(WIFEXITED(status) && !WEXITSTATUS(status));
}

/* How often the meter's programs ran, by the kernel's BPF statistics. */
static uint64_t meter_prog_runs(void)
{
	static const char *const links[] = { "link_exit", "link_free" };
	uint64_t runs = 0;
	size_t i;

	for (i = 0; i < 2; i++) {
		struct bpf_link_info li = {};
		struct bpf_prog_info pi = {};
		__u32 len = sizeof(li);
		char path[256];
		int lfd, pfd;

		snprintf(path, sizeof(path), "%s/%s", pin_dir, links[i]);
		lfd = bpf_obj_get(path);
		ck_assert_msg(lfd >= 0, "%s: %s", path, strerror(errno));
		ck_assert_int_eq(bpf_obj_get_info_by_fd(lfd, &li, &len), 0);
		pfd = bpf_prog_get_fd_by_id(li.prog_id);
		ck_assert_int_ge(pfd, 0);
		len = sizeof(pi);
		ck_assert_int_eq(bpf_obj_get_info_by_fd(pfd, &pi, &len), 0);
		runs += pi.run_cnt;
		close(pfd);
		close(lfd);
	}
	return runs;
}

/* The meter's programs run when a thread ends, never when one is switched:
 * 100000 round trips between two metered processes (at least 200000
 * context switches of metered tasks, and as many of the host's) run them
 * once per process at exit and free, and not once more. */
START_TEST(no_program_runs_on_a_context_switch)
{
	char dir[CG_PATH_MAX];
	uint64_t before, after;
	struct meter *m;
	int stats;

	if (skip())
		return;
	m = open_meter(_i == 1);
	test_cgroup(_i ? "switch-raw" : "switch-btf", dir);
	register_vm(m, "switches", dir, METER_VM_ALL_VCPU);
	stats = bpf_enable_stats(BPF_STATS_RUN_TIME);
	ck_assert_msg(stats >= 0, "BPF_ENABLE_STATS: %s", strerror(errno));
	before = meter_prog_runs();
	ping_pong(dir, 100000);
	/* A task is freed after an RCU grace period, which can outlast the
	 * parent's waitpid: wait (at most 10 s) for both frees to be seen. */
	for (int tries = 0; tries < 100; tries++) {
		after = meter_prog_runs();
		if (after - before >= 4)
			break;
		usleep(100000);
	}
	close(stats);
	printf("100000 round trips (%s): the meter's programs ran %" PRIu64
	       " times\n", meter_attach_kind(m), after - before);
	/* Two processes: an exit and a free each. The programs also run (and
	 * return at once) for every other task on the host that ends
	 * meanwhile, and the machine is shared: far fewer than one run per
	 * hundred switches is what says that no switch runs them. */
	ck_assert_uint_ge(after - before, 4);
	ck_assert_uint_lt(after - before, 2000);
	ck_assert_int_eq(meter_vm_unregister(m, "switches"), 0);
	ck_assert_int_eq(rmdir(dir), 0);
	meter_close(m);
}
END_TEST

/* --- the operator's shares ------------------------------------------------------ */

/* The window logic on made-up readings (no root needed). */
START_TEST(rate_windows)
{
	struct meter_totals t = { 0 };
	struct meter_rate r = { 0 };
	struct meter_share sh;
	const uint64_t s = 1000000000ull;

	ck_assert(!meter_rate_at(&r, &t, 10 * s, &sh));         /* first: unknown */
	t.cpu_ns = s / 4;
	t.run_delay_ns = s / 10;
	ck_assert(meter_rate_at(&r, &t, 10 * s + s / 2, &sh));  /* 0.5 s on */
	ck_assert_uint_eq(sh.window_ns, s / 2);
	ck_assert_int_eq((int)(sh.cpu_pct * 100 + 0.5), 5000);
	ck_assert_int_eq((int)(sh.wait_pct * 100 + 0.5), 2000);
	t.cpu_ns = s;
	ck_assert(meter_rate_at(&r, &t, 11 * s, &sh));          /* 1 s: new anchor */
	ck_assert_uint_eq(sh.window_ns, s);
	ck_assert_int_eq((int)(sh.cpu_pct + 0.5), 100);
	t.cpu_ns = s + s / 4;
	ck_assert(meter_rate_at(&r, &t, 11 * s + s / 4, &sh));  /* from the older */
	ck_assert_uint_eq(sh.window_ns, s + s / 4);
	ck_assert_int_eq((int)(sh.cpu_pct + 0.5), 100);
	t.cpu_ns = s / 2;                                        /* went back */
	ck_assert(!meter_rate_at(&r, &t, 12 * s, &sh));
	ck_assert(meter_rate_at(&r, &t, 13 * s, &sh));
	ck_assert_int_eq((int)(sh.cpu_pct * 100), 0);
}
END_TEST

/* A burner's share of a CPU from the meter (read by a second, read-only
 * meter), against cpu.stat's growth over the same window: each meter read
 * lies between two cpu.stat reads. */
START_TEST(rate_of_live_vm)
{
	struct meter_opts ro = { .pin_dir = pin_dir, .read_only = true };
	char dir[CG_PATH_MAX], why[WHY_MAX] = "";
	uint64_t a0, b0, a1, b1;
	struct meter *m, *reader;
	struct meter_rate r = { 0 };
	struct meter_share sh;
	struct meter_sample s;
	double lo, hi;
	pid_t burner;

	if (skip())
		return;
	m = open_meter(false);
	test_cgroup("rate", dir);
	register_vm(m, "rate-vm", dir, 0);
	burner = start_burner(dir, -1);
	ck_assert_msg(meter_open(&reader, &ro, why) == 0, "read-only: %s", why);
	sleep_ms(100);
	a0 = usage_ns(dir);
	s = read_vm(reader, "rate-vm");
	ck_assert(!meter_rate_update(&r, &s.total, &sh));
	b0 = usage_ns(dir) + 999;
	sleep_ms(1000);
	a1 = usage_ns(dir);
	s = read_vm(reader, "rate-vm");
	ck_assert(meter_rate_update(&r, &s.total, &sh));
	b1 = usage_ns(dir) + 999;
	lo = 100.0 * (double)(a1 - b0) / (double)sh.window_ns;
	hi = 100.0 * (double)(b1 - a0) / (double)sh.window_ns;
	printf("rate: burner at %.2f%% of a CPU over %.3f s (cpu.stat: %.2f..%.2f%%)\n",
	       sh.cpu_pct, (double)sh.window_ns / 1e9, lo, hi);
	ck_assert(sh.cpu_pct > 5);
	ck_assert_msg(sh.cpu_pct >= lo && sh.cpu_pct <= hi,
		      "meter %.2f%%, cpu.stat %.2f..%.2f%%", sh.cpu_pct, lo, hi);
	ck_assert(sh.wait_pct == 0);    /* not a vCPU */
	/* A read-only meter changes nothing. */
	ck_assert_int_eq(meter_vm_commit(reader, "rate-vm", 0), TALLY_E_STATE);
	meter_close(reader);
	stop_burner(burner);
	ck_assert_int_eq(meter_vm_unregister(m, "rate-vm"), 0);
	ck_assert_int_eq(rmdir(dir), 0);
	meter_close(m);
}
END_TEST

/* --- the pin directory -------------------------------------------------------- */

/* A running meter holds its pin directory: detaching it is refused with the
 * holder named; once it is closed, everything goes, directory included. An
 * earlier version's pins are refused at open with the command to remove
 * them. */
START_TEST(pin_dir_held_then_removed)
{
	char why[WHY_MAX] = "", path[256];
	struct meter_opts o = { .pin_dir = pin_dir };
	struct meter *m, *second;
	int status, fd;
	pid_t pid;

	if (skip())
		return;
	m = open_meter(false);
	pid = fork();
	if (pid == 0)
		_exit(meter_unpin(pin_dir, why) == TALLY_E_STATE &&
		      strstr(why, "in use by") ? 0 : 1);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "detaching a meter in use was not refused");
	ck_assert_int_eq(meter_open(&second, &o, why), TALLY_E_STATE);
	printf("second writer: %s\n", why);
	ck_assert_ptr_nonnull(strstr(why, "in use by"));
	meter_close(m);
	ck_assert_int_eq(meter_unpin(pin_dir, why), 0);
	ck_assert_int_ne(access(pin_dir, F_OK), 0);

	/* A pin of an earlier version (its switch-time link, here a stand-in
	 * map under its name). */
	m = open_meter(false);
	meter_close(m);
	snprintf(path, sizeof(path), "%s/link_switch", pin_dir);
	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "stale", 4, 4, 1, NULL);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bpf_obj_pin(fd, path), 0);
	close(fd);
	ck_assert_int_eq(meter_open(&second, &o, why), TALLY_E_STATE);
	printf("earlier version: %s\n", why);
	ck_assert_ptr_nonnull(strstr(why, "meter-detach"));
	ck_assert_int_eq(meter_unpin(pin_dir, why), 0);
	ck_assert_int_ne(access(pin_dir, F_OK), 0);
}
END_TEST

/* --- a real libvirt guest ------------------------------------------------------ */

static virConnectPtr connect_libvirt(void)
{
	virConnectPtr c;
	int tries;

	c = virConnectOpen("qemu:///system");
	if (c)
		return c;
	/* No systemd here: start the daemons ourselves. */
	if (system("pgrep -x virtlogd >/dev/null || virtlogd -d") != 0 ||
	    system("pgrep -x libvirtd >/dev/null || libvirtd -d") != 0)
		return NULL;
	for (tries = 0; tries < 50 && !c; tries++) {
		sleep_ms(200);
		c = virConnectOpen("qemu:///system");
	}
	return c;
}

/* The tiny guest of scripts/build-guest-image.sh (the one place that picks
 * the kernel), burning one vCPU through its tally.burn argument. The make
 * target hands over a world-readable copy in TALLY_GUEST_DIR. */
static char guest_dir[512];

static void find_guest(void)
{
	const char *dir = getenv("TALLY_GUEST_DIR");
	const char *src = getenv("TALLY_SRCDIR");
	char path[600];

	snprintf(guest_dir, sizeof(guest_dir), "%s", dir ? dir : "");
	if (!dir)
		snprintf(guest_dir, sizeof(guest_dir), "%s/build/guest", src ? src : ".");
	snprintf(path, sizeof(path), "%s/vmlinuz", guest_dir);
	ck_assert_msg(access(path, R_OK) == 0,
		      "no tiny guest at %s: run `make guest-image` (make check-ebpf does)",
		      guest_dir);
}

static virDomainPtr boot_guest(virConnectPtr c, const char *name)
{
	char xml[3072];
	virDomainPtr d;

	snprintf(xml, sizeof(xml),
		 "<domain type='qemu'><name>%s</name>"
		 "<memory unit='MiB'>128</memory><vcpu>1</vcpu>"
		 "<os><type arch='x86_64' machine='pc'>hvm</type>"
		 "<kernel>%s/vmlinuz</kernel><initrd>%s/initrd.img</initrd>"
		 "<cmdline>console=ttyS0 quiet tally.burn=100</cmdline></os>"
		 "<on_poweroff>destroy</on_poweroff>"
		 "<devices><serial type='pty'/><console type='pty'/>"
		 "<memballoon model='none'/></devices></domain>",
		 name, guest_dir, guest_dir);
	d = virDomainCreateXML(c, xml, 0);
	ck_assert_msg(d, "cannot start guest %s: %s", name,
		      virGetLastErrorMessage());
	return d;
}

static uint64_t libvirt_cpu_stats(virDomainPtr d)
{
	virTypedParameter params[8];
	unsigned long long v = 0;
	int n;

	n = virDomainGetCPUStats(d, params, 8, -1, 1, 0);
	ck_assert_msg(n > 0, "virDomainGetCPUStats: %s",
		      virGetLastErrorMessage());
	ck_assert(virTypedParamsGetULLong(params, n, VIR_DOMAIN_CPU_STATS_CPUTIME,
					  &v) == 1);
	return v;
}

static uint64_t libvirt_info_cpu(virDomainPtr d)
{
	virDomainInfo info;

	ck_assert_int_eq(virDomainGetInfo(d, &info), 0);
	return info.cpuTime;
}

/* |got - want| within ppm parts per million of want, plus slack_ns for the
 * granularity of libvirt's figure (its readings are taken apart from the
 * meter's, with no bracket to hold them). */
static void assert_close_ppm(const char *what, uint64_t got, uint64_t want,
			     uint64_t ppm, uint64_t slack_ns)
{
	uint64_t d = got > want ? got - want : want - got;

	printf("  %-34s meter %12" PRIu64 " ns  libvirt %12" PRIu64 " ns  diff %8"
	       PRIu64 " ns\n", what, got, want, d);
	ck_assert_msg(d * 1000000 <= want * ppm + slack_ns * 1000000, "%s: meter %"
		      PRIu64 " vs %" PRIu64 " ns: off by %" PRIu64 " ns (> %" PRIu64
		      " ppm + %" PRIu64 " ns)", what, got, want, d, ppm, slack_ns);
}

START_TEST(libvirt_vm_matches_cgroup_and_libvirt)
{
	char name[96];
	struct meter_sample s0, s1, s2;
	uint64_t a0, b0, a1, b1, c0, c1, i0, i1;
	struct cg_domain cgd;
	char why[WHY_MAX] = "";
	virConnectPtr conn;
	virDomainPtr dom;
	struct meter *m;
	int err, waited;

	if (skip())
		return;
	conn = connect_libvirt();
	ck_assert_msg(conn, "cannot reach libvirtd: %s", virGetLastErrorMessage());
	find_guest();
	snprintf(name, sizeof(name), "%s-vm", prefix);
	dom = boot_guest(conn, name);
	sleep_ms(3000);                     /* the guest boots and burns */

	err = cg_domain_resolve(name, &cgd, why);
	ck_assert_msg(!err, "resolve %s: %s", name, why);
	printf("guest %s: QEMU pid %d, cgroup %s, memory %s\n", name,
	       (int)cgd.pid, cgd.v2_dir, cgd.mem_dir);
	m = open_meter(false);
	err = meter_vm_register_domain(m, name, "guest", 128, why);
	ck_assert_msg(!err, "register domain: %s: %s", tally_strerror(err), why);
	sleep_ms(500);

	a0 = usage_ns(cgd.v2_dir);
	s0 = read_vm(m, "guest");
	b0 = usage_ns(cgd.v2_dir) + 999;
	c0 = libvirt_cpu_stats(dom);
	i0 = libvirt_info_cpu(dom);
	/* Until the guest has used 2 s of CPU (8 s on an idle host, longer on
	 * a busy one), so that the comparisons mean something. */
	for (waited = 0; waited < 60 && usage_ns(cgd.v2_dir) - a0 < 2000 * MS; waited++)
		sleep_ms(1000);
	a1 = usage_ns(cgd.v2_dir);
	s1 = read_vm(m, "guest");
	b1 = usage_ns(cgd.v2_dir) + 999;
	c1 = libvirt_cpu_stats(dom);
	i1 = libvirt_info_cpu(dom);

	printf("libvirt guest over %d s (%u cgroups):\n", waited, s1.ncgroups);
	ck_assert_uint_gt(s1.total.cpu_ns - s0.total.cpu_ns, 1000 * MS);
	/* QEMU's threads were all in the VM's cgroups since registration:
	 * the meter's growth is the cgroup's, between the two brackets. */
	assert_between("vs cgroup usage_usec", s1.total.cpu_ns - s0.total.cpu_ns,
		       a1 - b0, b1 - a0);
	assert_close_ppm("vs virDomainGetCPUStats", s1.total.cpu_ns - s0.total.cpu_ns,
			 c1 - c0, 5000, 0);
	/* virDomainGetInfo counts in 10 ms ticks: two readings, two ticks. */
	assert_close_ppm("vs virDomainGetInfo", s1.total.cpu_ns - s0.total.cpu_ns,
			 i1 - i0, 5000, 20 * MS);
	/* root, emulator and vcpu0 at least */
	ck_assert_uint_ge(s1.ncgroups, 3);
	ck_assert_uint_gt(s1.total.run_delay_count, s0.total.run_delay_count);
	ck_assert_uint_eq(s1.mem_alloc_mib, 128);
	ck_assert_uint_gt(s1.mem_current_bytes, 1 << 20);
	ck_assert_uint_ge(s1.mem_peak_bytes, s1.mem_current_bytes);

	/* The guest is destroyed between two reads: its usage up to the end
	 * is there, its cgroups are marked gone, and once its threads' final
	 * figures are in, nothing of it is left in the maps. */
	ck_assert_int_eq(virDomainDestroy(dom), 0);
	virDomainFree(dom);
	s2 = prepare_vm(m, "guest", 0);
	ck_assert_uint_ge(s2.total.cpu_ns, s1.total.cpu_ns);
	ck_assert_uint_ge(s2.total.run_delay_ns, s1.total.run_delay_ns);
	ck_assert_uint_eq(s2.ncgroups_gone, s2.ncgroups);
	ck_assert_uint_eq(s2.mem_peak_bytes, s1.mem_peak_bytes);
	assert_maps_drain(m, "guest");
	ck_assert_int_eq(meter_vm_unregister(m, "guest"), 0);
	meter_close(m);
	virConnectClose(conn);
}
END_TEST

/* --- clear errors ----------------------------------------------------------------- */

/* Runs meter_open in a child with `how` applied; returns the error code
 * and the child's why text. */
static int open_in_child(void (*how)(void), const struct meter_opts *o,
			 char *why)
{
	int pfd[2], status;
	pid_t pid;
	ssize_t n;

	ck_assert(pipe(pfd) == 0);
	pid = fork();
	ck_assert(pid >= 0);
	if (pid == 0) {
		struct meter *m;
		char w[WHY_MAX] = "";
		int err;

		close(pfd[0]);
		how();
		err = meter_open(&m, o, w);
		if (write(pfd[1], w, strlen(w) + 1) < 0)
			_exit(255);
		_exit(err);
	}
	close(pfd[1]);
	n = read(pfd[0], why, WHY_MAX - 1);
	why[n > 0 ? n : 0] = '\0';
	close(pfd[0]);
	ck_assert(waitpid(pid, &status, 0) == pid);
	ck_assert(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static void become_nobody(void)
{
	if (setgid(65534) || setuid(65534))
		_exit(254);
}

/* A kernel without bpf(): the system call answers ENOSYS. */
static void forbid_bpf(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_bpf, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = 4, .filter = f };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog))
		_exit(254);
}

static void as_is(void)
{
}

START_TEST(clear_errors)
{
	struct meter_opts o = { .pin_dir = pin_dir };
	char why[WHY_MAX];
	int err;

	if (skip())
		return;
	err = open_in_child(become_nobody, &o, why);
	printf("not root: %s\n", why);
	ck_assert_int_eq(err, TALLY_E_UNAUTHORIZED);
	ck_assert_ptr_nonnull(strstr(why, "root"));

	err = open_in_child(forbid_bpf, &o, why);
	printf("no bpf(): %s\n", why);
	ck_assert_int_eq(err, TALLY_E_STATE);
	ck_assert_ptr_nonnull(strstr(why, "no bpf() system call"));
	/* An open that fails leaves no pin directory it made behind. */
	ck_assert_int_ne(access(pin_dir, F_OK), 0);

	o.cgroup2_root = "/tmp";
	err = open_in_child(as_is, &o, why);
	printf("no cgroup v2: %s\n", why);
	ck_assert_int_eq(err, TALLY_E_NOTFOUND);
	ck_assert_ptr_nonnull(strstr(why, "cgroup v2"));

	o.cgroup2_root = NULL;
	o.pin_dir = "/tmp/tally-not-bpffs/meter";
	err = open_in_child(as_is, &o, why);
	printf("pin dir off bpffs: %s\n", why);
	ck_assert_int_eq(err, TALLY_E_IO);

	o.pin_dir = pin_dir;
	o.read_only = true;
	err = open_in_child(as_is, &o, why);
	printf("nothing pinned: %s\n", why);
	ck_assert_int_eq(err, TALLY_E_NOTFOUND);
}
END_TEST

START_TEST(bad_registrations_refused)
{
	struct meter *m;
	struct meter_vm_spec s = { 0 };
	struct meter_sample smp;
	char dir[CG_PATH_MAX], why[WHY_MAX];

	if (skip())
		return;
	m = open_meter(false);
	test_cgroup("bad", dir);
	s.cgroup_dir = dir;
	s.name = "";
	ck_assert_int_eq(meter_vm_register(m, &s, why), TALLY_E_INVALID);
	s.name = "a/b";
	ck_assert_int_eq(meter_vm_register(m, &s, why), TALLY_E_INVALID);
	s.name = "x";
	s.cgroup_dir = "/tmp";
	ck_assert_int_eq(meter_vm_register(m, &s, why), TALLY_E_INVALID);
	ck_assert_ptr_nonnull(strstr(why, "not a cgroup-v2 directory"));
	s.cgroup_dir = dir;
	ck_assert_int_eq(meter_vm_register(m, &s, why), 0);
	ck_assert_int_eq(meter_vm_register(m, &s, why), 0);  /* again: kept */
	s.name = "y";
	ck_assert_int_eq(meter_vm_register(m, &s, why), TALLY_E_EXISTS);
	printf("taken cgroup: %s\n", why);
	ck_assert_int_eq(meter_vm_read(m, "y", &smp), TALLY_E_NOTFOUND);
	ck_assert_int_eq(meter_vm_unregister(m, "x"), 0);
	ck_assert_int_eq(rmdir(dir), 0);
	meter_close(m);
}
END_TEST

/* --- libvirt layouts (no root needed) ---------------------------------------------- */

START_TEST(libvirt_cgroup_layouts)
{
	const char *plain = "/machine/qemu-3-web.libvirt-qemu/vcpu0";
	const char *sd = "/machine.slice/machine-qemu\\x2d3\\x2dweb.scope/libvirt/emulator";

	ck_assert_uint_eq(cg_libvirt_vm_prefix(plain),
			  strlen("/machine/qemu-3-web.libvirt-qemu"));
	ck_assert_uint_eq(cg_libvirt_vm_prefix(sd),
			  strlen("/machine.slice/machine-qemu\\x2d3\\x2dweb.scope"));
	ck_assert_uint_eq(cg_libvirt_vm_prefix("/machine/qemu-1-a.libvirt-qemu"),
			  strlen("/machine/qemu-1-a.libvirt-qemu"));
	ck_assert_uint_eq(cg_libvirt_vm_prefix("/"), 0);
	ck_assert_uint_eq(cg_libvirt_vm_prefix("/machine/lxc-1-a.libvirt-lxc"), 0);
	ck_assert_uint_eq(cg_libvirt_vm_prefix("/machine.slice/machine-lxc.scope"), 0);
	ck_assert_uint_eq(cg_libvirt_vm_prefix("/user.slice/session-2.scope"), 0);
	ck_assert(cg_is_vcpu_name("vcpu0"));
	ck_assert(cg_is_vcpu_name("vcpu17"));
	ck_assert(!cg_is_vcpu_name("vcpu"));
	ck_assert(!cg_is_vcpu_name("vcpu1a"));
	ck_assert(!cg_is_vcpu_name("emulator"));
	ck_assert(!cg_is_vcpu_name("iothread1"));
}
END_TEST

/* --- runner ----------------------------------------------------------------------- */

static void find_skip_reason(void)
{
	if (geteuid() != 0) {
		snprintf(skip_reason, sizeof(skip_reason), "needs root");
		return;
	}
	if (cg2_root(cg2)) {
		snprintf(skip_reason, sizeof(skip_reason),
			 "no cgroup v2 hierarchy mounted");
		return;
	}
	if (access("/sys/kernel/btf/vmlinux", R_OK)) {
		snprintf(skip_reason, sizeof(skip_reason),
			 "kernel without BTF (/sys/kernel/btf/vmlinux)");
	}
}

/* Removes what any test left behind, whatever way it ended. */
static void cleanup_all(void)
{
	char cmd[1024], why[WHY_MAX] = "";
	virConnectPtr c;
	int i, n;

	c = virConnectOpen("qemu:///system");
	if (c) {
		virDomainPtr *doms = NULL;

		n = virConnectListAllDomains(c, &doms, 0);
		for (i = 0; i < n; i++) {
			if (!strncmp(virDomainGetName(doms[i]), prefix,
				     strlen(prefix)))
				virDomainDestroy(doms[i]);
			virDomainFree(doms[i]);
		}
		free(doms);
		virConnectClose(c);
	}
	if (cg2[0]) {
		snprintf(cmd, sizeof(cmd),
			 "for d in %s/%s-*; do [ -d \"$d\" ] || continue; "
			 "echo 1 > \"$d/cgroup.kill\"; sleep 0.2; rmdir \"$d\"; "
			 "done", cg2, prefix);
		if (system(cmd) != 0)
			fprintf(stderr, "cleanup: %s failed\n", cmd);
	}
	if (meter_unpin(pin_dir, why))
		fprintf(stderr, "cleanup: %s\n", why);
}

static Suite *cpumeter_suite(void)
{
	Suite *s = suite_create("ebpf-cpumeter");
	TCase *tc;

	tc = tcase_create("pure");
	tcase_add_test(tc, libvirt_cgroup_layouts);
	tcase_add_test(tc, rate_windows);
	suite_add_tcase(s, tc);

	tc = tcase_create("meter");
	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, clear_errors);
	tcase_add_test(tc, bad_registrations_refused);
	tcase_add_test(tc, pin_dir_held_then_removed);
	tcase_add_loop_test(tc, burner_matches_cgroup_usage, 0, 2);
	tcase_add_loop_test(tc, short_threads_counted, 0, 2);
	tcase_add_test(tc, restart_loses_and_repeats_nothing);
	tcase_add_test(tc, ended_vm_reported_in_full);
	tcase_add_loop_test(tc, run_delay_matches_schedstat, 0, 2);
	tcase_add_loop_test(tc, no_program_runs_on_a_context_switch, 0, 2);
	tcase_add_test(tc, rate_of_live_vm);
	tcase_add_test(tc, libvirt_vm_matches_cgroup_and_libvirt);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	main_pid = getpid();
	snprintf(prefix, sizeof(prefix), "tally-test-%d", (int)main_pid);
	snprintf(pin_dir, sizeof(pin_dir), "/sys/fs/bpf/%s", prefix);
	setvbuf(stdout, NULL, _IOLBF, 0);
	find_skip_reason();
	if (skip_reason[0])
		printf("SKIP: %s (the meter tests print SKIP each)\n", skip_reason);

	sr = srunner_create(cpumeter_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	cleanup_all();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
