/* The mempool (see mempool.h).
 *
 * Two open-addressing hash tables (linear probing, backward-shift deletion)
 * index the entries by tx hash and the per-signer pending summary by
 * pubkey; both keys are uniformly distributed bytes, so their first 8 bytes
 * serve as the hash. Tables are sized to twice the bound at creation and
 * never grow. A doubly linked list keeps arrival order. */
#include "daemon/ledger/mempool.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/errors.h"

struct slot {
	uint8_t key[HASH_LEN];
	void *val;            /* NULL: empty */
};

struct table {
	struct slot *s;
	size_t mask;
};

struct signer {
	uint8_t pub[PUBKEY_LEN];
	uint64_t next_nonce;
	uint64_t debits;      /* pending amounts leaving the balance */
};

struct mempool {
	size_t max, n;
	struct mempool_entry *head, *tail;
	struct table by_hash, by_signer;
};

static size_t home(const struct table *t, const uint8_t key[HASH_LEN])
{
	uint64_t h;

	memcpy(&h, key, sizeof(h));
	return (size_t)h & t->mask;
}

static int table_init(struct table *t, size_t max)
{
	size_t cap = 16;

	while (cap < 2 * max)
		cap *= 2;
	t->s = calloc(cap, sizeof(*t->s));
	t->mask = cap - 1;
	return t->s ? 0 : TALLY_E_NOMEM;
}

static size_t table_slot(const struct table *t, const uint8_t key[HASH_LEN])
{
	size_t i = home(t, key);

	while (t->s[i].val && memcmp(t->s[i].key, key, HASH_LEN))
		i = (i + 1) & t->mask;
	return i;
}

static void *table_get(const struct table *t, const uint8_t key[HASH_LEN])
{
	return t->s[table_slot(t, key)].val;
}

static void table_put(struct table *t, const uint8_t key[HASH_LEN], void *val)
{
	size_t i = table_slot(t, key);

	memcpy(t->s[i].key, key, HASH_LEN);
	t->s[i].val = val;
}

static void table_del(struct table *t, const uint8_t key[HASH_LEN])
{
	size_t i = table_slot(t, key), j = i;

	if (!t->s[i].val)
		return;
	t->s[i].val = NULL;
	/* Shift back later members of the probe run that can move into the hole. */
	for (;;) {
		j = (j + 1) & t->mask;
		if (!t->s[j].val)
			return;
		size_t k = home(t, t->s[j].key);
		bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);

		if (stays)
			continue;
		t->s[i] = t->s[j];
		t->s[j].val = NULL;
		i = j;
	}
}

struct mempool *mempool_new(size_t max)
{
	struct mempool *m = calloc(1, sizeof(*m));

	if (!m)
		return NULL;
	m->max = max;
	if (table_init(&m->by_hash, max) || table_init(&m->by_signer, max)) {
		mempool_free(m);
		return NULL;
	}
	return m;
}

static void free_signers(struct mempool *m)
{
	for (size_t i = 0; i <= m->by_signer.mask; i++) {
		free(m->by_signer.s[i].val);
		m->by_signer.s[i].val = NULL;
	}
}

void mempool_free(struct mempool *m)
{
	struct mempool_entry *e, *next;

	if (!m)
		return;
	for (e = m->head; e; e = next) {
		next = e->next;
		free(e->bytes);
		free(e);
	}
	if (m->by_signer.s)
		free_signers(m);
	free(m->by_hash.s);
	free(m->by_signer.s);
	free(m);
}

size_t mempool_size(const struct mempool *m)
{
	return m->n;
}

const struct mempool_entry *mempool_first(const struct mempool *m)
{
	return m->head;
}

const struct mempool_entry *mempool_next(const struct mempool_entry *e)
{
	return e->next;
}

const struct mempool_entry *mempool_find(const struct mempool *m, const uint8_t hash[HASH_LEN])
{
	return table_get(&m->by_hash, hash);
}

bool mempool_next_nonce(const struct mempool *m, const uint8_t pub[PUBKEY_LEN], uint64_t *nonce)
{
	const struct signer *sg = table_get(&m->by_signer, pub);

	if (sg)
		*nonce = sg->next_nonce;
	return sg != NULL;
}

/* --- stateful checks ------------------------------------------------------- */

static void short_hex(const uint8_t *p, char out[16])
{
	hex_encode(p, 4, out);
	strcat(out, "\xe2\x80\xa6");
}

static uint64_t debit_of(const struct tx *t)
{
	switch (t->kind) {
	case TX_LEASE_OPEN:
		return t->u.open.deposit;
	case TX_TRANSFER:
		return t->u.transfer.amount;
	case TX_STAKE:
		return t->u.stake.amount;
	}
	return 0;
}

static const char *debit_name(const struct tx *t)
{
	return t->kind == TX_LEASE_OPEN ? "deposit" : t->kind == TX_TRANSFER ? "transfer" : "stake";
}

static int check_lease(struct store *s, const struct tx *t, char *why)
{
	const uint8_t *id = t->kind == TX_LEASE_START ? t->u.start.lease_id :
			    t->kind == TX_USAGE ? t->u.usage.lease_id : t->u.close.lease_id;
	bool is_provider, is_tenant;
	char hex[2 * HASH_LEN + 1];
	struct lease l;
	int rc = store_lease_get(s, id, &l);

	hex_encode(id, LEASE_ID_LEN, hex);
	if (rc == TALLY_E_NOTFOUND)
		return why_set(why, rc, "lease %s does not exist", hex);
	if (rc)
		return rc;
	is_provider = !memcmp(t->signer, l.contract.provider, PUBKEY_LEN);
	is_tenant = !memcmp(t->signer, l.contract.tenant, PUBKEY_LEN);
	if (t->kind != TX_LEASE_CLOSE && !is_provider)
		return why_set(why, TALLY_E_UNAUTHORIZED, "only lease %s's provider may send %s",
			       hex, tx_kind_name(t->kind));
	if (t->kind == TX_LEASE_CLOSE && !is_provider && !is_tenant)
		return why_set(why, TALLY_E_UNAUTHORIZED,
			       "only lease %s's tenant or provider may close it", hex);
	if (l.state == LEASE_CLOSED)
		return why_set(why, TALLY_E_STATE, "lease %s is closed (%s)", hex,
			       lease_close_reason_name(l.close_reason));
	if (t->kind == TX_LEASE_START && l.state != LEASE_OPENED)
		return why_set(why, TALLY_E_STATE, "lease %s is %s; only an opened lease can start",
			       hex, lease_state_name(l.state));
	return 0;
}

/* The checks against state + pending; on success *sig_out is the signer's
 * summary, created if needed (not yet updated for this transaction). */
static int stateful(struct mempool *m, struct store *s, const struct tx *t,
		    struct signer **sig_out, char *why)
{
	struct signer *sg = table_get(&m->by_signer, t->signer);
	struct account a;
	uint64_t expected, debit = debit_of(t);
	char who[16];
	int rc = store_account_get(s, t->signer, &a);

	if (rc && rc != TALLY_E_NOTFOUND)
		return rc;
	short_hex(t->signer, who);
	expected = sg ? sg->next_nonce : a.nonce;
	if (t->nonce < a.nonce)
		return why_set(why, TALLY_E_REPLAY, "nonce %" PRIu64 " already used by account %s",
			       t->nonce, who);
	if (t->nonce < expected)
		return why_set(why, TALLY_E_REPLAY, "nonce %" PRIu64 " already used by a pending"
			       " transaction of account %s", t->nonce, who);
	if (t->nonce > expected)
		return why_set(why, TALLY_E_NONCE, "nonce %" PRIu64 " leaves a gap: account %s's"
			       " next nonce is %" PRIu64, t->nonce, who, expected);
	if (debit) {
		uint64_t pending = sg ? sg->debits : 0;
		uint64_t avail = a.balance > pending ? a.balance - pending : 0;

		if (debit > avail)
			return why_set(why, TALLY_E_BALANCE, "%s %" PRIu64 " exceeds balance %" PRIu64
				       "%s", debit_name(t), debit, avail,
				       pending ? " (after pending transactions)" : "");
	}
	switch (t->kind) {
	case TX_LEASE_START:
	case TX_USAGE:
	case TX_LEASE_CLOSE:
		rc = check_lease(s, t, why);
		break;
	case TX_STAKE:
	case TX_UNSTAKE: {
		struct validator_entry v;

		rc = store_validator_get(s, t->signer, &v);
		if (rc == TALLY_E_NOTFOUND)
			rc = why_set(why, TALLY_E_UNAUTHORIZED, "account %s is not a validator", who);
		break;
	}
	case TX_EVIDENCE:
		rc = why_set(why, TALLY_E_STATE, "evidence transactions are not supported yet");
		break;
	}
	if (rc)
		return rc;
	if (!sg) {
		sg = calloc(1, sizeof(*sg));
		if (!sg)
			return TALLY_E_NOMEM;
		memcpy(sg->pub, t->signer, PUBKEY_LEN);
		sg->next_nonce = a.nonce;
		table_put(&m->by_signer, sg->pub, sg);
	}
	*sig_out = sg;
	return 0;
}

static void account_for(struct signer *sg, const struct tx *t)
{
	uint64_t d = debit_of(t);

	sg->next_nonce = t->nonce + 1;
	sg->debits = sg->debits > UINT64_MAX - d ? UINT64_MAX : sg->debits + d;
}

int mempool_add(struct mempool *m, struct store *s, const struct tx *t, const uint8_t *bytes,
		size_t len, const uint8_t hash[HASH_LEN], char *why)
{
	struct mempool_entry *e;
	struct signer *sg;
	char hex[2 * HASH_LEN + 1];
	int rc;

	why[0] = '\0';
	if (table_get(&m->by_hash, hash)) {
		hex_encode(hash, HASH_LEN, hex);
		return why_set(why, TALLY_E_REPLAY, "transaction %s is already pending", hex);
	}
	if (m->n >= m->max)
		return why_set(why, TALLY_E_CAPACITY, "the mempool is full (%zu transactions);"
			       " try again after the next block", m->n);
	rc = stateful(m, s, t, &sg, why);
	if (rc)
		return rc;
	e = calloc(1, sizeof(*e));
	if (!e || !(e->bytes = malloc(len))) {
		free(e);
		return TALLY_E_NOMEM;
	}
	memcpy(e->hash, hash, HASH_LEN);
	e->tx = *t;
	memcpy(e->bytes, bytes, len);
	e->len = len;
	e->prev = m->tail;
	if (m->tail)
		m->tail->next = e;
	else
		m->head = e;
	m->tail = e;
	m->n++;
	table_put(&m->by_hash, e->hash, e);
	account_for(sg, t);
	return 0;
}

static void unlink_entry(struct mempool *m, struct mempool_entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		m->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		m->tail = e->prev;
	table_del(&m->by_hash, e->hash);
	m->n--;
	free(e->bytes);
	free(e);
}

void mempool_remove(struct mempool *m, const uint8_t hash[HASH_LEN])
{
	struct mempool_entry *e = table_get(&m->by_hash, hash);

	if (e)
		unlink_entry(m, e);
}

long mempool_recheck(struct mempool *m, struct store *s)
{
	struct mempool_entry *e, *next;
	char why[WHY_MAX];
	long dropped = 0;

	free_signers(m);
	for (e = m->head; e; e = next) {
		struct signer *sg;
		int rc = stateful(m, s, &e->tx, &sg, why);

		next = e->next;
		if (rc == TALLY_E_STORE || rc == TALLY_E_NOMEM || rc == TALLY_E_DISKFULL)
			return -rc;
		if (rc) {
			unlink_entry(m, e);
			dropped++;
			continue;
		}
		account_for(sg, &e->tx);
	}
	return dropped;
}
