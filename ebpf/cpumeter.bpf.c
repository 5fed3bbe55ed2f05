// SPDX-License-Identifier: GPL-2.0
/* tally's CPU meter, kernel side.
 *
 * CPU time: the scheduler reports every slice of runtime it charges to a task
 * through sched_stat_runtime(task, runtime), in the same place where it
 * charges the task's cgroup (cgroup_account_cputime), so summing `runtime`
 * per cgroup-v2 id of that task reproduces the cgroup's cpu.stat usage_usec
 * to the nanosecond. The task is the argument, not `current`: the scheduler
 * may update a runqueue from another CPU.
 *
 * Run-queue delay of vCPU threads: the time from becoming runnable (woken,
 * or preempted while still runnable) to being switched in, which is what the
 * kernel's schedstat run_delay counts. A VM's tenant waits this long for a
 * host CPU; it is the evidence for SLA credits.
 *
 * A metered cgroup has a slot in the per-CPU counters. The tp_btf programs
 * find it in the cgroup's own BPF storage, so a task of any other cgroup
 * costs one pointer test; the raw_tp programs (for kernels where tp_btf
 * cannot attach, or before cgroup storage in 6.2) look it up by cgroup id.
 * The loader enables one of the two sets at load time. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "ebpf/cpumeter.h"

char LICENSE[] SEC("license") = "GPL";

#define TASK_RUNNING 0

/* Per-CPU counters, one entry per slot (see ebpf/cpumeter.h). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TALLY_MAX_CGROUPS);
	__type(key, __u32);
	__type(value, struct tally_counters);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} counters SEC(".maps");

/* A metered cgroup's slot, in the cgroup's own storage (tp_btf path). */
struct {
	__uint(type, BPF_MAP_TYPE_CGRP_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct tally_cg_slot);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cg_slot SEC(".maps");

/* The same by cgroup-v2 id (raw_tp path). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TALLY_MAX_CGROUPS);
	__type(key, __u64);
	__type(value, struct tally_cg_slot);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cg_index SEC(".maps");

/* When a vCPU thread started waiting for a CPU (ktime ns; 0: not waiting):
 * in the task's own storage for tp_btf, by thread id for raw_tp. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} queued_since SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TALLY_MAX_QUEUED);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} queued_at SEC(".maps");

/* The reader's ledger (see ebpf/cpumeter.h). No program touches it; it is
 * here so that it is created and pinned with the others. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TALLY_MAX_CGROUPS);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u64);
	__type(value, struct tally_ledger);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} ledger SEC(".maps");

/* Before 5.14 the task state field was `long state`. */
struct task_struct___pre514 {
	long state;
} __attribute__((preserve_access_index));

/* Field reads. `typed` is a compile-time constant: tp_btf programs get
 * typed, trusted task pointers, read fields directly and find a cgroup's
 * slot in its own storage; the raw_tp programs go through
 * bpf_probe_read_kernel and a hash by cgroup id. */
static __always_inline struct tally_cg_slot *task_slot(struct task_struct *t,
						       bool typed)
{
	__u64 cgid;

	if (typed)
		return bpf_cgrp_storage_get(&cg_slot, t->cgroups->dfl_cgrp, 0, 0);
	cgid = BPF_CORE_READ(t, cgroups, dfl_cgrp, kn, id);
	return bpf_map_lookup_elem(&cg_index, &cgid);
}

static __always_inline __u32 task_tid(struct task_struct *t)
{
	return BPF_CORE_READ(t, pid);
}

/* Start (now != 0) or cancel (now == 0) a thread's wait. */
static __always_inline void wait_mark(struct task_struct *t, __u64 now,
				      bool typed)
{
	__u64 *since;
	__u32 tid;

	if (typed) {
		since = bpf_task_storage_get(&queued_since, t, 0, now ?
					     BPF_LOCAL_STORAGE_GET_F_CREATE : 0);
		if (since)
			*since = now;
		return;
	}
	tid = task_tid(t);
	if (now)
		bpf_map_update_elem(&queued_at, &tid, &now, BPF_ANY);
	else
		bpf_map_delete_elem(&queued_at, &tid);
}

/* End a thread's wait at `now`: how long it was, 0 when it was not
 * waiting. */
static __always_inline __u64 wait_end(struct task_struct *t, __u64 now,
				      bool typed)
{
	__u64 *since, waited;
	__u32 tid;

	if (typed) {
		since = bpf_task_storage_get(&queued_since, t, 0, 0);
		if (!since || !*since)
			return 0;
		waited = now > *since ? now - *since : 0;
		*since = 0;
		return waited;
	}
	tid = task_tid(t);
	since = bpf_map_lookup_elem(&queued_at, &tid);
	if (!since)
		return 0;
	waited = now > *since ? now - *since : 0;
	bpf_map_delete_elem(&queued_at, &tid);
	return waited;
}

static __always_inline long task_state(struct task_struct *t, bool typed)
{
	struct task_struct___pre514 *old = (void *)t;

	if (bpf_core_field_exists(t->__state))
		return typed ? t->__state : BPF_CORE_READ(t, __state);
	return typed ? old->state : BPF_CORE_READ(old, state);
}

static __always_inline struct tally_counters *slot_counters(
	const struct tally_cg_slot *s)
{
	__u32 slot = s->slot;

	return bpf_map_lookup_elem(&counters, &slot);
}

static __always_inline void on_runtime(struct task_struct *t, __u64 runtime,
				       bool typed)
{
	struct tally_cg_slot *s = task_slot(t, typed);
	struct tally_counters *c;

	if (!s)
		return;
	c = slot_counters(s);
	if (c)
		c->cpu_ns += runtime;
}

/* A vCPU thread became runnable: start its wait. */
static __always_inline void queue_start(struct task_struct *t, bool typed)
{
	struct tally_cg_slot *s = task_slot(t, typed);

	if (s && (s->flags & TALLY_CG_VCPU))
		wait_mark(t, bpf_ktime_get_ns(), typed);
}

static __always_inline void on_switch(struct task_struct *prev,
				      struct task_struct *next, bool typed)
{
	struct tally_cg_slot *ps = task_slot(prev, typed);
	struct tally_cg_slot *ns = task_slot(next, typed);
	bool prev_vcpu = ps && (ps->flags & TALLY_CG_VCPU);
	bool next_vcpu = ns && (ns->flags & TALLY_CG_VCPU);
	struct tally_counters *c;
	__u64 now, waited;

	if (!prev_vcpu && !next_vcpu)
		return;
	now = bpf_ktime_get_ns();       /* one clock read serves both */

	/* prev leaves the CPU: still runnable means it waits again (the kernel
	 * does the same in sched_info_depart); blocked means any wakeup stamp
	 * it got while it was still on the CPU is void. */
	if (prev_vcpu)
		wait_mark(prev, task_state(prev, typed) == TASK_RUNNING ?
			  now : 0, typed);
	if (!next_vcpu)
		return;
	waited = wait_end(next, now, typed);
	c = waited ? slot_counters(ns) : NULL;
	if (c) {
		c->run_delay_ns += waited;
		c->run_delay_count++;
	}
}

SEC("tp_btf/sched_stat_runtime")
int BPF_PROG(runtime_btf, struct task_struct *t, __u64 runtime)
{
	on_runtime(t, runtime, true);
	return 0;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(wakeup_btf, struct task_struct *t)
{
	queue_start(t, true);
	return 0;
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(wakeup_new_btf, struct task_struct *t)
{
	queue_start(t, true);
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(switch_btf, bool preempt, struct task_struct *prev,
	     struct task_struct *next)
{
	on_switch(prev, next, true);
	return 0;
}

SEC("raw_tp/sched_stat_runtime")
int BPF_PROG(runtime_raw, struct task_struct *t, __u64 runtime)
{
	on_runtime(t, runtime, false);
	return 0;
}

SEC("raw_tp/sched_wakeup")
int BPF_PROG(wakeup_raw, struct task_struct *t)
{
	queue_start(t, false);
	return 0;
}

SEC("raw_tp/sched_wakeup_new")
int BPF_PROG(wakeup_new_raw, struct task_struct *t)
{
	queue_start(t, false);
	return 0;
}

SEC("raw_tp/sched_switch")
int BPF_PROG(switch_raw, bool preempt, struct task_struct *prev,
	     struct task_struct *next)
{
	on_switch(prev, next, false);
	return 0;
}
