/* tally's command table and its dispatch, git-style: each command is one
 * function in cli/cmd_*.c with its options and help beside it (a struct
 * cmd_doc); groups such as `tally key` have their own small table. The
 * help of every level, tally(1) and the bash completion all come from
 * these tables. */
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "cli/tally.h"
#include "lib/version.h"

static const struct cli_command key_cmds[] = {
	{ "new", cmd_key_new, &doc_key_new, NULL, NULL },
	{ "show", cmd_key_show, &doc_key_show, NULL, NULL },
	{ NULL, NULL, NULL, NULL, NULL },
};

static const struct cli_command node_cmds[] = {
	{ "init", cmd_node_init, &doc_node_init, NULL, NULL },
	{ "top", cmd_node_top, &doc_node_top, NULL, NULL },
	{ "meter-detach", cmd_node_meter_detach, &doc_node_meter_detach, NULL, NULL },
	{ NULL, NULL, NULL, NULL, NULL },
};

static const struct cli_command account_cmds[] = {
	{ "show", cmd_account_show, &doc_account_show, NULL, NULL },
	{ NULL, NULL, NULL, NULL, NULL },
};

static const struct cli_command lease_cmds[] = {
	{ "create", cmd_lease_create, &doc_lease_create, NULL, NULL },
	{ "list", cmd_lease_list, &doc_lease_list, NULL, NULL },
	{ "show", cmd_lease_show, &doc_lease_show, NULL, NULL },
	{ "close", cmd_lease_close, &doc_lease_close, NULL, NULL },
	{ "console", cmd_lease_console, &doc_lease_console, NULL, NULL },
	{ "ssh", cmd_lease_ssh, &doc_lease_ssh, NULL, NULL },
	{ NULL, NULL, NULL, NULL, NULL },
};

static const struct cli_command provider_cmds[] = {
	{ "list", cmd_provider_list, &doc_provider_list, NULL, NULL },
	{ "show", cmd_provider_show, &doc_provider_show, NULL, NULL },
	{ NULL, NULL, NULL, NULL, NULL },
};

static const struct cli_command chain_cmds[] = {
	{ "export", cmd_chain_export, &doc_chain_export, NULL, NULL },
	{ "verify", cmd_chain_verify, &doc_chain_verify, NULL, NULL },
	{ NULL, NULL, NULL, NULL, NULL },
};

const struct cli_command cli_commands[] = {
	{ "key", NULL, NULL, key_cmds, "make or show your key" },
	{ "node", NULL, NULL, node_cmds, "operate a node" },
	{ "status", cmd_status, &doc_status, NULL, NULL },
	{ "account", NULL, NULL, account_cmds, "an account's balance, nonce and stake" },
	{ "transfer", cmd_transfer, &doc_transfer, NULL, NULL },
	{ "tx", cmd_tx, &doc_tx, NULL, NULL },
	{ "submit", cmd_submit, &doc_submit, NULL, NULL },
	{ "stake", cmd_stake, &doc_stake, NULL, NULL },
	{ "unstake", cmd_unstake, &doc_unstake, NULL, NULL },
	{ "unjail", cmd_unjail, &doc_unjail, NULL, NULL },
	{ "validators", cmd_validators, &doc_validators, NULL, NULL },
	{ "provider", NULL, NULL, provider_cmds, "the provider registry" },
	{ "lease", NULL, NULL, lease_cmds, "lease VMs" },
	{ "usage", cmd_usage, &doc_usage, NULL, NULL },
	{ "audit", cmd_audit, &doc_audit, NULL, NULL },
	{ "chain", NULL, NULL, chain_cmds, "export or verify the whole chain" },
	{ NULL, NULL, NULL, NULL, NULL },
};

const char cli_intro[] =
	"The command line of a tally network. Tenants make a key, lease VMs and\n"
	"watch their usage and charges; operators set up and watch provider nodes;\n"
	"auditors verify a lease, or the whole chain, from a node or an exported\n"
	"file. Every command talks to a node's HTTP API and signs what it sends\n"
	"with your Ed25519 key.";

const char cli_outro[] =
	"'tally COMMAND --help' describes a command.\n"
	"exit codes: 0 ok, 1 verification failed or refused by the node, 2 usage or I/O error";

static const struct cli_command *find(const struct cli_command *t, const char *name)
{
	for (; t->name; t++)
		if (!strcmp(t->name, name))
			return t;
	return NULL;
}

/* "key: make or show your key (new, show)" */
static void put_summary(FILE *f, const struct cli_command *c)
{
	if (!c->subs) {
		fprintf(f, "%s\n", c->doc->summary);
		return;
	}
	fprintf(f, "%s (", c->summary);
	for (const struct cli_command *s = c->subs; s->name; s++)
		fprintf(f, "%s%s", s == c->subs ? "" : ", ", s->name);
	fprintf(f, ")\n");
}

static void usage(FILE *f)
{
	fprintf(f, "usage: tally COMMAND [ARGS] [--node URL] [--key FILE] [--json]\n"
		   "       tally help [COMMAND [SUBCOMMAND]] | --help | --version\n\n%s\n\n"
		   "commands:\n", cli_intro);
	for (const struct cli_command *c = cli_commands; c->name; c++) {
		fprintf(f, "  %-10s ", c->name);
		put_summary(f, c);
	}
	fprintf(f, "\n%s\n", cli_outro);
}

static void group_usage(FILE *f, const struct cli_command *g)
{
	fprintf(f, "usage: tally %s SUBCOMMAND [ARGS]\n\n", g->name);
	for (const struct cli_command *s = g->subs; s->name; s++)
		fprintf(f, "  %-12s %s\n", s->name, s->doc->summary);
	fprintf(f, "\n'tally %s SUBCOMMAND --help' describes each.\n", g->name);
}

static bool is_help(const char *arg)
{
	return !strcmp(arg, "--help") || !strcmp(arg, "-h");
}

static int run(const struct cli_command *c, int argc, char **argv)
{
	int rc;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
		err("cannot initialise libcurl");
		return EXIT_USAGE;
	}
	rc = c->fn(argc, argv);
	curl_global_cleanup();
	return rc;
}

/* `tally help [COMMAND [SUBCOMMAND]]`, as --help at that level (options
 * such as --json are not names). */
static int help(int argc, char **argv)
{
	char *names[2];
	int n = 0;

	for (int i = 0; i < argc; i++)
		if (argv[i][0] != '-') {
			if (n == 2)
				return usage_error("help", "at most a COMMAND and a SUBCOMMAND");
			names[n++] = argv[i];
		}
	argc = n;
	argv = names;
	const struct cli_command *c = argc > 0 ? find(cli_commands, argv[0]) : NULL;
	const struct cli_command *s = c && c->subs && argc > 1 ? find(c->subs, argv[1]) : NULL;

	if (argc == 0) {
		usage(stdout);
		return EXIT_OK;
	}
	if (!c || (c->subs && argc > 1 && !s) || argc > 2 || (!c->subs && argc > 1)) {
		err("'%s%s%s' is not a tally command; see 'tally --help'", argv[0],
		    argc > 1 ? " " : "", argc > 1 ? argv[1] : "");
		return EXIT_USAGE;
	}
	if (c->subs && !s) {
		group_usage(stdout, c);
		return EXIT_OK;
	}
	return cmd_help(s ? s->doc : c->doc);
}

static int dispatch(int argc, char **argv)
{
	const struct cli_command *c, *s;

	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (is_help(argv[1]))
		return usage(stdout), EXIT_OK;
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V"))
		return printf("tally %s\n", TALLY_VERSION), EXIT_OK;
	if (!strcmp(argv[1], "help"))
		return help(argc - 2, argv + 2);
	c = find(cli_commands, argv[1]);
	if (!c) {
		err("'%s' is not a tally command; see 'tally --help'", argv[1]);
		return EXIT_USAGE;
	}
	if (!c->subs)
		return run(c, argc - 1, argv + 1);
	if (argc < 3 || is_help(argv[2])) {
		group_usage(argc < 3 ? stderr : stdout, c);
		return argc < 3 ? EXIT_USAGE : EXIT_OK;
	}
	s = find(c->subs, argv[2]);
	if (!s && argv[2][0] == '-') {
		err("'tally %s' needs a SUBCOMMAND before its options", c->name);
		group_usage(stderr, c);
		return EXIT_USAGE;
	}
	if (!s) {
		err("'%s %s' is not a tally command", c->name, argv[2]);
		group_usage(stderr, c);
		return EXIT_USAGE;
	}
	return run(s, argc - 2, argv + 2);
}

int cli_main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--json"))
			json_failure_expected();
	return json_failure_report(dispatch(argc, argv));
}
