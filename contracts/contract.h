/* The lease contract: what a tenant signs to lease a VM, and the pure,
 * deterministic rules every validator and auditor applies to it: validation,
 * the lease state machine and settlement arithmetic.
 *
 * Nothing in contracts/ reads the clock, draws random numbers or does I/O:
 * times and heights are passed in. All money is in micro-units (uint64_t);
 * there is no floating point anywhere in this directory. */
#ifndef TALLY_CONTRACT_H
#define TALLY_CONTRACT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/codec.h"
#include "lib/crypto.h"
#include "lib/errors.h"

#define CONTRACT_VERSION 2   /* 2 added the guest's hostname and SSH key */
#define IMAGE_NAME_MAX 64     /* [a-z0-9._-], 1..64 bytes */
#define HOSTNAME_MAX 63       /* an RFC 1123 label: [a-z0-9-], 0..63 bytes */
#define SSH_KEY_MAX 2048      /* one OpenSSH public key line, 0..2048 bytes */
#define LEASE_ID_LEN HASH_LEN

/* Limits that contract_validate enforces (see contracts/validate.c). Beyond
 * each field's own limit, vcpus x duration_s x 1e9 and gpus x duration_s x 1e9
 * (the most CPU and GPU nanoseconds a term can bill) are at most 2^63 - 1,
 * so a lease's totals always fit a signed 64-bit JSON integer. */
#define CONTRACT_VCPUS_MAX 256
#define CONTRACT_MEMORY_MIB_MIN 64
#define CONTRACT_MEMORY_MIB_MAX (4u * 1024 * 1024)        /* 4 TiB */
#define CONTRACT_DISK_GIB_MAX (64u * 1024)                /* 64 TiB */
#define CONTRACT_GPUS_MAX 16
#define CONTRACT_INTERVAL_S_MIN 1
#define CONTRACT_INTERVAL_S_MAX 3600
#define CONTRACT_DURATION_S_MAX (10ull * 366 * 86400)      /* ten years */
/* Every other u64 field (nonce, expiry, deposit, prices) is at most this, the
 * largest integer JSON carries here, so a valid contract always has a JSON form. */
#define CONTRACT_U64_FIELD_MAX ((uint64_t)INT64_MAX)
#define PPM_ONE 1000000u      /* 100% in parts per million */

/* 0 when image is 1..IMAGE_NAME_MAX bytes of [a-z0-9._-]; TALLY_E_RANGE for a
 * bad length, TALLY_E_ENCODING for a bad character. */
int image_name_valid(const char *image);

/* What reaches the guest (contracts/access.c). Both fields end up in the
 * cloud-init seed and the domain's metadata, so they are held to alphabets
 * that need no quoting in YAML or XML. Each returns 0, or TALLY_E_CONTRACT
 * with a sentence for the user in why[WHY_MAX] (may be NULL).
 *
 * hostname: empty (the node names the guest), or 1..63 bytes of [a-z0-9-]
 * that neither start nor end with '-' (one RFC 1123 label, lowercase so
 * that one name has one spelling). */
int hostname_check(const char *hostname, char *why);
/* ssh_key: empty (no key), or one OpenSSH public key line
 * "TYPE BASE64 [COMMENT]" of at most SSH_KEY_MAX bytes: TYPE one of
 * ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256/384/521,
 * sk-ssh-ed25519@openssh.com, sk-ecdsa-sha2-nistp256@openssh.com; BASE64 a
 * canonical base64 key blob that names the same TYPE and consists of
 * whole SSH strings (RFC 4253 section 6.6); COMMENT of [A-Za-z0-9 ._@+=:,/-].
 * No options, quotes, backslashes, newlines or control bytes. */
int ssh_key_check(const char *ssh_key, char *why);

struct vm_spec {
	uint32_t vcpus;
	uint32_t memory_mib;
	uint32_t disk_gib;
	uint32_t gpus;
	char image[IMAGE_NAME_MAX + 1];
	char hostname[HOSTNAME_MAX + 1];  /* "": the node names the guest */
	char ssh_key[SSH_KEY_MAX + 1];    /* "": no key is installed */
};

/* Micro-units per unit-second. */
struct lease_prices {
	uint64_t vcpu_second;     /* per vCPU-second of CPU time used */
	uint64_t mem_gib_second;  /* per GiB-second of memory allocated */
	uint64_t gpu_second;      /* per GPU-second assigned */
};

/* The SLA, promised per metering interval: when the VM's vCPUs waited for a
 * host CPU for more than max_delay_ppm of an interval's vCPU time (vcpus x
 * the interval), the provider owes credit_ppm of that interval's share of
 * the gross charge back to the tenant. A record spanning several intervals
 * is judged in as many windows as its span holds intervals (rounded to the
 * nearest), as many counted breached as its delay could have breached
 * (docs/FORMATS.md section 11). */
struct lease_sla {
	uint32_t max_delay_ppm;
	uint32_t credit_ppm;
};

struct lease_contract {
	uint8_t version;
	char chain_id[CHAIN_ID_MAX + 1];
	uint8_t tenant[PUBKEY_LEN];
	uint8_t provider[PUBKEY_LEN];
	uint64_t nonce;            /* the tenant account's next nonce */
	uint64_t expiry;           /* unix seconds: must commit in a block at or before it */
	struct vm_spec vm;
	uint64_t duration_s;
	uint64_t deposit;          /* micro-units moved to escrow at open */
	uint32_t interval_s;       /* metering interval */
	struct lease_prices prices;
	struct lease_sla sla;
};

/* One span of a lease's metering (one interval as a rule, several after the
 * provider's node was down), as the provider signs it. */
enum gpu_source {
	GPU_SOURCE_NONE = 0,       /* the lease has no GPU */
	GPU_SOURCE_KMOD = 1,       /* tallymeter.ko assignment counters */
	GPU_SOURCE_LIBVIRT = 2,    /* libvirt hostdev lifecycle timestamps */
};

struct usage_record {
	uint8_t lease_id[LEASE_ID_LEN];
	uint64_t seq;                    /* 0, 1, 2, ... per lease */
	uint8_t prev_hash[HASH_LEN];     /* hash of the previous record's tx; zero for seq 0 */
	uint64_t start_ns;               /* unix ns; equals the previous record's end_ns
					  * (seq 0: the lease's started_ns) */
	uint64_t end_ns;
	uint64_t cpu_ns;                 /* CPU time the VM used; at most vcpus x
					  * (end_ns - start_ns), so the meter caps
					  * emulator overhead beyond that */
	uint64_t run_delay_ns;           /* vCPU run-queue delay */
	uint64_t gpu_ns;                 /* GPU time assigned, summed over GPUs */
	uint32_t mem_mib;                /* memory allocated (billed) */
	uint64_t mem_peak_bytes;         /* cgroup peak (reported, not billed) */
	uint8_t gpu_source;              /* enum gpu_source */
};

/* Canonical encodings (byte layouts in docs/FORMATS.md). The _to/_from forms
 * embed the object in a larger encoding; decode checks every range. */
void contract_encode_to(struct enc *e, const struct lease_contract *c);
void contract_decode_from(struct dec *d, struct lease_contract *c);
int contract_decode(struct lease_contract *c, const uint8_t *p, size_t n);
void usage_encode_to(struct enc *e, const struct usage_record *u);
void usage_decode_from(struct dec *d, struct usage_record *u);
int usage_decode(struct usage_record *u, const uint8_t *p, size_t n);

/* Static validation: every rule that does not need ledger state. On failure
 * returns TALLY_E_CONTRACT (or TALLY_E_CHAIN_ID, TALLY_E_EXPIRED) and writes a
 * sentence for the user into why[WHY_MAX], e.g.
 * "deposit 10 is below the first interval's maximum charge 12". */
int contract_validate(const struct lease_contract *c, const char *chain_id,
		      uint64_t now_s, char *why);
/* The VM part of contract_validate (its shape, image, hostname, SSH key):
 * what a tenant can get wrong before a provider and its terms are chosen.
 * TALLY_E_CONTRACT with why[WHY_MAX] as contract_validate. */
int contract_check_vm(const struct vm_spec *vm, char *why);

/* JSON as users write it (contracts/examples/). Keys in hex; amounts as
 * integers in micro-units. Unknown keys are errors. */
int contract_from_json(struct lease_contract *c, const char *text, char *why);
/* malloc'd; NULL on allocation failure or when a u64 field exceeds
 * CONTRACT_U64_FIELD_MAX (contract_validate refuses such contracts). */
char *contract_to_json(const struct lease_contract *c);

/* Settlement of one usage record of a lease (integers only; the rules and
 * why in contracts/settle.c and docs/FORMATS.md section 11). The remainders
 * of its divisions are carried from record to record in the lease, so that
 * a lease pays its usage's exact price floored once:
 *   cpu   = floor((cpu_ns * vcpu_second + carry.cpu) / 1e9)
 *   mem   = floor((mem_mib * (end_ns - start_ns) * mem_gib_second + carry.mem)
 *                 / (1024 * 1e9))
 *   gpu   = floor((gpu_ns * gpu_second + carry.gpu) / 1e9)
 *   gross = cpu + mem + gpu
 *   sla_windows  = max(1, the span in intervals rounded to the nearest, half up)
 *   sla_breached = how many windows the run delay could have breached
 *   sla_credit   = floor((ceil(gross * breached / windows) * credit_ppm
 *                         + carry.credit) / 1e6)
 *   net   = gross - sla_credit */
struct settle_carry {
	uint64_t cpu;      /* 0 .. 1e9 - 1, of cpu_ns x vcpu_second */
	uint64_t mem;      /* 0 .. 1024e9 - 1, of mem_mib x ns x mem_gib_second */
	uint64_t gpu;      /* 0 .. 1e9 - 1, of gpu_ns x gpu_second */
	uint64_t credit;   /* 0 .. 1e6 - 1, of credited gross x credit_ppm */
};
#define SETTLE_MEM_DIV (1024ull * 1000000000ull)
/* True when each remainder is below its divisor. */
bool settle_carry_valid(const struct settle_carry *c);

struct usage_charge {
	uint64_t cpu, mem, gpu, gross, sla_credit, net;
	uint64_t sla_windows;    /* the record's SLA windows, at least 1 */
	uint64_t sla_breached;   /* of them, judged breached */
};
/* The charge of record u given the lease's carry before it (carry is not
 * changed; *carry_out, which may be NULL or carry itself, gets the carry
 * after it). TALLY_E_RANGE when u ends before it starts, credit_ppm is above
 * 1e6 or a remainder is not below its divisor; TALLY_E_OVERFLOW when a
 * result does not fit 64 bits. Nothing is written on error. */
int settle_usage(const struct lease_contract *c, const struct settle_carry *carry,
		 const struct usage_record *u, struct usage_charge *out,
		 struct settle_carry *carry_out);
/* What a record whose net is `net` pays out of an escrow holding `escrow`:
 * min(net, escrow). When net is more, the escrow is all paid and the lease
 * closes as escrow-exhausted (lease_apply_usage). */
uint64_t settle_paid(uint64_t net, uint64_t escrow);
/* The most that `seconds` of this lease can cost before SLA credit: every vCPU
 * busy, the contract's memory and every GPU assigned the whole time. It equals
 * settle_usage's gross for such a record of a lease whose carries are 0 (the
 * memory carry can add one micro-unit; the CPU and GPU terms are whole):
 *   vcpus * seconds * vcpu_second
 *   + floor(memory_mib * seconds * mem_gib_second / 1024)
 *   + gpus * seconds * gpu_second
 * Returns TALLY_E_OVERFLOW when it exceeds 64 bits. */
int settle_max_charge(const struct lease_contract *c, uint64_t seconds, uint64_t *out);
/* settle_max_charge over one metering interval (interval_s): what the escrow
 * must hold for the lease to run another interval. */
int settle_max_interval_charge(const struct lease_contract *c, uint64_t *out);

/* The lease state machine (contracts/lease.c): opened -> running ->
 * [closing ->] closed(reason). "closing" is a running lease its tenant asked
 * to close: the provider bills the time up to the request with one last
 * record, which closes it. */
enum lease_state {
	LEASE_OPENED = 1,
	LEASE_RUNNING = 2,
	LEASE_CLOSED = 3,
	LEASE_CLOSING = 4,
};
#define LEASE_STATE_MAX LEASE_CLOSING

enum lease_close_reason {
	CLOSE_NONE = 0,
	CLOSE_TERM_ENDED = 1,
	CLOSE_TENANT = 2,
	CLOSE_EXHAUSTED = 3,
	CLOSE_PROVIDER_FAILED = 4,
	CLOSE_REJECTED = 5,
	CLOSE_GUEST_STOPPED = 6,   /* the tenant's guest powered itself off */
};
#define CLOSE_REASON_MAX CLOSE_GUEST_STOPPED

/* How far a usage record may end after the time of the block that commits
 * it: clocks of the provider and the proposer differ a little, but no record
 * bills time that has not happened. */
#define USAGE_MAX_AHEAD_NS (5ull * 1000000000ull)
/* How long the provider has, after a tenant's close, to bill the time up to
 * it before the tenant may close without that record: two intervals, and at
 * least a minute. */
uint64_t lease_close_grace_ns(const struct lease_contract *c);

const char *lease_state_name(enum lease_state s);
const char *lease_close_reason_name(enum lease_close_reason r);

struct lease {
	uint8_t id[LEASE_ID_LEN];
	struct lease_contract contract;
	uint8_t state;                   /* enum lease_state */
	uint8_t close_reason;            /* enum lease_close_reason */
	uint64_t opened_height;
	uint64_t started_ns;             /* block time of LEASE_START; 0 until then */
	uint64_t closed_height;
	uint64_t escrow;                 /* remaining deposit */
	uint64_t charged;                /* total net paid to the provider */
	uint64_t sla_credits;            /* total credited to the tenant */
	uint64_t next_seq;               /* seq the next usage record must carry */
	uint8_t last_usage_hash[HASH_LEN];
	uint64_t last_end_ns;            /* end of the last record; next start */
	uint64_t cpu_ns, run_delay_ns, gpu_ns; /* totals over committed records */
	uint64_t closing_ns;             /* closing: the last record ends here, at
					  * the tenant's close or the term's end */
	uint64_t close_asked_ns;         /* closing: block time of the tenant's close */
	struct settle_carry carry;       /* settlement's remainders after the last record */
};

void lease_encode_to(struct enc *e, const struct lease *l);
/* The same lease state: equal canonical encodings (so padding and fields
 * the encoding lacks do not count). False when either does not encode. */
bool lease_same(const struct lease *x, const struct lease *y);
void lease_decode_from(struct dec *d, struct lease *l);
int lease_decode(struct lease *l, const uint8_t *p, size_t n);

/* Who a key is to a lease. Tenant and provider are different keys
 * (contract_validate), so a key is at most one of them. */
enum lease_party {
	PARTY_NONE = 0,
	PARTY_TENANT = 1,
	PARTY_PROVIDER = 2,
};
enum lease_party lease_party_of(const struct lease *l, const uint8_t key[PUBKEY_LEN]);

/* The rules of a LEASE_OPEN that need no ledger state: signed by the
 * contract's tenant (TALLY_E_UNAUTHORIZED), with the transaction's nonce
 * equal to the contract's (TALLY_E_NONCE) and for the transaction's chain
 * (TALLY_E_CHAIN_ID), and contract_validate at now_s. The node checks them
 * at admission with its clock, and the state transition again at the
 * block's time, so validators and auditors apply them alike. */
int contract_check_open(const struct lease_contract *c, const uint8_t signer[PUBKEY_LEN],
			uint64_t tx_nonce, const char *tx_chain_id, const char *chain_id,
			uint64_t now_s, char *why);

/* Transitions. Each checks who signed, the state and its preconditions, and
 * returns a tally_err with why[WHY_MAX] filled on refusal (a refused
 * transition leaves the lease unchanged); on success the lease is updated
 * and the money that moves is returned through out-parameters for the
 * ledger to apply to accounts. These are the only lease rules: the state
 * transition (lib/chain/state.c) and the auditor both call them. */
int lease_open(struct lease *l, const uint8_t id[LEASE_ID_LEN],
	       const struct lease_contract *c, uint64_t height, char *why);
/* Only the provider starts a lease (TALLY_E_UNAUTHORIZED), and only an
 * opened one (TALLY_E_STATE); time_ns (the block's time) becomes started_ns. */
int lease_start(struct lease *l, const uint8_t signer[PUBKEY_LEN], uint64_t time_ns, char *why);
/* Only the provider bills (TALLY_E_UNAUTHORIZED). Checks lease id, seq,
 * prev_hash and start_ns contiguity, the record's span and quantities, that
 * it ends no later than USAGE_MAX_AHEAD_NS after time_ns (the block's time;
 * TALLY_E_RANGE), and charges the escrow (rules at the top of
 * contracts/lease.c). A charge beyond the escrow takes what is left, and the
 * lease closes as CLOSE_EXHAUSTED; a closing lease's record that reaches
 * closing_ns closes it as CLOSE_TENANT and returns the escrow left
 * (*tenant_refund). *provider_gets tells how much the provider is paid. The
 * lease closes at block `height`. charge, provider_gets and tenant_refund
 * may be NULL. */
int lease_apply_usage(struct lease *l, const uint8_t signer[PUBKEY_LEN],
		      const struct usage_record *u, const uint8_t record_hash[HASH_LEN],
		      uint64_t height, uint64_t time_ns, struct usage_charge *charge,
		      uint64_t *provider_gets, uint64_t *tenant_refund, char *why);
/* A LEASE_CLOSE at block `height` and time time_ns. Who may close with which
 * reason:
 *   tenant    CLOSE_TENANT: an opened lease closes at once; a running one
 *             becomes closing, with closing_ns the earlier of time_ns and
 *             the term's end (closed at once when its last record already
 *             ends there); a closing one closes once lease_close_grace_ns
 *             has passed since the tenant asked, without the last record;
 *   provider  CLOSE_TERM_ENDED once the term has ended at time_ns;
 *             CLOSE_EXHAUSTED when the escrow cannot pay one more interval at
 *             the contract's maximum (settle_max_interval_charge);
 *             CLOSE_GUEST_STOPPED while running: the guest powered itself off
 *             (the provider's last record ends where it stopped);
 *             CLOSE_PROVIDER_FAILED while opened, running or closing: the
 *             time since the last record is not billed;
 *             CLOSE_REJECTED while still opened;
 *             CLOSE_TENANT while closing: it takes the tenant's close
 *             without billing the time since its last record;
 *   anyone else: nothing (TALLY_E_UNAUTHORIZED).
 * A reason the party may not give is TALLY_E_UNAUTHORIZED; one the lease's
 * state or time does not allow is TALLY_E_STATE. When the lease closes, the
 * escrow left is returned through *tenant_refund (0 while it only becomes
 * closing). */
int lease_close(struct lease *l, const uint8_t signer[PUBKEY_LEN],
		enum lease_close_reason reason, uint64_t height, uint64_t time_ns,
		uint64_t *tenant_refund, char *why);
/* True when a running lease's term has ended at time_ns. */
bool lease_term_ended(const struct lease *l, uint64_t time_ns);
/* The most one more interval of the lease can cost, in micro-units: the
 * gross settle_usage gives a record of one interval at full use (every vCPU
 * busy, the contract's memory, every GPU assigned) with the lease's
 * carries, i.e. settle_max_interval_charge, or one more when the memory
 * carry completes a micro-unit. TALLY_E_OVERFLOW when it does not fit. */
int lease_next_interval_max(const struct lease *l, uint64_t *out);
/* The escrow is "short": below lease_next_interval_max, so the provider may
 * close the running lease as escrow-exhausted (docs/FORMATS.md section
 * 10.6). */
bool lease_escrow_short(const struct lease *l);
/* started_ns + duration_s * 1e9 (saturating at UINT64_MAX); 0 before start. */
uint64_t lease_term_end_ns(const struct lease *l);

#endif
