/* tallymeter.ko test, run as a static binary inside a QEMU guest that boots
 * Debian's kernel (see run.sh). Prints TAP on stdout.
 *
 *   tallymeter-test /path/to/tallymeter.ko
 *
 * It loads the module itself (finit_module), binds the emulated VGA device
 * to vfio-pci through sysfs, and checks the module's counters against the
 * guest's own CLOCK_BOOTTIME, which is the clock the module reads: every
 * assignment must fall inside the window bracketed by the timestamps taken
 * around the bind and unbind writes, give or take TOLERANCE_NS. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/klog.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "daemon/meter/gpu_kmod.h"
#include "lib/errors.h"

#define TOLERANCE_NS 5000000ULL   /* 5 ms: both sides read the same clock */
#define MODULE_NAME "tallymeter"
#define SYSFS_ROOT "/sys/kernel/tallymeter"
#define PCI_DEVICES "/sys/bus/pci/devices"
#define VGA_CLASS 0x030000

static int tests_run;
static int tests_failed;

static void diag(const char *fmt, ...)
{
	va_list ap;

	fputs("# ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
}

static bool check(bool cond, const char *fmt, ...)
{
	va_list ap;

	tests_run++;
	if (!cond)
		tests_failed++;
	printf("%s %d - ", cond ? "ok" : "not ok", tests_run);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	fputc('\n', stdout);
	fflush(stdout);
	return cond;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* lo - tol <= v <= hi + tol, with a diagnostic when it fails. */
static bool in_window(const char *what, uint64_t v, uint64_t lo, uint64_t hi)
{
	uint64_t low = lo > TOLERANCE_NS ? lo - TOLERANCE_NS : 0;

	bool inside = v >= low && v <= hi + TOLERANCE_NS;

	diag("%s = %llu ns, %s [%llu, %llu] +- %llu", what,
	     (unsigned long long)v, inside ? "within" : "NOT within",
	     (unsigned long long)lo, (unsigned long long)hi,
	     (unsigned long long)TOLERANCE_NS);
	return inside;
}

/* ---- files -------------------------------------------------------------- */

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	int err = 0;

	if (fd < 0)
		return errno;
	if (write(fd, text, strlen(text)) < 0)
		err = errno;
	close(fd);
	if (err)
		diag("write %s to %s: %s", text, path, strerror(err));
	return err;
}

/* Reads a small file without its trailing newline; "" when unreadable. */
static const char *read_line(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = -1;

	buf[0] = '\0';
	if (fd >= 0) {
		n = read(fd, buf, len - 1);
		close(fd);
	}
	if (n < 0)
		return buf;
	buf[n] = '\0';
	if (n > 0 && buf[n - 1] == '\n')
		buf[n - 1] = '\0';
	return buf;
}

static bool exists(const char *path)
{
	return access(path, F_OK) == 0;
}

static uint64_t sysfs_u64(const char *bdf, const char *attr)
{
	char path[256], buf[64];

	snprintf(path, sizeof(path), SYSFS_ROOT "/%s/%s", bdf, attr);
	return strtoull(read_line(path, buf, sizeof(buf)), NULL, 10);
}

static const char *sysfs_str(const char *bdf, const char *attr, char *buf,
			     size_t len)
{
	char path[256];

	snprintf(path, sizeof(path), SYSFS_ROOT "/%s/%s", bdf, attr);
	return read_line(path, buf, len);
}

/* Name of the driver bound to @bdf according to the driver core. */
static const char *pci_driver(const char *bdf, char *buf, size_t len)
{
	char path[256], target[256];
	ssize_t n;

	snprintf(path, sizeof(path), PCI_DEVICES "/%s/driver", bdf);
	n = readlink(path, target, sizeof(target) - 1);
	if (n < 0) {
		snprintf(buf, len, "%s", "");
		return buf;
	}
	target[n] = '\0';
	snprintf(buf, len, "%s", strrchr(target, '/') + 1);
	return buf;
}

static unsigned long pci_class(const char *bdf)
{
	char path[512], buf[32];

	snprintf(path, sizeof(path), PCI_DEVICES "/%s/class", bdf);
	return strtoul(read_line(path, buf, sizeof(buf)), NULL, 16);
}

/* The first VGA device, and how many devices the default classes cover. */
static int scan_pci(char vga[GPU_KMOD_BDF_LEN], unsigned int *tracked)
{
	DIR *dir = opendir(PCI_DEVICES);
	struct dirent *de;

	vga[0] = '\0';
	*tracked = 0;
	if (!dir)
		return -1;
	while ((de = readdir(dir))) {
		unsigned long class;

		if (de->d_name[0] == '.')
			continue;
		class = pci_class(de->d_name);
		if (class >> 16 == 0x03 || class >> 16 == 0x12)
			(*tracked)++;
		if (class == VGA_CLASS && !vga[0] &&
		    strlen(de->d_name) < GPU_KMOD_BDF_LEN)
			memcpy(vga, de->d_name, strlen(de->d_name) + 1);
	}
	closedir(dir);
	return vga[0] ? 0 : -1;
}

/* ---- module and driver control ------------------------------------------ */

static int load_module(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int err = 0;

	if (fd < 0)
		return errno;
	if (syscall(SYS_finit_module, fd, "", 0) < 0)
		err = errno;
	close(fd);
	return err;
}

static int unload_module(void)
{
	return syscall(SYS_delete_module, MODULE_NAME, O_NONBLOCK) < 0 ?
	       errno : 0;
}

struct bracket {
	uint64_t before;
	uint64_t after;
};

/* driver_override, then drivers_probe: the probe runs inside the write. */
static int bind_vfio(const char *bdf, struct bracket *t)
{
	char path[256];
	int err;

	snprintf(path, sizeof(path), PCI_DEVICES "/%s/driver_override", bdf);
	err = write_file(path, "vfio-pci");
	if (err)
		return err;
	t->before = now_ns();
	err = write_file("/sys/bus/pci/drivers_probe", bdf);
	t->after = now_ns();
	return err;
}

static int unbind(const char *bdf, struct bracket *t)
{
	char path[256];
	int err;

	snprintf(path, sizeof(path), PCI_DEVICES "/%s/driver/unbind", bdf);
	t->before = now_ns();
	err = write_file(path, bdf);
	t->after = now_ns();
	return err;
}

static int raw_ioctl(int fd, unsigned long cmd, void *arg)
{
	return ioctl(fd, cmd, arg) < 0 ? errno : 0;
}

/* ---- the test ------------------------------------------------------------ */

struct ctx {
	const char *module_path;
	char bdf_text[GPU_KMOD_BDF_LEN];
	struct tallymeter_bdf bdf;
	struct gpu_kmod km;
	uint8_t lease_a[TALLYMETER_LEASE_ID_LEN];
	uint8_t lease_b[TALLYMETER_LEASE_ID_LEN];
	struct bracket load;
};

static bool read_dev(struct ctx *c, struct tallymeter_dev *d)
{
	int err = gpu_kmod_read(&c->km, &c->bdf, d);

	if (err)
		diag("read %s: %s (errno %d)", c->bdf_text, tally_strerror(err),
		     c->km.last_errno);
	return err == TALLY_OK;
}

static void hex(const uint8_t *b, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
	out[2 * n] = '\0';
}

static bool load_and_open(struct ctx *c)
{
	int err;

	c->load.before = now_ns();
	err = load_module(c->module_path);
	c->load.after = now_ns();
	if (!check(err == 0, "insmod %s", c->module_path)) {
		diag("finit_module: %s", strerror(err));
		return false;
	}
	err = gpu_kmod_open(&c->km, NULL);
	if (!check(err == TALLY_OK, "gpu_kmod_open checks the ABI version")) {
		diag("gpu_kmod_open: %s (errno %d)", tally_strerror(err),
		     c->km.last_errno);
		return false;
	}
	return true;
}

/* The daemon's BDF parser, on the spellings sysfs and libvirt use. */
static void test_bdf_text(void)
{
	struct tallymeter_bdf b;
	char text[GPU_KMOD_BDF_LEN];

	check(gpu_kmod_parse_bdf("0000:3B:1f.7", &b) == TALLY_OK &&
	      b.domain == 0 && b.bus == 0x3b && b.devfn == (0x1f << 3 | 7) &&
	      (gpu_kmod_format_bdf(&b, text), !strcmp(text, "0000:3b:1f.7")),
	      "gpu_kmod_parse_bdf and gpu_kmod_format_bdf round-trip");
	check(gpu_kmod_parse_bdf("10000:e1:00.0", &b) == TALLY_OK &&
	      b.domain == 0x10000 &&
	      (gpu_kmod_format_bdf(&b, text), !strcmp(text, "10000:e1:00.0")),
	      "a VMD domain above 0xffff parses and formats");
	check(gpu_kmod_parse_bdf("0000:00:20.0", &b) == TALLY_E_RANGE &&
	      gpu_kmod_parse_bdf("0000:00:01.8", &b) == TALLY_E_RANGE,
	      "slot 0x20 and function 8 are out of range");
	check(gpu_kmod_parse_bdf("000:00:01.0", &b) == TALLY_E_INVALID &&
	      gpu_kmod_parse_bdf("0000:00:01.0 ", &b) == TALLY_E_INVALID &&
	      gpu_kmod_parse_bdf("0000:0:01.0", &b) == TALLY_E_INVALID &&
	      gpu_kmod_parse_bdf("0000-00:01.0", &b) == TALLY_E_INVALID &&
	      gpu_kmod_parse_bdf("000000000:00:01.0", &b) == TALLY_E_INVALID &&
	      gpu_kmod_parse_bdf("", &b) == TALLY_E_INVALID,
	      "malformed BDF text is refused");
}

static void test_load(struct ctx *c, unsigned int tracked)
{
	struct tallymeter_version v;
	struct tallymeter_dev *devs = NULL, *vga = NULL;
	struct tallymeter_list req;
	struct stat st;
	size_t n = 0;
	char buf[128];

	check(stat(TALLYMETER_DEVICE_PATH, &st) == 0 && S_ISCHR(st.st_mode) &&
	      (st.st_mode & 07777) == 0600 && st.st_uid == 0,
	      "/dev/tallymeter is a character device, mode 0600, owned by root");

	memset(&v, 0xff, sizeof(v));
	check(raw_ioctl(c->km.fd, TALLYMETER_IOC_VERSION, &v) == 0 &&
	      v.abi_version == TALLYMETER_ABI_VERSION &&
	      v.dev_size == sizeof(struct tallymeter_dev) &&
	      v.reserved[0] == 0 && v.reserved[1] == 0,
	      "VERSION reports ABI %u and a %zu-byte device record",
	      TALLYMETER_ABI_VERSION, sizeof(struct tallymeter_dev));
	check(in_window("loaded_ns", c->km.loaded_ns, c->load.before,
			c->load.after),
	      "loaded_ns is the load time on the guest's CLOCK_BOOTTIME");

	check(gpu_kmod_list(&c->km, &devs, &n) == TALLY_OK && n == tracked,
	      "LIST has every display/accelerator device present at load (%u)",
	      tracked);
	for (size_t i = 0; i < n; i++)
		if (!memcmp(&devs[i].bdf, &c->bdf, sizeof(c->bdf)))
			vga = &devs[i];
	check(vga && vga->class_code == VGA_CLASS && vga->vendor != 0 &&
	      !(vga->flags & TALLYMETER_DEV_VFIO) && vga->driver[0] == '\0' &&
	      vga->assigned_ns == 0 && vga->bound_since_ns == 0,
	      "the VGA device %s (class 0x%06x) is listed, unbound, with 0 ns",
	      c->bdf_text, VGA_CLASS);
	free(devs);

	memset(&req, 0, sizeof(req));
	req.entry_size = sizeof(struct tallymeter_dev);
	check(raw_ioctl(c->km.fd, TALLYMETER_IOC_LIST, &req) == E2BIG &&
	      req.count == tracked,
	      "LIST with capacity 0 fails with E2BIG and says how many fit");

	check(strcmp(sysfs_str(c->bdf_text, "class", buf, sizeof(buf)),
		     "0x030000") == 0 &&
	      sysfs_u64(c->bdf_text, "assigned_ns") == 0 &&
	      strcmp(sysfs_str(c->bdf_text, "vfio", buf, sizeof(buf)), "0") == 0,
	      SYSFS_ROOT "/%s shows class, vfio 0 and assigned_ns 0",
	      c->bdf_text);
}

static void test_cycles(struct ctx *c)
{
	struct tallymeter_dev d, before;
	struct bracket bind1, unbind1, bind2, unbind2, attach;
	char buf[128], want[2 * TALLYMETER_LEASE_ID_LEN + 1];
	uint64_t total1, lease1;
	int err;

	err = bind_vfio(c->bdf_text, &bind1);
	check(err == 0 && !strcmp(pci_driver(c->bdf_text, buf, sizeof(buf)),
				  "vfio-pci"),
	      "driver_override + drivers_probe bind %s to vfio-pci",
	      c->bdf_text);
	check(read_dev(c, &d) && (d.flags & TALLYMETER_DEV_VFIO) &&
	      !strcmp(d.driver, "vfio-pci") &&
	      in_window("bound_since_ns", d.bound_since_ns, bind1.before,
			bind1.after),
	      "READ: bound to vfio-pci since the moment of the bind");
	check(!strcmp(sysfs_str(c->bdf_text, "driver", buf, sizeof(buf)),
		      "vfio-pci") &&
	      !strcmp(sysfs_str(c->bdf_text, "vfio", buf, sizeof(buf)), "1"),
	      "sysfs driver and vfio follow the bind");

	attach.before = now_ns();
	err = gpu_kmod_attach(&c->km, &c->bdf, c->lease_a);
	attach.after = now_ns();
	check(err == TALLY_OK, "ATTACH lease A");
	hex(c->lease_a, sizeof(c->lease_a), want);
	check(read_dev(c, &d) && (d.flags & TALLYMETER_DEV_LEASED) &&
	      !memcmp(d.lease_id, c->lease_a, sizeof(c->lease_a)) &&
	      in_window("lease_since_ns", d.lease_since_ns, attach.before,
			attach.after) &&
	      !strcmp(sysfs_str(c->bdf_text, "lease", buf, sizeof(buf)), want),
	      "lease A reads back through READ and sysfs");
	check(gpu_kmod_attach(&c->km, &c->bdf, c->lease_a) == TALLY_OK,
	      "ATTACH of the lease already attached is a no-op");
	err = gpu_kmod_attach(&c->km, &c->bdf, c->lease_b);
	check(err == TALLY_E_EXISTS && c->km.last_errno == EBUSY,
	      "ATTACH of another lease while A is attached is EBUSY");

	sleep_ms(300);
	before = d;
	err = unbind(c->bdf_text, &unbind1);
	check(err == 0 && pci_driver(c->bdf_text, buf, sizeof(buf))[0] == '\0',
	      "unbind from vfio-pci");
	check(read_dev(c, &d) && !(d.flags & TALLYMETER_DEV_VFIO) &&
	      d.driver[0] == '\0' && d.bound_since_ns == 0 &&
	      in_window("assigned_ns after cycle 1", d.assigned_ns,
			unbind1.before - bind1.after,
			unbind1.after - bind1.before),
	      "assigned_ns matches the guest clock over bind..unbind");
	check(d.assigned_ns == sysfs_u64(c->bdf_text, "assigned_ns"),
	      "sysfs assigned_ns equals READ's once unbound");
	check(in_window("lease_ns after cycle 1", d.lease_ns,
			unbind1.before - attach.after,
			unbind1.after - attach.before),
	      "lease_ns counts the assignment since the attach");
	check(d.generation > before.generation,
	      "the change counter moved on the unbind");
	total1 = d.assigned_ns;
	lease1 = d.lease_ns;

	sleep_ms(200);
	check(read_dev(c, &d) && d.assigned_ns == total1 &&
	      d.lease_ns == lease1,
	      "no time accrues while unbound");

	err = bind_vfio(c->bdf_text, &bind2);
	sleep_ms(200);
	err = err ? err : unbind(c->bdf_text, &unbind2);
	check(err == 0 && read_dev(c, &d) &&
	      in_window("cycle 2 increment", d.assigned_ns - total1,
			unbind2.before - bind2.after,
			unbind2.after - bind2.before),
	      "a second bind/unbind cycle adds its own interval to the total");
	check(d.lease_ns - lease1 == d.assigned_ns - total1 &&
	      !memcmp(d.lease_id, c->lease_a, sizeof(c->lease_a)),
	      "lease A stays attached and its counter grows by the same");

	err = gpu_kmod_detach(&c->km, &c->bdf, c->lease_b);
	check(err == TALLY_E_NOTFOUND && c->km.last_errno == ENOENT,
	      "DETACH of a lease that is not attached is ENOENT");
	check(gpu_kmod_detach(&c->km, &c->bdf, c->lease_a) == TALLY_OK &&
	      read_dev(c, &d) && !(d.flags & TALLYMETER_DEV_LEASED) &&
	      d.lease_ns == 0 && d.lease_since_ns == 0 &&
	      d.lease_id[0] == 0 && d.assigned_ns >= total1 &&
	      sysfs_str(c->bdf_text, "lease", buf, sizeof(buf))[0] == '\0',
	      "DETACH of lease A clears it and keeps the total");
	check(gpu_kmod_attach(&c->km, &c->bdf, c->lease_b) == TALLY_OK &&
	      read_dev(c, &d) && d.lease_ns == 0 &&
	      !memcmp(d.lease_id, c->lease_b, sizeof(c->lease_b)) &&
	      gpu_kmod_detach(&c->km, &c->bdf, c->lease_b) == TALLY_OK,
	      "a new lease starts its counter at zero");
}

static void test_bad_ioctls(struct ctx *c)
{
	struct tallymeter_list list;
	struct tallymeter_read rd;
	struct tallymeter_lease ls;
	struct tallymeter_dev one[8];
	char small[16] = { 0 };
	int fd = c->km.fd;

	check(raw_ioctl(fd, _IO(TALLYMETER_IOC_MAGIC, 0x7f), NULL) == ENOTTY &&
	      raw_ioctl(fd, TCGETS, small) == ENOTTY,
	      "an unknown command is ENOTTY");
	check(raw_ioctl(fd, _IOWR(TALLYMETER_IOC_MAGIC, 0x02, small), small) ==
	      ENOTTY,
	      "READ's number with a short argument size is ENOTTY");

	memset(&list, 0, sizeof(list));
	list.capacity = 8;
	list.devs = (uintptr_t)one;
	list.entry_size = sizeof(struct tallymeter_dev) - 8;
	check(raw_ioctl(fd, TALLYMETER_IOC_LIST, &list) == EINVAL,
	      "LIST with a short entry_size is EINVAL");
	list.entry_size = sizeof(struct tallymeter_dev);
	check(raw_ioctl(fd, TALLYMETER_IOC_LIST, &list) == 0,
	      "the same LIST with the right entry_size succeeds");
	list.reserved[1] = 1;
	check(raw_ioctl(fd, TALLYMETER_IOC_LIST, &list) == EINVAL,
	      "LIST with a non-zero reserved field is EINVAL");
	list.reserved[1] = 0;
	list.pad = 1;
	check(raw_ioctl(fd, TALLYMETER_IOC_LIST, &list) == EINVAL,
	      "LIST with non-zero padding is EINVAL");

	memset(&rd, 0, sizeof(rd));
	rd.bdf = c->bdf;
	rd.reserved[2] = 1;
	check(raw_ioctl(fd, TALLYMETER_IOC_READ, &rd) == EINVAL,
	      "READ with a non-zero reserved field is EINVAL");
	rd.reserved[2] = 0;
	rd.bdf.pad = 1;
	check(raw_ioctl(fd, TALLYMETER_IOC_READ, &rd) == EINVAL,
	      "READ with non-zero BDF padding is EINVAL");
	memset(&ls, 0, sizeof(ls));
	ls.bdf = c->bdf;
	memcpy(ls.lease_id, c->lease_a, sizeof(ls.lease_id));
	ls.reserved[0] = 1;
	check(raw_ioctl(fd, TALLYMETER_IOC_ATTACH, &ls) == EINVAL &&
	      raw_ioctl(fd, TALLYMETER_IOC_DETACH, &ls) == EINVAL,
	      "ATTACH and DETACH with a non-zero reserved field are EINVAL");
	ls.reserved[0] = 0;
	memset(ls.lease_id, 0, sizeof(ls.lease_id));
	check(raw_ioctl(fd, TALLYMETER_IOC_ATTACH, &ls) == EINVAL,
	      "ATTACH of an all-zero lease id is EINVAL");

	memset(&rd, 0, sizeof(rd));
	rd.bdf.domain = 0x10000;
	rd.bdf.devfn = c->bdf.devfn;
	check(raw_ioctl(fd, TALLYMETER_IOC_READ, &rd) == ENODEV,
	      "READ of the VGA slot in absent domain 0x10000 is ENODEV");
	rd.bdf.domain = 0;
	rd.bdf.bus = 0xfe;
	rd.bdf.devfn = 0xff;
	check(raw_ioctl(fd, TALLYMETER_IOC_READ, &rd) == ENODEV,
	      "READ of an untracked BDF (0000:fe:1f.7) is ENODEV");
	ls.bdf = rd.bdf;
	memcpy(ls.lease_id, c->lease_a, sizeof(ls.lease_id));
	check(raw_ioctl(fd, TALLYMETER_IOC_ATTACH, &ls) == ENODEV,
	      "ATTACH to an untracked BDF is ENODEV");
	check(gpu_kmod_read(&c->km, &rd.bdf, &rd.dev) == TALLY_E_NOTFOUND,
	      "gpu_kmod_read maps an untracked BDF to TALLY_E_NOTFOUND");

	check(raw_ioctl(fd, TALLYMETER_IOC_VERSION, NULL) == EFAULT &&
	      raw_ioctl(fd, TALLYMETER_IOC_READ, NULL) == EFAULT &&
	      raw_ioctl(fd, TALLYMETER_IOC_ATTACH, NULL) == EFAULT &&
	      raw_ioctl(fd, TALLYMETER_IOC_LIST, NULL) == EFAULT,
	      "a NULL argument is EFAULT");
	memset(&list, 0, sizeof(list));
	list.capacity = 8;
	list.entry_size = sizeof(struct tallymeter_dev);
	check(raw_ioctl(fd, TALLYMETER_IOC_LIST, &list) == EFAULT,
	      "LIST into a NULL devs pointer is EFAULT");
}

/* Remove the device while it is assigned, then let a rescan bring it back. */
static void test_hotplug(struct ctx *c)
{
	struct tallymeter_dev d;
	struct bracket bind, gone;
	char path[256];
	uint64_t total0, total1;

	if (!read_dev(c, &d))
		return;
	total0 = d.assigned_ns;
	bind_vfio(c->bdf_text, &bind);
	snprintf(path, sizeof(path), PCI_DEVICES "/%s/remove", c->bdf_text);
	gone.before = now_ns();
	write_file(path, "1");
	gone.after = now_ns();
	check(!exists(path) && read_dev(c, &d) &&
	      (d.flags & TALLYMETER_DEV_GONE) &&
	      !(d.flags & TALLYMETER_DEV_VFIO) &&
	      in_window("assigned_ns at removal", d.assigned_ns - total0,
			gone.before - bind.after, gone.after - bind.before),
	      "removing the assigned device ends its assignment and marks it gone");
	total1 = d.assigned_ns;
	check(gpu_kmod_attach(&c->km, &c->bdf, c->lease_a) == TALLY_E_NOTFOUND,
	      "ATTACH to a removed device is ENODEV");

	write_file("/sys/bus/pci/rescan", "1");
	check(exists(path) && read_dev(c, &d) &&
	      !(d.flags & (TALLYMETER_DEV_GONE | TALLYMETER_DEV_VFIO)) &&
	      d.assigned_ns == total1 && d.class_code == VGA_CLASS &&
	      sysfs_u64(c->bdf_text, "assigned_ns") == total1,
	      "after a rescan the device is back with its total kept");
}

static void test_unload_reload(struct ctx *c)
{
	struct tallymeter_dev d;
	struct bracket bind, unb;
	struct gpu_kmod absent;
	uint64_t old_loaded = c->km.loaded_ns;
	char buf[64];
	int err;

	err = bind_vfio(c->bdf_text, &bind);
	err = err ? err : gpu_kmod_attach(&c->km, &c->bdf, c->lease_a);
	check(err == 0, "bind %s again and attach lease A", c->bdf_text);
	gpu_kmod_close(&c->km);
	err = unload_module();
	check(err == 0, "rmmod while %s is bound to vfio-pci and leased",
	      c->bdf_text);
	if (err)
		diag("delete_module: %s", strerror(err));
	check(!exists(TALLYMETER_DEVICE_PATH) && !exists(SYSFS_ROOT) &&
	      !strcmp(pci_driver(c->bdf_text, buf, sizeof(buf)), "vfio-pci"),
	      "the device node and sysfs tree are gone, the device stays bound");
	err = gpu_kmod_open(&absent, NULL);
	check(err == TALLY_E_NOTFOUND,
	      "gpu_kmod_open without the module is TALLY_E_NOTFOUND");

	if (!load_and_open(c))
		return;
	check(c->km.loaded_ns != old_loaded,
	      "loaded_ns tells the daemon the counters restarted");
	check(read_dev(c, &d) && (d.flags & TALLYMETER_DEV_VFIO) &&
	      !(d.flags & TALLYMETER_DEV_LEASED) &&
	      in_window("bound_since_ns after reload", d.bound_since_ns,
			c->load.before, c->load.after),
	      "after reload the bound device is found assigned since the load");
	err = unbind(c->bdf_text, &unb);
	check(err == 0 && read_dev(c, &d) &&
	      in_window("assigned_ns after reload", d.assigned_ns,
			unb.before - c->load.after,
			unb.after - c->load.before),
	      "the reloaded module counts from its load to the unbind");
	gpu_kmod_close(&c->km);
	err = unload_module();
	check(err == 0 && !exists(SYSFS_ROOT), "final rmmod");
}

/* Any warning, oops or refcount complaint in the kernel log is a failure. */
static void test_kernel_log(void)
{
	static char log[1 << 20];
	static const char *const bad[] = {
		"WARNING:", "BUG:", "Oops", "refcount_t", "kobject:", "tallymeter: out of"
	};
	int n = klogctl(3 /* SYSLOG_ACTION_READ_ALL */, log, sizeof(log) - 1);
	bool clean = n >= 0;

	if (n >= 0)
		log[n] = '\0';
	for (const char *line = n >= 0 ? log : NULL; line && *line;) {
		const char *eol = strchrnul(line, '\n');
		int len = (int)(eol - line);

		if (memmem(line, len, "vfio", 4) ||
		    memmem(line, len, "tallymeter", 10))
			diag("dmesg: %.*s", len, line);
		line = *eol ? eol + 1 : eol;
	}
	for (size_t i = 0; clean && i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *hit = strstr(log, bad[i]);

		if (hit) {
			const char *eol = strchr(hit, '\n');

			diag("kernel log: %.*s", eol ? (int)(eol - hit) : 120,
			     hit);
			clean = false;
		}
	}
	check(clean, "the kernel log has no warning, oops or kobject complaint");
}

int main(int argc, char **argv)
{
	struct ctx c;
	unsigned int tracked;

	if (argc != 2) {
		fprintf(stderr, "usage: %s tallymeter.ko\n", argv[0]);
		return 2;
	}
	memset(&c, 0, sizeof(c));
	c.module_path = argv[1];
	for (size_t i = 0; i < TALLYMETER_LEASE_ID_LEN; i++) {
		c.lease_a[i] = (uint8_t)(0xa0 + i);
		c.lease_b[i] = (uint8_t)(0x0b + 3 * i);
	}

	if (scan_pci(c.bdf_text, &tracked) ||
	    gpu_kmod_parse_bdf(c.bdf_text, &c.bdf)) {
		printf("Bail out! no PCI device of class 0x%06x in the guest\n",
		       VGA_CLASS);
		return 1;
	}
	diag("VGA device %s, %u display/accelerator devices", c.bdf_text,
	     tracked);

	test_bdf_text();
	if (load_and_open(&c)) {
		test_load(&c, tracked);
		test_cycles(&c);
		test_bad_ioctls(&c);
		test_hotplug(&c);
		test_unload_reload(&c);
	}
	test_kernel_log();

	printf("1..%d\n", tests_run);
	fflush(stdout);
	tcdrain(STDOUT_FILENO);
	return tests_failed ? 1 : 0;
}
