/* Canonical binary encodings of the lease contract and the usage record.
 *
 * Primitives are those of lib/codec.h: integers are fixed-width little-endian,
 * "fixed32" is 32 raw bytes with no length prefix, and "str" is a u32
 * little-endian byte count followed by that many bytes (no terminating NUL).
 *
 * Lease contract (version 2), in this order:
 *
 *   u8      version          = 2; any other value: TALLY_E_VERSION
 *   str     chain_id         1..48 bytes of [a-z0-9._-]
 *   fixed32 tenant           Ed25519 public key
 *   fixed32 provider         Ed25519 public key
 *   u64     nonce
 *   u64     expiry           unix seconds
 *   u32     vcpus
 *   u32     memory_mib
 *   u32     disk_gib
 *   u32     gpus
 *   str     image            1..64 bytes of [a-z0-9._-]
 *   str     hostname         0..63 bytes (rules: hostname_check)
 *   str     ssh_key          0..2048 bytes (rules: ssh_key_check)
 *   u64     duration_s
 *   u64     deposit          micro-units
 *   u32     interval_s
 *   u64     vcpu_second      micro-units per vCPU-second used
 *   u64     mem_gib_second   micro-units per GiB-second allocated
 *   u64     gpu_second       micro-units per GPU-second assigned
 *   u32     max_delay_ppm    0..1000000
 *   u32     credit_ppm       0..1000000
 *
 * That is 1 + (4 + len(chain_id)) + 32 + 32 + 8 + 8 + 4*4 + (4 + len(image))
 * + (4 + len(hostname)) + (4 + len(ssh_key)) + 8 + 8 + 4 + 3*8 + 4 + 4
 * = 165 + len(chain_id) + len(image) + len(hostname) + len(ssh_key) bytes.
 *
 * Decoding is strict. A chain id, image, hostname or SSH key longer than its
 * maximum is TALLY_E_TOOLONG; a chain id or image that is empty or holds a
 * byte outside [a-z0-9._-] is TALLY_E_ENCODING, and so is a NUL byte in any
 * string; a ppm above 1000000 is TALLY_E_RANGE; bytes after the contract are
 * TALLY_E_TRAILING and a short input TALLY_E_TRUNCATED. The other fields take
 * any value here: whether they make sense (the hostname's and the key's
 * alphabets too, so that a refusal can say what is wrong) is
 * contract_validate's question, which needs the chain id and the time.
 *
 * Usage record (no version byte of its own: it travels inside a versioned
 * USAGE transaction), 125 bytes:
 *
 *   fixed32 lease_id
 *   u64     seq
 *   fixed32 prev_hash        zero for seq 0
 *   u64     start_ns         unix nanoseconds
 *   u64     end_ns           unix nanoseconds
 *   u64     cpu_ns
 *   u64     run_delay_ns
 *   u64     gpu_ns
 *   u32     mem_mib
 *   u64     mem_peak_bytes
 *   u8      gpu_source       0 none, 1 kmod, 2 libvirt; above 2: TALLY_E_RANGE
 */
#include "contracts/contract.h"

#include <string.h>

#include "lib/errors.h"

/* Image names and chain ids share one alphabet: safe in file names, domain
 * names and URLs without quoting. */
static bool name_char_ok(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '.' ||
	       ch == '_' || ch == '-';
}

int image_name_valid(const char *image)
{
	size_t n = strnlen(image, IMAGE_NAME_MAX + 1);

	if (n == 0 || n > IMAGE_NAME_MAX)
		return TALLY_E_RANGE;
	for (size_t i = 0; i < n; i++)
		if (!name_char_ok(image[i]))
			return TALLY_E_ENCODING;
	return 0;
}

void contract_encode_to(struct enc *e, const struct lease_contract *c)
{
	enc_u8(e, c->version);
	enc_str(e, c->chain_id);
	enc_fixed(e, c->tenant, PUBKEY_LEN);
	enc_fixed(e, c->provider, PUBKEY_LEN);
	enc_u64(e, c->nonce);
	enc_u64(e, c->expiry);
	enc_u32(e, c->vm.vcpus);
	enc_u32(e, c->vm.memory_mib);
	enc_u32(e, c->vm.disk_gib);
	enc_u32(e, c->vm.gpus);
	enc_str(e, c->vm.image);
	enc_str(e, c->vm.hostname);
	enc_str(e, c->vm.ssh_key);
	enc_u64(e, c->duration_s);
	enc_u64(e, c->deposit);
	enc_u32(e, c->interval_s);
	enc_u64(e, c->prices.vcpu_second);
	enc_u64(e, c->prices.mem_gib_second);
	enc_u64(e, c->prices.gpu_second);
	enc_u32(e, c->sla.max_delay_ppm);
	enc_u32(e, c->sla.credit_ppm);
}

static uint32_t dec_ppm(struct dec *d)
{
	uint32_t v = dec_u32(d);

	if (v > PPM_ONE)
		dec_fail(d, TALLY_E_RANGE);
	return v;
}

void contract_decode_from(struct dec *d, struct lease_contract *c)
{
	memset(c, 0, sizeof(*c));
	c->version = dec_u8(d);
	if (!dec_error(d) && c->version != CONTRACT_VERSION)
		dec_fail(d, TALLY_E_VERSION);
	dec_str(d, c->chain_id, CHAIN_ID_MAX);
	if (!dec_error(d) && chain_id_valid(c->chain_id) != 0)
		dec_fail(d, TALLY_E_ENCODING);
	dec_fixed(d, c->tenant, PUBKEY_LEN);
	dec_fixed(d, c->provider, PUBKEY_LEN);
	c->nonce = dec_u64(d);
	c->expiry = dec_u64(d);
	c->vm.vcpus = dec_u32(d);
	c->vm.memory_mib = dec_u32(d);
	c->vm.disk_gib = dec_u32(d);
	c->vm.gpus = dec_u32(d);
	dec_str(d, c->vm.image, IMAGE_NAME_MAX);
	if (!dec_error(d) && image_name_valid(c->vm.image) != 0)
		dec_fail(d, TALLY_E_ENCODING);
	dec_str(d, c->vm.hostname, HOSTNAME_MAX);
	dec_str(d, c->vm.ssh_key, SSH_KEY_MAX);
	c->duration_s = dec_u64(d);
	c->deposit = dec_u64(d);
	c->interval_s = dec_u32(d);
	c->prices.vcpu_second = dec_u64(d);
	c->prices.mem_gib_second = dec_u64(d);
	c->prices.gpu_second = dec_u64(d);
	c->sla.max_delay_ppm = dec_ppm(d);
	c->sla.credit_ppm = dec_ppm(d);
}

int contract_decode(struct lease_contract *c, const uint8_t *p, size_t n)
{
	struct dec d;

	dec_init(&d, p, n);
	contract_decode_from(&d, c);
	return dec_finish(&d);
}

void usage_encode_to(struct enc *e, const struct usage_record *u)
{
	enc_fixed(e, u->lease_id, LEASE_ID_LEN);
	enc_u64(e, u->seq);
	enc_fixed(e, u->prev_hash, HASH_LEN);
	enc_u64(e, u->start_ns);
	enc_u64(e, u->end_ns);
	enc_u64(e, u->cpu_ns);
	enc_u64(e, u->run_delay_ns);
	enc_u64(e, u->gpu_ns);
	enc_u32(e, u->mem_mib);
	enc_u64(e, u->mem_peak_bytes);
	enc_u8(e, u->gpu_source);
}

void usage_decode_from(struct dec *d, struct usage_record *u)
{
	memset(u, 0, sizeof(*u));
	dec_fixed(d, u->lease_id, LEASE_ID_LEN);
	u->seq = dec_u64(d);
	dec_fixed(d, u->prev_hash, HASH_LEN);
	u->start_ns = dec_u64(d);
	u->end_ns = dec_u64(d);
	u->cpu_ns = dec_u64(d);
	u->run_delay_ns = dec_u64(d);
	u->gpu_ns = dec_u64(d);
	u->mem_mib = dec_u32(d);
	u->mem_peak_bytes = dec_u64(d);
	u->gpu_source = dec_u8(d);
	if (u->gpu_source > GPU_SOURCE_LIBVIRT)
		dec_fail(d, TALLY_E_RANGE);
}

int usage_decode(struct usage_record *u, const uint8_t *p, size_t n)
{
	struct dec d;

	dec_init(&d, p, n);
	usage_decode_from(&d, u);
	return dec_finish(&d);
}
