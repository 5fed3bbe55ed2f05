/* GPU time of a lease, from the best source this host has: tallymeter.ko's
 * assignment counters when the module is loaded, otherwise libvirt's hostdev
 * lifecycle (the VM holds its GPUs from its start), with every record marked
 * by its source (enum gpu_source). */
#ifndef TALLY_METER_GPU_H
#define TALLY_METER_GPU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "contracts/contract.h"
#include "daemon/meter/gpu_kmod.h"

struct gpu_meter {
	struct gpu_kmod km;
	bool have_kmod;
};

/* Never fails: without the module it falls back, and note[WHY_MAX] says so
 * (the caller logs it once). */
void gpu_meter_open(struct gpu_meter *g, const char *dev_path, char *note);
void gpu_meter_close(struct gpu_meter *g);

/* Tells the module which lease the VM's GPUs (PCI addresses) belong to. */
int gpu_meter_attach(struct gpu_meter *g, const uint8_t lease_id[LEASE_ID_LEN],
		     const char (*addrs)[13], size_t n, char *why);
void gpu_meter_detach(struct gpu_meter *g, const uint8_t lease_id[LEASE_ID_LEN],
		      const char (*addrs)[13], size_t n);

/* GPU time assigned to the lease since it started, summed over its GPUs.
 * running_ns is how long the VM has run (the fallback's measure). */
int gpu_meter_lease_ns(struct gpu_meter *g, const uint8_t lease_id[LEASE_ID_LEN],
		       const char (*addrs)[13], size_t n, uint64_t running_ns,
		       uint64_t *ns, uint8_t *source);

#endif
