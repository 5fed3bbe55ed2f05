/* tallyd's options and help (daemon/cmdline.h). */
#include "daemon/cmdline.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "daemon/config.h"
#include "lib/errors.h"

static const struct opt_doc tallyd_opts[] = {
	{ "config", 'c', "FILE", "the configuration (default " TALLYD_CONFIG_DEFAULT "),\n"
	  "then its drop-ins FILE.d/*.conf in name order", OPT_SHORT },
	{ "check-config", TALLYD_OPT_CHECK_CONFIG, NULL,
	  "read the configuration, say whether it is valid, and exit\n(0 valid, 1 not)", 0 },
	{ "no-vms", TALLYD_OPT_NO_VMS, NULL,
	  "run the ledger and API only, without libvirt and meters", 0 },
	{ "repair-signer-state", TALLYD_OPT_REPAIR_SIGNER, NULL,
	  "replace a damaged signer_state with a guard past anything\n"
	  "this validator can have signed (only when the data directory\n"
	  "is its newest; docs/OPERATING.md)", 0 },
	{ "help", 'h', NULL, "this help", OPT_SHORT },
	{ "version", 'V', NULL, "print the version", OPT_SHORT },
	{ NULL, 0, NULL, NULL, 0 },
};

const struct cmd_doc tallyd_doc = {
	.name = "",
	.synopsis = "[-c FILE] [--no-vms] [--repair-signer-state]\n--check-config [-c FILE]",
	.summary = "a tally provider node",
	.description =
		"Runs a tally provider node: the ledger, the HTTP API on the configured\n"
		"listen address, and the lease keeper that boots, meters and settles VMs.",
	.opts = tallyd_opts,
	.epilog = "Stops cleanly on SIGINT or SIGTERM. See tallyd.conf(5) and docs/OPERATING.md.",
};

int tallyd_check_config(const char *config_path)
{
	static struct config c;   /* large: not on the stack */
	char why[WHY_MAX] = "";

	if (config_load(&c, config_path, why)) {
		fprintf(stderr, "tallyd: %s\n", why);
		return 1;
	}
	printf("%s: valid (%zu drop-in%s)\n", config_path, c.ndropins, c.ndropins == 1 ? "" : "s");
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
