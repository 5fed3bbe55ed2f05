/* The node's HTTP API (docs/PROTOCOL.md): its route table and what the
 * handlers read and act on. */
#ifndef TALLY_API_ROUTES_H
#define TALLY_API_ROUTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/api/auth.h"
#include "daemon/api/http.h"
#include "daemon/config.h"
#include "daemon/keeper/keeper.h"
#include "daemon/ledger/inbox.h"
#include "daemon/ledger/ledger.h"
#include "daemon/net/net.h"
#include "lib/chain/genesis.h"

/* The handlers' context (the route ctx): borrowed from the node, except
 * auth (the signed-read replay state) and http, the server itself, set by
 * http_server_start before the first request. */
struct api {
	const struct config *cfg;
	const struct genesis *genesis;
	const uint8_t *genesis_hash;      /* HASH_LEN bytes */
	const uint8_t *node_pub;          /* PUBKEY_LEN bytes: the node's key */
	struct ledger *ledger;
	struct keeper *keeper;            /* NULL when the node runs no VMs */
	struct net *net;                  /* NULL without a [peers] section */
	struct auth_cache auth;
	struct http_server *http;
	/* Asynchronous submissions (Prefer: respond-async); NULL: answered
	 * synchronously. Started by api_inbox_start with the node's own
	 * admission (adm). */
	struct inbox *inbox;
	struct ledger_admission adm;
};

/* The inbox of received transactions (daemon/ledger/inbox.h) for n, with the
 * node's admission of leases addressed to it; started before the HTTP
 * server, stopped after it (what waits is then checked and admitted). */
int api_inbox_start(struct api *n, char *why);
void api_inbox_stop(struct api *n);

extern const struct http_route api_routes[];
extern const size_t api_nroutes;

#endif
