/* The trusted genesis of `tally audit` and `tally chain verify` (see
 * genesis_pin.h). */
#include "cli/genesis_pin.h"

#include <string.h>

#include "cli/tally.h"
#include "lib/errors.h"

int genesis_pin_parse(const char *arg, struct genesis_pin *pin)
{
	struct genesis g;
	char why[WHY_MAX];

	memset(pin, 0, sizeof(*pin));
	if (strlen(arg) == 2 * HASH_LEN && hex_decode(arg, pin->hash, HASH_LEN) == 0) {
		pin->set = true;
		return EXIT_OK;
	}
	if (genesis_load(&g, arg, why)) {
		err("--genesis %s: neither 64 hex characters nor a genesis file: %s", arg, why);
		return EXIT_USAGE;
	}
	genesis_hash(&g, pin->hash);
	genesis_free(&g);
	pin->set = true;
	return EXIT_OK;
}

int genesis_pin_check(const struct genesis_pin *pin, const struct genesis *g,
		      uint8_t hash[HASH_LEN])
{
	char have[2 * HASH_LEN + 1], want[2 * HASH_LEN + 1];

	genesis_hash(g, hash);
	if (!pin->set || !memcmp(hash, pin->hash, HASH_LEN))
		return EXIT_OK;
	hex_encode(hash, HASH_LEN, have);
	hex_encode(pin->hash, HASH_LEN, want);
	err("the chain's genesis is %s, not the pinned %s: another chain (chain id '%s')",
	    have, want, g->chain_id);
	return EXIT_REFUSED;
}

const char *genesis_pin_word(const struct genesis_pin *pin)
{
	return pin->set ? "pinned" : "not pinned";
}
