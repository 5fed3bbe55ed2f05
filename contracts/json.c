/* The JSON form of a lease contract, as users write it (see
 * contracts/examples/README.md for every field and its unit):
 *
 *   { "version": 1, "chain_id": "...", "tenant": "<64 hex>", "provider": "<64 hex>",
 *     "nonce": N, "expiry": N,
 *     "vm": { "vcpus": N, "memory_mib": N, "disk_gib": N, "gpus": N, "image": "...",
 *             "hostname": "...", "ssh_key": "..." },
 *     "duration_s": N, "deposit": N, "interval_s": N,
 *     "prices": { "vcpu_second": N, "mem_gib_second": N, "gpu_second": N },
 *     "sla": { "max_delay_ppm": N, "credit_ppm": N } }
 *
 * Parsing is strict: every field is required except vm.hostname and
 * vm.ssh_key (left out, they are empty), unknown and duplicate keys are
 * errors, numbers are JSON integers (no fraction, no exponent) within the
 * field's range and not negative. JSON integers here reach 2^63 - 1, the
 * limit of jansson; contract_validate holds u64 fields to the same limit, so
 * every valid contract can be written back. Whether the values make a sound
 * contract is contract_validate's question, not the parser's. */
#include "contracts/contract.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lib/errors.h"

static const char *json_type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a number with a fraction or exponent";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	case JSON_NULL: return "null";
	}
	return "unknown";
}

static bool listed(const char *key, const char *const *keys)
{
	for (size_t i = 0; keys && keys[i]; i++)
		if (strcmp(key, keys[i]) == 0)
			return true;
	return false;
}

/* Which keys an object must hold, and which it may; "where" names it in
 * messages ("vm."). */
static int check_keys(const json_t *obj, const char *where, const char *const *keys,
		      const char *const *optional, char *why)
{
	const char *key;
	json_t *val;

	json_object_foreach((json_t *)obj, key, val) {
		if (!listed(key, keys) && !listed(key, optional))
			return why_set(why, TALLY_E_INVALID, "unknown key \"%s%s\"", where, key);
	}
	for (size_t i = 0; keys[i]; i++)
		if (!json_object_get(obj, keys[i]))
			return why_set(why, TALLY_E_INVALID, "missing key \"%s%s\"",
				       where, keys[i]);
	return 0;
}

static int get_uint(const json_t *obj, const char *where, const char *key, uint64_t max,
		    uint64_t *out, char *why)
{
	const json_t *v = json_object_get(obj, key);
	json_int_t n;

	if (!json_is_integer(v))
		return why_set(why, TALLY_E_INVALID, "%s%s must be an integer, not %s",
			       where, key, json_type_name(v));
	n = json_integer_value(v);
	if (n < 0)
		return why_set(why, TALLY_E_RANGE, "%s%s must not be negative (got %lld)",
			       where, key, (long long)n);
	if ((uint64_t)n > max)
		return why_set(why, TALLY_E_RANGE, "%s%s %lld exceeds the maximum %" PRIu64,
			       where, key, (long long)n, max);
	*out = (uint64_t)n;
	return 0;
}

static int get_u64(const json_t *obj, const char *where, const char *key, uint64_t *out,
		   char *why)
{
	return get_uint(obj, where, key, UINT64_MAX, out, why);
}

static int get_u32(const json_t *obj, const char *where, const char *key, uint32_t *out,
		   char *why)
{
	uint64_t v;
	int rc = get_uint(obj, where, key, UINT32_MAX, &v, why);

	if (!rc)
		*out = (uint32_t)v;
	return rc;
}

static int get_str(const json_t *obj, const char *where, const char *key, char *out,
		   size_t max, char *why)
{
	const json_t *v = json_object_get(obj, key);

	if (!json_is_string(v))
		return why_set(why, TALLY_E_INVALID, "%s%s must be a string, not %s",
			       where, key, json_type_name(v));
	if (json_string_length(v) > max)
		return why_set(why, TALLY_E_TOOLONG, "%s%s is longer than %zu bytes",
			       where, key, max);
	memcpy(out, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

static int get_key(const json_t *obj, const char *key, uint8_t out[PUBKEY_LEN], char *why)
{
	const json_t *v = json_object_get(obj, key);

	if (!json_is_string(v))
		return why_set(why, TALLY_E_INVALID, "%s must be a string, not %s",
			       key, json_type_name(v));
	if (json_string_length(v) != 2 * PUBKEY_LEN ||
	    hex_decode(json_string_value(v), out, PUBKEY_LEN) != 0)
		return why_set(why, TALLY_E_ENCODING,
			       "%s must be %d hex digits (an Ed25519 public key)",
			       key, 2 * PUBKEY_LEN);
	return 0;
}

static int get_object(const json_t *obj, const char *key, const char *const *keys,
		      const char *const *optional, const json_t **out, char *why)
{
	const json_t *v = json_object_get(obj, key);
	char where[32];

	if (!json_is_object(v))
		return why_set(why, TALLY_E_INVALID, "%s must be an object, not %s",
			       key, json_type_name(v));
	snprintf(where, sizeof(where), "%s.", key);
	*out = v;
	return check_keys(v, where, keys, optional, why);
}

static const char *const top_keys[] = {
	"version", "chain_id", "tenant", "provider", "nonce", "expiry", "vm",
	"duration_s", "deposit", "interval_s", "prices", "sla", NULL
};
static const char *const vm_keys[] = {
	"vcpus", "memory_mib", "disk_gib", "gpus", "image", NULL
};
static const char *const vm_optional_keys[] = { "hostname", "ssh_key", NULL };
static const char *const price_keys[] = {
	"vcpu_second", "mem_gib_second", "gpu_second", NULL
};
static const char *const sla_keys[] = { "max_delay_ppm", "credit_ppm", NULL };

static int parse_vm(const json_t *root, struct vm_spec *vm, char *why)
{
	const json_t *o;
	int rc = get_object(root, "vm", vm_keys, vm_optional_keys, &o, why);

	if (!rc)
		rc = get_u32(o, "vm.", "vcpus", &vm->vcpus, why);
	if (!rc)
		rc = get_u32(o, "vm.", "memory_mib", &vm->memory_mib, why);
	if (!rc)
		rc = get_u32(o, "vm.", "disk_gib", &vm->disk_gib, why);
	if (!rc)
		rc = get_u32(o, "vm.", "gpus", &vm->gpus, why);
	if (!rc)
		rc = get_str(o, "vm.", "image", vm->image, IMAGE_NAME_MAX, why);
	if (!rc && json_object_get(o, "hostname"))
		rc = get_str(o, "vm.", "hostname", vm->hostname, HOSTNAME_MAX, why);
	if (!rc && json_object_get(o, "ssh_key"))
		rc = get_str(o, "vm.", "ssh_key", vm->ssh_key, SSH_KEY_MAX, why);
	return rc;
}

static int parse_prices(const json_t *root, struct lease_prices *p, char *why)
{
	const json_t *o;
	int rc = get_object(root, "prices", price_keys, NULL, &o, why);

	if (!rc)
		rc = get_u64(o, "prices.", "vcpu_second", &p->vcpu_second, why);
	if (!rc)
		rc = get_u64(o, "prices.", "mem_gib_second", &p->mem_gib_second, why);
	if (!rc)
		rc = get_u64(o, "prices.", "gpu_second", &p->gpu_second, why);
	return rc;
}

static int parse_sla(const json_t *root, struct lease_sla *s, char *why)
{
	const json_t *o;
	int rc = get_object(root, "sla", sla_keys, NULL, &o, why);

	if (!rc)
		rc = get_u32(o, "sla.", "max_delay_ppm", &s->max_delay_ppm, why);
	if (!rc)
		rc = get_u32(o, "sla.", "credit_ppm", &s->credit_ppm, why);
	return rc;
}

static int parse_contract(const json_t *root, struct lease_contract *c, char *why)
{
	uint64_t version;
	int rc;

	if (!json_is_object(root))
		return why_set(why, TALLY_E_INVALID, "a contract must be a JSON object, not %s",
			       json_type_name(root));
	rc = check_keys(root, "", top_keys, NULL, why);
	if (!rc)
		rc = get_uint(root, "", "version", UINT8_MAX, &version, why);
	if (!rc) {
		c->version = (uint8_t)version;
		rc = get_str(root, "", "chain_id", c->chain_id, CHAIN_ID_MAX, why);
	}
	if (!rc)
		rc = get_key(root, "tenant", c->tenant, why);
	if (!rc)
		rc = get_key(root, "provider", c->provider, why);
	if (!rc)
		rc = get_u64(root, "", "nonce", &c->nonce, why);
	if (!rc)
		rc = get_u64(root, "", "expiry", &c->expiry, why);
	if (!rc)
		rc = parse_vm(root, &c->vm, why);
	if (!rc)
		rc = get_u64(root, "", "duration_s", &c->duration_s, why);
	if (!rc)
		rc = get_u64(root, "", "deposit", &c->deposit, why);
	if (!rc)
		rc = get_u32(root, "", "interval_s", &c->interval_s, why);
	if (!rc)
		rc = parse_prices(root, &c->prices, why);
	if (!rc)
		rc = parse_sla(root, &c->sla, why);
	return rc;
}

int contract_from_json(struct lease_contract *c, const char *text, char *why)
{
	json_error_t jerr;
	json_t *root;
	int rc;

	memset(c, 0, sizeof(*c));
	root = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return why_set(why, TALLY_E_ENCODING, "invalid JSON at line %d, column %d: %s",
			       jerr.line, jerr.column, jerr.text);
	rc = parse_contract(root, c, why);
	json_decref(root);
	if (rc)
		memset(c, 0, sizeof(*c));
	else if (why)
		why[0] = '\0';
	return rc;
}

static json_t *json_hex(const uint8_t key[PUBKEY_LEN])
{
	char hex[2 * PUBKEY_LEN + 1];

	hex_encode(key, PUBKEY_LEN, hex);
	return json_string(hex);
}

/* A JSON integer here carries at most INT64_MAX. */
static bool fits_json(const struct lease_contract *c)
{
	const uint64_t fields[] = {
		c->nonce, c->expiry, c->duration_s, c->deposit, c->prices.vcpu_second,
		c->prices.mem_gib_second, c->prices.gpu_second,
	};

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (fields[i] > (uint64_t)INT64_MAX)
			return false;
	return true;
}

#define JI(v) ((json_int_t)(v))

/* NULL on allocation failure, or for a contract with a u64 field above
 * INT64_MAX (which contract_validate refuses). */
char *contract_to_json(const struct lease_contract *c)
{
	json_t *root;
	char *text;

	if (!fits_json(c))
		return NULL;
	/* "o" steals the key strings; on failure json_pack releases them. */
	root = json_pack("{s:I, s:s%, s:o, s:o, s:I, s:I,"
			 " s:{s:I, s:I, s:I, s:I, s:s%, s:s%, s:s%},"
			 " s:I, s:I, s:I,"
			 " s:{s:I, s:I, s:I},"
			 " s:{s:I, s:I}}",
			 "version", JI(c->version),
			 "chain_id", c->chain_id, strnlen(c->chain_id, CHAIN_ID_MAX),
			 "tenant", json_hex(c->tenant),
			 "provider", json_hex(c->provider),
			 "nonce", JI(c->nonce),
			 "expiry", JI(c->expiry),
			 "vm",
			 "vcpus", JI(c->vm.vcpus),
			 "memory_mib", JI(c->vm.memory_mib),
			 "disk_gib", JI(c->vm.disk_gib),
			 "gpus", JI(c->vm.gpus),
			 "image", c->vm.image, strnlen(c->vm.image, IMAGE_NAME_MAX),
			 "hostname", c->vm.hostname, strnlen(c->vm.hostname, HOSTNAME_MAX),
			 "ssh_key", c->vm.ssh_key, strnlen(c->vm.ssh_key, SSH_KEY_MAX),
			 "duration_s", JI(c->duration_s),
			 "deposit", JI(c->deposit),
			 "interval_s", JI(c->interval_s),
			 "prices",
			 "vcpu_second", JI(c->prices.vcpu_second),
			 "mem_gib_second", JI(c->prices.mem_gib_second),
			 "gpu_second", JI(c->prices.gpu_second),
			 "sla",
			 "max_delay_ppm", JI(c->sla.max_delay_ppm),
			 "credit_ppm", JI(c->sla.credit_ppm));
	if (!root)
		return NULL;
	text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(root);
	return text;
}
