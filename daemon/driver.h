/* The consensus driver of tallyd: it runs the ledger's consensus engine
 * (daemon/ledger/ledger.h, daemon/consensus/engine.h) on the caller's
 * thread (tallyd's main thread).
 *
 * With peers (a [peers] section), the engine's I/O is the peer transport
 * (daemon/net/net.h):
 *   - broadcast: the engine's messages are queued for every peer and sent
 *     by the network thread (the engine calls it under the ledger's lock:
 *     nothing here blocks or calls back into the ledger);
 *   - receive: messages from peers are queued by the network thread and
 *     handed to the engine here, so a ledger busy building or committing a
 *     block never stalls the network; what the engine accepts is relayed
 *     once to the other peers; a message it finds forged gets its sender
 *     dropped; one of a later height makes the transport sync blocks now;
 *   - timers: kept here, on the node's clock (daemon/clock.h), and fired
 *     when due;
 *   - regossip: every DRIVER_REGOSSIP_MS and when a peer connects, the
 *     engine sends again what a peer may have missed;
 *   - evidence: two conflicting votes the engine saw become an EVIDENCE
 *     transaction signed with the node key and submitted here.
 * Without peers, the devnet's loopback (this node the only validator) runs
 * as before: the ledger keeps the timers and this loop fires them.
 *
 * Life: driver_new (its I/O goes into ledger_config.consensus_io before
 * ledger_open), driver_attach once the ledger and transport exist,
 * driver_run until *stopping, then net_stop and ledger_close, and last
 * driver_free (the network thread calls into the driver until net_stop
 * returns). */
#ifndef TALLY_DRIVER_H
#define TALLY_DRIVER_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "daemon/consensus/engine.h"
#include "daemon/ledger/ledger.h"
#include "daemon/net/net.h"
#include "lib/crypto.h"

#define DRIVER_REGOSSIP_MS 1000
/* Messages from peers waiting for the engine: beyond either bound new ones
 * are dropped (peers send them again). */
#define DRIVER_QUEUE_MAX 20000
#define DRIVER_QUEUE_BYTES (256u << 20)

struct driver;

/* networked: the engine runs over a transport (attached later), else the
 * loopback. NULL when out of memory. */
struct driver *driver_new(bool networked);
/* The I/O for ledger_config.consensus_io (NULL for the loopback), and the
 * evidence callback for ledger_config.evidence with its context (the
 * driver). */
const struct engine_io *driver_io(struct driver *d);
void driver_on_evidence(void *ctx, const struct cs_evidence *ev);
/* For ledger_config.txs_waiting: a transaction entered the mempool; the
 * driver's loop runs at once (an idle engine starts the height). */
void driver_on_txs(void *ctx);

struct driver_deps {
	struct ledger *ledger;
	struct net *net;                    /* NULL for the loopback */
	const struct tally_key *key;        /* signs EVIDENCE */
	const uint8_t *genesis_hash;
	const char *chain_id;
};
/* Takes the engine's messages from the transport from now on. */
void driver_attach(struct driver *d, const struct driver_deps *deps);
/* Starts the engine and drives it until *stopping is set (by a signal
 * handler). */
void driver_run(struct driver *d, volatile sig_atomic_t *stopping);
void driver_free(struct driver *d);

#endif
