/* Provider announcements: encoding, their rules, and whether a contract
 * meets one (contracts/provider.h; docs/FORMATS.md sections 4, 10.3 and 10.11). */
#include "contracts/provider.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "lib/errors.h"

bool provider_offer_withdrawn(const struct provider_offer *o)
{
	return o->nimages == 0;
}

static bool bytes_in(const char *s, unsigned char lo, unsigned char hi)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < lo || *p > hi)
			return false;
	return true;
}

static bool class_name_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > PROVIDER_CLASS_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-'))
			return false;
	}
	return true;
}

static int check_withdrawal(const struct provider_offer *o, char *why)
{
	if (o->endpoint[0] || o->prices.vcpu_second || o->prices.mem_gib_second ||
	    o->prices.gpu_second || o->interval_s || o->sla_max_credit_ppm ||
	    o->sla_min_delay_ppm || o->ngpu_classes || o->vcpus ||
	    o->memory_mib || o->gpus || o->region[0])
		return why_set(why, TALLY_E_ENCODING, "a withdrawal (no image) has every other"
			       " field empty or zero");
	return 0;
}

static int check_lists(const struct provider_offer *o, char *why)
{
	for (uint32_t i = 0; i < o->nimages; i++) {
		if (image_name_valid(o->images[i]))
			return why_set(why, TALLY_E_ENCODING, "image \"%s\" is not 1..%d bytes of"
				       " [a-z0-9._-]", o->images[i], IMAGE_NAME_MAX);
		if (i && strcmp(o->images[i - 1], o->images[i]) >= 0)
			return why_set(why, TALLY_E_ENCODING, "images must be listed once each, in"
				       " ascending order (\"%s\" after \"%s\")", o->images[i],
				       o->images[i - 1]);
	}
	for (uint32_t i = 0; i < o->ngpu_classes; i++) {
		if (!class_name_valid(o->gpu_classes[i]))
			return why_set(why, TALLY_E_ENCODING, "GPU class \"%s\" is not 1..%d bytes"
				       " of [a-z0-9._-]", o->gpu_classes[i], PROVIDER_CLASS_MAX);
		if (i && strcmp(o->gpu_classes[i - 1], o->gpu_classes[i]) >= 0)
			return why_set(why, TALLY_E_ENCODING, "GPU classes must be listed once each,"
				       " in ascending order (\"%s\" after \"%s\")",
				       o->gpu_classes[i], o->gpu_classes[i - 1]);
	}
	return 0;
}

int provider_offer_check(const struct provider_offer *o, char *why)
{
	const uint64_t price[3] = { o->prices.vcpu_second, o->prices.mem_gib_second,
				    o->prices.gpu_second };
	static const char *const price_name[3] = { "vcpu_second", "mem_gib_second",
						   "gpu_second" };

	if (o->nimages > PROVIDER_IMAGES_MAX)
		return why_set(why, TALLY_E_TOOLONG, "%" PRIu32 " images, above the limit of %d",
			       o->nimages, PROVIDER_IMAGES_MAX);
	if (o->ngpu_classes > PROVIDER_GPU_CLASSES_MAX)
		return why_set(why, TALLY_E_TOOLONG, "%" PRIu32 " GPU classes, above the limit"
			       " of %d", o->ngpu_classes, PROVIDER_GPU_CLASSES_MAX);
	if (strnlen(o->endpoint, sizeof(o->endpoint)) > PROVIDER_ENDPOINT_MAX ||
	    strnlen(o->region, sizeof(o->region)) > PROVIDER_REGION_MAX)
		return why_set(why, TALLY_E_TOOLONG, "endpoint or region too long");
	if (provider_offer_withdrawn(o))
		return check_withdrawal(o, why);
	if (!o->endpoint[0])
		return why_set(why, TALLY_E_RANGE, "the announcement has no endpoint");
	if (!bytes_in(o->endpoint, 0x21, 0x7e))
		return why_set(why, TALLY_E_ENCODING, "the endpoint may hold only printable ASCII"
			       " without spaces");
	for (int i = 0; i < 3; i++)
		if (price[i] > CONTRACT_U64_FIELD_MAX)
			return why_set(why, TALLY_E_RANGE, "%s %" PRIu64 " is above 2^63 - 1",
				       price_name[i], price[i]);
	if (o->interval_s < CONTRACT_INTERVAL_S_MIN || o->interval_s > CONTRACT_INTERVAL_S_MAX)
		return why_set(why, TALLY_E_RANGE, "interval_s %" PRIu32 " is not %d..%d",
			       o->interval_s, CONTRACT_INTERVAL_S_MIN, CONTRACT_INTERVAL_S_MAX);
	if (o->sla_max_credit_ppm > PPM_ONE)
		return why_set(why, TALLY_E_RANGE, "sla_max_credit_ppm %" PRIu32 " is above %u",
			       o->sla_max_credit_ppm, PPM_ONE);
	if (o->sla_min_delay_ppm > PPM_ONE)
		return why_set(why, TALLY_E_RANGE, "sla_min_delay_ppm %" PRIu32 " is above %u",
			       o->sla_min_delay_ppm, PPM_ONE);
	int rc = check_lists(o, why);
	if (rc)
		return rc;
	if (!bytes_in(o->region, 0x20, 0x7e))
		return why_set(why, TALLY_E_ENCODING, "the region may hold only printable ASCII");
	return 0;
}

void provider_offer_encode_to(struct enc *e, const struct provider_offer *o)
{
	uint32_t ni = o->nimages <= PROVIDER_IMAGES_MAX ? o->nimages : 0;
	uint32_t nc = o->ngpu_classes <= PROVIDER_GPU_CLASSES_MAX ? o->ngpu_classes : 0;

	if ((ni != o->nimages || nc != o->ngpu_classes) && !e->err)
		e->err = TALLY_E_TOOLONG;
	enc_str(e, o->endpoint);
	enc_u64(e, o->prices.vcpu_second);
	enc_u64(e, o->prices.mem_gib_second);
	enc_u64(e, o->prices.gpu_second);
	enc_u32(e, o->interval_s);
	enc_u32(e, o->sla_max_credit_ppm);
	enc_u32(e, o->sla_min_delay_ppm);
	enc_u32(e, ni);
	for (uint32_t i = 0; i < ni; i++)
		enc_str(e, o->images[i]);
	enc_u32(e, nc);
	for (uint32_t i = 0; i < nc; i++)
		enc_str(e, o->gpu_classes[i]);
	enc_u32(e, o->vcpus);
	enc_u32(e, o->memory_mib);
	enc_u32(e, o->gpus);
	enc_str(e, o->region);
}

void provider_offer_decode_from(struct dec *d, struct provider_offer *o)
{
	memset(o, 0, sizeof(*o));
	dec_str(d, o->endpoint, PROVIDER_ENDPOINT_MAX);
	o->prices.vcpu_second = dec_u64(d);
	o->prices.mem_gib_second = dec_u64(d);
	o->prices.gpu_second = dec_u64(d);
	o->interval_s = dec_u32(d);
	o->sla_max_credit_ppm = dec_u32(d);
	o->sla_min_delay_ppm = dec_u32(d);
	o->nimages = dec_u32(d);
	if (!dec_error(d) && o->nimages > PROVIDER_IMAGES_MAX)
		dec_fail(d, TALLY_E_TOOLONG);
	for (uint32_t i = 0; i < o->nimages && !dec_error(d); i++)
		dec_str(d, o->images[i], IMAGE_NAME_MAX);
	o->ngpu_classes = dec_u32(d);
	if (!dec_error(d) && o->ngpu_classes > PROVIDER_GPU_CLASSES_MAX)
		dec_fail(d, TALLY_E_TOOLONG);
	for (uint32_t i = 0; i < o->ngpu_classes && !dec_error(d); i++)
		dec_str(d, o->gpu_classes[i], PROVIDER_CLASS_MAX);
	o->vcpus = dec_u32(d);
	o->memory_mib = dec_u32(d);
	o->gpus = dec_u32(d);
	dec_str(d, o->region, PROVIDER_REGION_MAX);
	if (!dec_error(d)) {
		int rc = provider_offer_check(o, NULL);

		if (rc)
			dec_fail(d, rc);
	}
	if (dec_error(d))
		memset(o, 0, sizeof(*o));
}

bool provider_offer_has_image(const struct provider_offer *o, const char *image)
{
	for (uint32_t i = 0; i < o->nimages && i < PROVIDER_IMAGES_MAX; i++)
		if (!strcmp(o->images[i], image))
			return true;
	return false;
}

/* The first 8 hex digits of c's provider and an ellipsis, for sentences. */
static void provider_short(const struct lease_contract *c, char key[16])
{
	hex_encode(c->provider, 4, key);
	strcat(key, "\xe2\x80\xa6");
}

int provider_offer_sla_admits(const struct provider_offer *o, const struct lease_contract *c,
			      char *why)
{
	char key[16];

	provider_short(c, key);
	/* The credit is what the provider gives back on a breach, the delay
	 * what it may take before one: a tenant may ask less of the first
	 * and allow more of the second, never the other way. */
	if (c->sla.credit_ppm > o->sla_max_credit_ppm)
		return why_set(why, TALLY_E_CONTRACT, "provider %s credits at most %" PRIu32
			       " ppm of a breached interval's charge (sla_max_credit_ppm),"
			       " not %" PRIu32, key, o->sla_max_credit_ppm, c->sla.credit_ppm);
	if (c->sla.max_delay_ppm < o->sla_min_delay_ppm)
		return why_set(why, TALLY_E_CONTRACT, "provider %s allows a run-queue delay of at"
			       " least %" PRIu32 " ppm before an SLA breach (sla_min_delay_ppm),"
			       " not %" PRIu32, key, o->sla_min_delay_ppm, c->sla.max_delay_ppm);
	return 0;
}

int provider_offer_admits(const struct provider_offer *o, const struct lease_contract *c,
			  char *why)
{
	char key[16];

	provider_short(c, key);
	if (!o || provider_offer_withdrawn(o))
		return why_set(why, TALLY_E_CONTRACT, "provider %s is not registered: it has no"
			       " PROVIDER announcement on the chain", key);
	if (!provider_offer_has_image(o, c->vm.image))
		return why_set(why, TALLY_E_CONTRACT, "provider %s does not offer image \"%s\"",
			       key, c->vm.image);
	if (c->prices.vcpu_second < o->prices.vcpu_second ||
	    c->prices.mem_gib_second < o->prices.mem_gib_second ||
	    c->prices.gpu_second < o->prices.gpu_second)
		return why_set(why, TALLY_E_CONTRACT, "prices are below provider %s's announced"
			       " prices (vcpu_second %" PRIu64 ", mem_gib_second %" PRIu64
			       ", gpu_second %" PRIu64 ")", key, o->prices.vcpu_second,
			       o->prices.mem_gib_second, o->prices.gpu_second);
	if (c->interval_s != o->interval_s)
		return why_set(why, TALLY_E_CONTRACT, "the contract meters every %" PRIu32 " s;"
			       " provider %s meters every %" PRIu32 " s", c->interval_s, key,
			       o->interval_s);
	return provider_offer_sla_admits(o, c, why);
}
