/* The GPU meter's choice of source. This machine has no GPU and cannot load
 * tallymeter.ko (the module itself is tested in a guest, tests/kmod/), so
 * what runs here is the fallback: the daemon says once that the module is
 * missing and meters GPU time from the VM's lifecycle, marking the source. */
#include <check.h>
#include <string.h>

#include "daemon/meter/gpu.h"

static const uint8_t lease[LEASE_ID_LEN] = { 0xab };

START_TEST(without_the_module_the_note_says_so)
{
	struct gpu_meter g;
	char note[WHY_MAX] = "";

	gpu_meter_open(&g, "/nonexistent/tallymeter", note);
	ck_assert(!g.have_kmod);
	ck_assert_msg(strstr(note, "not loaded") && strstr(note, "libvirt"), "note: %s", note);
	gpu_meter_close(&g);
}
END_TEST

START_TEST(fallback_counts_running_time_per_gpu)
{
	static const char addrs[2][13] = { "0000:65:00.0", "0000:66:00.0" };
	struct gpu_meter g;
	char note[WHY_MAX], why[WHY_MAX] = "";
	uint64_t ns = 1;
	uint8_t source = 99;

	gpu_meter_open(&g, "/nonexistent/tallymeter", note);
	ck_assert_int_eq(gpu_meter_attach(&g, lease, addrs, 2, why), 0);
	ck_assert_int_eq(gpu_meter_lease_ns(&g, lease, addrs, 2, 5000000000ull, &ns, &source), 0);
	ck_assert_uint_eq(ns, 10000000000ull);
	ck_assert_uint_eq(source, GPU_SOURCE_LIBVIRT);
	gpu_meter_detach(&g, lease, addrs, 2);
	gpu_meter_close(&g);
}
END_TEST

START_TEST(a_lease_without_gpus_has_no_source)
{
	struct gpu_meter g;
	char note[WHY_MAX];
	uint64_t ns = 1;
	uint8_t source = 99;

	gpu_meter_open(&g, "/nonexistent/tallymeter", note);
	ck_assert_int_eq(gpu_meter_lease_ns(&g, lease, NULL, 0, 5000000000ull, &ns, &source), 0);
	ck_assert_uint_eq(ns, 0);
	ck_assert_uint_eq(source, GPU_SOURCE_NONE);
	gpu_meter_close(&g);
}
END_TEST

Suite *gpu_meter_suite(void)
{
	Suite *s = suite_create("gpu_meter");
	TCase *tc = tcase_create("source");

	tcase_add_test(tc, without_the_module_the_note_says_so);
	tcase_add_test(tc, fallback_counts_running_time_per_gpu);
	tcase_add_test(tc, a_lease_without_gpus_has_no_source);
	suite_add_tcase(s, tc);
	return s;
}
