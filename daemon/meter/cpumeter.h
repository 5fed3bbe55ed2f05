/* The CPU meter: per-VM CPU time, vCPU run-queue delay and memory.
 *
 * The meter bills what the kernel counts: a VM's CPU is its cgroup's
 * cpu.stat usage, its vCPU run delay the sum over its vCPU threads of the
 * time each waited runnable for a CPU and how often it was switched in
 * (/proc/TID/schedstat). eBPF programs on two tracepoints that fire once per
 * thread's life (ebpf/cpumeter.bpf.c) keep the final figures of threads that
 * end, which the kernel forgets, so that a VM that ends between two reads
 * loses nothing; nothing of the meter runs when the scheduler switches
 * tasks. The programs and the
 * reader's state live under a bpffs pin directory (default
 * /sys/fs/bpf/tally): they keep recording while no daemon runs, and a
 * restarted daemon finds both.
 *
 * A VM is a name (the lease id, or a domain name) and a cgroup-v2 directory
 * with everything below it. Totals are cumulative from registration; the
 * reader reports deltas against a baseline committed in two phases, so that
 * exactly-once holds across crashes of the caller:
 *
 *     meter_vm_prepare(m, vm, seq, &s)   // s.delta = usage since last commit
 *     ... store the usage record with seq durably ...
 *     meter_vm_commit(m, vm, seq)        // s.total becomes the baseline
 *
 * After a restart, call meter_vm_commit(m, vm, last_durable_seq): a sample
 * that was prepared and stored is committed, one that was prepared but never
 * stored is dropped, and its usage goes into the next delta instead.
 * Committing an already committed seq is a no-op.
 *
 * The files: pin.c (open, pinning, adoption), register.c (VMs and their
 * cgroups), threads.c (a VM's threads), read.c (totals, two-phase reads),
 * rate.c (shares of a CPU over a window), cgroup.c (cgroup files). */
#ifndef TALLY_METER_CPUMETER_H
#define TALLY_METER_CPUMETER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/meter_pins.h"             /* METER_PIN_DIR_DEFAULT */

#define METER_VM_NAME_MAX 63            /* bytes, without the NUL */

struct meter;

struct meter_opts {
	const char *pin_dir;       /* NULL: METER_PIN_DIR_DEFAULT */
	const char *cgroup2_root;  /* NULL: found in /proc/self/mountinfo */
	const char *btf_path;      /* kernel BTF for CO-RE when the kernel has none */
	bool read_only;            /* open what is pinned; load and attach nothing */
	bool force_raw_tp;         /* attach raw_tp even where tp_btf works */
};

/* Load (or find pinned) programs and maps; attach and pin what is missing.
 * A meter that is not read_only locks the pin directory until closed (a
 * child made by fork() drops its copy of the lock; one made by a raw clone
 * that never execs keeps it until it ends).
 * Errors, with why[WHY_MAX] filled:
 *   TALLY_E_UNAUTHORIZED  not root
 *   TALLY_E_NOTFOUND      no cgroup v2; read_only and no meter pinned
 *   TALLY_E_STATE         the kernel refuses BPF (no bpf(), no BTF, lockdown)
 *                         or keeps no per-thread schedstat; another process
 *                         holds the pin directory; it holds another version
 *                         of the meter
 *   TALLY_E_IO            the pin directory is not on a bpf file system */
int meter_open(struct meter **out, const struct meter_opts *o, char *why);
/* Releases this process's handles. Programs and the reader's state stay
 * pinned and keep recording. */
void meter_close(struct meter *m);
/* Detach the programs and delete every pinned object in pin_dir (and the
 * directory), as `tally node meter-detach` does (lib/meter_pins.h). Counts
 * not yet committed are lost: for tests and uninstall. */
int meter_unpin(const char *pin_dir, char *why);
/* "tp_btf" or "raw_tp": the kind of the attached programs. */
const char *meter_attach_kind(const struct meter *m);
/* The cgroup-v2 mount point the meter uses. */
const char *meter_cgroup2_root(const struct meter *m);

#define METER_VM_ALL_VCPU 0x1u     /* meter run delay for every thread */

struct meter_vm_spec {
	const char *name;          /* 1..METER_VM_NAME_MAX bytes, no '/' */
	const char *cgroup_dir;    /* absolute cgroup-v2 directory of the VM */
	const char *mem_dir;       /* NULL: cgroup_dir */
	uint32_t mem_alloc_mib;    /* allocated by the contract (reported back) */
	unsigned flags;            /* METER_VM_* */
};

/* Start metering: the directory and all cgroups below it. Threads running
 * there now count from now on; threads born there later, from their birth.
 * Threads in cgroups named vcpuN (or all, with METER_VM_ALL_VCPU) have their
 * run delay metered. Registering the same VM again (e.g. after a restart)
 * keeps its counts and adds cgroups that appeared since. TALLY_E_EXISTS when
 * a cgroup belongs to another VM, TALLY_E_CAPACITY when the maps are full. */
int meter_vm_register(struct meter *m, const struct meter_vm_spec *s,
		      char *why);
/* The same for a running libvirt domain, its cgroups resolved from its QEMU
 * process (see cgroup.h); vm_name NULL means the domain name. */
int meter_vm_register_domain(struct meter *m, const char *domain_name,
			     const char *vm_name, uint32_t mem_alloc_mib,
			     char *why);

struct meter_totals {
	uint64_t cpu_ns;           /* CPU time of all the VM's threads */
	uint64_t run_delay_ns;     /* vCPU threads waiting for a host CPU */
	uint64_t run_delay_count;  /* times they were switched in */
};

struct meter_sample {
	struct meter_totals total;  /* since registration */
	struct meter_totals delta;  /* since the last committed sample */
	uint64_t mem_current_bytes; /* last figure read; 0 when unknown */
	uint64_t mem_peak_bytes;    /* highest peak read */
	uint32_t mem_alloc_mib;     /* as registered */
	uint32_t ncgroups;          /* cgroups metered */
	uint32_t ncgroups_gone;     /* of which removed (their counts stay) */
	uint64_t registered_ns;     /* CLOCK_REALTIME of registration */
	uint64_t threads_unsettled; /* ended threads the kernel did not free in
				     * time: counted with their figures at
				     * exit (see threads.c) */
};

/* Totals and delta now, without committing anything. New cgroups below the
 * VM's directory are registered on the way; removed ones are kept. A thread
 * that ended a moment ago counts with its last known figures until the
 * kernel has freed it (within an RCU grace period); totals never go down. */
int meter_vm_read(struct meter *m, const char *vm, struct meter_sample *out);
/* Phase one: read, and remember the totals as the pending sample seq. For
 * a VM whose cgroup is gone it waits (up to 2.5 s) for the final figures of
 * threads that just ended, so that its last sample holds all of its usage. */
int meter_vm_prepare(struct meter *m, const char *vm, uint64_t seq,
		     struct meter_sample *out);
/* Phase two: the pending sample seq becomes the baseline. TALLY_E_NOTFOUND
 * when seq was neither prepared nor committed. */
int meter_vm_commit(struct meter *m, const char *vm, uint64_t seq);
/* Stop metering and forget the VM. Read its final sample first. */
int meter_vm_unregister(struct meter *m, const char *vm);

/* Names of the registered VMs, sorted; *names is malloc'd (free it). */
int meter_vm_list(struct meter *m, char (**names)[METER_VM_NAME_MAX + 1],
		  size_t *n);

/* CPU use and vCPU wait as a share of one host CPU, from two readings of
 * the same totals (what `tally node top` shows, served by GET
 * /v1/node/vms). The window is the time between the newest reading and an
 * older one at least METER_RATE_SPAN_NS before it (or the first reading,
 * during the first span), so that frequent readers see steady figures. */
#define METER_RATE_SPAN_NS 1000000000ull

struct meter_rate {
	struct meter_totals at[2];  /* older, newer anchor */
	uint64_t ns[2];
	unsigned n;                 /* anchors set: 0, 1 or 2 */
};

struct meter_share {
	double cpu_pct;             /* CPU time / window, in % of one CPU */
	double wait_pct;            /* run delay / window, in % of one CPU */
	uint64_t window_ns;
};

/* Takes a reading made at now_ns (CLOCK_MONOTONIC) and gives the shares
 * since an anchor. false (shares unknown) for the first reading, or when
 * the totals went back (another VM under the same name). */
bool meter_rate_at(struct meter_rate *r, const struct meter_totals *t,
		   uint64_t now_ns, struct meter_share *out);
/* The same, now. */
bool meter_rate_update(struct meter_rate *r, const struct meter_totals *t,
		       struct meter_share *out);

#endif
