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
 * or preempted while still runnable) to being switched in. The kernel keeps
 * exactly this per thread, in sched_info.run_delay (what /proc/TID/schedstat
 * shows), and counts the switch-ins in sched_info.pcount. It adds a wait when
 * the thread is switched in, right after the sched_switch tracepoint; so
 * when a vCPU thread leaves a CPU, its run_delay holds every wait up to its
 * last switch-in, and the growth since it last left a CPU is the wait that
 * ended then. The switch program adds that growth to the VM's counter. It
 * needs no wakeup hook and no clock of its own, and its figure is the
 * kernel's, to the nanosecond: a wait is reported once the thread leaves
 * the CPU again (a thread that ends leaves it one last time).
 *
 * A growth is counted only when pcount moved by exactly one since the last
 * look, that is, when no switch-in was missed: a thread seen for the first
 * time (or again after it was not metered) only sets its baseline, except a
 * thread born metered, whose first wait is all its run_delay.
 *
 * Which cgroups are metered: cg_table (see ebpf/cpumeter.h), an array the
 * verifier inlines, so that the common case, a task nobody meters, costs a
 * pointer chase and one compare. The tp_btf programs read fields directly
 * and keep a thread's last look in its own BPF storage; the raw_tp programs
 * (for kernels where tp_btf cannot attach) go through bpf_probe_read_kernel
 * and an LRU hash by thread id. The loader enables one of the two sets. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "ebpf/cpumeter.h"

char LICENSE[] SEC("license") = "GPL";

#define TASK_DEAD 0x80

/* Per-CPU counters, one entry per slot (see ebpf/cpumeter.h). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TALLY_MAX_CGROUPS);
	__type(key, __u32);
	__type(value, struct tally_counters);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} counters SEC(".maps");

/* Metered cgroups by the low bits of their id (see ebpf/cpumeter.h). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TALLY_CG_BUCKETS);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cg_table SEC(".maps");

/* Every metered cgroup by id: for those whose cg_table bucket is taken. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TALLY_MAX_CGROUPS);
	__type(key, __u64);
	__type(value, struct tally_cg_slot);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cg_index SEC(".maps");

/* A vCPU thread's last look: in its own storage for tp_btf, by thread id
 * for raw_tp (LRU: an entry lost to eviction costs one wait, never a
 * wrong one). */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct tally_thread_seen);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} thread_seen SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, TALLY_MAX_THREADS);
	__type(key, __u32);
	__type(value, struct tally_thread_seen);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} tid_seen SEC(".maps");

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

/* `typed` is a compile-time constant: tp_btf programs get typed, trusted
 * task pointers and read fields directly; the raw_tp ones go through
 * bpf_probe_read_kernel. */
static __always_inline __u64 task_cgid(struct task_struct *t, bool typed)
{
	if (typed)
		return t->cgroups->dfl_cgrp->kn->id;
	return BPF_CORE_READ(t, cgroups, dfl_cgrp, kn, id);
}

/* The task's slot, when its cgroup is metered. */
static __always_inline bool task_slot(struct task_struct *t, bool typed,
				      struct tally_cg_slot *out)
{
	__u64 cgid = task_cgid(t, typed), word;
	__u32 bucket = cgid & TALLY_CG_BUCKET_MASK;
	struct tally_cg_slot *s;
	__u64 *w;

	w = bpf_map_lookup_elem(&cg_table, &bucket);
	if (!w)
		return false;
	word = *w;              /* one load: a consistent entry */
	if (!word)
		return false;
	if (tally_cge_is(word, cgid)) {
		out->slot = tally_cge_slot(word);
		out->flags = word & TALLY_CGE_VCPU ? TALLY_CG_VCPU : 0;
		return true;
	}
	if (!(word & TALLY_CGE_MORE))
		return false;
	s = bpf_map_lookup_elem(&cg_index, &cgid);
	if (!s)
		return false;
	*out = *s;
	return true;
}

static __always_inline long task_state(struct task_struct *t, bool typed)
{
	struct task_struct___pre514 *old = (void *)t;

	if (bpf_core_field_exists(t->__state))
		return typed ? t->__state : BPF_CORE_READ(t, __state);
	return typed ? old->state : BPF_CORE_READ(old, state);
}

static __always_inline struct tally_counters *slot_counters(__u32 slot)
{
	return bpf_map_lookup_elem(&counters, &slot);
}

static __always_inline void on_runtime(struct task_struct *t, __u64 runtime,
				       bool typed)
{
	struct tally_cg_slot s;
	struct tally_counters *c;

	if (!task_slot(t, typed, &s))
		return;
	c = slot_counters(s.slot);
	if (c)
		c->cpu_ns += runtime;
}

/* The thread's last look; a new one reads as zeros (a thread never seen,
 * which counts its first wait only if it was born metered). */
static __always_inline struct tally_thread_seen *thread_last(
	struct task_struct *t, bool typed, __u32 *tid)
{
	struct tally_thread_seen *seen, fresh = {};

	if (typed)
		return bpf_task_storage_get(&thread_seen, t, 0,
					    BPF_LOCAL_STORAGE_GET_F_CREATE);
	*tid = BPF_CORE_READ(t, pid);
	fresh.start_ns = BPF_CORE_READ(t, start_time);
	seen = bpf_map_lookup_elem(&tid_seen, tid);
	if (seen && seen->start_ns == fresh.start_ns)
		return seen;
	/* None, or left by an ended thread whose id was reused. */
	bpf_map_update_elem(&tid_seen, tid, &fresh, BPF_ANY);
	return bpf_map_lookup_elem(&tid_seen, tid);
}

/* prev is leaving its CPU: count the wait that ended when it came on. */
static __always_inline void on_switch(struct task_struct *prev, bool typed)
{
	struct tally_thread_seen *seen;
	struct tally_counters *c;
	struct tally_cg_slot s;
	__u64 delay, arrivals;
	__u32 tid = 0;

	if (!bpf_core_field_exists(prev->sched_info))
		return;         /* a kernel without CONFIG_SCHED_INFO */
	if (!task_slot(prev, typed, &s) || !(s.flags & TALLY_CG_VCPU))
		return;
	if (typed) {
		delay = prev->sched_info.run_delay;
		arrivals = prev->sched_info.pcount;
	} else {
		delay = BPF_CORE_READ(prev, sched_info.run_delay);
		arrivals = BPF_CORE_READ(prev, sched_info.pcount);
	}
	seen = thread_last(prev, typed, &tid);
	if (!seen)
		return;
	if (arrivals == seen->pcount + 1 && delay >= seen->run_delay) {
		c = slot_counters(s.slot);
		if (c) {
			c->run_delay_ns += delay - seen->run_delay;
			c->run_delay_count++;
		}
	}
	seen->run_delay = delay;
	seen->pcount = arrivals;
	/* Its last switch: free the entry now rather than by eviction. */
	if (!typed && (task_state(prev, typed) & TASK_DEAD))
		bpf_map_delete_elem(&tid_seen, &tid);
}

SEC("tp_btf/sched_stat_runtime")
int BPF_PROG(runtime_btf, struct task_struct *t, __u64 runtime)
{
	on_runtime(t, runtime, true);
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(switch_btf, bool preempt, struct task_struct *prev,
	     struct task_struct *next)
{
	on_switch(prev, true);
	return 0;
}

SEC("raw_tp/sched_stat_runtime")
int BPF_PROG(runtime_raw, struct task_struct *t, __u64 runtime)
{
	on_runtime(t, runtime, false);
	return 0;
}

SEC("raw_tp/sched_switch")
int BPF_PROG(switch_raw, bool preempt, struct task_struct *prev,
	     struct task_struct *next)
{
	on_switch(prev, false);
	return 0;
}
