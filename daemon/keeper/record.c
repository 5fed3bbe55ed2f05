/* The usage record of an interval (or of the span up to a lease's end): the
 * meters read (two-phase: the sample becomes final when the record commits),
 * capped to what the contract leases, signed and submitted. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/keeper/keeper_impl.h"
#include "daemon/log.h"
#include "lib/errors.h"

/* Builds, signs and submits the next usage record of a running lease, for
 * [last end, end_ns]. */
int keeper_submit_usage(struct keeper *k, struct kept *e, const struct lease *l, uint64_t end_ns,
			bool paused)
{
	const struct lease_contract *c = &l->contract;
	uint64_t start_ns = l->next_seq ? l->last_end_ns : l->started_ns;
	struct meter_sample s;
	struct tx t = { .kind = TX_USAGE };
	struct usage_record *u = &t.u.usage;
	char what[48];

	if (end_ns <= start_ns)
		return TALLY_E_RANGE;
	int rc = meter_vm_prepare(k->meter, e->vm, l->next_seq, &s);
	if (rc) {
		log_warn("lease %.12s: meter read failed: %s", e->hex, tally_strerror(rc));
		return rc;
	}
	uint64_t span = end_ns - start_ns;
	memcpy(u->lease_id, l->id, LEASE_ID_LEN);
	u->seq = l->next_seq;
	memcpy(u->prev_hash, l->last_usage_hash, HASH_LEN);
	u->start_ns = start_ns;
	u->end_ns = end_ns;
	/* The meter counts all of QEMU's threads (emulator, I/O too), and reads
	 * the counters a little after end_ns: both CPU time and run-queue
	 * delay can exceed what the VM's vCPUs could have in the span. The
	 * record carries at most the vCPUs' worth of each (the chain's rule,
	 * contracts/lease.c): the tenant pays for no more than it leased, and
	 * an SLA breach is judged against the same vCPUs x span. */
	unsigned __int128 all = (unsigned __int128)c->vm.vcpus * span;
	uint64_t vcpu_span = all > UINT64_MAX ? UINT64_MAX : (uint64_t)all;
	u->cpu_ns = s.delta.cpu_ns < vcpu_span ? s.delta.cpu_ns : vcpu_span;
	u->run_delay_ns = s.delta.run_delay_ns < vcpu_span ? s.delta.run_delay_ns : vcpu_span;
	if (paused) {
		/* No vCPU ran for the tenant: what QEMU's own threads used while
		 * the host kept the VM paused is the provider's. */
		u->cpu_ns = 0;
		u->run_delay_ns = 0;
	}
	u->mem_mib = paused ? 0 : c->vm.memory_mib;    /* paused: its memory was not the tenant's */
	u->mem_peak_bytes = s.mem_peak_bytes;
	uint64_t gpu_total = 0;
	rc = gpu_meter_lease_ns(&k->gpu, l->id, (const char (*)[13])e->gpus, e->ngpus,
				end_ns - l->started_ns, &gpu_total, &u->gpu_source);
	if (rc)
		return rc;
	u->gpu_ns = gpu_total > l->gpu_ns ? gpu_total - l->gpu_ns : 0;
	if ((unsigned __int128)u->gpu_ns > (unsigned __int128)c->vm.gpus * span)
		u->gpu_ns = (uint64_t)c->vm.gpus * span;
	snprintf(what, sizeof(what), "USAGE %" PRIu64, u->seq);
	rc = keeper_submit(k, &t, what, e->hex, e->last_tx);
	if (!rc) {
		e->inflight = true;
		e->inflight_seq = u->seq;
		e->submitted_ns = keeper_now();
	}
	return rc;
}

