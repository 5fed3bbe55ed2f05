/* What else was running while a benchmark measured: the checks behind
 * baselines that assume a quiet scheduler hook or an idle node.
 *
 *   - BPF programs that run on context switches, by the kernel's own
 *     statistics (any program whose run count grew during a burst of
 *     switches, however it is attached), each with where it is attached,
 *     the bpffs pin that holds it (and the command that removes a tally
 *     meter's pin directory) or the process that holds it;
 *   - other tally nodes, QEMU processes and the load average.
 *
 * cpumeter_bench refuses to measure over foreign programs on the switch
 * path (or, when asked, measures them as part of its baseline and says
 * so); node_bench and provision_bench print what they found. */
#ifndef TALLY_BENCH_QUIET_H
#define TALLY_BENCH_QUIET_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#define QUIET_PROGS_MAX 32

struct quiet_prog {
	unsigned id;
	char name[17];              /* the program's name */
	char hook[64];              /* where it is attached, when a link says */
	char pin[256];              /* a bpffs pin holding its link, or "" */
	char tally_dir[256];        /* the pin's directory, if a tally meter's */
	pid_t holder;               /* a process holding it, or 0 */
	char holder_comm[16];
	unsigned long long runs;    /* during the probe */
};

struct quiet_report {
	bool stats_ok;              /* BPF statistics could be turned on */
	unsigned long long switches;   /* context switches of the probe */
	size_t nprogs;              /* programs that ran on them */
	struct quiet_prog progs[QUIET_PROGS_MAX];
	unsigned tallyd, qemu;      /* other processes of these names */
	double load1;               /* /proc/loadavg */
};

/* Runs a burst of context switches (two processes bouncing a byte, pinned
 * to CPU 0) with the kernel's BPF statistics on, and fills r with the
 * programs that ran on them, skipping those whose id is in skip[nskip]
 * (the benchmark's own); also the other processes and the load. Needs
 * root for the statistics; without, stats_ok is false. my_pid: processes
 * of this benchmark to leave out (0: none). */
void quiet_probe(struct quiet_report *r, const unsigned *skip, size_t nskip,
		 pid_t my_pid);

/* Prints what was found, each line starting with prefix: the programs one
 * per line, with their pin or holder and how to remove them. */
void quiet_print(FILE *out, const char *prefix, const struct quiet_report *r);

#endif
