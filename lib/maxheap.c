/* A binary max-heap of embedded nodes (see maxheap.h). */
#include "lib/maxheap.h"

#include <stdlib.h>

#include "lib/errors.h"

void maxheap_free(struct maxheap *h)
{
	free(h->v);
	h->v = NULL;
	h->n = h->cap = 0;
}

static void place(struct maxheap *h, size_t i, struct maxheap_node *x)
{
	h->v[i] = x;
	x->at = i;
}

/* Moves x, at i, up while its parent's key is smaller; its final index. */
static size_t sift_up(struct maxheap *h, size_t i)
{
	struct maxheap_node *x = h->v[i];

	while (i > 0 && h->v[(i - 1) / 2]->key < x->key) {
		place(h, i, h->v[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	place(h, i, x);
	return i;
}

static void sift_down(struct maxheap *h, size_t i)
{
	struct maxheap_node *x = h->v[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= h->n)
			break;
		if (c + 1 < h->n && h->v[c + 1]->key > h->v[c]->key)
			c++;
		if (h->v[c]->key <= x->key)
			break;
		place(h, i, h->v[c]);
		i = c;
	}
	place(h, i, x);
}

int maxheap_push(struct maxheap *h, struct maxheap_node *x)
{
	if (h->n == h->cap) {
		size_t cap = h->cap ? 2 * h->cap : 4;
		struct maxheap_node **v = realloc(h->v, cap * sizeof(*v));

		if (!v)
			return TALLY_E_NOMEM;
		h->v = v;
		h->cap = cap;
	}
	place(h, h->n++, x);
	sift_up(h, x->at);
	return 0;
}

void maxheap_update(struct maxheap *h, struct maxheap_node *x)
{
	size_t i = x->at;

	if (sift_up(h, i) == i)
		sift_down(h, i);
}

void maxheap_remove(struct maxheap *h, struct maxheap_node *x)
{
	struct maxheap_node *last = h->v[--h->n];

	if (last == x)
		return;
	place(h, x->at, last);
	maxheap_update(h, last);
}

struct maxheap_node *maxheap_top(const struct maxheap *h)
{
	return h->n ? h->v[0] : NULL;
}
