/* The tally command line: what every command shares.
 *
 * Each command is one function `int cmd_<name>(int argc, char **argv)` in
 * cli/cmd_<group>.c, listed in the table in cli/tally.c. argv[0] is the
 * command's own name ("new" for `tally key new`); it returns the process
 * exit code. */
#ifndef TALLY_CLI_H
#define TALLY_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "cli/client.h"
#include "lib/codec.h"
#include "lib/crypto.h"
#include "lib/optable.h"

enum {
	EXIT_OK = 0,
	EXIT_REFUSED = 1,   /* verification failed, or the node refused */
	EXIT_USAGE = 2,     /* bad usage, or an I/O error (node unreachable, files) */
};

#define DEFAULT_NODE "http://127.0.0.1:7654"

/* Options every command takes. */
struct common {
	const char *node;       /* --node, $TALLY_NODE, DEFAULT_NODE */
	const char *key;        /* --key, $TALLY_KEY, ~/.config/tally/key.pem */
	bool json;              /* --json */
	bool help;              /* --help */
};

/* Long option values of the common options; a command's own options use
 * single letters or values from 256 up. */
enum {
	OPT_HELP = 'h',
	OPT_JSON = 1000,
	OPT_NODE,
	OPT_KEY,
	OPT_CACERT,
};

/* The options above as a table (cli/tally.c): every command's --help and
 * getopt_long arrays add them after its own. */
extern const struct opt_doc cli_common_opts[];

/* One entry of the command table (cli/commands.c): a command, or a group
 * such as `tally key` with its own table. The man page and the bash
 * completion are made from the same table (man/gen.c). */
struct cli_command {
	const char *name;
	int (*fn)(int argc, char **argv);   /* a command; NULL for a group */
	const struct cmd_doc *doc;          /* a command's options and help */
	const struct cli_command *subs;     /* a group's commands, up to a NULL name */
	const char *summary;                /* a group's one line */
};
extern const struct cli_command cli_commands[];
/* What `tally --help` says before and after its list of commands. */
extern const char cli_intro[], cli_outro[];

/* `tally ...`: finds the command in cli_commands and runs it. */
int cli_main(int argc, char **argv);

/* A command's --help on stdout (its own options, then the common ones);
 * returns EXIT_OK. */
int cmd_help(const struct cmd_doc *d);
/* getopt_long's arrays for d's options and the common ones; prefix as in
 * optable_build (":" or "+:"). */
void cmd_optable(struct optable *t, const struct cmd_doc *d, const char *prefix);

void common_init(struct common *co);
/* What parse_common_args returns when the command should go on. */
#define ARGS_PARSED (-1)
/* For commands that take only the common options: common_init, then
 * parses argv, printing help for --help. Returns ARGS_PARSED, or the exit
 * code the command returns now (after --help or a bad option); the operands
 * are argv[optind..argc-1]. */
int parse_common_args(struct common *co, int argc, char **argv, const struct cmd_doc *d);
/* Handles a common option; false when c is not one. */
bool common_opt(struct common *co, int c, const char *arg);
/* For getopt's '?' and unknown values: prints usage hint, returns EXIT_USAGE. */
int usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* For getopt_long's ':' (missing value) and '?' (unknown option), with
 * optstrings that start with ':'. Returns EXIT_USAGE. */
int bad_option(const char *cmd, int c, char **argv);
/* Prints c->err as "tally: ..." and returns the exit code for rc. */
int client_fail(const struct client *c, enum client_rc rc);
/* Prints why (chainfile_load's) and returns the exit code for its rc: a
 * file that is missing or unreadable is an I/O error (EXIT_USAGE), one cut
 * short or damaged is not verified (EXIT_REFUSED; with json, printed as
 * {"verified": false, "errors": [why]}). */
int chainfile_fail(int rc, const char *why, bool json);

/* Where the ids of one kind are listed: GET list_path, the array list_key
 * of objects whose id_key is a 64-hex id. */
struct hex_prefix {
	const char *what;                /* "lease id", "provider key" */
	const char *list_path, *list_key, *id_key;
	const char *none_hint;           /* after "no WHAT starts with 'P'" */
};
/* An id from what a user typed, into out (lowercase): all 64 hex
 * characters, or a prefix of 8 or more (listings print 16) that exactly one
 * listed id starts with, in either case. EXIT_USAGE for what is not hex,
 * EXIT_REFUSED for a prefix none or several have, the message printed. */
int resolve_hex_prefix(struct client *c, const struct hex_prefix *h, const char *arg,
		       char out[65]);
/* The same, against ids the caller has at hand (a chain file's leases):
 * hex_match_begin checks what was typed (EXIT_USAGE, printed; all 64
 * characters match at once), hex_match_offer gives each candidate id (64
 * lowercase hex), hex_match_end the one id into out (EXIT_OK) or EXIT_REFUSED
 * for none or several, printed with none_hint after "no WHAT starts with". */
struct hex_match {
	char lower[65], id[65];
	size_t n, found;
};
int hex_match_begin(struct hex_match *m, const char *what, const char *arg);
void hex_match_offer(struct hex_match *m, const char *id);
int hex_match_end(const struct hex_match *m, const char *what, const char *none_hint,
		  char out[65]);
/* Polls GET /v1/tx/{hash}/status until the transaction is committed (its
 * height into *height; EXIT_OK) or dropped (the node's reason printed;
 * EXIT_REFUSED), at most timeout_s seconds (EXIT_REFUSED, saying what it
 * still is). */
int tx_wait_committed(struct client *cl, const char *hash, uint64_t timeout_s, uint64_t *height);
/* The same until the time end (time(2)), for a wait that several
 * transactions share; timeout_s is the whole wait's, for the message. */
int tx_wait_until(struct client *cl, const char *hash, time_t end, uint64_t timeout_s,
		  uint64_t *height);
/* --wait and --timeout S of the commands that can wait for a commit (their
 * opt_doc entries use the codes 'w' and 't'): WAIT_OPTS_INIT, then
 * wait_opt for each option, which is 1 when c was one of the two, 0 when
 * not, -1 for a --timeout that is not a number (said). */
struct wait_opts {
	bool wait;
	bool timeout_given;
	uint64_t timeout_s;
};
#define WAIT_OPTS_INIT { false, false, 60 }
#define WAIT_TIMEOUT_MAX_S 31536000   /* a year: a deadline that time_t holds */
int wait_opt(struct wait_opts *w, int c, const char *arg);
/* After the options: --timeout without --wait is refused (it would be
 * ignored), with a usage message naming the command. */
int wait_opts_check(const struct wait_opts *w, const char *cmd);
/* After a command ran: when it was given --json, failed (rc != 0) and
 * printed no JSON, prints {"ok": false, "error": its last message,
 * "exit_code": rc} on stdout, so a script always gets one object.
 * Returns rc. */
int json_failure_report(int rc);
/* --json is on the command line (found before the options are parsed, so
 * that a bad option or an unknown command also answers in JSON). */
void json_failure_expected(void);
/* "tally: ..." on stderr. */
void err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* What err() said last (without "tally: "), or "failed". */
const char *last_error(void);

/* $HOME, else the user's home from the password database, else NULL. */
const char *home_dir(void);
/* Loads the key at path with a message on failure (EXIT_USAGE). */
int load_key(struct tally_key *k, const char *path);
/* Loads the key at key_path, then connects a client to node; a message and
 * EXIT_USAGE (nothing left to free) on failure. */
int open_key_and_client(struct tally_key *k, const char *key_path, struct client *c,
			const char *node);
/* One GET of path from the node at node (its own client); the exit code,
 * with the message printed, on failure. */
int fetch_json(const char *node, const char *path, json_t **out);
/* Parses a 64-hex public key or 32-byte id; message naming what on failure. */
int parse_hex32(const char *s, uint8_t out[32], const char *what);
/* Parses an unsigned decimal integer strictly. */
int parse_u64(const char *s, uint64_t *out, const char *what);
/* Prints j to stdout (indented) and frees it; returns EXIT_OK. */
int print_json(json_t *j);
/* Integer from a JSON object (0 when absent). */
uint64_t jget_u64(const json_t *obj, const char *key);
const char *jget_str(const json_t *obj, const char *key);
/* Formats micro-units as "12.345678" into buf[32]. */
const char *fmt_amount(uint64_t micro, char *buf);

/* The chain a node runs: its id and genesis hash, which every signature is
 * bound to. */
struct chain_ref {
	char id[CHAIN_ID_MAX + 1];
	uint8_t genesis[HASH_LEN];
};
/* Whether st, a node's GET /v1/status answer, is not one: an object whose
 * chain_id is a valid chain id, genesis_hash, block_id and node 64 hex
 * characters and height a u64 (docs/PROTOCOL.md). When it is not, prints
 * which field is wrong and returns true; the caller exits with its
 * command's code for a node's malformed answer (EXIT_USAGE, as for an
 * answer that is not JSON; EXIT_REFUSED, "not verified", for chain verify
 * and audit). One rule for every command that reads the status. */
bool status_bad(const json_t *st);
/* Whether j, a node's answer the command calls `what` ("account",
 * "provider"), lacks one of the unsigned 64-bit integers named by the
 * NULL-ended keys ("balance", or a member of an object: "prices.vcpu_second").
 * A key written "?key" may be absent but, when present, must be one. When
 * one is wrong, prints which and returns true: the caller exits EXIT_USAGE,
 * as for an answer that is not JSON, instead of printing a 0 the node did not
 * say. */
bool answer_lacks_u64(const json_t *j, const char *what, const char *const *keys);
/* The chain from /v1/status (EXIT_USAGE for a status status_bad refuses). */
int fetch_chain(struct client *c, struct chain_ref *chain);
/* The signed-transaction path every writing command takes: the chain from
 * /v1/status and the signer's next nonce from /v1/accounts/{pubkey}. */
int fetch_chain_and_nonce(struct client *c, const uint8_t pub[PUBKEY_LEN],
			  struct chain_ref *chain, uint64_t *nonce);
/* Encodes the signed tx, POSTs it to /v1/tx, writes the hash (hex) into
 * hash_hex[65]. Returns an exit code, with the node's reason on refusal. */
struct tx;
int submit_tx(struct client *c, const struct tx *t, char hash_hex[65]);
/* Makes t (kind, body and nonce filled in) a TX_VERSION transaction of k's
 * for chain, signs it and submits it (submit_tx); what names it in "cannot
 * sign the <what>". */
int sign_and_submit(struct client *c, const struct tally_key *k, const struct chain_ref *chain,
		    struct tx *t, const char *what, char hash_hex[65]);

/* Commands. */
int cmd_key_new(int argc, char **argv);
int cmd_key_show(int argc, char **argv);
int cmd_node_init(int argc, char **argv);
int cmd_node_top(int argc, char **argv);
int cmd_node_meter_detach(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_account_show(int argc, char **argv);
int cmd_transfer(int argc, char **argv);
int cmd_tx(int argc, char **argv);
int cmd_submit(int argc, char **argv);
int cmd_stake(int argc, char **argv);
int cmd_unstake(int argc, char **argv);
int cmd_unjail(int argc, char **argv);
int cmd_validators(int argc, char **argv);
int cmd_lease_create(int argc, char **argv);
int cmd_lease_list(int argc, char **argv);
int cmd_lease_show(int argc, char **argv);
int cmd_lease_close(int argc, char **argv);
int cmd_lease_console(int argc, char **argv);
int cmd_lease_ssh(int argc, char **argv);
int cmd_usage(int argc, char **argv);
int cmd_audit(int argc, char **argv);
int cmd_chain_export(int argc, char **argv);
int cmd_chain_verify(int argc, char **argv);
int cmd_provider_list(int argc, char **argv);
int cmd_provider_show(int argc, char **argv);

/* The provider registry (cli/cmd_provider.c). provider_wait: GET
 * /v1/providers/KEY until the provider is registered (not withdrawn),
 * saying once on stderr that it waits; *out its JSON. EXIT_REFUSED after
 * timeout_s. provider_cheapest: of the registered providers that offer
 * shape's image, have its vCPUs, memory and GPUs in their capacity and
 * announce SLA bounds that admit shape's SLA terms, the one whose prices
 * and interval make shape's term cost least (settle_max_charge), ties to
 * the lower key; its key into key_hex[65]. */
struct lease_contract;
struct provider_offer;
int provider_wait(struct client *cl, const char *key_hex, uint64_t timeout_s, json_t **out);
/* The SLA bounds of provider answer p (GET /v1/providers[/KEY]) into o,
 * every other field zero: what provider_offer_sla_admits reads. A key
 * missing or not a number reads as 0. */
void provider_sla_bounds(const json_t *p, struct provider_offer *o);
/* A provider's key from what a user typed (into out, lowercase): all 64 hex
 * characters, or a prefix of 8 or more (the listings print 16) that one
 * registered provider's key starts with (GET /v1/providers). EXIT_USAGE
 * for what is not hex, EXIT_REFUSED for a prefix no provider or several
 * have, with the message printed. */
int provider_key_resolve(struct client *cl, const char *arg, char out[65]);
int provider_cheapest(struct client *cl, const struct lease_contract *shape, char key_hex[65],
		      json_t **out);

/* Their options and help, beside each command in cli/cmd_*.c. */
extern const struct cmd_doc doc_key_new, doc_key_show, doc_node_init, doc_node_top,
	doc_node_meter_detach, doc_status, doc_account_show, doc_transfer, doc_tx, doc_submit, doc_lease_create,
	doc_lease_list, doc_lease_show, doc_lease_close, doc_lease_console, doc_lease_ssh,
	doc_usage, doc_audit, doc_chain_export, doc_chain_verify, doc_provider_list,
	doc_provider_show, doc_stake, doc_unstake, doc_unjail, doc_validators;

/* A lease id from the command line: 64 hex, or a unique prefix of at least
 * 8 hex characters looked up in GET /v1/leases. Writes 64 hex into out. */
int resolve_lease_id(struct client *c, const char *arg, char out[65]);

/* The lease's private details (GET /v1/leases/{id}/private, signed with k):
 * an exit code, with the message printed, on failure. */
int fetch_lease_private(struct client *c, const struct tally_key *k, const char *id,
			json_t **out);

/* Shared by lease show, usage and audit: a lease from the node's JSON. */
struct lease;
int lease_from_json(const json_t *j, struct lease *l, char *why);

#endif
