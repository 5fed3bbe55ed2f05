/* The node's HTTP server: libmicrohttpd underneath, a route table on top.
 * Handlers get a parsed request and fill a JSON (or text) response; the
 * server enforces the body limit and turns every refusal into a JSON error
 * body, so no handler can crash the node on bad input. */
#ifndef TALLY_HTTP_H
#define TALLY_HTTP_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_BODY_MAX (64 * 1024)
#define HTTP_MAX_SEGMENTS 8

struct MHD_Connection;

struct http_request {
	const char *method;
	const char *path;                       /* without the query */
	size_t nseg;
	const char *seg[HTTP_MAX_SEGMENTS];     /* path split on '/' */
	const uint8_t *body;
	size_t body_len;
	struct MHD_Connection *conn;            /* for headers and query args */
	int from_loopback;
};

struct http_response {
	unsigned status;
	json_t *json;                           /* owned; sent when set */
	char *text;                             /* malloc'd; sent when json is NULL */
	const char *content_type;               /* for text */
};

typedef void (*http_handler)(void *ctx, const struct http_request *req,
			     struct http_response *resp);

struct http_route {
	const char *method;
	/* Segments; "*" matches any one segment. */
	const char *pattern;
	http_handler handler;
};

/* NULL when absent. */
const char *http_query(const struct http_request *req, const char *key);
const char *http_header(const struct http_request *req, const char *name);
/* Parses a decimal u64 query argument; returns 0, TALLY_E_NOTFOUND when absent
 * or TALLY_E_RANGE. */
int http_query_u64(const struct http_request *req, const char *key, uint64_t *out);

/* Fills resp with {"error": message, "code": code}. */
void http_error(struct http_response *resp, unsigned status, const char *code,
		const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Maps a tally_err to an HTTP status and code name. */
void http_error_from(struct http_response *resp, int err, const char *why);
void http_json(struct http_response *resp, unsigned status, json_t *body);

struct http_server;

/* listen is "host:port"; routes live as long as the server. */
int http_server_start(struct http_server **out, const char *listen,
		      const struct http_route *routes, size_t nroutes, void *ctx,
		      char *why);
void http_server_stop(struct http_server *s);
/* Requests answered with a 4xx or 5xx so far (for /metrics). */
uint64_t http_server_errors(const struct http_server *s);

#endif
