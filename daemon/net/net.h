/* The peer transport: persistent TLS 1.3 connections between nodes, each
 * side proving its Ed25519 node key (daemon/net/tlsid.h), messages in
 * canonical frames (daemon/net/wire.h), on a libevent loop in one thread of
 * its own. Over it run
 *   - transaction gossip: a transaction that enters this node's mempool
 *     (from the API, the keeper or a peer) goes to every peer once; a
 *     bounded seen-set stops loops and repeats;
 *   - block sync: when a peer's tip is above this node's, committed blocks
 *     and their certificates are fetched in order and applied with
 *     ledger_apply_block (the auditor's verification, then execution); a
 *     peer that serves a block that does not verify is dropped;
 *   - consensus messages: proposals (with their block) and votes, handed to
 *     the engine set with net_set_consensus and sent with
 *     net_broadcast_proposal / net_broadcast_vote.
 *
 * Who may connect: a peer must prove a key that is expected: the key
 * configured for the address dialed, or (inbound, or an address configured
 * without a key) a key of a configured peer, an `allow` key, or a member of
 * the current validator set. A peer that breaks the protocol (garbage, a
 * frame above its type's limit, a message out of turn, a flood, another
 * chain, a block that does not verify) is disconnected and its key (or,
 * before it proved one, its address) refused for a while that doubles with
 * each offence. docs/PROTOCOL.md has the messages, docs/OPERATING.md the
 * operator's view.
 *
 * Thread safety: net_status and the broadcast functions may be called from
 * any thread; the consensus callbacks run on the network thread. */
#ifndef TALLY_NET_H
#define TALLY_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/config.h"
#include "daemon/ledger/ledger.h"
#include "lib/chain/block.h"
#include "lib/crypto.h"

struct net;

struct net_config {
	const struct config_peers *peers;    /* borrowed; outlives the transport */
	const struct tally_key *key;         /* the node key, borrowed */
	const uint8_t *genesis_hash;         /* HASH_LEN */
	const char *chain_id;
	struct ledger *ledger;               /* borrowed */
};

/* Binds the peer listen address (when configured), starts the network
 * thread and dials the configured peers. why[WHY_MAX] on failure (an
 * address that cannot be bound, TLS set-up). The ledger's admit hook is
 * taken for gossip. */
int net_start(struct net **out, const struct net_config *cfg, char *why);
/* Closes every connection and joins the thread. NULL is a no-op. */
void net_stop(struct net *n);

/* --- consensus ----------------------------------------------------------- */

/* What the consensus engine receives. Each message is decoded strictly
 * (daemon/net/wire.h) and was not seen before, but its signature is NOT
 * checked: that, the signer's membership and the block's validity are the
 * engine's. `from` is the peer's key. The block is a view valid for the
 * call only. Callbacks run on the network thread and must not block; an
 * engine on its own thread queues them. To relay a message it accepted, the
 * engine broadcasts it again (the seen-set keeps it from returning). */
struct net_consensus {
	void *ctx;
	void (*on_proposal)(void *ctx, const uint8_t from[PUBKEY_LEN], const struct proposal *p,
			    const uint8_t sig[SIG_LEN], const uint8_t *block, size_t block_len);
	void (*on_vote)(void *ctx, const uint8_t from[PUBKEY_LEN], const struct vote *v,
			const uint8_t validator[PUBKEY_LEN], const uint8_t sig[SIG_LEN]);
};
/* Sets (or with NULL clears) the engine. Until one is set, proposals and
 * votes from peers are decoded, counted and dropped. Thread-safe. */
void net_set_consensus(struct net *n, const struct net_consensus *c);

/* Queue a signed proposal with its encoded block (block_encode), or a signed
 * vote, for every connected peer. 0, TALLY_E_TOOLONG for a block above the
 * frame limit, TALLY_E_CAPACITY when the send queue is full (the engine's
 * timeouts retry), TALLY_E_NOMEM. Thread-safe. */
int net_broadcast_proposal(struct net *n, const struct proposal *p, const uint8_t sig[SIG_LEN],
			   const uint8_t *block, size_t block_len);
int net_broadcast_vote(struct net *n, const struct vote *v, const uint8_t validator[PUBKEY_LEN],
		       const uint8_t sig[SIG_LEN]);

/* --- status -------------------------------------------------------------- */

struct net_peer_info {
	uint8_t key[PUBKEY_LEN];
	char addr[128];                      /* remote host:port */
	bool outbound;                       /* this node dialed it */
	uint64_t height;                     /* its tip, as it last said */
	uint64_t connected_s;                /* seconds since the handshake */
	uint64_t msgs_in, msgs_out;
};

struct net_stats {
	size_t peers;                        /* connections past the handshake */
	size_t configured;                   /* `peer =` lines */
	bool caught_up;                      /* no connected peer is ahead (see OPERATING.md) */
	uint64_t height;                     /* this node's tip */
	uint64_t best_peer_height;           /* highest tip a connected peer reported */
	uint64_t blocks_synced;              /* blocks fetched from peers and applied */
	uint64_t sync_requests;              /* GET_BLOCKS sent */
	uint64_t blocks_served;              /* BLOCK messages sent to peers */
	uint64_t txs_in;                     /* transactions from peers admitted here */
	uint64_t txs_out;                    /* TX messages sent */
	uint64_t consensus_in;               /* proposals and votes received */
	uint64_t peers_dropped;              /* disconnected for breaking the protocol */
	uint64_t handshakes_refused;         /* unknown key, another chain, failed TLS */
};

/* A snapshot: the figures, and up to max connected peers into peers (may be
 * NULL with max 0); *npeers receives how many were written. Thread-safe. */
void net_status(struct net *n, struct net_stats *st, struct net_peer_info *peers, size_t max,
		size_t *npeers);

#endif
