/* CPU use and vCPU wait as a share of one host CPU over a window: the one
 * place the operator's "top" figures are computed (see cpumeter.h). The
 * node computes them for GET /v1/node/vms; `tally node top` prints them. */
#include "daemon/meter/cpumeter.h"

#include <string.h>
#include <time.h>

static double pct(uint64_t used_ns, uint64_t span_ns)
{
	return 100.0 * (double)used_ns / (double)span_ns;
}

bool meter_rate_at(struct meter_rate *r, const struct meter_totals *t,
		   uint64_t now_ns, struct meter_share *out)
{
	unsigned from;

	memset(out, 0, sizeof(*out));
	if (r->n && (t->cpu_ns < r->at[1].cpu_ns ||
		     t->run_delay_ns < r->at[1].run_delay_ns || now_ns < r->ns[1]))
		r->n = 0;               /* went back: start over */
	if (!r->n) {
		r->at[0] = r->at[1] = *t;
		r->ns[0] = r->ns[1] = now_ns;
		r->n = 1;
		return false;
	}
	/* The newer anchor once it is a span old, else the older one. */
	from = now_ns - r->ns[1] >= METER_RATE_SPAN_NS || r->n == 1 ? 1 : 0;
	out->window_ns = now_ns - r->ns[from];
	if (!out->window_ns)
		return false;
	out->cpu_pct = pct(t->cpu_ns - r->at[from].cpu_ns, out->window_ns);
	out->wait_pct = pct(t->run_delay_ns - r->at[from].run_delay_ns, out->window_ns);
	if (now_ns - r->ns[1] >= METER_RATE_SPAN_NS) {
		r->at[0] = r->at[1];
		r->ns[0] = r->ns[1];
		r->at[1] = *t;
		r->ns[1] = now_ns;
		r->n = 2;
	}
	return true;
}

bool meter_rate_update(struct meter_rate *r, const struct meter_totals *t,
		       struct meter_share *out)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return meter_rate_at(r, t, (uint64_t)ts.tv_sec * 1000000000u +
			     (uint64_t)ts.tv_nsec, out);
}
