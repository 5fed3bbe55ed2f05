/* Genesis: strict JSON in, canonical encoding and hash out. */
#include "lib/chain/genesis.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lib/codec.h"
#include "lib/errors.h"

#define GENESIS_VERSION 2
#define GENESIS_FILE_MAX (64u << 20)   /* far above 100000 accounts */

/* Rejects any key of obj not in the NULL-terminated list. */
static int only_keys(json_t *obj, const char *const *allowed, const char *where, char *why)
{
	const char *key;
	json_t *val;

	json_object_foreach(obj, key, val) {
		size_t i;

		for (i = 0; allowed[i]; i++)
			if (strcmp(key, allowed[i]) == 0)
				break;
		if (!allowed[i])
			return why_set(why, TALLY_E_INVALID, "%s: unknown key \"%s\"", where, key);
	}
	return 0;
}

static int get_u64(json_t *obj, const char *key, bool positive, uint64_t *out,
		   const char *where, char *why)
{
	json_t *v = json_object_get(obj, key);

	if (!v)
		return why_set(why, TALLY_E_INVALID, "%s: \"%s\" is missing", where, key);
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    (positive && json_integer_value(v) == 0))
		return why_set(why, TALLY_E_RANGE, "%s: \"%s\" must be a%s integer", where, key,
			    positive ? " positive" : " non-negative");
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

static int get_pubkey(json_t *obj, uint8_t out[PUBKEY_LEN], const char *where, char *why)
{
	json_t *v = json_object_get(obj, "pubkey");

	if (!v)
		return why_set(why, TALLY_E_INVALID, "%s: \"pubkey\" is missing", where);
	if (!json_is_string(v) || hex_decode(json_string_value(v), out, PUBKEY_LEN) != 0)
		return why_set(why, TALLY_E_ENCODING, "%s: \"pubkey\" must be %d hex digits",
			    where, 2 * PUBKEY_LEN);
	if (key_check(out))
		return why_set(why, TALLY_E_KEY, "%s: \"pubkey\" is not a valid Ed25519 key (small"
			    " order or not canonical)", where);
	return 0;
}

/* An optional string of at most max - 1 bytes into out[max]. */
static int get_opt_str(json_t *obj, const char *key, char *out, size_t max,
		       const char *where, char *why)
{
	json_t *v = json_object_get(obj, key);

	out[0] = '\0';
	if (!v)
		return 0;
	if (!json_is_string(v) || json_string_length(v) >= max ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return why_set(why, TALLY_E_RANGE,
			       "%s: \"%s\" must be a string of at most %zu bytes", where, key,
			       max - 1);
	memcpy(out, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

struct val_entry {
	struct validator v;
	struct genesis_validator_info info;
};

static int cmp_val(const void *a, const void *b)
{
	return memcmp(((const struct val_entry *)a)->v.pubkey,
		      ((const struct val_entry *)b)->v.pubkey, PUBKEY_LEN);
}

static int cmp_account(const void *a, const void *b)
{
	return memcmp(((const struct genesis_account *)a)->pubkey,
		      ((const struct genesis_account *)b)->pubkey, PUBKEY_LEN);
}

static int parse_validators(struct genesis *g, json_t *arr, char *why)
{
	static const char *const keys[] = { "pubkey", "stake", "name", "api", NULL };
	struct val_entry *e;
	char where[48], hex[2 * PUBKEY_LEN + 1];
	size_t n;
	int rc = 0;

	if (!json_is_array(arr))
		return why_set(why, TALLY_E_INVALID, "\"validators\" must be an array");
	n = json_array_size(arr);
	if (n == 0 || n > VALIDATORS_MAX)
		return why_set(why, TALLY_E_RANGE, "genesis needs 1 to %d validators, not %zu",
			    VALIDATORS_MAX, n);
	e = calloc(n, sizeof(*e));
	if (!e)
		return why_set(why, TALLY_E_NOMEM, "out of memory");
	for (size_t i = 0; i < n && !rc; i++) {
		json_t *o = json_array_get(arr, i);

		snprintf(where, sizeof(where), "validators[%zu]", i);
		if (!json_is_object(o))
			rc = why_set(why, TALLY_E_INVALID, "%s must be an object", where);
		if (!rc)
			rc = only_keys(o, keys, where, why);
		if (!rc)
			rc = get_pubkey(o, e[i].v.pubkey, where, why);
		if (!rc)
			rc = get_u64(o, "stake", true, &e[i].v.stake, where, why);
		if (!rc)
			rc = get_opt_str(o, "name", e[i].info.name, sizeof(e[i].info.name),
					 where, why);
		if (!rc)
			rc = get_opt_str(o, "api", e[i].info.api, sizeof(e[i].info.api),
					 where, why);
	}
	if (!rc) {
		qsort(e, n, sizeof(*e), cmp_val);
		for (size_t i = 1; i < n && !rc; i++) {
			if (cmp_val(&e[i - 1], &e[i]) == 0) {
				hex_encode(e[i].v.pubkey, PUBKEY_LEN, hex);
				rc = why_set(why, TALLY_E_EXISTS, "validator %s is listed twice",
					     hex);
			}
		}
	}
	if (!rc) {
		g->validators.n = n;
		for (size_t i = 0; i < n; i++) {
			g->validators.v[i] = e[i].v;
			g->info[i] = e[i].info;
		}
		if (valset_check(&g->validators) != 0)
			rc = why_set(why, TALLY_E_OVERFLOW,
				     "the validators' total stake exceeds 2^64 - 1");
	}
	free(e);
	return rc;
}

static int parse_accounts(struct genesis *g, json_t *arr, char *why)
{
	static const char *const keys[] = { "pubkey", "balance", NULL };
	char where[48], hex[2 * PUBKEY_LEN + 1];
	size_t n;

	if (!json_is_array(arr))
		return why_set(why, TALLY_E_INVALID, "\"accounts\" must be an array");
	n = json_array_size(arr);
	if (n > GENESIS_ACCOUNTS_MAX)
		return why_set(why, TALLY_E_RANGE, "genesis holds at most %d accounts, not %zu",
			    GENESIS_ACCOUNTS_MAX, n);
	g->accounts = calloc(n ? n : 1, sizeof(*g->accounts));
	if (!g->accounts)
		return why_set(why, TALLY_E_NOMEM, "out of memory");
	g->naccounts = n;
	for (size_t i = 0; i < n; i++) {
		json_t *o = json_array_get(arr, i);
		int rc;

		snprintf(where, sizeof(where), "accounts[%zu]", i);
		if (!json_is_object(o))
			return why_set(why, TALLY_E_INVALID, "%s must be an object", where);
		rc = only_keys(o, keys, where, why);
		if (!rc)
			rc = get_pubkey(o, g->accounts[i].pubkey, where, why);
		if (!rc)
			rc = get_u64(o, "balance", false, &g->accounts[i].balance, where, why);
		if (rc)
			return rc;
	}
	qsort(g->accounts, n, sizeof(*g->accounts), cmp_account);
	for (size_t i = 1; i < n; i++) {
		if (cmp_account(&g->accounts[i - 1], &g->accounts[i]) == 0) {
			hex_encode(g->accounts[i].pubkey, PUBKEY_LEN, hex);
			return why_set(why, TALLY_E_EXISTS, "account %s is listed twice", hex);
		}
	}
	return 0;
}

int chain_params_check(const struct chain_params *p, char *why)
{
	const uint64_t height_max = 1ull << 62;

	if (p->slash_ppm > PARAMS_PPM)
		return why_set(why, TALLY_E_RANGE, "params: \"slash_ppm\" must be at most %u",
			    PARAMS_PPM);
	if (p->min_self_stake == 0)
		return why_set(why, TALLY_E_RANGE, "params: \"min_self_stake\" must be at least 1");
	if (p->max_validators == 0 || p->max_validators > VALIDATORS_MAX)
		return why_set(why, TALLY_E_RANGE, "params: \"max_validators\" must be 1..%d",
			    VALIDATORS_MAX);
	if (p->liveness_window > PARAMS_LIVENESS_MAX)
		return why_set(why, TALLY_E_RANGE, "params: \"liveness_window\" must be 0 (off) or"
			    " 1..%u blocks", PARAMS_LIVENESS_MAX);
	if (p->unbonding_blocks >= height_max || p->jail_blocks >= height_max)
		return why_set(why, TALLY_E_RANGE, "params: block counts must be below 2^62");
	return 0;
}

void chain_params_encode(struct enc *e, const struct chain_params *p)
{
	enc_u64(e, p->unbonding_blocks);
	enc_u32(e, p->slash_ppm);
	enc_u64(e, p->jail_blocks);
	enc_u64(e, p->min_self_stake);
	enc_u32(e, p->max_validators);
	enc_u64(e, p->liveness_window);
}

int chain_params_decode(struct chain_params *p, const uint8_t *b, size_t n)
{
	struct dec d;
	int rc;

	dec_init(&d, b, n);
	p->unbonding_blocks = dec_u64(&d);
	p->slash_ppm = dec_u32(&d);
	p->jail_blocks = dec_u64(&d);
	p->min_self_stake = dec_u64(&d);
	p->max_validators = dec_u32(&d);
	p->liveness_window = dec_u64(&d);
	rc = dec_finish(&d);
	if (!rc && chain_params_check(p, NULL))
		rc = TALLY_E_RANGE;
	return rc;
}

static int parse_params(struct genesis *g, json_t *obj, char *why)
{
	static const char *const keys[] = { "unbonding_blocks", "slash_ppm", "jail_blocks",
					    "min_self_stake", "max_validators",
					    "liveness_window", NULL };
	struct chain_params *p = &g->params;
	uint64_t ppm, maxv;
	int rc;

	if (!json_is_object(obj))
		return why_set(why, TALLY_E_INVALID, "\"params\" must be an object");
	rc = only_keys(obj, keys, "params", why);
	if (!rc)
		rc = get_u64(obj, "unbonding_blocks", false, &p->unbonding_blocks, "params", why);
	if (!rc)
		rc = get_u64(obj, "slash_ppm", false, &ppm, "params", why);
	if (!rc)
		rc = get_u64(obj, "jail_blocks", false, &p->jail_blocks, "params", why);
	if (!rc)
		rc = get_u64(obj, "min_self_stake", true, &p->min_self_stake, "params", why);
	if (!rc)
		rc = get_u64(obj, "max_validators", true, &maxv, "params", why);
	if (!rc)
		rc = get_u64(obj, "liveness_window", false, &p->liveness_window, "params", why);
	if (rc)
		return rc;
	if (ppm > PARAMS_PPM || maxv > VALIDATORS_MAX)
		return why_set(why, TALLY_E_RANGE, "params: \"slash_ppm\" must be at most %u and"
			    " \"max_validators\" at most %d", PARAMS_PPM, VALIDATORS_MAX);
	p->slash_ppm = (uint32_t)ppm;
	p->max_validators = (uint32_t)maxv;
	return chain_params_check(p, why);
}

/* Under version 2 the genesis set must itself be one the rules would pick. */
static int check_genesis_set(const struct genesis *g, char *why)
{
	char hex[2 * PUBKEY_LEN + 1];

	if (g->validators.n > g->params.max_validators)
		return why_set(why, TALLY_E_RANGE, "genesis lists %zu validators, above"
			    " \"max_validators\" %u", g->validators.n, g->params.max_validators);
	for (size_t i = 0; i < g->validators.n; i++) {
		if (g->validators.v[i].stake < g->params.min_self_stake) {
			hex_encode(g->validators.v[i].pubkey, PUBKEY_LEN, hex);
			return why_set(why, TALLY_E_RANGE, "validator %s: stake %" PRIu64
				       " is below \"min_self_stake\" %" PRIu64, hex,
				       g->validators.v[i].stake, g->params.min_self_stake);
		}
	}
	return 0;
}

/* Everything that exists at genesis is the whole supply, and no rule mints:
 * capping it at 2^63 - 1 keeps every balance, stake, escrow and sum of them
 * a signed 64-bit integer as well (exact in JSON, docs/PROTOCOL.md). */
static int check_supply(const struct genesis *g, char *why)
{
	uint64_t total = 0;

	for (size_t i = 0; i < g->validators.n; i++) {
		if (g->validators.v[i].stake > (uint64_t)INT64_MAX - total)
			goto over;
		total += g->validators.v[i].stake;
	}
	for (size_t i = 0; i < g->naccounts; i++) {
		if (g->accounts[i].balance > (uint64_t)INT64_MAX - total)
			goto over;
		total += g->accounts[i].balance;
	}
	return 0;
over:
	return why_set(why, TALLY_E_OVERFLOW, "the total of stakes and balances exceeds 2^63 - 1");
}

static int parse_root(struct genesis *g, json_t *root, char *why)
{
	static const char *const keys[] = { "chain_id", "genesis_time_ns", "params",
					    "validators", "accounts", NULL };
	json_t *v;
	int rc;

	if (!json_is_object(root))
		return why_set(why, TALLY_E_INVALID, "genesis must be a JSON object");
	rc = only_keys(root, keys, "genesis", why);
	if (rc)
		return rc;
	v = json_object_get(root, "chain_id");
	if (!v)
		return why_set(why, TALLY_E_INVALID, "genesis: \"chain_id\" is missing");
	if (!json_is_string(v) || json_string_length(v) > CHAIN_ID_MAX ||
	    chain_id_valid(json_string_value(v)) != 0)
		return why_set(why, TALLY_E_CHAIN_ID,
			    "genesis: \"chain_id\" must be 1..%d bytes of [a-z0-9._-]",
			    CHAIN_ID_MAX);
	strcpy(g->chain_id, json_string_value(v));
	rc = get_u64(root, "genesis_time_ns", false, &g->genesis_time_ns, "genesis", why);
	if (rc)
		return rc;
	v = json_object_get(root, "params");
	g->version = v ? GENESIS_VERSION : 1;
	g->params = GENESIS_V1_PARAMS;
	if (v && (rc = parse_params(g, v, why)) != 0)
		return rc;
	v = json_object_get(root, "validators");
	if (!v)
		return why_set(why, TALLY_E_INVALID, "genesis: \"validators\" is missing");
	rc = parse_validators(g, v, why);
	if (rc)
		return rc;
	v = json_object_get(root, "accounts");
	if (!v)
		return why_set(why, TALLY_E_INVALID, "genesis: \"accounts\" is missing");
	rc = parse_accounts(g, v, why);
	if (!rc)
		rc = check_genesis_set(g, why);
	if (rc)
		return rc;
	return check_supply(g, why);
}

int genesis_parse(struct genesis *g, const char *json, char *why)
{
	json_error_t err;
	json_t *root;
	int rc;

	memset(g, 0, sizeof(*g));
	if (why)
		why[0] = '\0';
	root = json_loads(json, JSON_REJECT_DUPLICATES, &err);
	if (!root)
		return why_set(why, TALLY_E_ENCODING, "genesis is not valid JSON: %s (line %d)",
			    err.text, err.line);
	rc = parse_root(g, root, why);
	json_decref(root);
	if (rc)
		genesis_free(g);
	return rc;
}

int genesis_load(struct genesis *g, const char *path, char *why)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int rc;

	memset(g, 0, sizeof(*g));
	if (!f)
		return why_set(why, errno == ENOENT ? TALLY_E_NOTFOUND : TALLY_E_IO,
			    "cannot open genesis file %s: %s", path, strerror(errno));
	for (;;) {
		if (len + 4096 + 1 > cap) {
			char *nb;

			cap = cap ? cap * 2 : 65536;
			nb = realloc(buf, cap);
			if (!nb) {
				rc = why_set(why, TALLY_E_NOMEM, "out of memory reading %s", path);
				goto out;
			}
			buf = nb;
		}
		size_t got = fread(buf + len, 1, cap - len - 1, f);
		len += got;
		/* The file users mix up with a genesis: both come from a node. */
		if (len >= 8 && !memcmp(buf, "TALLYCHN", 8)) {
			rc = why_set(why, TALLY_E_ENCODING,
				     "%s is a chain file (tally chain export), not a genesis file:"
				     " the genesis is a JSON file, the network's genesis.json"
				     " (GET /v1/genesis of any of its nodes)", path);
			goto out;
		}
		if (len > GENESIS_FILE_MAX) {
			rc = why_set(why, TALLY_E_TOOLONG,
				     "genesis file %s is larger than %u bytes", path,
				     GENESIS_FILE_MAX);
			goto out;
		}
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		rc = why_set(why, TALLY_E_IO, "cannot read genesis file %s", path);
		goto out;
	}
	buf[len] = '\0';
	if (strlen(buf) != len) {
		rc = why_set(why, TALLY_E_ENCODING, "genesis file %s contains a NUL byte", path);
		goto out;
	}
	rc = genesis_parse(g, buf, why);
out:
	free(buf);
	fclose(f);
	return rc;
}

static json_t *validators_json(const struct genesis *g)
{
	json_t *arr = json_array();
	char hex[2 * PUBKEY_LEN + 1];

	for (size_t i = 0; arr && i < g->validators.n; i++) {
		const struct validator *v = &g->validators.v[i];
		json_t *o = json_object();

		if (v->stake > INT64_MAX || !o) {
			json_decref(o);
			json_decref(arr);
			return NULL;
		}
		hex_encode(v->pubkey, PUBKEY_LEN, hex);
		json_object_set_new(o, "pubkey", json_string(hex));
		json_object_set_new(o, "stake", json_integer((json_int_t)v->stake));
		if (g->info[i].name[0])
			json_object_set_new(o, "name", json_string(g->info[i].name));
		if (g->info[i].api[0])
			json_object_set_new(o, "api", json_string(g->info[i].api));
		json_array_append_new(arr, o);
	}
	return arr;
}

static json_t *accounts_json(const struct genesis *g)
{
	json_t *arr = json_array();
	char hex[2 * PUBKEY_LEN + 1];

	for (size_t i = 0; arr && i < g->naccounts; i++) {
		json_t *o = json_object();

		if (g->accounts[i].balance > INT64_MAX || !o) {
			json_decref(o);
			json_decref(arr);
			return NULL;
		}
		hex_encode(g->accounts[i].pubkey, PUBKEY_LEN, hex);
		json_object_set_new(o, "pubkey", json_string(hex));
		json_object_set_new(o, "balance", json_integer((json_int_t)g->accounts[i].balance));
		json_array_append_new(arr, o);
	}
	return arr;
}

static json_t *params_json(const struct chain_params *p)
{
	return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}",
			 "unbonding_blocks", (json_int_t)p->unbonding_blocks,
			 "slash_ppm", (json_int_t)p->slash_ppm,
			 "jail_blocks", (json_int_t)p->jail_blocks,
			 "min_self_stake", (json_int_t)p->min_self_stake,
			 "max_validators", (json_int_t)p->max_validators,
			 "liveness_window", (json_int_t)p->liveness_window);
}

char *genesis_to_json(const struct genesis *g)
{
	json_t *root, *vals, *accs;
	char *out = NULL;

	/* JSON integers here are signed 64-bit: a value above that has no
	 * faithful JSON form, so refuse rather than write a wrong one. */
	if (g->genesis_time_ns > INT64_MAX)
		return NULL;
	vals = validators_json(g);
	accs = accounts_json(g);
	root = json_object();
	if (vals && accs && root) {
		json_object_set_new(root, "chain_id", json_string(g->chain_id));
		json_object_set_new(root, "genesis_time_ns",
				    json_integer((json_int_t)g->genesis_time_ns));
		if (g->version >= 2)
			json_object_set_new(root, "params", params_json(&g->params));
		json_object_set(root, "validators", vals);
		json_object_set(root, "accounts", accs);
		out = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	}
	json_decref(vals);
	json_decref(accs);
	json_decref(root);
	return out;
}

void genesis_encode(struct enc *e, const struct genesis *g)
{
	enc_u8(e, g->version >= 2 ? GENESIS_VERSION : 1);
	enc_str(e, g->chain_id);
	enc_u64(e, g->genesis_time_ns);
	if (g->version >= 2)
		chain_params_encode(e, &g->params);
	enc_u32(e, (uint32_t)g->validators.n);
	for (size_t i = 0; i < g->validators.n; i++) {
		enc_fixed(e, g->validators.v[i].pubkey, PUBKEY_LEN);
		enc_u64(e, g->validators.v[i].stake);
	}
	enc_u32(e, (uint32_t)g->naccounts);
	for (size_t i = 0; i < g->naccounts; i++) {
		enc_fixed(e, g->accounts[i].pubkey, PUBKEY_LEN);
		enc_u64(e, g->accounts[i].balance);
	}
}

void genesis_hash(const struct genesis *g, uint8_t out[HASH_LEN])
{
	struct enc e;

	enc_init(&e);
	genesis_encode(&e, g);
	/* Only allocation can fail here; a wrong genesis hash would bind the
	 * chain to another genesis. */
	if (enc_error(&e))
		abort();
	sha256(e.buf, e.len, out);
	enc_free(&e);
}

void genesis_free(struct genesis *g)
{
	free(g->accounts);
	g->accounts = NULL;
	g->naccounts = 0;
}
