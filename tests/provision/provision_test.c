/* Integration tests of the VM provisioner on a real libvirtd (qemu:///system)
 * with real QEMU guests of domain type qemu (TCG): the tiny guest from
 * scripts/build-guest-image.sh.
 *
 * Everything the tests make is named "tallyprovtest-..." (domains) or lives
 * under /tmp/tally-provtest (files); both are swept before and after the
 * run, pass or fail. Guests are small (1 vCPU, 96-128 MiB). */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "daemon/provision/domxml.h"
#include "daemon/provision/provision.h"
#include "lib/codec.h"
#include "lib/errors.h"

#define URI "qemu:///system"
/* Names of this run's own (with the PID), so that runs in parallel (other
 * checkouts on the same host) never sweep each other's domains or files. */
static char PREFIX[32], ROOT[64], STATE[80], ARCHIVE[80], BASE_DISK[80];

static void name_this_run(void)
{
	snprintf(PREFIX, sizeof(PREFIX), "tallyprov%d-", (int)getpid());
	snprintf(ROOT, sizeof(ROOT), "/tmp/tally-provtest-%d", (int)getpid());
	snprintf(STATE, sizeof(STATE), "%s/state", ROOT);
	snprintf(ARCHIVE, sizeof(ARCHIVE), "%s/archive", ROOT);
	snprintf(BASE_DISK, sizeof(BASE_DISK), "%s/base.qcow2", ROOT);
}
#define ABSENT_GPU "0000:7f:1f.7"   /* checked absent from this host below */
#define INIT_MARKER "tally-guest: init reached"
#define BOOT_TIMEOUT_S 180          /* TCG on a busy 2-core host */
#define EVENT_TIMEOUT_S 30
#define SSH_KEY "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC04IPLC+X+sR4FdA34U4BvbU/Qes+rxENYW7bE+QRkm " \
	"tenant@test"
#define FORWARD_ADDRESS "127.0.0.1"

static char guest_dir[PATH_MAX];

/* ---- environment -------------------------------------------------------- */

static void quiet(void *arg, virErrorPtr e)
{
	(void)arg;
	(void)e;
}

static virConnectPtr connect_or_start(void)
{
	virConnectPtr c;

	virSetErrorFunc(NULL, quiet);
	c = virConnectOpen(URI);
	if (c)
		return c;
	/* No systemd here: start the daemons ourselves. */
	if (system("pidof virtlogd >/dev/null || virtlogd -d") != 0 ||
	    system("pidof libvirtd >/dev/null || libvirtd -d") != 0)
		return NULL;
	for (int i = 0; i < 100 && !c; i++) {
		usleep(200 * 1000);
		c = virConnectOpen(URI);
	}
	return c;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

/* Destroys and undefines every test domain, and removes the test files. */
static void sweep(void)
{
	virConnectPtr c = connect_or_start();
	virDomainPtr *doms = NULL;
	int n;

	if (c) {
		n = virConnectListAllDomains(c, &doms, 0);
		for (int i = 0; i < n; i++) {
			const char *name = virDomainGetName(doms[i]);

			if (name && strncmp(name, PREFIX, strlen(PREFIX)) == 0) {
				if (virDomainIsActive(doms[i]) == 1)
					virDomainDestroy(doms[i]);
				virDomainUndefineFlags(doms[i], VIR_DOMAIN_UNDEFINE_NVRAM);
			}
			virDomainFree(doms[i]);
		}
		free(doms);
		virConnectClose(c);
	}
	nftw(ROOT, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void make_root(void)
{
	char cmd[256];

	/* The unprivileged QEMU user must be able to reach the state dir. */
	ck_assert_int_eq(mkdir(ROOT, 0755) == 0 || errno == EEXIST, 1);
	chmod(ROOT, 0755);
	snprintf(cmd, sizeof(cmd), "qemu-img create -q -f qcow2 %s 64M", BASE_DISK);
	ck_assert_int_eq(system(cmd), 0);
}

/* ---- events ------------------------------------------------------------- */

struct seen {
	uint8_t lease_id[LEASE_ID_LEN];
	enum prov_event_kind kind;
	char detail[160];
	struct timespec at;
};

static pthread_mutex_t ev_lock = PTHREAD_MUTEX_INITIALIZER;
static struct seen events[256];
static size_t n_events;

static void record_event(void *arg, const uint8_t id[LEASE_ID_LEN],
			 enum prov_event_kind kind, const char *detail)
{
	(void)arg;
	pthread_mutex_lock(&ev_lock);
	if (n_events < 256) {
		struct seen *s = &events[n_events++];

		memcpy(s->lease_id, id, LEASE_ID_LEN);
		s->kind = kind;
		snprintf(s->detail, sizeof(s->detail), "%s", detail);
		clock_gettime(CLOCK_MONOTONIC, &s->at);
	}
	pthread_mutex_unlock(&ev_lock);
}

static int count_events(const uint8_t id[LEASE_ID_LEN], enum prov_event_kind kind)
{
	int n = 0;

	pthread_mutex_lock(&ev_lock);
	for (size_t i = 0; i < n_events; i++)
		if (!memcmp(events[i].lease_id, id, LEASE_ID_LEN) &&
		    (kind == 0 || events[i].kind == kind))
			n++;
	pthread_mutex_unlock(&ev_lock);
	return n;
}

/* Waits for the first event of the lease other than STARTED (kind 0: any). */
static bool wait_event(const uint8_t id[LEASE_ID_LEN], enum prov_event_kind kind,
		       int timeout_s, struct seen *out)
{
	for (int i = 0; i < timeout_s * 20; i++) {
		pthread_mutex_lock(&ev_lock);
		for (size_t j = 0; j < n_events; j++) {
			if (memcmp(events[j].lease_id, id, LEASE_ID_LEN) || events[j].kind != kind)
				continue;
			if (out)
				*out = events[j];
			pthread_mutex_unlock(&ev_lock);
			return true;
		}
		pthread_mutex_unlock(&ev_lock);
		usleep(50 * 1000);
	}
	return false;
}

/* ---- configuration ------------------------------------------------------ */

static struct prov_image images[3];
static struct prov_gpu gpus[1];
static uint16_t port_min;        /* this run's forward range: 8 ports from here */

static void set_path(char *dst, const char *dir, const char *file)
{
	ck_assert_int_lt(strlen(dir) + strlen(file) + 1, PROV_PATH_MAX);
	strcpy(dst, dir);
	strcat(dst, "/");
	strcat(dst, file);
}

static void setup_catalogue(void)
{
	struct prov_image *tiny = &images[0], *seeded = &images[1], *gpu = &images[2];

	memset(images, 0, sizeof(images));
	strcpy(tiny->name, "tiny");
	set_path(tiny->kernel, guest_dir, "vmlinuz");
	set_path(tiny->initrd, guest_dir, "initrd.img");
	strcpy(tiny->cmdline, "console=ttyS0 quiet tally.burn=20");
	tiny->min_memory_mib = 64;

	*seeded = *tiny;
	strcpy(seeded->name, "tiny-seeded");
	strcpy(seeded->disk_path, BASE_DISK);
	strcpy(seeded->disk_format, "qcow2");
	seeded->cloud_init = true;
	strcpy(seeded->ssh_user, "tenant");   /* no sshd in the tiny guest: the port is QEMU's */

	*gpu = *tiny;
	strcpy(gpu->name, "tiny-gpu");
	strcpy(gpu->gpu_classes[0], "testgpu");
	gpu->n_gpu_classes = 1;

	strcpy(gpus[0].pci_addr, ABSENT_GPU);
	strcpy(gpus[0].class_name, "testgpu");
}

static struct prov_config config(enum prov_net_mode net)
{
	struct prov_config c = {
		.uri = URI,
		.domain_type = PROV_DOMAIN_QEMU,
		.name_prefix = PREFIX,
		.images = images,
		.n_images = 3,
		.gpus = gpus,
		.n_gpus = 1,
		.cpu_overcommit = 2.0,
		.mem_overcommit = 1.0,
		.state_dir = STATE,
		.log_archive_dir = ARCHIVE,
		.net = net,
		.on_event = record_event,
	};
	if (net == PROV_NET_USER) {
		c.forward_address = FORWARD_ADDRESS;
		c.forward_port_min = port_min;
		c.forward_port_max = (uint16_t)(port_min + 7);
	}
	return c;
}

static struct prov *open_prov(enum prov_net_mode net)
{
	struct prov_config c = config(net);
	struct prov *p = NULL;
	char why[WHY_MAX] = "";
	int err = prov_open(&p, &c, why);

	ck_assert_msg(err == 0, "prov_open: %s", why);
	return p;
}

static struct prov_request request(uint8_t tag, const char *image, uint32_t mem_mib)
{
	struct prov_request r;

	memset(&r, 0, sizeof(r));
	for (int i = 0; i < LEASE_ID_LEN; i++)
		r.lease_id[i] = (uint8_t)(tag * 31 + i * 7 + 1);
	r.vm.vcpus = 1;
	r.vm.memory_mib = mem_mib;
	r.vm.disk_gib = 1;
	snprintf(r.vm.image, sizeof(r.vm.image), "%s", image);
	return r;
}

static void lease_hex(const uint8_t id[LEASE_ID_LEN], char hex[2 * LEASE_ID_LEN + 1])
{
	hex_encode(id, LEASE_ID_LEN, hex);
}

/* ---- checks a user would make ------------------------------------------- */

static bool file_contains(const char *path, const char *needle)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = fopen(path, "re");
	bool found;

	if (!f)
		return false;
	found = getdelim(&buf, &len, '\0', f) > 0 && strstr(buf, needle);
	free(buf);
	fclose(f);
	return found;
}

static bool wait_console(const char *log, const char *needle, int timeout_s)
{
	for (int i = 0; i < timeout_s * 5; i++) {
		if (file_contains(log, needle))
			return true;
		usleep(200 * 1000);
	}
	return false;
}

/* Names of the entries in a directory, newline separated ("" when empty). */
static char *dir_listing(const char *dir)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	DIR *d = opendir(dir);
	struct dirent *e;

	while (d && (e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			fprintf(f, "%s\n", e->d_name);
	if (d)
		closedir(d);
	fclose(f);
	return buf;
}

/* The test domains libvirt knows, and how many carry lease id `hex`. */
static int count_test_domains(virConnectPtr c, const char *hex, int *with_id)
{
	virDomainPtr *doms = NULL;
	int n = virConnectListAllDomains(c, &doms, 0), mine = 0;

	*with_id = 0;
	for (int i = 0; i < n; i++) {
		const char *name = virDomainGetName(doms[i]);

		if (strncmp(name, PREFIX, strlen(PREFIX)) == 0) {
			char *meta = virDomainGetMetadata(doms[i], VIR_DOMAIN_METADATA_ELEMENT,
							  PROV_XMLNS, 0);

			mine++;
			if (hex && meta && strstr(meta, hex))
				(*with_id)++;
			free(meta);
		}
		virDomainFree(doms[i]);
	}
	free(doms);
	return mine;
}

/* Whether something accepts TCP connections on FORWARD_ADDRESS:port. */
static bool port_listens(uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;

	ck_assert_int_ge(fd, 0);
	inet_pton(AF_INET, FORWARD_ADDRESS, &sa.sin_addr);
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

static char *run_capture(const char *cmd)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = popen(cmd, "r");

	ck_assert_ptr_nonnull(f);
	if (getdelim(&buf, &len, '\0', f) < 0) {
		free(buf);
		buf = strdup("");
	}
	pclose(f);
	return buf;
}

static void assert_nothing_left(virConnectPtr c, const char *name)
{
	virDomainPtr dom = virDomainLookupByName(c, name);
	char *left = dir_listing(STATE);

	ck_assert_msg(dom == NULL, "domain %s still exists", name);
	ck_assert_msg(strcmp(left, "") == 0, "state dir not empty:\n%s", left);
	free(left);
}

/* ---- the tests ---------------------------------------------------------- */

/* The XML is what the issue asks for, and libvirt accepts it, hostdev and
 * all (it is defined, never started: the GPU is not on this host). */
START_TEST(test_domain_xml)
{
	struct prov *p = open_prov(PROV_NET_USER);
	struct prov_request r = request(1, "tiny-gpu", 96);
	virConnectPtr c = connect_or_start();
	struct domxml_lease_meta m;
	char why[WHY_MAX], hex[65], *xml = NULL, *back, *meta;
	virDomainPtr dom;

	r.vm.gpus = 1;
	ck_assert_msg(prov_render_xml(p, &r, &xml, why) == 0, "%s", why);
	lease_hex(r.lease_id, hex);
	ck_assert_ptr_nonnull(strstr(xml, "<domain xmlns:qemu=\"http://libvirt.org/schemas/"
				     "domain/qemu/1.0\" type=\"qemu\">"));
	ck_assert_ptr_nonnull(strstr(xml, "machine=\"q35\""));
	ck_assert_ptr_nonnull(strstr(xml, "<vcpu placement=\"static\">1</vcpu>"));
	ck_assert_ptr_nonnull(strstr(xml, "<memory unit=\"MiB\">96</memory>"));
	ck_assert_ptr_nonnull(strstr(xml, "<hostdev mode=\"subsystem\" type=\"pci\" "
				     "managed=\"yes\">"));
	ck_assert_ptr_nonnull(strstr(xml, "<driver name=\"vfio\"/>"));
	ck_assert_ptr_nonnull(strstr(xml, "bus=\"0x7f\" slot=\"0x1f\" function=\"0x7\""));
	ck_assert_ptr_nonnull(strstr(xml, "&quot;netdev&quot;:&quot;tallynet0&quot;"));
	ck_assert_ptr_null(strstr(xml, "hostfwd"));   /* tiny-gpu has no login user */
	{
		char log_attr[128];

		snprintf(log_attr, sizeof(log_attr), "<log file=\"%s/", STATE);
		ck_assert_ptr_nonnull(strstr(xml, log_attr));
	}
	ck_assert_ptr_nonnull(strstr(xml, hex));

	dom = virDomainDefineXML(c, xml);
	ck_assert_msg(dom != NULL, "libvirt refused the XML: %s", virGetLastErrorMessage());
	back = virDomainGetXMLDesc(dom, VIR_DOMAIN_XML_INACTIVE);
	meta = virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, PROV_XMLNS, 0);
	virDomainUndefine(dom);
	virDomainFree(dom);
	ck_assert_ptr_nonnull(strstr(back, "<hostdev mode='subsystem' type='pci' managed='yes'>"));
	ck_assert_ptr_nonnull(strstr(back, "<driver name='vfio'/>"));
	ck_assert_ptr_nonnull(strstr(back, "machine='pc-q35"));
	ck_assert_ptr_nonnull(meta);
	ck_assert_msg(domxml_parse_meta(meta, &m) == 0, "libvirt's metadata: %s", meta);
	ck_assert_mem_eq(m.lease_id, r.lease_id, LEASE_ID_LEN);
	ck_assert_str_eq(m.image, "tiny-gpu");
	ck_assert_uint_eq(m.n_gpus, 1);
	ck_assert_str_eq(m.gpus[0], ABSENT_GPU);
	free(back);
	free(meta);
	free(xml);

	/* The production shapes: kvm (which libvirt refuses on this host), the
	 * NAT network, a disk-booted image, and text that needs escaping. */
	{
		struct prov_image disk_img = { .name = "disk", .disk_format = "qcow2" };
		char kname[64], kdisk[128], klog[128];
		struct domxml_params dp = {
			.name = kname, .type = PROV_DOMAIN_KVM, .vcpus = 4,
			.memory_mib = 8192, .image = &disk_img,
			.disk_path = kdisk, .console_log = klog, .net = PROV_NET_NAT,
		};
		char *kx = NULL;

		strcpy(disk_img.disk_path, BASE_DISK);
		snprintf(kname, sizeof(kname), "%skvmshape", PREFIX);
		snprintf(kdisk, sizeof(kdisk), "%s/x<y>&.qcow2", STATE);
		snprintf(klog, sizeof(klog), "%s/x.console.log", STATE);

		memcpy(dp.meta.lease_id, r.lease_id, LEASE_ID_LEN);
		strcpy(dp.meta.image, "disk");
		ck_assert_int_eq(domxml_build(&dp, &kx), 0);
		ck_assert_ptr_nonnull(strstr(kx, "<domain type=\"kvm\">"));
		ck_assert_ptr_nonnull(strstr(kx, "<cpu mode=\"host-passthrough\"/>"));
		ck_assert_ptr_nonnull(strstr(kx, "<interface type=\"network\">\n"
					     "      <source network=\"default\"/>"));
		ck_assert_ptr_nonnull(strstr(kx, "<boot dev=\"hd\"/>"));
		ck_assert_ptr_null(strstr(kx, "<kernel>"));
		ck_assert_ptr_nonnull(strstr(kx, "x&lt;y&gt;&amp;.qcow2"));
		ck_assert_ptr_null(strstr(kx, "hostdev"));
		free(kx);
	}
	/* Nothing rendered was created. */
	{
		char none[64];

		snprintf(none, sizeof(none), "%s0000", PREFIX);
		assert_nothing_left(c, none);
	}
	virConnectClose(c);
	prov_close(p);
}
END_TEST

START_TEST(test_boot_and_stop)
{
	struct prov *p = open_prov(PROV_NET_NONE);
	struct prov_request r = request(2, "tiny", 128);
	virConnectPtr c = connect_or_start();
	struct prov_vm_info info;
	virDomainInfo di;
	virDomainPtr dom;
	char why[WHY_MAX], hex[65], cmd[256], *xml, *out, *archived;
	bool graceful = false;

	lease_hex(r.lease_id, hex);
	ck_assert_msg(prov_create(p, &r, &info, why) == 0, "prov_create: %s", why);
	ck_assert_str_eq(info.name + strlen(PREFIX), "3f464d545b62");
	ck_assert_int_eq(strncmp(info.name, PREFIX, strlen(PREFIX)), 0);
	ck_assert(info.running);
	ck_assert_int_gt(info.domain_id, 0);
	ck_assert_int_gt(info.qemu_pid, 0);
	ck_assert_int_eq(kill(info.qemu_pid, 0), 0);
	ck_assert(wait_event(r.lease_id, PROV_EV_STARTED, EVENT_TIMEOUT_S, NULL));
	ck_assert_int_eq(prov_vm_address(p, r.lease_id, cmd), TALLY_E_NOTFOUND);

	/* The guest reached its init, and its CPU burner runs. */
	ck_assert_msg(wait_console(info.console_log, INIT_MARKER, BOOT_TIMEOUT_S),
		      "no '%s' in %s", INIT_MARKER, info.console_log);
	ck_assert(wait_console(info.console_log, "burning 20% of one vCPU", 30));

	/* What libvirt says, through the API ... */
	dom = virDomainLookupByName(c, info.name);
	ck_assert_ptr_nonnull(dom);
	ck_assert_int_eq(virDomainGetInfo(dom, &di), 0);
	ck_assert_uint_eq(di.nrVirtCpu, 1);
	ck_assert_uint_eq(di.maxMem, 128 * 1024);
	xml = virDomainGetXMLDesc(dom, 0);
	ck_assert_ptr_nonnull(strstr(xml, "<vcpu placement='static'>1</vcpu>"));
	ck_assert_ptr_nonnull(strstr(xml, "<memory unit='KiB'>131072</memory>"));
	ck_assert_ptr_nonnull(strstr(xml, "machine='pc-q35"));
	ck_assert_ptr_nonnull(strstr(xml, "xmlns:tally=\"" PROV_XMLNS "\""));
	ck_assert_ptr_nonnull(strstr(xml, hex));
	ck_assert_ptr_null(strstr(xml, "<interface"));
	free(xml);
	virDomainFree(dom);
	/* ... and through virsh, as an operator would look. */
	snprintf(cmd, sizeof(cmd), "virsh -c %s dominfo %s", URI, info.name);
	out = run_capture(cmd);
	ck_assert_msg(strstr(out, "CPU(s):         1") && strstr(out, "131072 KiB") &&
		      strstr(out, "running"), "dominfo:\n%s", out);
	free(out);
	snprintf(cmd, sizeof(cmd), "virsh -c %s dumpxml %s", URI, info.name);
	out = run_capture(cmd);
	ck_assert_msg(strstr(out, hex) && strstr(out, PROV_XMLNS), "dumpxml:\n%s", out);
	free(out);

	/* The guest honours the ACPI power button, so the stop is graceful. */
	ck_assert_msg(prov_stop(p, r.lease_id, 60000, &graceful, why) == 0, "prov_stop: %s", why);
	ck_assert(graceful);
	ck_assert(wait_event(r.lease_id, PROV_EV_STOPPED, EVENT_TIMEOUT_S, NULL));
	ck_assert_int_eq(count_events(r.lease_id, PROV_EV_DESTROYED_EXTERNALLY), 0);
	ck_assert_int_eq(prov_lookup(p, r.lease_id, &info), TALLY_E_NOTFOUND);
	assert_nothing_left(c, info.name);
	/* The console log was archived, not lost. */
	archived = dir_listing(ARCHIVE);
	ck_assert_msg(strstr(archived, hex) != NULL, "archive:\n%s", archived);
	snprintf(cmd, sizeof(cmd), "cat %s/%s-*.console.log", ARCHIVE, hex);
	out = run_capture(cmd);
	ck_assert_ptr_nonnull(strstr(out, INIT_MARKER));
	free(out);
	free(archived);
	/* A second stop finds nothing. */
	ck_assert_int_eq(prov_stop(p, r.lease_id, 0, NULL, why), TALLY_E_NOTFOUND);
	virConnectClose(c);
	prov_close(p);
}
END_TEST

START_TEST(test_external_destroy)
{
	struct prov *p = open_prov(PROV_NET_NONE);
	struct prov_request r = request(3, "tiny", 96);
	virConnectPtr c = connect_or_start();
	struct prov_vm_info info;
	struct timespec t0, t1;
	struct seen ev;
	char why[WHY_MAX], cmd[256];
	double latency, virsh_s;

	ck_assert_msg(prov_create(p, &r, &info, why) == 0, "prov_create: %s", why);
	ck_assert(wait_event(r.lease_id, PROV_EV_STARTED, EVENT_TIMEOUT_S, NULL));
	snprintf(cmd, sizeof(cmd), "virsh -c %s destroy %s >/dev/null", URI, info.name);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ck_assert_int_eq(system(cmd), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	ck_assert_msg(wait_event(r.lease_id, PROV_EV_DESTROYED_EXTERNALLY, EVENT_TIMEOUT_S, &ev),
		      "no destroyed-externally event");
	ck_assert(prov_event_is_provider_failure(ev.kind));
	ck_assert_ptr_nonnull(strstr(ev.detail, "outside tally"));
	latency = (double)(ev.at.tv_sec - t0.tv_sec) + (ev.at.tv_nsec - t0.tv_nsec) / 1e9;
	virsh_s = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("provision: outside destroy reported as %s %.0f ms after virsh started "
	       "(virsh itself ran %.0f ms)\n", prov_event_name(ev.kind), latency * 1000,
	       virsh_s * 1000);
	ck_assert_int_eq(count_events(r.lease_id, PROV_EV_STOPPED), 0);

	/* The lease keeper then cleans up the dead VM. */
	ck_assert_int_eq(prov_lookup(p, r.lease_id, &info), 0);
	ck_assert(!info.running);
	ck_assert_msg(prov_stop(p, r.lease_id, 5000, NULL, why) == 0, "%s", why);
	assert_nothing_left(c, info.name);
	virConnectClose(c);
	prov_close(p);
}
END_TEST

START_TEST(test_qemu_killed)
{
	struct prov *p = open_prov(PROV_NET_NONE);
	struct prov_request r = request(10, "tiny", 96);
	virConnectPtr c = connect_or_start();
	struct prov_vm_info info;
	struct seen ev;
	char why[WHY_MAX];

	ck_assert_msg(prov_create(p, &r, &info, why) == 0, "prov_create: %s", why);
	ck_assert_int_gt(info.qemu_pid, 0);
	ck_assert(wait_event(r.lease_id, PROV_EV_STARTED, EVENT_TIMEOUT_S, NULL));
	ck_assert_int_eq(kill(info.qemu_pid, SIGKILL), 0);
	ck_assert_msg(wait_event(r.lease_id, PROV_EV_CRASHED, EVENT_TIMEOUT_S, &ev),
		      "no crashed event after QEMU was killed");
	ck_assert(prov_event_is_provider_failure(ev.kind));
	printf("provision: QEMU killed -> %s: %s\n", prov_event_name(ev.kind), ev.detail);
	ck_assert_msg(prov_stop(p, r.lease_id, 5000, NULL, why) == 0, "%s", why);
	assert_nothing_left(c, info.name);
	virConnectClose(c);
	prov_close(p);
}
END_TEST

/* ---- a provisioning process killed mid-way ------------------------------ */

static int hook_fd = -1;

static void block_after_define(void *arg, const char *name)
{
	(void)arg;
	if (write(hook_fd, name, strlen(name) + 1) < 0)
		_exit(3);
	for (;;)
		pause();
}

/* Runs prov_create in a child process and SIGKILLs it either inside the
 * define-to-start window or right after prov_create returned (before the
 * lease could be recorded as running). */
static void create_and_kill(const struct prov_request *r, bool after_define)
{
	int fds[2];
	char buf[128];
	struct pollfd pfd;
	pid_t pid;
	int status;

	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct prov_config cfg = config(PROV_NET_NONE);
		struct prov *p;
		char why[WHY_MAX];

		/* Never outlive a test that failed before it could kill us. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(fds[0]);
		hook_fd = fds[1];
		if (after_define)
			cfg.after_define = block_after_define;
		if (prov_open(&p, &cfg, why) || prov_create(p, r, NULL, why)) {
			fprintf(stderr, "child: %s\n", why);
			_exit(2);
		}
		block_after_define(NULL, "created");
	}
	close(fds[1]);
	pfd.fd = fds[0];
	pfd.events = POLLIN;
	ck_assert_msg(poll(&pfd, 1, 120000) == 1, "the child never reached the kill point");
	ck_assert_int_gt(read(fds[0], buf, sizeof(buf)), 0);
	kill(pid, SIGKILL);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFSIGNALED(status));
	close(fds[0]);
}

/* The node's leases: ids[0..n) active, ended[0..nended) closed; any other
 * lease is another provider's. */
struct active_set {
	const uint8_t *ids[4];
	int n;
	const uint8_t *ended[4];
	int nended;
};

static enum prov_lease_standing is_active(void *arg, const uint8_t id[LEASE_ID_LEN])
{
	const struct active_set *s = arg;

	for (int i = 0; i < s->n; i++)
		if (!memcmp(s->ids[i], id, LEASE_ID_LEN))
			return PROV_LEASE_ACTIVE;
	for (int i = 0; i < s->nended; i++)
		if (!memcmp(s->ended[i], id, LEASE_ID_LEN))
			return PROV_LEASE_ENDED;
	return PROV_LEASE_OTHER;
}

START_TEST(test_kill_and_reconcile)
{
	struct prov_request a = request(4, "tiny", 96);   /* killed after define */
	struct prov_request b = request(5, "tiny", 96);   /* killed after create */
	struct prov_request o = request(6, "tiny", 96);   /* its lease has ended */
	struct active_set active = { .ids = { a.lease_id, b.lease_id }, .n = 2 };
	struct prov_reconcile_report rep;
	struct prov_vm_info *list;
	virConnectPtr c;
	struct prov *p;
	char why[WHY_MAX], hexa[65], hexb[65], name_a[PROV_NAME_MAX], name_b[PROV_NAME_MAX];
	char *left;
	size_t n;
	int with_id;

	create_and_kill(&a, true);
	create_and_kill(&b, false);
	c = connect_or_start();
	lease_hex(a.lease_id, hexa);
	lease_hex(b.lease_id, hexb);
	/* What the dead process left: a defined-only domain for a, a running
	 * one for b, and both leases' disks. */
	ck_assert_int_eq(count_test_domains(c, hexa, &with_id), 2);
	ck_assert_int_eq(with_id, 1);

	/* An earlier run of the node made o; its lease is over. */
	p = open_prov(PROV_NET_NONE);
	ck_assert_msg(prov_create(p, &o, NULL, why) == 0, "%s", why);
	prov_close(p);

	/* The restart. */
	p = open_prov(PROV_NET_NONE);
	ck_assert_msg(prov_reconcile(p, is_active, &active, &rep, why) == 0, "%s", why);
	ck_assert_uint_eq(rep.adopted, 1);
	ck_assert_uint_eq(rep.removed_stopped, 1);
	ck_assert_uint_eq(rep.removed_orphans, 1);
	prov_domain_name(p, a.lease_id, name_a);
	prov_domain_name(p, b.lease_id, name_b);
	ck_assert_int_eq(count_test_domains(c, NULL, &with_id), 1);

	/* The keeper re-provisions a; b is already there and is not duplicated. */
	ck_assert_msg(prov_create(p, &a, NULL, why) == 0, "%s", why);
	ck_assert_int_eq(prov_create(p, &b, NULL, why), TALLY_E_EXISTS);
	ck_assert_ptr_nonnull(strstr(why, "already has domain"));
	ck_assert_int_eq(count_test_domains(c, hexa, &with_id), 2);
	ck_assert_int_eq(with_id, 1);
	ck_assert_int_eq(count_test_domains(c, hexb, &with_id), 2);
	ck_assert_int_eq(with_id, 1);
	ck_assert_int_eq(prov_list(p, &list, &n), 0);
	ck_assert_uint_eq(n, 2);
	for (size_t i = 0; i < n; i++) {
		ck_assert(list[i].running);
		ck_assert_int_gt(list[i].qemu_pid, 0);
		ck_assert_uint_eq(list[i].vm.vcpus, 1);
		ck_assert_uint_eq(list[i].vm.memory_mib, 96);
	}
	free(list);
	/* Only a's and b's files remain. */
	left = dir_listing(STATE);
	for (char *line = strtok(left, "\n"); line; line = strtok(NULL, "\n"))
		ck_assert_msg(!strncmp(line, name_a, strlen(name_a)) ||
			      !strncmp(line, name_b, strlen(name_b)), "stray file %s", line);
	free(left);

	ck_assert_msg(prov_stop(p, a.lease_id, 0, NULL, why) == 0, "%s", why);
	ck_assert_msg(prov_stop(p, b.lease_id, 0, NULL, why) == 0, "%s", why);
	ck_assert_int_eq(count_test_domains(c, NULL, &with_id), 0);
	assert_nothing_left(c, name_a);
	virConnectClose(c);
	prov_close(p);
}
END_TEST

/* Several nodes on one host may share the prefix (a devnet's do): a node
 * restarting removes only the domains it made, and keeps the files of the
 * others. One that records another node as its maker is left, whatever its
 * lease; one that records no maker (made by a tallyd before makers were
 * recorded) is this node's when its lease is (running: adopted; ended:
 * removed), and left when the lease is another provider's. */
START_TEST(test_reconcile_leaves_other_nodes_domains)
{
	static const char owner_a[] = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
	static const char owner_b[] = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
	struct prov_request o = request(7, "tiny", 96);   /* node A's, lease over */
	struct prov_request q = request(8, "tiny", 96);   /* no maker recorded */
	struct prov_request u = request(9, "tiny", 96);   /* no maker, B's lease ended */
	struct active_set none = { .n = 0 };
	struct active_set b_leases = { .ids = { q.lease_id }, .n = 1, .ended = { u.lease_id },
				       .nended = 1 };
	struct prov_reconcile_report rep;
	struct prov_config ca = config(PROV_NET_NONE), cb = config(PROV_NET_NONE);
	virConnectPtr c = connect_or_start();
	struct prov *p;
	char why[WHY_MAX], hexo[65], hexq[65], hexu[65], name_o[PROV_NAME_MAX];
	char *files;
	int with_id;

	ca.owner = owner_a;
	cb.owner = owner_b;
	lease_hex(o.lease_id, hexo);
	lease_hex(q.lease_id, hexq);
	lease_hex(u.lease_id, hexu);
	ck_assert_msg(prov_open(&p, &ca, why) == 0, "%s", why);
	ck_assert_msg(prov_create(p, &o, NULL, why) == 0, "%s", why);
	prov_domain_name(p, o.lease_id, name_o);
	prov_close(p);
	p = open_prov(PROV_NET_NONE);
	ck_assert_msg(prov_create(p, &q, NULL, why) == 0, "%s", why);
	ck_assert_msg(prov_create(p, &u, NULL, why) == 0, "%s", why);
	prov_close(p);

	/* Node B restarts, knowing none of the leases: none is its own. */
	ck_assert_msg(prov_open(&p, &cb, why) == 0, "%s", why);
	ck_assert_msg(prov_reconcile(p, is_active, &none, &rep, why) == 0, "%s", why);
	ck_assert_uint_eq(rep.foreign, 3);
	ck_assert_uint_eq(rep.removed_orphans, 0);
	ck_assert_uint_eq(rep.adopted, 0);
	ck_assert_int_eq(count_test_domains(c, hexo, &with_id), 3);
	ck_assert_int_eq(with_id, 1);
	/* The domains it left keep their files (the state dir is shared here). */
	files = dir_listing(STATE);
	ck_assert_msg(strstr(files, name_o), "node A's files were removed:\n%s", files);
	free(files);
	prov_close(p);

	/* Node A restarts: o is its own, its lease is over. */
	ck_assert_msg(prov_open(&p, &ca, why) == 0, "%s", why);
	ck_assert_msg(prov_reconcile(p, is_active, &none, &rep, why) == 0, "%s", why);
	ck_assert_uint_eq(rep.removed_orphans, 1);
	ck_assert_uint_eq(rep.foreign, 2);
	ck_assert_int_eq(count_test_domains(c, hexo, &with_id), 2);
	ck_assert_int_eq(with_id, 0);
	prov_close(p);

	/* Node B again, knowing its leases: the unmarked domains are its own,
	 * q's running lease adopted, u's ended one removed. */
	ck_assert_msg(prov_open(&p, &cb, why) == 0, "%s", why);
	ck_assert_msg(prov_reconcile(p, is_active, &b_leases, &rep, why) == 0, "%s", why);
	ck_assert_uint_eq(rep.adopted, 1);
	ck_assert_uint_eq(rep.removed_orphans, 1);
	ck_assert_uint_eq(rep.foreign, 0);
	ck_assert_int_eq(count_test_domains(c, hexu, &with_id), 1);
	ck_assert_int_eq(with_id, 0);
	ck_assert_msg(prov_stop(p, q.lease_id, 0, NULL, why) == 0, "%s", why);
	ck_assert_int_eq(count_test_domains(c, NULL, &with_id), 0);
	virConnectClose(c);
	prov_close(p);
}
END_TEST

/* ---- refusals ----------------------------------------------------------- */

static void expect_refused(struct prov *p, const struct prov_request *r, int want_err,
			   const char *want_text)
{
	char why[WHY_MAX] = "", why_admit[WHY_MAX] = "";
	int err;

	/* The admission check (no lease id, so no name checks) says the same. */
	if (want_err != TALLY_E_EXISTS) {
		err = prov_admit_check(p, &r->vm, why_admit);
		ck_assert_msg(err == want_err, "admit: want %s, got %s (%s)",
			      tally_strerror(want_err), tally_strerror(err), why_admit);
		ck_assert_msg(strstr(why_admit, want_text), "'%s' lacks '%s'", why_admit, want_text);
	}
	err = prov_create(p, r, NULL, why);

	ck_assert_msg(err == want_err, "want %s, got %s (%s)", tally_strerror(want_err),
		      tally_strerror(err), why);
	ck_assert_msg(strstr(why, want_text) != NULL, "'%s' lacks '%s'", why, want_text);
	printf("provision: refused as expected: %s\n", why);
}

START_TEST(test_bad_specs)
{
	struct prov *p = open_prov(PROV_NET_NONE);
	virConnectPtr c = connect_or_start();
	struct prov_request r;
	virDomainPtr squatter;
	char name[PROV_NAME_MAX], xml[512], uuid_before[40], uuid_after[40];
	int with_id;

	ck_assert_msg(access("/sys/bus/pci/devices/" ABSENT_GPU, F_OK) != 0,
		      "this host really has " ABSENT_GPU);
	r = request(7, "tiny", 96);
	ck_assert_int_eq(prov_admit_check(p, &r.vm, NULL), 0);

	r = request(7, "tiny", 96);
	r.vm.vcpus = 0;
	expect_refused(p, &r, TALLY_E_INVALID, "0 vCPUs");
	r = request(7, "tiny", 96);
	r.vm.vcpus = 64;
	expect_refused(p, &r, TALLY_E_CAPACITY, "lease needs 64 vCPUs but the host can hold");
	r = request(7, "tiny", 4u << 20);  /* 4 TiB */
	expect_refused(p, &r, TALLY_E_CAPACITY, "MiB of memory but the host can hold");
	r = request(7, "no-such-image", 96);
	expect_refused(p, &r, TALLY_E_NOTFOUND, "image 'no-such-image' is not in this node's catalogue");
	r = request(7, "tiny", 32);
	expect_refused(p, &r, TALLY_E_INVALID, "needs at least 64 MiB");
	r = request(7, "tiny-gpu", 96);
	r.vm.gpus = 1;
	expect_refused(p, &r, TALLY_E_CAPACITY, "not present on this host: " ABSENT_GPU);
	r = request(7, "tiny", 96);
	r.vm.gpus = 1;
	expect_refused(p, &r, TALLY_E_CAPACITY, "supports no GPUs");
	/* Contract fields that reach the seed's YAML and the domain's XML are
	 * held to the contract's own rules (contracts/access.c). */
	r = request(7, "tiny-seeded", 96);
	snprintf(r.vm.ssh_key, sizeof(r.vm.ssh_key), "%s", "ssh-ed25519 AAAA\"\nruncmd: [reboot]");
	expect_refused(p, &r, TALLY_E_INVALID, "SSH key holds a control or non-ASCII byte 0x0a");
	r = request(7, "tiny-seeded", 96);
	snprintf(r.vm.ssh_key, sizeof(r.vm.ssh_key), "%s", SSH_KEY "\" <x/>");
	expect_refused(p, &r, TALLY_E_INVALID, "SSH key comment may hold only");
	r = request(7, "tiny-seeded", 96);
	snprintf(r.vm.hostname, sizeof(r.vm.hostname), "%s", "box\"><x/");
	expect_refused(p, &r, TALLY_E_INVALID, "hostname may hold only a-z, 0-9 and '-'");

	/* A domain tally does not manage holds the lease's name. */
	r = request(7, "tiny", 96);
	prov_domain_name(p, r.lease_id, name);
	snprintf(xml, sizeof(xml), "<domain type='qemu'><name>%s</name><memory unit='MiB'>64"
		 "</memory><os><type arch='x86_64' machine='q35'>hvm</type></os></domain>", name);
	squatter = virDomainDefineXML(c, xml);
	ck_assert_ptr_nonnull(squatter);
	virDomainGetUUIDString(squatter, uuid_before);
	expect_refused(p, &r, TALLY_E_EXISTS, "already used by a domain tally does not manage");
	virDomainFree(squatter);
	squatter = virDomainLookupByName(c, name);
	ck_assert_ptr_nonnull(squatter);
	virDomainGetUUIDString(squatter, uuid_after);
	ck_assert_str_eq(uuid_before, uuid_after);
	ck_assert_int_eq(virDomainIsActive(squatter), 0);
	virDomainUndefine(squatter);
	virDomainFree(squatter);

	/* Nothing was created by any of them. */
	ck_assert_int_eq(count_test_domains(c, NULL, &with_id), 0);
	assert_nothing_left(c, name);
	virConnectClose(c);
	prov_close(p);
}
END_TEST

/* ---- two leases at once ------------------------------------------------- */

START_TEST(test_two_leases)
{
	struct prov *p = open_prov(PROV_NET_USER);
	struct prov_request a = request(8, "tiny-seeded", 96);
	struct prov_request b = request(9, "tiny", 96);
	struct prov_request clash = request(8, "tiny", 96);
	virConnectPtr c = connect_or_start();
	struct prov_vm_info ia, ib, ib2;
	char why[WHY_MAX], hexa[65], seed[PROV_PATH_MAX + 32], cmd[PROV_PATH_MAX + 64];
	char disk_b[PROV_PATH_MAX + 16], backing[PROV_PATH_MAX + 32], *xml, *out;
	virDomainPtr dom;
	struct stat st;

	snprintf(a.vm.ssh_key, sizeof(a.vm.ssh_key), "%s", SSH_KEY);
	strcpy(a.vm.hostname, "tenant-box");
	ck_assert_msg(prov_create(p, &a, &ia, why) == 0, "a: %s", why);
	ck_assert_msg(prov_create(p, &b, &ib, why) == 0, "b: %s", why);

	/* A lease whose id shares a's first 48 bits can't take a's name. */
	clash.lease_id[LEASE_ID_LEN - 1] ^= 0xff;
	lease_hex(a.lease_id, hexa);
	expect_refused(p, &clash, TALLY_E_EXISTS, hexa);

	/* Two separate VMs: their own names, QEMU processes and disks. */
	ck_assert_str_ne(ia.name, ib.name);
	ck_assert_str_ne(ia.uuid, ib.uuid);
	ck_assert_int_ne(ia.qemu_pid, ib.qemu_pid);
	ck_assert_msg(wait_console(ia.console_log, INIT_MARKER, BOOT_TIMEOUT_S), "a did not boot");
	ck_assert_msg(wait_console(ib.console_log, INIT_MARKER, BOOT_TIMEOUT_S), "b did not boot");

	/* a got a NoCloud seed with the tenant's key and hostname; b did not. */
	dom = virDomainLookupByName(c, ia.name);
	xml = virDomainGetXMLDesc(dom, 0);
	snprintf(seed, sizeof(seed), "%s/%s.seed.iso", STATE, ia.name);
	ck_assert_ptr_nonnull(strstr(xml, seed));
	ck_assert_ptr_nonnull(strstr(xml, "tallynet0"));
	free(xml);
	virDomainFree(dom);
	/* a's image has a login user: a port of the range, on the loopback
	 * address, that QEMU itself listens on; b's has none. */
	ck_assert_uint_eq(ia.ssh_port, port_min);
	ck_assert_str_eq(ia.ssh_address, FORWARD_ADDRESS);
	ck_assert_str_eq(ia.ssh_user, "tenant");
	ck_assert_str_eq(ia.hostname, "tenant-box");
	ck_assert_uint_eq(ib.ssh_port, 0);
	ck_assert_msg(port_listens(ia.ssh_port), "nothing listens on port %u", ia.ssh_port);
	/* a's disk is a qcow2 overlay on the catalogue's base image. */
	snprintf(cmd, sizeof(cmd), "qemu-img info -U --output=json %s/%s.qcow2", STATE, ia.name);
	out = run_capture(cmd);
	snprintf(backing, sizeof(backing), "\"backing-filename\": \"%s\"", BASE_DISK);
	ck_assert_msg(strstr(out, backing) &&
		      strstr(out, "\"virtual-size\": 1073741824"), "qemu-img info:\n%s", out);
	free(out);
	snprintf(cmd, sizeof(cmd), "isoinfo -J -i %s -x /user-data", seed);
	out = run_capture(cmd);
	ck_assert_msg(strstr(out, "ssh_authorized_keys:\n      - \"" SSH_KEY "\"") &&
		      strstr(out, "hostname: \"tenant-box\"") &&
		      strstr(out, "  - name: \"tenant\""), "user-data:\n%s", out);
	free(out);
	snprintf(cmd, sizeof(cmd), "isoinfo -d -i %s", seed);
	out = run_capture(cmd);
	ck_assert_ptr_nonnull(strstr(out, "Volume id: cidata"));
	free(out);
	dom = virDomainLookupByName(c, ib.name);
	xml = virDomainGetXMLDesc(dom, 0);
	ck_assert_ptr_null(strstr(xml, "seed.iso"));
	free(xml);
	virDomainFree(dom);

	/* Ending a leaves b exactly as it was, and a's port answers no more. */
	ck_assert_msg(prov_stop(p, a.lease_id, 0, NULL, why) == 0, "%s", why);
	ck_assert_msg(!port_listens(ia.ssh_port), "port %u still listens", ia.ssh_port);
	ck_assert_ptr_null(virDomainLookupByName(c, ia.name));
	ck_assert_int_eq(prov_lookup(p, b.lease_id, &ib2), 0);
	ck_assert(ib2.running);
	ck_assert_int_eq(ib2.domain_id, ib.domain_id);
	ck_assert_int_eq(ib2.qemu_pid, ib.qemu_pid);
	ck_assert_int_eq(kill(ib.qemu_pid, 0), 0);
	snprintf(disk_b, sizeof(disk_b), "%s/%s.qcow2", STATE, ib.name);
	ck_assert_int_eq(stat(disk_b, &st), 0);
	ck_assert_int_eq(stat(ib.console_log, &st), 0);
	ck_assert_int_eq(count_events(b.lease_id, 0), count_events(b.lease_id, PROV_EV_STARTED));
	{
		char *left = dir_listing(STATE);

		ck_assert_msg(strstr(left, ia.name) == NULL, "a left files:\n%s", left);
		free(left);
	}
	ck_assert_msg(prov_stop(p, b.lease_id, 0, NULL, why) == 0, "%s", why);
	assert_nothing_left(c, ib.name);
	virConnectClose(c);
	prov_close(p);
}
END_TEST

/* ---- runner ------------------------------------------------------------- */

static void tcase_setup(void)
{
	sweep();
	make_root();
	setup_catalogue();
}

static Suite *provision_suite(void)
{
	Suite *s = suite_create("provision");
	TCase *tc = tcase_create("libvirt");

	tcase_set_timeout(tc, 600);
	tcase_add_checked_fixture(tc, tcase_setup, NULL);
	tcase_add_test(tc, test_domain_xml);
	tcase_add_test(tc, test_bad_specs);
	tcase_add_test(tc, test_boot_and_stop);
	tcase_add_test(tc, test_external_destroy);
	tcase_add_test(tc, test_qemu_killed);
	tcase_add_test(tc, test_two_leases);
	tcase_add_test(tc, test_kill_and_reconcile);
	tcase_add_test(tc, test_reconcile_leaves_other_nodes_domains);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	const char *dir = getenv("TALLY_GUEST_DIR");
	virConnectPtr c;
	SRunner *sr;
	int failed;

	name_this_run();
	/* A forward range of this run's own, so parallel runs do not meet. */
	port_min = (uint16_t)(30000 + (getpid() % 3000) * 8);
	if (!realpath(dir ? dir : "build/guest", guest_dir)) {
		fprintf(stderr, "provision tests: no guest image in %s "
			"(run scripts/build-guest-image.sh)\n", guest_dir);
		return 1;
	}
	c = connect_or_start();
	if (!c) {
		fprintf(stderr, "provision tests: cannot reach or start libvirtd at %s\n", URI);
		return 1;
	}
	virConnectClose(c);
	sr = srunner_create(provision_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	sweep();
	return failed ? 1 : 0;
}
