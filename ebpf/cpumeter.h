/* What ebpf/cpumeter.bpf.c and its loader (daemon/meter/) share: map keys
 * and values. Fixed-width fields only, so both sides agree on the layout;
 * these values also live in pinned maps that outlive one daemon, so a change
 * here is a change of the on-disk (bpffs) format. */
#ifndef TALLY_EBPF_CPUMETER_H
#define TALLY_EBPF_CPUMETER_H

#ifndef __bpf__
#include <linux/types.h>
#endif

#define TALLY_MAX_CGROUPS     4096   /* metered cgroups on one node */
#define TALLY_MAX_THREADS     65536  /* threads of metered VMs, alive */
#define TALLY_MAX_EXITS       16384  /* ended threads not yet read */
#define TALLY_VM_NAME_LEN     64     /* NUL included */
#define TALLY_PATH_LEN        256

/* A thread, as /proc names it: its id and its start time in clock ticks
 * (field 22 of /proc/TID/stat), so that a reused id is another thread. */
struct tally_thread_key {
	__u32 tid;
	__u32 zero;
	__u64 start_ticks;
};

/* A thread's own scheduler figures, what /proc/TID/schedstat shows: CPU
 * time (se.sum_exec_runtime), time spent runnable but waiting for a CPU
 * (sched_info.run_delay) and times switched in (sched_info.pcount). */
struct tally_sched {
	__u64 cpu_ns;
	__u64 run_delay_ns;
	__u64 pcount;
};

/* exits: key tally_thread_key. A thread of a metered cgroup that ended,
 * written by the programs: at sched_process_exit with its figures so far,
 * then at sched_process_free, when it can never run again, with its final
 * figures and TALLY_EXIT_FINAL. The reader folds final ones into its VM's
 * totals and deletes them. */
#define TALLY_EXIT_FINAL      0x1u

struct tally_exit {
	__u64 cgid;              /* the cgroup it ended in */
	__u64 exit_ns;           /* CLOCK_MONOTONIC at sched_process_exit */
	struct tally_sched at;
	__u32 flags;             /* TALLY_EXIT_* */
	__u32 reserved;
};

/* threads: key tally_thread_key, user space only. A thread of a metered VM
 * the reader has seen: its figures when metering of it began (zeros for a
 * thread born into a metered VM) and when last read. */
#define TALLY_THREAD_VCPU     0x1u   /* its run delay is metered */

struct tally_thread {
	__u64 vm_id;             /* cgroup id of the VM's top cgroup */
	__u32 flags;             /* TALLY_THREAD_* */
	__u32 reserved;
	struct tally_sched base;
	struct tally_sched last;
};

/* The three figures the reader reports. */
struct tally_totals {
	__u64 cpu_ns;
	__u64 run_delay_ns;
	__u64 run_delay_count;
};

/* ledger: key = cgroup-v2 id, one entry per metered cgroup, written by user
 * space; the programs only look keys up (is this task's cgroup metered?).
 * The top cgroup's entry (TALLY_LEDGER_ROOT) carries the VM: the totals of
 * its ended threads, its cgroup's CPU figures, the two-phase baseline of the
 * reader (see daemon/meter/cpumeter.h) and memory, so that a reader
 * restarted at any point neither loses nor repeats an interval. */
#define TALLY_LEDGER_ROOT     0x1u   /* the VM's top cgroup (holds the VM) */
#define TALLY_LEDGER_VCPU     0x2u   /* its threads are vCPUs */
#define TALLY_LEDGER_GONE     0x4u   /* the directory is gone */
#define TALLY_LEDGER_ALL_VCPU 0x8u   /* root: every thread of the VM is a vCPU */

struct tally_ledger {
	char vm[TALLY_VM_NAME_LEN];
	__u32 flags;
	__u32 mem_alloc_mib;            /* root: allocated by the contract */
	__u64 registered_ns;            /* CLOCK_REALTIME at registration */
	__u64 registered_ticks;         /* CLOCK_BOOTTIME, in clock ticks */
	struct tally_totals ended;      /* root: threads folded in when they ended */
	__u64 fold_seq;                 /* root: threads folded so far */
	struct tally_thread_key folding; /* root: the last one folded */
	__u64 unsettled;                /* root: of which with figures from exit */
	__u64 cg_base_ns;               /* root: cpu.stat usage at registration */
	__u64 cg_last_ns;               /* root: cpu.stat usage last read */
	__u64 threads_cpu_last;         /* root: threads' CPU read with it */
	struct tally_totals committed;  /* root: totals of the last committed sample */
	struct tally_totals pending;    /* root: totals of a prepared, uncommitted one */
	__u64 committed_seq1;           /* its seq + 1; 0 = registration baseline */
	__u64 pending_seq1;             /* seq + 1 of the pending sample; 0 = none */
	__u64 mem_current_bytes;        /* root: last figure read */
	__u64 mem_peak_bytes;           /* root: highest peak read */
	char path[TALLY_PATH_LEN];      /* cgroup-v2 directory */
	char mem_dir[TALLY_PATH_LEN];   /* root: where memory figures are read */
};

#endif
