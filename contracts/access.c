/* What a contract hands to the guest: its hostname and the tenant's SSH key
 * (rules in contract.h). Both travel into a cloud-init seed (YAML) and the
 * domain's metadata (XML), so they are checked here, once, against
 * alphabets that need no quoting there; the provisioner checks them again
 * with these same functions before it writes anything. */
#include "contracts/contract.h"

#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "lib/errors.h"

int hostname_check(const char *h, char *why)
{
	size_t n = strnlen(h, HOSTNAME_MAX + 1);

	if (n == 0)
		return 0;
	if (n > HOSTNAME_MAX)
		return why_set(why, TALLY_E_CONTRACT, "hostname is longer than %d bytes",
			       HOSTNAME_MAX);
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)h[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-'))
			return why_set(why, TALLY_E_CONTRACT,
				       "hostname may hold only a-z, 0-9 and '-' (byte %zu is 0x%02x)",
				       i, ch);
	}
	if (h[0] == '-' || h[n - 1] == '-')
		return why_set(why, TALLY_E_CONTRACT, "hostname \"%s\" starts or ends with '-'", h);
	return 0;
}

static const char *const key_types[] = {
	"ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
	"ecdsa-sha2-nistp521", "sk-ssh-ed25519@openssh.com",
	"sk-ecdsa-sha2-nistp256@openssh.com", NULL,
};

static bool comment_char_ok(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       strchr(" ._@+=:,/-", ch) != NULL;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The key blob is a sequence of SSH strings (u32 big-endian length, bytes)
 * whose first names the key type (RFC 4253 section 6.6, RFC 5656, RFC 8709). */
static int check_blob(const char *type, size_t type_len, const char *b64, size_t n, char *why)
{
	uint8_t blob[SSH_KEY_MAX], again[SSH_KEY_MAX + 4];
	size_t len, off = 0, pad = 0;
	int got;

	if (n == 0 || n % 4 || n > SSH_KEY_MAX)
		return why_set(why, TALLY_E_CONTRACT,
			       "SSH key: the key data is not base64 (its length %zu is not a "
			       "multiple of 4)", n);
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)b64[i];
		bool alpha = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			     (ch >= '0' && ch <= '9') || ch == '+' || ch == '/';

		if (ch == '=' && i >= n - 2) {
			pad++;
			continue;
		}
		if (!alpha || pad)
			return why_set(why, TALLY_E_CONTRACT,
				       "SSH key: the key data is not base64 (byte %zu)", i);
	}
	got = EVP_DecodeBlock(blob, (const unsigned char *)b64, (int)n);
	if (got < 0 || (size_t)got < pad)
		return why_set(why, TALLY_E_CONTRACT, "SSH key: the key data is not base64");
	len = (size_t)got - pad;
	/* Canonical: encoding the blob again gives the same text. */
	if (EVP_EncodeBlock(again, blob, (int)len) != (int)n || memcmp(again, b64, n))
		return why_set(why, TALLY_E_CONTRACT,
			       "SSH key: the key data is not canonical base64");
	if (len == 0)
		return why_set(why, TALLY_E_CONTRACT, "SSH key: the key blob is empty");
	for (int field = 0; off < len; field++) {
		uint32_t flen;

		if (len - off < 4 || (flen = be32(blob + off)) > len - off - 4)
			return why_set(why, TALLY_E_CONTRACT,
				       "SSH key: the key blob is truncated (field %d)", field);
		if (field == 0 && (flen != type_len || memcmp(blob + off + 4, type, type_len)))
			return why_set(why, TALLY_E_CONTRACT,
				       "SSH key: the key blob is not a %.*s key", (int)type_len, type);
		off += 4 + flen;
	}
	return 0;
}

int ssh_key_check(const char *k, char *why)
{
	size_t n = strnlen(k, SSH_KEY_MAX + 1), type_len, data_len;
	const char *data, *comment;
	size_t t;

	if (n == 0)
		return 0;
	if (n > SSH_KEY_MAX)
		return why_set(why, TALLY_E_CONTRACT, "SSH key is longer than %d bytes",
			       SSH_KEY_MAX);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)k[i] < 0x20 || (unsigned char)k[i] >= 0x7f)
			return why_set(why, TALLY_E_CONTRACT,
				       "SSH key holds a control or non-ASCII byte 0x%02x at %zu "
				       "(one line of printable ASCII is expected)",
				       (unsigned char)k[i], i);
	type_len = strcspn(k, " ");
	for (t = 0; key_types[t]; t++)
		if (strlen(key_types[t]) == type_len && !memcmp(k, key_types[t], type_len))
			break;
	if (!key_types[t])
		return why_set(why, TALLY_E_CONTRACT,
			       "SSH key type \"%.*s\" is not one of ssh-ed25519, ssh-rsa, "
			       "ecdsa-sha2-nistp256/384/521 or their sk- forms (key options "
			       "are not accepted)", (int)(type_len > 40 ? 40 : type_len), k);
	if (k[type_len] != ' ')
		return why_set(why, TALLY_E_CONTRACT, "SSH key has no key data after its type");
	data = k + type_len + 1;
	data_len = strcspn(data, " ");
	int rc = check_blob(k, type_len, data, data_len, why);
	if (rc)
		return rc;
	comment = data + data_len;
	for (size_t i = 0; comment[i]; i++)
		if (!comment_char_ok((unsigned char)comment[i]))
			return why_set(why, TALLY_E_CONTRACT,
				       "SSH key comment may hold only letters, digits, spaces and "
				       "._@+=:,/- (it has '%c')", comment[i]);
	return 0;
}
