/* The VM provisioner: turns a lease's VM spec into a libvirt domain and takes
 * it away again, leaving nothing behind.
 *
 * Everything goes through the libvirt C API (never virsh). Per lease it
 * makes, in the node's state directory:
 *
 *     <name>.qcow2        the lease's disk: a qcow2 overlay on the catalogue's
 *                         base image (or an empty qcow2 for kernel-only images)
 *     <name>.seed.iso     a cloud-init NoCloud seed (images that want one)
 *     <name>.console.log  the serial console log (archived on stop)
 *
 * In user network mode a lease of an image with a login user (ssh_user) gets
 * a port from the node's forward range, on its forward address, forwarded to
 * the guest's port 22; the port is free again when prov_stop drops the lease.
 *
 * where <name> is the domain name, <prefix><first 12 hex digits of the lease
 * id> (prefix "tally-" by default). The domain carries the lease id in its
 * metadata:
 *
 *     <tally:lease xmlns:tally="https://tally.dev/xmlns/lease/1" id="<64 hex>" .../>
 * (domxml.h).
 *
 * Overlays and the empty disks are made with `qemu-img create` and seeds with
 * `genisoimage`, run as subprocesses; libvirt itself is only ever used through
 * its API.
 *
 * Threads: one libvirt event loop thread per process runs lifecycle
 * callbacks. Every function below may be called from any thread; the event
 * callback runs on the event thread and must not call prov_* functions that
 * wait (prov_stop, prov_close). */
#ifndef TALLY_PROVISION_H
#define TALLY_PROVISION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "contracts/contract.h"
#include "daemon/provision/catalogue.h"

enum prov_event_kind {
	PROV_EV_STARTED = 1,              /* the domain is running */
	PROV_EV_STOPPED,                  /* tally stopped it (prov_stop) */
	PROV_EV_SHUTDOWN,                 /* the guest powered itself off */
	PROV_EV_CRASHED,                  /* guest panic or QEMU died: provider failure */
	PROV_EV_DESTROYED_EXTERNALLY,     /* killed outside tally: provider failure */
	PROV_EV_SUSPENDED,                /* paused outside tally, or on a host I/O error */
	PROV_EV_RESUMED,                  /* running again after a pause */
};

/* Runs on the libvirt event thread (or, for nothing else, never). */
typedef void (*prov_event_fn)(void *arg, const uint8_t lease_id[LEASE_ID_LEN],
			      enum prov_event_kind kind, const char *detail);

/* True for the kinds that end a lease as CLOSE_PROVIDER_FAILED. */
bool prov_event_is_provider_failure(enum prov_event_kind kind);
const char *prov_event_name(enum prov_event_kind kind);

struct prov_config {
	const char *uri;                     /* NULL: qemu:///system */
	enum prov_domain_type domain_type;   /* default kvm */
	const char *name_prefix;             /* NULL: "tally-"; reconcile touches only these */
	/* The node's public key, 64 lowercase hex, recorded in each domain it
	 * makes: reconcile leaves a domain another node recorded alone, and one
	 * that records none (made before owners were recorded) unless its lease
	 * is this node's (prov_lease_fn). NULL: none recorded, every domain of
	 * the prefix is this node's (tests of one node). */
	const char *owner;
	const struct prov_image *images;     /* the image catalogue */
	size_t n_images;
	const struct prov_gpu *gpus;         /* the GPU inventory */
	size_t n_gpus;
	double cpu_overcommit;               /* vCPUs per host CPU; 0 means 1.0 */
	double mem_overcommit;               /* guest MiB per host MiB; 0 means 1.0 */
	/* At most this much is leased in all ([provider] vcpus, memory_mib);
	 * 0: host CPUs x cpu_overcommit, host memory x mem_overcommit. */
	uint32_t max_vcpus, max_memory_mib;
	const char *state_dir;               /* overlays, seeds, console logs (required) */
	const char *log_archive_dir;         /* console logs go here on stop; NULL: deleted */
	enum prov_net_mode net;
	/* User mode: the node's address (an IPv4 literal) its forwarded ports
	 * listen on, and the range they come from; forward_port_min 0: none. */
	const char *forward_address;
	uint16_t forward_port_min, forward_port_max;
	bool guest_outbound;                 /* user mode: guests may connect out */
	prov_event_fn on_event;              /* may be NULL */
	void *event_arg;
	/* Test hook: called inside prov_create after the domain is defined and
	 * before it is started. NULL in production. */
	void (*after_define)(void *arg, const char *domain_name);
	void *hook_arg;
};

/* What the lease keeper asks for. vm.hostname (empty: the domain name)
 * and vm.ssh_key (empty: none) go into the cloud-init seed. */
struct prov_request {
	uint8_t lease_id[LEASE_ID_LEN];
	struct vm_spec vm;
};

/* A provisioned VM, for the lease keeper and the meter. */
struct prov_vm_info {
	uint8_t lease_id[LEASE_ID_LEN];
	char name[PROV_NAME_MAX];
	char uuid[40];
	int domain_id;                 /* libvirt's id while running, else -1 */
	pid_t qemu_pid;                /* QEMU's PID while running, else 0 */
	bool running;                  /* running, not paused */
	const char *state;             /* "running", "paused", "stopped", or "unknown"
					* (libvirt unreachable and no QEMU process seen) */
	struct vm_spec vm;
	size_t n_gpus;
	char gpus[PROV_GPUS_MAX][PROV_PCI_ADDR_LEN + 1];
	char console_log[PROV_PATH_MAX];
	uint16_t ssh_port;             /* forwarded to the guest's 22; 0: none */
	char ssh_address[PROV_ADDR_MAX];   /* where ssh_port listens */
	char ssh_user[PROV_USER_MAX];  /* the image's login user */
	char hostname[HOSTNAME_MAX + 1];   /* what the seed set ("" when unknown) */
};

/* The guest's SSH host keys as cloud-init printed them on its console:
 * its "SSH HOST KEY KEYS" block (one OpenSSH key line each, checked with
 * ssh_key_check) and its "SSH HOST KEY FINGERPRINTS" block ("256
 * SHA256:... (ED25519)"), from the last complete pair of blocks. */
struct prov_host_keys {
	size_t n_keys, n_fingerprints;
	char keys[PROV_HOST_KEYS_MAX][SSH_KEY_MAX + 1];
	char fingerprints[PROV_HOST_KEYS_MAX][128];
};

struct prov_reconcile_report {
	unsigned adopted;          /* running, active lease: now managed */
	unsigned removed_orphans;  /* tally domains of leases that are not active */
	unsigned removed_stopped;  /* active lease, but its domain was not running */
	unsigned removed_files;    /* state-dir files no domain owned */
	unsigned foreign;          /* of the prefix, but another node's (or maybe): left */
};

/* Where a lease stands for this node: one it should still be running a VM
 * for (opened and assigned to it, or running), one assigned to it that has
 * closed, or another provider's (or one its chain does not know). */
enum prov_lease_standing { PROV_LEASE_OTHER, PROV_LEASE_ENDED, PROV_LEASE_ACTIVE };
typedef enum prov_lease_standing (*prov_lease_fn)(void *arg,
						  const uint8_t lease_id[LEASE_ID_LEN]);

struct prov;

/* Every function returns 0 or a tally_err; why[WHY_MAX] (may be NULL) gets
 * a sentence for the operator on failure. */

/* Connects to libvirt, checks the catalogue and GPU inventory, makes the
 * state and archive directories and, in nat mode, the default network. The
 * config is copied. */
int prov_open(struct prov **out, const struct prov_config *cfg, char *why);
/* The checks prov_open makes of the config before it touches the host (the
 * catalogue, its files readable, the GPU inventory, the directories' form,
 * the ratios), without connecting or making anything: for
 * `tallyd --check-config`. TALLY_E_INVALID or TALLY_E_NOTFOUND (a file). */
int prov_config_validate(const struct prov_config *cfg, char *why);
/* Deregisters events and disconnects. VMs keep running. */
void prov_close(struct prov *p);
/* Whether the libvirt connection is up. A libvirtd that dies or restarts
 * closes it (keepalive: within about 15 s if it hangs). */
bool prov_connected(struct prov *p);
/* When the connection is down, opens a new one, registers the events again
 * and delivers through on_event what happened to each VM meanwhile (a VM
 * destroyed, shut down, crashed, paused or resumed while nobody listened).
 * 0 when connected (*checked: VMs looked at; 0 when it was up already), or
 * TALLY_E_UNAVAILABLE while libvirt cannot be reached. While it is down,
 * prov_create, prov_stop and prov_admit_check fail with TALLY_E_UNAVAILABLE
 * and change nothing; a VM is never reported stopped unless libvirt said so. */
int prov_reconnect(struct prov *p, unsigned *checked, char *why);

/* Adopts running domains of active leases and removes the rest (domains
 * named with this node's prefix that carry tally metadata and are this
 * node's, and unowned files in the state dir, never a domain's left
 * alone). standing says where each domain's lease stands. Call once after
 * prov_open, before prov_create. */
int prov_reconcile(struct prov *p, prov_lease_fn standing, void *arg,
		   struct prov_reconcile_report *report, char *why);

/* Checks the spec against the catalogue and the host's free capacity,
 * reserves it, makes the disk and seed, defines and starts the domain.
 * Nothing is left behind on failure. TALLY_E_EXISTS when the lease already
 * has a VM or its name is taken, TALLY_E_CAPACITY when the host can't hold
 * it, TALLY_E_NOTFOUND for an image missing from the catalogue,
 * TALLY_E_INVALID for a malformed spec. info may be NULL. */
int prov_create(struct prov *p, const struct prov_request *req,
		struct prov_vm_info *info, char *why);

/* What the host can lease in all: the totals admission checks a lease
 * against (before what leases already hold is subtracted), and the
 * capacity the node announces. */
struct prov_capacity {
	uint32_t host_cpus;          /* libvirt's (virNodeGetInfo) */
	uint64_t host_memory_mib;    /* libvirt's (virNodeGetInfo), MiB */
	uint32_t vcpus;              /* host_cpus x cpu_overcommit, capped by max_vcpus */
	uint32_t memory_mib;         /* host_memory_mib x mem_overcommit, capped by max_memory_mib */
};

/* Fills *c from libvirt and the configuration. TALLY_E_INTERNAL when
 * libvirt cannot say, TALLY_E_UNAVAILABLE when it is not connected. */
int prov_capacity(struct prov *p, struct prov_capacity *c, char *why);

/* The checks of prov_create without creating or reserving anything: for
 * admitting a lease before it is committed. Same errors as prov_create. */
int prov_admit_check(struct prov *p, const struct vm_spec *vm, char *why);

/* Graceful ACPI shutdown, waiting up to timeout_ms (0: destroy at once),
 * then destroy; undefines the domain, archives the console log and deletes
 * every file made for the lease. *graceful (may be NULL) says whether the
 * guest went down by itself. TALLY_E_NOTFOUND for an unknown lease. */
int prov_stop(struct prov *p, const uint8_t lease_id[LEASE_ID_LEN],
	      unsigned timeout_ms, bool *graceful, char *why);

int prov_lookup(struct prov *p, const uint8_t lease_id[LEASE_ID_LEN],
		struct prov_vm_info *info);
/* The guest's IPv4 address as the NAT network's DHCP server leased it, into
 * buf[64]. TALLY_E_NOTFOUND when it has none (yet), and always in user and
 * none network modes. */
int prov_vm_address(struct prov *p, const uint8_t lease_id[LEASE_ID_LEN], char *buf);
/* Reads the host keys from a console log (at most its last 1 MiB).
 * TALLY_E_NOTFOUND until cloud-init has printed them. */
int prov_host_keys_read(const char *console_log, struct prov_host_keys *out);
/* Every VM this provisioner manages; *out is malloc'd (free it). */
int prov_list(struct prov *p, struct prov_vm_info **out, size_t *n);

/* The domain XML prov_create would define for req, without creating
 * anything (for tests and the benchmark). *xml is malloc'd. */
int prov_render_xml(struct prov *p, const struct prov_request *req, char **xml,
		    char *why);

/* The domain name for a lease under this provisioner's prefix. */
void prov_domain_name(const struct prov *p, const uint8_t lease_id[LEASE_ID_LEN],
		      char name[PROV_NAME_MAX]);

#endif
