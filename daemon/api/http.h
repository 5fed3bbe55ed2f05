/* The node's HTTP server: libmicrohttpd underneath (over TLS with GnuTLS
 * when the config names a certificate), a route table on top. Handlers get a
 * parsed request and fill a JSON (or text) response; the server enforces the
 * body and per-client limits and turns every refusal into a JSON error body
 * that is valid whatever bytes the client sent, so no request can crash the
 * node or make it answer 5xx for the client's fault. */
#ifndef TALLY_HTTP_H
#define TALLY_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "daemon/config.h"

#define HTTP_BODY_MAX (64 * 1024)
#define HTTP_MAX_SEGMENTS 8
/* Bytes of an error message, after cleaning (http_clean_text). */
#define HTTP_ERROR_MAX 512
/* Bytes of request line and headers a connection may hold. */
#define HTTP_HEADERS_MAX (16 * 1024)

struct MHD_Connection;

/* A header or query argument of a request built without a connection
 * (tests and fuzz targets); a server's requests read theirs from conn. */
struct http_field {
	int is_query;                           /* 0: a header */
	const char *name;
	const char *value;
};

struct http_request {
	const char *method;
	const char *path;                       /* without the query */
	size_t nseg;
	const char *seg[HTTP_MAX_SEGMENTS];     /* path split on '/' */
	const uint8_t *body;
	size_t body_len;
	struct MHD_Connection *conn;            /* for headers and query args */
	const struct http_field *fields;        /* instead, when conn is NULL */
	size_t nfields;
	int from_loopback;
	int tls;                                /* arrived over TLS */
	const struct sockaddr *client;          /* NULL when unknown */
};

struct http_response {
	unsigned status;
	json_t *json;                           /* owned; sent when set */
	char *text;                             /* malloc'd; sent when json is NULL */
	const char *content_type;               /* for text */
	const char *code;                       /* static: the error code, for a
						   body the server must build
						   without json (out of memory) */
	unsigned retry_after_s;                 /* sent as Retry-After when set */
	const char *preference_applied;         /* static: sent as Preference-Applied */
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
/* The value of a header that must appear at most once: 0 with *value set,
 * TALLY_E_NOTFOUND when absent, TALLY_E_EXISTS when given twice or more. */
int http_header_once(const struct http_request *req, const char *name, const char **value);
/* Whether a Prefer header of the request names the preference token
 * (RFC 7240: "Prefer: respond-async", case-insensitive, in any of several
 * headers or comma-separated in one). */
bool http_prefers(const struct http_request *req, const char *token);
/* Parses a decimal u64 query argument (lib/decimal.h: digits only, no
 * leading zero); returns 0, TALLY_E_NOTFOUND when absent, TALLY_E_ENCODING
 * when not such digits or TALLY_E_RANGE above 2^64 - 1. */
int http_query_u64(const struct http_request *req, const char *key, uint64_t *out);

/* Copies the NUL-terminated in into out[cap] (cap >= 8) as valid UTF-8
 * (RFC 3629) without control characters: well-formed characters as they are,
 * any other byte as the four characters \xNN. When it does not fit, it is cut
 * on a character boundary and ends with "...". Returns strlen(out). */
size_t http_clean_text(char *out, size_t cap, const char *in);

/* Fills resp with {"error": message, "code": code}, the message cleaned by
 * http_clean_text() to at most HTTP_ERROR_MAX bytes, so it may quote what
 * the client sent. code must be a static string. Should memory run out, the
 * status stays and the server sends a fixed body with the same code. */
void http_error(struct http_response *resp, unsigned status, const char *code,
		const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Maps a tally_err to an HTTP status and code name. */
void http_error_from(struct http_response *resp, int err, const char *why);
/* The HTTP status and short code (docs/PROTOCOL.md) of a TALLY_E_* error:
 * 4xx for what a client sent, 5xx only for the node's own failures
 * (TALLY_E_IO, _INTERNAL, _CRYPTO, _STORE: 500; _NOMEM, _UNAVAILABLE: 503;
 * _DISKFULL: 507). */
unsigned http_status_of(int err, const char **code);
void http_json(struct http_response *resp, unsigned status, json_t *body);

struct http_server;

/* listen is "host:port"; api holds the TLS files and per-client limits
 * (docs/OPERATING.md). Routes live as long as the server. why[WHY_MAX].
 * listen NULL: no listening socket; connections come only from
 * http_server_add_connection(). */
int http_server_start(struct http_server **out, const char *listen,
		      const struct config_api *api, const struct http_route *routes,
		      size_t nroutes, void *ctx, char *why);
/* Hands the server a connected stream socket (one end of a socketpair in the
 * fuzz target), as if accepted from addr. The server owns fd afterwards,
 * even on failure. 0 or TALLY_E_IO. */
int http_server_add_connection(struct http_server *s, int fd, const struct sockaddr *addr,
			       socklen_t addrlen);
void http_server_stop(struct http_server *s);
/* Requests answered with a 4xx or 5xx so far (for /metrics). */
uint64_t http_server_errors(const struct http_server *s);
/* Requests answered with a 5xx so far: the node's own faults. */
uint64_t http_server_faults(const struct http_server *s);
/* Requests refused by the per-address rate limit (429) so far. */
uint64_t http_server_limited(const struct http_server *s);

#endif
