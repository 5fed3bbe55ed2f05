/* --genesis FILE|HASH: the chain an auditor trusts. Every signature is
 * bound to the genesis hash, so pinning it pins the chain: `tally audit` and
 * `tally chain verify` refuse a node or a file whose genesis is another,
 * and say which genesis they trusted either way. */
#ifndef TALLY_CLI_GENESIS_PIN_H
#define TALLY_CLI_GENESIS_PIN_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/chain/genesis.h"
#include "lib/crypto.h"

struct genesis_pin {
	bool set;
	uint8_t hash[HASH_LEN];
};

/* arg is 64 hex characters (a genesis hash) or the path of a genesis JSON
 * file, whose hash is taken. Returns an exit code, with a message. */
int genesis_pin_parse(const char *arg, struct genesis_pin *pin);
/* The chain's genesis against the pin: EXIT_OK (hash receives the genesis
 * hash), or EXIT_REFUSED with a message naming both hashes. */
int genesis_pin_check(const struct genesis_pin *pin, const struct genesis *g,
		      uint8_t hash[HASH_LEN]);
/* "pinned" or "not pinned: taken from <source>" for reports. */
const char *genesis_pin_word(const struct genesis_pin *pin);

#endif
