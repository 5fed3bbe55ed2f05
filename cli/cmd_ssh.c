/* tally lease ssh: log in to a lease's VM with the system's ssh.
 *
 * The node forwards a port on its public address to the guest's port 22 and
 * tells the tenant (in the signed private read) the host, port and login
 * user, and the guest's host keys with their fingerprints, as cloud-init
 * printed them on the VM's console. Before the first connection this
 * command checks that every key matches a printed SHA-256 fingerprint, writes
 * the keys to a known_hosts file of the lease's own, and runs
 *
 *     ssh -p PORT -o UserKnownHostsFile=FILE -o StrictHostKeyChecking=yes
 *         USER@HOST [COMMAND...]
 *
 * so that ssh refuses any other host key, as it would for a host the user
 * had verified by hand. */
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/tally.h"
#include "contracts/contract.h"
#include "lib/errors.h"

#define DEFAULT_WAIT_S 300
#define POLL_S 2
#define ARGS_MAX 64

/* OpenSSH's "SHA256:..." fingerprint of one key line: the SHA-256 of the
 * base64-decoded key blob, in base64 without padding. */
static int fingerprint(const char *key_line, char out[64])
{
	uint8_t blob[SSH_KEY_MAX], digest[HASH_LEN];
	unsigned char b64[64];
	const char *data = strchr(key_line, ' ');
	size_t n, pad = 0;
	int got;

	if (!data)
		return -1;
	data++;
	n = strcspn(data, " ");
	if (n == 0 || n > SSH_KEY_MAX || n % 4)
		return -1;
	got = EVP_DecodeBlock(blob, (const unsigned char *)data, (int)n);
	while (pad < 2 && data[n - 1 - pad] == '=')
		pad++;
	if (got < (int)pad)
		return -1;
	sha256(blob, (size_t)got - pad, digest);
	got = EVP_EncodeBlock(b64, digest, HASH_LEN);
	while (got > 0 && b64[got - 1] == '=')
		got--;
	snprintf(out, 64, "SHA256:%.*s", got, b64);
	return 0;
}

/* True when one of the printed fingerprint lines ("256 SHA256:xyz c (T)")
 * names exactly this key's fingerprint. */
static bool fingerprint_printed(const json_t *fps, const char *fp)
{
	size_t i, n = strlen(fp);
	json_t *v;

	json_array_foreach(fps, i, v) {
		const char *line = json_string_value(v), *at = line ? strstr(line, fp) : NULL;

		if (at && at > line && at[-1] == ' ' && (at[n] == ' ' || at[n] == '\0'))
			return true;
	}
	return false;
}

/* Writes "[host]:port TYPE BASE64" for every key whose fingerprint the guest
 * printed; refuses when any key lacks one, or there is none. */
static int write_known_hosts(const char *path, const json_t *ssh)
{
	const json_t *keys = json_object_get(ssh, "host_keys");
	const json_t *fps = json_object_get(ssh, "host_key_fingerprints");
	char fp[64];
	size_t i;
	json_t *v;
	FILE *f;

	json_array_foreach(keys, i, v) {
		const char *k = json_string_value(v);

		if (!k || ssh_key_check(k, NULL) || fingerprint(k, fp)) {
			err("the node's answer holds a host key that is not an OpenSSH key line");
			return EXIT_REFUSED;
		}
		if (!fingerprint_printed(fps, fp)) {
			err("host key %.40s... (%s) is not among the fingerprints the guest printed "
			    "on its console; not trusting it", k, fp);
			return EXIT_REFUSED;
		}
	}
	f = fopen(path, "we");
	if (!f) {
		err("cannot write %s: %s", path, strerror(errno));
		return EXIT_USAGE;
	}
	json_array_foreach(keys, i, v) {
		const char *k = json_string_value(v);
		size_t type_len = strcspn(k, " ");
		size_t data_len = strcspn(k + type_len + 1, " ");

		fprintf(f, "[%s]:%" PRIu64 " %.*s\n", jget_str(ssh, "host"),
			jget_u64(ssh, "port"), (int)(type_len + 1 + data_len), k);
	}
	if (fclose(f)) {
		err("cannot write %s: %s", path, strerror(errno));
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

/* The lease's known_hosts: beside the tenant's key, in ssh/<lease>.known_hosts
 * (ports are reused by later leases, so one file per lease). */
static int known_hosts_path(const char *key_path, const char *id, char out[PATH_MAX])
{
	char dir[PATH_MAX];

	snprintf(dir, sizeof(dir), "%s", key_path);
	snprintf(out, PATH_MAX, "%s/ssh", dirname(dir));
	if (mkdir(out, 0700) && errno != EEXIST) {
		err("cannot make %s: %s", out, strerror(errno));
		return EXIT_USAGE;
	}
	snprintf(out + strlen(out), PATH_MAX - strlen(out), "/%.64s.known_hosts", id);
	return EXIT_OK;
}

/* Polls the private read until the guest's host keys are there. */
static int wait_ssh(struct client *cl, const struct tally_key *k, const char *id,
		    uint64_t timeout_s, json_t **out)
{
	time_t end = time(NULL) + (time_t)timeout_s;
	bool said = false;

	for (;;) {
		json_t *j = NULL, *ssh;
		int rc = fetch_lease_private(cl, k, id, &j);

		if (rc)
			return rc;
		ssh = json_object_get(j, "ssh");
		if (!json_is_object(ssh)) {
			err("lease %.16s has no SSH port: its image has no login user, or the node "
			    "forwards no ports (network %s)", id, jget_str(j, "network"));
			json_decref(j);
			return EXIT_REFUSED;
		}
		if (json_array_size(json_object_get(ssh, "host_keys"))) {
			*out = j;
			return EXIT_OK;
		}
		json_decref(j);
		if (time(NULL) >= end) {
			err("the guest of lease %.16s printed no SSH host keys within %" PRIu64
			    " s (see tally lease console)", id, timeout_s);
			return EXIT_REFUSED;
		}
		if (!said)
			fprintf(stderr, "tally: waiting for the guest's SSH host keys (cloud-init)...\n");
		said = true;
		sleep(POLL_S);
	}
}

enum { O_TIMEOUT = 256 };

static const struct opt_doc ssh_opts_doc[] = {
	{ "identity", 'i', "FILE", "the private key ssh offers (IdentitiesOnly)", OPT_SHORT },
	{ "ssh-option", 'o', "OPT", "passed to ssh as -o OPT (repeatable, at most 8)",
	  OPT_SHORT | OPT_REPEAT },
	{ "timeout", O_TIMEOUT, "S", "wait at most S seconds for the host keys (default 300)", 0 },
	{ NULL, 0, NULL, NULL, 0 },
};

const struct cmd_doc doc_lease_ssh = {
	.name = "lease ssh",
	.synopsis = "ID [-i IDENTITY] [-o SSH_OPTION ...] [--timeout S]\n"
		    " [--key FILE] [--node URL] [--json] [-- COMMAND...]",
	.summary = "log in to your VM with ssh (its host key checked)",
	.description =
		"Logs in to your VM with the system's ssh, at the host and port the node\n"
		"forwards to the guest's port 22, as the image's login user, with the key\n"
		"you gave at lease create (--ssh-key; ssh finds its private half as usual, or\n"
		"give -i). The guest's host keys come from cloud-init's output on the VM's\n"
		"console (a signed private read); each must match a fingerprint the guest\n"
		"printed, then they are written to a known_hosts file of the lease's own\n"
		"(beside your tally key, in ssh/) and ssh is told to accept no other.\n"
		"Waits for cloud-init to print them. With COMMAND, runs it and exits with\n"
		"ssh's status.",
	.opts = ssh_opts_doc,
	.epilog = "With --json, prints host, port, user, known_hosts and the ssh command\n"
		  "instead of running it.",
};

int cmd_lease_ssh(int argc, char **argv)
{
	struct optable ot;
	const char *identity = NULL, *lease_arg, *ssh_opts[8];
	size_t n_opts = 0;
	uint64_t timeout_s = DEFAULT_WAIT_S;
	struct common co;
	struct client cl;
	struct tally_key k;
	char id[65], kh[PATH_MAX], port[16], dest[512], khopt[PATH_MAX + 32];
	char *args[ARGS_MAX];
	json_t *j = NULL, *ssh;
	int c, rc, n = 0;

	cmd_optable(&ot, &doc_lease_ssh, "+:");
	common_init(&co);
	/* Options may come before and after ID; "--" or the first other word
	 * starts the command. */
	for (int pass = 0; pass < 2; pass++) {
		while ((c = getopt_long(argc, argv, ot.shortopts, ot.longopts, NULL)) != -1) {
			if (common_opt(&co, c, optarg))
				continue;
			if (c == 'i') {
				identity = optarg;
			} else if (c == 'o') {
				if (n_opts == sizeof(ssh_opts) / sizeof(ssh_opts[0]))
					return usage_error("lease ssh", "at most 8 -o options");
				ssh_opts[n_opts++] = optarg;
			} else if (c == O_TIMEOUT) {
				if (parse_u64(optarg, &timeout_s, "--timeout"))
					return EXIT_USAGE;
			} else {
				return bad_option("lease ssh", c, argv);
			}
		}
		if (co.help)
			return cmd_help(&doc_lease_ssh);
		if (pass == 0) {
			if (optind >= argc)
				return usage_error("lease ssh", "give one lease ID");
			if (strcmp(argv[optind - 1], "--") == 0)
				return usage_error("lease ssh", "give the lease ID before '--'");
			lease_arg = argv[optind++];
		}
	}
	if (argc - optind > ARGS_MAX - 32)
		return usage_error("lease ssh", "the command has too many words");
	if (open_key_and_client(&k, co.key, &cl, co.node))
		return EXIT_USAGE;
	rc = resolve_lease_id(&cl, lease_arg, id);
	if (!rc)
		rc = wait_ssh(&cl, &k, id, timeout_s, &j);
	key_free(&k);
	client_free(&cl);
	if (rc)
		return rc;
	ssh = json_object_get(j, "ssh");
	rc = known_hosts_path(co.key, id, kh);
	if (!rc)
		rc = write_known_hosts(kh, ssh);
	if (rc) {
		json_decref(j);
		return rc;
	}
	snprintf(port, sizeof(port), "%" PRIu64, jget_u64(ssh, "port"));
	snprintf(dest, sizeof(dest), "%s@%s", jget_str(ssh, "user"), jget_str(ssh, "host"));
	snprintf(khopt, sizeof(khopt), "UserKnownHostsFile=%s", kh);
	args[n++] = "ssh";
	args[n++] = "-p";
	args[n++] = port;
	args[n++] = "-o";
	args[n++] = khopt;
	args[n++] = "-o";
	args[n++] = "StrictHostKeyChecking=yes";
	args[n++] = "-o";
	args[n++] = "GlobalKnownHostsFile=/dev/null";
	if (identity) {
		args[n++] = "-i";
		args[n++] = (char *)identity;
		args[n++] = "-o";
		args[n++] = "IdentitiesOnly=yes";
	}
	for (size_t i = 0; i < n_opts; i++) {
		args[n++] = "-o";
		args[n++] = (char *)ssh_opts[i];
	}
	args[n++] = dest;
	for (int i = optind; i < argc; i++)
		args[n++] = argv[i];
	args[n] = NULL;
	if (co.json) {
		json_t *cmd = json_array();

		for (int i = 0; i < n; i++)
			json_array_append_new(cmd, json_string(args[i]));
		rc = print_json(json_pack("{s:s, s:I, s:s, s:s, s:s, s:o}", "host",
					  jget_str(ssh, "host"), "port",
					  (json_int_t)jget_u64(ssh, "port"), "user",
					  jget_str(ssh, "user"), "hostname", jget_str(j, "hostname"),
					  "known_hosts", kh, "command", cmd));
		json_decref(j);
		return rc;
	}
	fflush(stdout);
	execvp("ssh", args);
	err("cannot run ssh: %s (install openssh-client)", strerror(errno));
	json_decref(j);
	return EXIT_USAGE;
}
