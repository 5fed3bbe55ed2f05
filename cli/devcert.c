/* Self-signed certificate for a devnet (see cli/devcert.h), with OpenSSL. */
#include "cli/devcert.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define DEVCERT_DAYS 365

static int add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX ctx;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!ext)
		return -1;
	int ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : -1;
}

/* The names a client may use for this node: the listen host (unless it is
 * a wildcard), and the loopback names. */
static void alt_names(char *out, size_t cap, const char *host)
{
	unsigned char buf[sizeof(struct in6_addr)];
	int is_ip = inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
	int loopback_or_any = !strcmp(host, "127.0.0.1") || !strcmp(host, "::1") ||
			      !strcmp(host, "0.0.0.0") || !strcmp(host, "::") ||
			      !strcmp(host, "localhost");

	if (loopback_or_any || !*host)
		snprintf(out, cap, "IP:127.0.0.1,IP:::1,DNS:localhost");
	else
		snprintf(out, cap, "%s:%s,IP:127.0.0.1,IP:::1,DNS:localhost", is_ip ? "IP" : "DNS",
			 host);
}

static X509 *make_cert(EVP_PKEY *key, const char *host)
{
	X509 *x = X509_new();
	X509_NAME *name = NULL;
	char cn[128], sans[512];
	unsigned char serial[16];
	BIGNUM *bn = NULL;
	int ok = 0;

	if (!x || RAND_bytes(serial, sizeof(serial)) != 1)
		goto out;
	serial[0] &= 0x7f;   /* a positive serial */
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	snprintf(cn, sizeof(cn), "tally devnet %s", *host ? host : "127.0.0.1");
	alt_names(sans, sizeof(sans), host);
	name = X509_NAME_new();
	ok = bn && name && X509_set_version(x, 2) &&
	     BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) &&
	     X509_gmtime_adj(X509_getm_notBefore(x), -3600) &&
	     X509_gmtime_adj(X509_getm_notAfter(x), (long)DEVCERT_DAYS * 86400) &&
	     X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn,
					-1, -1, 0) &&
	     X509_set_subject_name(x, name) && X509_set_issuer_name(x, name) &&
	     X509_set_pubkey(x, key) &&
	     /* Its own issuer: a client that trusts this file trusts the node. */
	     !add_ext(x, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") &&
	     !add_ext(x, NID_key_usage, "critical,digitalSignature,keyCertSign") &&
	     !add_ext(x, NID_ext_key_usage, "serverAuth") &&
	     !add_ext(x, NID_subject_key_identifier, "hash") &&
	     !add_ext(x, NID_subject_alt_name, sans) &&
	     X509_sign(x, key, EVP_sha256()) > 0;
out:
	BN_free(bn);
	X509_NAME_free(name);
	if (!ok) {
		X509_free(x);
		return NULL;
	}
	return x;
}

static FILE *create(const char *path, mode_t mode, char *why)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;

	if (!f) {
		snprintf(why, 256, "cannot create %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
	}
	return f;
}

int devcert_write(const char *cert_path, const char *key_path, const char *host, char *why)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = key ? make_cert(key, host) : NULL;
	FILE *kf = NULL, *cf = NULL;
	int rc = -1;

	if (!x) {
		snprintf(why, 256, "OpenSSL cannot make the devnet's TLS key and certificate");
		goto out;
	}
	kf = create(key_path, 0600, why);
	if (!kf)
		goto out;
	if (!PEM_write_PrivateKey(kf, key, NULL, NULL, 0, NULL, NULL)) {
		snprintf(why, 256, "cannot write %s", key_path);
		goto out;
	}
	cf = create(cert_path, 0644, why);
	if (!cf)
		goto out;
	if (!PEM_write_X509(cf, x)) {
		snprintf(why, 256, "cannot write %s", cert_path);
		goto out;
	}
	rc = 0;
out:
	if (kf && fclose(kf) && !rc) {
		snprintf(why, 256, "cannot write %s: %s", key_path, strerror(errno));
		rc = -1;
	}
	if (cf && fclose(cf) && !rc) {
		snprintf(why, 256, "cannot write %s: %s", cert_path, strerror(errno));
		rc = -1;
	}
	X509_free(x);
	EVP_PKEY_free(key);
	return rc;
}
