/* One rule for the host's capacity: the vCPUs and memory a node announces
 * (announce_offer) are the totals its admission (prov_admit_check) accepts,
 * both from prov_capacity. Runs on libvirt's in-process test driver
 * (test:///default: no daemon), whose host figures are not this machine's,
 * so a figure read anywhere else would not match. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/announce.h"
#include "daemon/config.h"
#include "daemon/provision/provision.h"
#include "lib/errors.h"
#include "tests/support/cbpaths.h"
#include "tests/support/ledgertest.h"

/* The case's directory, made and removed in the runner's process: a test
 * whose assertion fails ends before its teardown, and leaves nothing. */
static char base[40];

static void case_begin(void)
{
	lt_case_dir(base, sizeof(base), "capacity");
}

static void case_end(void)
{
	cb_rm_tree(base);
}

struct fixture {
	char dir[64], conf[96], kernel[96], state[96];
	struct config cfg;
	struct prov *p;
};

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
}

/* A node with overcommit 2 (CPUs) and 1.5 (memory), and `provider` as its
 * [provider] section, its provisioner opened as the keeper opens it. */
static void setup(struct fixture *f, const char *provider)
{
	char text[1024], why[WHY_MAX] = "";

	lt_test_dir(f->dir, sizeof(f->dir), base);
	snprintf(f->conf, sizeof(f->conf), "%s/tallyd.conf", f->dir);
	snprintf(f->kernel, sizeof(f->kernel), "%s/vmlinuz", f->dir);
	snprintf(f->state, sizeof(f->state), "%s/vms", f->dir);
	write_file(f->kernel, "not a kernel; read by nobody\n");
	snprintf(text, sizeof(text),
		 "[node]\ndata_dir = %s\n[libvirt]\nuri = test:///default\nnetwork = none\n"
		 "overcommit_cpu = 2\novercommit_mem = 1.5\n"
		 "[provider]\nannounce = yes\n%s\n[image.tiny]\nkernel = %s\n",
		 f->dir, provider, f->kernel);
	write_file(f->conf, text);
	ck_assert_msg(config_load(&f->cfg, f->conf, why) == 0, "%s", why);

	struct prov_image img = { .min_memory_mib = 16 };
	snprintf(img.name, sizeof(img.name), "tiny");
	snprintf(img.kernel, sizeof(img.kernel), "%s", f->kernel);
	struct prov_config pc = {
		.uri = f->cfg.uri,
		.domain_type = PROV_DOMAIN_QEMU,
		.images = &img,
		.n_images = 1,
		.cpu_overcommit = f->cfg.overcommit_cpu_milli / 1000.0,
		.mem_overcommit = f->cfg.overcommit_mem_milli / 1000.0,
		.max_vcpus = f->cfg.capacity_vcpus,
		.max_memory_mib = f->cfg.capacity_memory_mib,
		.state_dir = f->state,
		.net = PROV_NET_NONE,
	};
	ck_assert_msg(prov_open(&f->p, &pc, why) == 0, "%s", why);
}

static void teardown(struct fixture *f)
{
	prov_close(f->p);
	cb_rm_tree(f->dir);
}

static int admit(struct fixture *f, uint32_t vcpus, uint32_t memory_mib, char *why)
{
	struct vm_spec vm = { .vcpus = vcpus, .memory_mib = memory_mib };

	snprintf(vm.image, sizeof(vm.image), "tiny");
	return prov_admit_check(f->p, &vm, why);
}

/* What the node announces is exactly what admission takes: the announced
 * vCPUs and MiB are admitted, one more of either is refused. */
static void announced_is_admitted(struct fixture *f, uint32_t want_vcpus, uint32_t want_mib)
{
	struct prov_capacity cap;
	struct provider_offer o;
	char why[WHY_MAX] = "";

	ck_assert_msg(prov_capacity(f->p, &cap, why) == 0, "%s", why);
	ck_assert_msg(announce_offer(&f->cfg, true, &cap, &o, why) == 0, "%s", why);
	ck_assert_uint_eq(o.vcpus, want_vcpus);
	ck_assert_uint_eq(o.memory_mib, want_mib);
	ck_assert_msg(admit(f, o.vcpus, o.memory_mib, why) == 0, "%s", why);
	ck_assert_int_eq(admit(f, o.vcpus + 1, 16, why), TALLY_E_CAPACITY);
	ck_assert_int_eq(admit(f, 1, o.memory_mib + 1, why), TALLY_E_CAPACITY);
	ck_assert_msg(strstr(why, "MiB of memory but the host can hold") != NULL, "%s", why);
}

START_TEST(announced_capacity_is_what_admission_takes)
{
	struct fixture f;
	struct prov_capacity cap;
	char why[WHY_MAX] = "";

	setup(&f, "");
	ck_assert_msg(prov_capacity(f.p, &cap, why) == 0, "%s", why);
	/* The host's figures x overcommit. */
	ck_assert_uint_gt(cap.host_cpus, 0);
	ck_assert_uint_gt(cap.host_memory_mib, 0);
	announced_is_admitted(&f, cap.host_cpus * 2, (uint32_t)(cap.host_memory_mib * 3 / 2));
	teardown(&f);
}
END_TEST

/* [provider] vcpus and memory_mib below the host's cap both: announced and
 * admitted alike. */
START_TEST(provider_caps_bind_admission_too)
{
	struct fixture f;

	setup(&f, "vcpus = 3\nmemory_mib = 1000");
	announced_is_admitted(&f, 3, 1000);
	teardown(&f);
}
END_TEST

/* A node that runs no VMs (--no-vms) checks no room for a lease: it
 * announces what [provider] says, or no limit. */
START_TEST(a_node_without_vms_announces_its_provider_section)
{
	struct fixture f;
	struct provider_offer o;
	char why[WHY_MAX] = "";

	setup(&f, "vcpus = 3\nmemory_mib = 1000");
	ck_assert_msg(announce_offer(&f.cfg, false, NULL, &o, why) == 0, "%s", why);
	ck_assert_uint_eq(o.vcpus, 3);
	ck_assert_uint_eq(o.memory_mib, 1000);
	teardown(&f);
	setup(&f, "");
	ck_assert_msg(announce_offer(&f.cfg, false, NULL, &o, why) == 0, "%s", why);
	ck_assert_uint_eq(o.vcpus, UINT32_MAX);
	ck_assert_uint_eq(o.memory_mib, UINT32_MAX);
	teardown(&f);
}
END_TEST

/* The SLA bounds a node announces are its [provider] keys, the defaults
 * when unset (the numbers its keeper admits leases by, one source). */
START_TEST(a_node_announces_its_sla_bounds)
{
	struct fixture f;
	struct provider_offer o;
	char why[WHY_MAX] = "";

	setup(&f, "");
	ck_assert_msg(announce_offer(&f.cfg, true, NULL, &o, why) == 0, "%s", why);
	ck_assert_uint_eq(o.sla_max_credit_ppm, 500000);
	ck_assert_uint_eq(o.sla_min_delay_ppm, 10000);
	teardown(&f);
	setup(&f, "sla_max_credit_ppm = 200000\nsla_min_delay_ppm = 30000");
	ck_assert_msg(announce_offer(&f.cfg, false, NULL, &o, why) == 0, "%s", why);
	ck_assert_uint_eq(o.sla_max_credit_ppm, 200000);
	ck_assert_uint_eq(o.sla_min_delay_ppm, 30000);
	ck_assert_int_eq(provider_offer_check(&o, why), 0);
	teardown(&f);
}
END_TEST

Suite *capacity_suite(void)
{
	Suite *s = suite_create("capacity");
	TCase *tc = tcase_create("core");

	tcase_add_unchecked_fixture(tc, case_begin, case_end);

	tcase_add_test(tc, announced_capacity_is_what_admission_takes);
	tcase_add_test(tc, provider_caps_bind_admission_too);
	tcase_add_test(tc, a_node_without_vms_announces_its_provider_section);
	tcase_add_test(tc, a_node_announces_its_sla_bounds);
	suite_add_tcase(s, tc);
	return s;
}
