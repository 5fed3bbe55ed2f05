/* What every tally command shares: the common options, help, error
 * output, keys, JSON helpers, signing and submission, a lease from the
 * node's JSON. Every command takes --help, --json, --node URL and --key
 * FILE; exit codes are 0 (ok), 1 (verification failed or the node refused)
 * and 2 (usage or I/O error). docs/CLI.md documents them all. */
#include "cli/tally.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/progress.h"
#include "contracts/contract.h"
#include "lib/errors.h"
#include "lib/json_u64.h"
#include "lib/chain/tx.h"

const struct opt_doc cli_common_opts[] = {
	{ "node", OPT_NODE, "URL", "the node's API (default $TALLY_NODE, else " DEFAULT_NODE ")", 0 },
	{ "key", OPT_KEY, "FILE", "your key (default $TALLY_KEY, else ~/.config/tally/key.pem)", 0 },
	{ "cacert", OPT_CACERT, "FILE", "trust the CAs in FILE for an https:// node (default\n"
	  "$TALLY_CACERT, else the system's CAs)", 0 },
	{ "json", OPT_JSON, NULL, "machine-readable output", 0 },
	{ "help", OPT_HELP, NULL, "this help", OPT_SHORT },
	{ NULL, 0, NULL, NULL, 0 },
};

int cmd_help(const struct cmd_doc *d)
{
	optable_help(stdout, "tally", d, cli_common_opts);
	return EXIT_OK;
}

void cmd_optable(struct optable *t, const struct cmd_doc *d, const char *prefix)
{
	/* The tables are constant, and man/gen.c builds every command's when
	 * the man page is made: a table that does not fit fails the build. */
	if (optable_build(t, prefix, d->opts, cli_common_opts))
		abort();
}

/* --- shared helpers ------------------------------------------------------ */

const char *home_dir(void)
{
	const char *home = getenv("HOME");
	const struct passwd *pw;

	if (home && *home)
		return home;
	/* Without $HOME (a service, env -i): the account's own, not "." */
	pw = getpwuid(getuid());
	return pw && pw->pw_dir && *pw->pw_dir ? pw->pw_dir : NULL;
}

/* A command run with --json that fails before it printed its JSON still
 * owes stdout one object (json_failure_report): what it said last. */
static struct {
	bool asked, printed;
	char last[1024];
} json_state;

static void remember(const char *fmt, va_list ap)
{
	vsnprintf(json_state.last, sizeof(json_state.last), fmt, ap);
}

const char *last_error(void)
{
	return json_state.last[0] ? json_state.last : "failed";
}

void json_failure_expected(void)
{
	json_state.asked = true;
}

int json_failure_report(int rc)
{
	if (rc == EXIT_OK || !json_state.asked || json_state.printed)
		return rc;
	print_json(json_pack("{s:b,s:s,s:i}", "ok", 0, "error", last_error(), "exit_code", rc));
	return rc;
}

void err(const char *fmt, ...)
{
	va_list ap;

	progress_interrupt();
	fputs("tally: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	va_start(ap, fmt);
	remember(fmt, ap);
	va_end(ap);
}

int client_fail(const struct client *c, enum client_rc rc)
{
	err("%s", c->err);
	return rc == CLIENT_REFUSED ? EXIT_REFUSED : EXIT_USAGE;
}

int wait_opt(struct wait_opts *w, int c, const char *arg)
{
	if (c == 'w') {
		w->wait = true;
		return 1;
	}
	if (c != 't')
		return 0;
	w->timeout_given = true;
	if (parse_u64(arg, &w->timeout_s, "--timeout"))
		return -1;
	if (w->timeout_s > WAIT_TIMEOUT_MAX_S) {
		err("--timeout %" PRIu64 " is more than %d s (a year)", w->timeout_s,
		    WAIT_TIMEOUT_MAX_S);
		return -1;
	}
	return 1;
}

int wait_opts_check(const struct wait_opts *w, const char *cmd)
{
	if (w->timeout_given && !w->wait)
		return usage_error(cmd, "--timeout is for --wait: give both, or neither");
	return EXIT_OK;
}

int tx_wait_committed(struct client *cl, const char *hash, uint64_t timeout_s, uint64_t *height)
{
	return tx_wait_until(cl, hash, time(NULL) + (time_t)timeout_s, timeout_s, height);
}

int tx_wait_until(struct client *cl, const char *hash, time_t end, uint64_t timeout_s,
		  uint64_t *height)
{
	time_t was = cl->retry_until, was_reach = cl->reach_until;
	char path[160];
	int rc;

	snprintf(path, sizeof(path), "/v1/tx/%s/status", hash);
	/* A node's 429s, and a node down for a while, are waited out only
	 * until the wait's own end. */
	cl->retry_until = end;
	cl->reach_until = end;
	for (;;) {
		json_t *st;
		enum client_rc crc = client_get(cl, path, &st);
		const char *status;

		/* Still refused for the rate: the waits it named ran past the end. */
		if (crc == CLIENT_REFUSED && cl->status == 429) {
			err("transaction %s not committed after %" PRIu64 " s (the node at %s asks"
			    " to slow down: %s)", hash, timeout_s, cl->base, cl->err);
			rc = EXIT_REFUSED;
			break;
		}
		if (crc) {
			rc = client_fail(cl, crc);
			break;
		}
		status = jget_str(st, "status");
		if (!strcmp(status, "committed")) {
			*height = jget_u64(st, "height");
			json_decref(st);
			rc = EXIT_OK;
			break;
		}
		if (!strcmp(status, "refused")) {
			err("transaction %s was refused when the node checked it: %s", hash,
			    jget_str(st, "reason"));
			json_decref(st);
			rc = EXIT_REFUSED;
			break;
		}
		if (!strcmp(status, "dropped")) {
			err("transaction %s was left out of block %" PRIu64 ": %s", hash,
			    jget_u64(st, "height"), jget_str(st, "reason"));
			json_decref(st);
			rc = EXIT_REFUSED;
			break;
		}
		if (time(NULL) >= end) {
			err("transaction %s not committed after %" PRIu64 " s (still %s)", hash,
			    timeout_s, status);
			json_decref(st);
			rc = EXIT_REFUSED;
			break;
		}
		json_decref(st);
		usleep(200 * 1000);
	}
	cl->retry_until = was;
	cl->reach_until = was_reach;
	return rc;
}


int hex_match_begin(struct hex_match *m, const char *what, const char *arg)
{
	size_t n = strlen(arg), i;

	memset(m, 0, sizeof(*m));
	for (i = 0; i < n && i < 64 && isxdigit((unsigned char)arg[i]); i++)
		/* Shown in lowercase; one copied in capitals is the same. */
		m->lower[i] = (char)tolower((unsigned char)arg[i]);
	if (i != n || n < 8 || n > 64) {
		err("%s '%s' is not 64 hex characters (or a prefix of 8 or more)", what, arg);
		return EXIT_USAGE;
	}
	m->lower[n] = '\0';
	m->n = n;
	if (n == 64) {
		memcpy(m->id, m->lower, 65);
		m->found = 1;
	}
	return EXIT_OK;
}

void hex_match_offer(struct hex_match *m, const char *id)
{
	if (m->n == 64 || strlen(id) != 64 || strncmp(id, m->lower, m->n))
		return;
	if (m->found++ == 0)
		memcpy(m->id, id, 65);
}

int hex_match_end(const struct hex_match *m, const char *what, const char *none_hint,
		  char out[65])
{
	if (m->found == 1) {
		memcpy(out, m->id, 65);
		return EXIT_OK;
	}
	if (m->found)
		err("%s prefix '%s' is ambiguous", what, m->lower);
	else
		err("no %s starts with '%s'%s", what, m->lower, none_hint);
	return EXIT_REFUSED;
}

int resolve_hex_prefix(struct client *c, const struct hex_prefix *h, const char *arg,
		       char out[65])
{
	struct hex_match m;
	json_t *j, *item;
	enum client_rc rc;
	size_t i;
	int erc = hex_match_begin(&m, h->what, arg);

	if (erc || m.n == 64)
		return erc ? erc : hex_match_end(&m, h->what, h->none_hint, out);
	rc = client_get(c, h->list_path, &j);
	if (rc)
		return client_fail(c, rc);
	json_array_foreach(json_object_get(j, h->list_key), i, item)
		hex_match_offer(&m, jget_str(item, h->id_key));
	json_decref(j);
	return hex_match_end(&m, h->what, h->none_hint, out);
}

int chainfile_fail(int rc, const char *why, bool json)
{
	err("%s", why);
	if (rc == TALLY_E_NOTFOUND || rc == TALLY_E_IO || rc == TALLY_E_NOMEM)
		return EXIT_USAGE;
	if (json)
		print_json(json_pack("{s:b,s:[s]}", "verified", 0, "errors", why));
	return EXIT_REFUSED;
}

int usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fputs("tally: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nsee 'tally %s --help'\n", cmd);
	va_start(ap, fmt);
	remember(fmt, ap);
	va_end(ap);
	return EXIT_USAGE;
}

void common_init(struct common *co)
{
	static char keypath[4096];
	const char *env;

	memset(co, 0, sizeof(*co));
	env = getenv("TALLY_NODE");
	co->node = env && *env ? env : DEFAULT_NODE;
	client_set_cacert(getenv("TALLY_CACERT"));
	env = getenv("TALLY_KEY");
	if (env && *env) {
		co->key = env;
	} else {
		snprintf(keypath, sizeof(keypath), "%s/.config/tally/key.pem",
			 home_dir() ? home_dir() : ".");
		co->key = keypath;
	}
	/* Each command parses its own argv from the start, and reports bad
	 * options itself (bad_option), naming the command. */
	optind = 0;
	opterr = 0;
}

int bad_option(const char *cmd, int c, char **argv)
{
	const char *opt = optind > 0 ? argv[optind - 1] : "?";

	if (c == ':')
		return usage_error(cmd, "option '%s' needs a value", opt);
	if (optopt && optopt < 256)
		return usage_error(cmd, "unknown option '-%c'", optopt);
	return usage_error(cmd, "unknown option '%s'", opt);
}

int parse_common_args(struct common *co, int argc, char **argv, const struct cmd_doc *d)
{
	struct optable t;
	int c;

	cmd_optable(&t, d, ":");
	common_init(co);
	while ((c = getopt_long(argc, argv, t.shortopts, t.longopts, NULL)) != -1)
		if (!common_opt(co, c, optarg))
			return bad_option(d->name, c, argv);
	if (co->help)
		return cmd_help(d);
	return ARGS_PARSED;
}

bool common_opt(struct common *co, int c, const char *arg)
{
	switch (c) {
	case OPT_HELP:
		co->help = true;
		return true;
	case OPT_JSON:
		co->json = json_state.asked = true;
		return true;
	case OPT_NODE:
		co->node = arg;
		return true;
	case OPT_KEY:
		co->key = arg;
		return true;
	case OPT_CACERT:
		client_set_cacert(arg);
		return true;
	}
	return false;
}

int load_key(struct tally_key *k, const char *path)
{
	int rc = key_load_pem(k, path), os_err = errno;
	struct stat st;

	/* fopen() opens a directory, and reading it fails: said as what it
	 * is, not as a file that holds no key. */
	if (rc && !stat(path, &st) && S_ISDIR(st.st_mode))
		err("cannot load the key %s: it is a directory (--key names the key's file)",
		    path);
	else if (rc == TALLY_E_NOTFOUND)
		err("no key at %s (make one with 'tally key new --key %s')", path, path);
	else if (rc == TALLY_E_KEY)
		err("cannot load the key %s: it is not an unencrypted Ed25519 private key in PEM"
		    " (as 'tally key new' writes; an RSA or ECDSA key, a public key or a key"
		    " with a passphrase is refused)", path);
	else if (rc == TALLY_E_IO)
		err("cannot open the key %s: %s", path, strerror(os_err));
	else if (rc)
		err("cannot load the key %s: %s", path, tally_strerror(rc));
	else if (!stat(path, &st) && (st.st_mode & 007))
		fprintf(stderr, "tally: warning: the key %s may be read by any user (mode"
			" %04o): chmod 600 %s\n", path, (unsigned)(st.st_mode & 07777), path);
	return rc ? EXIT_USAGE : EXIT_OK;
}

int open_key_and_client(struct tally_key *k, const char *key_path, struct client *c,
			const char *node)
{
	if (load_key(k, key_path))
		return EXIT_USAGE;
	if (client_init(c, node)) {
		key_free(k);
		err("%s", c->err);
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

int fetch_json(const char *node, const char *path, json_t **out)
{
	struct client cl;
	enum client_rc rc;
	int ec = EXIT_OK;

	if (client_init(&cl, node))
		return err("%s", cl.err), EXIT_USAGE;
	rc = client_get(&cl, path, out);
	if (rc)
		ec = client_fail(&cl, rc);
	client_free(&cl);
	return ec;
}

int parse_hex32(const char *s, uint8_t out[32], const char *what)
{
	if (strlen(s) != 64 || hex_decode(s, out, 32) != 0) {
		err("%s '%s' is not 64 hex characters", what, s);
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

int parse_u64(const char *s, uint64_t *out, const char *what)
{
	char *end;

	errno = 0;
	/* Digits only: strtoull() would also take blanks and a sign first. */
	if (*s < '0' || *s > '9') {
		err("%s '%s' is not a non-negative integer", what, s);
		return EXIT_USAGE;
	}
	unsigned long long v = strtoull(s, &end, 10);
	if (*end) {
		err("%s '%s' is not a non-negative integer", what, s);
		return EXIT_USAGE;
	}
	if (errno == ERANGE) {
		err("%s '%s' is too large (at most %" PRIu64 ")", what, s, UINT64_MAX);
		return EXIT_USAGE;
	}
	*out = v;
	return EXIT_OK;
}

int print_json(json_t *j)
{
	json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	fputc('\n', stdout);
	json_decref(j);
	json_state.printed = true;
	return EXIT_OK;
}

uint64_t jget_u64(const json_t *obj, const char *key)
{
	uint64_t v = 0;

	return json_u64_get(json_object_get(obj, key), &v) ? 0 : v;
}

const char *jget_str(const json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s ? s : "";
}

const char *fmt_amount(uint64_t micro, char *buf)
{
	snprintf(buf, 32, "%" PRIu64 ".%06" PRIu64, micro / 1000000, micro % 1000000);
	return buf;
}

/* 64 hex characters (a key, a hash) in st's field key. */
static bool hex32_field(const json_t *st, const char *key)
{
	uint8_t b[32];
	const char *s = json_string_value(json_object_get(st, key));

	return s && strlen(s) == 64 && !hex_decode(s, b, sizeof(b));
}

bool status_bad(const json_t *st)
{
	const char *what = NULL;
	uint64_t height;

	if (!json_is_object(st))
		what = "is not a JSON object";
	else if (chain_id_valid(jget_str(st, "chain_id")))
		what = "gives no chain id (a string of 1 to 64 letters, digits, '-', '_' and '.')";
	else if (!hex32_field(st, "genesis_hash"))
		what = "gives no genesis hash (64 hex characters)";
	else if (json_u64_get(json_object_get(st, "height"), &height))
		what = "gives no height (a number from 0 up)";
	else if (!hex32_field(st, "block_id"))
		what = "gives no block id (64 hex characters)";
	else if (!hex32_field(st, "node"))
		what = "gives no node key (64 hex characters)";
	if (what)
		err("the node's status %s: it is not a tally node, or a broken one", what);
	return what != NULL;
}

bool answer_lacks_u64(const json_t *j, const char *what, const char *const *keys)
{
	for (; *keys; keys++) {
		const char *key = *keys, *dot;
		bool optional = key[0] == '?';
		const json_t *obj = j, *v;
		uint64_t n;

		key += optional;
		dot = strchr(key, '.');
		if (dot) {
			char head[64];

			snprintf(head, sizeof(head), "%.*s", (int)(dot - key), key);
			obj = json_object_get(j, head);
		}
		v = json_object_get(obj, dot ? dot + 1 : key);
		if ((optional && !v) || (json_is_object(obj) && !json_u64_get(v, &n)))
			continue;
		err("the node's %s answer gives no %s (a number from 0 up): it is not a tally"
		    " node, or a broken one", what, key);
		return true;
	}
	return false;
}

int fetch_chain(struct client *c, struct chain_ref *chain)
{
	enum client_rc rc;
	json_t *j;

	rc = client_get(c, "/v1/status", &j);
	if (rc)
		return client_fail(c, rc);
	if (status_bad(j)) {
		json_decref(j);
		return EXIT_USAGE;
	}
	snprintf(chain->id, sizeof(chain->id), "%s", jget_str(j, "chain_id"));
	hex_decode(jget_str(j, "genesis_hash"), chain->genesis, HASH_LEN);
	json_decref(j);
	return EXIT_OK;
}

int fetch_chain_and_nonce(struct client *c, const uint8_t pub[PUBKEY_LEN],
			  struct chain_ref *chain, uint64_t *nonce)
{
	char path[128], hex[65];
	json_t *j;
	enum client_rc rc;
	int ex = fetch_chain(c, chain);

	if (ex)
		return ex;
	hex_encode(pub, PUBKEY_LEN, hex);
	snprintf(path, sizeof(path), "/v1/accounts/%s", hex);
	rc = client_get(c, path, &j);
	if (rc)
		return client_fail(c, rc);
	/* next_nonce counts the node's mempool (nodes before it only "nonce") */
	*nonce = jget_u64(j, json_object_get(j, "next_nonce") ? "next_nonce" : "nonce");
	json_decref(j);
	return EXIT_OK;
}

int submit_tx(struct client *c, const struct tx *t, char hash_hex[65])
{
	uint8_t hash[HASH_LEN];
	struct enc e;
	enum client_rc rc;
	json_t *body, *ans = NULL;

	enc_init(&e);
	tx_encode(&e, t);
	if (enc_error(&e)) {
		err("cannot encode the transaction: %s", tally_strerror(enc_error(&e)));
		enc_free(&e);
		return EXIT_USAGE;
	}
	tx_hash(e.buf, e.len, hash);
	hex_encode(hash, HASH_LEN, hash_hex);
	char *hex = malloc(2 * e.len + 1);
	if (!hex) {
		enc_free(&e);
		err("out of memory");
		return EXIT_USAGE;
	}
	hex_encode(e.buf, e.len, hex);
	enc_free(&e);
	body = json_pack("{s:s}", "tx", hex);
	free(hex);
	rc = client_post(c, "/v1/tx", body, &ans);
	json_decref(body);
	if (rc)
		return client_fail(c, rc);
	const char *got = jget_str(ans, "hash");
	if (*got && strcmp(got, hash_hex))
		err("warning: the node reports hash %s for transaction %s", got, hash_hex);
	json_decref(ans);
	return EXIT_OK;
}

int sign_and_submit(struct client *c, const struct tally_key *k, const struct chain_ref *chain,
		    struct tx *t, const char *what, char hash_hex[65])
{
	t->version = TX_VERSION;
	snprintf(t->chain_id, sizeof(t->chain_id), "%s", chain->id);
	memcpy(t->signer, k->pub, PUBKEY_LEN);
	if (tx_sign(t, k, chain->genesis)) {
		err("cannot sign the %s", what);
		return EXIT_USAGE;
	}
	return submit_tx(c, t, hash_hex);
}

/* --- a lease from the node's JSON ---------------------------------------- */

int lease_from_json(const json_t *j, struct lease *l, char *why)
{
	const char *hex;
	char cwhy[WHY_MAX] = "";
	int rc;

	memset(l, 0, sizeof(*l));
	/* Preferred: the canonical encoding, when the node sends it. */
	hex = json_string_value(json_object_get(j, "encoded"));
	if (hex) {
		size_t n = strlen(hex) / 2;
		uint8_t *buf = malloc(n ? n : 1);
		if (!buf)
			return TALLY_E_NOMEM;
		rc = strlen(hex) % 2 ? TALLY_E_ENCODING : hex_decode(hex, buf, n);
		if (!rc)
			rc = lease_decode(l, buf, n);
		free(buf);
		if (rc)
			snprintf(why, WHY_MAX, "the lease encoding does not decode: %s",
				 tally_strerror(rc));
		return rc;
	}
	hex = jget_str(j, "id");
	if (strlen(hex) != 64 || hex_decode(hex, l->id, LEASE_ID_LEN)) {
		snprintf(why, WHY_MAX, "the lease has no valid \"id\"");
		return TALLY_E_ENCODING;
	}
	json_t *c = json_object_get(j, "contract");
	char *ctext = c ? json_dumps(c, JSON_COMPACT) : NULL;
	rc = ctext ? contract_from_json(&l->contract, ctext, cwhy) : TALLY_E_INVALID;
	free(ctext);
	if (rc) {
		snprintf(why, WHY_MAX, "the lease's contract: %s", cwhy[0] ? cwhy : "missing");
		return rc;
	}
	json_t *st = json_object_get(j, "state"), *cr = json_object_get(j, "close_reason");
	int s = -1, r = 0;
	if (json_is_integer(st))
		s = (int)json_integer_value(st);
	else if (json_is_string(st))
		for (int i = LEASE_OPENED; i <= LEASE_STATE_MAX; i++)
			if (!strcmp(json_string_value(st), lease_state_name(i)))
				s = i;
	if (json_is_integer(cr))
		r = (int)json_integer_value(cr);
	else if (json_is_string(cr)) {
		r = -1;
		for (int i = CLOSE_NONE; i <= CLOSE_REASON_MAX; i++)
			if (!strcmp(json_string_value(cr), lease_close_reason_name(i)))
				r = i;
	}
	if (s < LEASE_OPENED || s > LEASE_STATE_MAX || r < 0 || r > CLOSE_REASON_MAX) {
		snprintf(why, WHY_MAX, "the lease's state or close reason is unknown");
		return TALLY_E_RANGE;
	}
	l->state = (uint8_t)s;
	l->close_reason = (uint8_t)r;
	l->escrow = jget_u64(j, "escrow");
	l->charged = jget_u64(j, "charged");
	l->sla_credits = jget_u64(j, "sla_credits");
	l->next_seq = jget_u64(j, "next_seq");
	l->cpu_ns = jget_u64(j, "cpu_ns");
	l->run_delay_ns = jget_u64(j, "run_delay_ns");
	l->gpu_ns = jget_u64(j, "gpu_ns");
	l->closing_ns = jget_u64(j, "closing_ns");
	l->close_asked_ns = jget_u64(j, "close_asked_ns");
	l->opened_height = jget_u64(j, "opened_height");
	l->started_ns = jget_u64(j, "started_ns");
	l->closed_height = jget_u64(j, "closed_height");
	l->last_end_ns = jget_u64(j, "last_end_ns");
	hex = jget_str(j, "last_usage_hash");
	if (strlen(hex) == 64)
		hex_decode(hex, l->last_usage_hash, HASH_LEN);
	return 0;
}
