/* What ebpf/cpumeter.bpf.c and its loader (daemon/meter/cpumeter.c) share:
 * map keys and values. Fixed-width fields only, so both sides agree on the
 * layout; these values also live in pinned maps that outlive one daemon, so
 * a change here is a change of the on-disk (bpffs) format. */
#ifndef TALLY_EBPF_CPUMETER_H
#define TALLY_EBPF_CPUMETER_H

#ifndef __bpf__
#include <linux/types.h>
#endif

#define TALLY_MAX_CGROUPS     4096   /* metered cgroups on one node */
#define TALLY_MAX_QUEUED      65536  /* vCPU threads waiting for a CPU at once */
#define TALLY_VM_NAME_LEN     64     /* NUL included */
#define TALLY_PATH_LEN        256

/* Where a cgroup's counters are and what to meter for its tasks. User space
 * stores it twice when a VM registers: in the cgroup's own BPF storage
 * (cg_slot, read by the tp_btf programs without hashing: a task of an
 * unmetered cgroup costs one pointer test) and in a hash by cgroup-v2 id
 * (cg_index, for the raw_tp fallback, which has no typed cgroup pointer). */
#define TALLY_CG_VCPU         0x1u   /* meter its run-queue delay */

struct tally_cg_slot {
	__u32 slot;              /* index into counters */
	__u32 flags;             /* TALLY_CG_* */
};

/* counters: per-CPU array, one entry per slot. The programs only add to
 * their own CPU's copy of an entry that exists: no atomics, no allocation
 * on the hot path. A slot is zeroed when it is given to a cgroup. */
struct tally_counters {
	__u64 cpu_ns;            /* sum of sched_stat_runtime for the cgroup's tasks */
	__u64 run_delay_ns;      /* vCPU threads: wakeup/preemption to running */
	__u64 run_delay_count;   /* how many such waits ended */
	__u64 reserved;
};

/* The three figures the reader reports, summed over CPUs. */
struct tally_totals {
	__u64 cpu_ns;
	__u64 run_delay_ns;
	__u64 run_delay_count;
};

/* ledger: user space only, key = cgroup-v2 id. It records which VM a cgroup
 * belongs to and the two-phase baseline of the reader (see cpumeter.c), so
 * that a reader restarted at any point neither loses nor repeats an
 * interval. */
#define TALLY_LEDGER_ROOT     0x1u   /* the VM's top cgroup (holds mem fields) */
#define TALLY_LEDGER_VCPU     0x2u
#define TALLY_LEDGER_GONE     0x4u   /* the directory is gone; counts are final */
#define TALLY_LEDGER_ALL_VCPU 0x8u   /* root: every cgroup of the VM is a vCPU's */

struct tally_ledger {
	char vm[TALLY_VM_NAME_LEN];
	__u32 flags;
	__u32 mem_alloc_mib;            /* root: allocated by the contract */
	__u32 slot;                     /* its counters */
	__u32 reserved;
	__u64 registered_ns;            /* CLOCK_REALTIME at registration */
	struct tally_totals committed;  /* totals of the last committed sample */
	struct tally_totals pending;    /* totals of a prepared, uncommitted one */
	__u64 committed_seq1;           /* its seq + 1; 0 = registration baseline */
	__u64 pending_seq1;             /* seq + 1 of the pending sample; 0 = none */
	__u64 mem_current_bytes;        /* root: last figure read */
	__u64 mem_peak_bytes;           /* root: highest peak read */
	char path[TALLY_PATH_LEN];      /* cgroup-v2 directory */
	char mem_dir[TALLY_PATH_LEN];   /* root: where memory figures are read */
};

#endif
