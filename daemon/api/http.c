#include "daemon/api/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/log.h"
#include "lib/errors.h"

struct http_server {
	struct MHD_Daemon *mhd;
	const struct http_route *routes;
	size_t nroutes;
	void *ctx;
	uint64_t errors;          /* updated with atomics: MHD runs a thread pool */
};

/* Per-connection upload buffer. */
struct upload {
	uint8_t *buf;
	size_t len;
	int too_large;
};

const char *http_query(const struct http_request *req, const char *key)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *http_header(const struct http_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

int http_query_u64(const struct http_request *req, const char *key, uint64_t *out)
{
	const char *s = http_query(req, key);
	char *end;

	if (!s)
		return TALLY_E_NOTFOUND;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || s[0] == '+' || s[0] == ' ')
		return TALLY_E_RANGE;
	*out = v;
	return 0;
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
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
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
};

void http_error_from(struct http_response *resp, int err, const char *why)
{
	unsigned status = 500;
	const char *code = "internal";

	for (size_t i = 0; i < sizeof(error_map) / sizeof(error_map[0]); i++) {
		if (error_map[i].err == err) {
			status = error_map[i].status;
			code = error_map[i].code;
			break;
		}
	}
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

static void dispatch(struct http_server *s, struct http_request *req, char *path_copy,
		     struct http_response *resp)
{
	int path_found = 0;

	if (split_path(path_copy, req) != 0) {
		http_error(resp, 404, "not_found", "no such path: %s", req->path);
		return;
	}
	for (size_t i = 0; i < s->nroutes; i++) {
		if (!route_matches(&s->routes[i], req))
			continue;
		path_found = 1;
		if (strcmp(s->routes[i].method, req->method))
			continue;
		s->routes[i].handler(s->ctx, req, resp);
		if (!resp->json && !resp->text)
			http_error(resp, 500, "internal", "handler produced no answer");
		return;
	}
	if (path_found)
		http_error(resp, 405, "method_not_allowed", "%s is not allowed on %s",
			   req->method, req->path);
	else
		http_error(resp, 404, "not_found", "no such path: %s", req->path);
}

static enum MHD_Result send_response(struct MHD_Connection *conn, struct http_server *s,
				     struct http_response *resp)
{
	char *body;
	const char *type;

	if (resp->json) {
		body = json_dumps(resp->json, JSON_COMPACT);
		type = "application/json";
		if (body) {
			size_t n = strlen(body);
			char *nl = realloc(body, n + 2);
			if (nl) {
				body = nl;
				body[n] = '\n';
				body[n + 1] = '\0';
			}
		}
	} else {
		body = resp->text;
		resp->text = NULL;
		type = resp->content_type ? resp->content_type : "text/plain; charset=utf-8";
	}
	if (!body) {
		resp->status = 500;
		body = strdup("{\"error\":\"out of memory\",\"code\":\"internal\"}\n");
		type = "application/json";
		if (!body)
			return MHD_NO;
	}
	if (resp->status >= 400)
		__atomic_add_fetch(&s->errors, 1, __ATOMIC_RELAXED);
	struct MHD_Response *r = MHD_create_response_from_buffer(strlen(body), body,
								 MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", type);
	enum MHD_Result ret = MHD_queue_response(conn, resp->status, r);
	MHD_destroy_response(r);
	json_decref(resp->json);
	free(resp->text);
	return ret;
}

static int is_loopback(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

	if (!ci || !ci->client_addr)
		return 0;
	if (ci->client_addr->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)ci->client_addr;
		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (ci->client_addr->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ci->client_addr;
		return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
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
	struct http_request req = {
		.method = method,
		.path = url,
		.body = up->buf,
		.body_len = up->len,
		.conn = conn,
		.from_loopback = is_loopback(conn),
	};
	dispatch(s, &req, path_copy, &resp);
	free(path_copy);
	log_debug("%s %s -> %u", method, url, resp.status);
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

static int parse_listen(const char *listen, struct sockaddr_storage *ss, char *why)
{
	char host[128];
	const char *colon = strrchr(listen, ':');
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST };
	struct addrinfo *ai = NULL;

	if (!colon || colon == listen || (size_t)(colon - listen) >= sizeof(host)) {
		snprintf(why, 256, "listen address '%s' is not host:port", listen);
		return TALLY_E_INVALID;
	}
	memcpy(host, listen, (size_t)(colon - listen));
	host[colon - listen] = '\0';
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = '\0';
	}
	int rc = getaddrinfo(host, colon + 1, &hints, &ai);
	if (rc != 0) {
		snprintf(why, 256, "listen address '%s': %s", listen, gai_strerror(rc));
		return TALLY_E_INVALID;
	}
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
	return 0;
}

int http_server_start(struct http_server **out, const char *listen,
		      const struct http_route *routes, size_t nroutes, void *ctx, char *why)
{
	struct sockaddr_storage ss = { 0 };
	int rc = parse_listen(listen, &ss, why);

	if (rc)
		return rc;
	struct http_server *s = calloc(1, sizeof(*s));
	if (!s)
		return TALLY_E_NOMEM;
	s->routes = routes;
	s->nroutes = nroutes;
	s->ctx = ctx;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	s->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s,
				  MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
				  MHD_OPTION_THREAD_POOL_SIZE, (unsigned)4,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned)256,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
				  MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
				  MHD_OPTION_END);
	if (!s->mhd) {
		snprintf(why, 256, "cannot listen on %s (address in use or not available)",
			 listen);
		free(s);
		return TALLY_E_IO;
	}
	*out = s;
	return 0;
}

void http_server_stop(struct http_server *s)
{
	if (!s)
		return;
	MHD_stop_daemon(s->mhd);
	free(s);
}

uint64_t http_server_errors(const struct http_server *s)
{
	return __atomic_load_n(&s->errors, __ATOMIC_RELAXED);
}
