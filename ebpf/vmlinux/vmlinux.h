/* The kernel types the programs in ebpf/ use, written by hand so that they
 * build on a machine whose kernel has no BTF (or runs another kernel than the
 * one that will load them). Every struct is marked preserve_access_index: clang
 * records each field access as a CO-RE relocation, and libbpf rewrites the
 * offsets at load time against the running kernel's BTF. So only the field
 * names and types matter here, never the layout, and only the fields the
 * programs read are listed.
 *
 * `make EBPF_VMLINUX=btf` builds against a full header dumped from
 * /sys/kernel/btf/vmlinux instead (mk/ebpf.mk); check-ebpf compiles the
 * programs against both, so neither drifts. */
#ifndef TALLY_VMLINUX_H
#define TALLY_VMLINUX_H

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef signed char __s8;
typedef short __s16;
typedef int __s32;
typedef long long __s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef __u8 u8;
typedef __u16 u16;
typedef __u32 u32;
typedef __u64 u64;
typedef __s32 s32;
typedef __s64 s64;
typedef _Bool bool;
typedef int pid_t;
enum { false = 0, true = 1 };

/* From the UAPI (include/uapi/linux/bpf.h): stable values. */
enum bpf_map_type {
	BPF_MAP_TYPE_HASH = 1,
};

enum {
	BPF_ANY = 0,
	BPF_NOEXIST = 1,
	BPF_EXIST = 2,
};

enum {
	BPF_F_NO_PREALLOC = 1,
};

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

struct kernfs_node {
	u64 id;
};

struct cgroup {
	struct kernfs_node *kn;
};

struct css_set {
	struct cgroup *dfl_cgrp;
};

/* CONFIG_SCHED_INFO: what /proc/TID/schedstat shows. */
struct sched_info {
	unsigned long pcount;			/* times switched in */
	unsigned long long run_delay;		/* ns spent waiting to run */
};

struct sched_entity {
	u64 sum_exec_runtime;			/* ns of CPU */
};

struct task_struct {
	struct sched_entity se;
	struct sched_info sched_info;
	pid_t pid;
	u64 start_boottime;	/* `real_start_time` before Linux 5.5 */
	struct css_set *cgroups;
};

#pragma clang attribute pop

#endif
