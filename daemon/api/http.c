#include "daemon/api/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "daemon/api/ratelimit.h"
#include "daemon/log.h"
#include "lib/decimal.h"
#include "lib/errors.h"
#include "lib/keyed_hash.h"

/* Query arguments one request may carry; more is refused before anything
 * looks at them (duplicates are checked pairwise). */
#define HTTP_QUERY_ARGS_MAX 32
/* TLS 1.2 and 1.3 only, GnuTLS's default suites otherwise. */
#define HTTP_TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"
#define HTTP_TLS_FILE_MAX (1024 * 1024)

struct http_server {
	struct MHD_Daemon *mhd;
	const struct http_route *routes;
	size_t nroutes;
	void *ctx;
	struct ratelimit *limit;
	int tls;
	char *tls_cert;           /* PEM text, alive as long as the daemon */
	char *tls_key;
	/* updated with atomics: MHD runs a thread pool */
	uint64_t errors;
	uint64_t faults;
	uint64_t limited;
};

/* Per-request state: the upload buffer. */
struct upload {
	uint8_t *buf;
	size_t len;
	int too_large;
};

/* The first field of a request built without a connection: query keys
 * match exactly, header names without regard to case, as MHD does. */
static const char *field_lookup(const struct http_request *req, int is_query, const char *name,
				unsigned *count)
{
	const char *first = NULL;

	*count = 0;
	for (size_t i = 0; i < req->nfields; i++) {
		const struct http_field *f = &req->fields[i];

		if (f->is_query != is_query || !f->name ||
		    (is_query ? strcmp(f->name, name) : strcasecmp(f->name, name)))
			continue;
		if ((*count)++ == 0)
			first = f->value;
	}
	return first;
}

const char *http_query(const struct http_request *req, const char *key)
{
	unsigned n;

	if (!req->conn)
		return field_lookup(req, 1, key, &n);
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *http_header(const struct http_request *req, const char *name)
{
	unsigned n;

	if (!req->conn)
		return field_lookup(req, 0, name, &n);
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

struct header_count {
	const char *name;
	const char *first;
	unsigned n;
};

static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind, const char *key,
				    const char *value)
{
	struct header_count *hc = cls;
	(void)kind;

	if (key && !strcasecmp(key, hc->name)) {
		if (hc->n++ == 0)
			hc->first = value;
	}
	return MHD_YES;
}

int http_header_once(const struct http_request *req, const char *name, const char **value)
{
	struct header_count hc = { .name = name };

	if (req->conn)
		MHD_get_connection_values(req->conn, MHD_HEADER_KIND, count_header, &hc);
	else
		hc.first = field_lookup(req, 0, name, &hc.n);
	*value = hc.first;
	if (hc.n == 0 || !hc.first)
		return TALLY_E_NOTFOUND;
	return hc.n > 1 ? TALLY_E_EXISTS : 0;
}

/* The comma that ends the preference at p, or NULL for the last one: a
 * comma inside a quoted-string value (RFC 7230 section 3.2.6, with its
 * backslash escapes) is part of that value, not a separator. */
static const char *prefer_next(const char *p)
{
	bool quoted = false;

	for (; *p; p++) {
		if (quoted && *p == '\\' && p[1])
			p++;
		else if (*p == '"')
			quoted = !quoted;
		else if (!quoted && *p == ',')
			return p;
	}
	return NULL;
}

/* Whether token is one of the comma-separated preference names in value
 * (RFC 7240 section 2: a name, optionally "=value" and ";params" after it;
 * names compare without regard to case). */
static bool prefer_lists(const char *value, const char *token)
{
	size_t tlen = strlen(token);

	for (const char *p = value; p && *p;) {
		size_t n;

		p += strspn(p, " \t,");
		n = strcspn(p, " \t,;=");
		if (n == tlen && !strncasecmp(p, token, n))
			return true;
		p = prefer_next(p);
	}
	return false;
}

struct prefer_scan {
	const char *token;
	bool found;
};

static enum MHD_Result scan_prefer(void *cls, enum MHD_ValueKind kind, const char *key,
				   const char *value)
{
	struct prefer_scan *ps = cls;
	(void)kind;

	if (key && value && !strcasecmp(key, "Prefer") && prefer_lists(value, ps->token))
		ps->found = true;
	return MHD_YES;
}

bool http_prefers(const struct http_request *req, const char *token)
{
	struct prefer_scan ps = { token, false };

	if (req->conn) {
		MHD_get_connection_values(req->conn, MHD_HEADER_KIND, scan_prefer, &ps);
		return ps.found;
	}
	for (size_t i = 0; i < req->nfields; i++) {
		const struct http_field *f = &req->fields[i];

		if (!f->is_query && f->name && f->value && !strcasecmp(f->name, "Prefer") &&
		    prefer_lists(f->value, token))
			return true;
	}
	return false;
}

int http_query_u64(const struct http_request *req, const char *key, uint64_t *out)
{
	const char *s = http_query(req, key);

	if (!s)
		return TALLY_E_NOTFOUND;
	return decimal_u64(s, strlen(s), out);
}

/* Length of the well-formed UTF-8 character at p (RFC 3629, table 3-7 of
 * the Unicode standard: no overlong forms, no surrogates, nothing above
 * U+10FFFF), or 0 when p does not start one. */
static size_t utf8_char_len(const unsigned char *p)
{
	unsigned char c = p[0];
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return n;
}

/* How one character of in is written: its own n bytes, or escaped as \xNN
 * (4 bytes) when it is not well-formed or is a control character. */
static size_t clean_step(const unsigned char *p, size_t *consumed, int *escape)
{
	size_t n = utf8_char_len(p);

	*escape = n == 0 || (n == 1 && (*p < 0x20 || *p == 0x7f));
	*consumed = *escape ? 1 : n;
	return *escape ? 4 : n;
}

size_t http_clean_text(char *out, size_t cap, const char *in)
{
	static const char ellipsis[] = "...";
	const unsigned char *p;
	size_t o = 0, total = 0, used, need;
	int escape;

	for (p = (const unsigned char *)in; *p; p += used)
		total += clean_step(p, &used, &escape);
	int cut = total > cap - 1;
	size_t limit = cut ? cap - sizeof(ellipsis) : cap - 1;
	for (p = (const unsigned char *)in; *p; p += used) {
		need = clean_step(p, &used, &escape);
		if (o + need > limit)
			break;
		if (escape)
			snprintf(out + o, 5, "\\x%02x", *p);
		else
			memcpy(out + o, p, used);
		o += need;
	}
	if (cut) {
		memcpy(out + o, ellipsis, sizeof(ellipsis));
		return o + sizeof(ellipsis) - 1;
	}
	out[o] = '\0';
	return o;
}

void http_json(struct http_response *resp, unsigned status, json_t *body)
{
	json_decref(resp->json);
	resp->status = status;
	resp->json = body;
}

void http_error(struct http_response *resp, unsigned status, const char *code,
		const char *fmt, ...)
{
	char raw[4 * HTTP_ERROR_MAX], msg[HTTP_ERROR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	http_clean_text(msg, sizeof(msg), raw);
	free(resp->text);
	resp->text = NULL;
	resp->code = code;
	http_json(resp, status, json_pack("{s:s, s:s}", "error", msg, "code", code));
}

static const struct {
	int err;
	unsigned status;
	const char *code;
} error_map[] = {
	{ TALLY_E_NOMEM, 503, "unavailable" },
	{ TALLY_E_IO, 500, "internal" },
	{ TALLY_E_INVALID, 400, "invalid" },
	{ TALLY_E_NOTFOUND, 404, "not_found" },
	{ TALLY_E_EXISTS, 409, "exists" },
	{ TALLY_E_TRUNCATED, 400, "truncated" },
	{ TALLY_E_TRAILING, 400, "trailing" },
	{ TALLY_E_VERSION, 400, "version" },
	{ TALLY_E_TOOLONG, 400, "too_long" },
	{ TALLY_E_RANGE, 400, "range" },
	{ TALLY_E_ENCODING, 400, "encoding" },
	{ TALLY_E_KEY, 400, "key" },
	{ TALLY_E_SIGNATURE, 400, "signature" },
	{ TALLY_E_CHAIN_ID, 400, "chain_id" },
	{ TALLY_E_NONCE, 409, "nonce" },
	{ TALLY_E_REPLAY, 409, "replay" },
	{ TALLY_E_BALANCE, 402, "balance" },
	{ TALLY_E_OVERFLOW, 400, "overflow" },
	{ TALLY_E_EXPIRED, 400, "expired" },
	{ TALLY_E_STATE, 409, "state" },
	{ TALLY_E_UNAUTHORIZED, 403, "unauthorized" },
	{ TALLY_E_CONTRACT, 400, "contract" },
	{ TALLY_E_CAPACITY, 409, "capacity" },
	{ TALLY_E_DISKFULL, 507, "disk_full" },
	{ TALLY_E_UNAVAILABLE, 503, "unavailable" },
	{ TALLY_E_USAGECHAIN, 409, "usage_chain" },
	{ TALLY_E_BILL, 400, "bill" },
	{ TALLY_E_LINK, 400, "link" },
	{ TALLY_E_HEIGHT, 400, "height" },
	{ TALLY_E_TXROOT, 400, "txs_root" },
	{ TALLY_E_USAGEROOT, 400, "usage_root" },
	{ TALLY_E_STATEROOT, 400, "state_root" },
	{ TALLY_E_VALSET, 400, "validators" },
	{ TALLY_E_CERT, 400, "certificate" },
	{ TALLY_E_QUORUM, 400, "quorum" },
	{ TALLY_E_FUTURE, 400, "future" },
	{ TALLY_E_PROOF_INDEX, 400, "range" },
	{ TALLY_E_PROOF_SIZE, 400, "proof" },
	{ TALLY_E_PROOF_ROOT, 400, "proof" },
	{ TALLY_E_PROOF_RANGE, 400, "range" },
};

unsigned http_status_of(int err, const char **code)
{
	for (size_t i = 0; i < sizeof(error_map) / sizeof(error_map[0]); i++) {
		if (error_map[i].err == err) {
			*code = error_map[i].code;
			return error_map[i].status;
		}
	}
	*code = "internal";     /* the node's own failures: store, crypto, bugs */
	return 500;
}

void http_error_from(struct http_response *resp, int err, const char *why)
{
	const char *code;
	unsigned status = http_status_of(err, &code);

	http_error(resp, status, code, "%s", why && *why ? why : tally_strerror(err));
}

/* Splits path into segments in place; returns -1 when it has too many or an
 * empty one (a//b), which no route accepts. */
static int split_path(char *path, struct http_request *req)
{
	char *save = NULL;

	req->nseg = 0;
	if (path[0] != '/')
		return -1;
	if (path[1] == '\0')
		return 0;
	if (strstr(path, "//") || path[strlen(path) - 1] == '/')
		return -1;
	for (char *tok = strtok_r(path + 1, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
		if (req->nseg == HTTP_MAX_SEGMENTS)
			return -1;
		req->seg[req->nseg++] = tok;
	}
	return 0;
}

static int route_matches(const struct http_route *r, const struct http_request *req)
{
	char pattern[256];
	char *save = NULL;
	size_t i = 0;

	snprintf(pattern, sizeof(pattern), "%s", r->pattern);
	for (char *tok = strtok_r(pattern + 1, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
		if (i >= req->nseg)
			return 0;
		if (strcmp(tok, "*") && strcmp(tok, req->seg[i]))
			return 0;
		i++;
	}
	return i == req->nseg;
}

struct query_args {
	const char *keys[HTTP_QUERY_ARGS_MAX];
	size_t n;
	int too_many;
	const char *twice;
};

static enum MHD_Result note_arg(void *cls, enum MHD_ValueKind kind, const char *key,
				const char *value)
{
	struct query_args *qa = cls;
	(void)kind;
	(void)value;

	if (!key)
		return MHD_YES;
	if (qa->n == HTTP_QUERY_ARGS_MAX) {
		qa->too_many = 1;
		return MHD_NO;
	}
	for (size_t i = 0; i < qa->n; i++) {
		if (!strcmp(qa->keys[i], key)) {
			qa->twice = key;
			return MHD_NO;
		}
	}
	qa->keys[qa->n++] = key;
	return MHD_YES;
}

/* A query argument given twice is ambiguous (which one did the client
 * mean?), so it is refused rather than guessed. */
static int query_args_ok(struct MHD_Connection *conn, struct http_response *resp)
{
	struct query_args qa = { .n = 0 };

	MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, note_arg, &qa);
	if (qa.too_many) {
		http_error(resp, 400, "invalid", "more than %d query arguments",
			   HTTP_QUERY_ARGS_MAX);
		return 0;
	}
	if (qa.twice) {
		http_error(resp, 400, "invalid", "query argument '%s' is given more than once",
			   qa.twice);
		return 0;
	}
	return 1;
}

static void dispatch(struct http_server *s, struct http_request *req, char *path_copy,
		     struct http_response *resp)
{
	int path_found = 0;

	if (split_path(path_copy, req) != 0) {
		http_error(resp, 404, "not_found", "no such path: %s", req->path);
		return;
	}
	if (!query_args_ok(req->conn, resp))
		return;
	for (size_t i = 0; i < s->nroutes; i++) {
		if (!route_matches(&s->routes[i], req))
			continue;
		path_found = 1;
		if (strcmp(s->routes[i].method, req->method))
			continue;
		s->routes[i].handler(s->ctx, req, resp);
		/* An error the handler meant but could not build (out of
		 * memory) keeps its status; an answer that is missing is the
		 * node's fault. */
		if (!resp->json && !resp->text && !(resp->status >= 400 && resp->code))
			http_error(resp, 500, "internal", "the node could not build its answer");
		return;
	}
	if (path_found)
		http_error(resp, 405, "method_not_allowed", "%s is not allowed on %s",
			   req->method, req->path);
	else
		http_error(resp, 404, "not_found", "no such path: %s", req->path);
}

/* The body when json_dumps() cannot make one: fixed text around the code,
 * which is one of this file's static names. */
static char *fallback_body(const struct http_response *resp)
{
	char *body = NULL;

	if (asprintf(&body, "{\"error\":\"the node ran out of memory building this answer\","
		     "\"code\":\"%s\"}\n", resp->code ? resp->code : "internal") < 0)
		return NULL;
	return body;
}

static enum MHD_Result send_response(struct MHD_Connection *conn, struct http_server *s,
				     struct http_response *resp)
{
	char *body = NULL;
	const char *type = "application/json";

	if (resp->json) {
		body = json_dumps(resp->json, JSON_COMPACT);
		if (body) {
			size_t n = strlen(body);
			char *nl = realloc(body, n + 2);
			if (nl) {
				body = nl;
				body[n] = '\n';
				body[n + 1] = '\0';
			}
		}
	} else if (resp->text) {
		body = resp->text;
		resp->text = NULL;
		type = resp->content_type ? resp->content_type : "text/plain; charset=utf-8";
	}
	if (!body) {
		/* A refusal stays a refusal; a success we cannot send is ours. */
		if (resp->status < 400) {
			resp->status = 500;
			resp->code = "internal";
		}
		body = fallback_body(resp);
		type = "application/json";
	}
	json_decref(resp->json);
	resp->json = NULL;
	free(resp->text);
	resp->text = NULL;
	if (!body)
		return MHD_NO;
	if (resp->status >= 400)
		__atomic_add_fetch(&s->errors, 1, __ATOMIC_RELAXED);
	if (resp->status >= 500)
		__atomic_add_fetch(&s->faults, 1, __ATOMIC_RELAXED);
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), body,
								 MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", type);
	if (resp->retry_after_s) {
		char v[16];
		snprintf(v, sizeof(v), "%u", resp->retry_after_s);
		MHD_add_response_header(r, "Retry-After", v);
	}
	if (resp->preference_applied)
		MHD_add_response_header(r, "Preference-Applied", resp->preference_applied);
	enum MHD_Result ret = MHD_queue_response(conn, resp->status, r);
	MHD_destroy_response(r);
	return ret;
}

static const struct sockaddr *client_addr(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

	return ci ? ci->client_addr : NULL;
}

static int is_loopback(const struct sockaddr *sa)
{
	if (!sa)
		return 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr) ||
		       (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && in6->sin6_addr.s6_addr[12] == 127);
	}
	return 0;
}

static uint64_t monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static unsigned header_count(struct MHD_Connection *conn, const char *name)
{
	struct header_count hc = { .name = name };

	MHD_get_connection_values(conn, MHD_HEADER_KIND, count_header, &hc);
	return hc.n;
}

/* What can be refused from the request line and headers alone, before any
 * body is read: a client over its request rate; a body whose length is
 * ambiguous (two Content-Length headers, or one with Transfer-Encoding: a
 * proxy in front may read it differently, RFC 9112 section 6.3); a body
 * declared too large. */
static int refuse_early(struct http_server *s, struct MHD_Connection *conn,
			struct http_response *resp)
{
	uint32_t wait_s = ratelimit_take(s->limit, client_addr(conn), monotonic_ms());
	const char *cl;
	unsigned ncl, nte;

	if (wait_s) {
		__atomic_add_fetch(&s->limited, 1, __ATOMIC_RELAXED);
		http_error(resp, 429, "too_many_requests", "too many requests from your "
			   "address; retry in %u s", wait_s);
		resp->retry_after_s = wait_s;
		return 1;
	}
	ncl = header_count(conn, MHD_HTTP_HEADER_CONTENT_LENGTH);
	nte = header_count(conn, MHD_HTTP_HEADER_TRANSFER_ENCODING);
	if (ncl > 1 || nte > 1 || (ncl && nte)) {
		http_error(resp, 400, "invalid", "the body's length is ambiguous: Content-Length "
			   "%u times, Transfer-Encoding %u times", ncl, nte);
		return 1;
	}
	cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl) {
		char *end;
		errno = 0;
		unsigned long long n = strtoull(cl, &end, 10);
		if (!errno && end != cl && !*end && n > HTTP_BODY_MAX) {
			http_error(resp, 413, "too_large", "request body exceeds %d bytes",
				   HTTP_BODY_MAX);
			return 1;
		}
	}
	return 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_size, void **con_cls)
{
	struct http_server *s = cls;
	struct upload *up = *con_cls;
	struct http_response resp = { .status = 200 };
	(void)version;

	if (!up) {
		up = calloc(1, sizeof(*up));
		if (!up)
			return MHD_NO;
		*con_cls = up;
		if (refuse_early(s, conn, &resp))
			return send_response(conn, s, &resp);
		return MHD_YES;
	}
	if (*upload_size) {
		if (up->len + *upload_size > HTTP_BODY_MAX) {
			up->too_large = 1;
		} else if (!up->too_large) {
			uint8_t *nb = realloc(up->buf, up->len + *upload_size + 1);
			if (!nb)
				return MHD_NO;
			up->buf = nb;
			memcpy(up->buf + up->len, upload_data, *upload_size);
			up->len += *upload_size;
			up->buf[up->len] = '\0';
		}
		*upload_size = 0;
		return MHD_YES;
	}
	if (up->too_large) {
		http_error(&resp, 413, "too_large", "request body exceeds %d bytes", HTTP_BODY_MAX);
		return send_response(conn, s, &resp);
	}

	char *path_copy = strdup(url);
	if (!path_copy)
		return MHD_NO;
	const struct sockaddr *peer = client_addr(conn);
	struct http_request req = {
		.method = method,
		.path = url,
		.body = up->buf,
		.body_len = up->len,
		.conn = conn,
		.from_loopback = is_loopback(peer),
		.tls = s->tls,
		.client = peer,
	};
	dispatch(s, &req, path_copy, &resp);
	free(path_copy);
	if (resp.status >= 500) {
		char clean[256];
		http_clean_text(clean, sizeof(clean), url);
		log_warn("%s %s -> %u", method, clean, resp.status);
	}
	return send_response(conn, s, &resp);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct upload *up = *con_cls;
	(void)cls;
	(void)conn;
	(void)toe;

	if (up) {
		free(up->buf);
		free(up);
		*con_cls = NULL;
	}
}

/* libmicrohttpd's own messages (a client that broke the protocol, a limit
 * reached) are about clients, not the node: debug level, so a flood of bad
 * clients cannot flood the log. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512], clean[512];
	(void)cls;

	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	http_clean_text(clean, sizeof(clean), line);
	log_debug("http: %s", clean);
}

static int parse_listen(const char *listen, struct sockaddr_storage *ss, char *why)
{
	char host[128];
	const char *colon = strrchr(listen, ':');
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST };
	struct addrinfo *ai = NULL;

	if (!colon || colon == listen || (size_t)(colon - listen) >= sizeof(host))
		return why_set(why, TALLY_E_INVALID, "listen address '%s' is not host:port",
			       listen);
	memcpy(host, listen, (size_t)(colon - listen));
	host[colon - listen] = '\0';
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = '\0';
	}
	int rc = getaddrinfo(host, colon + 1, &hints, &ai);
	if (rc != 0)
		return why_set(why, TALLY_E_INVALID, "listen address '%s': %s", listen,
			       gai_strerror(rc));
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
	return 0;
}

static int hex_digit(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 :
	       c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* The path's and the query's %HH escapes decoded in place, as the library
 * would, except %00: a NUL would end the C string there and cut what the
 * node reads short ("1%00zz" read as the height 1), so it stays the three
 * characters "%00", which no route, number or key takes. Returns the new
 * length. */
static size_t unescape_but_nul(void *cls, struct MHD_Connection *c, char *s)
{
	char *w = s;

	(void)cls;
	(void)c;
	for (const char *r = s; *r;) {
		int hi = r[0] == '%' ? hex_digit(r[1]) : -1;
		int lo = hi >= 0 ? hex_digit(r[2]) : -1;

		if (lo >= 0 && (hi || lo)) {
			*w++ = (char)(hi << 4 | lo);
			r += 3;
		} else {
			*w++ = *r++;
		}
	}
	*w = '\0';
	return (size_t)(w - s);
}

/* Reads a PEM file whole (NUL-terminated): libmicrohttpd takes the
 * certificate and key as text. */
static int read_pem(const char *path, const char *what, char **out, char *why)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0;

	if (!f)
		return why_set(why, TALLY_E_IO, "TLS %s %s: %s", what, path, strerror(errno));
	buf = malloc(HTTP_TLS_FILE_MAX + 1);
	if (buf)
		len = fread(buf, 1, HTTP_TLS_FILE_MAX + 1, f);
	int bad = ferror(f);
	fclose(f);
	if (!buf)
		return TALLY_E_NOMEM;
	if (bad || len == 0 || len > HTTP_TLS_FILE_MAX || !memmem(buf, len, "-----BEGIN ", 11)) {
		free(buf);
		return why_set(why, TALLY_E_INVALID, "TLS %s %s: not a PEM file of at most %d "
			       "bytes", what, path, HTTP_TLS_FILE_MAX);
	}
	buf[len] = '\0';
	*out = buf;
	return 0;
}

static void server_free(struct http_server *s)
{
	ratelimit_free(s->limit);
	if (s->tls_key) {
		explicit_bzero(s->tls_key, strlen(s->tls_key));
		free(s->tls_key);
	}
	free(s->tls_cert);
	free(s);
}

int http_server_start(struct http_server **out, const char *listen,
		      const struct config_api *api, const struct http_route *routes,
		      size_t nroutes, void *ctx, char *why)
{
	struct sockaddr_storage ss = { 0 };
	int rc = 0;

	if (listen)
		rc = parse_listen(listen, &ss, why);
	else
		ss.ss_family = AF_INET;     /* never bound: MHD_USE_NO_LISTEN_SOCKET */
	if (rc)
		return rc;
	if (keyed_hash_init())
		return why_set(why, TALLY_E_CRYPTO, "OpenSSL gives no random key or no SipHash "
			       "for the API's tables");
	struct http_server *s = calloc(1, sizeof(*s));
	if (!s)
		return TALLY_E_NOMEM;
	s->routes = routes;
	s->nroutes = nroutes;
	s->ctx = ctx;
	if ((rc = ratelimit_new(&s->limit, api->requests_per_s, api->request_burst))) {
		server_free(s);
		return rc;
	}
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	/* Without a socket (the fuzz target), poll(): in epoll mode MHD sees a
	 * client's close after a partial request only at the idle timeout,
	 * which would make every such input take timeout_s. */
	if (!listen)
		flags = (flags & ~(unsigned)MHD_USE_EPOLL) | MHD_USE_POLL |
			MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC;
	if (api->tls_cert[0]) {
		if (!MHD_is_feature_supported(MHD_FEATURE_TLS)) {
			server_free(s);
			return why_set(why, TALLY_E_INVALID, "this libmicrohttpd has no TLS");
		}
		if ((rc = read_pem(api->tls_cert, "certificate", &s->tls_cert, why)) ||
		    (rc = read_pem(api->tls_key, "key", &s->tls_key, why))) {
			server_free(s);
			return rc;
		}
		flags |= MHD_USE_TLS;
		s->tls = 1;
	}
	/* The TLS options are ignored without MHD_USE_TLS, so one call serves both. */
	s->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s,
				  MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
				  MHD_OPTION_THREAD_POOL_SIZE, (unsigned)4,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned)api->max_connections,
				  MHD_OPTION_PER_IP_CONNECTION_LIMIT,
				  (unsigned)api->max_connections_per_ip,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)api->timeout_s,
				  MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_HEADERS_MAX,
				  MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s,
				  MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
				  MHD_OPTION_UNESCAPE_CALLBACK, unescape_but_nul, NULL,
				  s->tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, s->tls_cert,
				  MHD_OPTION_HTTPS_MEM_KEY, s->tls_key,
				  MHD_OPTION_HTTPS_PRIORITIES, HTTP_TLS_PRIORITIES,
				  MHD_OPTION_END);
	if (!s->mhd) {
		rc = why_set(why, TALLY_E_IO, "cannot serve %s on %s (address in use or not "
			     "available%s)", s->tls ? "HTTPS" : "HTTP", listen ? listen : "no socket",
			     s->tls ? ", or the TLS certificate and key do not load or do not "
			     "match" : "");
		server_free(s);
		return rc;
	}
	if (listen && !s->tls && !is_loopback((struct sockaddr *)&ss))
		log_warn("the API on %s is plain HTTP: signed private reads (consoles, VM "
			 "addresses) are refused from other hosts until [api] tls_cert and tls_key "
			 "are set", listen);
	*out = s;
	return 0;
}

int http_server_add_connection(struct http_server *s, int fd, const struct sockaddr *addr,
			       socklen_t addrlen)
{
	/* MHD closes fd itself when it refuses it. */
	return MHD_add_connection(s->mhd, fd, addr, addrlen) == MHD_YES ? 0 : TALLY_E_IO;
}

void http_server_stop(struct http_server *s)
{
	if (!s)
		return;
	MHD_stop_daemon(s->mhd);
	server_free(s);
}

uint64_t http_server_errors(const struct http_server *s)
{
	return __atomic_load_n(&s->errors, __ATOMIC_RELAXED);
}

uint64_t http_server_faults(const struct http_server *s)
{
	return __atomic_load_n(&s->faults, __ATOMIC_RELAXED);
}

uint64_t http_server_limited(const struct http_server *s)
{
	return __atomic_load_n(&s->limited, __ATOMIC_RELAXED);
}
