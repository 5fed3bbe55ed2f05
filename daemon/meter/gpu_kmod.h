/* GPU assignment counters from tallymeter.ko, read through /dev/tallymeter.
 *
 * The module counts, per GPU-class PCI device, the nanoseconds it was bound
 * to vfio-pci and which lease tallyd said it belongs to. This file is the
 * daemon's only door to it: open and check the ABI version, list, read one
 * device, attach and detach a lease. When the module is not loaded,
 * gpu_kmod_open() returns TALLY_E_NOTFOUND so the meter can fall back to
 * libvirt hostdev timestamps (GPU_SOURCE_LIBVIRT). */
#ifndef TALLY_METER_GPU_KMOD_H
#define TALLY_METER_GPU_KMOD_H

#include <stddef.h>
#include <stdint.h>

#include "kmod/tallymeter_abi.h"

/* "dddddddd:bb:ss.f" and its NUL (the domain has 4 to 8 digits) */
#define GPU_KMOD_BDF_LEN 17

struct gpu_kmod {
	int fd;
	uint64_t loaded_ns;   /* changes when the module reloads: counters reset */
	int last_errno;       /* errno of the last failed call, for messages */
};

/* Opens the device (path NULL means TALLYMETER_DEVICE_PATH) and checks the
 * module's ABI version. TALLY_E_NOTFOUND: no module; TALLY_E_VERSION: a
 * module speaking another ABI; TALLY_E_IO: any other failure. */
int gpu_kmod_open(struct gpu_kmod *km, const char *path);
void gpu_kmod_close(struct gpu_kmod *km);

/* A snapshot of every tracked device in a malloc'd array the caller frees. */
int gpu_kmod_list(struct gpu_kmod *km, struct tallymeter_dev **devs,
		  size_t *count);

/* TALLY_E_NOTFOUND when the module does not track that address. */
int gpu_kmod_read(struct gpu_kmod *km, const struct tallymeter_bdf *bdf,
		  struct tallymeter_dev *out);

/* TALLY_E_EXISTS when another lease is attached (the same one is a no-op). */
int gpu_kmod_attach(struct gpu_kmod *km, const struct tallymeter_bdf *bdf,
		    const uint8_t lease_id[TALLYMETER_LEASE_ID_LEN]);

/* TALLY_E_NOTFOUND when that lease is not the one attached. */
int gpu_kmod_detach(struct gpu_kmod *km, const struct tallymeter_bdf *bdf,
		    const uint8_t lease_id[TALLYMETER_LEASE_ID_LEN]);

/* "0000:01:00.0" (sysfs and libvirt's spelling) to and from an address.
 * Parsing is strict: a domain of 4 to 8 hex digits (Intel VMD puts devices
 * in domains above 0xffff), 2-digit bus and slot, 1-digit function, nothing
 * else. TALLY_E_INVALID for another shape, TALLY_E_RANGE for slot > 0x1f or
 * function > 7. */
int gpu_kmod_parse_bdf(const char *text, struct tallymeter_bdf *bdf);
void gpu_kmod_format_bdf(const struct tallymeter_bdf *bdf,
			 char out[GPU_KMOD_BDF_LEN]);

#endif
