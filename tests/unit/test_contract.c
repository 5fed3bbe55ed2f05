/* The lease contract: canonical encoding, strict decoding, JSON form and
 * static validation (contracts/contract.c, json.c, validate.c). */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "contracts/contract.h"
#include "lib/errors.h"
#include "lib/chain/tx.h"

#define CHAIN "tally-devnet"
#define NOW 1700000000ull          /* before the examples' expiry (2030) */

/* The cpu-small.json example, built by hand. */
/* Real keys made by ssh-keygen (OpenSSH 9.2). */
#define KEY_ED25519 "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC04IPLC+X+sR4FdA34U4BvbU/Qes+rxENYW7bE+QRkm"
#define KEY_ECDSA "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBIgM+5BV" \
	"uwSFRUG8ru5J/DtxcrdErgJLMZ7PFc8A3N5/kofHtBkf2v4g6Z/2Mwx+j9cxAixmnJxhbaebqJLFquI="
#define KEY_RSA "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC/9ytHl0p6EQFOMzqNp4Cjpo42H6AC16NgpVTUmv3KSqjc" \
	"e5szuRHk+F1eeo6NkoMp+qcrKExZXynhPxe3P4YGoZbFBm4r0EYOtncR/OIP4hqPcL1h4jNp1+LqF4ruOieLFF+" \
	"6wWoGLXwHjTHadsJCKEppZZCSloZopsXJU3rRqQ=="

static void make_contract(struct lease_contract *c)
{
	memset(c, 0, sizeof(*c));
	c->version = CONTRACT_VERSION;
	strcpy(c->chain_id, CHAIN);
	memset(c->tenant, 0x11, PUBKEY_LEN);
	memset(c->provider, 0x22, PUBKEY_LEN);
	c->nonce = 7;
	c->expiry = 1893456000;
	c->vm.vcpus = 2;
	c->vm.memory_mib = 2048;
	c->vm.disk_gib = 10;
	c->vm.gpus = 0;
	strcpy(c->vm.image, "debian-12");
	c->duration_s = 3600;
	c->deposit = 120000;
	c->interval_s = 60;
	c->prices.vcpu_second = 12;
	c->prices.mem_gib_second = 2;
	c->prices.gpu_second = 0;
	c->sla.max_delay_ppm = 50000;
	c->sla.credit_ppm = 100000;
}

static uint8_t *encode_contract(const struct lease_contract *c, size_t *n)
{
	struct enc e;

	enc_init(&e);
	contract_encode_to(&e, c);
	ck_assert_int_eq(enc_error(&e), 0);
	return enc_take(&e, n);
}

static char *read_example(const char *name)
{
	const char *root = getenv("TALLY_SRCDIR");
	char path[4096];
	char *text;
	long size;
	FILE *f;

	snprintf(path, sizeof(path), "%s/contracts/examples/%s", root ? root : "../..", name);
	f = fopen(path, "r");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
	size = ftell(f);
	ck_assert_int_gt(size, 0);
	rewind(f);
	text = calloc(1, (size_t)size + 1);
	ck_assert_ptr_nonnull(text);
	ck_assert_uint_eq(fread(text, 1, (size_t)size, f), (size_t)size);
	fclose(f);
	return text;
}

/* --- canonical encoding ---------------------------------------------------- */

/* The encoding of make_contract(), written out field by field from the layout
 * documented in contracts/contract.c. */
static const char contract_vector_hex[] =
	"02"                                     /* version */
	"0c000000" "74616c6c792d6465766e6574"    /* chain_id "tally-devnet" */
	"1111111111111111111111111111111111111111111111111111111111111111"
	"2222222222222222222222222222222222222222222222222222222222222222"
	"0700000000000000"                       /* nonce 7 */
	"80d8db7000000000"                       /* expiry 1893456000 */
	"02000000" "00080000" "0a000000" "00000000" /* vcpus, memory, disk, gpus */
	"09000000" "64656269616e2d3132"          /* image "debian-12" */
	"00000000" "00000000"                    /* hostname "", ssh_key "" */
	"100e000000000000"                       /* duration 3600 */
	"c0d4010000000000"                       /* deposit 120000 */
	"3c000000"                               /* interval 60 */
	"0c00000000000000" "0200000000000000" "0000000000000000" /* prices */
	"50c30000" "a0860100";                   /* max_delay_ppm, credit_ppm */

START_TEST(contract_layout_matches_vector)
{
	struct lease_contract c;
	uint8_t want[256];
	size_t n, want_n = strlen(contract_vector_hex) / 2;

	make_contract(&c);
	uint8_t *buf = encode_contract(&c, &n);
	ck_assert_int_eq(hex_decode(contract_vector_hex, want, want_n), 0);
	ck_assert_uint_eq(n, 165 + strlen(CHAIN) + strlen("debian-12"));
	ck_assert_uint_eq(n, want_n);
	ck_assert_mem_eq(buf, want, n);
	free(buf);
}
END_TEST

START_TEST(contract_round_trip)
{
	struct lease_contract c, back;
	size_t n, n2;

	make_contract(&c);
	c.vm.gpus = 3;
	c.nonce = UINT64_MAX;           /* decode takes any u64 */
	c.sla.max_delay_ppm = PPM_ONE;  /* the largest ppm */
	strcpy(c.chain_id, "a.b_c-0123456789abcdefghijklmnopqrstuvwxyz.-_abc");
	memset(c.vm.image, 'z', IMAGE_NAME_MAX);
	c.vm.image[IMAGE_NAME_MAX] = '\0';
	uint8_t *buf = encode_contract(&c, &n);
	ck_assert_int_eq(contract_decode(&back, buf, n), 0);
	uint8_t *again = encode_contract(&back, &n2);
	ck_assert_uint_eq(n, n2);
	ck_assert_mem_eq(buf, again, n);
	ck_assert_str_eq(back.chain_id, c.chain_id);
	ck_assert_str_eq(back.vm.image, c.vm.image);
	ck_assert_uint_eq(back.nonce, UINT64_MAX);
	ck_assert_uint_eq(back.vm.gpus, 3);
	free(buf);
	free(again);
}
END_TEST

START_TEST(contract_truncated_at_every_offset)
{
	struct lease_contract c, back;
	size_t n;

	make_contract(&c);
	uint8_t *buf = encode_contract(&c, &n);
	for (size_t cut = 0; cut < n; cut++)
		ck_assert_msg(contract_decode(&back, buf, cut) == TALLY_E_TRUNCATED,
			      "contract cut at %zu of %zu bytes was not refused as truncated",
			      cut, n);
	free(buf);
}
END_TEST

START_TEST(contract_trailing_and_version)
{
	struct lease_contract c, back;
	size_t n;

	make_contract(&c);
	uint8_t *buf = encode_contract(&c, &n);
	uint8_t *longer = malloc(n + 1);
	memcpy(longer, buf, n);
	longer[n] = 0;
	ck_assert_int_eq(contract_decode(&back, longer, n + 1), TALLY_E_TRAILING);
	buf[0] = 1;      /* version 1 had no hostname and SSH key */
	ck_assert_int_eq(contract_decode(&back, buf, n), TALLY_E_VERSION);
	buf[0] = 3;
	ck_assert_int_eq(contract_decode(&back, buf, n), TALLY_E_VERSION);
	buf[0] = 0;
	ck_assert_int_eq(contract_decode(&back, buf, n), TALLY_E_VERSION);
	free(longer);
	free(buf);
}
END_TEST

START_TEST(contract_bad_names_rejected)
{
	struct lease_contract c, back;
	size_t n;
	size_t chain_at = 1 + 4, image_at = 1 + 4 + strlen(CHAIN) + 64 + 16 + 16 + 4;

	make_contract(&c);
	uint8_t *buf = encode_contract(&c, &n);
	ck_assert_int_eq(buf[image_at - 4], strlen("debian-12"));

	buf[chain_at] = 'T';                    /* uppercase */
	ck_assert_int_eq(contract_decode(&back, buf, n), TALLY_E_ENCODING);
	buf[chain_at] = '\0';                   /* embedded NUL */
	ck_assert_int_eq(contract_decode(&back, buf, n), TALLY_E_ENCODING);
	buf[chain_at] = 't';
	ck_assert_int_eq(contract_decode(&back, buf, n), 0);

	buf[image_at] = '/';
	ck_assert_int_eq(contract_decode(&back, buf, n), TALLY_E_ENCODING);
	buf[image_at] = ' ';
	ck_assert_int_eq(contract_decode(&back, buf, n), TALLY_E_ENCODING);
	buf[image_at] = 'd';
	ck_assert_int_eq(contract_decode(&back, buf, n), 0);

	/* A length prefix beyond the field's maximum. */
	buf[1] = CHAIN_ID_MAX + 1;
	ck_assert_int_eq(contract_decode(&back, buf, n), TALLY_E_TOOLONG);
	free(buf);

	c.chain_id[0] = '\0';
	buf = encode_contract(&c, &n);
	ck_assert_int_eq(contract_decode(&back, buf, n), TALLY_E_ENCODING);
	free(buf);
	make_contract(&c);
	c.vm.image[0] = '\0';
	buf = encode_contract(&c, &n);
	ck_assert_int_eq(contract_decode(&back, buf, n), TALLY_E_ENCODING);
	free(buf);
}
END_TEST

START_TEST(contract_ppm_range)
{
	struct lease_contract c, back;
	size_t n;

	make_contract(&c);
	c.sla.credit_ppm = PPM_ONE + 1;
	uint8_t *buf = encode_contract(&c, &n);
	ck_assert_int_eq(contract_decode(&back, buf, n), TALLY_E_RANGE);
	free(buf);
	make_contract(&c);
	c.sla.max_delay_ppm = UINT32_MAX;
	buf = encode_contract(&c, &n);
	ck_assert_int_eq(contract_decode(&back, buf, n), TALLY_E_RANGE);
	free(buf);
}
END_TEST

/* SHA-256 of the canonical encoding of each example, computed by a separate
 * encoder written from the layout in contracts/contract.c (docs/FORMATS.md
 * test vectors). */
START_TEST(example_encodings_match_vectors)
{
	static const struct { const char *file; size_t len; const char *sha256; } vec[] = {
		{ "cpu-small.json", 288,
		  "9d46949147233ffbe0bcdabac76ab6d60ffbe46660582942c1e86024f7f98e7e" },
		{ "gpu-day.json", 194,
		  "a05805019ccadcaa17a4aa8970dee2bbe9fafccbdb14b01ad6fcf4236edec2e7" },
	};
	struct lease_contract c;
	char why[WHY_MAX], hex[2 * HASH_LEN + 1];
	uint8_t digest[HASH_LEN];
	size_t n;

	for (size_t i = 0; i < 2; i++) {
		char *text = read_example(vec[i].file);
		ck_assert_msg(contract_from_json(&c, text, why) == 0, "%s", why);
		free(text);
		uint8_t *buf = encode_contract(&c, &n);
		ck_assert_uint_eq(n, vec[i].len);
		sha256(buf, n, digest);
		hex_encode(digest, HASH_LEN, hex);
		ck_assert_str_eq(hex, vec[i].sha256);
		free(buf);
	}
}
END_TEST

/* --- usage record ------------------------------------------------------------ */

static void make_usage(struct usage_record *u)
{
	memset(u, 0, sizeof(*u));
	memset(u->lease_id, 0xab, LEASE_ID_LEN);
	u->seq = 3;
	memset(u->prev_hash, 0xcd, HASH_LEN);
	u->start_ns = 1700000000000000000ull;
	u->end_ns = u->start_ns + 60000000000ull;
	u->cpu_ns = 12345;
	u->run_delay_ns = 678;
	u->gpu_ns = 9;
	u->mem_mib = 2048;
	u->mem_peak_bytes = 1ull << 40;
	u->gpu_source = GPU_SOURCE_LIBVIRT;
}

START_TEST(usage_matches_vector)
{
	static const char want[] =
		"abababababababababababababababababababababababababababababababab"
		"0300000000000000"
		"cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"
		"00002a36fe9c9717" "0058712e0c9d9717"     /* start_ns, end_ns */
		"00046bf414000000" "002f685900000000"     /* cpu_ns 90 s, run_delay 1.5 s */
		"0000000000000000" "00080000"             /* gpu_ns, mem_mib 2048 */
		"0000403800000000" "00";                  /* mem_peak 900 MiB, gpu_source */
	struct usage_record u;
	char hex[2 * 125 + 1];
	struct enc e;
	size_t n;

	memset(&u, 0, sizeof(u));
	memset(u.lease_id, 0xab, LEASE_ID_LEN);
	u.seq = 3;
	memset(u.prev_hash, 0xcd, HASH_LEN);
	u.start_ns = 1700000000000000000ull;
	u.end_ns = 1700000060000000000ull;
	u.cpu_ns = 90000000000ull;
	u.run_delay_ns = 1500000000ull;
	u.mem_mib = 2048;
	u.mem_peak_bytes = 900ull << 20;
	enc_init(&e);
	usage_encode_to(&e, &u);
	uint8_t *buf = enc_take(&e, &n);
	ck_assert_uint_eq(n, 125);
	hex_encode(buf, n, hex);
	ck_assert_str_eq(hex, want);
	free(buf);
}
END_TEST

START_TEST(usage_round_trip_and_strictness)
{
	struct usage_record u, back;
	struct enc e;
	size_t n;

	make_usage(&u);
	enc_init(&e);
	usage_encode_to(&e, &u);
	uint8_t *buf = enc_take(&e, &n);
	ck_assert_uint_eq(n, 125);
	ck_assert_int_eq(usage_decode(&back, buf, n), 0);
	ck_assert_mem_eq(&back, &u, sizeof(u));
	for (size_t cut = 0; cut < n; cut++)
		ck_assert_msg(usage_decode(&back, buf, cut) == TALLY_E_TRUNCATED,
			      "usage record cut at %zu not refused", cut);
	uint8_t *longer = malloc(n + 1);
	memcpy(longer, buf, n);
	longer[n] = 0;
	ck_assert_int_eq(usage_decode(&back, longer, n + 1), TALLY_E_TRAILING);
	buf[n - 1] = 3;                         /* gpu_source beyond libvirt */
	ck_assert_int_eq(usage_decode(&back, buf, n), TALLY_E_RANGE);
	free(longer);
	free(buf);
}
END_TEST

/* --- JSON -------------------------------------------------------------------- */

START_TEST(json_examples_parse_and_validate)
{
	static const char *const names[] = { "cpu-small.json", "gpu-day.json" };
	struct lease_contract c;
	char why[WHY_MAX];

	for (size_t i = 0; i < 2; i++) {
		char *text = read_example(names[i]);
		ck_assert_msg(contract_from_json(&c, text, why) == 0, "%s: %s", names[i], why);
		ck_assert_msg(contract_validate(&c, CHAIN, NOW, why) == 0, "%s: %s", names[i], why);
		ck_assert_str_eq(c.chain_id, CHAIN);
		free(text);
	}
}
END_TEST

START_TEST(json_example_values)
{
	struct lease_contract c;
	char why[WHY_MAX], hex[2 * PUBKEY_LEN + 1];
	char *text = read_example("gpu-day.json");

	ck_assert_int_eq(contract_from_json(&c, text, why), 0);
	free(text);
	hex_encode(c.tenant, PUBKEY_LEN, hex);
	ck_assert_str_eq(hex, "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
	ck_assert_uint_eq(c.vm.vcpus, 8);
	ck_assert_uint_eq(c.vm.memory_mib, 65536);
	ck_assert_uint_eq(c.vm.gpus, 1);
	ck_assert_str_eq(c.vm.image, "ubuntu-22.04-cuda");
	ck_assert_uint_eq(c.duration_s, 86400);
	ck_assert_uint_eq(c.deposit, 80000000);
	ck_assert_uint_eq(c.interval_s, 300);
	ck_assert_uint_eq(c.prices.gpu_second, 700);
	ck_assert_uint_eq(c.sla.credit_ppm, 250000);
}
END_TEST

START_TEST(json_round_trip)
{
	struct lease_contract c, back;
	char why[WHY_MAX];
	size_t n1, n2;

	make_contract(&c);
	c.nonce = (uint64_t)INT64_MAX;
	char *text = contract_to_json(&c);
	ck_assert_ptr_nonnull(text);
	ck_assert_msg(contract_from_json(&back, text, why) == 0, "%s", why);
	uint8_t *a = encode_contract(&c, &n1), *b = encode_contract(&back, &n2);
	ck_assert_uint_eq(n1, n2);
	ck_assert_mem_eq(a, b, n1);
	free(a);
	free(b);
	free(text);

	/* A u64 above JSON's integer range has no JSON form. */
	c.deposit = (uint64_t)INT64_MAX + 1;
	ck_assert_ptr_null(contract_to_json(&c));
}
END_TEST

/* Applies one edit to the cpu-small example and parses it. */
static int parse_edited(const char *path, json_t *value, char *why)
{
	char *text = read_example("cpu-small.json");
	json_error_t jerr;
	json_t *root = json_loads(text, 0, &jerr), *obj = root;
	char key[64], *dot;
	struct lease_contract c;
	int rc;

	ck_assert_ptr_nonnull(root);
	free(text);
	snprintf(key, sizeof(key), "%s", path);
	dot = strchr(key, '.');
	if (dot) {
		*dot = '\0';
		obj = json_object_get(root, key);
		memmove(key, dot + 1, strlen(dot + 1) + 1);
	}
	if (value)
		json_object_set_new(obj, key, value);
	else
		ck_assert_int_eq(json_object_del(obj, key), 0);
	text = json_dumps(root, 0);
	json_decref(root);
	rc = contract_from_json(&c, text, why);
	free(text);
	return rc;
}

static void expect_json_error(const char *path, json_t *value, int want_rc,
			      const char *want_why)
{
	char why[WHY_MAX] = "";
	int rc = parse_edited(path, value, why);

	ck_assert_msg(rc == want_rc, "%s: got %d (%s), want %d", path, rc, why, want_rc);
	ck_assert_msg(strstr(why, want_why) != NULL, "%s: message \"%s\" lacks \"%s\"",
		      path, why, want_why);
}

START_TEST(json_errors_are_clear)
{
	expect_json_error("colour", json_string("red"), TALLY_E_INVALID,
			  "unknown key \"colour\"");
	expect_json_error("vm.cores", json_integer(4), TALLY_E_INVALID,
			  "unknown key \"vm.cores\"");
	expect_json_error("nonce", NULL, TALLY_E_INVALID, "missing key \"nonce\"");
	expect_json_error("sla.credit_ppm", NULL, TALLY_E_INVALID,
			  "missing key \"sla.credit_ppm\"");
	expect_json_error("deposit", json_integer(-5), TALLY_E_RANGE,
			  "deposit must not be negative (got -5)");
	expect_json_error("deposit", json_real(1.5), TALLY_E_INVALID,
			  "deposit must be an integer, not a number with a fraction or exponent");
	expect_json_error("vm.vcpus", json_string("2"), TALLY_E_INVALID,
			  "vm.vcpus must be an integer, not a string");
	expect_json_error("vm.vcpus", json_integer(4294967296ll), TALLY_E_RANGE,
			  "vm.vcpus 4294967296 exceeds the maximum 4294967295");
	expect_json_error("version", json_integer(256), TALLY_E_RANGE,
			  "version 256 exceeds the maximum 255");
	expect_json_error("tenant", json_string("zz5a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"),
			  TALLY_E_ENCODING, "tenant must be 64 hex digits");
	expect_json_error("provider", json_string("3d40"), TALLY_E_ENCODING,
			  "provider must be 64 hex digits");
	expect_json_error("provider", json_integer(1), TALLY_E_INVALID,
			  "provider must be a string, not an integer");
	expect_json_error("vm", json_array(), TALLY_E_INVALID, "vm must be an object, not an array");
	expect_json_error("chain_id", json_string("0123456789012345678901234567890123456789012345678"),
			  TALLY_E_TOOLONG, "chain_id is longer than 48 bytes");
	expect_json_error("vm.image", json_null(), TALLY_E_INVALID,
			  "vm.image must be a string, not null");
}
END_TEST

START_TEST(json_syntax_errors)
{
	struct lease_contract c;
	char why[WHY_MAX];

	/* Beyond 64 bits: jansson itself refuses the number. */
	ck_assert_int_eq(contract_from_json(&c, "{\"deposit\": 18446744073709551616}", why),
			 TALLY_E_ENCODING);
	ck_assert_ptr_nonnull(strstr(why, "too big integer"));
	ck_assert_int_eq(contract_from_json(&c, "{\"nonce\": 1, \"nonce\": 2}", why),
			 TALLY_E_ENCODING);
	ck_assert_ptr_nonnull(strstr(why, "duplicate object key"));
	ck_assert_int_eq(contract_from_json(&c, "{\"nonce\": 1,", why), TALLY_E_ENCODING);
	ck_assert_ptr_nonnull(strstr(why, "invalid JSON at line 1"));
	ck_assert_int_eq(contract_from_json(&c, "[1, 2]", why), TALLY_E_INVALID);
	ck_assert_str_eq(why, "a contract must be a JSON object, not an array");
	/* An exponent is not an integer either. */
	ck_assert_int_eq(parse_edited("expiry", json_real(1e9), why), TALLY_E_INVALID);
}
END_TEST

/* --- validation -------------------------------------------------------------- */

struct rule_case {
	const char *name;
	int want_rc;
	const char *want_why;     /* exact sentence */
};

static const struct rule_case rule_cases[] = {
	{ "version", TALLY_E_CONTRACT, "contract version 1 is not supported (expected 2)" },
	{ "chain id chars", TALLY_E_CHAIN_ID,
	  "chain id \"Tally!\" is not 1..48 characters of [a-z0-9._-]" },
	{ "other chain", TALLY_E_CHAIN_ID,
	  "contract is for chain \"tally-devnet\", not this chain \"tally-main\"" },
	{ "expired", TALLY_E_EXPIRED,
	  "contract expired at 1699999999 (unix seconds), now is 1700000000" },
	{ "same keys", TALLY_E_CONTRACT, "tenant and provider are the same key" },
	{ "no vcpus", TALLY_E_CONTRACT, "vcpus is 0: a VM needs at least 1" },
	{ "many vcpus", TALLY_E_CONTRACT, "vcpus 257 exceeds the maximum 256" },
	{ "little memory", TALLY_E_CONTRACT, "memory 63 MiB is below the minimum 64 MiB" },
	{ "much memory", TALLY_E_CONTRACT,
	  "memory 4194305 MiB exceeds the maximum 4194304 MiB (4 TiB)" },
	{ "much disk", TALLY_E_CONTRACT, "disk 65537 GiB exceeds the maximum 65536 GiB (64 TiB)" },
	{ "many gpus", TALLY_E_CONTRACT, "gpus 17 exceeds the maximum 16" },
	{ "empty image", TALLY_E_CONTRACT, "image name is empty" },
	{ "image chars", TALLY_E_CONTRACT,
	  "image name \"Debian 12\" may hold only a-z, 0-9, '.', '_' and '-'" },
	{ "long image", TALLY_E_CONTRACT, "image name is longer than 64 bytes" },
	{ "zero interval", TALLY_E_CONTRACT, "metering interval 0 s is outside 1..3600 s" },
	{ "long interval", TALLY_E_CONTRACT, "metering interval 3601 s is outside 1..3600 s" },
	{ "short term", TALLY_E_CONTRACT,
	  "duration 59 s is shorter than the metering interval 60 s" },
	{ "long term", TALLY_E_CONTRACT,
	  "duration 316224001 s exceeds the maximum 316224000 s (ten years)" },
	{ "delay ppm", TALLY_E_CONTRACT, "SLA max_delay_ppm 1000001 exceeds 1000000 (100%)" },
	{ "credit ppm", TALLY_E_CONTRACT, "SLA credit_ppm 1000001 exceeds 1000000 (100%)" },
	{ "huge deposit", TALLY_E_CONTRACT,
	  "deposit 9223372036854775808 exceeds the maximum 9223372036854775807" },
	{ "huge price", TALLY_E_CONTRACT,
	  "gpu_second price 18446744073709551615 exceeds the maximum 9223372036854775807" },
	{ "free", TALLY_E_CONTRACT, "all prices are zero: at least one must be set" },
	{ "no deposit", TALLY_E_CONTRACT, "deposit is zero" },
	{ "term overflows", TALLY_E_CONTRACT,
	  "the most the full term of 3600 s can cost overflows 64 bits" },
	{ "small deposit", TALLY_E_CONTRACT,
	  "deposit 10 is below the first interval's maximum charge 12 (micro-units)" },
	{ "CPU totals overflow", TALLY_E_CONTRACT,
	  "256 vCPUs for 316224000 s could bill more CPU time than a lease's totals hold"
	  " (2^63 ns); lease for at most 36028797 s" },
	{ "hostname chars", TALLY_E_CONTRACT,
	  "hostname may hold only a-z, 0-9 and '-' (byte 3 is 0x3c)" },
	{ "ssh key newline", TALLY_E_CONTRACT,
	  "SSH key holds a control or non-ASCII byte 0x0a at 80 (one line of printable "
	  "ASCII is expected)" },
	{ "free without its GPU", TALLY_E_CONTRACT,
	  "only GPU time has a price and the contract leases no GPU: the lease could never"
	  " cost anything (price vCPU or memory time)" },
};

/* Breaks exactly one rule of a valid contract; returns the chain to check against. */
static const char *break_rule(struct lease_contract *c, size_t i, uint64_t *now)
{
	*now = NOW;
	switch (i) {
	case 0: c->version = 1; break;
	case 1: strcpy(c->chain_id, "Tally!"); break;
	case 2: return "tally-main";
	case 3: c->expiry = NOW - 1; break;
	case 4: memcpy(c->provider, c->tenant, PUBKEY_LEN); break;
	case 5: c->vm.vcpus = 0; break;
	case 6: c->vm.vcpus = 257; break;
	case 7: c->vm.memory_mib = 63; break;
	case 8: c->vm.memory_mib = 4194305; break;
	case 9: c->vm.disk_gib = 65537; break;
	case 10: c->vm.gpus = 17; break;
	case 11: c->vm.image[0] = '\0'; break;
	case 12: strcpy(c->vm.image, "Debian 12"); break;
	case 13: memset(c->vm.image, 'a', sizeof(c->vm.image)); break;   /* no NUL */
	case 14: c->interval_s = 0; break;
	case 15: c->interval_s = 3601; c->duration_s = 7200; break;
	case 16: c->duration_s = 59; break;
	case 17: c->duration_s = CONTRACT_DURATION_S_MAX + 1; break;
	case 18: c->sla.max_delay_ppm = PPM_ONE + 1; break;
	case 19: c->sla.credit_ppm = PPM_ONE + 1; break;
	case 20: c->deposit = (uint64_t)INT64_MAX + 1; break;
	case 21: c->prices.gpu_second = UINT64_MAX; break;
	case 22: memset(&c->prices, 0, sizeof(c->prices)); break;
	case 23: c->deposit = 0; break;
	case 24:
		c->vm.vcpus = 1;
		c->duration_s = 3600;
		c->prices.vcpu_second = (uint64_t)INT64_MAX;
		break;
	case 25:
		c->vm.vcpus = 1;
		c->interval_s = 1;
		c->prices.vcpu_second = 12;
		c->prices.mem_gib_second = 0;
		c->deposit = 10;
		break;
	case 26:
		c->vm.vcpus = 256;
		c->duration_s = CONTRACT_DURATION_S_MAX;
		break;
	case 27: strcpy(c->vm.hostname, "web<b>"); break;
	case 28:
		strcpy(c->vm.ssh_key, KEY_ED25519 "\nssh-rsa AAAA injected");
		break;
	case 29:
		c->vm.gpus = 0;
		c->prices.vcpu_second = 0;
		c->prices.mem_gib_second = 0;
		c->prices.gpu_second = 700;
		break;
	}
	return CHAIN;
}

START_TEST(each_rule_has_its_sentence)
{
	const struct rule_case *rc = &rule_cases[_i];
	struct lease_contract c;
	char why[WHY_MAX];
	uint64_t now;

	make_contract(&c);
	ck_assert_int_eq(contract_validate(&c, CHAIN, NOW, why), 0);
	ck_assert_str_eq(why, "");
	const char *chain = break_rule(&c, (size_t)_i, &now);
	int got = contract_validate(&c, chain, now, why);
	ck_assert_msg(got == rc->want_rc, "%s: rc %d, want %d (%s)", rc->name, got,
		      rc->want_rc, why);
	ck_assert_str_eq(why, rc->want_why);
}
END_TEST

START_TEST(rule_sentences_are_distinct)
{
	size_t n = sizeof(rule_cases) / sizeof(rule_cases[0]);

	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			ck_assert_str_ne(rule_cases[i].want_why, rule_cases[j].want_why);
}
END_TEST

/* Values exactly at each limit are accepted. */
START_TEST(rule_boundaries_accepted)
{
	struct lease_contract c;
	char why[WHY_MAX];
	uint64_t first = 0;

#define ACCEPT(edit) do { \
		make_contract(&c); \
		edit; \
		ck_assert_msg(contract_validate(&c, CHAIN, NOW, why) == 0, "%s: %s", #edit, why); \
	} while (0)
	ACCEPT(c.expiry = NOW);
	ACCEPT(c.vm.vcpus = 1);
	ACCEPT((c.vm.vcpus = 256, c.deposit = 1000000));
	ACCEPT(c.vm.memory_mib = 64);
	ACCEPT((c.vm.memory_mib = 4194304, c.deposit = 100000000));
	ACCEPT(c.vm.disk_gib = 0);
	ACCEPT(c.vm.disk_gib = 65536);
	ACCEPT(c.vm.gpus = 16);
	ACCEPT(strcpy(c.vm.image, "a"));
	ACCEPT((memset(c.vm.image, 'a', IMAGE_NAME_MAX), c.vm.image[IMAGE_NAME_MAX] = 0));
	ACCEPT(c.interval_s = 1);
	ACCEPT((c.interval_s = 3600, c.deposit = 10000000));
	ACCEPT(c.duration_s = c.interval_s);
	ACCEPT(c.duration_s = 3601);             /* not a multiple of the interval */
	ACCEPT(c.duration_s = CONTRACT_DURATION_S_MAX);
	ACCEPT((c.sla.max_delay_ppm = PPM_ONE, c.sla.credit_ppm = PPM_ONE));
	ACCEPT((c.prices.vcpu_second = 0, c.prices.gpu_second = 0));
	/* A GPU price alone prices a lease with a GPU. */
	ACCEPT((c.vm.gpus = 1, c.prices.vcpu_second = 0, c.prices.mem_gib_second = 0,
		c.prices.gpu_second = 1, c.deposit = 60));
	ACCEPT((c.nonce = (uint64_t)INT64_MAX));
	/* The deposit may equal the first interval's maximum charge. */
	ACCEPT((settle_max_interval_charge(&c, &first), c.deposit = first));
#undef ACCEPT
	ck_assert_uint_eq(first, 1680);
	c.deposit = first - 1;
	ck_assert_int_eq(contract_validate(&c, CHAIN, NOW, why), TALLY_E_CONTRACT);
	ck_assert_str_eq(why, "deposit 1679 is below the first interval's maximum charge 1680"
			 " (micro-units)");
	/* why may be NULL. */
	ck_assert_int_eq(contract_validate(&c, CHAIN, NOW, NULL), TALLY_E_CONTRACT);
}
END_TEST

/* What reaches the guest's YAML seed and the domain's XML: every hostile
 * hostname and key is refused with a sentence, before anything is made. */
START_TEST(guest_access_rules)
{
	static const char *const good_hosts[] = {
		"", "a", "web-1", "0", "x123456789012345678901234567890123456789012345678901234567890ab",
	};
	static const struct { const char *host, *why; } bad_hosts[] = {
		{ "-web", "hostname \"-web\" starts or ends with '-'" },
		{ "web-", "hostname \"web-\" starts or ends with '-'" },
		{ "Web", "hostname may hold only a-z, 0-9 and '-' (byte 0 is 0x57)" },
		{ "a.b", "hostname may hold only a-z, 0-9 and '-' (byte 1 is 0x2e)" },
		{ "a\nb", "hostname may hold only a-z, 0-9 and '-' (byte 1 is 0x0a)" },
		{ "a\"b", "hostname may hold only a-z, 0-9 and '-' (byte 1 is 0x22)" },
		{ "a: b", "hostname may hold only a-z, 0-9 and '-' (byte 1 is 0x3a)" },
		{ "&amp;", "hostname may hold only a-z, 0-9 and '-' (byte 0 is 0x26)" },
	};
	static const char *const good_keys[] = {
		"", KEY_ED25519, KEY_ED25519 " alice@laptop", KEY_ECDSA, KEY_ECDSA " ", KEY_RSA " bob",
		KEY_ED25519 " Alice Smith, build host 2024-01-01 id=7/x",
	};
	static const struct { const char *key, *why; } bad_keys[] = {
		{ "ssh-ed25519", "SSH key has no key data after its type" },
		{ "ssh-dss AAAAB3NzaC1kc3M=", "SSH key type \"ssh-dss\" is not one of ssh-ed25519, "
		  "ssh-rsa, ecdsa-sha2-nistp256/384/521 or their sk- forms (key options are not "
		  "accepted)" },
		{ "command=\"reboot\" " KEY_ED25519, "SSH key type \"command=\"reboot\"\" is not one "
		  "of ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256/384/521 or their sk- forms (key "
		  "options are not accepted)" },
		{ KEY_ED25519 " a\"b", "SSH key comment may hold only letters, digits, spaces and "
		  "._@+=:,/- (it has '\"')" },
		{ KEY_ED25519 " <x>", "SSH key comment may hold only letters, digits, spaces and "
		  "._@+=:,/- (it has '<')" },
		{ KEY_ED25519 " a\\b", "SSH key comment may hold only letters, digits, spaces and "
		  "._@+=:,/- (it has '\\')" },
		{ KEY_ED25519 " #x", "SSH key comment may hold only letters, digits, spaces and "
		  "._@+=:,/- (it has '#')" },
		{ KEY_ED25519 "\r", "SSH key holds a control or non-ASCII byte 0x0d at 80 (one "
		  "line of printable ASCII is expected)" },
		{ KEY_ED25519 "\t", "SSH key holds a control or non-ASCII byte 0x09 at 80 (one "
		  "line of printable ASCII is expected)" },
		{ "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC04IPLC+X+sR4FdA34U4BvbU/Qes+rxENYW7bE+QRk",
		  "SSH key: the key data is not base64 (its length 67 is not a multiple of 4)" },
		{ "ssh-ed25519 AAAA*3NzaC1lZDI1NTE5AAAAIC04IPLC+X+sR4FdA34U4BvbU/Qes+rxENYW7bE+QRkm",
		  "SSH key: the key data is not base64 (byte 4)" },
		{ "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIC04IPLC+X+sR4FdA34U4BvbU/Qes+rxENYW7bE+QRkm",
		  "SSH key: the key blob is not a ssh-rsa key" },
		{ "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC04IPLC+X+sR4FdA34U4BvbU/Qes+rxENYW7bE+QQ==",
		  "SSH key: the key blob is truncated (field 1)" },
		{ "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBIgM+5BV"
		  "uwSFRUG8ru5J/DtxcrdErgJLMZ7PFc8A3N5/kofHtBkf2v4g6Z/2Mwx+j9cxAixmnJxhbaebqJLFquJ=",
		  "SSH key: the key data is not canonical base64" },
		{ "ssh-ed25519 ====", "SSH key: the key data is not base64 (byte 0)" },
	};
	char why[WHY_MAX], huge[SSH_KEY_MAX + 2];

	for (size_t i = 0; i < sizeof(good_hosts) / sizeof(good_hosts[0]); i++)
		ck_assert_msg(hostname_check(good_hosts[i], why) == 0, "%s: %s", good_hosts[i], why);
	for (size_t i = 0; i < sizeof(bad_hosts) / sizeof(bad_hosts[0]); i++) {
		ck_assert_int_eq(hostname_check(bad_hosts[i].host, why), TALLY_E_CONTRACT);
		ck_assert_str_eq(why, bad_hosts[i].why);
	}
	memset(huge, 'a', HOSTNAME_MAX + 1);
	huge[HOSTNAME_MAX + 1] = '\0';
	ck_assert_int_eq(hostname_check(huge, why), TALLY_E_CONTRACT);
	ck_assert_str_eq(why, "hostname is longer than 63 bytes");

	for (size_t i = 0; i < sizeof(good_keys) / sizeof(good_keys[0]); i++)
		ck_assert_msg(ssh_key_check(good_keys[i], why) == 0, "%s: %s", good_keys[i], why);
	for (size_t i = 0; i < sizeof(bad_keys) / sizeof(bad_keys[0]); i++) {
		ck_assert_int_eq(ssh_key_check(bad_keys[i].key, why), TALLY_E_CONTRACT);
		ck_assert_str_eq(why, bad_keys[i].why);
	}
	snprintf(huge, sizeof(huge), "%s ", KEY_ED25519);
	memset(huge + strlen(huge), 'x', sizeof(huge) - 1 - strlen(huge));
	huge[sizeof(huge) - 1] = '\0';
	ck_assert_int_eq(ssh_key_check(huge, why), TALLY_E_CONTRACT);
	ck_assert_str_eq(why, "SSH key is longer than 2048 bytes");
	huge[SSH_KEY_MAX] = '\0';                 /* exactly the limit: accepted */
	ck_assert_msg(ssh_key_check(huge, why) == 0, "%s", why);
}
END_TEST

/* The fields round-trip through the encoding and JSON; longer than their
 * maxima they do not decode. */
START_TEST(guest_access_encoding)
{
	struct lease_contract c, back;
	char why[WHY_MAX];
	size_t n;

	make_contract(&c);
	memset(c.vm.hostname, 'h', HOSTNAME_MAX);
	snprintf(c.vm.ssh_key, sizeof(c.vm.ssh_key), "%s %s", KEY_RSA, "bob@example");
	ck_assert_int_eq(contract_validate(&c, CHAIN, NOW, why), 0);
	uint8_t *buf = encode_contract(&c, &n);
	ck_assert_uint_eq(n, 165 + strlen(CHAIN) + strlen("debian-12") + HOSTNAME_MAX +
			  strlen(c.vm.ssh_key));
	ck_assert_int_eq(contract_decode(&back, buf, n), 0);
	ck_assert_str_eq(back.vm.hostname, c.vm.hostname);
	ck_assert_str_eq(back.vm.ssh_key, c.vm.ssh_key);
	free(buf);

	char *text = contract_to_json(&c);
	ck_assert_ptr_nonnull(text);
	ck_assert_int_eq(contract_from_json(&back, text, why), 0);
	ck_assert_str_eq(back.vm.ssh_key, c.vm.ssh_key);
	ck_assert_str_eq(back.vm.hostname, c.vm.hostname);
	free(text);

	/* A hostname one byte over its maximum, in the encoding. */
	c.vm.hostname[0] = '\0';
	c.vm.ssh_key[0] = '\0';
	buf = encode_contract(&c, &n);
	size_t at = 1 + 4 + strlen(CHAIN) + 2 * PUBKEY_LEN + 16 + 16 + 4 + strlen("debian-12");
	ck_assert_uint_eq(buf[at], 0);
	buf[at] = HOSTNAME_MAX + 1;
	ck_assert_int_eq(contract_decode(&back, buf, n), TALLY_E_TOOLONG);
	buf[at] = 0;
	buf[at + 4] = (SSH_KEY_MAX + 1) & 0xff;
	buf[at + 5] = (SSH_KEY_MAX + 1) >> 8;
	ck_assert_int_eq(contract_decode(&back, buf, n), TALLY_E_TOOLONG);
	free(buf);

	/* The largest contract still fits one transaction. */
	{
		struct tx t = { .version = TX_VERSION, .kind = TX_LEASE_OPEN };
		struct tx tback;
		struct enc e;

		make_contract(&t.u.open);
		memset(t.u.open.chain_id, 'c', CHAIN_ID_MAX);
		memset(t.u.open.vm.image, 'i', IMAGE_NAME_MAX);
		memset(t.u.open.vm.hostname, 'h', HOSTNAME_MAX);
		memset(t.u.open.vm.ssh_key, 'k', SSH_KEY_MAX);
		memcpy(t.chain_id, t.u.open.chain_id, sizeof(t.chain_id));
		enc_init(&e);
		tx_encode(&e, &t);
		ck_assert_int_eq(enc_error(&e), 0);
		ck_assert_uint_le(e.len, TX_MAX_SIZE);
		ck_assert_int_eq(tx_decode(&tback, e.buf, e.len), 0);
		ck_assert_str_eq(tback.u.open.vm.ssh_key, t.u.open.vm.ssh_key);
		enc_free(&e);
	}

	/* Absent from JSON, they are empty; a NUL inside is refused (by jansson). */
	ck_assert_int_eq(contract_from_json(&back, "{\"version\":2}", why), TALLY_E_INVALID);
	text = read_example("gpu-day.json");
	ck_assert_int_eq(contract_from_json(&back, text, why), 0);
	ck_assert_str_eq(back.vm.hostname, "");
	ck_assert_str_eq(back.vm.ssh_key, "");
	char *nul = strstr(text, "\"image\"");
	ck_assert_ptr_nonnull(nul);
	char *patched = NULL;
	ck_assert_int_ge(asprintf(&patched, "%.*s\"hostname\": \"a\\u0000b\", %s",
				  (int)(nul - text), text, nul), 0);
	ck_assert_int_eq(contract_from_json(&back, patched, why), TALLY_E_ENCODING);
	ck_assert_ptr_nonnull(strstr(why, "is not allowed"));
	free(patched);
	free(text);
}
END_TEST

START_TEST(image_names)
{
	ck_assert_int_eq(image_name_valid("debian-12.4_x"), 0);
	ck_assert_int_eq(image_name_valid(""), TALLY_E_RANGE);
	ck_assert_int_eq(image_name_valid("debian/12"), TALLY_E_ENCODING);
	ck_assert_int_eq(image_name_valid("Debian"), TALLY_E_ENCODING);
	ck_assert_int_eq(image_name_valid("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
			 TALLY_E_RANGE);    /* 65 bytes */
}
END_TEST

Suite *contract_suite(void)
{
	Suite *s = suite_create("contract");
	TCase *tc = tcase_create("encoding");

	tcase_add_test(tc, contract_layout_matches_vector);
	tcase_add_test(tc, contract_round_trip);
	tcase_add_test(tc, contract_truncated_at_every_offset);
	tcase_add_test(tc, contract_trailing_and_version);
	tcase_add_test(tc, contract_bad_names_rejected);
	tcase_add_test(tc, contract_ppm_range);
	tcase_add_test(tc, usage_matches_vector);
	tcase_add_test(tc, usage_round_trip_and_strictness);
	suite_add_tcase(s, tc);

	tc = tcase_create("json");
	tcase_add_test(tc, json_examples_parse_and_validate);
	tcase_add_test(tc, json_example_values);
	tcase_add_test(tc, example_encodings_match_vectors);
	tcase_add_test(tc, json_round_trip);
	tcase_add_test(tc, json_errors_are_clear);
	tcase_add_test(tc, json_syntax_errors);
	suite_add_tcase(s, tc);

	tc = tcase_create("validate");
	tcase_add_loop_test(tc, each_rule_has_its_sentence, 0,
			    (int)(sizeof(rule_cases) / sizeof(rule_cases[0])));
	tcase_add_test(tc, rule_sentences_are_distinct);
	tcase_add_test(tc, guest_access_rules);
	tcase_add_test(tc, guest_access_encoding);
	tcase_add_test(tc, rule_boundaries_accepted);
	tcase_add_test(tc, image_names);
	suite_add_tcase(s, tc);
	return s;
}
