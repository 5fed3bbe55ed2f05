/* tallyd: a provider node. It keeps the ledger (store, mempool, blocks),
 * serves the HTTP API, and runs the lease keeper that provisions, meters and
 * settles the VMs leased from this node. */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon/announce.h"
#include "daemon/clock.h"
#include "daemon/cmdline.h"
#include "daemon/precheck.h"
#include "daemon/keeper/keeper.h"
#include "daemon/log.h"
#include "daemon/node.h"
#include "lib/codec.h"
#include "lib/errors.h"

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static void ledger_log(void *ctx, const char *line)
{
	(void)ctx;
	log_warn("ledger: %s", line);
}

static int node_open(struct node *n, const char *config_path, int run_vms, int repair_signer)
{
	char why[WHY_MAX] = "";
	int rc;

	if ((rc = config_load(&n->cfg, config_path, why))) {
		fprintf(stderr, "tallyd: %s\n", why);
		return rc;
	}
	int level = log_level_parse(n->cfg.log_level);
	if (level < 0) {
		fprintf(stderr, "tallyd: %s: log_level must be error, warn, info or debug\n",
			config_path);
		return TALLY_E_INVALID;
	}
	log_setup(level, !strcmp(n->cfg.log, "syslog"));
	if ((rc = key_load_pem(&n->key, n->cfg.key))) {
		log_error("node key %s: %s", n->cfg.key, tally_strerror(rc));
		return rc;
	}
	if ((rc = genesis_load(&n->genesis, n->cfg.genesis, why))) {
		log_error("genesis %s: %s", n->cfg.genesis, why);
		return rc;
	}
	genesis_hash(&n->genesis, n->genesis_hash);
	n->validator = valset_find(&n->genesis.validators, n->key.pub) != NULL;
	/* With peers the engine runs over the transport; without, the
	 * single-validator devnet's loopback. */
	bool peers = n->cfg.peers.listen[0] || n->cfg.peers.npeers;
	n->driver = driver_new(peers);
	if (!n->driver) {
		log_error("out of memory");
		return TALLY_E_NOMEM;
	}
	struct ledger_config lc = {
		.data_dir = n->cfg.data_dir,
		.genesis = &n->genesis,
		.min_free_bytes = (uint64_t)n->cfg.min_free_mib << 20,
		/* With peers every node runs the engine: one whose key is not in
		 * the set follows the decisions and votes once a STAKE brings
		 * it in (the set is the state's, height by height). */
		.validator_key = n->validator || peers ? &n->key : NULL,
		.repair_signer_state = repair_signer,
		.log = ledger_log,
		.timeouts = cs_timeouts_default(),
		.consensus_io = driver_io(n->driver),
		.evidence = driver_on_evidence,
		.evidence_ctx = n->driver,
		.txs_waiting = driver_on_txs,
		.txs_waiting_ctx = n->driver,
	};
	/* A new height begins block_interval_ms after the last block. */
	lc.timeouts.commit_ns = (uint64_t)n->cfg.block_interval_ms * 1000000ull;
	if ((rc = ledger_open(&n->ledger, &lc, why))) {
		log_error("ledger in %s: %s", n->cfg.data_dir, why);
		return rc;
	}
	if (peers) {
		struct net_config nc = {
			.peers = &n->cfg.peers,
			.key = &n->key,
			.genesis_hash = n->genesis_hash,
			.chain_id = n->genesis.chain_id,
			.ledger = n->ledger,
		};
		if ((rc = net_start(&n->net, &nc, why))) {
			log_error("peers: %s", why);
			return rc;
		}
	}
	driver_attach(n->driver, &(struct driver_deps){
		.ledger = n->ledger,
		.net = n->net,
		.key = &n->key,
		.genesis_hash = n->genesis_hash,
		.chain_id = n->genesis.chain_id,
	});
	struct provider_offer offer;
	/* Why a node is not in `tally provider list`, said once at start. */
	if (!n->cfg.nimages)
		log_info("provider: not announced (an earlier announcement, if any, is withdrawn): no"
			 " [image.*] in the configuration, and a provider offers at least one");
	else if (!n->cfg.announce)
		log_info("provider: not announced (an earlier announcement, if any, is withdrawn):"
			 " [provider] announce = no");
	else if (!run_vms && n->cfg.announce < 0)
		log_info("provider: not announced (an earlier announcement, if any, is withdrawn): this"
			 " node runs no VMs (--no-vms); [provider] announce = yes announces it"
			 " anyway");
	struct keeper_deps kd = {
		.cfg = &n->cfg,
		.key = &n->key,
		.chain_id = n->genesis.chain_id,
		.genesis_hash = n->genesis_hash,
		.ledger = n->ledger,
	};
	if (run_vms && (rc = keeper_start(&n->keeper, &kd, why))) {
		/* libvirt is reached after the meter is pinned: say both. */
		if (rc == TALLY_E_UNAVAILABLE && strstr(why, "libvirt"))
			log_error("lease keeper: %s; is libvirtd running? (tallyd --no-vms runs the"
				  " ledger and API without VMs; the CPU meter stays pinned in %s"
				  " for the next start, and tally node meter-detach --config %s"
				  " removes it)", why, n->cfg.pin_dir, config_path);
		else
			log_error("lease keeper: %s", why);
		return rc;
	}
	/* The capacity announced is the one admission checks leases against. */
	struct prov_capacity cap;
	if (run_vms && (rc = keeper_capacity(n->keeper, &cap, why))) {
		log_error("lease keeper: %s", why);
		return rc;
	}
	if ((rc = announce_offer(&n->cfg, run_vms, run_vms ? &cap : NULL, &offer, why))) {
		log_error("%s: %s", config_path, why);
		return rc;
	}
	/* Announced once the node can run what it offers: a start that fails
	 * before here puts nothing on the chain. */
	struct announce_deps ad = {
		.ledger = n->ledger,
		.key = &n->key,
		.chain_id = n->genesis.chain_id,
		.genesis_hash = n->genesis_hash,
	};
	if ((rc = announcer_start(&n->announcer, &ad, &offer, why))) {
		log_error("provider announcement: %s", why);
		return rc;
	}
	n->api = (struct api){
		.cfg = &n->cfg,
		.genesis = &n->genesis,
		.genesis_hash = n->genesis_hash,
		.node_pub = n->key.pub,
		.ledger = n->ledger,
		.keeper = n->keeper,
		.net = n->net,
	};
	auth_cache_init(&n->api.auth);
	if ((rc = api_inbox_start(&n->api, why))) {
		log_error("API: %s", why);
		return rc;
	}
	if ((rc = http_server_start(&n->api.http, n->cfg.listen, &n->cfg.api, api_routes,
				     api_nroutes, &n->api, why))) {
		log_error("API: %s", why);
		return rc;
	}
	return 0;
}

static void node_close(struct node *n)
{
	/* The API goes first so nothing new arrives while the rest shuts down. */
	http_server_stop(n->api.http);
	/* What it received is checked and admitted before the ledger closes. */
	api_inbox_stop(&n->api);
	announcer_stop(n->announcer);
	if (n->keeper)
		keeper_stop(n->keeper);
	net_stop(n->net);
	if (n->ledger)
		ledger_close(n->ledger);
	/* Last: the network thread and the engine call into it until here. */
	driver_free(n->driver);
	auth_cache_free(&n->api.auth);
	genesis_free(&n->genesis);
	key_free(&n->key);
}

/* Whether the node's key signs the next block: the chain's set at its
 * tip (STAKE, UNSTAKE and jails change it), not the genesis's. */
static bool in_validator_set(struct node *n)
{
	struct ledger_status st;
	struct validator_set vals;

	return !ledger_status(n->ledger, &st) && !ledger_valset(n->ledger, st.height + 1, &vals) &&
	       valset_find(&vals, n->key.pub);
}

int main(int argc, char **argv)
{
	const char *config_path = TALLYD_CONFIG_DEFAULT;
	int run_vms = 1, check_config = 0, repair_signer = 0, c;
	struct optable ot;
	struct node n;

	/* Every block is tried and committed in buffers of megabytes (a trial's
	 * copy of the 4 MiB state-root tree, a block of thousands of
	 * transactions). glibc would map each afresh and unmap it when freed,
	 * and the node paid a page fault per 4 KiB of it at every block; kept
	 * on the heap, they are reused. */
	mallopt(M_MMAP_THRESHOLD, 32 << 20);
	mallopt(M_TRIM_THRESHOLD, 256 << 20);
	optable_build(&ot, "", tallyd_doc.opts, NULL);
	while ((c = getopt_long(argc, argv, ot.shortopts, ot.longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config_path = optarg;
			break;
		case TALLYD_OPT_NO_VMS:
			run_vms = 0;
			break;
		case TALLYD_OPT_CHECK_CONFIG:
			check_config = 1;
			break;
		case TALLYD_OPT_REPAIR_SIGNER:
			repair_signer = 1;
			break;
		case 'h':
			optable_help(stdout, "tallyd", &tallyd_doc, NULL);
			return 0;
		case 'V':
			printf("tallyd %s\n", TALLY_VERSION);
			return 0;
		default:
			optable_help(stderr, "tallyd", &tallyd_doc, NULL);
			return 2;
		}
	}
	if (optind != argc) {
		optable_help(stderr, "tallyd", &tallyd_doc, NULL);
		return 2;
	}
	if (check_config)
		return tallyd_check_config(config_path, run_vms);
	if (tallyd_preflight(config_path))
		return 1;

	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	node_clock_start();

	memset(&n, 0, sizeof(n));
	int rc = node_open(&n, config_path, run_vms, repair_signer);
	if (rc == 0) {
		{
			char pub[2 * PUBKEY_LEN + 1];
			hex_encode(n.key.pub, PUBKEY_LEN, pub);
			log_info("node %s serving chain %s on %s%s%s (%s)", pub, n.genesis.chain_id,
				 n.cfg.listen, n.cfg.peers.listen[0] ? ", peers on " : "",
				 n.cfg.peers.listen, in_validator_set(&n) ? "validator" : "full node");
		}
		driver_run(n.driver, &stopping);
		log_info("stopping");
	}
	node_close(&n);
	return rc ? 1 : 0;
}
