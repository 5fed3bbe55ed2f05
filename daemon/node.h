/* One running tallyd: its configuration, keys and parts. */
#ifndef TALLY_NODE_H
#define TALLY_NODE_H

#include <stdbool.h>
#include <stdint.h>

#include "daemon/api/routes.h"
#include "daemon/config.h"
#include "daemon/driver.h"
#include "daemon/ledger/ledger.h"
#include "daemon/net/net.h"
#include "lib/crypto.h"
#include "lib/chain/genesis.h"

struct announcer;
struct keeper;

struct node {
	struct config cfg;
	struct genesis genesis;
	uint8_t genesis_hash[HASH_LEN];  /* every signature is bound to it */
	struct tally_key key;            /* validator and provider key */
	struct ledger *ledger;
	struct keeper *keeper;           /* NULL when the node runs no VMs */
	struct net *net;                 /* NULL without a [peers] section */
	struct driver *driver;           /* runs the consensus engine */
	struct announcer *announcer;     /* puts its PROVIDER announcement on the chain */
	bool validator;                  /* its key is in the genesis validator set */
	struct api api;                  /* the API handlers' view of the node */
};

#endif
