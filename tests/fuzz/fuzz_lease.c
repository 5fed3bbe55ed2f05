/* Lease state (contracts/contract.h: lease_encode_to), as the store and
 * chain files hold it and an auditor reads it back. */
#include "contracts/contract.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lease l;
	struct enc e;

	if (lease_decode(&l, data, size) != 0)
		return 0;
	fuzz_require(l.state >= LEASE_OPENED && l.state <= LEASE_STATE_MAX, "lease state %u",
		     l.state);
	fuzz_require(l.close_reason <= CLOSE_REASON_MAX, "close reason %u", l.close_reason);
	enc_init(&e);
	lease_encode_to(&e, &l);
	fuzz_same_bytes("lease", data, size, &e);
	fuzz_contract_props(&l.contract);
	return 0;
}
