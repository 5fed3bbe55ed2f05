/* The operator's live view of the meter (`tally node top`): per VM, the CPU
 * it used and the time its vCPUs waited for a host CPU over the last
 * interval, with totals and memory. Rates are from two reads of the same
 * cumulative counters the usage records are made from. */
#include "daemon/meter/cpumeter.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/errors.h"

typedef char vm_name_t[METER_VM_NAME_MAX + 1];

struct top_row {
	vm_name_t name;
	struct meter_sample s;
	bool ok;
};

struct top_snapshot {
	struct top_row *rows;
	size_t n;
	uint64_t at_ns;               /* CLOCK_MONOTONIC */
};

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int take_snapshot(struct meter *m, struct top_snapshot *snap)
{
	vm_name_t *names;
	size_t n, i;
	int err;

	err = meter_vm_list(m, &names, &n);
	if (err)
		return err;
	snap->rows = calloc(n ? n : 1, sizeof(*snap->rows));
	if (!snap->rows) {
		free(names);
		return TALLY_E_NOMEM;
	}
	snap->n = n;
	snap->at_ns = mono_ns();
	for (i = 0; i < n; i++) {
		memcpy(snap->rows[i].name, names[i], sizeof(vm_name_t));
		snap->rows[i].ok = !meter_vm_read(m, names[i], &snap->rows[i].s);
	}
	free(names);
	return 0;
}

static const struct top_row *find_row(const struct top_snapshot *snap,
				      const char *name)
{
	size_t i;

	for (i = 0; i < snap->n; i++)
		if (!strcmp(snap->rows[i].name, name))
			return &snap->rows[i];
	return NULL;
}

/* Hundredths of a percent of one CPU, as an integer. */
static uint64_t share_bp(uint64_t used_ns, uint64_t span_ns)
{
	return span_ns ? used_ns * 10000 / span_ns : 0;
}

static void print_json(FILE *out, const struct top_row *r, uint64_t cpu_bp,
		       uint64_t wait_bp)
{
	const struct meter_sample *s = &r->s;
	json_t *o = json_pack(
		"{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
		"vm", r->name,
		"cpu_percent_x100", (json_int_t)cpu_bp,
		"vcpu_wait_percent_x100", (json_int_t)wait_bp,
		"cpu_ns", (json_int_t)s->total.cpu_ns,
		"run_delay_ns", (json_int_t)s->total.run_delay_ns,
		"run_delay_count", (json_int_t)s->total.run_delay_count,
		"mem_current_bytes", (json_int_t)s->mem_current_bytes,
		"mem_peak_bytes", (json_int_t)s->mem_peak_bytes,
		"mem_alloc_mib", (json_int_t)s->mem_alloc_mib,
		"cgroups", (json_int_t)s->ncgroups,
		"cgroups_gone", (json_int_t)s->ncgroups_gone);
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;

	if (text)
		fprintf(out, "%s\n", text);
	free(text);
	json_decref(o);
}

static void print_row(FILE *out, const struct top_row *r, uint64_t cpu_bp,
		      uint64_t wait_bp)
{
	const struct meter_sample *s = &r->s;

	fprintf(out, "%-24s %4" PRIu64 ".%02" PRIu64 " %4" PRIu64 ".%02" PRIu64
		" %12.3f %10.3f %8" PRIu64 " %8" PRIu64 " %8" PRIu32 " %3" PRIu32
		"%s\n", r->name, cpu_bp / 100, cpu_bp % 100, wait_bp / 100,
		wait_bp % 100, (double)s->total.cpu_ns / 1e9,
		(double)s->total.run_delay_ns / 1e9,
		s->mem_current_bytes >> 20, s->mem_peak_bytes >> 20,
		s->mem_alloc_mib, s->ncgroups,
		s->ncgroups_gone == s->ncgroups ? " ended" : "");
}

static void print_snapshot(FILE *out, const struct top_snapshot *prev,
			   const struct top_snapshot *cur, bool json)
{
	uint64_t span = cur->at_ns - prev->at_ns;
	size_t i;

	if (!json)
		fprintf(out, "%-24s %7s %7s %12s %10s %8s %8s %8s %3s\n", "VM",
			"CPU%", "WAIT%", "CPU s", "WAIT s", "MEM MiB",
			"PEAK MiB", "ALLOC", "CG");
	for (i = 0; i < cur->n; i++) {
		const struct top_row *r = &cur->rows[i];
		const struct top_row *p = find_row(prev, r->name);
		uint64_t cpu = 0, wait = 0;

		if (!r->ok)
			continue;
		if (p && p->ok && r->s.total.cpu_ns >= p->s.total.cpu_ns) {
			cpu = share_bp(r->s.total.cpu_ns - p->s.total.cpu_ns,
				       span);
			wait = share_bp(r->s.total.run_delay_ns -
					p->s.total.run_delay_ns, span);
		}
		if (json)
			print_json(out, r, cpu, wait);
		else
			print_row(out, r, cpu, wait);
	}
	fflush(out);
}

int meter_top(struct meter *m, FILE *out, const struct meter_top_opts *o)
{
	unsigned interval = o && o->interval_ms ? o->interval_ms : 1000;
	unsigned left = o ? o->iterations : 0;
	bool json = o && o->json;
	struct top_snapshot prev = { 0 }, cur = { 0 };
	struct timespec ts = {
		.tv_sec = interval / 1000,
		.tv_nsec = (long)(interval % 1000) * 1000000,
	};
	int err;

	err = take_snapshot(m, &prev);
	while (!err) {
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
		ts.tv_sec = interval / 1000;
		ts.tv_nsec = (long)(interval % 1000) * 1000000;
		err = take_snapshot(m, &cur);
		if (err)
			break;
		print_snapshot(out, &prev, &cur, json);
		free(prev.rows);
		prev = cur;
		cur.rows = NULL;
		if (left && --left == 0)
			break;
	}
	free(prev.rows);
	free(cur.rows);
	return err;
}
