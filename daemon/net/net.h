/* The peer transport: persistent TLS 1.3 connections between nodes, each
 * side proving its Ed25519 node key (daemon/net/tlsid.h), messages in
 * canonical frames (daemon/net/wire.h), on a libevent loop in one thread of
 * its own. Over it run
 *   - transaction gossip: a transaction that enters this node's mempool
 *     (from the API, the keeper or a peer) goes to every peer once; a
 *     bounded seen-set stops loops and repeats;
 *   - block sync: when a peer's tip is above this node's, committed blocks
 *     with their certificates and the certificate of the block before each
 *     are fetched in order and applied with ledger_apply_synced_block (the
 *     auditor's verification, then execution); a peer that serves a block
 *     that does not verify is dropped; a block dated too far ahead of this
 *     node's clock is refused (not the peer's fault);
 *   - consensus messages: proposals (with their block) and votes in the
 *     engine's encoding, handed to the engine set with net_set_consensus
 *     and sent with net_broadcast_consensus / net_relay_consensus.
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
 * Thread safety: net_status, the broadcast functions, net_peer_misbehaved
 * and net_sync_soon may be called from any thread; the consensus callbacks
 * run on the network thread. */
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

/* What the consensus engine receives: each message in the engine's own
 * encoding (daemon/consensus/msg.h), its form checked by cs_msg_decode but
 * its signature NOT: that, the signer's membership and the block's validity
 * are the engine's. Nothing is deduplicated here: peers send messages again
 * on purpose (regossip), and the engine recognises what it holds. `from` is
 * the peer's key; the bytes are a view valid for the call only. Callbacks
 * run on the network thread and must not block: an engine on its own
 * thread queues them. on_peer (may be NULL): a peer finished its handshake,
 * so the engine may send again what it holds for the height. */
struct net_consensus {
	void *ctx;
	void (*on_message)(void *ctx, const uint8_t from[PUBKEY_LEN], const uint8_t *msg,
			   size_t len);
	void (*on_peer)(void *ctx, const uint8_t key[PUBKEY_LEN]);
};
/* Sets (or with NULL clears) the engine. Until one is set, consensus
 * messages from peers are decoded, counted and dropped. Thread-safe. */
void net_set_consensus(struct net *n, const struct net_consensus *c);

/* Queue a consensus message (msg.h bytes) for every connected peer
 * (net_broadcast_consensus), or for every one but the peer it came from
 * (net_relay_consensus: a message the engine accepted from `from`, sent on
 * once so that peers not connected to its signer see it). 0,
 * TALLY_E_TOOLONG above the frame limit, TALLY_E_CAPACITY when the send
 * queue is full (the engine's regossip sends again), TALLY_E_NOMEM.
 * Thread-safe; never blocks on the network. */
int net_broadcast_consensus(struct net *n, const uint8_t *msg, size_t len);
int net_relay_consensus(struct net *n, const uint8_t *msg, size_t len,
			const uint8_t from[PUBKEY_LEN]);

/* The engine found that peer `key` sent what no honest node sends (a
 * message whose signature does not verify, signed by a key that is not a
 * validator): it is dropped and refused for a while, as for any breach of
 * the protocol (why says what it did). Thread-safe; acted on by the
 * network thread. */
void net_peer_misbehaved(struct net *n, const uint8_t key[PUBKEY_LEN], const char *why);

/* Compare this node's tip with its peers' now and fetch what is missing
 * (the engine saw messages of a later height). Thread-safe. */
void net_sync_soon(struct net *n);

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
	uint64_t txs_intake_dropped;         /* from peers, dropped: too many waiting for a check */
	uint64_t txs_out;                    /* transactions sent to peers (one per peer) */
	uint64_t txs_reoffered;              /* of them, pending ones offered a peer again */
	uint64_t consensus_in;               /* proposals and votes received */
	uint64_t consensus_out;              /* proposals and votes sent (each peer counts) */
	uint64_t peers_dropped;              /* disconnected for breaking the protocol */
	uint64_t handshakes_refused;         /* unknown key, another chain, failed TLS */
};

/* A snapshot: the figures, and up to max connected peers into peers (may be
 * NULL with max 0); *npeers receives how many were written. Thread-safe. */
void net_status(struct net *n, struct net_stats *st, struct net_peer_info *peers, size_t max,
		size_t *npeers);

#endif
