/* tally provider list / show: the provider registry on the chain (GET
 * /v1/providers), and what tally lease create needs of it: waiting for a
 * provider's announcement, and the cheapest provider for a lease's shape. */
#include <getopt.h>
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/tally.h"
#include "contracts/contract.h"
#include "contracts/provider.h"
#include "lib/json_u64.h"

/* Whether provider p (its JSON) offers image. */
static bool offers_image(const json_t *p, const char *image)
{
	json_t *v;
	size_t i;

	json_array_foreach(json_object_get(p, "images"), i, v)
		if (json_is_string(v) && !strcmp(json_string_value(v), image))
			return true;
	return false;
}

int provider_key_resolve(struct client *cl, const char *arg, char out[65])
{
	static const struct hex_prefix providers = {
		.what = "provider key", .list_path = "/v1/providers", .list_key = "providers",
		.id_key = "provider", .none_hint = " among the registered providers ('tally"
						   " provider list')",
	};

	return resolve_hex_prefix(cl, &providers, arg, out);
}

int provider_wait(struct client *cl, const char *key_hex, uint64_t timeout_s, json_t **out)
{
	char path[128];
	time_t end = time(NULL) + (time_t)timeout_s;
	bool told = false;

	snprintf(path, sizeof(path), "/v1/providers/%s", key_hex);
	for (;;) {
		json_t *j;
		enum client_rc rc = client_get(cl, path, &j);

		if (rc == CLIENT_OK && !json_is_true(json_object_get(j, "withdrawn"))) {
			if (told)
				fprintf(stderr, "tally: provider %.16s is registered (block %" PRIu64
					")\n", key_hex, jget_u64(j, "height"));
			*out = j;
			return EXIT_OK;
		}
		if (rc == CLIENT_OK)
			json_decref(j);
		else if (!(rc == CLIENT_REFUSED && cl->status == 404))
			return client_fail(cl, rc);
		if (time(NULL) >= end) {
			err("provider %.16s is not registered on the chain: %s, and waiting %"
			    PRIu64 " s did not change that; 'tally provider list' shows who is",
			    key_hex, rc == CLIENT_OK ? "it withdrew (its node runs no VMs, or"
			    " announces none)" : "it never announced itself", timeout_s);
			return EXIT_REFUSED;
		}
		if (!told)
			fprintf(stderr, "tally: waiting for provider %.16s to announce itself on the"
				" chain...\n", key_hex);
		told = true;
		usleep(500000);
	}
}

/* Whether p, one provider of a node's answer, lacks a figure it must give
 * as a u64 (answer_lacks_u64 prints which): a broken or hostile node's
 * provider is refused, not read as prices, bounds or room of 0. */
static bool provider_bad(const json_t *p)
{
	static const char *const figures[] = {
		"height", "interval_s", "sla_max_credit_ppm", "sla_min_delay_ppm",
		"prices.vcpu_second", "prices.mem_gib_second", "prices.gpu_second",
		"capacity.vcpus", "capacity.memory_mib", "capacity.gpus", NULL };

	return answer_lacks_u64(p, "provider", figures);
}

/* The contract's cost over its term at provider p's prices and interval
 * (settle_max_charge: the contract's own cost formula). */
static int cost_at(const struct lease_contract *shape, const json_t *p, uint64_t *cost)
{
	struct lease_contract c = *shape;
	const json_t *pr = json_object_get(p, "prices");

	c.prices.vcpu_second = jget_u64(pr, "vcpu_second");
	c.prices.mem_gib_second = jget_u64(pr, "mem_gib_second");
	c.prices.gpu_second = jget_u64(pr, "gpu_second");
	c.interval_s = (uint32_t)jget_u64(p, "interval_s");
	return settle_max_charge(&c, c.duration_s, cost);
}

void provider_sla_bounds(const json_t *p, struct provider_offer *o)
{
	uint64_t credit = jget_u64(p, "sla_max_credit_ppm"), delay = jget_u64(p, "sla_min_delay_ppm");

	memset(o, 0, sizeof(*o));
	/* Above a u32 (a broken node): kept above any ppm, so it admits every
	 * credit and no delay, as a bound that large would. */
	o->sla_max_credit_ppm = credit > UINT32_MAX ? UINT32_MAX : (uint32_t)credit;
	o->sla_min_delay_ppm = delay > UINT32_MAX ? UINT32_MAX : (uint32_t)delay;
}

/* Whether p can take a lease of shape: the image, the vCPUs, memory and
 * GPUs within its capacity, and its SLA terms within the announced bounds
 * (the chain's rule, contracts/provider.h). */
static bool fits(const json_t *p, const struct lease_contract *shape)
{
	const json_t *cap = json_object_get(p, "capacity");
	struct provider_offer bounds;

	provider_sla_bounds(p, &bounds);
	return offers_image(p, shape->vm.image) && jget_u64(cap, "vcpus") >= shape->vm.vcpus &&
	       jget_u64(cap, "memory_mib") >= shape->vm.memory_mib &&
	       jget_u64(cap, "gpus") >= shape->vm.gpus &&
	       !provider_offer_sla_admits(&bounds, shape, NULL);
}

int provider_cheapest(struct client *cl, const struct lease_contract *shape, char key_hex[65],
		      json_t **out)
{
	json_t *j, *p, *best = NULL;
	uint64_t best_cost = 0, cost;
	enum client_rc rc = client_get(cl, "/v1/providers", &j);
	size_t i;

	if (rc)
		return client_fail(cl, rc);
	json_array_foreach(json_object_get(j, "providers"), i, p) {
		if (provider_bad(p)) {
			json_decref(j);
			return EXIT_USAGE;
		}
		if (!fits(p, shape) || cost_at(shape, p, &cost))
			continue;
		/* Ties go to the lower key: the list is in key order. */
		if (!best || cost < best_cost) {
			best = p;
			best_cost = cost;
		}
	}
	if (!best) {
		/* Only terms some bounds refuse are named: a credit of 0 and a
		 * delay of 1000000 are what the caller puts for terms the user
		 * left out, and every provider admits them. */
		char sla[96] = "", credit[32] = "", delay[32] = "";

		if (shape->sla.credit_ppm > 0)
			snprintf(credit, sizeof(credit), "credit_ppm %u", shape->sla.credit_ppm);
		if (shape->sla.max_delay_ppm < PPM_ONE)
			snprintf(delay, sizeof(delay), "max_delay_ppm %u", shape->sla.max_delay_ppm);
		if (credit[0] || delay[0])
			snprintf(sla, sizeof(sla), " and SLA bounds that admit %s%s%s", credit,
				 credit[0] && delay[0] ? " and " : "", delay);
		err("no registered provider offers image '%s' with room for %u vCPUs, %u MiB"
		    " and %u GPUs%s ('tally provider list' shows the registry)", shape->vm.image,
		    shape->vm.vcpus, shape->vm.memory_mib, shape->vm.gpus, sla);
		json_decref(j);
		return EXIT_REFUSED;
	}
	snprintf(key_hex, 65, "%s", jget_str(best, "provider"));
	*out = json_incref(best);
	json_decref(j);
	return EXIT_OK;
}

/* An array element the node sent as a string, or "?" when it is not one (a hostile
 * or broken node): printed as is, never NULL. */
static const char *elem_str(const json_t *v)
{
	const char *s = json_string_value(v);

	return s ? s : "?";
}

/* The comma-joined image names of provider answer p in images[size] (size >= 4),
 * ending in "..." when they do not all fit: a node may announce any number. */
static void join_images(const json_t *p, char *images, size_t size)
{
	const json_t *v;
	size_t i, n = 0;
	int w;

	images[0] = '\0';
	json_array_foreach(json_object_get(p, "images"), i, v) {
		w = snprintf(images + n, size - n, "%s%s", i ? "," : "", elem_str(v));
		if (w < 0) {
			images[n] = '\0';
			return;
		}
		if ((size_t)w >= size - n) {
			memcpy(images + size - 4, "...", 4);
			return;
		}
		n += (size_t)w;
	}
}

static void print_provider_line(const json_t *p)
{
	const json_t *pr = json_object_get(p, "prices"), *cap = json_object_get(p, "capacity");
	char a[32], b[32], g[32], images[256];

	join_images(p, images, sizeof(images));
	printf("%.16s  %-10s %-10s %-10s %4" PRIu64 "s  %10" PRIu64 " %9" PRIu64 "  %4" PRIu64
	       " vCPU %7" PRIu64 " MiB %2" PRIu64 " GPU  %-16s %s  %s\n", jget_str(p, "provider"),
	       fmt_amount(jget_u64(pr, "vcpu_second"), a),
	       fmt_amount(jget_u64(pr, "mem_gib_second"), b),
	       fmt_amount(jget_u64(pr, "gpu_second"), g), jget_u64(p, "interval_s"),
	       jget_u64(p, "sla_max_credit_ppm"), jget_u64(p, "sla_min_delay_ppm"),
	       jget_u64(cap, "vcpus"), jget_u64(cap, "memory_mib"), jget_u64(cap, "gpus"),
	       images, jget_str(p, "region")[0] ? jget_str(p, "region") : "-",
	       jget_str(p, "endpoint"));
}

/* --max-price FIELD=N[,FIELD=N...]: the most each named price may be. */
static int parse_max_price(const char *arg, uint64_t max[3])
{
	static const char *const names[3] = { "vcpu_second", "mem_gib_second", "gpu_second" };
	char buf[256], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", arg);
	for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		int k = -1;

		if (eq) {
			*eq = '\0';
			for (int i = 0; i < 3; i++)
				if (!strcmp(tok, names[i]))
					k = i;
		}
		if (k < 0) {
			err("--max-price %s: give vcpu_second=N, mem_gib_second=N or gpu_second=N"
			    " (micro-units), comma-separated", arg);
			return EXIT_USAGE;
		}
		if (parse_u64(eq + 1, &max[k], "--max-price"))
			return EXIT_USAGE;
	}
	return EXIT_OK;
}

static const struct opt_doc list_opts[] = {
	{ "image", 'i', "NAME", "only providers offering this image", 0 },
	{ "gpus", 'g', "N", "only providers with at least N GPUs", 0 },
	{ "max-price", 'M', "F=N", "only providers whose price F is at most N; F is\n"
	  "vcpu_second, mem_gib_second or gpu_second, e.g.\n"
	  "--max-price vcpu_second=20,mem_gib_second=5", 0 },
	{ NULL, 0, NULL, NULL, 0 },
};

const struct cmd_doc doc_provider_list = {
	.name = "provider list",
	.synopsis = "[--image NAME] [--gpus N] [--max-price FIELD=N[,FIELD=N...]]\n"
		    " [--node URL] [--json]",
	.summary = "registered providers, their prices and images",
	.description =
		"The providers registered on the chain (GET /v1/providers): each one's key,\n"
		"prices (micro-units per vCPU-second, GiB-second, GPU-second), metering\n"
		"interval, SLA bounds (the largest credit_ppm and the smallest\n"
		"max_delay_ppm a contract may have), capacity, images, region and API\n"
		"endpoint, as its PROVIDER announcement says. Withdrawn providers are not\n"
		"shown.",
	.opts = list_opts,
};

int cmd_provider_list(int argc, char **argv)
{
	struct optable ot;
	uint64_t max[3] = { UINT64_MAX, UINT64_MAX, UINT64_MAX }, gpus = 0;
	const char *image = NULL;
	struct common co;
	json_t *j, *p, *keep;
	size_t i;
	int c, rc;

	cmd_optable(&ot, &doc_provider_list, ":");
	common_init(&co);
	while ((c = getopt_long(argc, argv, ot.shortopts, ot.longopts, NULL)) != -1) {
		if (common_opt(&co, c, optarg))
			continue;
		if (c == 'i')
			image = optarg;
		else if (c == 'g')
			rc = parse_u64(optarg, &gpus, "--gpus");
		else if (c == 'M')
			rc = parse_max_price(optarg, max);
		else
			return bad_option("provider list", c, argv);
		if ((c == 'g' || c == 'M') && rc)
			return rc;
	}
	if (co.help)
		return cmd_help(&doc_provider_list);
	if (optind != argc)
		return usage_error("provider list", "unexpected argument '%s'", argv[optind]);
	rc = fetch_json(co.node, "/v1/providers", &j);
	if (rc)
		return rc;
	keep = json_array();
	json_array_foreach(json_object_get(j, "providers"), i, p) {
		const json_t *pr = json_object_get(p, "prices");

		if (provider_bad(p)) {
			json_decref(keep);
			json_decref(j);
			return EXIT_USAGE;
		}
		if (image && !offers_image(p, image))
			continue;
		if (jget_u64(json_object_get(p, "capacity"), "gpus") < gpus)
			continue;
		if (jget_u64(pr, "vcpu_second") > max[0] || jget_u64(pr, "mem_gib_second") > max[1] ||
		    jget_u64(pr, "gpu_second") > max[2])
			continue;
		json_array_append(keep, p);
	}
	if (co.json) {
		json_t *outj = json_pack("{s:o, s:o}", "height", json_u64(jget_u64(j, "height")),
					 "providers", keep);
		json_decref(j);
		return print_json(outj);
	}
	printf("%-16s  %-10s %-10s %-10s %5s  %10s %9s  %-32s  %-16s %s  %s\n", "PROVIDER",
	       "VCPU-S", "GIB-S", "GPU-S", "INTVL", "MAX-CREDIT", "MIN-DELAY", "CAPACITY",
	       "IMAGES", "REGION", "ENDPOINT");
	json_array_foreach(keep, i, p)
		print_provider_line(p);
	if (json_array_size(keep) == 0)
		fprintf(stderr, "tally: no registered provider matches\n");
	json_decref(keep);
	json_decref(j);
	return EXIT_OK;
}

const struct cmd_doc doc_provider_show = {
	.name = "provider show",
	.synopsis = "KEY [--node URL] [--json]",
	.summary = "one provider's announcement",
	.description =
		"One provider's registry entry (GET /v1/providers/KEY): its announcement\n"
		"(endpoint, prices, interval, SLA bounds, images, GPU classes, capacity,\n"
		"region), the block that committed it, whether it withdrew, and with --json\n"
		"the state proof of the entry against the node's state root.",
};

int cmd_provider_show(int argc, char **argv)
{
	struct common co;
	char path[128], a[32], b[32], g[32];
	json_t *j, *v, *pr, *cap;
	size_t i;
	int rc = parse_common_args(&co, argc, argv, &doc_provider_show);

	if (rc != ARGS_PARSED)
		return rc;
	if (argc - optind != 1)
		return usage_error("provider show", "give one provider key (or 8 or more of its first"
				   " hex characters)");
	{
		struct client cl;
		char key[65];
		enum client_rc crc;

		if (client_init(&cl, co.node))
			return err("%s", cl.err), EXIT_USAGE;
		rc = provider_key_resolve(&cl, argv[optind], key);
		if (!rc) {
			snprintf(path, sizeof(path), "/v1/providers/%s", key);
			crc = client_get(&cl, path, &j);
			if (crc)
				rc = client_fail(&cl, crc);
		}
		client_free(&cl);
		if (rc)
			return rc;
	}
	if (provider_bad(j)) {
		json_decref(j);
		return EXIT_USAGE;
	}
	if (co.json)
		return print_json(j);
	pr = json_object_get(j, "prices");
	cap = json_object_get(j, "capacity");
	printf("provider   %s\n", jget_str(j, "provider"));
	printf("status     %s at block %" PRIu64 "\n",
	       json_is_true(json_object_get(j, "withdrawn")) ? "withdrawn" : "registered",
	       jget_u64(j, "height"));
	if (!json_is_true(json_object_get(j, "withdrawn"))) {
		printf("endpoint   %s\n", jget_str(j, "endpoint"));
		printf("prices     %s per vCPU-s, %s per GiB-s, %s per GPU-s\n",
		       fmt_amount(jget_u64(pr, "vcpu_second"), a),
		       fmt_amount(jget_u64(pr, "mem_gib_second"), b),
		       fmt_amount(jget_u64(pr, "gpu_second"), g));
		printf("interval   %" PRIu64 " s\n", jget_u64(j, "interval_s"));
		printf("sla        credit at most %" PRIu64 " ppm of a breached interval's charge,"
		       " run-queue delay allowed at least %" PRIu64 " ppm\n",
		       jget_u64(j, "sla_max_credit_ppm"), jget_u64(j, "sla_min_delay_ppm"));
		printf("capacity   %" PRIu64 " vCPUs, %" PRIu64 " MiB, %" PRIu64 " GPUs\n",
		       jget_u64(cap, "vcpus"), jget_u64(cap, "memory_mib"), jget_u64(cap, "gpus"));
		json_array_foreach(json_object_get(j, "images"), i, v)
			printf("image      %s\n", elem_str(v));
		json_array_foreach(json_object_get(j, "gpu_classes"), i, v)
			printf("gpu class  %s\n", elem_str(v));
		printf("region     %s\n", jget_str(j, "region"));
	}
	json_decref(j);
	return EXIT_OK;
}
