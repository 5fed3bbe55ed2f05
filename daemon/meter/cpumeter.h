/* The CPU meter: per-VM CPU time, vCPU run-queue delay and memory.
 *
 * ebpf/cpumeter.bpf.c counts, per cgroup-v2 id, the CPU time the scheduler
 * charges (sched_stat_runtime) and how long vCPU threads wait for a CPU.
 * This module loads it, keeps it attached through pinned links, and reads
 * it. Everything lives under a bpffs pin directory (default
 * /sys/fs/bpf/tally): the programs keep counting while no daemon runs, and a
 * restarted daemon finds both the counters and the reader's baselines.
 *
 * A VM is a name (the lease id, or a domain name) and a cgroup-v2 directory
 * with everything below it. Counters are cumulative from registration; the
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
 * Committing an already committed seq is a no-op. */
#ifndef TALLY_METER_CPUMETER_H
#define TALLY_METER_CPUMETER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define METER_PIN_DIR_DEFAULT "/sys/fs/bpf/tally"
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
 * Errors, with why[WHY_MAX] filled:
 *   TALLY_E_UNAUTHORIZED  not root
 *   TALLY_E_NOTFOUND      no cgroup v2; read_only and no meter pinned
 *   TALLY_E_STATE         the kernel refuses BPF (no bpf(), no BTF, lockdown)
 *   TALLY_E_IO            the pin directory is not on a bpf file system */
int meter_open(struct meter **out, const struct meter_opts *o, char *why);
/* Releases this process's handles. Programs, counters and baselines stay
 * pinned and keep counting. */
void meter_close(struct meter *m);
/* Detach the programs and delete every pinned object in pin_dir (and the
 * directory). Counts not yet committed are lost: for tests and uninstall. */
int meter_unpin(const char *pin_dir);
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

/* Start metering: the directory and all cgroups below it. Threads in cgroups
 * named vcpuN (or all, with METER_VM_ALL_VCPU) have their run delay
 * metered. Registering the same VM again (e.g. after a restart) keeps its
 * counts and adds cgroups that appeared since. TALLY_E_EXISTS when a cgroup
 * belongs to another VM, TALLY_E_CAPACITY when the maps are full. */
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
	uint64_t run_delay_count;  /* waits that ended */
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
};

/* Totals and delta now, without committing anything. New cgroups below the
 * VM's directory are registered on the way; removed ones are kept. */
int meter_vm_read(struct meter *m, const char *vm, struct meter_sample *out);
/* Phase one: read, and remember the totals as the pending sample seq. */
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

/* The operator's view (`tally node top`): every interval_ms, one row per VM
 * with CPU use and vCPU wait (as % of one CPU over the interval), totals and
 * memory; `iterations` rows sets (0: until interrupted). json: one JSON
 * object per VM per line. Works on a read_only meter. */
struct meter_top_opts {
	unsigned interval_ms;      /* 0: 1000 */
	unsigned iterations;
	bool json;
};
int meter_top(struct meter *m, FILE *out, const struct meter_top_opts *o);

#endif
