/* The lease state machine and the lease's canonical encoding.
 *
 *   OPENED --start--> RUNNING --usage--> RUNNING
 *     |                  |  \--usage beyond the escrow--> CLOSED(escrow-exhausted)
 *     |                  |--close(term-ended | escrow-exhausted | guest-stopped
 *     |                  |        | provider-failed)--> CLOSED
 *     |                  \--close(tenant-closed, by the tenant)--> CLOSING
 *     |
 *     |   CLOSING --usage reaching closing_ns--> CLOSED(tenant-closed)
 *     |      \--close(tenant-closed: by the provider, or by the tenant once
 *     |               the grace has passed | provider-failed)--> CLOSED
 *     \--close(tenant-closed | provider-failed | rejected)--> CLOSED
 *
 * Only the provider starts a lease and signs its usage records. The tenant
 * may close it as "tenant-closed"; the provider as "term-ended" (once the
 * term has ended at the block's time), "escrow-exhausted" (once the escrow
 * cannot pay one more interval), "guest-stopped" (the guest powered itself
 * off), "provider-failed", or "rejected" (a lease it has not started). A
 * closed lease takes no further transition.
 *
 * Every second of a lease is billed once, from the LEASE_START block time to
 * its end, in the way its end says: a tenant's close, a term's end and a guest
 * stopping itself are billed up to that moment by the provider's last record
 * (for a tenant's close, the lease waits in "closing" for it, and the tenant
 * may close without it once lease_close_grace_ns has passed); escrow
 * exhaustion bills what the escrow holds; a provider's failure favours the
 * tenant: the time since the last record is not billed. Money is conserved: while a lease is open,
 * escrow + charged == deposit; closing hands the escrow back to the tenant.
 *
 * Usage records form a chain per lease:
 *  - seq is 0, 1, 2, ... (lease->next_seq); prev_hash is the previous
 *    record's hash (zero for seq 0);
 *  - the first record starts exactly at started_ns (the block time of
 *    LEASE_START: metering before it is not billed), and each later record
 *    starts exactly where the previous one ended, so no time is billed twice
 *    or skipped;
 *  - end_ns > start_ns, and end_ns is not past the end of the term
 *    (started_ns + duration_s * 1e9): the lease keeper cuts the last record
 *    at the term's end; nor, for a closing lease, past closing_ns;
 *  - end_ns is at most USAGE_MAX_AHEAD_NS after the time of the block that
 *    commits it: no record bills time that has not happened;
 *  - a record may span more than one interval: after the provider's node was
 *    down, one record covers the whole gap with the CPU metered across it,
 *    so nothing is lost or counted twice (splitting it would have to guess
 *    how the usage fell within the gap);
 *  - cpu_ns <= vcpus * span: the meter reports CPU time of the VM's vCPUs,
 *    at most what the contract leases (emulator overhead above that is the
 *    provider's cost); run_delay_ns <= vcpus * span (a vCPU waits at most
 *    all the time); gpu_ns <= gpus * span; mem_mib is the contract's, or 0
 *    for a span in which the host kept the VM paused (the tenant could not
 *    use its memory, so it is not billed; a provider may only bill less);
 *  - gpu_source is "none" exactly when the lease has no GPU.
 * A refused record changes nothing.
 *
 * Lease state encoding (version 3; version 3 added the carry):
 *
 *   u8      version          = 3
 *   fixed32 id
 *   ...     contract         as contract_encode_to (contracts/contract.c)
 *   u8      state            1 opened, 2 running, 3 closed, 4 closing
 *   u8      close_reason     0 while open; 1..6 once closed (2 while closing)
 *   u64     opened_height
 *   u64     started_ns
 *   u64     closed_height
 *   u64     escrow
 *   u64     charged
 *   u64     sla_credits
 *   u64     next_seq
 *   fixed32 last_usage_hash
 *   u64     last_end_ns
 *   u64     cpu_ns
 *   u64     run_delay_ns
 *   u64     gpu_ns
 *   u64     closing_ns       0 unless closing (or closed from closing)
 *   u64     close_asked_ns   0 unless closing (or closed from closing)
 *   u64     carry_cpu        settlement's remainders after the last record
 *   u64     carry_mem        (struct settle_carry), each below its divisor
 *   u64     carry_gpu
 *   u64     carry_credit
 *
 * Decoding also checks that state and close reason agree, that money is
 * conserved (escrow + charged == deposit while open or closing, escrow == 0
 * and charged <= deposit once closed) and that each remainder is below its
 * divisor: TALLY_E_RANGE otherwise. */
#include "contracts/contract.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lib/errors.h"

#define LEASE_VERSION 3
#define NS_PER_S 1000000000u

typedef unsigned __int128 u128;

const char *lease_state_name(enum lease_state s)
{
	switch (s) {
	case LEASE_OPENED: return "opened";
	case LEASE_RUNNING: return "running";
	case LEASE_CLOSED: return "closed";
	case LEASE_CLOSING: return "closing";
	}
	return "unknown";
}

const char *lease_close_reason_name(enum lease_close_reason r)
{
	switch (r) {
	case CLOSE_NONE: return "none";
	case CLOSE_TERM_ENDED: return "term-ended";
	case CLOSE_TENANT: return "tenant-closed";
	case CLOSE_EXHAUSTED: return "escrow-exhausted";
	case CLOSE_PROVIDER_FAILED: return "provider-failed";
	case CLOSE_REJECTED: return "rejected";
	case CLOSE_GUEST_STOPPED: return "guest-stopped";
	}
	return "unknown";
}

uint64_t lease_close_grace_ns(const struct lease_contract *c)
{
	uint64_t s = 2 * (uint64_t)c->interval_s;

	return (s < 60 ? 60 : s) * NS_PER_S;
}

int lease_open(struct lease *l, const uint8_t id[LEASE_ID_LEN],
	       const struct lease_contract *c, uint64_t height, char *why)
{
	memset(l, 0, sizeof(*l));
	memcpy(l->id, id, LEASE_ID_LEN);
	l->contract = *c;
	l->state = LEASE_OPENED;
	l->close_reason = CLOSE_NONE;
	l->opened_height = height;
	l->escrow = c->deposit;
	if (why)
		why[0] = '\0';
	return 0;
}

enum lease_party lease_party_of(const struct lease *l, const uint8_t key[PUBKEY_LEN])
{
	if (!memcmp(key, l->contract.tenant, PUBKEY_LEN))
		return PARTY_TENANT;
	if (!memcmp(key, l->contract.provider, PUBKEY_LEN))
		return PARTY_PROVIDER;
	return PARTY_NONE;
}

/* "ab12cd34": enough of a key for a message. */
static const char *short_key(const uint8_t key[PUBKEY_LEN], char buf[9])
{
	hex_encode(key, 4, buf);
	return buf;
}

static int provider_only(const struct lease *l, const uint8_t signer[PUBKEY_LEN],
			 const char *what, char *why)
{
	char a[9], b[9];

	if (lease_party_of(l, signer) == PARTY_PROVIDER)
		return 0;
	return why_set(why, TALLY_E_UNAUTHORIZED,
		       "%s of a lease must be signed by its provider %s, not by %s", what,
		       short_key(l->contract.provider, b), short_key(signer, a));
}

int lease_start(struct lease *l, const uint8_t signer[PUBKEY_LEN], uint64_t time_ns, char *why)
{
	int rc = provider_only(l, signer, "the start", why);

	if (rc)
		return rc;
	if (l->state != LEASE_OPENED)
		return why_set(why, TALLY_E_STATE, "lease is %s; only an opened lease can start",
			       lease_state_name(l->state));
	if (time_ns == 0)
		return why_set(why, TALLY_E_INVALID, "start time 0 is not a valid block time");
	l->state = LEASE_RUNNING;
	l->started_ns = time_ns;
	l->last_end_ns = time_ns;
	return 0;
}

uint64_t lease_term_end_ns(const struct lease *l)
{
	u128 end;

	if (l->started_ns == 0)
		return 0;
	end = (u128)l->started_ns + (u128)l->contract.duration_s * NS_PER_S;
	return end > UINT64_MAX ? UINT64_MAX : (uint64_t)end;
}

bool lease_term_ended(const struct lease *l, uint64_t time_ns)
{
	return l->state == LEASE_RUNNING && time_ns >= lease_term_end_ns(l);
}

int lease_next_interval_max(const struct lease *l, uint64_t *out)
{
	const struct lease_contract *c = &l->contract;
	uint64_t span = (uint64_t)c->interval_s * NS_PER_S;
	struct usage_record u = {
		.end_ns = span,
		.cpu_ns = c->vm.vcpus * span,        /* at most 256 x 3600 s: fits */
		.gpu_ns = c->vm.gpus * span,
		.mem_mib = c->vm.memory_mib,
	};
	struct usage_charge ch;
	int rc;

	/* Settlement's own arithmetic on a fully used interval, with the
	 * lease's carries: what the next such record would be charged. */
	rc = settle_usage(c, &l->carry, &u, &ch, NULL);
	if (!rc)
		*out = ch.gross;
	return rc;
}

bool lease_escrow_short(const struct lease *l)
{
	uint64_t max_charge;

	/* A contract whose interval overflows: no escrow can cover it. */
	if (lease_next_interval_max(l, &max_charge))
		return true;
	return l->escrow < max_charge;
}

/* seq, prev_hash and time contiguity: the record's place in the chain. */
static int check_chain(const struct lease *l, const struct usage_record *u, char *why)
{
	char hex[2 * HASH_LEN + 1];

	if (memcmp(u->lease_id, l->id, LEASE_ID_LEN) != 0)
		return why_set(why, TALLY_E_INVALID, "usage record is for another lease");
	if (u->seq < l->next_seq)
		return why_set(why, TALLY_E_USAGECHAIN,
			       "expected seq %" PRIu64 ", got %" PRIu64 " (already applied)",
			       l->next_seq, u->seq);
	if (u->seq != l->next_seq)
		return why_set(why, TALLY_E_USAGECHAIN, "expected seq %" PRIu64 ", got %" PRIu64,
			       l->next_seq, u->seq);
	if (memcmp(u->prev_hash, l->last_usage_hash, HASH_LEN) != 0) {
		hex_encode(l->last_usage_hash, HASH_LEN, hex);
		return why_set(why, TALLY_E_USAGECHAIN,
			       "record %" PRIu64 " does not link to the previous record (prev_hash must be %s)",
			       u->seq, hex);
	}
	if (u->seq == 0 && u->start_ns != l->started_ns)
		return why_set(why, TALLY_E_USAGECHAIN,
			       "first record starts at %" PRIu64 " ns, not when the lease started (%"
			       PRIu64 " ns, the LEASE_START block's time)", u->start_ns, l->started_ns);
	if (u->seq > 0 && u->start_ns != l->last_end_ns)
		return why_set(why, TALLY_E_USAGECHAIN,
			       "record %" PRIu64 " starts at %" PRIu64 " ns, not where the previous one ended (%" PRIu64 " ns)",
			       u->seq, u->start_ns, l->last_end_ns);
	return 0;
}

/* used <= count * span, in 128 bits. */
static bool within(uint64_t used, uint32_t count, uint64_t span)
{
	return (u128)used <= (u128)count * span;
}

/* The record's span and quantities against the contract. */
static int check_quantities(const struct lease *l, const struct usage_record *u, char *why)
{
	const struct lease_contract *c = &l->contract;
	uint64_t span;

	if (u->end_ns <= u->start_ns)
		return why_set(why, TALLY_E_RANGE,
			       "record ends at %" PRIu64 " ns, not after its start %" PRIu64 " ns",
			       u->end_ns, u->start_ns);
	span = u->end_ns - u->start_ns;
	if (u->end_ns > lease_term_end_ns(l))
		return why_set(why, TALLY_E_RANGE,
			       "record ends at %" PRIu64 " ns, after the term ends at %" PRIu64 " ns",
			       u->end_ns, lease_term_end_ns(l));
	if (l->state == LEASE_CLOSING && u->end_ns > l->closing_ns)
		return why_set(why, TALLY_E_RANGE,
			       "record ends at %" PRIu64 " ns, after the tenant closed the lease at %"
			       PRIu64 " ns", u->end_ns, l->closing_ns);
	if (!within(u->run_delay_ns, c->vm.vcpus, span))
		return why_set(why, TALLY_E_RANGE,
			       "run_delay_ns %" PRIu64 " exceeds %u vCPUs waiting for %" PRIu64 " ns",
			       u->run_delay_ns, c->vm.vcpus, span);
	if (!within(u->cpu_ns, c->vm.vcpus, span))
		return why_set(why, TALLY_E_RANGE,
			       "cpu_ns %" PRIu64 " exceeds %u vCPUs busy for %" PRIu64 " ns",
			       u->cpu_ns, c->vm.vcpus, span);
	if (!within(u->gpu_ns, c->vm.gpus, span))
		return why_set(why, TALLY_E_RANGE,
			       "gpu_ns %" PRIu64 " exceeds %u GPUs assigned for %" PRIu64 " ns",
			       u->gpu_ns, c->vm.gpus, span);
	if (u->mem_mib != c->vm.memory_mib && u->mem_mib != 0)
		return why_set(why, TALLY_E_RANGE,
			       "record bills %u MiB of memory, the contract leases %u MiB (or 0 for"
			       " a span the VM was paused)", u->mem_mib, c->vm.memory_mib);
	if (u->gpu_source > GPU_SOURCE_LIBVIRT)
		return why_set(why, TALLY_E_RANGE, "gpu_source %u is unknown", u->gpu_source);
	if ((c->vm.gpus == 0) != (u->gpu_source == GPU_SOURCE_NONE))
		return why_set(why, TALLY_E_RANGE,
			       c->vm.gpus ? "record of a GPU lease names no GPU meter"
					  : "record of a lease without GPU names a GPU meter");
	return 0;
}

static bool add_ok(uint64_t a, uint64_t b)
{
	return a <= UINT64_MAX - b;
}

int lease_apply_usage(struct lease *l, const uint8_t signer[PUBKEY_LEN],
		      const struct usage_record *u, const uint8_t record_hash[HASH_LEN],
		      uint64_t height, uint64_t time_ns, struct usage_charge *charge,
		      uint64_t *provider_gets, uint64_t *tenant_refund, char *why)
{
	struct usage_charge ch;
	struct settle_carry carry;
	uint64_t pay, refund = 0;
	int rc = provider_only(l, signer, "a usage record", why);

	if (rc)
		return rc;
	if (l->state != LEASE_RUNNING && l->state != LEASE_CLOSING)
		return why_set(why, TALLY_E_STATE, "lease is %s; usage applies only to a running lease",
			       lease_state_name(l->state));
	rc = check_chain(l, u, why);
	if (!rc)
		rc = check_quantities(l, u, why);
	if (rc)
		return rc;
	if (u->end_ns > time_ns && u->end_ns - time_ns > USAGE_MAX_AHEAD_NS)
		return why_set(why, TALLY_E_RANGE,
			       "record %" PRIu64 " ends at %" PRIu64 " ns, %" PRIu64 " ms after the"
			       " block that commits it (%" PRIu64 " ns): it bills time that has not"
			       " happened", u->seq, u->end_ns, (u->end_ns - time_ns) / 1000000,
			       time_ns);
	rc = settle_usage(&l->contract, &l->carry, u, &ch, &carry);
	if (rc)
		return why_set(why, rc, "charge of record %" PRIu64 " overflows 64 bits", u->seq);
	if (!add_ok(l->sla_credits, ch.sla_credit) || !add_ok(l->cpu_ns, u->cpu_ns) ||
	    !add_ok(l->run_delay_ns, u->run_delay_ns) || !add_ok(l->gpu_ns, u->gpu_ns))
		return why_set(why, TALLY_E_OVERFLOW, "lease totals overflow 64 bits");

	pay = settle_paid(ch.net, l->escrow);
	l->escrow -= pay;
	l->charged += pay;        /* cannot overflow: charged + escrow == deposit */
	l->sla_credits += ch.sla_credit;
	l->cpu_ns += u->cpu_ns;
	l->run_delay_ns += u->run_delay_ns;
	l->gpu_ns += u->gpu_ns;
	l->carry = carry;
	l->next_seq = u->seq + 1;
	memcpy(l->last_usage_hash, record_hash, HASH_LEN);
	l->last_end_ns = u->end_ns;
	if (ch.net > pay) {
		/* Nothing is left to refund. */
		l->state = LEASE_CLOSED;
		l->close_reason = CLOSE_EXHAUSTED;
		l->closed_height = height;
	} else if (l->state == LEASE_CLOSING && u->end_ns == l->closing_ns) {
		/* The last record of a tenant's close: the rest goes back. */
		refund = l->escrow;
		l->escrow = 0;
		l->state = LEASE_CLOSED;
		l->close_reason = CLOSE_TENANT;
		l->closed_height = height;
	}
	if (charge)
		*charge = ch;
	if (provider_gets)
		*provider_gets = pay;
	if (tenant_refund)
		*tenant_refund = refund;
	if (why)
		why[0] = '\0';
	return 0;
}

static bool reason_allowed(enum lease_state s, enum lease_close_reason r)
{
	switch (r) {
	case CLOSE_TENANT:
	case CLOSE_PROVIDER_FAILED:
		return s == LEASE_OPENED || s == LEASE_RUNNING || s == LEASE_CLOSING;
	case CLOSE_REJECTED:
		return s == LEASE_OPENED;
	case CLOSE_TERM_ENDED:
	case CLOSE_EXHAUSTED:
	case CLOSE_GUEST_STOPPED:
		return s == LEASE_RUNNING;
	case CLOSE_NONE:
		break;
	}
	return false;
}

/* Which party may give which reason, and when (see lease_close in
 * contracts/contract.h). The state itself is checked by reason_allowed. */
static int close_allowed(const struct lease *l, enum lease_party who,
			 enum lease_close_reason reason, uint64_t time_ns, char *why)
{
	uint64_t max_charge = 0;
	u128 until;

	if (who == PARTY_NONE)
		return why_set(why, TALLY_E_UNAUTHORIZED,
			       "only the lease's tenant or provider can close it");
	if (who == PARTY_TENANT) {
		if (reason != CLOSE_TENANT)
			return why_set(why, TALLY_E_UNAUTHORIZED,
				       "the tenant can close a lease only as tenant-closed, not %s",
				       lease_close_reason_name(reason));
		/* Exact: a close asked near the end of time does not wrap
		 * around to a grace already passed. */
		until = (u128)l->close_asked_ns + lease_close_grace_ns(&l->contract);
		if (l->state == LEASE_CLOSING && time_ns < until)
			return why_set(why, TALLY_E_STATE,
				       "the lease is closing: its provider may bill the time up to"
				       " the close until %" PRIu64 " ns (block time now %" PRIu64
				       " ns)", until > UINT64_MAX ? UINT64_MAX : (uint64_t)until,
				       time_ns);
		return 0;
	}
	switch (reason) {
	case CLOSE_TENANT:
		if (l->state == LEASE_CLOSING)
			return 0;   /* the provider takes the close without a last record */
		break;
	case CLOSE_TERM_ENDED:
		if (l->state == LEASE_RUNNING && !lease_term_ended(l, time_ns))
			return why_set(why, TALLY_E_STATE,
				       "the lease's term has not ended at block time %" PRIu64
				       " ns (it ends at %" PRIu64 " ns)", time_ns,
				       lease_term_end_ns(l));
		return 0;
	case CLOSE_EXHAUSTED:
		if (l->state == LEASE_RUNNING && !lease_escrow_short(l)) {
			lease_next_interval_max(l, &max_charge);
			return why_set(why, TALLY_E_STATE,
				       "escrow %" PRIu64 " still covers an interval (at most %"
				       PRIu64 ")", l->escrow, max_charge);
		}
		return 0;
	case CLOSE_GUEST_STOPPED:
	case CLOSE_PROVIDER_FAILED:
	case CLOSE_REJECTED:
		return 0;
	case CLOSE_NONE:
		break;
	}
	return why_set(why, TALLY_E_UNAUTHORIZED, "the provider cannot close a %s lease as %s",
		       lease_state_name(l->state), lease_close_reason_name(reason));
}

int lease_close(struct lease *l, const uint8_t signer[PUBKEY_LEN],
		enum lease_close_reason reason, uint64_t height, uint64_t time_ns,
		uint64_t *tenant_refund, char *why)
{
	enum lease_party who = lease_party_of(l, signer);
	uint64_t term_end;
	int rc;

	if (l->state == LEASE_CLOSED)
		return why_set(why, TALLY_E_STATE, "lease is already closed (%s)",
			       lease_close_reason_name(l->close_reason));
	if (l->state < LEASE_OPENED || l->state > LEASE_STATE_MAX)
		return why_set(why, TALLY_E_STATE, "lease is in unknown state %u", l->state);
	if (reason < CLOSE_TERM_ENDED || reason > CLOSE_REASON_MAX)
		return why_set(why, TALLY_E_INVALID, "close reason %d is unknown", (int)reason);
	rc = close_allowed(l, who, reason, time_ns, why);
	if (rc)
		return rc;
	if (!reason_allowed(l->state, reason))
		return why_set(why, TALLY_E_STATE, "a lease that is %s cannot close as %s",
			       lease_state_name(l->state), lease_close_reason_name(reason));
	/* A tenant's close of a running lease waits for the provider's last
	 * record, unless the last record already ends where it would. */
	term_end = lease_term_end_ns(l);
	if (who == PARTY_TENANT && l->state == LEASE_RUNNING) {
		uint64_t at = time_ns < term_end ? time_ns : term_end;

		if (l->last_end_ns < at) {
			if (tenant_refund)
				*tenant_refund = 0;
			l->state = LEASE_CLOSING;
			l->close_reason = CLOSE_TENANT;
			l->closing_ns = at;
			l->close_asked_ns = time_ns;
			if (why)
				why[0] = '\0';
			return 0;
		}
	}
	if (tenant_refund)
		*tenant_refund = l->escrow;
	l->escrow = 0;
	l->state = LEASE_CLOSED;
	l->close_reason = reason;
	l->closed_height = height;
	if (why)
		why[0] = '\0';
	return 0;
}

void lease_encode_to(struct enc *e, const struct lease *l)
{
	enc_u8(e, LEASE_VERSION);
	enc_fixed(e, l->id, LEASE_ID_LEN);
	contract_encode_to(e, &l->contract);
	enc_u8(e, l->state);
	enc_u8(e, l->close_reason);
	enc_u64(e, l->opened_height);
	enc_u64(e, l->started_ns);
	enc_u64(e, l->closed_height);
	enc_u64(e, l->escrow);
	enc_u64(e, l->charged);
	enc_u64(e, l->sla_credits);
	enc_u64(e, l->next_seq);
	enc_fixed(e, l->last_usage_hash, HASH_LEN);
	enc_u64(e, l->last_end_ns);
	enc_u64(e, l->cpu_ns);
	enc_u64(e, l->run_delay_ns);
	enc_u64(e, l->gpu_ns);
	enc_u64(e, l->closing_ns);
	enc_u64(e, l->close_asked_ns);
	enc_u64(e, l->carry.cpu);
	enc_u64(e, l->carry.mem);
	enc_u64(e, l->carry.gpu);
	enc_u64(e, l->carry.credit);
}

bool lease_same(const struct lease *x, const struct lease *y)
{
	struct enc a, b;
	bool same;

	enc_init(&a);
	enc_init(&b);
	lease_encode_to(&a, x);
	lease_encode_to(&b, y);
	same = !enc_error(&a) && !enc_error(&b) && a.len == b.len && !memcmp(a.buf, b.buf, a.len);
	enc_free(&a);
	enc_free(&b);
	return same;
}

/* State, reason and money must agree. */
static bool lease_consistent(const struct lease *l)
{
	uint64_t deposit = l->contract.deposit;
	bool money_open = add_ok(l->escrow, l->charged) && l->escrow + l->charged == deposit;
	bool no_closing = l->closing_ns == 0 && l->close_asked_ns == 0;

	switch (l->state) {
	case LEASE_OPENED:
	case LEASE_RUNNING:
		return l->close_reason == CLOSE_NONE && money_open && no_closing;
	case LEASE_CLOSING:
		return l->close_reason == CLOSE_TENANT && money_open && l->closing_ns > 0 &&
		       l->close_asked_ns >= l->closing_ns && l->last_end_ns < l->closing_ns;
	case LEASE_CLOSED:
		return l->close_reason >= CLOSE_TERM_ENDED &&
		       l->close_reason <= CLOSE_REASON_MAX && l->escrow == 0 &&
		       l->charged <= deposit;
	}
	return false;
}

void lease_decode_from(struct dec *d, struct lease *l)
{
	uint8_t version;

	memset(l, 0, sizeof(*l));
	version = dec_u8(d);
	if (!dec_error(d) && version != LEASE_VERSION)
		dec_fail(d, TALLY_E_VERSION);
	dec_fixed(d, l->id, LEASE_ID_LEN);
	contract_decode_from(d, &l->contract);
	l->state = dec_u8(d);
	l->close_reason = dec_u8(d);
	l->opened_height = dec_u64(d);
	l->started_ns = dec_u64(d);
	l->closed_height = dec_u64(d);
	l->escrow = dec_u64(d);
	l->charged = dec_u64(d);
	l->sla_credits = dec_u64(d);
	l->next_seq = dec_u64(d);
	dec_fixed(d, l->last_usage_hash, HASH_LEN);
	l->last_end_ns = dec_u64(d);
	l->cpu_ns = dec_u64(d);
	l->run_delay_ns = dec_u64(d);
	l->gpu_ns = dec_u64(d);
	l->closing_ns = dec_u64(d);
	l->close_asked_ns = dec_u64(d);
	l->carry.cpu = dec_u64(d);
	l->carry.mem = dec_u64(d);
	l->carry.gpu = dec_u64(d);
	l->carry.credit = dec_u64(d);
	if (!dec_error(d) && (!lease_consistent(l) || !settle_carry_valid(&l->carry)))
		dec_fail(d, TALLY_E_RANGE);
}

int lease_decode(struct lease *l, const uint8_t *p, size_t n)
{
	struct dec d;

	dec_init(&d, p, n);
	lease_decode_from(&d, l);
	return dec_finish(&d);
}
