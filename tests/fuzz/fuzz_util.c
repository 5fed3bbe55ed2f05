/* Helpers of the fuzz targets (see fuzz.h). */
#include "tests/fuzz/fuzz.h"

#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "contracts/contract.h"
#include "lib/errors.h"

void fuzz_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s:%d: property failed: ", file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

void fuzz_same_bytes(const char *what, const uint8_t *p, size_t n, struct enc *e)
{
	fuzz_require(!enc_error(e), "%s: accepted by the decoder but the encoder fails (%d)",
		     what, enc_error(e));
	fuzz_require(e->len == n, "%s: decode then encode gives %zu bytes, not the %zu read",
		     what, e->len, n);
	for (size_t i = 0; i < n; i++)
		fuzz_require(e->buf[i] == p[i], "%s: decode then encode differs at byte %zu "
			     "(0x%02x, input 0x%02x): the input was not canonical", what, i,
			     e->buf[i], p[i]);
	enc_free(e);
}

char *fuzz_text(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

static char scratch[4096];

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void remove_scratch(void)
{
	if (scratch[0])
		nftw(scratch, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

const char *fuzz_scratch_dir(void)
{
	if (!scratch[0]) {
		const char *tmp = getenv("TMPDIR");

		snprintf(scratch, sizeof(scratch), "%s/tally-fuzz-%d-XXXXXX",
			 tmp && *tmp ? tmp : "/tmp", (int)getpid());
		if (!mkdtemp(scratch)) {
			perror("fuzz: mkdtemp");
			abort();
		}
		atexit(remove_scratch);
	}
	return scratch;
}

static int name_ok(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n > max)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
		      s[i] == '.' || s[i] == '_' || s[i] == '-'))
			return 0;
	return 1;
}

int fuzz_chain_id_ok(const char *s)
{
	return name_ok(s, 48);
}

int fuzz_image_ok(const char *s)
{
	return name_ok(s, 64);
}

void fuzz_contract_json_props(const struct lease_contract *c)
{
	struct lease_contract back;
	struct enc e, e2;
	char why[WHY_MAX];
	char *json = contract_to_json(c);

	if (!json)
		return;
	int rc = contract_from_json(&back, json, why);
	fuzz_require(rc == 0, "contract JSON written by contract_to_json is refused: %s\n%s",
		     why, json);
	enc_init(&e);
	contract_encode_to(&e, c);
	enc_init(&e2);
	contract_encode_to(&e2, &back);
	fuzz_require(!enc_error(&e), "contract does not encode");
	fuzz_same_bytes("contract through JSON", e.buf, e.len, &e2);
	enc_free(&e);
	free(json);
}

void fuzz_contract_props(const struct lease_contract *c)
{
	struct lease_contract back;
	struct enc e, e2;
	char why[WHY_MAX];

	fuzz_require(c->version == CONTRACT_VERSION, "contract version %u", c->version);
	fuzz_require(fuzz_chain_id_ok(c->chain_id), "contract chain id '%s'", c->chain_id);
	fuzz_require(fuzz_image_ok(c->vm.image), "contract image '%s'", c->vm.image);
	fuzz_require(c->sla.max_delay_ppm <= PPM_ONE && c->sla.credit_ppm <= PPM_ONE,
		     "contract SLA ppm above 1e6");
	enc_init(&e);
	contract_encode_to(&e, c);
	fuzz_require(!enc_error(&e), "contract does not encode");
	fuzz_require(contract_decode(&back, e.buf, e.len) == 0,
		     "an accepted contract's encoding does not decode");
	enc_init(&e2);
	contract_encode_to(&e2, &back);
	fuzz_same_bytes("contract", e.buf, e.len, &e2);
	enc_free(&e);
	char *json = contract_to_json(c);
	fuzz_require(json || contract_validate(c, c->chain_id, 0, why) != 0,
		     "a valid contract has no JSON form");
	free(json);
	fuzz_contract_json_props(c);
}
