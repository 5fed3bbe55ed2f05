/* Static validation of a lease contract: every rule that needs no ledger
 * state (balances, nonces, capacity and signatures are checked elsewhere).
 *
 * The rules, in the order they are checked; the first one broken is reported:
 *  1. version is CONTRACT_VERSION;
 *  2. the chain id is well formed and is this chain's (TALLY_E_CHAIN_ID);
 *  3. expiry >= now: it may still commit (TALLY_E_EXPIRED);
 *  4. tenant and provider are different keys, each accepted by key_check
 *     (TALLY_E_KEY: not small order, canonically encoded);
 *  5. 1 <= vcpus <= 256; 64 <= memory_mib <= 4 TiB; disk_gib <= 64 TiB (zero
 *     is allowed: a kernel+initrd image needs no disk); gpus <= 16;
 *  6. the image name is 1..64 bytes of [a-z0-9._-]; the hostname and the SSH
 *     key follow hostname_check and ssh_key_check (contracts/access.c);
 *  7. 1 s <= interval_s <= 3600 s; interval_s <= duration_s <= ten years.
 *     The duration need not be a multiple of the interval: the last record
 *     of a term may be shorter than the others. vcpus x duration_s x 1e9 is
 *     at most 2^63 - 1 (the lease's CPU and run-delay totals);
 *  8. both SLA ppm values are at most 1000000;
 *  9. nonce, expiry, deposit and prices are at most 2^63 - 1
 *     (CONTRACT_U64_FIELD_MAX), so the contract has a JSON form;
 * 10. something the contract leases has a price: vcpu_second or
 *     mem_gib_second is set, or gpu_second with at least one GPU (a GPU
 *     price alone on a lease without GPU would make a lease that can never
 *     cost anything, whose deposit and exhaustion rules mean nothing);
 * 11. the deposit is not zero;
 * 12. the most the full term can cost fits 64 bits;
 * 13. the deposit covers the most the first interval can cost.
 * Everything else breaks the contract with TALLY_E_CONTRACT. */
#include "contracts/contract.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lib/errors.h"

static int check_identity(const struct lease_contract *c, const char *chain_id,
			  uint64_t now_s, char *why)
{
	if (c->version != CONTRACT_VERSION)
		return why_set(why, TALLY_E_CONTRACT,
			       "contract version %u is not supported (expected %u)",
			       c->version, CONTRACT_VERSION);
	if (strnlen(c->chain_id, sizeof(c->chain_id)) > CHAIN_ID_MAX ||
	    chain_id_valid(c->chain_id) != 0)
		return why_set(why, TALLY_E_CHAIN_ID,
			       "chain id \"%.*s\" is not 1..%d characters of [a-z0-9._-]",
			       CHAIN_ID_MAX, c->chain_id, CHAIN_ID_MAX);
	if (strcmp(c->chain_id, chain_id) != 0)
		return why_set(why, TALLY_E_CHAIN_ID,
			       "contract is for chain \"%s\", not this chain \"%s\"",
			       c->chain_id, chain_id);
	if (c->expiry < now_s)
		return why_set(why, TALLY_E_EXPIRED,
			       "contract expired at %" PRIu64 " (unix seconds), now is %" PRIu64,
			       c->expiry, now_s);
	if (memcmp(c->tenant, c->provider, PUBKEY_LEN) == 0)
		return why_set(why, TALLY_E_CONTRACT,
			       "tenant and provider are the same key");
	if (key_check(c->tenant))
		return why_set(why, TALLY_E_KEY, "the tenant's key is not a valid Ed25519 key"
			       " (small order or not canonical)");
	if (key_check(c->provider))
		return why_set(why, TALLY_E_KEY, "the provider's key is not a valid Ed25519 key"
			       " (small order or not canonical)");
	return 0;
}

int contract_check_vm(const struct vm_spec *vm, char *why)
{
	if (vm->vcpus == 0)
		return why_set(why, TALLY_E_CONTRACT, "vcpus is 0: a VM needs at least 1");
	if (vm->vcpus > CONTRACT_VCPUS_MAX)
		return why_set(why, TALLY_E_CONTRACT, "vcpus %u exceeds the maximum %u",
			       vm->vcpus, CONTRACT_VCPUS_MAX);
	if (vm->memory_mib < CONTRACT_MEMORY_MIB_MIN)
		return why_set(why, TALLY_E_CONTRACT,
			       "memory %u MiB is below the minimum %u MiB",
			       vm->memory_mib, CONTRACT_MEMORY_MIB_MIN);
	if (vm->memory_mib > CONTRACT_MEMORY_MIB_MAX)
		return why_set(why, TALLY_E_CONTRACT,
			       "memory %u MiB exceeds the maximum %u MiB (4 TiB)",
			       vm->memory_mib, CONTRACT_MEMORY_MIB_MAX);
	if (vm->disk_gib > CONTRACT_DISK_GIB_MAX)
		return why_set(why, TALLY_E_CONTRACT,
			       "disk %u GiB exceeds the maximum %u GiB (64 TiB)",
			       vm->disk_gib, CONTRACT_DISK_GIB_MAX);
	if (vm->gpus > CONTRACT_GPUS_MAX)
		return why_set(why, TALLY_E_CONTRACT, "gpus %u exceeds the maximum %u",
			       vm->gpus, CONTRACT_GPUS_MAX);
	switch (image_name_valid(vm->image)) {
	case 0:
		break;
	case TALLY_E_ENCODING:
		return why_set(why, TALLY_E_CONTRACT,
			       "image name \"%s\" may hold only a-z, 0-9, '.', '_' and '-'",
			       vm->image);
	default:
		if (vm->image[0] == '\0')
			return why_set(why, TALLY_E_CONTRACT, "image name is empty");
		return why_set(why, TALLY_E_CONTRACT,
			       "image name is longer than %d bytes", IMAGE_NAME_MAX);
	}
	int rc = hostname_check(vm->hostname, why);
	return rc ? rc : ssh_key_check(vm->ssh_key, why);
}

static int check_terms(const struct lease_contract *c, char *why)
{
	if (c->interval_s < CONTRACT_INTERVAL_S_MIN || c->interval_s > CONTRACT_INTERVAL_S_MAX)
		return why_set(why, TALLY_E_CONTRACT,
			       "metering interval %u s is outside %u..%u s",
			       c->interval_s, CONTRACT_INTERVAL_S_MIN, CONTRACT_INTERVAL_S_MAX);
	if (c->duration_s < c->interval_s)
		return why_set(why, TALLY_E_CONTRACT,
			       "duration %" PRIu64 " s is shorter than the metering interval %u s",
			       c->duration_s, c->interval_s);
	if (c->duration_s > CONTRACT_DURATION_S_MAX)
		return why_set(why, TALLY_E_CONTRACT,
			       "duration %" PRIu64 " s exceeds the maximum %llu s (ten years)",
			       c->duration_s, CONTRACT_DURATION_S_MAX);
	/* The most CPU nanoseconds the term can bill (and run delay, bounded
	 * the same way) must fit a lease's totals and a signed 64-bit JSON
	 * integer. */
	if ((unsigned __int128)c->vm.vcpus * c->duration_s * 1000000000u > INT64_MAX)
		return why_set(why, TALLY_E_CONTRACT,
			       "%u vCPUs for %" PRIu64 " s could bill more CPU time than a lease's"
			       " totals hold (2^63 ns); lease for at most %" PRIu64 " s",
			       c->vm.vcpus, c->duration_s,
			       (uint64_t)(INT64_MAX / ((uint64_t)c->vm.vcpus * 1000000000u)));
	/* GPUs need no such rule: 16 GPUs for ten years is 5.1e18 ns. */
	if (c->sla.max_delay_ppm > PPM_ONE)
		return why_set(why, TALLY_E_CONTRACT,
			       "SLA max_delay_ppm %u exceeds %u (100%%)",
			       c->sla.max_delay_ppm, PPM_ONE);
	if (c->sla.credit_ppm > PPM_ONE)
		return why_set(why, TALLY_E_CONTRACT,
			       "SLA credit_ppm %u exceeds %u (100%%)",
			       c->sla.credit_ppm, PPM_ONE);
	return 0;
}

static int check_u64_field(const char *name, uint64_t v, char *why)
{
	if (v > CONTRACT_U64_FIELD_MAX)
		return why_set(why, TALLY_E_CONTRACT,
			       "%s %" PRIu64 " exceeds the maximum %" PRIu64,
			       name, v, CONTRACT_U64_FIELD_MAX);
	return 0;
}

static int check_money(const struct lease_contract *c, char *why)
{
	const struct lease_prices *p = &c->prices;
	uint64_t term_max, first_max;
	int rc;

	rc = check_u64_field("nonce", c->nonce, why);
	if (!rc)
		rc = check_u64_field("expiry", c->expiry, why);
	if (!rc)
		rc = check_u64_field("deposit", c->deposit, why);
	if (!rc)
		rc = check_u64_field("vcpu_second price", p->vcpu_second, why);
	if (!rc)
		rc = check_u64_field("mem_gib_second price", p->mem_gib_second, why);
	if (!rc)
		rc = check_u64_field("gpu_second price", p->gpu_second, why);
	if (rc)
		return rc;
	if (!p->vcpu_second && !p->mem_gib_second && !p->gpu_second)
		return why_set(why, TALLY_E_CONTRACT,
			       "all prices are zero: at least one must be set");
	if (!p->vcpu_second && !p->mem_gib_second && c->vm.gpus == 0)
		return why_set(why, TALLY_E_CONTRACT,
			       "only GPU time has a price and the contract leases no GPU: the"
			       " lease could never cost anything (price vCPU or memory time)");
	if (c->deposit == 0)
		return why_set(why, TALLY_E_CONTRACT, "deposit is zero");
	if (settle_max_charge(c, c->duration_s, &term_max) != 0)
		return why_set(why, TALLY_E_CONTRACT,
			       "the most the full term of %" PRIu64 " s can cost overflows 64 bits",
			       c->duration_s);
	if (settle_max_interval_charge(c, &first_max) != 0)
		return why_set(why, TALLY_E_INTERNAL,
			       "one interval overflows although the full term does not");
	if (c->deposit < first_max)
		return why_set(why, TALLY_E_CONTRACT,
			       "deposit %" PRIu64 " is below the first interval's maximum charge %" PRIu64
			       " (micro-units)",
			       c->deposit, first_max);
	return 0;
}

int contract_validate(const struct lease_contract *c, const char *chain_id,
		      uint64_t now_s, char *why)
{
	int rc;

	rc = check_identity(c, chain_id, now_s, why);
	if (!rc)
		rc = contract_check_vm(&c->vm, why);
	if (!rc)
		rc = check_terms(c, why);
	if (!rc)
		rc = check_money(c, why);
	if (!rc && why)
		why[0] = '\0';
	return rc;
}

int contract_check_open(const struct lease_contract *c, const uint8_t signer[PUBKEY_LEN],
			uint64_t tx_nonce, const char *tx_chain_id, const char *chain_id,
			uint64_t now_s, char *why)
{
	char hex[2 * PUBKEY_LEN + 1];

	if (strcmp(c->chain_id, tx_chain_id) != 0)
		return why_set(why, TALLY_E_CHAIN_ID,
			       "the contract is for chain '%.*s' but its transaction is for chain '%s'",
			       CHAIN_ID_MAX, c->chain_id, tx_chain_id);
	if (memcmp(c->tenant, signer, PUBKEY_LEN) != 0) {
		hex_encode(signer, 8, hex);
		return why_set(why, TALLY_E_UNAUTHORIZED,
			       "a lease contract must be signed by its tenant, not by %s", hex);
	}
	if (c->nonce != tx_nonce)
		return why_set(why, TALLY_E_NONCE,
			       "transaction nonce %" PRIu64 " differs from the contract's nonce %" PRIu64,
			       tx_nonce, c->nonce);
	return contract_validate(c, chain_id, now_s, why);
}
