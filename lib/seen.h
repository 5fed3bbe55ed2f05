/* A bounded set of hashes that forgets the oldest first: at most `cap`
 * hashes. The peer transport keeps the transactions it relayed or refused
 * in one (daemon/net/gossip.c: gossip never sends one twice to a peer nor
 * loops; a forgotten hash that comes back is judged again by the mempool,
 * which refuses what it holds or what has committed); the ledger the
 * transactions whose signatures it verified (daemon/ledger/ledger.c). Not
 * thread safe: its owner locks it or keeps it to one thread. */
#ifndef TALLY_SEEN_H
#define TALLY_SEEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/crypto.h"

struct seen;

struct seen *seen_new(size_t cap);
void seen_free(struct seen *s);
bool seen_has(const struct seen *s, const uint8_t hash[HASH_LEN]);
/* Adds hash (forgetting the oldest when full). Returns true when it was not
 * there before; false when it was, or when memory ran out (then the caller
 * treats it as seen: never relaying is the safe side). */
bool seen_add(struct seen *s, const uint8_t hash[HASH_LEN]);
/* seen_add that also ORs marks into the hash's marks, whether it was there
 * or not (when memory ran out, nothing is marked). The peer transport marks
 * each transaction with the peers that sent it (one bit each), so that it
 * relays it to the others only. */
bool seen_add_marked(struct seen *s, const uint8_t hash[HASH_LEN], uint64_t marks);
/* The marks of hash (0 when it is not there). */
uint64_t seen_marks(const struct seen *s, const uint8_t hash[HASH_LEN]);
/* Clears marks from every hash (a peer gone: its bit may go to another). */
void seen_unmark(struct seen *s, uint64_t marks);
/* Takes hash out again (nothing when it is not there): a transaction this
 * node refused for now (its nonce too far ahead, no room) may come back
 * from another peer and is judged again then. */
void seen_forget(struct seen *s, const uint8_t hash[HASH_LEN]);
/* Hashes held. */
size_t seen_size(const struct seen *s);

#endif
