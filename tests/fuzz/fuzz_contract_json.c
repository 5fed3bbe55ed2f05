/* Lease contracts as users write them (contracts/examples/): strict JSON;
 * an accepted one comes back the same through the JSON tally writes, and
 * one that also passes contract_validate is within the binary format's
 * rules and encodes canonically. */
#include <stdlib.h>

#include "contracts/contract.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lease_contract c;
	char why[WHY_MAX] = "";
	char *text = fuzz_text(data, size);

	int rc = contract_from_json(&c, text, why);
	free(text);
	if (rc) {
		fuzz_require(why[0], "contract JSON refused (%d) without a reason", rc);
		return 0;
	}
	/* The reader checks the form; contract_validate the rules (so that
	 * `tally` tells a malformed file from an invalid contract). A contract
	 * that passes both is one the binary format carries. */
	fuzz_contract_json_props(&c);
	if (contract_validate(&c, c.chain_id, 0, why) == 0)
		fuzz_contract_props(&c);
	else
		fuzz_require(why[0], "contract refused by the rules without a reason");
	return 0;
}
