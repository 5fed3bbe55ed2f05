/* tally lease create | list | show | close: a tenant's leases.
 *
 * `lease create` builds the contract from (in increasing priority) defaults
 * the node offers, a contract JSON file and flags, validates it with
 * contracts/ exactly as the node will, signs it as a LEASE_OPEN and submits
 * it. The lease id is the hash of that transaction. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cli/progress.h"
#include "cli/tally.h"
#include "contracts/contract.h"
#include "contracts/provider.h"
#include "lib/errors.h"
#include "lib/chain/tx.h"

#define DEFAULT_EXPIRY_S 600
#define DEFAULT_WAIT_S 300
/* The SLA terms a contract gets when neither file nor flag gives them,
 * moved to the nearest the provider's announcement admits. */
#define DEFAULT_MAX_DELAY_PPM 50000u
#define DEFAULT_CREDIT_PPM 100000u

int resolve_lease_id(struct client *c, const char *arg, char out[65])
{
	static const struct hex_prefix leases = {
		.what = "lease id", .list_path = "/v1/leases", .list_key = "leases",
		.id_key = "id", .none_hint = "",
	};

	return resolve_hex_prefix(c, &leases, arg, out);
}

/* --- create -------------------------------------------------------------- */

struct create_flags {
	const char *file;
	json_t *vm, *top;                 /* flag values, merged last */
	const char *ssh_key_file;         /* --ssh-key; NULL: the default, if any */
	bool no_ssh_key;                  /* --no-ssh-key */
	bool deposit_given;
	bool cheapest;                    /* --cheapest */
	bool wait;
	uint64_t timeout_s;
	/* SLA terms the file or a flag gave (not the defaults), and the
	 * chosen provider's announced bounds they are checked against. */
	bool delay_given, credit_given;
	struct provider_offer bounds;
};

/* dst[key] = src[key] for every key; objects one level deep merge. */
static void merge(json_t *dst, json_t *src)
{
	const char *key;
	json_t *v;

	json_object_foreach(src, key, v) {
		json_t *d = json_object_get(dst, key);
		if (json_is_object(d) && json_is_object(v))
			json_object_update(d, v);
		else
			json_object_set(dst, key, v);
	}
}

/* The node's offer and the tenant's account: the defaults of a contract. */
static json_t *contract_defaults(struct client *c, const struct tally_key *k)
{
	char me[65], path[128];
	json_t *st, *acct, *prices, *d;
	enum client_rc rc;

	rc = client_get(c, "/v1/status", &st);
	if (rc) {
		client_fail(c, rc);
		return NULL;
	}
	if (status_bad(st)) {
		json_decref(st);
		return NULL;
	}
	hex_encode(k->pub, PUBKEY_LEN, me);
	snprintf(path, sizeof(path), "/v1/accounts/%s", me);
	rc = client_get(c, path, &acct);
	if (rc) {
		client_fail(c, rc);
		json_decref(st);
		return NULL;
	}
	prices = json_object_get(st, "prices");
	d = json_pack("{s:i,s:s,s:s,s:s,s:I,s:I,"
		      "s:{s:i,s:i,s:i,s:i,s:s},s:i,s:i,s:I,"
		      "s:{s:I,s:I,s:I},s:{s:i,s:i}}",
		      "version", CONTRACT_VERSION, "chain_id", jget_str(st, "chain_id"),
		      "tenant", me, "provider", jget_str(st, "node"),
		      "nonce", (json_int_t)jget_u64(acct, json_object_get(acct, "next_nonce")
							     ? "next_nonce" : "nonce"),
		      "expiry", (json_int_t)(time(NULL) + DEFAULT_EXPIRY_S),
		      "vm", "vcpus", 1, "memory_mib", 512, "disk_gib", 1, "gpus", 0,
		      "image", "tiny",
		      "duration_s", 3600, "deposit", 1,
		      "interval_s", (json_int_t)(json_object_get(st, "interval_s")
						  ? jget_u64(st, "interval_s") : 60),
		      "prices", "vcpu_second", (json_int_t)jget_u64(prices, "vcpu_second"),
		      "mem_gib_second", (json_int_t)jget_u64(prices, "mem_gib_second"),
		      "gpu_second", (json_int_t)jget_u64(prices, "gpu_second"),
		      "sla", "max_delay_ppm", (json_int_t)DEFAULT_MAX_DELAY_PPM,
		      "credit_ppm", (json_int_t)DEFAULT_CREDIT_PPM);
	json_decref(st);
	json_decref(acct);
	if (!d)
		err("the node's status lacks what a contract needs");
	return d;
}

/* The first line of an OpenSSH public key file, without its line end. A
 * file with more than one key is refused: the contract holds one. */
static int read_ssh_key(const char *path, json_t *vm)
{
	char line[SSH_KEY_MAX + 2], rest[64];
	FILE *fp = fopen(path, "re");
	size_t n;

	if (!fp) {
		err("--ssh-key %s: %s", path, strerror(errno));
		return EXIT_USAGE;
	}
	if (!fgets(line, sizeof(line), fp))
		line[0] = '\0';
	n = strcspn(line, "\r\n");
	if (n == strlen(line) && !feof(fp)) {
		fclose(fp);
		err("%s: the key is longer than %d bytes", path, SSH_KEY_MAX);
		return EXIT_USAGE;
	}
	line[n] = '\0';
	while (fgets(rest, sizeof(rest), fp))
		if (rest[strspn(rest, " \t\r\n")]) {
			fclose(fp);
			err("%s holds more than one line; a lease takes one public key", path);
			return EXIT_USAGE;
		}
	fclose(fp);
	if (!line[0]) {
		err("%s is empty", path);
		return EXIT_USAGE;
	}
	json_object_set_new(vm, "ssh_key", json_string(line));
	return EXIT_OK;
}

/* --ssh-key FILE, or ~/.ssh/id_ed25519.pub when it exists and neither a
 * flag nor the contract file says otherwise. */
static int add_ssh_key(struct create_flags *f, const json_t *user_vm)
{
	char def[4096];
	const char *home = home_dir();

	if (f->no_ssh_key) {
		json_object_set_new(f->vm, "ssh_key", json_string(""));
		return EXIT_OK;
	}
	if (f->ssh_key_file)
		return read_ssh_key(f->ssh_key_file, f->vm);
	if (json_object_get(user_vm, "ssh_key") || !home || !*home)
		return EXIT_OK;
	snprintf(def, sizeof(def), "%s/.ssh/id_ed25519.pub", home);
	return access(def, R_OK) == 0 ? read_ssh_key(def, f->vm) : EXIT_OK;
}

/* The contract as JSON so far, decoded for its shape (prices may be
 * anything yet). */
static int shape_of(json_t *d, struct lease_contract *c)
{
	char why[WHY_MAX], *text = json_dumps(d, JSON_COMPACT);
	int rc = text ? contract_from_json(c, text, why) : TALLY_E_NOMEM;

	free(text);
	if (rc)
		err("the contract is malformed: %s", why);
	return rc ? EXIT_USAGE : EXIT_OK;
}

/* The VM the contract asks for, checked before a provider is chosen (which
 * may mean waiting for it): a VM no provider could run is refused at once.
 * The provider and terms are not known yet; what stands in for them here
 * is only there to parse, and the whole contract is validated again once
 * they are. */
static int check_vm_early(const json_t *d)
{
	struct lease_contract c;
	char why[WHY_MAX], *text;
	json_t *copy = json_deep_copy(d);
	int rc;

	if (!copy)
		return EXIT_OK;
	if (!json_is_string(json_object_get(copy, "provider")))
		json_object_set_new(copy, "provider", json_string(
			"0000000000000000000000000000000000000000000000000000000000000000"));
	if (!json_object_get(copy, "prices"))
		json_object_set_new(copy, "prices", json_pack("{s:i,s:i,s:i}", "vcpu_second", 0,
							      "mem_gib_second", 0, "gpu_second", 0));
	text = json_dumps(copy, JSON_COMPACT);
	json_decref(copy);
	rc = text ? contract_from_json(&c, text, why) : TALLY_E_NOMEM;
	free(text);
	if (rc)
		return EXIT_OK;   /* said later, with the provider's terms in place */
	if (contract_check_vm(&c.vm, why)) {
		err("the contract is invalid: %s", why);
		return EXIT_REFUSED;
	}
	return EXIT_OK;
}

/* The provider is the node asked, and it runs no VMs (--no-vms) or offers
 * no image: no VM is coming (nor, for most such nodes, an announcement),
 * so waiting would only run out --timeout. Asked only of the default
 * provider: one the user named is waited for like any other (a --no-vms
 * node may still announce itself). */
static int node_offers_nothing(struct client *cl, const char *key)
{
	json_t *st;
	int rc = EXIT_OK;

	if (client_get(cl, "/v1/status", &st) != CLIENT_OK)
		return EXIT_OK;   /* provider_wait says what is wrong */
	if (strcmp(jget_str(st, "node"), key))
		;
	else if (json_is_false(json_object_get(st, "runs_vms"))) {
		err("the node at %s (%.16s) runs no VMs (--no-vms), so it is no provider; name"
		    " one with --provider PUBKEY or use --cheapest ('tally provider list' shows"
		    " them)", cl->base, key);
		rc = EXIT_REFUSED;
	} else if (json_array_size(json_object_get(st, "images")) == 0) {
		err("the node at %s (%.16s) offers no image, so it is no provider; name one with"
		    " --provider PUBKEY or use --cheapest ('tally provider list' shows them)",
		    cl->base, key);
		rc = EXIT_REFUSED;
	}
	json_decref(st);
	return rc;
}

/* The SLA terms of a contract for a provider announcing bounds b: each
 * term the file or a flag gave stays (build_contract checks it against b),
 * each other one is the default moved into b (a delay of at least its
 * sla_min_delay_ppm, a credit of at most its sla_max_credit_ppm). */
static void sla_for(const struct create_flags *f, json_t *d, const struct provider_offer *b)
{
	json_t *sla = json_object_get(d, "sla");

	if (!json_is_object(sla))
		return;   /* contract_from_json says what is wrong */
	if (!f->delay_given)
		json_object_set_new(sla, "max_delay_ppm", json_integer(
			b->sla_min_delay_ppm > DEFAULT_MAX_DELAY_PPM ? b->sla_min_delay_ppm :
			DEFAULT_MAX_DELAY_PPM));
	if (!f->credit_given)
		json_object_set_new(sla, "credit_ppm", json_integer(
			b->sla_max_credit_ppm < DEFAULT_CREDIT_PPM ? b->sla_max_credit_ppm :
			DEFAULT_CREDIT_PPM));
}

/* The provider from the registry: the one named (named: by --provider or
 * the contract file; else the node), or with --cheapest the cheapest for
 * the contract's shape (of those whose SLA bounds admit the terms given);
 * it must be registered (tally waits for it, up to --timeout), its
 * announced prices and interval become the contract's unless the contract
 * file or --interval gave them, and SLA terms not given are set within its
 * bounds (sla_for). */
static int choose_provider(struct client *cl, struct create_flags *f, json_t *d,
			   bool terms_in_file, bool named)
{
	char key[65];
	json_t *p = NULL;
	int rc;

	snprintf(key, sizeof(key), "%s", jget_str(d, "provider"));
	if (!f->cheapest && strlen(jget_str(d, "provider")) != 64) {
		if ((rc = provider_key_resolve(cl, jget_str(d, "provider"), key)))
			return rc;
		json_object_set_new(d, "provider", json_string(key));
	}
	if (f->cheapest) {
		struct lease_contract shape;

		if ((rc = shape_of(d, &shape)))
			return rc;
		/* Terms not given are made to fit whichever provider is chosen:
		 * any bounds admit these. */
		if (!f->credit_given)
			shape.sla.credit_ppm = 0;
		if (!f->delay_given)
			shape.sla.max_delay_ppm = PPM_ONE;
		if ((rc = provider_cheapest(cl, &shape, key, &p)))
			return rc;
		json_object_set_new(d, "provider", json_string(key));
		fprintf(stderr, "tally: the cheapest provider for this lease is %.16s (%s)\n", key,
			jget_str(p, "endpoint"));
	} else if ((!named && (rc = node_offers_nothing(cl, key))) ||
		   (rc = provider_wait(cl, key, f->timeout_s, &p))) {
		return rc;
	}
	if (!terms_in_file) {
		json_t *pr = json_object_get(p, "prices");

		json_object_set_new(d, "prices", json_pack("{s:I,s:I,s:I}",
			"vcpu_second", (json_int_t)jget_u64(pr, "vcpu_second"),
			"mem_gib_second", (json_int_t)jget_u64(pr, "mem_gib_second"),
			"gpu_second", (json_int_t)jget_u64(pr, "gpu_second")));
		if (!json_object_get(f->top, "interval_s"))
			json_object_set_new(d, "interval_s",
					    json_integer((json_int_t)jget_u64(p, "interval_s")));
	}
	provider_sla_bounds(p, &f->bounds);
	sla_for(f, d, &f->bounds);
	json_decref(p);
	return EXIT_OK;
}

/* Whether the file (its "sla", user_sla, may be NULL) or a flag gave each
 * SLA term. */
static void sla_given(struct create_flags *f, const json_t *user_sla)
{
	const json_t *flags = json_object_get(f->top, "sla");

	f->delay_given = json_object_get(flags, "max_delay_ppm") ||
			 json_object_get(user_sla, "max_delay_ppm");
	f->credit_given = json_object_get(flags, "credit_ppm") ||
			  json_object_get(user_sla, "credit_ppm");
}

static int build_contract(struct client *cl, const struct tally_key *k,
			  struct create_flags *f, struct lease_contract *c)
{
	json_t *d = contract_defaults(cl, k);
	json_error_t jerr;
	char why[WHY_MAX] = "", node_chain[CHAIN_ID_MAX + 1], me[2 * PUBKEY_LEN + 1];
	bool deposit_in_file = false, terms_in_file = false;
	bool provider_named = json_object_get(f->top, "provider") != NULL;
	int rc;

	if (!d)
		return EXIT_USAGE;
	snprintf(node_chain, sizeof(node_chain), "%s", jget_str(d, "chain_id"));
	snprintf(me, sizeof(me), "%s", jget_str(d, "tenant"));
	if (f->file) {
		json_t *user = json_load_file(f->file, JSON_REJECT_DUPLICATES, &jerr);
		if (!user || !json_is_object(user)) {
			err("%s: %s", f->file, user ? "not a JSON object" : jerr.text);
			json_decref(user);
			json_decref(d);
			return EXIT_USAGE;
		}
		deposit_in_file = json_object_get(user, "deposit") != NULL;
		terms_in_file = json_object_get(user, "prices") || json_object_get(user, "interval_s");
		provider_named = provider_named || json_object_get(user, "provider");
		sla_given(f, json_object_get(user, "sla"));
		rc = add_ssh_key(f, json_object_get(user, "vm"));
		merge(d, user);
		json_decref(user);
	} else {
		sla_given(f, NULL);
		rc = add_ssh_key(f, NULL);
	}
	if (rc) {
		json_decref(d);
		return rc;
	}
	merge(d, f->top);
	json_object_update(json_object_get(d, "vm"), f->vm);
	/* What the node would refuse anyway, said before any wait for the
	 * provider. */
	if (strcmp(jget_str(d, "chain_id"), node_chain)) {
		err("the contract is for chain '%s', the node runs '%s'", jget_str(d, "chain_id"),
		    node_chain);
		json_decref(d);
		return EXIT_USAGE;
	}
	if (strcasecmp(jget_str(d, "tenant"), me)) {
		err("the contract names tenant %.16s, but your key is %.16s (a lease contract must"
		    " be signed by its tenant: give that tenant's --key, or drop \"tenant\" from"
		    " the file)", jget_str(d, "tenant"), me);
		json_decref(d);
		return EXIT_USAGE;
	}
	rc = check_vm_early(d);
	if (!rc)
		rc = choose_provider(cl, f, d, terms_in_file, provider_named);
	if (rc) {
		json_decref(d);
		return rc;
	}
	char *text = json_dumps(d, JSON_COMPACT);
	json_decref(d);
	rc = text ? contract_from_json(c, text, why) : TALLY_E_NOMEM;
	free(text);
	if (rc) {
		err("the contract%s%s is malformed: %s", f->file ? " in " : "",
		    f->file ? f->file : "", why);
		return EXIT_USAGE;
	}
	/* Without a deposit, escrow the most the whole term can cost. */
	if (!f->deposit_given && !deposit_in_file &&
	    settle_max_charge(c, c->duration_s, &c->deposit)) {
		err("the contract's maximum charge overflows; give --deposit");
		return EXIT_USAGE;
	}
	rc = contract_validate(c, c->chain_id, (uint64_t)time(NULL), why);
	if (rc) {
		err("the contract is invalid: %s", why);
		return EXIT_REFUSED;
	}
	/* SLA terms the user gave, held to the provider's bounds as the chain
	 * will (section 10.3): said now, not by a refused LEASE_OPEN. */
	if (provider_offer_sla_admits(&f->bounds, c, why)) {
		err("the contract's SLA terms are outside its provider's announcement: %s (give"
		    " --credit-ppm at most %" PRIu32 " and --max-delay-ppm at least %" PRIu32
		    ", or leave them out for terms within them)", why,
		    f->bounds.sla_max_credit_ppm, f->bounds.sla_min_delay_ppm);
		return EXIT_REFUSED;
	}
	return EXIT_OK;
}

static int wait_running_loop(struct progress *pr, struct client *cl, const char *id,
			     uint64_t timeout_s, bool quiet, char line[128])
{
	char path[128];
	time_t end = time(NULL) + (time_t)timeout_s;
	int last = -1;

	snprintf(path, sizeof(path), "/v1/leases/%s", id);
	/* The node restarting meanwhile does not end the wait. */
	cl->reach_until = end;
	for (;;) {
		json_t *j;
		enum client_rc rc = client_get(cl, path, &j);

		if (rc == CLIENT_REFUSED && cl->status == 404) {
			/* Not committed yet, or never: the node says which. */
			char spath[160];
			json_t *st;

			snprintf(spath, sizeof(spath), "/v1/tx/%s/status", id);
			if (client_get(cl, spath, &st) == CLIENT_OK) {
				bool dropped = !strcmp(jget_str(st, "status"), "dropped");

				if (dropped)
					err("lease %.16s never opened: the node left it out of block %"
					    PRIu64 ": %s", id, jget_u64(st, "height"),
					    jget_str(st, "reason"));
				json_decref(st);
				if (dropped)
					return EXIT_REFUSED;
			}
		} else if (rc) {
			return client_fail(cl, rc);
		} else {
			struct lease l;
			char why[WHY_MAX];
			int prc = lease_from_json(j, &l, why);
			json_decref(j);
			if (prc) {
				err("node's answer for lease %.16s: %s", id, why);
				return EXIT_USAGE;
			}
			if (l.state != last && !quiet) {
				snprintf(line, 128, "lease %.16s %s (block %" PRIu64 ")", id,
					 lease_state_name(l.state), l.opened_height);
				if (pr->on)
					progress_text(pr, line);
				else
					fprintf(stderr, "tally: %s\n", line);
			}
			last = l.state;
			if (l.state == LEASE_RUNNING)
				return EXIT_OK;
			if (l.state == LEASE_CLOSED) {
				err("lease %.16s closed before it ran: %s", id,
				    lease_close_reason_name(l.close_reason));
				return EXIT_REFUSED;
			}
		}
		if (time(NULL) >= end) {
			if (last == LEASE_OPENED)
				err("lease %.16s is not running after %" PRIu64 " s: it is opened and"
				    " its provider has not started it (the deposit stays in escrow"
				    " until then; 'tally lease close %.16s' returns it)", id,
				    timeout_s, id);
			else
				err("lease %.16s is not running after %" PRIu64 " s", id, timeout_s);
			return EXIT_REFUSED;
		}
		sleep(1);
	}
}

/* Ctrl-C during --wait ends the wait, not the lease: the tenant is told so
 * (written by the handler: async-signal-safe). */
static char interrupt_note[256];

static void on_wait_interrupt(int sig)
{
	ssize_t ignored = write(STDERR_FILENO, interrupt_note, strlen(interrupt_note));

	(void)ignored;
	_exit(128 + sig);
}

/* --wait: the lease's state as it changes, in place on a terminal (one line
 * per change when stderr is not one), until it runs or closes; on a
 * terminal the state it reached stays on the screen. */
static int wait_running(struct client *cl, const char *id, uint64_t timeout_s, bool quiet)
{
	struct sigaction sa = { .sa_handler = on_wait_interrupt }, old;
	struct progress pr;
	char line[128] = "";
	int rc;

	progress_start(&pr, "", 0, quiet);
	snprintf(interrupt_note, sizeof(interrupt_note),
		 "%stally: stopped waiting; lease %.16s stays open (its deposit in escrow,"
		 " billed once it runs): 'tally lease show %.16s' follows it, 'tally lease close"
		 " %.16s' ends it\n", pr.on ? "\r\033[K" : "\n", id, id, id);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old);
	rc = wait_running_loop(&pr, cl, id, timeout_s, quiet, line);
	bool drawn = pr.on;

	progress_end(&pr);
	if (drawn && rc == EXIT_OK && line[0])
		fprintf(stderr, "tally: %s\n", line);
	sigaction(SIGINT, &old, NULL);
	return rc;
}

/* A numeric flag of at most max, set as obj[key]. */
static int flag_uint(json_t *obj, const char *key, const char *arg, const char *what,
		     uint64_t max)
{
	uint64_t v;

	if (parse_u64(arg, &v, what))
		return EXIT_USAGE;
	if (v > max) {
		err("%s %s is too large", what, arg);
		return EXIT_USAGE;
	}
	json_object_set_new(obj, key, json_integer((json_int_t)v));
	return EXIT_OK;
}

/* f->top's "sla" object, made on first use. */
static json_t *sla_flags(struct create_flags *f)
{
	json_t *sla = json_object_get(f->top, "sla");

	if (!sla) {
		sla = json_object();
		json_object_set_new(f->top, "sla", sla);
	}
	return sla;
}

static int create_opt(struct create_flags *f, int c, const char *arg)
{
	switch (c) {
	case 'c': return flag_uint(f->vm, "vcpus", arg, "--vcpus", UINT32_MAX);
	case 'm': return flag_uint(f->vm, "memory_mib", arg, "--memory", UINT32_MAX);
	case 'd': return flag_uint(f->vm, "disk_gib", arg, "--disk", UINT32_MAX);
	case 'g': return flag_uint(f->vm, "gpus", arg, "--gpus", UINT32_MAX);
	case 'i': json_object_set_new(f->vm, "image", json_string(arg)); return EXIT_OK;
	case 'H': json_object_set_new(f->vm, "hostname", json_string(arg)); return EXIT_OK;
	case 'K': f->ssh_key_file = arg; return EXIT_OK;
	case 'N': f->no_ssh_key = true; return EXIT_OK;
	case 'D': return flag_uint(f->top, "duration_s", arg, "--duration", INT64_MAX);
	case 'p':
		f->deposit_given = true;
		return flag_uint(f->top, "deposit", arg, "--deposit", INT64_MAX);
	case 'I': return flag_uint(f->top, "interval_s", arg, "--interval", UINT32_MAX);
	case 'y': return flag_uint(sla_flags(f), "max_delay_ppm", arg, "--max-delay-ppm",
				   UINT32_MAX);
	case 'r': return flag_uint(sla_flags(f), "credit_ppm", arg, "--credit-ppm", UINT32_MAX);
	case 'P':
		/* Resolved against the registry once the node is reached
		 * (choose_provider): a prefix of the key will do. */
		json_object_set_new(f->top, "provider", json_string(arg));
		return EXIT_OK;
	case 'C': f->cheapest = true; return EXIT_OK;
	case 'w': f->wait = true; return EXIT_OK;
	case 't': return parse_u64(arg, &f->timeout_s, "--timeout");
	}
	return -1;
}

static const struct opt_doc create_opts[] = {
	{ "vcpus", 'c', "N", "vCPUs of the VM (default 1)", 0 },
	{ "memory", 'm', "MIB", "memory of the VM in MiB (default 512)", 0 },
	{ "disk", 'd', "GIB", "disk of the VM in GiB (default 1)", 0 },
	{ "gpus", 'g', "N", "GPUs of the VM (default 0)", 0 },
	{ "image", 'i', "NAME", "the image the VM boots, from the node's catalogue\n(default tiny)", 0 },
	{ "hostname", 'H', "NAME", "the guest's hostname: a-z, 0-9 and inner '-', at most 63\n"
	  "(default: the node names it)", 0 },
	{ "ssh-key", 'K', "FILE", "the OpenSSH public key (one line) cloud-init installs for\n"
	  "the image's login user (tally lease ssh); it is public,\non the chain with the contract", 0 },
	{ "no-ssh-key", 'N', NULL, "no key, not even the default", 0 },
	{ "duration", 'D', "S", "the lease term in seconds (default 3600)", 0 },
	{ "deposit", 'p', "N", "micro-units moved to escrow (default: the most the\nwhole term can cost)", 0 },
	{ "interval", 'I', "S", "metering interval (default: the provider's announced one)", 0 },
	{ "max-delay-ppm", 'y', "PPM", "the SLA: run-queue delay allowed, in millionths of the\n"
	  "vCPU time, before an interval is a breach (default\n"
	  "50000, or the provider's announced minimum if above)", 0 },
	{ "credit-ppm", 'r', "PPM", "the SLA: the share of a breached interval's charge\n"
	  "credited back, in millionths (default 100000, or the\n"
	  "provider's announced maximum if below)", 0 },
	{ "provider", 'P', "PUBKEY", "the provider's public key, or 8+ of its first hex\n"
	  "characters (default: the node's); tally waits (up to\n"
	  "--timeout) until it is registered on the chain", 0 },
	{ "cheapest", 'C', NULL, "the registered provider whose prices make this lease's\n"
	  "term cost least (it must offer the image, have the\nvCPUs, memory and GPUs in its capacity, and admit the\n"
	  "SLA terms given)", 0 },
	{ "wait", 'w', NULL, "wait until the VM runs (exit 1 if the lease closes)", 0 },
	{ "timeout", 't', "S", "how long to wait for the provider's registration and,\n"
	  "with --wait, for the VM (default 300)", 0 },
	{ NULL, 0, NULL, NULL, 0 },
};

const struct cmd_doc doc_lease_create = {
	.name = "lease create",
	.synopsis = "[CONTRACT.json] [--vcpus N] [--memory MIB] [--disk GIB]\n"
		    " [--gpus N] [--image NAME] [--hostname NAME]\n"
		    " [--ssh-key FILE | --no-ssh-key] [--duration S] [--deposit N]\n"
		    " [--interval S] [--max-delay-ppm PPM] [--credit-ppm PPM]\n"
		    " [--provider PUBKEY | --cheapest]\n"
		    " [--wait] [--timeout S]",
	.summary = "sign a lease contract and submit it",
	.description =
		"Signs a lease contract with your key and submits it as a LEASE_OPEN; prints\n"
		"the lease id. The contract comes from CONTRACT.json (contracts/examples/),\n"
		"flags override it, and what neither gives is filled in from the node and\n"
		"the provider registry: chain id, provider (the node), nonce (your\n"
		"account's), prices and interval (the provider's PROVIDER announcement; the\n"
		"chain refuses a lease below them), expiry (now + 600 s); VM defaults are\n"
		"1 vCPU, 512 MiB, 1 GiB, no GPU, image 'tiny', 3600 s; the SLA is 5% delay /\n"
		"10% credit, moved within the provider's announced bounds (the chain refuses\n"
		"terms outside them); the default deposit is the most the whole term can\n"
		"cost; the SSH key is ~/.ssh/id_ed25519.pub when it exists. The contract is\n"
		"validated locally first: an invalid one, or SLA terms given outside the\n"
		"provider's bounds, is refused with the reason (exit 1). stderr says what\n"
		"was submitted: VM, term, deposit and SLA terms. With --wait, the\n"
		"lease's progress is shown on a terminal; a node restarting meanwhile is\n"
		"waited through, and Ctrl-C ends the wait, not the lease (exit 130).",
	.opts = create_opts,
};

int cmd_lease_create(int argc, char **argv)
{
	struct optable ot;
	struct create_flags f;
	struct common co;
	struct client cl;
	struct tally_key k;
	struct lease_contract ct;
	struct tx t;
	struct chain_ref chain;
	char id[65], amt[32];
	int c, rc;

	memset(&f, 0, sizeof(f));
	f.timeout_s = DEFAULT_WAIT_S;
	f.vm = json_object();
	f.top = json_object();
	cmd_optable(&ot, &doc_lease_create, ":");
	common_init(&co);
	while ((c = getopt_long(argc, argv, ot.shortopts, ot.longopts, NULL)) != -1) {
		if (common_opt(&co, c, optarg))
			continue;
		rc = create_opt(&f, c, optarg);
		if (rc < 0)
			rc = bad_option("lease create", c, argv);
		if (rc)
			goto out_flags;
	}
	rc = EXIT_OK;
	if (co.help) {
		cmd_help(&doc_lease_create);
		goto out_flags;
	}
	rc = EXIT_USAGE;
	if (argc - optind > 1) {
		usage_error("lease create", "unexpected argument '%s'", argv[optind + 1]);
		goto out_flags;
	}
	if (f.cheapest && json_object_get(f.top, "provider")) {
		usage_error("lease create", "give --provider PUBKEY or --cheapest, not both");
		goto out_flags;
	}
	if (f.no_ssh_key && f.ssh_key_file) {
		usage_error("lease create", "give --ssh-key FILE or --no-ssh-key, not both");
		goto out_flags;
	}
	f.file = optind < argc ? argv[optind] : NULL;
	if (open_key_and_client(&k, co.key, &cl, co.node))
		goto out_flags;
	rc = build_contract(&cl, &k, &f, &ct);
	if (rc)
		goto out_client;
	rc = fetch_chain(&cl, &chain);
	if (rc)
		goto out_client;
	if (strcmp(chain.id, ct.chain_id)) {
		err("the contract is for chain '%s', the node runs '%s'", ct.chain_id, chain.id);
		rc = EXIT_USAGE;
		goto out_client;
	}
	memset(&t, 0, sizeof(t));
	t.kind = TX_LEASE_OPEN;
	t.nonce = ct.nonce;
	t.u.open = ct;
	rc = sign_and_submit(&cl, &k, &chain, &t, "contract", id);
	if (rc)
		goto out_client;
	if (!co.json) {
		printf("%s\n", id);
		/* The SLA terms too: those not given were moved within the
		 * provider's bounds, and may promise less than the defaults. */
		fprintf(stderr, "tally: lease submitted: %u vCPU, %u MiB, image %s, %" PRIu64
			" s, deposit %s, SLA credit %u ppm above %u ppm delay\n", ct.vm.vcpus,
			ct.vm.memory_mib, ct.vm.image, ct.duration_s, fmt_amount(ct.deposit, amt),
			ct.sla.credit_ppm, ct.sla.max_delay_ppm);
		fflush(stdout);
	}
	if (f.wait)
		rc = wait_running(&cl, id, f.timeout_s, co.json);
	if (co.json) {
		char *ctext = contract_to_json(&ct);
		json_t *cj = ctext ? json_loads(ctext, 0, NULL) : NULL;
		free(ctext);
		print_json(json_pack("{s:s,s:o,s:b}", "id", id, "contract",
				     cj ? cj : json_null(), "running", f.wait && rc == EXIT_OK));
	}
out_client:
	client_free(&cl);
	key_free(&k);
out_flags:
	json_decref(f.vm);
	json_decref(f.top);
	return rc;
}

/* --- list, show ---------------------------------------------------------- */

static void print_lease_row(const json_t *l)
{
	const json_t *c = json_object_get(l, "contract"), *vm = json_object_get(c, "vm");
	char a[32], b[32];

	printf("%-16.16s %-8s %-16s %4" PRIu64 " %8" PRIu64 " %14s %14s\n",
	       jget_str(l, "id"), jget_str(l, "state"), jget_str(l, "close_reason"),
	       jget_u64(vm, "vcpus"), jget_u64(vm, "memory_mib"),
	       fmt_amount(jget_u64(l, "charged"), a), fmt_amount(jget_u64(l, "escrow"), b));
}

/* qsort order of lease list rows: by the block that opened them, then id. */
static int by_opened(const void *a, const void *b)
{
	const json_t *x = *(const json_t *const *)a, *y = *(const json_t *const *)b;
	uint64_t hx = jget_u64(x, "opened_height"), hy = jget_u64(y, "opened_height");

	if (hx != hy)
		return hx < hy ? -1 : 1;
	return strcmp(jget_str(x, "id"), jget_str(y, "id"));
}

static const struct opt_doc list_opts[] = {
	{ "all", 'a', NULL, "every lease, not only yours", 0 },
	{ NULL, 0, NULL, NULL, 0 },
};

const struct cmd_doc doc_lease_list = {
	.name = "lease list",
	.synopsis = "[--all] [--key FILE] [--node URL] [--json]",
	.summary = "your leases (--all: every lease)",
	.description = "Your leases as tenant (the public key of --key); --all lists every lease.\n"
		"Listed by the block that opened them, the newest last, then by id\n"
		"(--json: by id, as the node lists them).",
	.opts = list_opts,
};

int cmd_lease_list(int argc, char **argv)
{
	struct optable ot;
	struct common co;
	struct tally_key k;
	bool all = false;
	char path[160], me[65];
	json_t *j, *l;
	size_t i;
	int c, rc;

	cmd_optable(&ot, &doc_lease_list, ":");
	common_init(&co);
	while ((c = getopt_long(argc, argv, ot.shortopts, ot.longopts, NULL)) != -1) {
		if (common_opt(&co, c, optarg))
			continue;
		if (c != 'a')
			return bad_option("lease list", c, argv);
		all = true;
	}
	if (co.help)
		return cmd_help(&doc_lease_list);
	if (optind != argc)
		return usage_error("lease list", "unexpected argument '%s'", argv[optind]);
	if (all) {
		snprintf(path, sizeof(path), "/v1/leases");
	} else {
		if (load_key(&k, co.key))
			return EXIT_USAGE;
		hex_encode(k.pub, PUBKEY_LEN, me);
		key_free(&k);
		snprintf(path, sizeof(path), "/v1/leases?tenant=%s", me);
	}
	rc = fetch_json(co.node, path, &j);
	if (rc)
		return rc;
	if (co.json)
		return print_json(j);
	/* The node lists by id (random); a person reads them in the order they
	 * were opened, the newest last, next to the prompt. */
	json_t *rows = json_object_get(j, "leases");
	size_t n = json_array_size(rows);
	const json_t **order = calloc(n ? n : 1, sizeof(*order));

	if (!order) {
		json_decref(j);
		return err("out of memory"), EXIT_USAGE;
	}
	json_array_foreach(rows, i, l)
		order[i] = l;
	qsort(order, n, sizeof(*order), by_opened);
	printf("%-16s %-8s %-16s %4s %8s %14s %14s\n", "LEASE", "STATE", "CLOSED AS", "VCPU",
	       "MEM MiB", "CHARGED", "ESCROW");
	for (i = 0; i < n; i++)
		print_lease_row(order[i]);
	if (!n)
		printf("(no leases)\n");
	free(order);
	json_decref(j);
	return EXIT_OK;
}

/* Parts per million as a percentage without trailing zeros: "10 %",
 * "0.5 %", "12.3456 %"; buf holds 32. */
static const char *fmt_ppm(uint32_t ppm, char *buf)
{
	int n = snprintf(buf, 32, "%u.%04u", ppm / 10000, ppm % 10000);

	while (n > 0 && buf[n - 1] == '0')
		buf[--n] = '\0';
	if (n > 0 && buf[n - 1] == '.')
		buf[--n] = '\0';
	snprintf(buf + n, 32 - (size_t)n, " %%");
	return buf;
}

static void print_lease(const struct lease *l, const char *id)
{
	const struct lease_contract *c = &l->contract;
	char t[65], p[65], a[32], b[32], d[32], s[32];

	hex_encode(c->tenant, PUBKEY_LEN, t);
	hex_encode(c->provider, PUBKEY_LEN, p);
	printf("lease       %s\n", id);
	printf("state       %s", lease_state_name(l->state));
	if (l->state == LEASE_CLOSED)
		printf(" (%s, block %" PRIu64 ")", lease_close_reason_name(l->close_reason),
		       l->closed_height);
	printf("\ntenant      %s\nprovider    %s\n", t, p);
	printf("vm          %u vCPU, %u MiB, %u GiB disk, %u GPU, image %s\n", c->vm.vcpus,
	       c->vm.memory_mib, c->vm.disk_gib, c->vm.gpus, c->vm.image);
	if (c->vm.hostname[0])
		printf("hostname    %s\n", c->vm.hostname);
	if (c->vm.ssh_key[0]) {
		const char *comment = strchr(c->vm.ssh_key, ' ');

		comment = comment ? strchr(comment + 1, ' ') : NULL;
		printf("ssh key     %.*s%s%s\n", (int)strcspn(c->vm.ssh_key, " "), c->vm.ssh_key,
		       comment ? "," : "", comment ? comment : "");
	}
	printf("term        %" PRIu64 " s, metered every %u s\n", c->duration_s, c->interval_s);
	printf("prices      %s per vCPU-s, %s per GiB-s, %s per GPU-s\n",
	       fmt_amount(c->prices.vcpu_second, a), fmt_amount(c->prices.mem_gib_second, b),
	       fmt_amount(c->prices.gpu_second, d));
	printf("sla         %s of an interval's charge back when its vCPUs wait more than %s"
	       " of it\n", fmt_ppm(c->sla.credit_ppm, a), fmt_ppm(c->sla.max_delay_ppm, b));
	printf("opened      block %" PRIu64 "\n", l->opened_height);
	if (l->started_ns)
	{
		char when[48];
		printf("started     %s\n", fmt_local_time(l->started_ns, when, sizeof(when)));
	}
	printf("deposit     %s\ncharged     %s\nsla credit  %s\nescrow      %s\n",
	       fmt_amount(c->deposit, d), fmt_amount(l->charged, a),
	       fmt_amount(l->sla_credits, s), fmt_amount(l->escrow, b));
	/* The chain's settlement: what the provider was not paid went back. */
	if (l->state == LEASE_CLOSED && c->deposit >= l->charged)
		printf("refunded    %s (to the tenant, block %" PRIu64 ")\n",
		       fmt_amount(c->deposit - l->charged, a), l->closed_height);
	printf("records     %" PRIu64 " (cpu %" PRIu64 " ns, run delay %" PRIu64
	       " ns, gpu %" PRIu64 " ns)\n", l->next_seq, l->cpu_ns, l->run_delay_ns,
	       l->gpu_ns);
}

const struct cmd_doc doc_lease_show = {
	.name = "lease show",
	.synopsis = "ID [--node URL] [--json]",
	.summary = "one lease: state, contract, money",
	.description =
		"One lease: state, parties, VM, term, the prices and SLA terms signed,\n"
		"deposit, charged, SLA credits, escrow, what a closed lease refunded,\n"
		"records and metered totals. ID is the lease id or a unique prefix of at\n"
		"least 8 hex characters.",
};

int cmd_lease_show(int argc, char **argv)
{
	struct common co;
	struct client cl;
	struct lease l;
	char id[65], path[128], why[WHY_MAX];
	enum client_rc crc;
	json_t *j;
	int rc;

	rc = parse_common_args(&co, argc, argv, &doc_lease_show);
	if (rc != ARGS_PARSED)
		return rc;
	if (argc - optind != 1)
		return usage_error("lease show", "give one lease ID");
	if (client_init(&cl, co.node))
		return err("%s", cl.err), EXIT_USAGE;
	rc = resolve_lease_id(&cl, argv[optind], id);
	if (rc)
		goto out;
	snprintf(path, sizeof(path), "/v1/leases/%s", id);
	crc = client_get(&cl, path, &j);
	if (crc) {
		rc = client_fail(&cl, crc);
		goto out;
	}
	if (co.json) {
		rc = print_json(j);
		goto out;
	}
	if (lease_from_json(j, &l, why)) {
		err("the node's answer for lease %.16s: %s", id, why);
		json_decref(j);
		rc = EXIT_USAGE;
		goto out;
	}
	json_decref(j);
	print_lease(&l, id);
out:
	client_free(&cl);
	return rc;
}

/* --- close --------------------------------------------------------------- */

const struct cmd_doc doc_lease_close = {
	.name = "lease close",
	.synopsis = "ID [--key FILE] [--node URL] [--json]",
	.summary = "close your lease; the escrow left comes back",
	.description =
		"Signs a LEASE_CLOSE (reason tenant-closed) with your key: the node stops\n"
		"the VM and the escrow left comes back to you. Only the lease's tenant (or\n"
		"provider) may close it.",
};

int cmd_lease_close(int argc, char **argv)
{
	struct common co;
	struct client cl;
	struct tally_key k;
	struct tx t;
	struct chain_ref chain;
	char id[65], hash[65];
	int rc;

	rc = parse_common_args(&co, argc, argv, &doc_lease_close);
	if (rc != ARGS_PARSED)
		return rc;
	if (argc - optind != 1)
		return usage_error("lease close", "give one lease ID");
	if (open_key_and_client(&k, co.key, &cl, co.node))
		return EXIT_USAGE;
	memset(&t, 0, sizeof(t));
	rc = resolve_lease_id(&cl, argv[optind], id);
	if (!rc)
		hex_decode(id, t.u.close.lease_id, LEASE_ID_LEN);
	t.kind = TX_LEASE_CLOSE;
	t.u.close.reason = CLOSE_TENANT;
	if (!rc)
		rc = fetch_chain_and_nonce(&cl, k.pub, &chain, &t.nonce);
	if (!rc)
		rc = sign_and_submit(&cl, &k, &chain, &t, "close", hash);
	key_free(&k);
	client_free(&cl);
	if (rc)
		return rc;
	if (co.json)
		return print_json(json_pack("{s:s,s:s}", "lease", id, "tx", hash));
	printf("%s\n", hash);
	fprintf(stderr, "tally: close of lease %.16s submitted\n", id);
	return EXIT_OK;
}

int fetch_lease_private(struct client *cl, const struct tally_key *k, const char *id,
			json_t **out)
{
	struct chain_ref chain;
	char path[128];
	int rc = fetch_chain(cl, &chain);

	if (rc)
		return rc;
	snprintf(path, sizeof(path), "/v1/leases/%s/private", id);
	enum client_rc crc = client_get_signed(cl, path, k, chain.genesis, out);
	return crc ? client_fail(cl, crc) : EXIT_OK;
}

const struct cmd_doc doc_lease_console = {
	.name = "lease console",
	.synopsis = "ID [--key FILE] [--node URL] [--json]",
	.summary = "your VM's console and address (signed request)",
	.description =
		"Prints your VM's private details: its domain, hostname, network address,\n"
		"SSH host and port, and the tail of its serial console. The request is\n"
		"signed with your key; only the lease's tenant may read them.",
};

int cmd_lease_console(int argc, char **argv)
{
	struct common co;
	struct client cl;
	struct tally_key k;
	char id[65];
	json_t *j = NULL;
	int rc;

	rc = parse_common_args(&co, argc, argv, &doc_lease_console);
	if (rc != ARGS_PARSED)
		return rc;
	if (argc - optind != 1)
		return usage_error("lease console", "give one lease ID");
	if (open_key_and_client(&k, co.key, &cl, co.node))
		return EXIT_USAGE;
	rc = resolve_lease_id(&cl, argv[optind], id);
	if (!rc)
		rc = fetch_lease_private(&cl, &k, id, &j);
	key_free(&k);
	client_free(&cl);
	if (rc)
		return rc;
	if (co.json)
		return print_json(j);
	const char *state = jget_str(j, "state"), *host = jget_str(j, "hostname");
	const char *console = jget_str(j, "console");
	printf("domain   %s\nhostname %s\nnetwork  %s\naddress  %s\nrunning  %s%s%s%s\n",
	       jget_str(j, "domain"), *host ? host : "- (none: the image has no cloud-init to set one)",
	       jget_str(j, "network"),
	       jget_str(j, "address"),
	       json_is_true(json_object_get(j, "running")) ? "yes" : "no",
	       *state ? " (" : "", state, *state ? ")" : "");
	const json_t *ssh = json_object_get(j, "ssh");
	if (json_is_object(ssh))
		printf("ssh      %s@%s port %" PRIu64 " (tally lease ssh %.16s)\n",
		       jget_str(ssh, "user"), jget_str(ssh, "host"), jget_u64(ssh, "port"), id);
	printf("--- console (tail)\n%s", *console ? console : "(nothing yet: the guest has"
	       " printed nothing on its serial console)\n");
	json_decref(j);
	return EXIT_OK;
}
