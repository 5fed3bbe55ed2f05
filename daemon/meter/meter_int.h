/* What the CPU meter's files share among themselves (not for other parts):
 *   pin.c        loads the programs, pins and adopts them (meter_open)
 *   register.c   VMs and their cgroups in the ledger (meter_vm_register)
 *   threads.c    a VM's threads and what each adds to its totals
 *   read.c       totals and the two-phase reads (meter_vm_prepare/commit)
 *   rate.c       CPU and wait as a share of one CPU over a window */
#ifndef TALLY_METER_INT_H
#define TALLY_METER_INT_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "daemon/meter/cgroup.h"
#include "daemon/meter/cpumeter.h"
#include "ebpf/cpumeter.h"

/* In the order of lib/meter_pins.h's meter_pin_maps and meter_pin_links. */
enum { MAP_LEDGER, MAP_EXITS, MAP_THREADS, MAP__COUNT };
enum { HOOK_EXIT, HOOK_FREE, HOOK__COUNT };

struct cpumeter;

struct meter {
	struct cpumeter *skel;         /* NULL when read_only */
	int map_fd[MAP__COUNT];
	int link_fd[HOOK__COUNT];
	int lock_fd;                   /* the pin dir, flock'ed; -1 when read_only */
	char kind[8];                  /* "tp_btf" / "raw_tp" / "none" */
	char pin_dir[PATH_MAX];
	char cg2_root[CG_PATH_MAX];
	long ticks_per_s;              /* USER_HZ of /proc/TID/stat */
	bool read_only;
};

/* A snapshot of a map's u64 keys (the ledger's), sorted, without
 * duplicates; *keys is malloc'd. */
int meter_map_keys(int fd, uint64_t **keys, size_t *n);

/* CLOCK_REALTIME / CLOCK_BOOTTIME now. */
uint64_t meter_realtime_ns(void);
uint64_t meter_boot_ticks(const struct meter *m);

/* One VM as the ledger holds it. */
struct vm_cgroup {
	uint64_t id;
	struct tally_ledger l;
};

struct vm_view {
	struct vm_cgroup *cg;
	size_t n;
	ssize_t root;                  /* index of the top cgroup; -1 if none */
};

/* The VM's cgroups from the ledger. TALLY_E_NOTFOUND when none. */
int meter_view_load(struct meter *m, const char *vm, struct vm_view *v);
void meter_view_free(struct vm_view *v);
/* Writes one cgroup's entry back (nothing when read_only). */
int meter_view_store(struct meter *m, const struct vm_cgroup *c);

/* Registers cgroups created below the VM's top cgroup since the last look
 * (register.c). */
int meter_rescan(struct meter *m, const char *vm);

/* How long an ended thread's final figures are waited for, from its exit;
 * after that its figures at exit are taken as its last (threads.c). */
#define METER_SETTLE_NS 2000000000ull

/* What a VM's threads add up to now (threads.c). */
struct census {
	struct tally_totals live;      /* threads not yet folded into `ended` */
	unsigned pending;              /* ended threads whose final figures are
					* not in yet */
};

/* Counts the VM's threads: live ones from /proc, ended ones from the exits
 * map. With fold set (a writer), ended threads whose final figures are in
 * are folded into the root's `ended` totals and forgotten, threads seen for
 * the first time are remembered, and *root is stored as it changes. */
int meter_census(struct meter *m, struct vm_view *v, bool fold,
		 struct census *out);
/* Forgets every thread of the VM (unregister). */
void meter_threads_forget(struct meter *m, const struct vm_view *v);

#endif
