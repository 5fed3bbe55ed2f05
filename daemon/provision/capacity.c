/* Inventory and reservation: whether the host can hold one more lease.
 *
 * CPUs and memory come from libvirt (virNodeGetInfo, virNodeGetMemoryStats)
 * scaled by the node's overcommit ratios and capped by [provider] vcpus and
 * memory_mib (prov_host_capacity: the node announces the same totals); what
 * tally's own leases already hold is subtracted. GPUs come from the node's inventory, each checked
 * against libvirt's node devices so that a GPU the configuration lists but
 * the host does not have is never handed out. A forwarded SSH port comes from
 * the node's range: one no lease holds and nothing else on the host is
 * bound to right now. */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/provision/domxml.h"
#include "daemon/provision/provision_impl.h"
#include "lib/errors.h"

struct held {
	uint64_t vcpus;
	uint64_t memory_mib;
};

static struct held held_by_leases(const struct prov *p)
{
	struct held h = { 0, 0 };

	for (const struct prov_lease *l = p->leases; l; l = l->next) {
		h.vcpus += l->vm.vcpus;
		h.memory_mib += l->vm.memory_mib;
	}
	return h;
}

static uint32_t scaled(uint64_t host, double overcommit, uint32_t max)
{
	double v = floor((double)host * overcommit);
	uint32_t n = v >= (double)UINT32_MAX ? UINT32_MAX : (uint32_t)v;

	return max && max < n ? max : n;
}

int prov_host_capacity(struct prov *p, struct prov_capacity *c, char *why)
{
	virNodeInfo ni;

	if (virNodeGetInfo(prov_conn(p), &ni) < 0)
		return why_set(why, TALLY_E_INTERNAL, "cannot read the host's CPUs and memory: %s",
				 prov_virt_error());
	c->host_cpus = ni.cpus;
	c->host_memory_mib = ni.memory / 1024;   /* KiB -> MiB */
	c->vcpus = scaled(c->host_cpus, p->cfg.cpu_overcommit, p->cfg.max_vcpus);
	c->memory_mib = scaled(c->host_memory_mib, p->cfg.mem_overcommit, p->cfg.max_memory_mib);
	return 0;
}

/* ", at most N ([provider] KEY)" when the configuration's cap binds, into buf[64]. */
static const char *capped(char *buf, uint32_t cap, uint32_t max, const char *key)
{
	buf[0] = 0;
	if (max && cap == max)
		snprintf(buf, 64, ", at most %u ([provider] %s)", max, key);
	return buf;
}

static int check_cpus(const struct prov *p, const struct prov_capacity *c, const struct held *h,
		      uint32_t want, char *why)
{
	uint64_t room = c->vcpus > h->vcpus ? c->vcpus - h->vcpus : 0;
	char note[64];

	if (want <= room)
		return 0;
	return why_set(why, TALLY_E_CAPACITY,
			 "lease needs %u vCPUs but the host can hold %llu more "
			 "(%u host CPUs x overcommit %.1f%s, %llu in use)",
			 want, (unsigned long long)room, c->host_cpus, p->cfg.cpu_overcommit,
			 capped(note, c->vcpus, p->cfg.max_vcpus, "vcpus"),
			 (unsigned long long)h->vcpus);
}

/* Memory the host could give a new guest now, in bytes: free memory plus
 * buffers and page cache, which the kernel drops under pressure (libvirt's
 * node memory statistics, all NUMA cells; free alone counts a host whose
 * cache holds a recent image build as full). 0 when libvirt cannot say. */
static unsigned long long available_bytes(const struct prov *p)
{
	virNodeMemoryStatsPtr st = NULL;
	int n = 0;
	unsigned long long kib = 0;

	if (virNodeGetMemoryStats(prov_conn(p), VIR_NODE_MEMORY_STATS_ALL_CELLS, NULL, &n, 0) < 0 ||
	    n <= 0 || !(st = calloc((size_t)n, sizeof(*st))))
		return 0;
	if (virNodeGetMemoryStats(prov_conn(p), VIR_NODE_MEMORY_STATS_ALL_CELLS, st, &n, 0) == 0) {
		for (int i = 0; i < n; i++)
			if (!strcmp(st[i].field, VIR_NODE_MEMORY_STATS_FREE) ||
			    !strcmp(st[i].field, VIR_NODE_MEMORY_STATS_BUFFERS) ||
			    !strcmp(st[i].field, VIR_NODE_MEMORY_STATS_CACHED))
				kib += st[i].value;
	}
	free(st);
	return kib * 1024;
}

static int check_memory(const struct prov *p, const struct prov_capacity *c,
			const struct held *h, uint32_t want, char *why)
{
	uint64_t room = c->memory_mib > h->memory_mib ? c->memory_mib - h->memory_mib : 0;
	unsigned long long free_bytes;
	char note[64];

	if (want > room)
		return why_set(why, TALLY_E_CAPACITY,
				 "lease needs %u MiB of memory but the host can hold %llu MiB more "
				 "(%llu MiB x overcommit %.1f%s, %llu MiB in use)",
				 want, (unsigned long long)room,
				 (unsigned long long)c->host_memory_mib, p->cfg.mem_overcommit,
				 capped(note, c->memory_mib, p->cfg.max_memory_mib, "memory_mib"),
				 (unsigned long long)h->memory_mib);
	/* Without overcommit the memory must also be free right now: other
	 * processes on the host use memory tally does not account for. */
	if (p->cfg.mem_overcommit > 1.0)
		return 0;
	free_bytes = available_bytes(p);
	if (free_bytes == 0)
		return why_set(why, TALLY_E_INTERNAL, "cannot read the host's free memory: %s",
				 prov_virt_error());
	if ((unsigned long long)want * 1024 * 1024 > free_bytes)
		return why_set(why, TALLY_E_CAPACITY,
				 "lease needs %u MiB of memory but the host has only %llu MiB free"
				 " (free, buffers and page cache)",
				 want, free_bytes / (1024 * 1024));
	return 0;
}

static bool image_takes_class(const struct prov_image *img, const char *cls)
{
	for (size_t i = 0; i < img->n_gpu_classes; i++)
		if (strcmp(img->gpu_classes[i], cls) == 0)
			return true;
	return false;
}

static bool gpu_held(const struct prov *p, const char *addr)
{
	for (const struct prov_lease *l = p->leases; l; l = l->next)
		for (size_t i = 0; i < l->n_gpus; i++)
			if (strcmp(l->gpus[i], addr) == 0)
				return true;
	return false;
}

static bool gpu_present(const struct prov *p, const char *addr)
{
	struct pci_addr a;
	char devname[32];
	virNodeDevicePtr dev;

	if (pci_addr_parse(addr, &a))
		return false;
	pci_addr_nodedev_name(&a, devname);
	dev = virNodeDeviceLookupByName(prov_conn(p), devname);
	if (!dev)
		return false;
	virNodeDeviceFree(dev);
	return true;
}

static int pick_gpus(struct prov *p, uint32_t want, const struct prov_image *img,
		     struct prov_lease *l, char *why)
{
	char missing[WHY_MAX / 2] = "";
	size_t mlen = 0, eligible = 0, held = 0, free_now;

	l->n_gpus = 0;
	if (want == 0)
		return 0;
	if (want > PROV_GPUS_MAX)
		return why_set(why, TALLY_E_INVALID, "lease asks for %u GPUs; at most %d fit one VM",
				 want, PROV_GPUS_MAX);
	if (img->n_gpu_classes == 0)
		return why_set(why, TALLY_E_CAPACITY,
				 "image '%s' supports no GPUs, but the lease asks for %u",
				 img->name, want);
	for (size_t i = 0; i < p->cfg.n_gpus && l->n_gpus < want; i++) {
		const struct prov_gpu *g = &p->gpus[i];

		if (!image_takes_class(img, g->class_name))
			continue;
		eligible++;
		if (gpu_held(p, g->pci_addr)) {
			held++;
			continue;
		}
		if (!gpu_present(p, g->pci_addr)) {
			mlen += (size_t)snprintf(missing + mlen, mlen < sizeof(missing) ?
						 sizeof(missing) - mlen : 0, "%s%s",
						 mlen ? ", " : "", g->pci_addr);
			continue;
		}
		strcpy(l->gpus[l->n_gpus++], g->pci_addr);
	}
	if (l->n_gpus == want)
		return 0;
	free_now = l->n_gpus;
	l->n_gpus = 0;
	return why_set(why, TALLY_E_CAPACITY,
			 "lease needs %u GPU%s for image '%s' but the host has %zu free "
			 "(the inventory holds %zu of the image's classes, %zu in use%s%s%s)",
			 want, want == 1 ? "" : "s", img->name, free_now, eligible, held,
			 mlen ? "; not present on this host: " : "", missing,
			 mlen >= sizeof(missing) ? "..." : "");
}

static bool port_held(const struct prov *p, uint16_t port)
{
	for (const struct prov_lease *l = p->leases; l; l = l->next)
		if (l->ssh_port == port)
			return true;
	return false;
}

/* Whether address:port can be bound now, as QEMU will bind it (with
 * SO_REUSEADDR, so a port in TIME_WAIT counts as free). */
static bool port_bindable(const char *address, uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	bool ok;

	if (fd < 0 || inet_pton(AF_INET, address, &sa.sin_addr) != 1) {
		if (fd >= 0)
			close(fd);
		return false;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	ok = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

static int pick_port(struct prov *p, const struct prov_image *img, struct prov_lease *l,
		     char *why)
{
	const struct prov_config *c = &p->cfg;
	unsigned held = 0, busy = 0;

	l->ssh_port = 0;
	if (c->net != PROV_NET_USER || !c->forward_port_min || !img->ssh_user[0])
		return 0;
	for (unsigned port = c->forward_port_min; port <= c->forward_port_max; port++) {
		if (port_held(p, (uint16_t)port)) {
			held++;
		} else if (!port_bindable(c->forward_address, (uint16_t)port)) {
			busy++;
		} else {
			l->ssh_port = (uint16_t)port;
			return 0;
		}
	}
	return why_set(why, TALLY_E_CAPACITY,
			 "no free port in the forward range %u-%u on %s (%u held by leases, %u in "
			 "use by other programs)", c->forward_port_min, c->forward_port_max,
			 c->forward_address, held, busy);
}

int prov_reserve(struct prov *p, const struct vm_spec *vm,
		 const struct prov_image *img, struct prov_lease *l, char *why)
{
	struct held h = held_by_leases(p);
	struct prov_capacity c;
	int err = prov_host_capacity(p, &c, why);

	if (!err)
		err = check_cpus(p, &c, &h, vm->vcpus, why);
	if (!err)
		err = check_memory(p, &c, &h, vm->memory_mib, why);
	if (!err)
		err = pick_gpus(p, vm->gpus, img, l, why);
	if (!err)
		err = pick_port(p, img, l, why);
	return err;
}
