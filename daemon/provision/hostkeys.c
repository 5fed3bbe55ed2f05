/* The guest's SSH host keys, as cloud-init's keys_to_console module prints
 * them on the serial console at the end of the first boot:
 *
 *     <14>Nov 30 04:33:45 cloud-init: -----BEGIN SSH HOST KEY FINGERPRINTS-----
 *     <14>Nov 30 04:33:45 cloud-init: 256 SHA256:VYqG6...n2s root@web-1 (ECDSA)
 *     <14>Nov 30 04:33:45 cloud-init: 256 SHA256:Rvn6u...c6o root@web-1 (ED25519)
 *     <14>Nov 30 04:33:45 cloud-init: -----END SSH HOST KEY FINGERPRINTS-----
 *     -----BEGIN SSH HOST KEY KEYS-----
 *     ecdsa-sha2-nistp256 AAAAE2Vj... root@web-1
 *     ssh-ed25519 AAAAC3Nz... root@web-1
 *     -----END SSH HOST KEY KEYS-----
 *
 * (the fingerprints go through syslog, whose prefix is dropped here; the
 * lines end in CR LF). The console is written by the guest, so every line is held to the same
 * rules as a tenant's key (ssh_key_check) or to the fingerprint's shape; a
 * block interrupted by other console output is read as far as its lines
 * keep that shape. The tenant checks the fingerprints against the keys
 * (`tally lease ssh` does) before it trusts either. */
#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/provision/provision_impl.h"
#include "lib/errors.h"

#define LOG_TAIL_MAX (1024 * 1024)
#define FP_BEGIN "-----BEGIN SSH HOST KEY FINGERPRINTS-----"
#define FP_END "-----END SSH HOST KEY FINGERPRINTS-----"
#define KEYS_BEGIN "-----BEGIN SSH HOST KEY KEYS-----"
#define KEYS_END "-----END SSH HOST KEY KEYS-----"

/* "BITS SHA256:BASE64 COMMENT (TYPE)" of printable ASCII without quotes. */
static bool fingerprint_ok(const char *s)
{
	const char *p = s;

	if (!isdigit((unsigned char)*p))
		return false;
	while (isdigit((unsigned char)*p))
		p++;
	if (strncmp(p, " SHA256:", 8) != 0 || strlen(s) >= 128)
		return false;
	for (; *s; s++)
		if (*s < 0x20 || *s >= 0x7f || *s == '"' || *s == '\\' || *s == '<' || *s == '&')
			return false;
	return true;
}

/* The line without a syslog or journal prefix ("<14>Nov 30 04:33:45
 * cloud-init: ", "[ 66.2] cloud-init[341]: "). */
static char *unprefixed(char *s)
{
	char *c = strstr(s, "cloud-init");

	if (!c || (s[0] != '<' && s[0] != '['))
		return s;
	c += strlen("cloud-init");
	if (*c == '[') {
		size_t digits = strspn(c + 1, "0123456789");

		if (c[1 + digits] != ']')
			return s;
		c += digits + 2;
	}
	return strncmp(c, ": ", 2) == 0 ? c + 2 : s;
}

/* The lines between the last begin marker and its end marker, in place:
 * each kept line is NUL-terminated and stored in lines[]. */
static size_t block(char *text, const char *begin, const char *end, char **lines,
		    size_t max, bool (*ok)(const char *))
{
	char *b = NULL, *e, *s;
	size_t n = 0;

	for (char *at = text; (at = strstr(at, begin)); at++)
		if (strstr(at, end))
			b = at;
	if (!b)
		return 0;
	e = strstr(b, end);
	*e = '\0';
	s = b + strlen(begin);
	while (*s && n < max) {
		size_t len = strcspn(s, "\r\n");
		char save = s[len];

		s[len] = '\0';
		if (len && ok(unprefixed(s)))
			lines[n++] = unprefixed(s);
		if (!save)
			break;
		s += len + 1;
	}
	return n;
}

static bool key_ok(const char *s)
{
	return s[0] && ssh_key_check(s, NULL) == 0;
}

int prov_host_keys_read(const char *console_log, struct prov_host_keys *out)
{
	char *text, *fp_copy, *lines[PROV_HOST_KEYS_MAX];
	int fd = open(console_log, O_RDONLY | O_CLOEXEC);
	off_t size, from;
	ssize_t got;
	size_t n;

	memset(out, 0, sizeof(*out));
	if (fd < 0)
		return TALLY_E_NOTFOUND;
	size = lseek(fd, 0, SEEK_END);
	from = size > LOG_TAIL_MAX ? size - LOG_TAIL_MAX : 0;
	text = malloc(LOG_TAIL_MAX + 1);
	got = text && size > 0 ? pread(fd, text, (size_t)(size - from), from) : -1;
	close(fd);
	if (got <= 0) {
		free(text);
		return TALLY_E_NOTFOUND;
	}
	text[got] = '\0';
	/* The console may hold NULs; what follows one is ignored, as a C string. */
	fp_copy = strdup(text);
	if (!fp_copy) {
		free(text);
		return TALLY_E_NOMEM;
	}
	n = block(text, KEYS_BEGIN, KEYS_END, lines, PROV_HOST_KEYS_MAX, key_ok);
	for (size_t i = 0; i < n; i++)
		snprintf(out->keys[i], sizeof(out->keys[i]), "%s", lines[i]);
	out->n_keys = n;
	n = block(fp_copy, FP_BEGIN, FP_END, lines, PROV_HOST_KEYS_MAX, fingerprint_ok);
	for (size_t i = 0; i < n; i++)
		snprintf(out->fingerprints[i], sizeof(out->fingerprints[i]), "%s", lines[i]);
	out->n_fingerprints = n;
	free(fp_copy);
	free(text);
	return out->n_keys ? 0 : TALLY_E_NOTFOUND;
}
