/* Lease contracts in their binary form (contracts/contract.h): canonical,
 * within the format's ranges, and the same contract through its JSON. */
#include "contracts/contract.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lease_contract c;
	struct enc e;

	if (contract_decode(&c, data, size) != 0)
		return 0;
	enc_init(&e);
	contract_encode_to(&e, &c);
	fuzz_same_bytes("contract", data, size, &e);
	fuzz_contract_props(&c);
	return 0;
}
