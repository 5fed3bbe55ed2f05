/* tally usage ID: a lease's metered intervals and what each was charged.
 *
 * Each record is decoded from its signed USAGE transaction (not from the
 * node's JSON summary), its charge computed with contracts/ (settle_usage,
 * carrying the remainders from record to record from seq 0 as the chain
 * does) and what it paid out of the escrow with the chain's rule
 * (settle_paid): a record costing more than the escrow left pays only that. */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/progress.h"
#include "cli/tally.h"
#include "contracts/contract.h"
#include "lib/errors.h"
#include "lib/chain/tx.h"
#include "lib/json_u64.h"

struct totals {
	uint64_t records, cpu_ns, run_delay_ns, gpu_ns, charged, sla;
	uint64_t escrow;                     /* the deposit less what the records paid */
	bool escrow_known;
	unsigned __int128 mem_mib_ns;
	bool header_printed;                 /* once the lease is known to exist */
};

static volatile sig_atomic_t stop;

static void on_sigint(int sig)
{
	(void)sig;
	stop = 1;
}

/* The API's entry i, which must be record seq i; its charge given the
 * settlement carry before it, advanced past it. 0 or an error with why. */
static int entry_record(const json_t *e, size_t i, const struct lease *l,
			struct usage_record *u, struct usage_charge *ch,
			struct settle_carry *carry, char *why)
{
	const char *hex = jget_str(e, "tx");
	size_t n = strlen(hex) / 2;
	uint8_t buf[TX_MAX_SIZE];
	struct tx t;
	int rc;

	if (strlen(hex) % 2 || n > sizeof(buf) || hex_decode(hex, buf, n)) {
		snprintf(why, WHY_MAX, "its transaction is not hex of at most %d bytes",
			 TX_MAX_SIZE);
		return TALLY_E_ENCODING;
	}
	rc = tx_decode(&t, buf, n);
	if (!rc && t.kind != TX_USAGE)
		rc = TALLY_E_INVALID;
	if (rc) {
		snprintf(why, WHY_MAX, "its transaction is not a USAGE record: %s",
			 tally_strerror(rc));
		return rc;
	}
	*u = t.u.usage;
	if (u->seq != i) {
		snprintf(why, WHY_MAX, "the node lists record seq %" PRIu64 " in place %zu", u->seq,
			 i);
		return TALLY_E_INVALID;
	}
	/* The chain's arithmetic on the signed record, not the node's summary. */
	rc = settle_usage(&l->contract, carry, u, ch, carry);
	if (rc)
		snprintf(why, WHY_MAX, "its charge does not compute: %s", tally_strerror(rc));
	return rc;
}

static void print_header(void)
{
	printf("%5s %-29s %8s %14s %14s %12s %8s %12s\n", "SEQ", "START", "SECS",
	       "CPU ns", "DELAY ns", "GPU ns", "MEM MiB", "CHARGE");
}

static void print_record(const struct usage_record *u, const struct usage_charge *ch,
			 uint64_t paid)
{
	uint64_t span = u->end_ns - u->start_ns;
	char a[32], b[32], when[48];

	printf("%5" PRIu64 " %-29s %4" PRIu64 ".%03" PRIu64
	       " %14" PRIu64 " %14" PRIu64 " %12" PRIu64 " %8u %12s%s",
	       u->seq, fmt_local_time(u->start_ns, when, sizeof(when)),
	       span / 1000000000u, span % 1000000000u / 1000000u, u->cpu_ns, u->run_delay_ns,
	       u->gpu_ns, u->mem_mib, fmt_amount(ch->net, a), ch->sla_breached ? " (sla)" : "");
	if (paid < ch->net)
		printf(" (escrow exhausted: paid %s)", fmt_amount(paid, b));
	printf("\n");
}

/* What the record paid: its net, or what the escrow still held (the chain's
 * rule, settle_paid). Records come in seq order from seq 0. */
static uint64_t add_total(struct totals *t, const struct lease *l, const struct usage_record *u,
			  const struct usage_charge *ch)
{
	uint64_t paid;

	if (!t->escrow_known) {
		t->escrow = l->contract.deposit;
		t->escrow_known = true;
	}
	paid = settle_paid(ch->net, t->escrow);
	t->escrow -= paid;
	t->records++;
	t->cpu_ns += u->cpu_ns;
	t->run_delay_ns += u->run_delay_ns;
	t->gpu_ns += u->gpu_ns;
	t->charged += paid;
	t->sla += ch->sla_credit;
	t->mem_mib_ns += (unsigned __int128)u->mem_mib * (u->end_ns - u->start_ns);
	return paid;
}

static json_t *record_json(const json_t *e, const struct usage_record *u,
			   const struct usage_charge *ch, uint64_t paid)
{
	return json_pack("{s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:I,s:o,s:o,s:o,s:o,s:o,s:o,s:o}",
			 "seq", json_u64(u->seq), "height", json_u64(jget_u64(e, "height")),
			 "start_ns", json_u64(u->start_ns), "end_ns", json_u64(u->end_ns),
			 "cpu_ns", json_u64(u->cpu_ns), "run_delay_ns", json_u64(u->run_delay_ns),
			 "gpu_ns", json_u64(u->gpu_ns), "mem_mib", (json_int_t)u->mem_mib,
			 "mem_peak_bytes", json_u64(u->mem_peak_bytes), "gross", json_u64(ch->gross),
			 "sla_windows", json_u64(ch->sla_windows),
			 "sla_breached", json_u64(ch->sla_breached),
			 "sla_credit", json_u64(ch->sla_credit), "charge", json_u64(ch->net),
			 "paid", json_u64(paid));
}

/* Fetches the lease and its records; prints those with seq >= *next. */
static int poll_once(struct client *cl, const char *id, bool json, json_t *out,
		     struct totals *t, uint64_t *next, struct lease *l)
{
	char path[160], why[WHY_MAX];
	json_t *j, *e;
	size_t i;
	enum client_rc rc;

	snprintf(path, sizeof(path), "/v1/leases/%s", id);
	rc = client_get(cl, path, &j);
	if (rc)
		return client_fail(cl, rc);
	int lrc = lease_from_json(j, l, why);
	json_decref(j);
	if (lrc) {
		err("the node's lease %.16s: %s", id, why);
		return EXIT_USAGE;
	}
	snprintf(path, sizeof(path), "/v1/leases/%s/usage", id);
	rc = client_get(cl, path, &j);
	if (rc)
		return client_fail(cl, rc);
	struct settle_carry carry = { 0 };
	json_array_foreach(json_object_get(j, "records"), i, e) {
		struct usage_record u;
		struct usage_charge ch;

		if (entry_record(e, i, l, &u, &ch, &carry, why)) {
			err("record %zu of lease %.16s: %s", i, id, why);
			json_decref(j);
			return EXIT_USAGE;
		}
		if (u.seq < *next)
			continue;
		*next = u.seq + 1;
		uint64_t paid = add_total(t, l, &u, &ch);
		if (!json && !t->header_printed) {
			print_header();
			t->header_printed = true;
		}
		if (json)
			json_array_append_new(out, record_json(e, &u, &ch, paid));
		else
			print_record(&u, &ch, paid);
	}
	json_decref(j);
	fflush(stdout);
	return EXIT_OK;
}

static void print_totals(const struct totals *t, const struct lease *l)
{
	char a[32], b[32];

	printf("total: %" PRIu64 " records, cpu %" PRIu64 " ns, run delay %" PRIu64
	       " ns, gpu %" PRIu64 " ns, memory %" PRIu64 " MiB*s\n",
	       t->records, t->cpu_ns, t->run_delay_ns, t->gpu_ns,
	       (uint64_t)(t->mem_mib_ns / 1000000000u));
	printf("charged %s, sla credits %s; lease %s", fmt_amount(t->charged, a),
	       fmt_amount(t->sla, b), lease_state_name(l->state));
	if (l->state == LEASE_CLOSED)
		printf(" (%s)", lease_close_reason_name(l->close_reason));
	printf("\n");
}

static const struct opt_doc usage_opts[] = {
	{ "follow", 'f', NULL, "keep printing new records until the lease closes or Ctrl-C", 0 },
	{ NULL, 0, NULL, NULL, 0 },
};

const struct cmd_doc doc_usage = {
	.name = "usage",
	.synopsis = "ID [--follow] [--node URL] [--json]",
	.summary = "a lease's metered usage and charges",
	.description =
		"The lease's usage records, one per metering interval as a rule: seq,\n"
		"start, length, CPU time, vCPU run-queue delay, GPU time, memory and the\n"
		"charge (marked '(sla)' when its delay breached the SLA: its credit may\n"
		"be 0, the fraction of a micro-unit carried to the next breach), then the totals\n"
		"(cpu_ns, run_delay_ns, gpu_ns, memory in MiB x s, amount charged and SLA\n"
		"credits). A record that cost more than the escrow left paid only\n"
		"that and closed the lease: it is marked 'escrow exhausted: paid N' (paid\n"
		"in --json), and the amount charged counts what was paid. --follow keeps\n"
		"printing new records until the lease closes or Ctrl-C, waiting through a\n"
		"node restart.",
	.opts = usage_opts,
};

int cmd_usage(int argc, char **argv)
{
	struct optable ot;
	struct common co;
	struct client cl;
	struct totals t;
	struct lease l;
	bool follow = false, polled = false;
	struct lease last;
	uint64_t next = 0;
	char id[65];
	json_t *recs = NULL;
	int c, rc;

	cmd_optable(&ot, &doc_usage, ":");
	common_init(&co);
	while ((c = getopt_long(argc, argv, ot.shortopts, ot.longopts, NULL)) != -1) {
		if (common_opt(&co, c, optarg))
			continue;
		if (c != 'f')
			return bad_option("usage", c, argv);
		follow = true;
	}
	if (co.help)
		return cmd_help(&doc_usage);
	if (argc - optind != 1)
		return usage_error("usage", "give one lease ID");
	if (client_init(&cl, co.node))
		return err("%s", cl.err), EXIT_USAGE;
	rc = resolve_lease_id(&cl, argv[optind], id);
	if (rc)
		goto out;
	memset(&t, 0, sizeof(t));
	recs = json_array();
	signal(SIGINT, on_sigint);
	/* Following, a node restarting is waited for (Ctrl-C ends it). */
	if (follow)
		cl.reach_until = time(NULL) + 365 * 86400;
	cl.cancel = &stop;
	for (;;) {
		rc = poll_once(&cl, id, co.json, recs, &t, &next, &l);
		/* Ctrl-C while the node was being asked ends the follow as
		 * between two polls: with what was printed so far. */
		if (rc && stop && follow && polled) {
			rc = EXIT_OK;
			l = last;
			break;
		}
		if (!rc) {
			polled = true;
			last = l;
		}
		if (!rc && !co.json && !t.header_printed) {
			print_header();   /* no record yet: the lease has none so far */
			t.header_printed = true;
		}
		if (rc || !follow || stop || l.state == LEASE_CLOSED)
			break;
		unsigned wait = l.contract.interval_s > 2 ? l.contract.interval_s / 2 : 1;
		for (unsigned s = 0; s < wait && !stop; s++)
			sleep(1);
		if (stop)
			break;
	}
	if (rc)
		goto out;
	if (co.json)
		print_json(json_pack("{s:s,s:O,s:{s:o,s:o,s:o,s:o,s:o,s:o,s:o},s:s}",
				     "lease", id, "records", recs, "totals",
				     "records", json_u64(t.records), "cpu_ns", json_u64(t.cpu_ns),
				     "run_delay_ns", json_u64(t.run_delay_ns),
				     "gpu_ns", json_u64(t.gpu_ns),
				     "mem_mib_s", json_u64((uint64_t)(t.mem_mib_ns / 1000000000u)),
				     "charged", json_u64(t.charged),
				     "sla_credits", json_u64(t.sla),
				     "state", lease_state_name(l.state)));
	else
		print_totals(&t, &l);
out:
	json_decref(recs);
	client_free(&cl);
	return rc;
}
