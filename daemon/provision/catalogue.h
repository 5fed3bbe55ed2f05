/* What a node offers and the words its provisioner's parts share: the
 * image catalogue and GPU inventory of the operator's configuration, the
 * domain type and network mode, and their limits. Types only, so that the
 * domain XML writer (domxml) and the provisioner (provision) both build on
 * it without including each other. */
#ifndef TALLY_PROVISION_CATALOGUE_H
#define TALLY_PROVISION_CATALOGUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "contracts/contract.h"

#define PROV_XMLNS "https://tally.dev/xmlns/lease/1"
#define PROV_XMLNS_PREFIX "tally"
#define PROV_DEFAULT_URI "qemu:///system"
#define PROV_DEFAULT_PREFIX "tally-"
#define PROV_NAME_MAX 64          /* domain names, with their NUL */
#define PROV_PREFIX_MAX 40        /* name prefix, without its NUL */
#define PROV_PATH_MAX 1024
#define PROV_CMDLINE_MAX 1024
#define PROV_CLASS_MAX 64         /* GPU class names: [a-z0-9._-], with NUL */
#define PROV_IMAGE_CLASSES_MAX 8  /* GPU classes one image supports */
#define PROV_PCI_ADDR_LEN 12      /* "dddd:bb:ss.f" */
#define PROV_GPUS_MAX 16          /* GPUs one lease can hold */
#define PROV_USER_MAX 32           /* login user names, with their NUL */
#define PROV_ADDR_MAX 64           /* textual IP addresses, with their NUL */
#define PROV_HOST_KEYS_MAX 8       /* guest host keys read from the console */
#define PROV_LEASE_HEX_PREFIX 12  /* hex digits of the lease id in the name */

enum prov_domain_type {
	PROV_DOMAIN_KVM = 0,      /* production default */
	PROV_DOMAIN_QEMU = 1,     /* TCG: hosts where KVM can't run a normal guest */
};

enum prov_net_mode {
	PROV_NET_NAT = 0,         /* libvirt's "default" NAT network (made when missing) */
	PROV_NET_USER = 1,        /* QEMU user-mode (slirp) networking, with the SSH forward */
	PROV_NET_NONE = 2,        /* no NIC */
};

/* One entry of the operator's image catalogue. An image boots either from its
 * disk (disk_path set, kernel empty) or directly from a kernel + initrd
 * (kernel set); a kernel image may also name a base disk to overlay. */
struct prov_image {
	char name[IMAGE_NAME_MAX + 1];
	char disk_path[PROV_PATH_MAX];       /* base image; "" when none */
	char disk_format[16];                /* "qcow2" or "raw" */
	char kernel[PROV_PATH_MAX];          /* "" for disk-booted images */
	char initrd[PROV_PATH_MAX];
	char cmdline[PROV_CMDLINE_MAX];
	uint32_t min_memory_mib;
	char gpu_classes[PROV_IMAGE_CLASSES_MAX][PROV_CLASS_MAX];
	size_t n_gpu_classes;
	bool cloud_init;                     /* wants a NoCloud seed */
	char ssh_user[PROV_USER_MAX];        /* sshd on port 22 and cloud-init put the
					      * tenant's key for this user; "": none */
};

/* One GPU of the node's inventory. */
struct prov_gpu {
	char pci_addr[PROV_PCI_ADDR_LEN + 1]; /* "0000:65:00.0" */
	char class_name[PROV_CLASS_MAX];      /* e.g. "a100"; matched against images */
};

#endif
