/* The transport's insides, shared by its files: net.c (loop, connections,
 * handshake, frames, limits), gossip.c (transactions and consensus
 * messages), sync.c (block sync). Everything here runs on the network
 * thread unless it says otherwise. Nothing outside daemon/net/ includes it. */
#ifndef TALLY_NET_IMPL_H
#define TALLY_NET_IMPL_H

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/socket.h>

#include "daemon/net/net.h"
#include "lib/seen.h"
#include "daemon/net/wire.h"
#include "lib/codec.h"

struct txqueue;

#define NET_TICK_MS 100
#define NET_HANDSHAKE_MS 10000        /* TLS and HELLO must be done by then */
#define NET_PING_MS 10000             /* a PING when nothing was sent for this long */
#define NET_IDLE_MS 45000             /* nothing received for this long: gone */
#define NET_DIAL_MIN_MS 250           /* reconnect backoff: first wait ... */
#define NET_DIAL_MAX_MS 30000         /* ... doubling up to this */
#define NET_BAN_MIN_MS 5000           /* first ban of a misbehaving key/address */
#define NET_BAN_MAX_MS 600000
#define NET_BANS_MAX 256
#define NET_ADDR_FAILS_PER_S 1
#define NET_ADDR_FAILS_BURST 10
#define NET_PREAUTH_PER_ADDR 8        /* connections from one address before HELLO */
#define NET_PREAUTH_SLACK 16          /* beyond max_peers, for handshakes */
#define NET_SYNC_TIMEOUT_MS 15000     /* a GET_BLOCKS not answered by then: ask another */
#define NET_OUTBUF_MAX (64u << 20)    /* stop serving blocks above this much unsent */
/* A peer that takes nothing of what it is sent (its output waits, none of
 * it goes) for this long is gone, as one that sends nothing; and one with
 * this much unsent is closed at once, whatever it takes: what waits for a
 * peer is bounded, not just what a block sync adds (above that, one BLOCK
 * or proposal of up to 41 MB, and consensus messages). */
#define NET_STALL_MS NET_IDLE_MS
#define NET_OUTBUF_HARD (128u << 20)
#define NET_PENDING_SEND_MAX 10000    /* mempool transactions sent to a new peer */
/* Each peer is offered again, this often, the pending transactions it did
 * not send this node (up to NET_PENDING_SEND_MAX): a peer's intake drops
 * what comes while it is full (NET_INTAKE_MAX), and nothing else would
 * bring a transaction it dropped back to it before they reconnect. It
 * ignores those it already has (its seen-set) without checking them. */
#define NET_REOFFER_MS 15000
#define NET_SEEN_TXS 100000
#define NET_QUEUE_MAX 20000           /* outgoing messages from other threads */
#define NET_ACCUSED_MAX 32            /* peers the engine found misbehaving, to drop */
#define NET_UNSEE_MAX 4096            /* refused-for-now hashes a turn forgets (more stay seen) */
#define NET_INTAKE_MAX 20000          /* peers' transactions waiting for a check ... */
#define NET_INTAKE_BYTES (64u << 20)  /* ... and their bytes; beyond either, dropped */
/* One peer's share of the intake: what waits from one sender is at most
 * half of it, so a peer flooding transactions (valid ones that are refused
 * only when checked cost it nothing) leaves room for the others'. */
#define NET_INTAKE_PEER_MAX (NET_INTAKE_MAX / 2)
#define NET_INTAKE_PEER_BYTES (NET_INTAKE_BYTES / 2)

enum conn_state {
	CONN_TLS,          /* TCP up, TLS handshake running */
	CONN_HELLO,        /* TLS up, HELLO sent, waiting for the peer's */
	CONN_READY,        /* a peer */
	CONN_DEAD,         /* closed; freed at the next tick */
};

struct bucket {
	double tokens;
	uint64_t at_ms;
};

struct conn {
	struct net *net;
	struct conn *next;
	struct bufferevent *bev;
	SSL *ssl;
	enum conn_state state;
	bool outbound;
	int dial;                          /* index in net->dials it came from, or -1 */
	char addr[128];                    /* remote host:port, for logs */
	struct sockaddr_storage sa;
	bool key_known;
	uint8_t key[PUBKEY_LEN];
	/* Its bit in the seen-set's marks while it is a peer (0: none left, more
	 * than 64 peers): the transactions it sent are not relayed back to it. */
	uint64_t mark;
	char refusal[160];                 /* why the verify callback refused the key */
	uint64_t opened_ms, ready_ms, last_rx_ms, last_tx_ms;
	uint64_t offered_ms;               /* pending transactions last offered */
	/* When its output last drained some bytes, or became non-empty. */
	uint64_t drained_ms;
	struct bucket msgs;
	uint64_t msgs_in, msgs_out;
	/* The peer's tip. */
	uint64_t height;
	uint8_t last_block_id[HASH_LEN];
	/* Block sync: the range asked of this peer, the next height expected. */
	bool sync_asked;
	uint64_t sync_next, sync_to, sync_deadline_ms;
	uint64_t sync_skip_until_ms;       /* did not answer: ask others first */
};

/* A `peer =` line: when to dial it next. */
struct dial {
	const struct config_peer *cfg;
	uint64_t next_ms;
	uint64_t backoff_ms;
	struct conn *conn;                 /* the attempt or connection, or NULL */
	bool key_learned;                  /* a key-less line: the key found there */
	bool refusal_said;                 /* "refused this node's key" logged once */
	uint8_t key[PUBKEY_LEN];
};

/* A key that broke the protocol, or an address whose handshakes keep
 * failing: refused until until_ms. An address spends a token per failed
 * handshake (NET_ADDR_FAILS_PER_S, burst NET_ADDR_FAILS_BURST) and is banned
 * when it has none, so an honest node retrying with backoff never is. */
struct ban {
	bool used, is_key;
	uint8_t id[PUBKEY_LEN];            /* key, or the address's bytes */
	uint64_t until_ms;
	unsigned strikes;
	struct bucket fails;               /* addresses only */
};

/* A frame queued by another thread for every peer. A transaction goes
 * through the seen-set (once per peer); a consensus message is sent
 * whenever queued (the engine sends again on purpose). */
struct outmsg {
	uint8_t *frame;                    /* a transaction: its bytes (sent in TXS) */
	size_t len;
	uint8_t hash[HASH_LEN];            /* seen-set entry (transactions) */
	bool consensus;
	/* A relay: not back to this key. A transaction from a peer, marked
	 * seen when it arrived, goes to the others without the seen-set. */
	bool has_except_key;
	uint8_t except_key[PUBKEY_LEN];
	uint64_t holders;                  /* a relay: the peers that sent it (their marks) */
	struct outmsg *next;
};

/* A peer the engine found misbehaving, for the network thread to drop. */
struct accused {
	uint8_t key[PUBKEY_LEN];
	char why[160];
};

struct net {
	struct config_peers cfg;
	const struct tally_key *key;
	uint8_t genesis_hash[HASH_LEN];
	char chain_id[CHAIN_ID_MAX + 1];
	struct ledger *ledger;

	struct event_base *base;
	struct evconnlistener *listener;
	struct event *tick, *wake;
	SSL_CTX *tls;
	pthread_t thread;
	bool running;

	/* Guards conns (the list and what net_status reads of each), the
	 * stats, the out queue and the consensus engine. The network thread
	 * takes it to change them; other threads to read. */
	pthread_mutex_t mu;
	struct conn *conns;
	struct dial *dials;
	size_t ndials;
	struct ban bans[NET_BANS_MAX];
	struct seen *seen_tx;
	uint64_t marks_used;               /* the peers' bits in seen_tx (conn.mark) */
	struct outmsg *outq, *outq_tail;
	size_t noutq;
	bool stopping;
	struct accused accused[NET_ACCUSED_MAX];
	size_t naccused;
	uint8_t unsee[NET_UNSEE_MAX][HASH_LEN];   /* net_unsee: out of the seen-set */
	size_t nunsee;
	bool sync_soon;                    /* net_sync_soon asked */
	struct net_consensus cs;
	struct net_stats st;
	uint64_t tip_height;               /* the ledger's, as last announced */
	uint8_t tip_id[HASH_LEN];
	bool sync_active;                  /* one GET_BLOCKS out at a time */
	/* Peers' transactions waiting for a check (intake.c). */
	struct txqueue *intake;
};

uint64_t net_now_ms(void);

/* Counters that net_status reads from other threads. */
#define STAT_ADD(n, field, v) __atomic_fetch_add(&(n)->st.field, (v), __ATOMIC_RELAXED)
#define STAT_GET(n, field) __atomic_load_n(&(n)->st.field, __ATOMIC_RELAXED)

/* net.c */
/* Encodes m and queues it on c; 0 or an encoder error. */
int conn_send(struct conn *c, const struct wire_msg *m);
/* Queues an encoded frame on c. */
void conn_send_frame(struct conn *c, const uint8_t *frame, size_t len);
/* Drops c for breaking the protocol: logs why, bans its key (or address)
 * for a doubling while, closes it. */
void conn_misbehave(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void conn_close(struct conn *c, const char *why);
/* Refuses a key that broke the protocol but is not connected, for a
 * doubling while, and logs why. */
void net_ban_key(struct net *n, const uint8_t key[PUBKEY_LEN], const char *why);
const char *conn_name(const struct conn *c, char buf[80]);
bool conn_ready(const struct conn *c);

/* gossip.c */
void gossip_admitted(void *ctx, const uint8_t *bytes, size_t len, const uint8_t hash[HASH_LEN],
		     const uint8_t *origin);
/* A transaction refused only for now (any thread): the network thread
 * takes it out of the seen-set (seen_forget) at its next turn. */
void net_unsee(struct net *n, const uint8_t hash[HASH_LEN]);
/* Sends what other threads queued, drops the peers the engine accused;
 * on the network thread. */
void gossip_flush(struct net *n);
/* A TXS frame: each transaction not seen yet goes to intake. */
void gossip_on_txs(struct conn *c, const struct wire_msg *m);
void gossip_on_consensus(struct conn *c, const struct wire_msg *m);
/* A new peer gets the transactions pending here, and the engine hears of
 * it. */
void gossip_greet(struct conn *c);
/* Offers a peer again the pending transactions it did not send (see
 * NET_REOFFER_MS); on_tick calls it when its output has drained. */
void gossip_reoffer(struct conn *c);
/* Frees whatever is still queued (at stop). */
void gossip_free_queue(struct net *n);

/* intake.c */
/* Makes the queue of peers' transactions, not yet checking them (0, or
 * TALLY_E_NOMEM). */
int intake_new(struct net *n, char *why);
/* Starts the thread that hands them to the ledger (0, or TALLY_E_NOMEM). */
int intake_start(struct net *n, char *why);
/* Stops it (a batch being checked finishes), drops what waits, frees the
 * queue; no-op when there is none. */
void intake_stop(struct net *n);
/* Queues a transaction from the peer with key `from` (network thread),
 * with hash = tx_hash(bytes, len) as the seen-set computed it (the ledger
 * does not hash it again); false when the queue is full or memory is out:
 * it is dropped. */
bool intake_push(struct net *n, const uint8_t from[PUBKEY_LEN], const uint8_t *bytes, size_t len,
		 const uint8_t hash[HASH_LEN]);
/* sync.c */
/* The tip changed or time passed: announce a new tip, ask for blocks. */
void sync_tick(struct net *n);
void sync_on_block(struct conn *c, const struct wire_msg *m);
void sync_on_no_block(struct conn *c, const struct wire_msg *m);
void sync_on_get_blocks(struct conn *c, const struct wire_msg *m);
/* c is going away: forget what was asked of it. */
void sync_forget(struct conn *c);

#endif
