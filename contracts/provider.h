/* A provider's announcement (the body of a PROVIDER transaction and the
 * value of its registry entry) and the one rule that binds a lease contract
 * to it. Pure, like the rest of contracts/: no clock, no I/O.
 *
 * An announcement says where the provider's API is, what it charges (the
 * contract's three prices, micro-units per unit-second), how often it
 * meters, the SLA terms it stands behind (the most credit a contract may
 * promise on a breach, the least run-queue delay it must allow), which images and GPU classes it offers, how much it has in all
 * (a summary: the room free at a given moment is the node's own business)
 * and a free-text region. The announcement with no image is the
 * withdrawal: every other field is then empty or zero.
 *
 * Byte layout (docs/FORMATS.md section 4, PROVIDER):
 *   str endpoint | u64 vcpu_second | u64 mem_gib_second | u64 gpu_second |
 *   u32 interval_s | u32 sla_max_credit_ppm | u32 sla_min_delay_ppm | u32 n | n x str image | u32 m | m x str gpu_class |
 *   u32 vcpus | u32 memory_mib | u32 gpus | str region */
#ifndef TALLY_PROVIDER_H
#define TALLY_PROVIDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "contracts/contract.h"

#define PROVIDER_ENDPOINT_MAX 256      /* bytes of 0x21..0x7e (a URL) */
#define PROVIDER_REGION_MAX 64         /* bytes of 0x20..0x7e */
#define PROVIDER_IMAGES_MAX 32         /* image names, strictly ascending */
#define PROVIDER_GPU_CLASSES_MAX 16    /* class names, strictly ascending */
#define PROVIDER_CLASS_MAX 63          /* [a-z0-9._-], 1..63 bytes */

struct provider_offer {
	char endpoint[PROVIDER_ENDPOINT_MAX + 1];
	struct lease_prices prices;
	uint32_t interval_s;
	uint32_t sla_max_credit_ppm;       /* a contract's credit_ppm at most this */
	uint32_t sla_min_delay_ppm;        /* a contract's max_delay_ppm at least this */
	uint32_t nimages;                  /* 0: the withdrawal */
	char images[PROVIDER_IMAGES_MAX][IMAGE_NAME_MAX + 1];
	uint32_t ngpu_classes;
	char gpu_classes[PROVIDER_GPU_CLASSES_MAX][PROVIDER_CLASS_MAX + 1];
	uint32_t vcpus;                    /* capacity summary, in all */
	uint32_t memory_mib;
	uint32_t gpus;
	char region[PROVIDER_REGION_MAX + 1];
};

/* True for the withdrawal (no image). */
bool provider_offer_withdrawn(const struct provider_offer *o);

/* Every rule of an announcement, in this order (the decoder applies them;
 * the node and the CLI call it before signing, for a clear sentence):
 *   a withdrawal has every other field empty or zero (TALLY_E_ENCODING);
 *   an announcement: endpoint 1..256 bytes of 0x21..0x7e (TALLY_E_RANGE
 *   when empty, TALLY_E_ENCODING for a bad byte); each price at most
 *   2^63 - 1 (TALLY_E_RANGE); 1 <= interval_s <= 3600 (TALLY_E_RANGE);
 *   sla_max_credit_ppm and sla_min_delay_ppm each 0..1000000 (TALLY_E_RANGE);
 *   images valid names (image_name_valid) strictly ascending
 *   (TALLY_E_ENCODING); GPU classes 1..63 bytes of [a-z0-9._-] strictly
 *   ascending (TALLY_E_ENCODING);
 *   region 0..64 bytes of 0x20..0x7e (TALLY_E_ENCODING).
 * Counts above their maximum are TALLY_E_TOOLONG. why[WHY_MAX] may be NULL. */
int provider_offer_check(const struct provider_offer *o, char *why);

void provider_offer_encode_to(struct enc *e, const struct provider_offer *o);
/* Strict: the layout above, then provider_offer_check. */
void provider_offer_decode_from(struct dec *d, struct provider_offer *o);

/* True when the offer lists image. */
bool provider_offer_has_image(const struct provider_offer *o, const char *image);

/* The chain's rule for a LEASE_OPEN naming this provider (docs/FORMATS.md
 * section 10.3): the provider has an announcement (not withdrawn), the
 * contract's image is one it offers, each of the contract's three prices is
 * at or above the announced one, its interval is the announced one, and its
 * SLA terms are within the announced bounds (provider_offer_sla_admits).
 * TALLY_E_CONTRACT with a sentence otherwise. o NULL: no announcement. */
int provider_offer_admits(const struct provider_offer *o, const struct lease_contract *c,
			  char *why);

/* The SLA part of that rule, on its own for who holds only the bounds (the
 * CLI choosing terms, the provider's node checking a lease against what it
 * announces now): c's credit_ppm at most o's sla_max_credit_ppm, then c's
 * max_delay_ppm at least o's sla_min_delay_ppm; TALLY_E_CONTRACT with a
 * sentence naming the numbers and the field otherwise. Reads only those two
 * fields of o. */
int provider_offer_sla_admits(const struct provider_offer *o, const struct lease_contract *c,
			      char *why);

#endif
