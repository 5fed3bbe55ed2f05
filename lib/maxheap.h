/* A binary max-heap of nodes embedded in their owners' structs, each node
 * knowing its place, so that one can leave or change its key in O(log n)
 * wherever it is. The mempool keeps two kinds: the accounts that hold
 * early transactions by how many they hold, and each account's held
 * transactions by nonce (daemon/ledger/mempool.c), to find in O(1) the
 * transaction a full hold evicts. Equal keys come out in no set order. Not
 * thread safe. */
#ifndef TALLY_MAXHEAP_H
#define TALLY_MAXHEAP_H

#include <stddef.h>
#include <stdint.h>

struct maxheap_node {
	uint64_t key;
	size_t at;                       /* its index in the heap's array */
};

struct maxheap {
	struct maxheap_node **v;         /* v[0] has the largest key */
	size_t n, cap;
};

/* An empty heap is all zeros; maxheap_free returns one to that. */
void maxheap_free(struct maxheap *h);
/* Adds x (its key set): 0, or TALLY_E_NOMEM with h unchanged. */
int maxheap_push(struct maxheap *h, struct maxheap_node *x);
/* Takes x, which is in h, out. */
void maxheap_remove(struct maxheap *h, struct maxheap_node *x);
/* Puts x, which is in h, back in its place after its key changed. */
void maxheap_update(struct maxheap *h, struct maxheap_node *x);
/* A node with the largest key, or NULL when h is empty. */
struct maxheap_node *maxheap_top(const struct maxheap *h);

#endif
