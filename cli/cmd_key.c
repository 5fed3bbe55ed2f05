/* tally key new | key show: the Ed25519 key that signs your contracts and
 * transactions, a PEM file that `openssl pkey` reads. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/tally.h"
#include "lib/errors.h"

/* mkdir -p of the directory holding path, private to the user. */
static int make_parent(const char *path)
{
	char dir[4096];
	char *slash;

	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
		return -1;
	slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return 0;
	*slash = 0;
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(dir, 0700) && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(dir, 0700) && errno != EEXIST)
		return -1;
	return 0;
}

/* The public key on stdout; with --json, with the key file's path. */
static void print_pubkey(const char *hex, const struct common *co)
{
	if (co->json)
		print_json(json_pack("{s:s,s:s}", "pubkey", hex, "path", co->key));
	else
		printf("%s\n", hex);
}

const struct cmd_doc doc_key_new = {
	.name = "key new",
	.synopsis = "[--key FILE] [--json]",
	.summary = "make a new key (refuses to overwrite one)",
	.description =
		"Makes a new Ed25519 key and writes it to FILE (mode 0600), creating the\n"
		"directory if needed. Refuses to overwrite an existing key.",
};

int cmd_key_new(int argc, char **argv)
{
	struct common co;
	struct tally_key k;
	struct stat st;
	char hex[65];
	int rc;

	rc = parse_common_args(&co, argc, argv, &doc_key_new);
	if (rc != ARGS_PARSED)
		return rc;
	if (optind != argc)
		return usage_error("key new", "unexpected argument '%s'", argv[optind]);
	if (make_parent(co.key)) {
		err("cannot create the directory of %s: %s", co.key, strerror(errno));
		return EXIT_USAGE;
	}
	rc = key_generate(&k);
	if (rc) {
		err("cannot generate a key: %s", tally_strerror(rc));
		return EXIT_USAGE;
	}
	rc = key_save_pem(&k, co.key);
	int os_err = errno;

	hex_encode(k.pub, PUBKEY_LEN, hex);
	key_free(&k);
	if (rc == TALLY_E_EXISTS && !stat(co.key, &st) && S_ISDIR(st.st_mode)) {
		err("cannot create %s: it is a directory (--key names the key's file)", co.key);
		return EXIT_USAGE;
	}
	if (rc == TALLY_E_EXISTS) {
		err("%s already exists; not overwriting it ('tally key show --key %s' shows its"
		    " public key; give another --key FILE for a new one)", co.key, co.key);
		return EXIT_USAGE;
	}
	if (rc == TALLY_E_IO) {
		err("cannot create %s: %s", co.key, strerror(os_err));
		return EXIT_USAGE;
	}
	if (rc) {
		err("cannot write %s: %s", co.key, tally_strerror(rc));
		return EXIT_USAGE;
	}
	print_pubkey(hex, &co);
	if (!co.json)
		fprintf(stderr, "tally: new key written to %s\n", co.key);
	return EXIT_OK;
}

const struct cmd_doc doc_key_show = {
	.name = "key show",
	.synopsis = "[--key FILE] [--json]",
	.summary = "print your public key",
	.description = "Prints the public key (64 hex characters): your account on the chain.",
};

int cmd_key_show(int argc, char **argv)
{
	struct common co;
	struct tally_key k;
	char hex[65];
	int rc;

	rc = parse_common_args(&co, argc, argv, &doc_key_show);
	if (rc != ARGS_PARSED)
		return rc;
	if (optind != argc)
		return usage_error("key show", "unexpected argument '%s'", argv[optind]);
	rc = load_key(&k, co.key);
	if (rc)
		return rc;
	hex_encode(k.pub, PUBKEY_LEN, hex);
	key_free(&k);
	print_pubkey(hex, &co);
	return EXIT_OK;
}
