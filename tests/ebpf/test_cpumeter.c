/* Integration tests of the eBPF CPU meter on the host kernel, as root.
 *
 * Each test meters real processes or a real libvirt/QEMU guest and compares
 * with the kernel's own accounting (cgroup cpu.stat usage_usec,
 * /proc/TID/schedstat run_delay) and with libvirt's cpu.time. Everything a
 * test makes carries the prefix tally-test-<pid> (cgroups, domains, the pin
 * directory), and main() removes whatever is left, pass or fail. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
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

static void write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
	n = write(fd, text, strlen(text));
	ck_assert_msg(n == (ssize_t)strlen(text), "write %s to %s: %s", text,
		      path, strerror(errno));
	close(fd);
}

static void test_cgroup(const char *name, char out[CG_PATH_MAX])
{
	ck_assert(snprintf(out, CG_PATH_MAX, "%s/%s-%s", cg2, prefix, name) <
		  CG_PATH_MAX);
	ck_assert_msg(mkdir(out, 0755) == 0, "mkdir %s: %s", out,
		      strerror(errno));
}

static void cgroup_enter(const char *dir, pid_t pid)
{
	char path[CG_PATH_MAX + 32], num[32];

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	snprintf(num, sizeof(num), "%d", (int)pid);
	write_file(path, num);
}

/* A child process spinning on one CPU (cpu < 0: any), placed in dir before
 * it starts to burn. It dies with the test process. */
static pid_t start_burner(const char *dir, int cpu)
{
	int go[2];
	pid_t pid;
	char c;

	ck_assert(pipe(go) == 0);
	pid = fork();
	ck_assert(pid >= 0);
	if (pid == 0) {
		volatile unsigned long spin = 0;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (cpu >= 0) {
			cpu_set_t set;

			CPU_ZERO(&set);
			CPU_SET(cpu, &set);
			sched_setaffinity(0, sizeof(set), &set);
		}
		close(go[1]);
		if (read(go[0], &c, 1) != 1)
			_exit(1);
		for (;;)
			spin++;
	}
	close(go[0]);
	cgroup_enter(dir, pid);
	ck_assert(write(go[1], "g", 1) == 1);
	close(go[1]);
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

static uint64_t absdiff(uint64_t a, uint64_t b)
{
	return a > b ? a - b : b - a;
}

/* |got - want| within abs_ns and within ppm parts per million of want. */
static void assert_close(const char *what, uint64_t got, uint64_t want,
			 uint64_t abs_ns, uint64_t ppm)
{
	uint64_t d = absdiff(got, want);

	printf("  %-34s meter %12" PRIu64 " ns  kernel %12" PRIu64
	       " ns  diff %8" PRIu64 " ns\n", what, got, want, d);
	ck_assert_msg(d <= abs_ns, "%s: meter %" PRIu64 " vs %" PRIu64
		      " ns: off by %" PRIu64 " ns (> %" PRIu64 ")", what, got,
		      want, d, abs_ns);
	ck_assert_msg(d * 1000000 <= want * ppm, "%s: meter %" PRIu64 " vs %"
		      PRIu64 " ns: off by %" PRIu64 " ns (> %" PRIu64 " ppm)",
		      what, got, want, d, ppm);
}

static void setup(void)
{
	meter_unpin(pin_dir);
}

static void teardown(void)
{
	meter_unpin(pin_dir);
}

/* --- CPU time against cpu.stat -------------------------------------------- */

/* _i: 0 = tp_btf, 1 = the raw_tp fallback. */
START_TEST(burner_matches_cgroup_usage)
{
	struct meter *m;
	char dir[CG_PATH_MAX], vm[64];
	uint64_t u_prev, u_now, first_u;
	struct meter_sample prev, now, first;
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

	first = prev = read_vm(m, vm);
	first_u = u_prev = usage_ns(dir);
	printf("burner (%s), 5 intervals of 400 ms:\n", meter_attach_kind(m));
	for (i = 0; i < 5; i++) {
		sleep_ms(400);
		now = read_vm(m, vm);
		u_now = usage_ns(dir);
		/* The burner must have run, or the comparison proves nothing. */
		ck_assert_uint_gt(now.total.cpu_ns - prev.total.cpu_ns, 20 * MS);
		assert_close("interval cpu", now.total.cpu_ns - prev.total.cpu_ns,
			     u_now - u_prev, 1 * MS, 1000);
		prev = now;
		u_prev = u_now;
	}
	assert_close("whole run cpu", now.total.cpu_ns - first.total.cpu_ns,
		     u_now - first_u, 1 * MS, 1000);
	/* Nothing but the burner ran in the cgroup: no vCPU, no run delay. */
	ck_assert_uint_eq(now.total.run_delay_count, 0);
	stop_burner(burner);
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
	uint64_t u0, u1, u2, u3, u4, billed0, billed = 0;
	pid_t burner;

	if (skip())
		return;
	m = open_meter(false);
	test_cgroup(vm, dir);
	register_vm(m, vm, dir, 0);
	burner = start_burner(dir, -1);
	sleep_ms(100);

	/* Record 0 (whatever ran since registration), stored and committed. */
	s = prepare_vm(m, vm, 0);
	u0 = usage_ns(dir);
	billed0 = s.delta.cpu_ns;
	commit_vm(m, vm, 0);

	/* The daemon stops mid-interval and starts again 300 ms later. */
	sleep_ms(300);
	meter_close(m);
	sleep_ms(300);
	m = open_meter(false);
	s = prepare_vm(m, vm, 1);
	u1 = usage_ns(dir);
	printf("restart:\n");
	assert_close("interval across a restart", s.delta.cpu_ns, u1 - u0,
		     1 * MS, 1000);
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
	u2 = usage_ns(dir);
	assert_close("remade after a lost record", s.delta.cpu_ns, u2 - u1,
		     1 * MS, 1000);
	billed += s.delta.cpu_ns;

	/* This time record 2 was stored, and the daemon died before the
	 * commit: recovery commits it, and record 3 starts after it. */
	meter_close(m);
	sleep_ms(300);
	m = open_meter(false);
	commit_vm(m, vm, 2);
	ck_assert_int_eq(meter_vm_commit(m, vm, 7), TALLY_E_NOTFOUND);
	ck_assert_int_eq(meter_vm_prepare(m, vm, 1, &s), TALLY_E_STATE);
	s = prepare_vm(m, vm, 3);
	u3 = usage_ns(dir);
	assert_close("after a committed recovery", s.delta.cpu_ns, u3 - u2,
		     1 * MS, 1000);
	billed += s.delta.cpu_ns;
	commit_vm(m, vm, 3);

	/* The records add up to the whole use since registration, and
	 * records 1-4 to what the kernel counted since record 0. */
	sleep_ms(100);
	s = prepare_vm(m, vm, 4);
	u4 = usage_ns(dir);
	billed += s.delta.cpu_ns;
	commit_vm(m, vm, 4);
	ck_assert_uint_eq(billed0 + billed, s.total.cpu_ns);
	assert_close("records 1-4 vs cpu.stat", billed, u4 - u0, 1 * MS, 1000);
	stop_burner(burner);
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
	prepare_vm(m, vm, 0);
	u0 = usage_ns(dir);
	commit_vm(m, vm, 0);

	/* It runs on, ends, and its cgroup is removed before the next read. */
	sleep_ms(500);
	stop_burner(burner);
	u_end = usage_ns(dir);
	ck_assert_int_eq(rmdir(dir), 0);

	s = prepare_vm(m, vm, 1);
	printf("ended VM:\n");
	assert_close("final interval", s.delta.cpu_ns, u_end - u0, 1 * MS, 1000);
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

/* --- two cgroups in one cg_table bucket -------------------------------------- */

static uint64_t cgroup_id_of(const char *dir)
{
	uint64_t id = 0;

	ck_assert_msg(!cg_id(dir, &id), "no cgroup id for %s", dir);
	return id;
}

static void assert_vm_matches(struct meter *m, const char *vm,
			      const char *dir, struct meter_sample *prev,
			      uint64_t *u_prev)
{
	struct meter_sample now = read_vm(m, vm);
	uint64_t u_now = usage_ns(dir);

	ck_assert_uint_gt(now.total.cpu_ns - prev->total.cpu_ns, 20 * MS);
	assert_close(vm, now.total.cpu_ns - prev->total.cpu_ns,
		     u_now - *u_prev, 1 * MS, 1000);
	*prev = now;
	*u_prev = u_now;
}

/* The programs find most cgroups in cg_table's bucket for the low bits of
 * their id, and the others through cg_index: both must count, and the
 * second must keep counting when the bucket's owner goes. cgroup ids count
 * up, so making and removing cgroups finds one that shares a bucket. */
START_TEST(shared_bucket_both_counted)
{
	char a[CG_PATH_MAX], b[CG_PATH_MAX];
	struct meter_sample sa, sb;
	uint64_t ida, idb = 0, ua, ub;
	pid_t burn_a, burn_b;
	struct meter *m;
	int tries;

	if (skip())
		return;
	m = open_meter(_i == 1);
	test_cgroup("bucket-a", a);
	ida = cgroup_id_of(a);
	register_vm(m, "bucket-a", a, 0);
	ck_assert(snprintf(b, sizeof(b), "%s/%s-bucket-b", cg2, prefix) <
		  (int)sizeof(b));
	for (tries = 0; tries < 4 * (int)TALLY_CG_BUCKETS; tries++) {
		ck_assert_msg(mkdir(b, 0755) == 0, "mkdir %s: %s", b,
			      strerror(errno));
		idb = cgroup_id_of(b);
		if (!((idb ^ ida) & TALLY_CG_BUCKET_MASK))
			break;
		ck_assert_int_eq(rmdir(b), 0);
	}
	printf("shared bucket (%s): cgroup ids %#" PRIx64 " and %#" PRIx64
	       " after %d tries\n", meter_attach_kind(m), ida, idb, tries);
	ck_assert_uint_ne(ida, idb);
	ck_assert_uint_eq(ida & TALLY_CG_BUCKET_MASK, idb & TALLY_CG_BUCKET_MASK);
	register_vm(m, "bucket-b", b, 0);
	burn_a = start_burner(a, -1);
	burn_b = start_burner(b, -1);
	sleep_ms(100);
	sa = read_vm(m, "bucket-a");
	ua = usage_ns(a);
	sb = read_vm(m, "bucket-b");
	ub = usage_ns(b);
	sleep_ms(400);
	assert_vm_matches(m, "bucket-a", a, &sa, &ua);
	assert_vm_matches(m, "bucket-b", b, &sb, &ub);

	/* a goes: b takes its bucket over and is still counted in full. */
	stop_burner(burn_a);
	ck_assert_int_eq(meter_vm_unregister(m, "bucket-a"), 0);
	sleep_ms(400);
	assert_vm_matches(m, "bucket-b", b, &sb, &ub);
	stop_burner(burn_b);
	ck_assert_int_eq(meter_vm_unregister(m, "bucket-b"), 0);
	ck_assert_int_eq(rmdir(a), 0);
	ck_assert_int_eq(rmdir(b), 0);
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
	struct meter_sample s0, s1, s2;
	uint64_t d0, d1, d2, n0, n1, n2;
	struct meter *m;
	pid_t vcpu, other;

	if (skip())
		return;
	m = open_meter(_i == 1);        /* 0: tp_btf, 1: raw_tp */
	test_cgroup("rundelay-vcpu", vdir);
	test_cgroup("rundelay-other", odir);
	register_vm(m, vm, vdir, METER_VM_ALL_VCPU);
	/* Two burners share CPU 1: each waits while the other runs. */
	vcpu = start_burner(vdir, 1);
	other = start_burner(odir, 1);
	sleep_ms(300);

	s0 = read_vm(m, vm);
	d0 = schedstat_run_delay(vcpu, &n0);
	sleep_ms(2000);
	s1 = read_vm(m, vm);
	d1 = schedstat_run_delay(vcpu, &n1);

	printf("run delay (%s, two burners on CPU 1), %" PRIu64 " waits:\n",
	       meter_attach_kind(m),
	       s1.total.run_delay_count - s0.total.run_delay_count);
	/* Each gets about half the CPU, so the vCPU waits about 1 s. */
	ck_assert_uint_gt(d1 - d0, 500 * MS);
	ck_assert_uint_gt(s1.total.run_delay_count, s0.total.run_delay_count);
	assert_close("vCPU run delay", s1.total.run_delay_ns - s0.total.run_delay_ns,
		     d1 - d0, UINT64_MAX, 50000);
	/* Each wait is one switch-in (schedstat's third field). */
	assert_close("vCPU waits (a count)", s1.total.run_delay_count -
		     s0.total.run_delay_count, n1 - n0, UINT64_MAX, 50000);

	/* The vCPU thread ends (a VM stopping): its last waits are in the
	 * next read, in full. */
	sleep_ms(300);
	end_burner_keep_zombie(vcpu);
	d2 = schedstat_run_delay(vcpu, &n2);
	s2 = read_vm(m, vm);
	assert_close("ended vCPU's run delay", s2.total.run_delay_ns -
		     s0.total.run_delay_ns, d2 - d0, UINT64_MAX, 50000);
	assert_close("ended vCPU's waits (a count)", s2.total.run_delay_count -
		     s0.total.run_delay_count, n2 - n0, UINT64_MAX, 50000);
	waitpid(vcpu, NULL, 0);
	stop_burner(other);
	ck_assert_int_eq(meter_vm_unregister(m, vm), 0);
	ck_assert_int_eq(rmdir(vdir), 0);
	ck_assert_int_eq(rmdir(odir), 0);
	meter_close(m);
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

START_TEST(libvirt_vm_matches_cgroup_and_libvirt)
{
	char name[96];
	struct meter_sample s0, s1, s2;
	uint64_t u0, u1, c0, c1, i0, i1;
	struct cg_domain cgd;
	char why[WHY_MAX] = "";
	virConnectPtr conn;
	virDomainPtr dom;
	struct meter *m;
	int err;

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

	s0 = read_vm(m, "guest");
	u0 = usage_ns(cgd.v2_dir);
	c0 = libvirt_cpu_stats(dom);
	i0 = libvirt_info_cpu(dom);
	/* Long enough that virDomainGetInfo's 10 ms ticks stay far inside
	 * the 0.5% window. */
	sleep_ms(8000);
	s1 = read_vm(m, "guest");
	u1 = usage_ns(cgd.v2_dir);
	c1 = libvirt_cpu_stats(dom);
	i1 = libvirt_info_cpu(dom);

	printf("libvirt guest over 8 s (%u cgroups):\n", s1.ncgroups);
	ck_assert_uint_gt(s1.total.cpu_ns - s0.total.cpu_ns, 1000 * MS);
	assert_close("vs cgroup usage_usec", s1.total.cpu_ns - s0.total.cpu_ns,
		     u1 - u0, UINT64_MAX, 5000);
	assert_close("vs virDomainGetCPUStats", s1.total.cpu_ns - s0.total.cpu_ns,
		     c1 - c0, UINT64_MAX, 5000);
	assert_close("vs virDomainGetInfo", s1.total.cpu_ns - s0.total.cpu_ns,
		     i1 - i0, UINT64_MAX, 5000);
	/* root, emulator and vcpu0 at least */
	ck_assert_uint_ge(s1.ncgroups, 3);
	ck_assert_uint_eq(s1.mem_alloc_mib, 128);
	ck_assert_uint_gt(s1.mem_current_bytes, 1 << 20);
	ck_assert_uint_ge(s1.mem_peak_bytes, s1.mem_current_bytes);

	/* The guest is destroyed between two reads: its usage up to the end
	 * is still there, and its cgroups are marked gone. */
	ck_assert_int_eq(virDomainDestroy(dom), 0);
	virDomainFree(dom);
	s2 = read_vm(m, "guest");
	ck_assert_uint_ge(s2.total.cpu_ns, s1.total.cpu_ns);
	ck_assert_uint_eq(s2.ncgroups_gone, s2.ncgroups);
	ck_assert_uint_eq(s2.mem_peak_bytes, s1.mem_peak_bytes);
	ck_assert_int_eq(meter_vm_unregister(m, "guest"), 0);
	meter_close(m);
	virConnectClose(conn);
}
END_TEST

/* --- the operator view -------------------------------------------------------- */

START_TEST(top_shows_live_vm)
{
	struct meter_top_opts o = { .interval_ms = 500, .iterations = 1,
				    .json = true };
	struct meter_opts ro = { .pin_dir = pin_dir, .read_only = true };
	char dir[CG_PATH_MAX], why[WHY_MAX] = "", *text = NULL;
	struct meter *m, *reader;
	json_error_t jerr;
	json_t *row;
	size_t len;
	FILE *out;
	pid_t burner;
	long long cpu, total;
	uint64_t u_before, u_after;

	if (skip())
		return;
	m = open_meter(false);
	test_cgroup("top", dir);
	register_vm(m, "top-vm", dir, 0);
	burner = start_burner(dir, -1);
	/* `tally node top` opens the pinned meter read-only. */
	ck_assert_int_eq(meter_open(&reader, &ro, why), 0);
	out = open_memstream(&text, &len);
	u_before = usage_ns(dir);
	ck_assert_int_eq(meter_top(reader, out, &o), 0);
	u_after = usage_ns(dir);
	fclose(out);
	printf("top --json: %s", text);
	row = json_loads(text, JSON_DISABLE_EOF_CHECK, &jerr);
	ck_assert_msg(row, "top printed no JSON: %s", jerr.text);
	ck_assert_str_eq(json_string_value(json_object_get(row, "vm")), "top-vm");
	/* The total it shows was read between the two cpu.stat reads (the
	 * burner joined the cgroup after registration, so both count the
	 * same), and one burner uses at most one CPU. */
	total = json_integer_value(json_object_get(row, "cpu_ns"));
	ck_assert_int_ge(total + (long long)MS, (long long)u_before);
	ck_assert_int_le(total, (long long)u_after + (long long)MS);
	cpu = json_integer_value(json_object_get(row, "cpu_percent_x100"));
	ck_assert_int_gt(cpu, 500);
	ck_assert_int_lt(cpu, 10500);
	json_decref(row);
	free(text);

	o.json = false;
	text = NULL;
	out = open_memstream(&text, &len);
	ck_assert_int_eq(meter_top(reader, out, &o), 0);
	fclose(out);
	printf("%s", text);
	ck_assert_ptr_nonnull(strstr(text, "top-vm"));
	ck_assert_ptr_nonnull(strstr(text, "CPU%"));
	free(text);
	/* A read-only meter changes nothing. */
	ck_assert_int_eq(meter_vm_commit(reader, "top-vm", 0), TALLY_E_STATE);
	meter_close(reader);
	stop_burner(burner);
	ck_assert_int_eq(meter_vm_unregister(m, "top-vm"), 0);
	ck_assert_int_eq(rmdir(dir), 0);
	meter_close(m);
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
	char cmd[1024];
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
	meter_unpin(pin_dir);
}

static Suite *cpumeter_suite(void)
{
	Suite *s = suite_create("ebpf-cpumeter");
	TCase *tc;

	tc = tcase_create("layouts");
	tcase_add_test(tc, libvirt_cgroup_layouts);
	suite_add_tcase(s, tc);

	tc = tcase_create("meter");
	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, clear_errors);
	tcase_add_test(tc, bad_registrations_refused);
	tcase_add_loop_test(tc, burner_matches_cgroup_usage, 0, 2);
	tcase_add_test(tc, restart_loses_and_repeats_nothing);
	tcase_add_test(tc, ended_vm_reported_in_full);
	tcase_add_loop_test(tc, run_delay_matches_schedstat, 0, 2);
	tcase_add_loop_test(tc, shared_bucket_both_counted, 0, 2);
	tcase_add_test(tc, top_shows_live_vm);
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
