#include "daemon/api/ratelimit.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "lib/table.h"
#include "lib/errors.h"

#define ADDR_KEY_LEN 9   /* family byte, then 4 (IPv4) or 8 (IPv6 /64) bytes */

struct bucket {
	uint8_t key[ADDR_KEY_LEN];
	uint64_t milli_tokens;   /* 1000 per request */
	uint64_t last_ms;
	int oom;
	UT_hash_handle hh;
};

struct ratelimit {
	pthread_mutex_t lock;
	uint64_t per_s;
	uint64_t burst_milli;
	struct bucket *table;    /* in insertion order: the head is the oldest */
	size_t n;
};

int ratelimit_new(struct ratelimit **out, uint32_t per_s, uint32_t burst)
{
	struct ratelimit *rl = calloc(1, sizeof(*rl));

	if (!rl)
		return TALLY_E_NOMEM;
	pthread_mutex_init(&rl->lock, NULL);
	rl->per_s = per_s;
	rl->burst_milli = (uint64_t)(burst ? burst : 1) * 1000;
	*out = rl;
	return 0;
}

void ratelimit_free(struct ratelimit *rl)
{
	struct bucket *b, *tmp;

	if (!rl)
		return;
	HASH_ITER(hh, rl->table, b, tmp) {
		HASH_DEL(rl->table, b);
		free(b);
	}
	pthread_mutex_destroy(&rl->lock);
	free(rl);
}

static void addr_key(const struct sockaddr *addr, uint8_t key[ADDR_KEY_LEN])
{
	memset(key, 0, ADDR_KEY_LEN);
	if (addr && addr->sa_family == AF_INET) {
		key[0] = 4;
		memcpy(key + 1, &((const struct sockaddr_in *)addr)->sin_addr, 4);
	} else if (addr && addr->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)addr)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a)) {
			key[0] = 4;
			memcpy(key + 1, a->s6_addr + 12, 4);
		} else {
			key[0] = 6;
			memcpy(key + 1, a->s6_addr, 8);
		}
	}
}

static void refill(struct ratelimit *rl, struct bucket *b, uint64_t now_ms)
{
	uint64_t dt = now_ms > b->last_ms ? now_ms - b->last_ms : 0;

	/* per_s tokens a second is per_s milli-tokens a millisecond. */
	if (dt > rl->burst_milli / (rl->per_s ? rl->per_s : 1))
		b->milli_tokens = rl->burst_milli;
	else
		b->milli_tokens += dt * rl->per_s;
	if (b->milli_tokens > rl->burst_milli)
		b->milli_tokens = rl->burst_milli;
	b->last_ms = now_ms;
}

/* Makes room for one more address. */
static void evict(struct ratelimit *rl, uint64_t now_ms)
{
	struct bucket *b, *tmp;

	HASH_ITER(hh, rl->table, b, tmp) {
		refill(rl, b, now_ms);
		if (b->milli_tokens == rl->burst_milli) {
			HASH_DEL(rl->table, b);
			free(b);
			rl->n--;
		}
	}
	if (rl->n >= RATELIMIT_ADDRS && rl->table) {
		b = rl->table;
		HASH_DEL(rl->table, b);
		free(b);
		rl->n--;
	}
}

uint32_t ratelimit_take(struct ratelimit *rl, const struct sockaddr *addr, uint64_t now_ms)
{
	uint8_t key[ADDR_KEY_LEN];
	struct bucket *b;
	uint32_t wait_s = 0;

	if (!rl || !rl->per_s)
		return 0;
	addr_key(addr, key);
	pthread_mutex_lock(&rl->lock);
	HASH_FIND(hh, rl->table, key, ADDR_KEY_LEN, b);
	if (!b) {
		if (rl->n >= RATELIMIT_ADDRS)
			evict(rl, now_ms);
		b = calloc(1, sizeof(*b));
		if (!b)
			goto out;   /* no memory to count: let it through */
		memcpy(b->key, key, ADDR_KEY_LEN);
		b->milli_tokens = rl->burst_milli;
		b->last_ms = now_ms;
		HASH_ADD(hh, rl->table, key, ADDR_KEY_LEN, b);
		if (b->oom) {
			free(b);
			goto out;
		}
		rl->n++;
	}
	refill(rl, b, now_ms);
	if (b->milli_tokens >= 1000) {
		b->milli_tokens -= 1000;
	} else {
		uint64_t ms = (1000 - b->milli_tokens + rl->per_s - 1) / rl->per_s;
		wait_s = (uint32_t)((ms + 999) / 1000);
		if (wait_s == 0)
			wait_s = 1;
	}
out:
	pthread_mutex_unlock(&rl->lock);
	return wait_s;
}
