/* Usage records (contracts/contract.h), the provider-signed body of USAGE. */
#include "contracts/contract.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct usage_record u;
	struct enc e;

	if (usage_decode(&u, data, size) != 0)
		return 0;
	fuzz_require(u.gpu_source <= GPU_SOURCE_LIBVIRT, "gpu source %u", u.gpu_source);
	enc_init(&e);
	usage_encode_to(&e, &u);
	fuzz_same_bytes("usage record", data, size, &e);
	return 0;
}
