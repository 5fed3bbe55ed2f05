/* tally submit [FILE]: signed transactions (hex, one a line) sent to the
 * node in POST /v1/txs batches, each answered in its place: pending, held
 * for an earlier nonce, or refused and why. For what signs many
 * transactions ahead (a script, a provider's tool): one request for up to
 * 256 of them instead of one each. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/progress.h"
#include "cli/tally.h"
#include "lib/chain/tx.h"
#include "lib/errors.h"
#include "lib/json_u64.h"

/* A batch is at most SUBMIT_BATCH_MAX transactions (POST /v1/txs) and its
 * body at most SUBMIT_BODY_MAX bytes (the API's limit, 64 KiB, less room
 * for the JSON around the entries). */
#define SUBMIT_BATCH_MAX 256
#define SUBMIT_BODY_MAX (64 * 1024 - 64)

static const struct opt_doc submit_opts[] = {
	{ "wait", 'w', NULL, "then wait until every admitted one is committed", 0 },
	{ "timeout", 't', "S", "with --wait, give up after S seconds in all (default 60)", 0 },
	{ NULL, 0, NULL, NULL, 0 },
};

const struct cmd_doc doc_submit = {
	.name = "submit",
	.synopsis = "[FILE] [--wait [--timeout S]] [--node URL] [--json]",
	.summary = "send signed transactions in batches",
	.description =
		"Sends the signed transactions in FILE (or standard input when FILE is\n"
		"absent or '-'), one in hex on each line (blank lines and lines starting\n"
		"with '#' are passed over), to the node in order, in POST /v1/txs batches\n"
		"of up to 256. Prints one line for each: its hash and whether the node\n"
		"took it (pending, or held for an earlier nonce of its account) or refused\n"
		"it, and why. A line that is not hex of a transaction is refused in its\n"
		"place; the others go on (one that is not hex of even length is refused\n"
		"here, unsent). A batch the node refuses whole has each of its lines\n"
		"refused with the node's answer. When the node does not answer a batch,\n"
		"what was sent before is reported and the lines not sent are named.",
	.opts = submit_opts,
	.epilog = "exit codes: 0 every one taken (and with --wait committed); 1 one refused,\n"
		  "dropped or not committed in time; 2 usage or I/O error",
};

struct line {
	char *hex;
	unsigned long no;                    /* line number, for messages */
	bool nul;                            /* it held a NUL byte (hex is cut there) */
};

/* The transactions in f, in order; NULL with a message printed on error. */
static struct line *read_lines(FILE *f, const char *name, size_t *n)
{
	struct line *v = NULL;
	size_t cap = 0;
	char *buf = NULL;
	size_t bcap = 0;
	ssize_t len;
	unsigned long no = 0;

	*n = 0;
	while ((len = getline(&buf, &bcap, f)) >= 0) {
		char *s = buf, *e;

		no++;
		bool nul = memchr(buf, 0, (size_t)len) != NULL;

		while (*s == ' ' || *s == '\t')
			s++;
		e = s + strlen(s);
		while (e > s && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
			*--e = '\0';
		if ((!*s || *s == '#') && !nul)
			continue;
		if (*n == cap) {
			size_t ncap = cap ? 2 * cap : 64;
			struct line *grown = realloc(v, ncap * sizeof(*v));

			if (!grown)
				goto nomem;
			v = grown;
			cap = ncap;
		}
		if (!(v[*n].hex = strdup(s)))
			goto nomem;
		v[*n].no = no;
		v[*n].nul = nul;
		(*n)++;
	}
	if (ferror(f)) {
		err("cannot read %s: %s", name, strerror(errno));
		goto fail;
	}
	free(buf);
	return v ? v : calloc(1, sizeof(*v));
nomem:
	err("out of memory reading %s", name);
fail:
	for (size_t i = 0; i < *n; i++)
		free(v[i].hex);
	free(v);
	free(buf);
	return NULL;
}

/* Why a line cannot be a transaction, checked here so that it is refused
 * in its place and never sent: in a batch it would be refused with the
 * whole batch (bytes that are not UTF-8 cannot even go into the JSON body,
 * a line too long makes the body too large for the node). Empty when it
 * is hex of even length within TX_MAX_SIZE bytes; else the reason, naming
 * the line, into why[WHY_LEN] and its error code into *code ("too_long"
 * or "encoding", the node's codes for the same faults). */
#define WHY_LEN 200
static bool line_bad(const struct line *l, char why[WHY_LEN], const char **code)
{
	size_t len = strlen(l->hex);

	*code = "encoding";
	if (l->nul) {
		snprintf(why, WHY_LEN, "line %lu is not hex of a transaction: it holds a NUL"
			 " byte", l->no);
		return true;
	}
	if (len > 2 * (size_t)TX_MAX_SIZE) {
		*code = "too_long";
		snprintf(why, WHY_LEN, "line %lu is %zu characters, longer than a transaction's"
			 " hex (at most %d)", l->no, len, 2 * TX_MAX_SIZE);
		return true;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)l->hex[i];

		if (strchr("0123456789abcdefABCDEF", ch) && ch)
			continue;
		if (ch >= 0x20 && ch < 0x7f)
			snprintf(why, WHY_LEN, "line %lu is not hex of a transaction: '%c' at"
				 " column %zu is not a hex digit", l->no, ch, i + 1);
		else
			snprintf(why, WHY_LEN, "line %lu is not hex of a transaction: byte 0x%02x"
				 " at column %zu is not a hex digit", l->no, ch, i + 1);
		return true;
	}
	if (len % 2) {
		snprintf(why, WHY_LEN, "line %lu is not hex of a transaction: an odd number of"
			 " hex digits (%zu)", l->no, len);
		return true;
	}
	return false;
}

static json_t *refused_here(const struct line *l)
{
	char why[WHY_LEN];
	const char *code;

	line_bad(l, why, &code);
	return json_pack("{s:s, s:s, s:s, s:I}", "status", "refused", "code", code,
			 "error", why, "line", (json_int_t)l->no);
}

/* How many of v[from..n) go in the next batch: up to a line refused here,
 * within the node's limits. */
static size_t batch_len(const struct line *v, size_t from, size_t n)
{
	size_t k = 0, body = 0;
	char why[WHY_LEN];
	const char *code;

	while (from + k < n && k < SUBMIT_BATCH_MAX && !line_bad(&v[from + k], why, &code)) {
		size_t add = strlen(v[from + k].hex) + 3;   /* quotes and a comma */

		if (k && body + add > SUBMIT_BODY_MAX)
			break;
		body += add;
		k++;
	}
	return k;
}

/* The hash of a line that is hex of some bytes, for a refusal's line: the
 * same transaction found again (already pending, its nonce used) is
 * named. */
static void add_hash(json_t *r, const struct line *l)
{
	size_t len = strlen(l->hex);
	uint8_t *bytes, hash[HASH_LEN];
	char hex[2 * HASH_LEN + 1];

	if (json_object_get(r, "hash") || !len || len % 2 || len > 2 * (size_t)TX_MAX_SIZE ||
	    !(bytes = malloc(len / 2)))
		return;
	if (!hex_decode(l->hex, bytes, len / 2)) {
		tx_hash(bytes, len / 2, hash);
		hex_encode(hash, HASH_LEN, hex);
		json_object_set_new(r, "hash", json_string(hex));
	}
	free(bytes);
}

static int send_batch(struct client *cl, const struct line *v, size_t k, json_t *results)
{
	json_t *arr = json_array(), *body, *answer = NULL, *got;
	enum client_rc rc;

	for (size_t i = 0; i < k; i++)
		json_array_append_new(arr, json_string(v[i].hex));
	body = json_pack("{s:o}", "txs", arr);
	rc = client_post(cl, "/v1/txs", body, &answer);
	json_decref(body);
	if (rc == CLIENT_REFUSED) {
		/* The node answered, refusing the batch whole (its shape, its
		 * size, a full disk): each line is refused in its place with the
		 * node's status, code and reason, and the next batch goes on. */
		for (size_t i = 0; i < k; i++) {
			json_t *r = json_pack("{s:s, s:I, s:s, s:s, s:I}", "status", "refused",
					      "http_status", (json_int_t)cl->status,
					      "code", cl->code, "error", cl->err,
					      "line", (json_int_t)v[i].no);

			add_hash(r, &v[i]);
			json_array_append_new(results, r);
		}
		return EXIT_OK;
	}
	if (rc)
		return client_fail(cl, rc);
	got = json_object_get(answer, "results");
	if (!json_is_array(got) || json_array_size(got) != k) {
		json_decref(answer);
		return err("the node's answer to a batch of %zu does not list each", k),
		       EXIT_USAGE;
	}
	for (size_t i = 0; i < k; i++) {
		json_t *r = json_array_get(got, i);

		json_object_set_new(r, "line", json_integer((json_int_t)v[i].no));
		add_hash(r, &v[i]);
		json_array_append(results, r);
	}
	json_decref(answer);
	return EXIT_OK;
}

static bool taken(const json_t *r)
{
	const char *st = json_string_value(json_object_get(r, "status"));

	return st && (!strcmp(st, "pending") || !strcmp(st, "held"));
}

int cmd_submit(int argc, char **argv)
{
	struct wait_opts w = WAIT_OPTS_INIT;
	struct optable ot;
	struct common co;
	struct client cl;
	struct progress pr;
	struct line *v;
	const char *name;
	json_t *results;
	size_t n, refused = 0, late = 0, sent = 0, here = 0;   /* here: refused, never sent */
	FILE *f;
	int c, r, rc = EXIT_OK;

	cmd_optable(&ot, &doc_submit, ":");
	common_init(&co);
	while ((c = getopt_long(argc, argv, ot.shortopts, ot.longopts, NULL)) != -1) {
		if (common_opt(&co, c, optarg))
			continue;
		if ((r = wait_opt(&w, c, optarg)) < 0)
			return EXIT_USAGE;
		if (!r)
			return bad_option("submit", c, argv);
	}
	if (co.help)
		return cmd_help(&doc_submit);
	if ((rc = wait_opts_check(&w, "submit")))
		return rc;
	if (argc - optind > 1)
		return usage_error("submit", "give at most one FILE");
	name = argc - optind == 1 ? argv[optind] : "-";
	f = strcmp(name, "-") ? fopen(name, "r") : stdin;
	if (!f)
		return err("cannot open %s: %s", name, strerror(errno)), EXIT_USAGE;
	v = read_lines(f, strcmp(name, "-") ? name : "standard input", &n);
	if (f != stdin)
		fclose(f);
	if (!v)
		return EXIT_USAGE;
	if (!n) {
		free(v);
		return err("no transaction in %s", strcmp(name, "-") ? name : "standard input"),
		       EXIT_USAGE;
	}
	if (client_init(&cl, co.node)) {
		err("%s", cl.err);
		rc = EXIT_USAGE;
		goto out_lines;
	}
	results = json_array();
	progress_start(&pr, "transactions submitted", n, co.json);
	/* A batch the node did not answer (unreachable, ...) ends it: what was
	 * sent before is still reported, and the lines not sent are named. */
	for (size_t k; sent < n && !rc; sent += k) {
		if (!batch_len(v, sent, n)) {
			json_array_append_new(results, refused_here(&v[sent]));
			here++;
			k = 1;
		} else {
			k = batch_len(v, sent, n);
			rc = send_batch(&cl, v + sent, k, results);
			if (rc)
				k = 0;
		}
		progress_step(&pr, sent + k);
	}
	progress_end(&pr);
	if (!rc && w.wait) {
		/* One deadline for them all: --timeout bounds the whole wait. */
		time_t end = time(NULL) + (time_t)w.timeout_s;
		size_t ntaken = 0, done = 0;

		for (size_t i = 0; i < json_array_size(results); i++)
			ntaken += taken(json_array_get(results, i));
		progress_start(&pr, "transactions committed", ntaken, co.json);
		for (size_t i = 0; i < json_array_size(results); i++) {
			json_t *r = json_array_get(results, i);
			uint64_t height = 0;

			if (!taken(r))
				continue;
			if (tx_wait_until(&cl, json_string_value(json_object_get(r, "hash")), end,
					  w.timeout_s, &height)) {
				late++;
				json_object_set_new(r, "committed", json_false());
			} else {
				json_object_set_new(r, "committed", json_true());
				json_object_set_new(r, "height", json_u64(height));
			}
			progress_step(&pr, ++done);
		}
		progress_end(&pr);
	}
	client_free(&cl);
	for (size_t i = 0; i < json_array_size(results); i++)
		refused += !taken(json_array_get(results, i));
	if (!rc && (refused || late))
		rc = EXIT_REFUSED;
	if (co.json) {
		json_t *out = json_pack("{s:o,s:I,s:I,s:I}", "results", results,
					"taken", (json_int_t)(json_array_size(results) - refused),
					"refused", (json_int_t)refused,
					"not_sent", (json_int_t)(n - sent));

		/* Refusals are in their places; error is for a batch with no
		 * answer, the reason the rest was not sent. */
		if (sent < n)
			json_object_set_new(out, "error", json_string(last_error()));
		print_json(out);
		goto out_lines;
	}
	for (size_t i = 0; i < json_array_size(results); i++) {
		json_t *r = json_array_get(results, i);
		const char *hash = json_string_value(json_object_get(r, "hash"));
		json_t *committed = json_object_get(r, "committed");

		if (taken(r))
			printf("%s  %s%s\n", hash, json_string_value(json_object_get(r, "status")),
			       !committed ? "" : json_is_true(committed) ? ", committed" :
			       ", not committed in time");
		else
			printf("%-64s  refused (line %" JSON_INTEGER_FORMAT "): %s\n",
			       hash ? hash : "-", json_integer_value(json_object_get(r, "line")),
			       json_string_value(json_object_get(r, "error")));
	}
	if (sent < n)
		fprintf(stderr, "tally: lines %lu to %lu not sent (the batch with line %lu got no"
			" answer, above)\n", v[sent].no, v[n - 1].no, v[sent].no);
	/* Of the lines the node was sent: one refused here was never its to take. */
	fprintf(stderr, "tally: %zu of %zu sent taken by the node", json_array_size(results) - refused,
		sent - here);
	if (here)
		fprintf(stderr, "; %zu refused here", here);
	fprintf(stderr, "%s\n", refused ? "; see the refusals above" : "");
	json_decref(results);
out_lines:
	for (size_t i = 0; i < n; i++)
		free(v[i].hex);
	free(v);
	return rc;
}
