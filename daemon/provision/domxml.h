/* Domain XML for a lease, and the tally metadata it carries.
 *
 * Written and read with libxml2, so that text from a contract or the
 * catalogue is escaped by the library and the metadata reader is the
 * inverse of its writer (one attribute table serves both). No libvirt calls:
 * it can be checked on its own. The metadata element holds what reconcile
 * needs to adopt a running domain after a restart without any state of its
 * own:
 *
 *     <tally:lease xmlns:tally="https://tally.dev/xmlns/lease/1"
 *                  id="<64 hex>" image="tiny" disk-gib="1"
 *                  gpus="0000:65:00.0 ..." ssh-port="22001" hostname="web-1"/>
 *
 * (ssh-port is 0 without a forwarded port; ssh-port and hostname are absent
 * on domains made before they existed, which reads as 0 and "".)
 *
 * User-mode networking is QEMU's own (slirp) netdev, passed through libvirt's
 * <qemu:commandline>, because it carries the host port forward to the guest's
 * port 22 (hostfwd) and the "restrict" switch that keeps a guest from opening
 * connections out. libvirt's own forward for user networking, the passt
 * backend with <portForward>, does not parse in libvirt 9.0 (Debian 12,
 * libvirt issue 462); docs/OPERATING.md says more. */
#ifndef TALLY_PROVISION_DOMXML_H
#define TALLY_PROVISION_DOMXML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/provision/catalogue.h"

#define DOMXML_QEMU_NS "http://libvirt.org/schemas/domain/qemu/1.0"

struct pci_addr {
	unsigned domain, bus, slot, function;
};

/* Strict "dddd:bb:ss.f" (lowercase or uppercase hex). 0 or TALLY_E_INVALID. */
int pci_addr_parse(const char *s, struct pci_addr *a);
/* libvirt's node device name for it: "pci_dddd_bb_ss_f". */
void pci_addr_nodedev_name(const struct pci_addr *a, char out[32]);

/* What the metadata element says. */
/* A domain's owner: the public key (lowercase hex) of the node that made it,
 * so that a node sharing the host and the name prefix leaves it alone. */
#define PROV_OWNER_LEN 64
bool domxml_owner_valid(const char *s);

struct domxml_lease_meta {
	uint8_t lease_id[LEASE_ID_LEN];
	char image[IMAGE_NAME_MAX + 1];
	uint32_t disk_gib;
	size_t n_gpus;
	char gpus[PROV_GPUS_MAX][PROV_PCI_ADDR_LEN + 1];
	uint16_t ssh_port;                        /* 0: none */
	char hostname[HOSTNAME_MAX + 1];          /* what the seed set */
	char owner[PROV_OWNER_LEN + 1];           /* the node that made it; "": not recorded */
};

struct domxml_params {
	const char *name;
	uint8_t uuid[16];                         /* random, made by the caller */
	struct domxml_lease_meta meta;            /* written as the metadata */
	enum prov_domain_type type;
	uint32_t vcpus;
	uint32_t memory_mib;
	const struct prov_image *image;
	const char *disk_path;                    /* the lease's disk, or NULL */
	const char *seed_path;                    /* NoCloud seed, or NULL */
	const char *console_log;
	enum prov_net_mode net;
	/* user mode: where meta.ssh_port listens on the host, and whether the
	 * guest may open connections out */
	const char *forward_address;
	bool guest_outbound;
};

/* *out is malloc'd (free it). 0, TALLY_E_NOMEM, or TALLY_E_INVALID (a bad
 * GPU address, or a forwarded port without a forward address). */
int domxml_build(const struct domxml_params *p, char **out);

/* Parses the element virDomainGetMetadata returns (libvirt drops its
 * namespace: <lease id=.../>). Strict: anything but one lease element, in
 * tally's namespace or none, with exactly the attributes above, each well
 * formed, is TALLY_E_ENCODING. */
int domxml_parse_meta(const char *xml, struct domxml_lease_meta *m);

#endif
