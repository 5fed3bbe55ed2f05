/* GPU assignment counters from tallymeter.ko (see gpu_kmod.h). */
#include "daemon/meter/gpu_kmod.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "lib/errors.h"

/* Devices can appear between sizing the buffer and filling it; a few
 * retries cover any real hotplug, and the bound keeps a bug from spinning. */
#define LIST_TRIES 8

static int err_from_errno(int e)
{
	switch (e) {
	case ENOMEM:
		return TALLY_E_NOMEM;
	case EINVAL:
		return TALLY_E_INVALID;
	case ENODEV:
	case ENOENT:
		return TALLY_E_NOTFOUND;
	case EBUSY:
		return TALLY_E_EXISTS;
	default:
		return TALLY_E_IO;
	}
}

static int km_ioctl(struct gpu_kmod *km, unsigned long cmd, void *arg)
{
	int rc;

	do
		rc = ioctl(km->fd, cmd, arg);
	while (rc < 0 && errno == EINTR);
	if (rc < 0) {
		km->last_errno = errno;
		return -1;
	}
	return 0;
}

int gpu_kmod_open(struct gpu_kmod *km, const char *path)
{
	struct tallymeter_version v;

	memset(km, 0, sizeof(*km));
	km->fd = open(path ? path : TALLYMETER_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	if (km->fd < 0) {
		km->last_errno = errno;
		/* ENXIO/ENODEV: a stale device node left after an unload. */
		if (errno == ENOENT || errno == ENXIO || errno == ENODEV)
			return TALLY_E_NOTFOUND;
		return TALLY_E_IO;
	}
	memset(&v, 0, sizeof(v));
	if (km_ioctl(km, TALLYMETER_IOC_VERSION, &v) < 0) {
		/* ENOTTY: the node is not tallymeter's at all. */
		int err = km->last_errno == ENOTTY ? TALLY_E_VERSION : TALLY_E_IO;

		gpu_kmod_close(km);
		return err;
	}
	if (v.abi_version != TALLYMETER_ABI_VERSION ||
	    v.dev_size < sizeof(struct tallymeter_dev)) {
		gpu_kmod_close(km);
		return TALLY_E_VERSION;
	}
	km->loaded_ns = v.loaded_ns;
	return TALLY_OK;
}

void gpu_kmod_close(struct gpu_kmod *km)
{
	if (km->fd >= 0)
		close(km->fd);
	km->fd = -1;
}

/* One LIST call; *count gets the module's count whether or not it fit. */
static int list_once(struct gpu_kmod *km, struct tallymeter_dev *buf,
		     uint32_t capacity, uint32_t *count)
{
	struct tallymeter_list req = {
		.capacity = capacity,
		.entry_size = sizeof(struct tallymeter_dev),
		.devs = (uint64_t)(uintptr_t)buf,
	};
	int rc = km_ioctl(km, TALLYMETER_IOC_LIST, &req);

	*count = req.count;
	if (rc < 0)
		return km->last_errno == E2BIG ? TALLY_E_CAPACITY :
		       err_from_errno(km->last_errno);
	return TALLY_OK;
}

int gpu_kmod_list(struct gpu_kmod *km, struct tallymeter_dev **devs,
		  size_t *count)
{
	struct tallymeter_dev *buf = NULL;
	uint32_t capacity = 0, n = 0;
	int err = TALLY_E_INTERNAL;

	for (int i = 0; i < LIST_TRIES; i++) {
		err = list_once(km, buf, capacity, &n);
		if (err != TALLY_E_CAPACITY)
			break;
		free(buf);
		capacity = n;
		buf = calloc(capacity, sizeof(*buf));
		if (!buf)
			return TALLY_E_NOMEM;
	}
	if (err) {
		free(buf);
		return err == TALLY_E_CAPACITY ? TALLY_E_INTERNAL : err;
	}
	*devs = buf;
	*count = n;
	return TALLY_OK;
}

int gpu_kmod_read(struct gpu_kmod *km, const struct tallymeter_bdf *bdf,
		  struct tallymeter_dev *out)
{
	struct tallymeter_read req;

	memset(&req, 0, sizeof(req));
	req.bdf = *bdf;
	if (km_ioctl(km, TALLYMETER_IOC_READ, &req) < 0)
		return err_from_errno(km->last_errno);
	*out = req.dev;
	return TALLY_OK;
}

static int lease_call(struct gpu_kmod *km, unsigned long cmd,
		      const struct tallymeter_bdf *bdf,
		      const uint8_t lease_id[TALLYMETER_LEASE_ID_LEN])
{
	struct tallymeter_lease req;

	memset(&req, 0, sizeof(req));
	req.bdf = *bdf;
	memcpy(req.lease_id, lease_id, TALLYMETER_LEASE_ID_LEN);
	if (km_ioctl(km, cmd, &req) < 0)
		return err_from_errno(km->last_errno);
	return TALLY_OK;
}

int gpu_kmod_attach(struct gpu_kmod *km, const struct tallymeter_bdf *bdf,
		    const uint8_t lease_id[TALLYMETER_LEASE_ID_LEN])
{
	return lease_call(km, TALLYMETER_IOC_ATTACH, bdf, lease_id);
}

int gpu_kmod_detach(struct gpu_kmod *km, const struct tallymeter_bdf *bdf,
		    const uint8_t lease_id[TALLYMETER_LEASE_ID_LEN])
{
	return lease_call(km, TALLYMETER_IOC_DETACH, bdf, lease_id);
}

/* Reads min to max hex digits, as many as there are. */
static int parse_hex(const char **p, int min, int max, unsigned int *out)
{
	unsigned int v = 0;
	int n = 0;

	for (; n < max && isxdigit((unsigned char)(*p)[n]); n++) {
		int c = (unsigned char)(*p)[n];

		v = v * 16 + (unsigned int)(isdigit(c) ? c - '0' :
					    tolower(c) - 'a' + 10);
	}
	if (n < min || isxdigit((unsigned char)(*p)[n]))
		return TALLY_E_INVALID;
	*p += n;
	*out = v;
	return TALLY_OK;
}

static int expect(const char **p, char c)
{
	if (**p != c)
		return TALLY_E_INVALID;
	(*p)++;
	return TALLY_OK;
}

int gpu_kmod_parse_bdf(const char *text, struct tallymeter_bdf *bdf)
{
	unsigned int domain, bus, slot, func;
	const char *p = text;

	if (parse_hex(&p, 4, 8, &domain) || expect(&p, ':') ||
	    parse_hex(&p, 2, 2, &bus) || expect(&p, ':') ||
	    parse_hex(&p, 2, 2, &slot) || expect(&p, '.') ||
	    parse_hex(&p, 1, 1, &func) || *p != '\0')
		return TALLY_E_INVALID;
	if (slot > 0x1f || func > 7)
		return TALLY_E_RANGE;
	memset(bdf, 0, sizeof(*bdf));
	bdf->domain = domain;
	bdf->bus = (uint8_t)bus;
	bdf->devfn = (uint8_t)(slot << 3 | func);
	return TALLY_OK;
}

void gpu_kmod_format_bdf(const struct tallymeter_bdf *bdf,
			 char out[GPU_KMOD_BDF_LEN])
{
	snprintf(out, GPU_KMOD_BDF_LEN, "%04x:%02x:%02x.%x",
		 (unsigned int)bdf->domain, bdf->bus,
		 bdf->devfn >> 3, bdf->devfn & 7);
}
