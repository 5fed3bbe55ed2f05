/* The bounded seen-set (see seen.h): a uthash table under the keyed hash
 * (lib/table.h), and a ring of its entries in insertion order for eviction;
 * a forgotten entry leaves an empty slot, which eviction passes over. */
#include "lib/seen.h"

#include <stdlib.h>
#include <string.h>

#include "lib/table.h"

struct seen_entry {
	uint8_t hash[HASH_LEN];
	size_t slot;                 /* its place in the ring */
	uint64_t marks;              /* seen_add_marked */
	int oom;
	UT_hash_handle hh;
};

struct seen {
	struct seen_entry *table;
	struct seen_entry **ring;    /* oldest at head */
	size_t cap, head, n;
};

struct seen *seen_new(size_t cap)
{
	struct seen *s = calloc(1, sizeof(*s));

	if (!s || !cap || !(s->ring = calloc(cap, sizeof(*s->ring)))) {
		free(s);
		return NULL;
	}
	s->cap = cap;
	return s;
}

void seen_free(struct seen *s)
{
	if (!s)
		return;
	HASH_CLEAR(hh, s->table);
	for (size_t i = 0; i < s->n; i++)
		free(s->ring[(s->head + i) % s->cap]);
	free(s->ring);
	free(s);
}

bool seen_has(const struct seen *s, const uint8_t hash[HASH_LEN])
{
	struct seen_entry *e;

	HASH_FIND(hh, s->table, hash, HASH_LEN, e);
	return e != NULL;
}

bool seen_add(struct seen *s, const uint8_t hash[HASH_LEN])
{
	return seen_add_marked(s, hash, 0);
}

bool seen_add_marked(struct seen *s, const uint8_t hash[HASH_LEN], uint64_t marks)
{
	struct seen_entry *e;

	HASH_FIND(hh, s->table, hash, HASH_LEN, e);
	if (e) {
		e->marks |= marks;
		return false;
	}
	if (s->n == s->cap) {
		struct seen_entry *old = s->ring[s->head];

		if (old) {
			HASH_DEL(s->table, old);
			free(old);
		}
		s->head = (s->head + 1) % s->cap;
		s->n--;
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return false;
	memcpy(e->hash, hash, HASH_LEN);
	e->marks = marks;
	HASH_ADD(hh, s->table, hash, HASH_LEN, e);
	if (e->oom) {
		free(e);
		return false;
	}
	e->slot = (s->head + s->n) % s->cap;
	s->ring[e->slot] = e;
	s->n++;
	return true;
}

void seen_forget(struct seen *s, const uint8_t hash[HASH_LEN])
{
	struct seen_entry *e;

	HASH_FIND(hh, s->table, hash, HASH_LEN, e);
	if (!e)
		return;
	HASH_DEL(s->table, e);
	s->ring[e->slot] = NULL;
	free(e);
}

uint64_t seen_marks(const struct seen *s, const uint8_t hash[HASH_LEN])
{
	struct seen_entry *e;

	HASH_FIND(hh, s->table, hash, HASH_LEN, e);
	return e ? e->marks : 0;
}

void seen_unmark(struct seen *s, uint64_t marks)
{
	for (struct seen_entry *e = s->table; e; e = e->hh.next)
		e->marks &= ~marks;
}

size_t seen_size(const struct seen *s)
{
	return HASH_COUNT(s->table);
}
