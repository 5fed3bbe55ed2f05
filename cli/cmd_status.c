/* tally status: the node's chain, height and what it offers. */
#include <inttypes.h>
#include <stdio.h>

#include "cli/tally.h"

int cmd_status(int argc, char **argv)
{
	static const char help[] =
		"usage: tally status [--node URL] [--json]\n\n"
		"The node's chain id, height, last block, usage log, validators and the\n"
		"prices and metering interval it offers (GET /v1/status).\n\n" COMMON_USAGE;
	struct common co;
	json_t *j, *v, *prices;
	char a[32], b[32], g[32];
	size_t i;
	int rc;

	rc = parse_common_args(&co, argc, argv, "status", help);
	if (rc != ARGS_PARSED)
		return rc;
	if (optind != argc)
		return usage_error("status", "unexpected argument '%s'", argv[optind]);
	rc = fetch_json(co.node, "/v1/status", &j);
	if (rc)
		return rc;
	if (co.json)
		return print_json(j);
	printf("chain      %s\n", jget_str(j, "chain_id"));
	printf("height     %" PRIu64 "\n", jget_u64(j, "height"));
	printf("block      %s\n", jget_str(j, "block_id"));
	printf("node       %s\n", jget_str(j, "node"));
	printf("usage log  %" PRIu64 " records, root %s\n", jget_u64(j, "usage_size"),
	       jget_str(j, "usage_root"));
	prices = json_object_get(j, "prices");
	if (json_is_object(prices))
		printf("prices     %s per vCPU-s, %s per GiB-s, %s per GPU-s\n",
		       fmt_amount(jget_u64(prices, "vcpu_second"), a),
		       fmt_amount(jget_u64(prices, "mem_gib_second"), b),
		       fmt_amount(jget_u64(prices, "gpu_second"), g));
	if (json_object_get(j, "interval_s"))
		printf("interval   %" PRIu64 " s\n", jget_u64(j, "interval_s"));
	json_array_foreach(json_object_get(j, "validators"), i, v) {
		if (json_is_string(v))
			printf("validator  %s\n", json_string_value(v));
		else
			printf("validator  %s  stake %" PRIu64 "\n", jget_str(v, "pubkey"),
			       jget_u64(v, "stake"));
	}
	json_decref(j);
	return EXIT_OK;
}
