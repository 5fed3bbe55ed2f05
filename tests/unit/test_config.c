/* tallyd's configuration file: defaults, every section, and a clear error
 * naming the line and key for each kind of bad input. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/config.h"
#include "lib/errors.h"
#include "tests/support/cbpaths.h"
#include "tests/support/ledgertest.h"

/* The case's directory, made and removed in the runner's process: a test
 * whose assertion fails ends before its own clean-up, and leaves nothing. */
static char base[40];

static void case_begin(void)
{
	lt_case_dir(base, sizeof(base), "config");
}

static void case_end(void)
{
	cb_rm_tree(base);
}

static char path[96];

static void write_conf(const char *text)
{
	snprintf(path, sizeof(path), "%s/conf-XXXXXX", base);
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

/* Loads text; returns the error and leaves the sentence in why. */
static int load(const char *text, struct config *c, char *why)
{
	write_conf(text);
	int rc = config_load(c, path, why);
	unlink(path);
	return rc;
}

START_TEST(a_full_file_is_read)
{
	struct config c;
	char why[WHY_MAX] = "";

	ck_assert_int_eq(load("[node]\ndata_dir = /srv/t\nlisten = [::1]:9000\n"
			      "[metering]\ninterval_s = 5\n"
			      "[libvirt]\ndomain_type = qemu\nnetwork = none\novercommit_cpu = 2.5\n"
			      "[prices]\nvcpu_second = 20\n"
			      "[image.tiny]\nkernel = /k\ninitrd = /i\nmin_memory_mib = 64\n"
			      "[gpu.0000:65:00.0]\nclass = a100\n"
			      "[api]\ntls_cert = /c.pem\ntls_key = /k.pem\nmax_connections = 64\n"
			      "max_connections_per_ip = 8\ntimeout_s = 5\nrequests_per_s = 0\n",
			      &c, why), 0);
	ck_assert_str_eq(c.data_dir, "/srv/t");
	ck_assert_str_eq(c.state_dir, "/srv/t/vms");
	ck_assert_str_eq(c.listen, "[::1]:9000");
	ck_assert_uint_eq(c.interval_s, 5);
	ck_assert_str_eq(c.domain_type, "qemu");
	ck_assert_uint_eq(c.overcommit_cpu_milli, 2500);
	ck_assert_uint_eq(c.overcommit_mem_milli, 1000);
	ck_assert_uint_eq(c.prices.vcpu_second, 20);
	ck_assert_uint_eq(c.nimages, 1);
	ck_assert_str_eq(c.images[0].name, "tiny");
	ck_assert_uint_eq(c.ngpus, 1);
	ck_assert_str_eq(c.gpus[0].class_name, "a100");
	ck_assert_str_eq(c.api.tls_cert, "/c.pem");
	ck_assert_str_eq(c.api.tls_key, "/k.pem");
	ck_assert_uint_eq(c.api.max_connections, 64);
	ck_assert_uint_eq(c.api.max_connections_per_ip, 8);
	ck_assert_uint_eq(c.api.timeout_s, 5);
	ck_assert_uint_eq(c.api.requests_per_s, 0);
	ck_assert_uint_eq(c.api.request_burst, 200);
}
END_TEST

START_TEST(each_bad_input_names_its_line)
{
	static const struct {
		const char *text;
		const char *says;
	} bad[] = {
		{ "[node]\nlog_level = info\nbogus = 1\n", ":3: unknown key 'bogus' in [node]" },
		/* An unknown section is named at its header, entries or not. */
		{ "[nodes]\nkey = /k\n", ":1: unknown section [nodes]" },
		{ "[node]\nlog_level = info\n[provder]\n# announce = no\n", ":3: unknown section [provder]" },
		{ "[node]\nlog_level = info\n  [ bogus ]  \n", ":3: unknown section [bogus]" },
		/* Found by the config fuzz target: names no contract can use. */
		{ "[image.tin\xff]\nkernel = /k\n", ":2: [image.tin\xff]: an image section's name" },
		{ "[image.Tiny]\nkernel = /k\n", ":2: [image.Tiny]: an image section's name" },
		{ "[metering]\ninterval_s = 0\n", ":2: bad value '0' for 'interval_s'" },
		{ "[metering]\ninterval_s = -5\n", ":2: bad value '-5'" },
		{ "[prices]\nvcpu_second = 1e3\n", ":2: bad value '1e3'" },
		{ "[libvirt]\ndomain_type = xen\n", ":2: bad value 'xen'" },
		{ "[libvirt]\novercommit_cpu = 0\n", ":2: bad value '0'" },
		{ "[libvirt]\novercommit_cpu = 2.x\n", ":2: bad value '2.x'" },
		{ "[gpu.0000:65:00]\nclass = a\n", ":2: [gpu.0000:65:00]: a GPU section" },
		{ "[image.t]\ncmdline = x\n", "image 't' needs a path, a kernel or both" },
		{ "[libvirt]\nforward_ports = 22100\n", ":2: bad value '22100'" },
		{ "[libvirt]\nforward_ports = 22100-22000\n", ":2: bad value '22100-22000'" },
		{ "[libvirt]\nforward_ports = 0-10\n", ":2: bad value '0-10'" },
		{ "[libvirt]\nforward_ports = 22000-22100\n", "forward_ports needs a forward_address" },
		{ "[libvirt]\nguest_outbound = maybe\n", ":2: bad value 'maybe'" },
		{ "[node\n", ":1: syntax error" },
		{ "[node]\nlisten = 127.0.0.1:99999\n", ":2: bad value '127.0.0.1:99999'" },
		{ "[node]\nlisten = 127.0.0.1\n", ":2: bad value '127.0.0.1'" },
		/* A broken header is named, not the key below it (then in [node]). */
		{ "[node]\nlog_level = info\n[metering\ninterval_s = 2\n", ":3: syntax error" },
		{ "[node]\nno equals here\nbogus = 1\n", ":2: syntax error" },
		{ "[node]\nbogus = 1\n[metering\n", ":2: unknown key 'bogus' in [node]" },
		{ "[api]\ntls_cert = /c.pem\n", "needs both tls_cert and tls_key" },
		{ "[api]\nmax_connections = 0\n", ":2: bad value '0' for 'max_connections'" },
		{ "[api]\nmax_connections = 4\nmax_connections_per_ip = 5\n",
		  "max_connections_per_ip is above max_connections" },
		{ "[api]\ntimeout_s = 0\n", ":2: bad value '0' for 'timeout_s'" },
		{ "[node]\nlog = journal\n", ":2: bad value 'journal' for 'log'" },
		{ "[image.t]\nclass = a100\n", ":2: unknown key 'class' in [image.t]" },
		{ "[image]\nkernel = /k\n", ":1: unknown section [image]" },
		{ "[node.x]\nkey = /k\n", ":1: unknown section [node.x]" },
	};
	struct config c;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char why[WHY_MAX] = "";
		ck_assert_int_ne(load(bad[i].text, &c, why), 0);
		ck_assert_msg(strstr(why, bad[i].says), "case %zu: '%s' lacks '%s'", i, why,
			      bad[i].says);
	}
}
END_TEST

START_TEST(forwarding_is_read)
{
	struct config c;
	char why[WHY_MAX] = "";

	ck_assert_msg(load("[libvirt]\nnetwork = user\nforward_address = 127.0.0.1\n"
			   "forward_ports = 22000-22099\nguest_outbound = no\n"
			   "[image.deb]\npath = /d.qcow2\nkernel = /k\nssh_user = debian\n",
			   &c, why) == 0, "%s", why);
	ck_assert_str_eq(c.forward_address, "127.0.0.1");
	ck_assert_uint_eq(c.forward_port_min, 22000);
	ck_assert_uint_eq(c.forward_port_max, 22099);
	ck_assert_str_eq(c.public_host, "127.0.0.1");   /* defaults to the address */
	ck_assert_int_eq(c.guest_outbound, 0);
	ck_assert_str_eq(c.images[0].ssh_user, "debian");
	ck_assert_str_eq(c.images[0].path, "/d.qcow2");
	ck_assert_str_eq(c.images[0].kernel, "/k");
	config_defaults(&c);
	ck_assert_int_eq(c.guest_outbound, 1);
	ck_assert_uint_eq(c.forward_port_min, 0);
}
END_TEST

START_TEST(a_missing_file_is_an_io_error)
{
	struct config c;
	char why[WHY_MAX] = "";

	ck_assert_int_eq(config_load(&c, "/nonexistent/tallyd.conf", why), TALLY_E_IO);
	ck_assert_ptr_nonnull(strstr(why, "cannot open"));
}
END_TEST

/* Every key of the table is read back from a file that sets it to its
 * default, or to its example when it has none (the values tallyd.conf(5)
 * and the packaged tallyd.conf show), so the table, its documentation and
 * the parser cannot disagree; each section has a key. */
START_TEST(every_key_of_the_table_is_read)
{
	char text[512], why[WHY_MAX];
	struct config c;

	for (const struct config_section *sec = config_sections; sec->name; sec++) {
		size_t keys = 0;
		for (const struct config_key *key = config_keys; key->section; key++)
			keys += !strcmp(key->section, sec->name);
		ck_assert_msg(keys > 0, "section [%s] has no key", sec->name);
	}
	for (const struct config_key *key = config_keys; key->section; key++) {
		const char *v = key->def ? key->def : key->example;
		const char *section = !strcmp(key->section, "image.NAME") ? "image.t" :
				      !strcmp(key->section, "gpu.ADDRESS") ? "gpu.0000:65:00.0" :
				      key->section;
		/* with the keys each needs beside it */
		const char *also = !strncmp(section, "image.", 6) ? "kernel = /k\n" :
				   !strcmp(key->key, "forward_ports") ? "forward_address = 127.0.0.1\n" :
				   !strcmp(key->key, "tls_cert") ? "tls_key = /k.pem\n" :
				   !strcmp(key->key, "tls_key") ? "tls_cert = /c.pem\n" : "";

		ck_assert_msg(v && key->doc && key->doc[0], "[%s] %s has no default, example or "
			      "meaning", key->section, key->key);
		ck_assert_msg(!key->def || !key->example, "[%s] %s has both a default and an "
			      "example", key->section, key->key);
		snprintf(text, sizeof(text), "[%s]\n%s = %s\n%s", section, key->key, v, also);
		why[0] = '\0';
		ck_assert_msg(load(text, &c, why) == 0, "[%s] %s = %s: %s", section, key->key, v,
			      why);
	}
}
END_TEST

/* PATH.d/ *.conf come after PATH, in name order: a later value wins, lists
 * add up, and an error names the drop-in's own file and line. */
START_TEST(drop_ins_follow_the_file)
{
	char dir[80], conf[128], dropins[160], f[200];
	char why[WHY_MAX] = "";
	struct config c;
	FILE *fp;

	lt_test_dir(dir, sizeof(dir), base);
	snprintf(conf, sizeof(conf), "%s/tallyd.conf", dir);
	snprintf(dropins, sizeof(dropins), "%s.d", conf);
	fp = fopen(conf, "w");
	fputs("# all defaults\n[node]\nlisten = 127.0.0.1:1\n[peers]\npeer = 127.0.0.1:2\n", fp);
	fclose(fp);
	ck_assert_int_eq(mkdir(dropins, 0755), 0);
	snprintf(f, sizeof(f), "%s/50-node.conf", dropins);
	fp = fopen(f, "w");
	fputs("[node]\nlisten = 127.0.0.1:3\n[peers]\npeer = 127.0.0.1:4\n", fp);
	fclose(fp);
	snprintf(f, sizeof(f), "%s/60-late.conf", dropins);
	fp = fopen(f, "w");
	fputs("[node]\nlisten = 127.0.0.1:5\n", fp);
	fclose(fp);
	snprintf(f, sizeof(f), "%s/README", dropins);   /* not *.conf: not read */
	fp = fopen(f, "w");
	fputs("not ini\n", fp);
	fclose(fp);
	ck_assert_msg(config_load(&c, conf, why) == 0, "%s", why);
	ck_assert_str_eq(c.listen, "127.0.0.1:5");
	ck_assert_uint_eq(c.peers.npeers, 2);
	ck_assert_uint_eq(c.ndropins, 2);

	snprintf(f, sizeof(f), "%s/55-bad.conf", dropins);
	fp = fopen(f, "w");
	fputs("[node]\n\nlog = loud\n", fp);
	fclose(fp);
	ck_assert_int_eq(config_load(&c, conf, why), TALLY_E_INVALID);
	ck_assert_msg(strstr(why, "55-bad.conf:3: bad value 'loud' for 'log'"), "%s", why);

	unlink(f);
	snprintf(f, sizeof(f), "%s/50-node.conf", dropins);
	unlink(f);
	snprintf(f, sizeof(f), "%s/60-late.conf", dropins);
	unlink(f);
	snprintf(f, sizeof(f), "%s/README", dropins);
	unlink(f);
	rmdir(dropins);
	unlink(conf);
	rmdir(dir);
}
END_TEST

Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("file");

	tcase_add_unchecked_fixture(tc, case_begin, case_end);

	tcase_add_test(tc, a_full_file_is_read);
	tcase_add_test(tc, each_bad_input_names_its_line);
	tcase_add_test(tc, forwarding_is_read);
	tcase_add_test(tc, a_missing_file_is_an_io_error);
	tcase_add_test(tc, every_key_of_the_table_is_read);
	tcase_add_test(tc, drop_ins_follow_the_file);
	suite_add_tcase(s, tc);
	return s;
}
