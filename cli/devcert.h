/* A self-signed TLS certificate for a devnet's API (`tally node init --dev
 * --tls`): an ECDSA P-256 key and a certificate for the listen address,
 * 127.0.0.1, ::1 and localhost, valid for a year. Clients trust it with
 * `--cacert DIR/tls.crt`. Not for a network anyone else uses: there the
 * operator's certificate comes from a real CA. */
#ifndef TALLY_CLI_DEVCERT_H
#define TALLY_CLI_DEVCERT_H

/* Writes cert_path (0644) and key_path (0600). host is the listen address's
 * host (an IP address, or a name); why[256] on failure. 0 or -1. */
int devcert_write(const char *cert_path, const char *key_path, const char *host, char *why);

#endif
