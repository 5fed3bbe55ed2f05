#include "daemon/meter/gpu.h"

#include <stdio.h>
#include <string.h>

#include "lib/errors.h"

void gpu_meter_open(struct gpu_meter *g, const char *dev_path, char *note)
{
	int rc = gpu_kmod_open(&g->km, dev_path);

	g->have_kmod = rc == 0;
	if (rc == TALLY_E_NOTFOUND)
		snprintf(note, WHY_MAX, "tallymeter.ko is not loaded: GPUs are metered from "
			 "libvirt's hostdev lifecycle (records marked gpu_source=libvirt)");
	else if (rc)
		snprintf(note, WHY_MAX, "tallymeter.ko unusable (%s): GPUs are metered from "
			 "libvirt's hostdev lifecycle", tally_strerror(rc));
	else
		snprintf(note, WHY_MAX, "GPUs are metered by tallymeter.ko");
}

void gpu_meter_close(struct gpu_meter *g)
{
	if (g->have_kmod)
		gpu_kmod_close(&g->km);
	g->have_kmod = false;
}

int gpu_meter_attach(struct gpu_meter *g, const uint8_t lease_id[LEASE_ID_LEN],
		     const char (*addrs)[13], size_t n, char *why)
{
	struct tallymeter_bdf bdf;

	for (size_t i = 0; g->have_kmod && i < n; i++) {
		int rc = gpu_kmod_parse_bdf(addrs[i], &bdf);
		if (!rc)
			rc = gpu_kmod_attach(&g->km, &bdf, lease_id);
		if (rc) {
			snprintf(why, WHY_MAX, "GPU %s: cannot attach the lease in tallymeter: %s",
				 addrs[i], tally_strerror(rc));
			return rc;
		}
	}
	return 0;
}

void gpu_meter_detach(struct gpu_meter *g, const uint8_t lease_id[LEASE_ID_LEN],
		      const char (*addrs)[13], size_t n)
{
	struct tallymeter_bdf bdf;

	for (size_t i = 0; g->have_kmod && i < n; i++)
		if (!gpu_kmod_parse_bdf(addrs[i], &bdf))
			gpu_kmod_detach(&g->km, &bdf, lease_id);
}

int gpu_meter_lease_ns(struct gpu_meter *g, const uint8_t lease_id[LEASE_ID_LEN],
		       const char (*addrs)[13], size_t n, uint64_t running_ns,
		       uint64_t *ns, uint8_t *source)
{
	struct tallymeter_bdf bdf;
	struct tallymeter_dev dev;

	*ns = 0;
	*source = GPU_SOURCE_NONE;
	if (n == 0)
		return 0;
	if (!g->have_kmod) {
		*source = GPU_SOURCE_LIBVIRT;
		*ns = running_ns * n;
		return 0;
	}
	*source = GPU_SOURCE_KMOD;
	for (size_t i = 0; i < n; i++) {
		int rc = gpu_kmod_parse_bdf(addrs[i], &bdf);
		if (!rc)
			rc = gpu_kmod_read(&g->km, &bdf, &dev);
		if (rc)
			return rc;
		/* Only time while this lease was attached counts for it. */
		if (!memcmp(dev.lease_id, lease_id, LEASE_ID_LEN))
			*ns += dev.lease_ns;
	}
	return 0;
}
