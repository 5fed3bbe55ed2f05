/* Transactions from peers, checked off the network thread (see net_impl.h).
 *
 * A TXS frame costs its receiver a signature check per transaction and, to
 * enter the mempool, the mempool's lock. Done on the network thread, that
 * work delayed every frame behind it on every connection: under load a
 * proposal waited hundreds of milliseconds behind the transactions gossiped
 * before it. So the network thread only marks a transaction seen and queues
 * it in a txqueue (daemon/ledger/txqueue.h, as the API's asynchronous
 * submissions are), whose thread hands what waits, in arrival order, to the
 * ledger as batches, so an account's transactions enter this node's mempool
 * in the order they came. The ledger relays each one that enters
 * (gossip_admitted) to every peer but the one it came from.
 *
 * What the ledger refused: a forged transaction gets its sender dropped
 * (net_peer_misbehaved); one refused only for now (its nonce too far
 * ahead of what this node holds, no room, no memory, the disk short) is
 * taken out of the seen-set again (net_unsee), so the same transaction from
 * another peer is judged again instead of lost to this node; one merely
 * stale (its nonce used, already pending) is not held against anyone.
 *
 * The queue is bounded (NET_INTAKE_MAX transactions, NET_INTAKE_BYTES), and
 * so is each sender's share of it (NET_INTAKE_PEER_MAX, NET_INTAKE_PEER_BYTES:
 * one peer flooding it would otherwise leave no room for the transactions
 * of the others): a transaction beyond either is dropped, counted, and also taken out of the
 * seen-set. Nothing is lost for the chain: the peers that sent it keep it
 * in their mempools, and a block that carries it reaches this node anyway. */
#include "daemon/net/net_impl.h"

#include <stdio.h>
#include <string.h>

#include "daemon/ledger/txqueue.h"
#include "lib/errors.h"

/* Errors that only a bad sender causes: the bytes are not a transaction of
 * this chain signed by its signer. */
static bool forged(int rc)
{
	return rc == TALLY_E_TRUNCATED || rc == TALLY_E_TRAILING || rc == TALLY_E_VERSION ||
	       rc == TALLY_E_TOOLONG || rc == TALLY_E_ENCODING || rc == TALLY_E_SIGNATURE ||
	       rc == TALLY_E_CHAIN_ID;
}

/* Refusals that say nothing of the transaction, only of this node now. */
static bool for_now(int rc)
{
	return rc == TALLY_E_NONCE || rc == TALLY_E_CAPACITY || rc == TALLY_E_NOMEM ||
	       rc == TALLY_E_DISKFULL || rc == TALLY_E_STORE;
}

/* One batch's answers (the queue's thread): each refusal judged. */
static void settled(void *ctx, const struct ledger_batch_item *items, size_t k)
{
	struct net *n = ctx;

	for (size_t i = 0; i < k; i++) {
		if (!items[i].rc) {
			STAT_ADD(n, txs_in, 1);
		} else if (forged(items[i].rc)) {
			char line[WHY_MAX + 64];

			snprintf(line, sizeof(line), "it relayed a transaction that is not valid: %s",
				 items[i].why[0] ? items[i].why : tally_strerror(items[i].rc));
			net_peer_misbehaved(n, items[i].origin, line);
		} else if (for_now(items[i].rc)) {
			net_unsee(n, items[i].hash);
		}
	}
}

int intake_new(struct net *n, char *why)
{
	struct txqueue_config cfg = {
		.ledger = n->ledger,
		.max_txs = NET_INTAKE_MAX,
		.max_bytes = NET_INTAKE_BYTES,
		.max_origin_txs = NET_INTAKE_PEER_MAX,
		.max_origin_bytes = NET_INTAKE_PEER_BYTES,
		/* Stopping, what waits is dropped: its senders keep it. */
		.drain_at_stop = false,
		.settled = settled,
		.ctx = n,
		.what = "transactions from peers",
	};

	n->intake = txqueue_new(&cfg, NULL, why);
	return n->intake ? 0 : TALLY_E_NOMEM;
}

int intake_start(struct net *n, char *why)
{
	return txqueue_start(n->intake, why);
}

void intake_stop(struct net *n)
{
	txqueue_free(n->intake);
	n->intake = NULL;
}

bool intake_push(struct net *n, const uint8_t from[PUBKEY_LEN], const uint8_t *bytes, size_t len,
		 const uint8_t hash[HASH_LEN])
{
	char why[WHY_MAX];

	return txqueue_put(n->intake, bytes, len, hash, from, why) == 0;
}
