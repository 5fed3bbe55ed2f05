/* What tallyd checks before it runs a node (see precheck.h). */
#include "daemon/precheck.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "daemon/announce.h"
#include "daemon/cmdline.h"
#include "daemon/config.h"
#include "daemon/keeper/keeper.h"
#include "daemon/log.h"
#include "lib/chain/genesis.h"
#include "lib/crypto.h"
#include "lib/errors.h"

int tallyd_check_config(const char *config_path, bool run_vms)
{
	static struct config c;   /* large: not on the stack */
	static struct provider_offer offer;
	struct tally_key key;
	struct genesis g;
	char why[WHY_MAX] = "", pub[2 * PUBKEY_LEN + 1];
	bool validator;
	int rc;

	if (config_load(&c, config_path, why)) {
		fprintf(stderr, "tallyd: %s\n", why);
		return 1;
	}
	/* What the node would refuse at start, found now. */
	if (log_level_parse(c.log_level) < 0) {
		fprintf(stderr, "tallyd: %s: log_level must be error, warn, info or debug\n",
			config_path);
		return 1;
	}
	/* The rules of the announcement the configuration makes when it
	 * makes one (a node that runs VMs). */
	if (announce_offer(&c, true, NULL, &offer, why)) {
		fprintf(stderr, "tallyd: %s: %s\n", config_path, why);
		return 1;
	}
	/* What the lease keeper refuses at start (a catalogue file it cannot
	 * read, ...), by the keeper's own check; a node started --no-vms
	 * runs no keeper, and neither does its check. */
	if (run_vms && keeper_check_config(&c, why)) {
		fprintf(stderr, "tallyd: %s: lease keeper: %s (under --no-vms the node runs no VMs"
			" and does not read them)\n", config_path, why);
		return 1;
	}
	/* A package's configuration comes before `tally node init` makes the
	 * key and genesis: their absence is said, not refused; a file that
	 * is there must be one the node can use. */
	bool have_key = access(c.key, F_OK) == 0 || errno != ENOENT;
	bool have_genesis = access(c.genesis, F_OK) == 0 || errno != ENOENT;
	if (have_key && (rc = key_load_pem(&key, c.key))) {
		fprintf(stderr, "tallyd: node key %s (named in %s): %s\n", c.key, config_path,
			tally_strerror(rc));
		return 1;
	}
	if (have_genesis && genesis_load(&g, c.genesis, why)) {
		fprintf(stderr, "tallyd: genesis %s (named in %s): %s\n", c.genesis, config_path,
			why);
		return 1;
	}
	printf("%s: valid (%zu drop-in%s)", config_path, c.ndropins, c.ndropins == 1 ? "" : "s");
	if (have_key) {
		hex_encode(key.pub, PUBKEY_LEN, pub);
		printf(": node %.16s", pub);
	}
	if (have_genesis) {
		validator = have_key && valset_find(&g.validators, key.pub) != NULL;
		printf(", chain '%s'%s", g.chain_id, !have_key ? "" : validator ?
		       ", a genesis validator" : ", not a genesis validator");
		genesis_free(&g);
	}
	printf("\n");
	if (!have_key || !have_genesis)
		fprintf(stderr, "tallyd: %s%s%s does not exist yet: the node cannot start until it"
			" does (`tally node init` makes %s)\n", !have_key ? c.key : "",
			!have_key && !have_genesis ? " and " : "", !have_genesis ? c.genesis : "",
			!have_key && !have_genesis ? "them" : "it");
	return 0;
}

static const char not_a_node[] =
	"this host is not a tally node yet. To make it one, run as root\n"
	"  tally node init --production --chain-id ID      (a new network), or\n"
	"  tally node init --production --join GENESIS.json --peer KEY@HOST:PORT\n"
	"then start tallyd (systemctl start tallyd). For a devnet on this machine:\n"
	"  tally node init --dev DIR && tallyd -c DIR/tallyd.conf\n"
	"See tallyd(8) and docs/OPERATING.md.";

int tallyd_preflight(const char *config_path)
{
	static struct config c;
	char why[WHY_MAX] = "";

	if (strcmp(config_path, TALLYD_CONFIG_DEFAULT))
		return 0;   /* a file of the operator's choice: the node's messages say it */
	if (config_load(&c, config_path, why)) {
		if (access(config_path, F_OK) != 0 && errno == ENOENT) {
			fprintf(stderr, "tallyd: no configuration at %s: %s\n", config_path,
				not_a_node);
			return 1;
		}
		return 0;   /* the node says what is wrong with it */
	}
	const char *missing = access(c.key, F_OK) != 0 && errno == ENOENT ? c.key :
			      access(c.genesis, F_OK) != 0 && errno == ENOENT ? c.genesis : NULL;
	if (!missing)
		return 0;
	fprintf(stderr, "tallyd: %s (named in %s) does not exist: %s\n", missing, config_path,
		not_a_node);
	return 1;
}
