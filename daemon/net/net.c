/* The peer transport's loop, connections, handshake, frames and limits (see
 * net.h). libevent runs the loop (event_base on its own thread) and TLS
 * (bufferevent_openssl over OpenSSL); this file decides who may connect and
 * what a peer may send.
 *
 * A connection's life: TCP, then TLS 1.3 where each side's verify callback
 * (verify_peer) accepts only an expected key, then HELLO each way (protocol
 * version, genesis hash, the key again, the tip), then messages. At most one
 * connection per peer key is kept: when two meet (both sides dialed), the
 * one dialed by the smaller key stays, which both sides compute alike. */
#include "daemon/net/net_impl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/thread.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon/log.h"
#include "daemon/net/tlsid.h"
#include "lib/errors.h"

uint64_t net_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* --- names and limits ---------------------------------------------------- */

const char *conn_name(const struct conn *c, char buf[80])
{
	char hex[2 * PUBKEY_LEN + 1];

	if (c->key_known) {
		hex_encode(c->key, PUBKEY_LEN, hex);
		snprintf(buf, 80, "%.16s (%.50s)", hex, c->addr);
	} else {
		snprintf(buf, 80, "%.70s", c->addr);
	}
	return buf;
}

bool conn_ready(const struct conn *c)
{
	return c->state == CONN_READY && c->bev;
}

/* Refills at rate per second up to burst; takes one token if there is one. */
static bool bucket_take(struct bucket *b, double rate, double burst, uint64_t now)
{
	if (now > b->at_ms) {
		b->tokens += rate * (double)(now - b->at_ms) / 1000.0;
		if (b->tokens > burst)
			b->tokens = burst;
		b->at_ms = now;
	}
	if (b->tokens < 1.0)
		return false;
	b->tokens -= 1.0;
	return true;
}

/* An address as ban-table bytes: family, then the address. */
static void addr_id(const struct sockaddr_storage *sa, uint8_t id[PUBKEY_LEN])
{
	memset(id, 0, PUBKEY_LEN);
	id[0] = (uint8_t)sa->ss_family;
	if (sa->ss_family == AF_INET)
		memcpy(id + 1, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	else if (sa->ss_family == AF_INET6)
		memcpy(id + 1, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
}

static struct ban *ban_find(struct net *n, bool is_key, const uint8_t id[PUBKEY_LEN], bool add)
{
	struct ban *free_slot = NULL, *oldest = NULL;

	for (size_t i = 0; i < NET_BANS_MAX; i++) {
		struct ban *b = &n->bans[i];
		if (b->used && b->is_key == is_key && !memcmp(b->id, id, PUBKEY_LEN))
			return b;
		if (!b->used && !free_slot)
			free_slot = b;
		if (b->used && (!oldest || b->until_ms < oldest->until_ms))
			oldest = b;
	}
	if (!add)
		return NULL;
	/* Full: forget the entry whose ban ended first. */
	struct ban *b = free_slot ? free_slot : oldest;
	memset(b, 0, sizeof(*b));
	b->used = true;
	b->is_key = is_key;
	memcpy(b->id, id, PUBKEY_LEN);
	b->fails.tokens = NET_ADDR_FAILS_BURST;
	b->fails.at_ms = net_now_ms();
	return b;
}

static bool banned(struct net *n, bool is_key, const uint8_t id[PUBKEY_LEN], uint64_t now)
{
	struct ban *b = ban_find(n, is_key, id, false);

	return b && b->until_ms > now;
}

/* A doubling ban: 5 s, 10 s, 20 s ... up to 10 minutes. */
static uint64_t ban_start(struct net *n, bool is_key, const uint8_t id[PUBKEY_LEN])
{
	struct ban *b = ban_find(n, is_key, id, true);
	uint64_t len = NET_BAN_MIN_MS;

	for (unsigned i = 0; i < b->strikes && len < NET_BAN_MAX_MS; i++)
		len *= 2;
	if (len > NET_BAN_MAX_MS)
		len = NET_BAN_MAX_MS;
	b->strikes++;
	b->until_ms = net_now_ms() + len;
	return len;
}

/* A failed handshake from c's address spends one of its tokens. */
static void addr_failed(struct conn *c)
{
	struct net *n = c->net;
	uint8_t id[PUBKEY_LEN];

	if (c->outbound)
		return;
	addr_id(&c->sa, id);
	struct ban *b = ban_find(n, false, id, true);
	if (!bucket_take(&b->fails, NET_ADDR_FAILS_PER_S, NET_ADDR_FAILS_BURST, net_now_ms())) {
		uint64_t len = ban_start(n, false, id);
		log_warn("peers: address of %s refused for %" PRIu64 " s: too many failed "
			 "handshakes", c->addr, len / 1000);
	}
}

/* --- who may connect ----------------------------------------------------- */

static bool key_expected(struct net *n, const struct conn *c, const uint8_t key[PUBKEY_LEN],
			 char *why, size_t whylen)
{
	struct validator_set vals;
	struct ledger_status st;
	char hex[2 * PUBKEY_LEN + 1];

	hex_encode(key, PUBKEY_LEN, hex);
	if (!memcmp(key, n->key->pub, PUBKEY_LEN)) {
		snprintf(why, whylen, "it is this node's own key (a peer address points here)");
		return false;
	}
	if (banned(n, true, key, net_now_ms())) {
		snprintf(why, whylen, "key %.16s is refused for now: it broke the protocol", hex);
		return false;
	}
	if (c->dial >= 0 && n->dials[c->dial].cfg->has_key) {
		if (memcmp(key, n->dials[c->dial].cfg->key, PUBKEY_LEN)) {
			snprintf(why, whylen, "key %.16s is not the key configured for %.60s", hex,
				 c->addr);
			return false;
		}
		return true;
	}
	for (size_t i = 0; i < n->cfg.npeers; i++)
		if (n->cfg.peers[i].has_key && !memcmp(n->cfg.peers[i].key, key, PUBKEY_LEN))
			return true;
	for (size_t i = 0; i < n->cfg.nallow; i++)
		if (!memcmp(n->cfg.allow[i], key, PUBKEY_LEN))
			return true;
	if (!ledger_status(n->ledger, &st) && !ledger_valset(n->ledger, st.height + 1, &vals) &&
	    valset_find(&vals, key))
		return true;
	snprintf(why, whylen, "key %.16s is unknown: not a configured peer, an allowed key or a "
		 "validator", hex);
	return false;
}

/* OpenSSL's certificate check: the chain is one self-signed certificate,
 * and only its key counts. The handshake's CertificateVerify then proves the
 * peer holds that key. */
static int verify_peer(int preverify_ok, X509_STORE_CTX *store)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct conn *c = ssl ? SSL_get_app_data(ssl) : NULL;
	uint8_t key[PUBKEY_LEN];
	(void)preverify_ok;

	if (!c)
		return 0;
	if (X509_STORE_CTX_get_error_depth(store) != 0) {
		snprintf(c->refusal, sizeof(c->refusal), "it sent a certificate chain, not one "
			 "self-signed certificate");
		return 0;
	}
	if (tlsid_cert_key(X509_STORE_CTX_get_current_cert(store), key)) {
		snprintf(c->refusal, sizeof(c->refusal), "its certificate is not over a valid "
			 "Ed25519 key");
		return 0;
	}
	if (!key_expected(c->net, c, key, c->refusal, sizeof(c->refusal)))
		return 0;
	memcpy(c->key, key, PUBKEY_LEN);
	c->key_known = true;
	return 1;
}

/* --- connections --------------------------------------------------------- */

static void on_read(struct bufferevent *bev, void *arg);
static void on_output(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);

void conn_close(struct conn *c, const char *why)
{
	struct net *n = c->net;
	char name[80];

	if (c->state == CONN_DEAD)
		return;
	if (why && c->state == CONN_READY)
		log_info("peers: %s disconnected: %s", conn_name(c, name), why);
	else if (why)
		log_debug("peers: %s closed: %s", conn_name(c, name), why);
	sync_forget(c);
	if (c->mark) {
		/* Its bit may go to the next peer, which has none of these. */
		seen_unmark(n->seen_tx, c->mark);
		n->marks_used &= ~c->mark;
		c->mark = 0;
	}
	if (c->dial >= 0 && n->dials[c->dial].conn == c) {
		struct dial *d = &n->dials[c->dial];
		d->conn = NULL;
		d->next_ms = net_now_ms() + d->backoff_ms + (uint64_t)(rand() % 100);
		d->backoff_ms = d->backoff_ms * 2 > NET_DIAL_MAX_MS ? NET_DIAL_MAX_MS
								   : d->backoff_ms * 2;
	}
	pthread_mutex_lock(&n->mu);
	if (c->state == CONN_READY && n->st.peers)
		n->st.peers--;
	c->state = CONN_DEAD;
	pthread_mutex_unlock(&n->mu);
	if (c->bev) {
		bufferevent_free(c->bev);   /* frees the SSL too (BEV_OPT_CLOSE_ON_FREE) */
		c->bev = NULL;
	}
}

void conn_misbehave(struct conn *c, const char *fmt, ...)
{
	struct net *n = c->net;
	char why[256], name[80];
	uint8_t id[PUBKEY_LEN];
	uint64_t len;
	va_list ap;

	if (c->state == CONN_DEAD)
		return;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (c->key_known) {
		len = ban_start(n, true, c->key);
	} else {
		addr_id(&c->sa, id);
		len = ban_start(n, false, id);
	}
	STAT_ADD(n, peers_dropped, 1);
	log_warn("peers: dropped %s: %s; refused for %" PRIu64 " s", conn_name(c, name), why,
		 len / 1000);
	conn_close(c, NULL);
}

void net_ban_key(struct net *n, const uint8_t key[PUBKEY_LEN], const char *why)
{
	char hex[2 * PUBKEY_LEN + 1];
	uint64_t len = ban_start(n, true, key);

	hex_encode(key, PUBKEY_LEN, hex);
	STAT_ADD(n, peers_dropped, 1);
	log_warn("peers: %.16s: %s; refused for %" PRIu64 " s", hex, why, len / 1000);
}

/* The output's progress, for the stall rule (on_tick): a peer whose
 * output waits is given NET_STALL_MS from when it last took some. */
static void on_output(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct conn *c = arg;
	(void)buf;

	if (info->n_deleted || (info->n_added && !info->orig_size))
		c->drained_ms = net_now_ms();
}

void conn_send_frame(struct conn *c, const uint8_t *frame, size_t len)
{
	char why[96];
	size_t unsent;

	if (!c->bev || c->state == CONN_DEAD)
		return;
	unsent = evbuffer_get_length(bufferevent_get_output(c->bev));
	if (unsent + len > NET_OUTBUF_HARD) {
		snprintf(why, sizeof(why), "it does not read what it is sent (%zu MiB unsent)",
			 unsent >> 20);
		conn_close(c, why);
		return;
	}
	if (bufferevent_write(c->bev, frame, len)) {
		conn_close(c, "cannot queue a message (out of memory)");
		return;
	}
	c->last_tx_ms = net_now_ms();
	__atomic_fetch_add(&c->msgs_out, 1, __ATOMIC_RELAXED);
}

int conn_send(struct conn *c, const struct wire_msg *m)
{
	struct enc e;
	int rc;

	enc_init(&e);
	wire_encode(&e, m);
	rc = enc_error(&e);
	if (!rc)
		conn_send_frame(c, e.buf, e.len);
	enc_free(&e);
	return rc;
}

/* Consensus messages are small and each waits on the last: without
 * TCP_NODELAY, Nagle's algorithm holds one until the peer's delayed ACK
 * (40 ms on Linux), which is most of a round on loopback. A failure only
 * costs latency. */
static void set_nodelay(evutil_socket_t fd)
{
	int one = 1;

	if (fd >= 0)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static struct conn *conn_new(struct net *n, int fd, bool outbound, const char *addr,
			     const struct sockaddr *sa, socklen_t salen)
{
	struct conn *c = calloc(1, sizeof(*c));
	SSL *ssl = c ? SSL_new(n->tls) : NULL;

	if (!c || !ssl) {
		free(c);
		SSL_free(ssl);
		return NULL;
	}
	c->net = n;
	c->ssl = ssl;
	c->outbound = outbound;
	c->dial = -1;
	c->state = CONN_TLS;
	c->opened_ms = c->last_rx_ms = c->last_tx_ms = c->drained_ms = net_now_ms();
	c->msgs.tokens = n->cfg.max_msg_burst;
	c->msgs.at_ms = c->opened_ms;
	snprintf(c->addr, sizeof(c->addr), "%s", addr);
	if (sa && salen <= sizeof(c->sa))
		memcpy(&c->sa, sa, salen);
	SSL_set_app_data(ssl, c);
	c->bev = bufferevent_openssl_socket_new(n->base, fd, ssl,
						outbound ? BUFFEREVENT_SSL_CONNECTING
							 : BUFFEREVENT_SSL_ACCEPTING,
						BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (!c->bev) {
		SSL_free(ssl);
		if (fd >= 0)
			close(fd);
		free(c);
		return NULL;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
	set_nodelay(fd);
	bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
	if (!evbuffer_add_cb(bufferevent_get_output(c->bev), on_output, c)) {
		bufferevent_free(c->bev);
		free(c);
		return NULL;
	}
	/* Before HELLO only a HELLO may come: read no further than one. */
	bufferevent_setwatermark(c->bev, EV_READ, 0, WIRE_HEAD_LEN + wire_max_len(WIRE_HELLO));
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	pthread_mutex_lock(&n->mu);
	c->next = n->conns;
	n->conns = c;
	pthread_mutex_unlock(&n->mu);
	return c;
}

static void send_hello(struct conn *c)
{
	struct net *n = c->net;
	struct ledger_status st;
	struct wire_msg m = { .type = WIRE_HELLO };

	ledger_status(n->ledger, &st);
	m.u.hello.version = WIRE_VERSION;
	memcpy(m.u.hello.genesis_hash, n->genesis_hash, HASH_LEN);
	snprintf(m.u.hello.chain_id, sizeof(m.u.hello.chain_id), "%s", n->chain_id);
	memcpy(m.u.hello.node_key, n->key->pub, PUBKEY_LEN);
	m.u.hello.height = st.height;
	memcpy(m.u.hello.last_block_id, st.last_block_id, HASH_LEN);
	conn_send(c, &m);
}

/* The one connection kept between two keys is the one the smaller key
 * dialed. Returns false when c itself was closed. */
static bool keep_one(struct conn *c)
{
	struct net *n = c->net;
	bool mine_smaller = memcmp(n->key->pub, c->key, PUBKEY_LEN) < 0;
	bool c_preferred = c->outbound == mine_smaller;

	for (struct conn *o = n->conns; o; o = o->next) {
		if (o == c || o->state != CONN_READY || memcmp(o->key, c->key, PUBKEY_LEN))
			continue;
		/* Both sides dialed: not news for the operator. */
		if (!c_preferred) {
			log_debug("peers: %s: already connected the other way", c->addr);
			conn_close(c, NULL);
			return false;
		}
		log_debug("peers: %s: already connected the other way", o->addr);
		conn_close(o, NULL);
	}
	return true;
}

static void on_hello(struct conn *c, const struct wire_hello *h)
{
	struct net *n = c->net;
	char name[80], gh[2 * HASH_LEN + 1];

	if (memcmp(h->node_key, c->key, PUBKEY_LEN)) {
		conn_misbehave(c, "its HELLO names another key than the one it proved");
		return;
	}
	if (memcmp(h->genesis_hash, n->genesis_hash, HASH_LEN)) {
		hex_encode(h->genesis_hash, HASH_LEN, gh);
		STAT_ADD(n, handshakes_refused, 1);
		conn_misbehave(c, "it is on another chain: '%s' with genesis %.16s, not '%s'",
			       h->chain_id, gh, n->chain_id);
		return;
	}
	pthread_mutex_lock(&n->mu);
	c->state = CONN_READY;
	c->ready_ms = net_now_ms();
	c->height = h->height;
	memcpy(c->last_block_id, h->last_block_id, HASH_LEN);
	n->st.peers++;
	pthread_mutex_unlock(&n->mu);
	if (!keep_one(c))
		return;
	if (~n->marks_used) {
		c->mark = ~n->marks_used & (n->marks_used + 1);   /* the lowest free bit */
		n->marks_used |= c->mark;
	}
	if (c->dial >= 0) {
		struct dial *d = &n->dials[c->dial];
		d->backoff_ms = NET_DIAL_MIN_MS;
		d->refusal_said = false;
		d->key_learned = true;
		memcpy(d->key, c->key, PUBKEY_LEN);
	}
	/* Whole frames up to the largest message may now arrive. */
	bufferevent_setwatermark(c->bev, EV_READ, 0, WIRE_HEAD_LEN + wire_max_frame());
	log_info("peers: connected to %s (%s), its height %" PRIu64, conn_name(c, name),
		 c->outbound ? "dialed" : "inbound", h->height);
	gossip_greet(c);
	sync_tick(n);
}

static void on_message(struct conn *c, uint8_t type, const uint8_t *body, size_t len)
{
	struct net *n = c->net;
	struct wire_msg m;
	int rc = wire_decode(type, body, len, &m);

	if (rc) {
		if (type == WIRE_HELLO && rc == TALLY_E_VERSION)
			STAT_ADD(n, handshakes_refused, 1);
		conn_misbehave(c, "%s message that does not decode: %s", wire_type_name(type),
			       rc == TALLY_E_VERSION ? "another protocol or version"
						     : tally_strerror(rc));
		return;
	}
	if (c->state == CONN_HELLO) {
		if (type != WIRE_HELLO)
			conn_misbehave(c, "%s before HELLO", wire_type_name(type));
		else
			on_hello(c, &m.u.hello);
		return;
	}
	switch (type) {
	case WIRE_HELLO:
		conn_misbehave(c, "a second HELLO");
		break;
	case WIRE_STATUS:
		pthread_mutex_lock(&n->mu);
		c->height = m.u.status.height;
		memcpy(c->last_block_id, m.u.status.last_block_id, HASH_LEN);
		pthread_mutex_unlock(&n->mu);
		sync_tick(n);
		break;
	case WIRE_TXS:
		gossip_on_txs(c, &m);
		break;
	case WIRE_GET_BLOCKS:
		sync_on_get_blocks(c, &m);
		break;
	case WIRE_BLOCK:
		sync_on_block(c, &m);
		break;
	case WIRE_NO_BLOCK:
		sync_on_no_block(c, &m);
		break;
	case WIRE_CONSENSUS:
		gossip_on_consensus(c, &m);
		break;
	case WIRE_PING:
		m.type = WIRE_PONG;
		conn_send(c, &m);
		break;
	case WIRE_PONG:
		break;
	}
}

/* Whole frames from the TLS stream. The head is judged before the body is
 * buffered: an unknown type or a length above the type's limit ends the
 * connection at once. */
static void on_read(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct net *n = c->net;
	struct evbuffer *in = bufferevent_get_input(bev);

	c->last_rx_ms = net_now_ms();
	while (c->state == CONN_HELLO || c->state == CONN_READY) {
		uint8_t head[WIRE_HEAD_LEN], type;
		size_t body_len;
		int rc;

		if (evbuffer_get_length(in) < WIRE_HEAD_LEN)
			return;
		evbuffer_copyout(in, head, WIRE_HEAD_LEN);
		rc = wire_head(head, &type, &body_len);
		if (rc) {
			conn_misbehave(c, "a frame %s (type %u, length %u)",
				       rc == TALLY_E_TOOLONG ? "above its type's size limit" :
				       rc == TALLY_E_RANGE ? "of an unknown type" : "of length 0",
				       type, (unsigned)(head[0] | head[1] << 8 | head[2] << 16 |
							(unsigned)head[3] << 24));
			return;
		}
		if (c->state == CONN_HELLO && type != WIRE_HELLO) {
			conn_misbehave(c, "%s before HELLO", wire_type_name(type));
			return;
		}
		if (evbuffer_get_length(in) < WIRE_HEAD_LEN + body_len)
			return;
		if (!bucket_take(&c->msgs, n->cfg.max_msgs_per_s, n->cfg.max_msg_burst,
				 c->last_rx_ms)) {
			conn_misbehave(c, "flooding: more than %u messages a second",
				       n->cfg.max_msgs_per_s);
			return;
		}
		__atomic_fetch_add(&c->msgs_in, 1, __ATOMIC_RELAXED);
		evbuffer_drain(in, WIRE_HEAD_LEN);
		const uint8_t *body = body_len ? evbuffer_pullup(in, (ssize_t)body_len) : head;
		if (!body) {
			conn_close(c, "out of memory reading a message");
			return;
		}
		on_message(c, type, body, body_len);
		if (c->bev)
			evbuffer_drain(in, body_len);
	}
}

/* A peer this node dialed that ends the connection with a TLS alert after
 * the handshake and before its HELLO has refused this node's certificate
 * (TLS 1.3: the client's handshake is over before the server checks it),
 * which a peer does only for a key it does not take. Said once per
 * configured peer until it connects, with what its operator must add: a
 * joining operator otherwise sees nothing but "no peer connected". */
static bool peer_refused_us(struct conn *c, short what)
{
	struct net *n = c->net;
	unsigned long e = bufferevent_get_openssl_error(c->bev);
	char name[80], ssl_err[160], hex[2 * PUBKEY_LEN + 1];

	if (!(what & BEV_EVENT_ERROR) || !e || ERR_GET_LIB(e) != ERR_LIB_SSL)
		return false;
	/* The alerts a refused certificate draws (OpenSSL maps the verify
	 * callback's refusal to one of these), not any alert. */
	switch (ERR_GET_REASON(e)) {
	case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
	case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE:
	case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
	case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
	case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
		break;
	default:
		return false;
	}
	ERR_error_string_n(e, ssl_err, sizeof(ssl_err));
	if (c->dial >= 0 && !n->dials[c->dial].refusal_said) {
		n->dials[c->dial].refusal_said = true;
		hex_encode(n->key->pub, PUBKEY_LEN, hex);
		log_warn("peers: %s refused this node's key (%s): it takes only its configured "
			 "peers, allowed keys and validators; its operator adds 'allow = %s' under "
			 "[peers] and restarts it (tried again with backoff)",
			 conn_name(c, name), ssl_err, hex);
	}
	conn_close(c, "it refused this node's key");
	return true;
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	struct net *n = c->net;
	char name[80];
	(void)bev;

	if (what & BEV_EVENT_CONNECTED) {
		uint8_t key[PUBKEY_LEN];
		if (tlsid_peer_key(c->ssl, key) || !c->key_known ||
		    memcmp(key, c->key, PUBKEY_LEN)) {
			STAT_ADD(n, handshakes_refused, 1);
			conn_close(c, "the key proved is not the key checked");
			return;
		}
		c->state = CONN_HELLO;
		send_hello(c);
		return;
	}
	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	if (c->state == CONN_TLS) {
		unsigned long e = bufferevent_get_openssl_error(c->bev);
		int sock_err = EVUTIL_SOCKET_ERROR();
		char ssl_err[160] = "";

		if (e && ERR_GET_LIB(e))
			ERR_error_string_n(e, ssl_err, sizeof(ssl_err));
		if (c->refusal[0]) {
			log_warn("peers: refused %s: %s", conn_name(c, name), c->refusal);
		} else if (c->outbound) {
			/* A peer that is down: retried with backoff, not news. */
			log_debug("peers: cannot reach %s: %s", c->addr,
				  ssl_err[0] ? ssl_err : (what & BEV_EVENT_EOF) ? "closed by the peer"
						       : evutil_socket_error_to_string(sock_err));
		} else {
			log_info("peers: TLS handshake from %s failed: %s", c->addr,
				 ssl_err[0] ? ssl_err : "closed or not TLS");
		}
		if (!c->outbound || c->refusal[0])
			STAT_ADD(n, handshakes_refused, 1);
		addr_failed(c);
		conn_close(c, NULL);
		return;
	}
	if (c->state == CONN_HELLO && c->outbound && peer_refused_us(c, what))
		return;
	conn_close(c, (what & BEV_EVENT_EOF) ? "closed by the peer" : "connection error");
}

/* --- listening and dialing ---------------------------------------------- */

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
		      int salen, void *arg)
{
	struct net *n = arg;
	char host[INET6_ADDRSTRLEN] = "?", addr[128];
	uint8_t id[PUBKEY_LEN];
	size_t total = 0, preauth = 0;
	struct sockaddr_storage ss;
	(void)l;

	memset(&ss, 0, sizeof(ss));
	memcpy(&ss, sa, (size_t)salen <= sizeof(ss) ? (size_t)salen : sizeof(ss));
	addr_id(&ss, id);
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)sa)->sin_addr, host, sizeof(host));
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)sa)->sin6_addr, host, sizeof(host));
	snprintf(addr, sizeof(addr), sa->sa_family == AF_INET6 ? "[%s]:%u" : "%s:%u", host,
		 ntohs(sa->sa_family == AF_INET6 ? ((struct sockaddr_in6 *)sa)->sin6_port
						  : ((struct sockaddr_in *)sa)->sin_port));
	for (struct conn *c = n->conns; c; c = c->next) {
		if (c->state == CONN_DEAD)
			continue;
		total++;
		if (c->state != CONN_READY && !c->outbound && c->sa.ss_family == ss.ss_family) {
			uint8_t cid[PUBKEY_LEN];
			addr_id(&c->sa, cid);
			preauth += !memcmp(cid, id, PUBKEY_LEN);
		}
	}
	if (n->stopping || banned(n, false, id, net_now_ms()) ||
	    total >= n->cfg.max_peers + NET_PREAUTH_SLACK || preauth >= NET_PREAUTH_PER_ADDR) {
		STAT_ADD(n, handshakes_refused, 1);
		log_debug("peers: refused a connection from %s (banned or over the limits)", addr);
		close(fd);
		return;
	}
	evutil_make_socket_nonblocking(fd);
	if (!conn_new(n, fd, false, addr, sa, (socklen_t)salen))
		log_warn("peers: cannot take a connection from %s: out of memory", addr);
}

static void on_accept_error(struct evconnlistener *l, void *arg)
{
	(void)l;
	(void)arg;
	log_warn("peers: accepting a connection failed: %s", strerror(errno));
}

/* "host:port" or "[v6]:port" into getaddrinfo's two strings. */
static int split_addr(const char *a, char *host, size_t hostlen, char *port, size_t portlen)
{
	const char *colon = strrchr(a, ':');
	size_t hl;

	if (!colon)
		return -1;
	hl = (size_t)(colon - a);
	if (a[0] == '[' && hl >= 2 && a[hl - 1] == ']') {
		a++;
		hl -= 2;
	}
	if (hl >= hostlen || strlen(colon + 1) >= portlen)
		return -1;
	memcpy(host, a, hl);
	host[hl] = '\0';
	snprintf(port, portlen, "%s", colon + 1);
	return 0;
}

static int resolve(const char *a, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[128], port[16];
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV }, *res;

	if (split_addr(a, host, sizeof(host), port, sizeof(port)) ||
	    getaddrinfo(host, port, &hints, &res))
		return -1;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static bool key_connected(struct net *n, const uint8_t key[PUBKEY_LEN])
{
	for (struct conn *c = n->conns; c; c = c->next)
		if (c->state == CONN_READY && !memcmp(c->key, key, PUBKEY_LEN))
			return true;
	return false;
}

static void dial_due(struct net *n, uint64_t now)
{
	for (size_t i = 0; i < n->ndials; i++) {
		struct dial *d = &n->dials[i];
		const uint8_t *key = d->cfg->has_key ? d->cfg->key : d->key_learned ? d->key : NULL;
		struct sockaddr_storage ss;
		socklen_t len;

		if (d->conn || now < d->next_ms)
			continue;
		if (key && (key_connected(n, key) || banned(n, true, key, now))) {
			d->next_ms = now + NET_DIAL_MIN_MS * 4;
			continue;
		}
		d->next_ms = now + d->backoff_ms;
		if (resolve(d->cfg->addr, &ss, &len)) {
			log_warn("peers: cannot resolve %s", d->cfg->addr);
			d->backoff_ms = NET_DIAL_MAX_MS;
			continue;
		}
		struct conn *c = conn_new(n, -1, true, d->cfg->addr, (struct sockaddr *)&ss, len);
		if (!c)
			continue;
		c->dial = (int)i;
		d->conn = c;
		if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&ss, (int)len))
			conn_close(c, "cannot connect");
		else
			set_nodelay(bufferevent_getfd(c->bev));
	}
}

/* --- the loop -------------------------------------------------------------- */

static void reap(struct net *n)
{
	pthread_mutex_lock(&n->mu);
	for (struct conn **pp = &n->conns; *pp;) {
		struct conn *c = *pp;
		if (c->state == CONN_DEAD) {
			*pp = c->next;
			free(c);
		} else {
			pp = &c->next;
		}
	}
	pthread_mutex_unlock(&n->mu);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct net *n = arg;
	uint64_t now = net_now_ms();
	(void)fd;
	(void)what;

	for (struct conn *c = n->conns; c; c = c->next) {
		if (c->state == CONN_DEAD)
			continue;
		if (c->state != CONN_READY && now - c->opened_ms > NET_HANDSHAKE_MS) {
			STAT_ADD(n, handshakes_refused, 1);
			addr_failed(c);
			conn_close(c, "handshake not finished in time");
		} else if (c->state == CONN_READY && now - c->last_rx_ms > NET_IDLE_MS) {
			conn_close(c, "silent for too long");
		} else if (c->state == CONN_READY && now - c->drained_ms > NET_STALL_MS &&
			   evbuffer_get_length(bufferevent_get_output(c->bev))) {
			char why[96];

			snprintf(why, sizeof(why), "it took nothing of what it was sent for %d s"
				 " (%zu KiB wait)", NET_STALL_MS / 1000,
				 evbuffer_get_length(bufferevent_get_output(c->bev)) >> 10);
			conn_close(c, why);
		} else {
			if (c->state == CONN_READY && now - c->last_tx_ms > NET_PING_MS) {
				struct wire_msg m = { .type = WIRE_PING, .u.ping = now };
				conn_send(c, &m);
			}
			/* Only once what it was sent has gone: a peer slow to
			 * read is not given more. */
			if (conn_ready(c) && now - c->offered_ms > NET_REOFFER_MS &&
			    !evbuffer_get_length(bufferevent_get_output(c->bev)))
				gossip_reoffer(c);
		}
	}
	reap(n);
	dial_due(n, now);
	gossip_flush(n);
	sync_tick(n);
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
	struct net *n = arg;
	bool sync;
	(void)fd;
	(void)what;

	gossip_flush(n);
	pthread_mutex_lock(&n->mu);
	sync = n->sync_soon;
	n->sync_soon = false;
	pthread_mutex_unlock(&n->mu);
	if (sync)
		sync_tick(n);
}

static void *net_main(void *arg)
{
	struct net *n = arg;

	event_base_dispatch(n->base);
	return NULL;
}

static int listen_on(struct net *n, char *why)
{
	struct sockaddr_storage ss;
	socklen_t len;

	if (resolve(n->cfg.listen, &ss, &len))
		return why_set(why, TALLY_E_INVALID, "[peers] listen '%s' is not an address",
			       n->cfg.listen);
	n->listener = evconnlistener_new_bind(n->base, on_accept, n,
					      LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
					      LEV_OPT_CLOSE_ON_EXEC, 64,
					      (struct sockaddr *)&ss, (int)len);
	if (!n->listener)
		return why_set(why, TALLY_E_IO, "cannot listen for peers on %s: %s",
			       n->cfg.listen, strerror(errno));
	evconnlistener_set_error_cb(n->listener, on_accept_error);
	return 0;
}

static void net_free(struct net *n)
{
	if (!n)
		return;
	for (struct conn *c = n->conns; c; c = c->next)
		if (c->bev)
			bufferevent_free(c->bev);
	while (n->conns) {
		struct conn *c = n->conns;
		n->conns = c->next;
		free(c);
	}
	if (n->listener)
		evconnlistener_free(n->listener);
	if (n->tick)
		event_free(n->tick);
	if (n->wake)
		event_free(n->wake);
	if (n->base)
		event_base_free(n->base);
	SSL_CTX_free(n->tls);
	intake_stop(n);
	gossip_free_queue(n);
	seen_free(n->seen_tx);
	free(n->dials);
	pthread_mutex_destroy(&n->mu);
	free(n);
}

int net_start(struct net **out, const struct net_config *cfg, char *why)
{
	static pthread_once_t threads_once = PTHREAD_ONCE_INIT;
	struct net *n = calloc(1, sizeof(*n));
	struct timeval tick = { 0, NET_TICK_MS * 1000 };
	int rc;

	*out = NULL;
	if (!n)
		return TALLY_E_NOMEM;
	pthread_once(&threads_once, (void (*)(void))evthread_use_pthreads);
	pthread_mutex_init(&n->mu, NULL);
	n->cfg = *cfg->peers;
	n->key = cfg->key;
	memcpy(n->genesis_hash, cfg->genesis_hash, HASH_LEN);
	snprintf(n->chain_id, sizeof(n->chain_id), "%s", cfg->chain_id);
	n->ledger = cfg->ledger;
	n->st.configured = n->cfg.npeers;
	n->seen_tx = seen_new(NET_SEEN_TXS);
	n->dials = calloc(n->cfg.npeers ? n->cfg.npeers : 1, sizeof(*n->dials));
	n->base = event_base_new();
	if (!n->seen_tx || !n->dials || !n->base) {
		rc = why_set(why, TALLY_E_NOMEM, "cannot set up the peer transport: out of memory");
		goto err;
	}
	n->ndials = n->cfg.npeers;
	for (size_t i = 0; i < n->ndials; i++) {
		n->dials[i].cfg = &n->cfg.peers[i];
		n->dials[i].backoff_ms = NET_DIAL_MIN_MS;
	}
	if ((rc = tlsid_ctx_new(&n->tls, n->key, verify_peer, why)))
		goto err;
	if (n->cfg.listen[0] && (rc = listen_on(n, why)))
		goto err;
	n->tick = event_new(n->base, -1, EV_PERSIST, on_tick, n);
	n->wake = event_new(n->base, -1, 0, on_wake, n);
	if (!n->tick || !n->wake || event_add(n->tick, &tick)) {
		rc = why_set(why, TALLY_E_NOMEM, "cannot set up the peer transport's timers");
		goto err;
	}
	if ((rc = intake_new(n, why)) || (rc = intake_start(n, why)))
		goto err;
	ledger_set_admit_hook(n->ledger, gossip_admitted, n);
	if (pthread_create(&n->thread, NULL, net_main, n)) {
		ledger_set_admit_hook(n->ledger, NULL, NULL);
		rc = why_set(why, TALLY_E_NOMEM, "cannot start the network thread");
		goto err;
	}
	n->running = true;
	*out = n;
	return 0;
err:
	net_free(n);
	return rc;
}

void net_stop(struct net *n)
{
	if (!n)
		return;
	/* The network thread first: it queues peers' transactions in the
	 * intake on every TXS frame, so the intake is freed only once that
	 * thread is gone. Then the intake's thread, which calls the ledger
	 * and queues relays and accusations (under mu, for a loop that no
	 * longer runs: net_free drops them), and the ledger's hook. */
	pthread_mutex_lock(&n->mu);
	n->stopping = true;
	pthread_mutex_unlock(&n->mu);
	if (n->running) {
		event_base_loopbreak(n->base);
		pthread_join(n->thread, NULL);
	}
	intake_stop(n);
	ledger_set_admit_hook(n->ledger, NULL, NULL);
	net_free(n);
}

void net_status(struct net *n, struct net_stats *st, struct net_peer_info *peers, size_t max,
		size_t *npeers)
{
	uint64_t now = net_now_ms();
	size_t k = 0;

	pthread_mutex_lock(&n->mu);
	*st = n->st;
	st->peers = 0;
	st->best_peer_height = 0;
	for (struct conn *c = n->conns; c; c = c->next) {
		if (c->state != CONN_READY)
			continue;
		st->peers++;
		if (c->height > st->best_peer_height)
			st->best_peer_height = c->height;
		if (k < max) {
			struct net_peer_info *p = &peers[k++];
			memcpy(p->key, c->key, PUBKEY_LEN);
			snprintf(p->addr, sizeof(p->addr), "%s", c->addr);
			p->outbound = c->outbound;
			p->height = c->height;
			p->connected_s = (now - c->ready_ms) / 1000;
			p->msgs_in = __atomic_load_n(&c->msgs_in, __ATOMIC_RELAXED);
			p->msgs_out = __atomic_load_n(&c->msgs_out, __ATOMIC_RELAXED);
		}
	}
	st->height = n->tip_height;
	pthread_mutex_unlock(&n->mu);
	/* Nothing to learn from nobody: a node with peers configured but none
	 * connected does not know it is caught up; one without peers is its
	 * own chain. */
	st->caught_up = st->peers ? st->best_peer_height <= st->height
				  : st->configured == 0 && n->cfg.nallow == 0;
	if (npeers)
		*npeers = k;
}
