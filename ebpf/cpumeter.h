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
#define TALLY_MAX_THREADS     65536  /* vCPU threads tracked (raw_tp path) */
#define TALLY_VM_NAME_LEN     64     /* NUL included */
#define TALLY_PATH_LEN        256

/* Which cgroups are metered, and where their counters are.
 *
 * cg_table: an array of TALLY_CG_BUCKETS words, indexed by the low bits of
 * the cgroup-v2 id. An array lookup is inlined by the verifier (no helper
 * call, no hashing), so a task of an unmetered cgroup costs a pointer chase
 * and one compare, and a metered one a few more instructions. A word holds
 * the rest of the id (its tag), the slot and the flags, so that one 64-bit
 * load reads a consistent entry; user space writes it with one atomic store
 * through mmap. Each bucket belongs to at most one cgroup; a cgroup whose
 * bucket is taken is found in cg_index (a hash by id, which holds every
 * metered cgroup), and its bucket carries TALLY_CGE_MORE to say so. */
#define TALLY_CG_BUCKET_BITS  15
#define TALLY_CG_BUCKETS      (1u << TALLY_CG_BUCKET_BITS)
#define TALLY_CG_BUCKET_MASK  (TALLY_CG_BUCKETS - 1)

#define TALLY_CGE_VALID       0x1ull /* the word describes a cgroup */
#define TALLY_CGE_VCPU        0x2ull /* meter its run-queue delay */
#define TALLY_CGE_MORE        0x4ull /* other cgroups of this bucket: cg_index */
#define TALLY_CGE_SLOT_SHIFT  3
#define TALLY_CGE_SLOT_BITS   12     /* TALLY_MAX_CGROUPS slots */
#define TALLY_CGE_TAG_SHIFT   TALLY_CG_BUCKET_BITS

#if (1 << TALLY_CGE_SLOT_BITS) != TALLY_MAX_CGROUPS || \
	TALLY_CGE_SLOT_SHIFT + TALLY_CGE_SLOT_BITS > TALLY_CGE_TAG_SHIFT
#error "cg_table words cannot hold a slot"
#endif

static inline __u64 tally_cge_make(__u64 cgid, __u32 slot, int vcpu)
{
	return (cgid >> TALLY_CG_BUCKET_BITS << TALLY_CGE_TAG_SHIFT) |
	       ((__u64)slot << TALLY_CGE_SLOT_SHIFT) |
	       (vcpu ? TALLY_CGE_VCPU : 0) | TALLY_CGE_VALID;
}

static inline int tally_cge_is(__u64 word, __u64 cgid)
{
	return (word & TALLY_CGE_VALID) &&
	       word >> TALLY_CGE_TAG_SHIFT == cgid >> TALLY_CG_BUCKET_BITS;
}

static inline __u32 tally_cge_slot(__u64 word)
{
	return (word >> TALLY_CGE_SLOT_SHIFT) &
	       ((1u << TALLY_CGE_SLOT_BITS) - 1);
}

/* cg_index values. */
#define TALLY_CG_VCPU         0x1u   /* meter its run-queue delay */

struct tally_cg_slot {
	__u32 slot;              /* index into counters */
	__u32 flags;             /* TALLY_CG_* */
};

/* What the switch program last saw of a vCPU thread's own scheduler
 * statistics (sched_info): the kernel's run_delay and pcount when the
 * thread last left a CPU. In the thread's BPF storage (tp_btf), or in an
 * LRU hash by thread id (raw_tp), where start_ns tells a reused id apart. */
struct tally_thread_seen {
	__u64 run_delay;
	__u64 pcount;
	__u64 start_ns;          /* raw_tp: task_struct start_time */
};

/* counters: per-CPU array, one entry per slot. The programs only add to
 * their own CPU's copy of an entry that exists: no atomics, no allocation
 * on the hot path. A slot is zeroed when it is given to a cgroup. */
struct tally_counters {
	__u64 cpu_ns;            /* sum of sched_stat_runtime for the cgroup's tasks */
	__u64 run_delay_ns;      /* vCPU threads: wakeup/preemption to running */
	__u64 run_delay_count;   /* how many times they were switched in */
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
