/* tallyd's options and help (daemon/cmdline.h). */
#include "daemon/cmdline.h"

static const struct opt_doc tallyd_opts[] = {
	{ "config", 'c', "FILE", "the configuration (default " TALLYD_CONFIG_DEFAULT "),\n"
	  "then its drop-ins FILE.d/*.conf in name order", OPT_SHORT },
	{ "check-config", TALLYD_OPT_CHECK_CONFIG, NULL,
	  "read the configuration and the key, genesis, provider\n"
	  "announcement and image files it names, say whether they are\n"
	  "valid, and exit (0 valid, 1 not); with --no-vms, as that node\n"
	  "reads it (no image files)", 0 },
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
	.synopsis = "[-c FILE] [--no-vms] [--repair-signer-state]\n--check-config [-c FILE] [--no-vms]",
	.summary = "a tally provider node",
	.description =
		"Runs a tally provider node: the ledger, the HTTP API on the configured\n"
		"listen address, and the lease keeper that boots, meters and settles VMs.",
	.opts = tallyd_opts,
	.epilog = "Stops cleanly on SIGINT or SIGTERM. See tallyd.conf(5) and docs/OPERATING.md.",
};
