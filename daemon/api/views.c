#include "daemon/api/views.h"

#include <stdlib.h>

#include "lib/codec.h"
#include "lib/json_u64.h"

json_t *json_hex(const void *p, size_t n)
{
	char *s = malloc(2 * n + 1);
	json_t *j;

	if (!s)
		return NULL;
	hex_encode(p, n, s);
	j = json_string(s);
	free(s);
	return j;
}


json_t *view_lease(const struct lease *l)
{
	char *contract_text = contract_to_json(&l->contract);
	json_t *contract = contract_text ? json_loads(contract_text, 0, NULL) : NULL;
	struct enc e;

	free(contract_text);
	if (!contract)
		return NULL;
	enc_init(&e);
	lease_encode_to(&e, l);
	json_t *encoded = enc_error(&e) ? json_null() : json_hex(e.buf, e.len);
	enc_free(&e);
	json_t *j = json_pack("{s:o, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o,"
			 " s:o, s:o, s:o, s:o, s:o, s:o}",
			 "id", json_hex(l->id, LEASE_ID_LEN),
			 "state", lease_state_name(l->state),
			 "close_reason", lease_close_reason_name(l->close_reason),
			 "contract", contract,
			 "escrow", json_u64(l->escrow),
			 "charged", json_u64(l->charged),
			 "sla_credits", json_u64(l->sla_credits),
			 "next_seq", json_u64(l->next_seq),
			 "opened_height", json_u64(l->opened_height),
			 "started_ns", json_u64(l->started_ns),
			 "last_usage_hash", json_hex(l->last_usage_hash, HASH_LEN),
			 "last_end_ns", json_u64(l->last_end_ns),
			 "closed_height", json_u64(l->closed_height),
			 "cpu_ns", json_u64(l->cpu_ns),
			 "run_delay_ns", json_u64(l->run_delay_ns),
			 "gpu_ns", json_u64(l->gpu_ns),
			 "closing_ns", json_u64(l->closing_ns),
			 "close_asked_ns", json_u64(l->close_asked_ns));
	json_object_set_new(j, "carry", json_pack("{s:o, s:o, s:o, s:o}",
						   "cpu", json_u64(l->carry.cpu),
						   "mem", json_u64(l->carry.mem),
						   "gpu", json_u64(l->carry.gpu),
						   "credit", json_u64(l->carry.credit)));
	/* The canonical bytes, so an exported chain carries the exact state. */
	json_object_set_new(j, "encoded", encoded);
	return j;
}

json_t *view_usage_record(const struct usage_record *u)
{
	static const char *const sources[] = { "none", "kmod", "libvirt" };

	return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:s}",
			 "lease_id", json_hex(u->lease_id, LEASE_ID_LEN),
			 "seq", json_u64(u->seq),
			 "prev_hash", json_hex(u->prev_hash, HASH_LEN),
			 "start_ns", json_u64(u->start_ns),
			 "end_ns", json_u64(u->end_ns),
			 "cpu_ns", json_u64(u->cpu_ns),
			 "run_delay_ns", json_u64(u->run_delay_ns),
			 "gpu_ns", json_u64(u->gpu_ns),
			 "mem_mib", json_u64(u->mem_mib),
			 "mem_peak_bytes", json_u64(u->mem_peak_bytes),
			 "gpu_source", u->gpu_source <= 2 ? sources[u->gpu_source] : "unknown");
}

json_t *view_charge(const struct usage_charge *c)
{
	return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "cpu", json_u64(c->cpu),
			 "mem", json_u64(c->mem), "gpu", json_u64(c->gpu), "gross", json_u64(c->gross),
			 "sla_windows", json_u64(c->sla_windows),
			 "sla_breached", json_u64(c->sla_breached),
			 "sla_credit", json_u64(c->sla_credit), "net", json_u64(c->net));
}

json_t *view_header(const struct block_header *h)
{
	return json_pack("{s:i, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
			 "version", h->version,
			 "chain_id", h->chain_id,
			 "height", json_u64(h->height),
			 "time_ns", json_u64(h->time_ns),
			 "prev_block_id", json_hex(h->prev_block_id, HASH_LEN),
			 "txs_root", json_hex(h->txs_root, HASH_LEN),
			 "usage_size", json_u64(h->usage_size),
			 "usage_root", json_hex(h->usage_root, HASH_LEN),
			 "state_root", json_hex(h->state_root, HASH_LEN),
			 "validators_hash", json_hex(h->validators_hash, HASH_LEN),
			 "next_validators_hash", json_hex(h->next_validators_hash, HASH_LEN),
			 "proposer", json_hex(h->proposer, PUBKEY_LEN),
			 "last_commit_hash", json_hex(h->last_commit_hash, HASH_LEN));
}

json_t *view_valset(const struct validator_set *s)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < s->n; i++)
		json_array_append_new(arr, json_pack("{s:o, s:o}", "pubkey",
						     json_hex(s->v[i].pubkey, PUBKEY_LEN),
						     "stake", json_u64(s->v[i].stake)));
	return arr;
}

json_t *view_provider(const uint8_t pub[PUBKEY_LEN], const struct provider_entry *p)
{
	const struct provider_offer *o = &p->offer;
	json_t *images = json_array(), *classes = json_array();

	for (uint32_t i = 0; i < o->nimages; i++)
		json_array_append_new(images, json_string(o->images[i]));
	for (uint32_t i = 0; i < o->ngpu_classes; i++)
		json_array_append_new(classes, json_string(o->gpu_classes[i]));
	return json_pack("{s:o, s:o, s:b, s:s, s:{s:o, s:o, s:o}, s:I, s:I, s:I, s:o, s:o,"
			 " s:{s:I, s:I, s:I}, s:s}",
			 "provider", json_hex(pub, PUBKEY_LEN), "height", json_u64(p->height),
			 "withdrawn", provider_offer_withdrawn(o), "endpoint", o->endpoint,
			 "prices", "vcpu_second", json_u64(o->prices.vcpu_second),
			 "mem_gib_second", json_u64(o->prices.mem_gib_second),
			 "gpu_second", json_u64(o->prices.gpu_second),
			 "interval_s", (json_int_t)o->interval_s,
			 "sla_max_credit_ppm", (json_int_t)o->sla_max_credit_ppm,
			 "sla_min_delay_ppm", (json_int_t)o->sla_min_delay_ppm, "images", images,
			 "gpu_classes", classes, "capacity", "vcpus", (json_int_t)o->vcpus,
			 "memory_mib", (json_int_t)o->memory_mib, "gpus", (json_int_t)o->gpus,
			 "region", o->region);
}
