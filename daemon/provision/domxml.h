/* Domain XML for a lease, and the tally metadata it carries.
 *
 * Pure string work: no libvirt calls, so it can be checked on its own. The
 * metadata element holds what reconcile needs to adopt a running domain
 * after a restart without any state of its own:
 *
 *     <tally:lease xmlns:tally="https://tally.dev/xmlns/lease/1"
 *                  id="<64 hex>" image="tiny" disk-gib="1" gpus="0000:65:00.0"/>
 */
#ifndef TALLY_PROVISION_DOMXML_H
#define TALLY_PROVISION_DOMXML_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "daemon/provision/provision.h"

struct pci_addr {
	unsigned domain, bus, slot, function;
};

/* Strict "dddd:bb:ss.f" (lowercase or uppercase hex). 0 or TALLY_E_INVALID. */
int pci_addr_parse(const char *s, struct pci_addr *a);
/* libvirt's node device name for it: "pci_dddd_bb_ss_f". */
void pci_addr_nodedev_name(const struct pci_addr *a, char out[32]);

struct domxml_params {
	const char *name;
	uint8_t uuid[16];                         /* random, made by the caller */
	const uint8_t *lease_id;                  /* LEASE_ID_LEN bytes */
	enum prov_domain_type type;
	uint32_t vcpus;
	uint32_t memory_mib;
	uint32_t disk_gib;
	const struct prov_image *image;
	const char *disk_path;                    /* the lease's disk, or NULL */
	const char *seed_path;                    /* NoCloud seed, or NULL */
	const char *console_log;
	enum prov_net_mode net;
	size_t n_gpus;
	const char (*gpus)[PROV_PCI_ADDR_LEN + 1];
};

/* *out is malloc'd. 0, TALLY_E_NOMEM or TALLY_E_INVALID (bad GPU address). */
int domxml_build(const struct domxml_params *p, char **out);

/* What the metadata element says. */
struct domxml_lease_meta {
	uint8_t lease_id[LEASE_ID_LEN];
	char image[IMAGE_NAME_MAX + 1];
	uint32_t disk_gib;
	size_t n_gpus;
	char gpus[PROV_GPUS_MAX][PROV_PCI_ADDR_LEN + 1];
};

/* Parses the element virDomainGetMetadata returns. Strict: a missing or
 * malformed id, image or GPU list is TALLY_E_ENCODING. */
int domxml_parse_meta(const char *xml, struct domxml_lease_meta *m);

/* Appends s to f with the five XML special characters escaped. */
void xml_put_escaped(FILE *f, const char *s);

#endif
