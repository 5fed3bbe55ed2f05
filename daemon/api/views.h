/* JSON views of ledger objects for the API. JSON is for people and clients;
 * anything a client must verify is also given as hex of its canonical bytes. */
#ifndef TALLY_VIEWS_H
#define TALLY_VIEWS_H

#include <jansson.h>

#include "contracts/contract.h"
#include "lib/chain/block.h"
#include "lib/chain/state.h"

json_t *json_hex(const void *p, size_t n);
json_t *view_lease(const struct lease *l);
json_t *view_usage_record(const struct usage_record *u);
json_t *view_charge(const struct usage_charge *c);
json_t *view_header(const struct block_header *h);
json_t *view_valset(const struct validator_set *s);
/* {"provider", "height", "withdrawn", "endpoint", "prices": {"vcpu_second",
 * "mem_gib_second", "gpu_second"}, "interval_s", "sla_max_credit_ppm",
 * "sla_min_delay_ppm", "images", "gpu_classes",
 * "capacity": {"vcpus", "memory_mib", "gpus"}, "region"} */
json_t *view_provider(const uint8_t pub[PUBKEY_LEN], const struct provider_entry *p);

#endif
