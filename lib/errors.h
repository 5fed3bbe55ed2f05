/* Error codes shared by every part of tally. Each failure that a user or an
 * auditor can meet has its own name, so a report can say exactly what broke. */
#ifndef TALLY_ERRORS_H
#define TALLY_ERRORS_H

enum tally_err {
	TALLY_OK = 0,
	/* generic */
	TALLY_E_NOMEM,
	TALLY_E_IO,
	TALLY_E_INVALID,        /* an argument or value out of its allowed range */
	TALLY_E_NOTFOUND,
	TALLY_E_EXISTS,
	TALLY_E_INTERNAL,
	/* canonical decoding */
	TALLY_E_TRUNCATED,      /* input ended inside a field */
	TALLY_E_TRAILING,       /* bytes left after the object */
	TALLY_E_VERSION,        /* unknown format version */
	TALLY_E_TOOLONG,        /* a length prefix beyond the field's maximum */
	TALLY_E_RANGE,          /* a decoded value outside its allowed range */
	TALLY_E_ENCODING,       /* bytes that are not the canonical form */
	/* keys and signatures */
	TALLY_E_KEY,            /* unreadable or wrong-type key */
	TALLY_E_SIGNATURE,      /* signature does not verify */
	TALLY_E_CRYPTO,         /* the crypto library failed */
	/* Merkle proofs (RFC 6962 / RFC 9162) */
	TALLY_E_PROOF_INDEX,    /* leaf index not below tree size */
	TALLY_E_PROOF_SIZE,     /* wrong number of proof hashes */
	TALLY_E_PROOF_ROOT,     /* proof computes a different root */
	TALLY_E_PROOF_RANGE,    /* consistency proof with old size > new size etc. */
	/* transactions and the ledger */
	TALLY_E_CHAIN_ID,       /* object made for another chain */
	TALLY_E_NONCE,          /* nonce is not the account's next */
	TALLY_E_REPLAY,         /* transaction already seen */
	TALLY_E_BALANCE,        /* insufficient balance or escrow */
	TALLY_E_OVERFLOW,       /* integer arithmetic would overflow */
	TALLY_E_EXPIRED,        /* contract or request past its expiry */
	TALLY_E_STATE,          /* operation not allowed in the current state */
	TALLY_E_UNAUTHORIZED,   /* signer is not allowed to do this */
	TALLY_E_CONTRACT,       /* contract fails validation */
	TALLY_E_CAPACITY,       /* host cannot hold the lease */
	/* chain verification */
	TALLY_E_LINK,           /* previous-hash link broken */
	TALLY_E_HEIGHT,         /* heights not consecutive */
	TALLY_E_TXROOT,         /* transactions root mismatch */
	TALLY_E_USAGEROOT,      /* usage-log root or size mismatch */
	TALLY_E_STATEROOT,      /* state root mismatch */
	TALLY_E_VALSET,         /* validator-set hash mismatch */
	TALLY_E_CERT,           /* commit certificate invalid */
	TALLY_E_QUORUM,         /* signatures hold 2/3 of stake or less */
	TALLY_E_FUTURE,         /* dated too far ahead of the judging node's clock */
	TALLY_E_USAGECHAIN,     /* per-lease usage chain gap, reorder or duplicate */
	TALLY_E_BILL,           /* recomputed bill differs from the settlement */
	TALLY_E_STORE,          /* the SQLite store failed */
	TALLY_E_DISKFULL,
	TALLY_E_UNAVAILABLE,    /* a service the node needs (libvirt) is down for now */
	TALLY_E__COUNT
};

/* Size of the buffers that receive a sentence for the user ("why"). */
#define WHY_MAX 256

/* A short, human-readable description of an error code. */
const char *tally_strerror(int err);

/* Writes a sentence for the user into why[WHY_MAX] (when why is not NULL)
 * and returns err, so a refusal is one line: return why_set(why, E, ...). */
int why_set(char *why, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
