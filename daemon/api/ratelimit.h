/* Requests per client address: a token bucket per address (rate per second,
 * burst at once), so one client cannot take the API's threads from the
 * others. An IPv6 client is counted by its /64, which is what one host
 * usually gets; an IPv4-mapped IPv6 address counts as the IPv4 address.
 *
 * The table holds at most RATELIMIT_ADDRS addresses. It forgets an address
 * whose bucket is full again (it has been idle long enough to lose nothing),
 * and when all are busy the oldest: a flood from many addresses can make the
 * limiter forget, never refuse an address that has not used its own share. */
#ifndef TALLY_API_RATELIMIT_H
#define TALLY_API_RATELIMIT_H

#include <stdint.h>
#include <sys/socket.h>

#define RATELIMIT_ADDRS 4096

struct ratelimit;

/* per_s 0 makes a limiter that allows everything. 0 or TALLY_E_NOMEM. */
int ratelimit_new(struct ratelimit **out, uint32_t per_s, uint32_t burst);
void ratelimit_free(struct ratelimit *rl);

/* Takes one request for addr at now_ms (a monotonic clock). 0 when it may
 * go ahead; otherwise the whole seconds (at least 1) until it may. Thread-safe. */
uint32_t ratelimit_take(struct ratelimit *rl, const struct sockaddr *addr, uint64_t now_ms);

#endif
