/* The simulator's randomness, event queue and network (see sim.h). */
#include <stdlib.h>
#include <string.h>

#include "tests/sim/sim.h"

/* --- splitmix64 (Steele, Lea, Flood, "Fast splittable pseudorandom number
 * generators", 2014): small, fast, and every seed gives a good stream. */

uint64_t rng_next(struct rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint64_t rng_below(struct rng *r, uint64_t n)
{
	/* The bias of a plain modulo is below 2^-40 for the bounds used here. */
	return n ? rng_next(r) % n : 0;
}

bool rng_ppm(struct rng *r, uint32_t ppm)
{
	return rng_below(r, 1000000) < ppm;
}

/* --- the event queue: a binary heap on (at, seq) ---------------------------------- */

static bool before(const struct event *a, const struct event *b)
{
	return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

void queue_push(struct queue *q, struct event *e)
{
	size_t i;

	if (q->n == q->cap) {
		size_t cap = q->cap ? 2 * q->cap : 1024;
		struct event *grown = realloc(q->ev, cap * sizeof(*grown));

		if (!grown)
			abort();
		q->ev = grown;
		q->cap = cap;
	}
	e->seq = q->seq++;
	i = q->n++;
	while (i > 0 && before(e, &q->ev[(i - 1) / 2])) {
		q->ev[i] = q->ev[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	q->ev[i] = *e;
}

bool queue_pop(struct queue *q, struct event *out)
{
	struct event last;
	size_t i = 0;

	if (!q->n)
		return false;
	*out = q->ev[0];
	last = q->ev[--q->n];
	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= q->n)
			break;
		if (c + 1 < q->n && before(&q->ev[c + 1], &q->ev[c]))
			c++;
		if (!before(&q->ev[c], &last))
			break;
		q->ev[i] = q->ev[c];
		i = c;
	}
	if (q->n)
		q->ev[i] = last;
	return true;
}

void queue_free(struct queue *q)
{
	for (size_t i = 0; i < q->n; i++) {
		free(q->ev[i].bytes);
		free(q->ev[i].bytes2);
	}
	free(q->ev);
	memset(q, 0, sizeof(*q));
}

/* --- the network ------------------------------------------------------------------- */

static uint8_t *copy(const uint8_t *p, size_t n)
{
	uint8_t *c = malloc(n ? n : 1);

	if (!c)
		abort();
	if (n)
		memcpy(c, p, n);
	return c;
}

static bool cut_off(const struct sim *s, int a, int b)
{
	for (int i = 0; i < s->nparts; i++)
		if (s->now >= s->part[i].from && s->now < s->part[i].to &&
		    !(s->part[i].side >> a & 1) != !(s->part[i].side >> b & 1))
			return true;
	return false;
}

static void enqueue(struct sim *s, int from, int to, uint8_t kind, const uint8_t *bytes,
		    size_t len, const uint8_t *bytes2, size_t len2, uint64_t delay)
{
	struct event e = { .at = s->now + delay, .kind = EV_DELIVER, .node = to, .from = from,
			   .msg = kind, .sent_at = s->now };

	e.bytes = copy(bytes, len);
	e.len = len;
	if (bytes2) {
		e.bytes2 = copy(bytes2, len2);
		e.len2 = len2;
	}
	queue_push(&s->q, &e);
}

void net_send(struct sim *s, int from, int to, uint8_t kind, const uint8_t *bytes, size_t len,
	      const uint8_t *bytes2, size_t len2)
{
	bool faulty = s->now < s->heal_at;
	uint64_t base = from < 0 ? 5 * MS : s->latency_ns[from][to];
	uint64_t delay = base + rng_below(&s->rng, base + 1);

	if (from == to)
		return;
	s->f.sent++;
	if (faulty && from >= 0 && cut_off(s, from, to)) {
		s->f.cut_by_partition++;
		return;
	}
	if (faulty && rng_ppm(&s->rng, s->drop_ppm)) {
		s->f.dropped++;
		return;
	}
	if (faulty && rng_ppm(&s->rng, s->slow_ppm)) {
		/* Held up long enough to arrive after later messages. */
		delay += rng_below(&s->rng, 3 * SEC);
		s->f.delayed++;
	}
	enqueue(s, from, to, kind, bytes, len, bytes2, len2, delay);
	if (faulty && rng_ppm(&s->rng, s->dup_ppm)) {
		s->f.duplicated++;
		enqueue(s, from, to, kind, bytes, len, bytes2, len2,
			base + rng_below(&s->rng, 2 * base + 1));
	}
}
