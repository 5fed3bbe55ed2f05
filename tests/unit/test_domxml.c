/* The domain XML writer and its metadata reader (daemon/provision/domxml.c),
 * and the host-key reader of the console log (hostkeys.c): pure string
 * work, no libvirt. tests/provision has libvirt accept the same XML. */
#include <check.h>
#include <libxml/parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/provision/domxml.h"
#include "daemon/provision/provision.h"
#include "lib/errors.h"
#include "tests/support/cbpaths.h"
#include "tests/support/ledgertest.h"

#define KEY_ED "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC04IPLC+X+sR4FdA34U4BvbU/Qes+rxENYW7bE+QRkm"

/* The case's directory, made and removed in the runner's process: a test
 * whose assertion fails ends before its own clean-up, and leaves nothing. */
static char base[40];

static void case_begin(void)
{
	lt_case_dir(base, sizeof(base), "domxml");
}

static void case_end(void)
{
	cb_rm_tree(base);
}

static void sample_meta(struct domxml_lease_meta *m)
{
	memset(m, 0, sizeof(*m));
	for (int i = 0; i < LEASE_ID_LEN; i++)
		m->lease_id[i] = (uint8_t)(i * 7 + 1);
	strcpy(m->image, "debian-12");
	m->disk_gib = 4;
	m->n_gpus = 2;
	strcpy(m->gpus[0], "0000:65:00.0");
	strcpy(m->gpus[1], "0000:b3:1f.7");
	m->ssh_port = 22001;
	strcpy(m->hostname, "web-1");
}

/* The metadata element of a built domain, as libvirt hands it back. */
static char *metadata_of(const char *xml)
{
	const char *b = strstr(xml, "<tally:lease"), *e = b ? strstr(b, "/>") : NULL;

	ck_assert_ptr_nonnull(e);
	return strndup(b, (size_t)(e + 2 - b));
}

static char *build(struct domxml_params *p)
{
	char *xml = NULL;

	ck_assert_int_eq(domxml_build(p, &xml), 0);
	return xml;
}

static struct prov_image image = {
	.name = "debian-12", .disk_path = "/srv/img&co/<base>.qcow2", .disk_format = "qcow2",
	.kernel = "/srv/k\"1\"", .initrd = "/srv/i'1'", .cmdline = "root=/dev/vda console=ttyS0",
	.cloud_init = true, .ssh_user = "debian",
};

static struct domxml_params params(void)
{
	struct domxml_params p = {
		.name = "tally-0123456789ab", .type = PROV_DOMAIN_QEMU, .vcpus = 2,
		.memory_mib = 512, .image = &image, .disk_path = "/var/lib/tally/a&b.qcow2",
		.seed_path = "/var/lib/tally/x.seed.iso", .console_log = "/var/lib/tally/x.log",
		.net = PROV_NET_USER, .forward_address = "127.0.0.1", .guest_outbound = false,
	};

	sample_meta(&p.meta);
	return p;
}

/* Whatever the writer puts in the metadata, the reader gives back. */
START_TEST(metadata_round_trips)
{
	struct domxml_params p = params();
	struct domxml_lease_meta back;
	char *xml, *meta;

	for (int variant = 0; variant < 3; variant++) {
		if (variant == 0)               /* the node that made it */
			memset(p.meta.owner, 'a', PROV_OWNER_LEN);
		if (variant == 1) {             /* no GPU, no port, no hostname, no owner */
			p.meta.owner[0] = '\0';
			p.meta.n_gpus = 0;
			p.meta.ssh_port = 0;
			p.meta.hostname[0] = '\0';
			p.net = PROV_NET_NONE;
		} else if (variant == 2) {      /* every GPU slot, the largest values */
			p.meta.n_gpus = PROV_GPUS_MAX;
			for (int i = 0; i < PROV_GPUS_MAX; i++)
				snprintf(p.meta.gpus[i], sizeof(p.meta.gpus[i]), "0000:%02x:00.0", i);
			p.meta.disk_gib = UINT32_MAX;
			p.meta.ssh_port = UINT16_MAX;
			memset(p.meta.image, 'z', IMAGE_NAME_MAX);
		}
		xml = build(&p);
		meta = metadata_of(xml);
		ck_assert_msg(domxml_parse_meta(meta, &back) == 0, "%s", meta);
		ck_assert_mem_eq(back.lease_id, p.meta.lease_id, LEASE_ID_LEN);
		ck_assert_str_eq(back.image, p.meta.image);
		ck_assert_uint_eq(back.disk_gib, p.meta.disk_gib);
		ck_assert_uint_eq(back.n_gpus, p.meta.n_gpus);
		for (size_t i = 0; i < back.n_gpus; i++)
			ck_assert_str_eq(back.gpus[i], p.meta.gpus[i]);
		ck_assert_uint_eq(back.ssh_port, p.meta.ssh_port);
		ck_assert_str_eq(back.hostname, p.meta.hostname);
		ck_assert_str_eq(back.owner, p.meta.owner);
		ck_assert((strstr(meta, "owner=") != NULL) == (p.meta.owner[0] != '\0'));
		free(meta);
		free(xml);
	}
}
END_TEST

/* Text from the catalogue and paths is escaped by libxml2, and a reparse
 * gives it back unchanged. */
START_TEST(text_is_escaped)
{
	struct domxml_params p = params();
	char *xml = build(&p);
	xmlDocPtr doc;

	ck_assert_ptr_nonnull(strstr(xml, "/var/lib/tally/a&amp;b.qcow2"));
	ck_assert_ptr_nonnull(strstr(xml, "/srv/k\"1\""));   /* text needs no &quot; */
	ck_assert_ptr_null(strstr(xml, "a&b"));
	doc = xmlReadMemory(xml, (int)strlen(xml), NULL, NULL, XML_PARSE_NONET);
	ck_assert_ptr_nonnull(doc);
	xmlFreeDoc(doc);
	free(xml);
}
END_TEST

/* User-mode networking: QEMU's netdev with the forward to port 22 on the
 * node's address, and restrict on when guests may not connect out. */
START_TEST(user_network_forward)
{
	struct domxml_params p = params();
	char *xml = build(&p);

	ck_assert_ptr_nonnull(strstr(xml, "xmlns:qemu=\"" DOMXML_QEMU_NS "\""));
	ck_assert_ptr_nonnull(strstr(xml, "<qemu:arg value=\"-netdev\"/>"));
	ck_assert_ptr_nonnull(strstr(xml, "{&quot;type&quot;:&quot;user&quot;,&quot;id&quot;:"
				     "&quot;tallynet0&quot;,&quot;restrict&quot;:true,&quot;hostfwd"
				     "&quot;:[{&quot;str&quot;:&quot;tcp:127.0.0.1:22001-:22&quot;}]}"));
	ck_assert_ptr_nonnull(strstr(xml, "&quot;driver&quot;:&quot;virtio-net-pci&quot;"));
	ck_assert_ptr_null(strstr(xml, "<interface"));
	ck_assert_ptr_nonnull(strstr(xml, "<kernel>/srv/k\"1\"</kernel>"));
	ck_assert_ptr_nonnull(strstr(xml, "<source file=\"/var/lib/tally/a&amp;b.qcow2\"/>\n"
				     "      <target dev=\"vda\" bus=\"virtio\"/>"));
	ck_assert_ptr_nonnull(strstr(xml, "<source file=\"/var/lib/tally/x.seed.iso\"/>\n"
				     "      <target dev=\"vdb\" bus=\"virtio\"/>\n      <readonly/>"));
	ck_assert_ptr_nonnull(strstr(xml, "name=\"org.qemu.guest_agent.0\""));
	free(xml);

	p.guest_outbound = true;
	p.meta.ssh_port = 0;
	xml = build(&p);
	ck_assert_ptr_nonnull(strstr(xml, "&quot;restrict&quot;:false}"));
	ck_assert_ptr_null(strstr(xml, "hostfwd"));
	free(xml);

	/* A port with nowhere to listen is a caller's mistake. */
	p.meta.ssh_port = 22001;
	p.forward_address = NULL;
	xml = NULL;
	ck_assert_int_eq(domxml_build(&p, &xml), TALLY_E_INVALID);
	ck_assert_ptr_null(xml);

	/* NAT: libvirt's interface; none: no NIC at all. */
	p.net = PROV_NET_NAT;
	xml = build(&p);
	ck_assert_ptr_nonnull(strstr(xml, "<interface type=\"network\">"));
	ck_assert_ptr_null(strstr(xml, "qemu:commandline"));
	free(xml);
	p.net = PROV_NET_NONE;
	xml = build(&p);
	ck_assert_ptr_null(strstr(xml, "<interface"));
	ck_assert_ptr_null(strstr(xml, "qemu:commandline"));
	free(xml);
}
END_TEST

START_TEST(bad_gpu_address_refused)
{
	struct domxml_params p = params();
	char *xml = NULL;

	strcpy(p.meta.gpus[1], "0000:b3:20.0");   /* slot above 0x1f */
	ck_assert_int_eq(domxml_build(&p, &xml), TALLY_E_INVALID);
	ck_assert_ptr_null(xml);
}
END_TEST

#define NS "xmlns:tally=\"" PROV_XMLNS "\""
#define ID "0000000000000000000000000000000000000000000000000000000000000001"

/* Anything but exactly the element the writer makes is refused. */
START_TEST(metadata_reader_is_strict)
{
	static const char *const bad[] = {
		"",
		"not xml",
		"<tally:lease id=\"" ID "\" image=\"x\" disk-gib=\"1\" gpus=\"\"/>",  /* undeclared */
		"<tally:lease xmlns:tally=\"https://other\" id=\"" ID "\" image=\"x\" disk-gib=\"1\" "
		"gpus=\"\"/>",
		"<tally:other " NS " id=\"" ID "\" image=\"x\" disk-gib=\"1\" gpus=\"\"/>",
		"<tally:lease " NS " id=\"abcd\" image=\"x\" disk-gib=\"1\" gpus=\"\"/>",
		"<tally:lease " NS " id=\"" ID "\" image=\"X\" disk-gib=\"1\" gpus=\"\"/>",
		"<tally:lease " NS " id=\"" ID "\" image=\"x\" disk-gib=\"01\" gpus=\"\"/>",
		"<tally:lease " NS " id=\"" ID "\" image=\"x\" disk-gib=\"-1\" gpus=\"\"/>",
		"<tally:lease " NS " id=\"" ID "\" image=\"x\" disk-gib=\"4294967296\" gpus=\"\"/>",
		"<tally:lease " NS " id=\"" ID "\" image=\"x\" disk-gib=\"1\" gpus=\"0000:01:00.0 \"/>",
		"<tally:lease " NS " id=\"" ID "\" image=\"x\" disk-gib=\"1\"/>",
		"<tally:lease " NS " id=\"" ID "\" image=\"x\" disk-gib=\"1\" gpus=\"\" "
		"ssh-port=\"65536\"/>",
		"<tally:lease " NS " id=\"" ID "\" image=\"x\" disk-gib=\"1\" gpus=\"\" "
		"hostname=\"a&lt;b\"/>",
		"<tally:lease " NS " id=\"" ID "\" image=\"x\" disk-gib=\"1\" gpus=\"\" extra=\"1\"/>",
		"<tally:lease " NS " id=\"" ID "\" image=\"x\" disk-gib=\"1\" gpus=\"\" owner=\"\"/>",
		"<tally:lease " NS " id=\"" ID "\" image=\"x\" disk-gib=\"1\" gpus=\"\" "
		"owner=\"" ID "0\"/>",
		"<tally:lease " NS " id=\"" ID "\" image=\"x\" disk-gib=\"1\" gpus=\"\" "
		"owner=\"ABCDEF0000000000000000000000000000000000000000000000000000000001\"/>",
		"<tally:lease " NS " id=\"" ID "\" image=\"x\" disk-gib=\"1\" gpus=\"\">x</tally:lease>",
		"<tally:lease " NS " id=\"" ID "\" image=\"x\" disk-gib=\"1\" gpus=\"\"/><x/>",
		"<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>"
		"<tally:lease " NS " id=\"" ID "\" image=\"&e;\" disk-gib=\"1\" gpus=\"\"/>",
	};
	struct domxml_lease_meta m;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(domxml_parse_meta(bad[i], &m) == TALLY_E_ENCODING, "accepted: %s",
			      bad[i]);
	/* As libvirt hands it back: without the namespace. */
	ck_assert_int_eq(domxml_parse_meta("<lease id=\"" ID "\" image=\"x\" disk-gib=\"1\" "
					   "gpus=\"\" ssh-port=\"22\" hostname=\"\"/>", &m), 0);
	ck_assert_uint_eq(m.ssh_port, 22);
	/* A domain made before ssh-port and hostname existed still reads. */
	ck_assert_int_eq(domxml_parse_meta("<tally:lease " NS " id=\"" ID "\" image=\"x\" "
					   "disk-gib=\"1\" gpus=\"\"/>", &m), 0);
	ck_assert_uint_eq(m.ssh_port, 0);
	ck_assert_str_eq(m.hostname, "");
	ck_assert_str_eq(m.owner, "");
	ck_assert_uint_eq(m.lease_id[31], 1);
	ck_assert_int_eq(domxml_parse_meta("<lease id=\"" ID "\" image=\"x\" disk-gib=\"1\" "
					   "gpus=\"\" owner=\"" ID "\"/>", &m), 0);
	ck_assert_str_eq(m.owner, ID);
}
END_TEST

/* A console log holding text, in the case's directory: its path, to free. */
static char *write_log(const char *text)
{
	char tmpl[96], *path;
	int fd;

	snprintf(tmpl, sizeof(tmpl), "%s/console-XXXXXX", base);
	path = strdup(tmpl);
	ck_assert_ptr_nonnull(path);
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

/* cloud-init's blocks, as a console shows them (CRLF, other output around,
 * a first boot's and a later one's), and the hostile lines a guest could
 * print into them. */
START_TEST(host_keys_from_console)
{
	static const char console[] =
		"[  OK  ] Started ssh.service\r\n"
		"-----BEGIN SSH HOST KEY FINGERPRINTS-----\r\n"
		"256 SHA256:old root@old (ED25519)\r\n"
		"-----END SSH HOST KEY FINGERPRINTS-----\r\n"
		"-----BEGIN SSH HOST KEY KEYS-----\r\n"
		"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBERERERERERERERERERERERERERERERERERERERERER old\r\n"
		"-----END SSH HOST KEY KEYS-----\r\n"
		"reboot\r\n"
		"<14>Nov 30 04:33:45 cloud-init: -----BEGIN SSH HOST KEY FINGERPRINTS-----\r\n"
		"<14>Nov 30 04:33:45 cloud-init: 256 SHA256:VYqG60JR root@web-1 (ECDSA)\r\n"
		"[   66.2] cloud-init[341]: 256 SHA256:q1WwCk4 root@web-1 (ED25519)\r\n"
		"<14>Nov 30 04:33:45 cloud-init: 256 SHA256:\"<evil>\" (ED25519)\r\n"
		"<14>Nov 30 04:33:45 cloud-init: -----END SSH HOST KEY FINGERPRINTS-----\r\n"
		"-----BEGIN SSH HOST KEY KEYS-----\r\n"
		KEY_ED " root@web-1\r\n"
		"command=\"x\" " KEY_ED "\r\n"
		"ssh-ed25519 AAAA\"\r\n"
		"-----END SSH HOST KEY KEYS-----\r\n"
		"web-1 login: ";
	struct prov_host_keys *hk = calloc(1, sizeof(*hk));
	char *path = write_log(console);

	ck_assert_int_eq(prov_host_keys_read(path, hk), 0);
	ck_assert_uint_eq(hk->n_keys, 1);
	ck_assert_str_eq(hk->keys[0], KEY_ED " root@web-1");
	ck_assert_uint_eq(hk->n_fingerprints, 2);
	ck_assert_str_eq(hk->fingerprints[0], "256 SHA256:VYqG60JR root@web-1 (ECDSA)");
	ck_assert_str_eq(hk->fingerprints[1], "256 SHA256:q1WwCk4 root@web-1 (ED25519)");
	unlink(path);
	free(path);

	/* Before cloud-init got there (a begin without its end): not yet. */
	path = write_log("-----BEGIN SSH HOST KEY KEYS-----\r\n" KEY_ED "\r\n");
	ck_assert_int_eq(prov_host_keys_read(path, hk), TALLY_E_NOTFOUND);
	ck_assert_uint_eq(hk->n_keys, 0);
	unlink(path);
	free(path);
	ck_assert_int_eq(prov_host_keys_read("/nonexistent/console.log", hk), TALLY_E_NOTFOUND);
	free(hk);
}
END_TEST

Suite *domxml_suite(void)
{
	Suite *s = suite_create("domxml");
	TCase *tc = tcase_create("xml");

	tcase_add_unchecked_fixture(tc, case_begin, case_end);
	tcase_add_test(tc, metadata_round_trips);
	tcase_add_test(tc, text_is_escaped);
	tcase_add_test(tc, user_network_forward);
	tcase_add_test(tc, bad_gpu_address_refused);
	tcase_add_test(tc, metadata_reader_is_strict);
	tcase_add_test(tc, host_keys_from_console);
	suite_add_tcase(s, tc);
	return s;
}
