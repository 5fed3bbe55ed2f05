/* tallyd: a provider node. It keeps the ledger (store, mempool, blocks),
 * serves the HTTP API, and runs the lease keeper that provisions, meters and
 * settles the VMs leased from this node. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon/clock.h"
#include "daemon/keeper.h"
#include "daemon/log.h"
#include "daemon/node.h"
#include "lib/codec.h"
#include "lib/errors.h"

#define TALLYD_VERSION "0.1.0"

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: tallyd [-c FILE] [--no-vms] [--repair-signer-state]\n"
		"\n"
		"Runs a tally provider node: the ledger, the HTTP API on the configured\n"
		"listen address, and the lease keeper that boots, meters and settles VMs.\n"
		"\n"
		"  -c, --config FILE   configuration (default /etc/tally/tallyd.conf)\n"
		"      --no-vms        run the ledger and API only, without libvirt and meters\n"
		"      --repair-signer-state\n"
		"                      replace a damaged signer_state with a guard past\n"
		"                      anything this validator can have signed (only when\n"
		"                      the data directory is its newest; docs/OPERATING.md)\n"
		"  -h, --help          this help\n"
		"  -V, --version       print the version\n"
		"\n"
		"Stops cleanly on SIGINT or SIGTERM. See docs/OPERATING.md.\n");
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
	auth_cache_init(&n->auth);
	struct ledger_config lc = {
		.data_dir = n->cfg.data_dir,
		.genesis = &n->genesis,
		.validator_key = valset_find(&n->genesis.validators, n->key.pub) ? &n->key : NULL,
		.repair_signer_state = repair_signer,
		.log = ledger_log,
	};
	if ((rc = ledger_open(&n->ledger, &lc, why))) {
		log_error("ledger in %s: %s", n->cfg.data_dir, why);
		return rc;
	}
	if (run_vms && (rc = keeper_start(&n->keeper, n, why))) {
		log_error("lease keeper: %s", why);
		return rc;
	}
	if ((rc = http_server_start(&n->http, n->cfg.listen, &n->cfg.api, api_routes, api_nroutes,
				     n, why))) {
		log_error("API: %s", why);
		return rc;
	}
	return 0;
}

static void node_close(struct node *n)
{
	/* The API goes first so nothing new arrives while the rest shuts down. */
	http_server_stop(n->http);
	if (n->keeper)
		keeper_stop(n->keeper);
	if (n->ledger)
		ledger_close(n->ledger);
	auth_cache_free(&n->auth);
	genesis_free(&n->genesis);
	key_free(&n->key);
}

/* The devnet's consensus: this node is the only validator, so it proposes
 * and certifies a block whenever transactions wait, at most every
 * block_interval_ms. */
static void produce_blocks(struct node *n)
{
	struct timespec tick = {
		.tv_sec = n->cfg.block_interval_ms / 1000,
		.tv_nsec = (long)(n->cfg.block_interval_ms % 1000) * 1000000,
	};

	uint64_t last_warn_ns = 0;

	while (!stopping) {
		struct ledger_status st;
		struct ledger_block_result res;
		char why[WHY_MAX] = "";

		nanosleep(&tick, NULL);
		/* Read every tick, so that a step is told from a slew. */
		uint64_t t = node_clock_ns();
		if (ledger_status(n->ledger, &st) || st.mempool_size == 0)
			continue;
		/* Blocks take the node's clock, never a time made up to follow
		 * the chain: a chain ahead of this clock waits for it. */
		if (t <= st.time_ns) {
			if (t - last_warn_ns > 60000000000ull || !last_warn_ns) {
				log_warn("the last block is %llu ms ahead of this node's clock;"
					 " waiting for the clock to pass it",
					 (unsigned long long)((st.time_ns - t) / 1000000));
				last_warn_ns = t;
			}
			continue;
		}
		int rc = ledger_produce_block(n->ledger, t, &res, why);
		if (rc)
			log_error("block %llu not produced: %s", (unsigned long long)st.height + 1,
				  why[0] ? why : tally_strerror(rc));
		else
			log_info("block %llu committed: %zu transactions (%zu dropped)",
				 (unsigned long long)res.height, res.ntx, res.ndropped);
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "no-vms", no_argument, NULL, 'n' },
		{ "repair-signer-state", no_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config_path = "/etc/tally/tallyd.conf";
	int run_vms = 1, repair_signer = 0, c;
	struct node n;

	while ((c = getopt_long(argc, argv, "c:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config_path = optarg;
			break;
		case 'n':
			run_vms = 0;
			break;
		case 'r':
			repair_signer = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("tallyd %s\n", TALLYD_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}

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
			log_info("node %s serving chain %s on %s", pub, n.genesis.chain_id,
				 n.cfg.listen);
		}
		produce_blocks(&n);
		log_info("stopping");
	}
	node_close(&n);
	return rc ? 1 : 0;
}
