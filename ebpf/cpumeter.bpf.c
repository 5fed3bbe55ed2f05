// SPDX-License-Identifier: GPL-2.0
/* tally's CPU meter, kernel side: what the kernel forgets when a thread ends.
 *
 * The kernel keeps, for every thread, exactly the figures the meter bills:
 * its CPU time (se.sum_exec_runtime, charged in the same place and by the
 * same amount as its cgroup's cpu.stat usage) and, with CONFIG_SCHED_INFO,
 * how long it waited runnable for a CPU and how often it was switched in
 * (sched_info.run_delay, .pcount): /proc/TID/schedstat. The reader
 * (daemon/meter/) sums those for a VM's live threads, so nothing runs on the
 * scheduler's hot path: a context switch on the host costs what it costs
 * without the meter, for VM threads and every other task alike.
 *
 * What is lost is a thread's last figures once it ends and is reaped. These
 * programs keep them, for threads of metered cgroups only (the ledger map):
 *   sched_process_exit  the thread starts to exit: its figures so far and
 *                       when, so that the reader knows to wait for the
 *                       final ones (and how long it has waited)
 *   sched_process_free  the thread is gone and can never run again: its
 *                       final figures (TALLY_EXIT_FINAL)
 * Both fire once per thread's life, never per context switch. The kernel
 * frees a task one RCU grace period after its last switch, usually; some
 * kernels put it off much longer, and then the figures taken at exit are
 * what the reader has (see daemon/meter/threads.c).
 *
 * The tp_btf programs read fields directly; the raw_tp ones (for kernels
 * where tp_btf cannot attach) go through bpf_probe_read_kernel. The loader
 * enables one of the two sets. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "ebpf/cpumeter.h"

char LICENSE[] SEC("license") = "GPL";

/* Nanoseconds per clock tick (USER_HZ) of /proc/TID/stat's start time, set
 * by the loader from sysconf(_SC_CLK_TCK). */
const volatile __u64 ns_per_tick = 10000000;

/* The metered cgroups (see ebpf/cpumeter.h); the programs only look up. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TALLY_MAX_CGROUPS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u64);
	__type(value, struct tally_ledger);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ledger SEC(".maps");

/* Ended threads of metered cgroups. Preallocated: the raw_tp programs of
 * older kernels may not allocate. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TALLY_MAX_EXITS);
	__type(key, struct tally_thread_key);
	__type(value, struct tally_exit);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} exits SEC(".maps");

/* The reader's threads (see ebpf/cpumeter.h). No program touches it; it is
 * here so that it is created and pinned with the others. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TALLY_MAX_THREADS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct tally_thread_key);
	__type(value, struct tally_thread);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} threads SEC(".maps");

/* Before 5.5 the boot-based start time was `real_start_time`. */
struct task_struct___pre55 {
	u64 real_start_time;
} __attribute__((preserve_access_index));

/* `typed` is a compile-time constant: tp_btf programs get typed, trusted
 * task pointers and read fields directly; the raw_tp ones go through
 * bpf_probe_read_kernel. */
static __always_inline __u64 task_cgid(struct task_struct *t, bool typed)
{
	if (typed)
		return t->cgroups->dfl_cgrp->kn->id;
	return BPF_CORE_READ(t, cgroups, dfl_cgrp, kn, id);
}

/* The thread's key, as the reader builds it from /proc/TID/stat. */
static __always_inline void task_key(struct task_struct *t, bool typed,
				     struct tally_thread_key *k)
{
	struct task_struct___pre55 *old = (void *)t;
	__u64 boot;

	if (bpf_core_field_exists(t->start_boottime))
		boot = typed ? t->start_boottime : BPF_CORE_READ(t, start_boottime);
	else
		boot = typed ? old->real_start_time :
		       BPF_CORE_READ(old, real_start_time);
	k->tid = typed ? t->pid : BPF_CORE_READ(t, pid);
	k->zero = 0;
	k->start_ticks = boot / ns_per_tick;
}

static __always_inline void task_sched(struct task_struct *t, bool typed,
				       struct tally_sched *s)
{
	if (typed) {
		s->cpu_ns = t->se.sum_exec_runtime;
		if (bpf_core_field_exists(t->sched_info)) {
			s->run_delay_ns = t->sched_info.run_delay;
			s->pcount = t->sched_info.pcount;
		}
		return;
	}
	s->cpu_ns = BPF_CORE_READ(t, se.sum_exec_runtime);
	if (bpf_core_field_exists(t->sched_info)) {
		s->run_delay_ns = BPF_CORE_READ(t, sched_info.run_delay);
		s->pcount = BPF_CORE_READ(t, sched_info.pcount);
	}
}

/* A thread of a metered cgroup starts to exit. */
static __always_inline void on_exit(struct task_struct *t, bool typed)
{
	struct tally_exit e = {};
	struct tally_thread_key k;

	e.cgid = task_cgid(t, typed);
	if (!bpf_map_lookup_elem(&ledger, &e.cgid))
		return;
	e.exit_ns = bpf_ktime_get_ns();
	task_key(t, typed, &k);
	task_sched(t, typed, &e.at);
	bpf_map_update_elem(&exits, &k, &e, BPF_NOEXIST);
}

/* A thread is freed: if it ended in a metered cgroup, its figures are final.
 * The entry is replaced whole, so that a reader sees either version. */
static __always_inline void on_free(struct task_struct *t, bool typed)
{
	struct tally_thread_key k;
	struct tally_exit *e, fin;

	task_key(t, typed, &k);
	e = bpf_map_lookup_elem(&exits, &k);
	if (!e)
		return;
	fin = *e;
	task_sched(t, typed, &fin.at);
	fin.flags |= TALLY_EXIT_FINAL;
	bpf_map_update_elem(&exits, &k, &fin, BPF_EXIST);
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(exit_btf, struct task_struct *t)
{
	on_exit(t, true);
	return 0;
}

SEC("tp_btf/sched_process_free")
int BPF_PROG(free_btf, struct task_struct *t)
{
	on_free(t, true);
	return 0;
}

SEC("raw_tp/sched_process_exit")
int BPF_PROG(exit_raw, struct task_struct *t)
{
	on_exit(t, false);
	return 0;
}

SEC("raw_tp/sched_process_free")
int BPF_PROG(free_raw, struct task_struct *t)
{
	on_free(t, false);
	return 0;
}
