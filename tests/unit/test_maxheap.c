/* The embedded max-heap (lib/maxheap.c) against a plain array: after every
 * push, removal from any place and key change, the top has the largest key
 * and every node's index is where it sits. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "lib/maxheap.h"

enum { NODES = 200, STEPS = 10000 };

/* Whether h holds exactly the nodes marked in, each at its index, the top
 * the largest, every parent no smaller than its children (plain checks:
 * Check's assertions cost a write each). */
static int heap_ok(const struct maxheap *h, const struct maxheap_node *nodes, const int *in)
{
	uint64_t max = 0;
	size_t n = 0;

	for (int i = 0; i < NODES; i++)
		if (in[i]) {
			n++;
			if (nodes[i].key > max)
				max = nodes[i].key;
			if (nodes[i].at >= h->n || h->v[nodes[i].at] != &nodes[i])
				return 0;
		}
	if (h->n != n)
		return 0;
	if (!n)
		return maxheap_top(h) == NULL;
	if (maxheap_top(h)->key != max)
		return 0;
	for (size_t i = 1; i < h->n; i++)
		if (h->v[i]->key > h->v[(i - 1) / 2]->key)
			return 0;
	return 1;
}

START_TEST(test_against_array)
{
	static struct maxheap_node nodes[NODES];
	static int in[NODES];
	struct maxheap h = { 0 };
	unsigned seed = 7;

	for (int step = 0; step < STEPS; step++) {
		int i = rand_r(&seed) % NODES, op = rand_r(&seed) % 3;

		if (!in[i]) {
			/* Few distinct keys: equal ones are the common case. */
			nodes[i].key = (uint64_t)(rand_r(&seed) % 50);
			ck_assert_int_eq(maxheap_push(&h, &nodes[i]), 0);
			in[i] = 1;
		} else if (op == 0) {
			maxheap_remove(&h, &nodes[i]);
			in[i] = 0;
		} else {
			nodes[i].key = (uint64_t)(rand_r(&seed) % 50);
			maxheap_update(&h, &nodes[i]);
		}
		ck_assert_msg(heap_ok(&h, nodes, in), "step %d", step);
	}
	/* Emptied from the top, the keys come out in order. */
	for (uint64_t last = UINT64_MAX; h.n;) {
		struct maxheap_node *top = maxheap_top(&h);

		ck_assert_uint_le(top->key, last);
		last = top->key;
		maxheap_remove(&h, top);
	}
	ck_assert_ptr_null(maxheap_top(&h));
	maxheap_free(&h);
	ck_assert_ptr_null(h.v);
}
END_TEST

Suite *maxheap_suite(void)
{
	Suite *s = suite_create("maxheap");
	TCase *tc = tcase_create("ops");

	tcase_add_test(tc, test_against_array);
	suite_add_tcase(s, tc);
	return s;
}
