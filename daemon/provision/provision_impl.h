/* Shared between the provisioner's source files; not for other modules. */
#ifndef TALLY_PROVISION_IMPL_H
#define TALLY_PROVISION_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "daemon/provision/provision.h"

enum prov_lease_state {
	PROV_LS_CREATING = 1,   /* prov_create is making it */
	PROV_LS_RUNNING,
	PROV_LS_DOWN,           /* stopped outside tally; prov_stop cleans up */
};

/* One lease's VM. Its resources stay reserved until prov_stop drops it. */
struct prov_lease {
	uint8_t lease_id[LEASE_ID_LEN];
	char name[PROV_NAME_MAX];
	struct vm_spec vm;
	size_t n_gpus;
	char gpus[PROV_GPUS_MAX][PROV_PCI_ADDR_LEN + 1];
	uint16_t ssh_port;      /* forwarded to the guest's port 22; 0: none */
	enum prov_lease_state state;
	bool paused;            /* libvirt says the domain is paused */
	bool stopping;          /* prov_stop is taking it down */
	bool stop_seen;         /* ... and libvirt has reported it stopped */
	struct prov_lease *next;
};

#define PROV_RETIRED_MAX 16

struct prov {
	virConnectPtr conn;             /* read it with prov_conn(): reconnect replaces it */
	atomic_bool conn_lost;          /* libvirt closed it (libvirtd died or restarted) */
	virConnectPtr retired[PROV_RETIRED_MAX];   /* replaced, closed at prov_close */
	size_t nretired;
	struct prov_config cfg;         /* pointers below replace the caller's */
	char *uri, *prefix, *state_dir, *archive_dir, *forward_address, *owner;
	struct prov_image *images;
	struct prov_gpu *gpus;
	int lifecycle_cb;               /* on conn; -1 when not registered */
	unsigned cb_live;               /* registrations libvirt has not released */
	pthread_mutex_t lock;           /* guards leases and each lease's fields */
	pthread_cond_t changed;         /* stop_seen became true or cb_live fell */
	struct prov_lease *leases;
};

/* libvirt's last error message, never NULL. */
const char *prov_virt_error(void);

const struct prov_image *prov_find_image(const struct prov *p, const char *name);
struct prov_lease *prov_find_lease(struct prov *p, const uint8_t id[LEASE_ID_LEN]);
struct prov_lease *prov_find_lease_by_name(struct prov *p, const char *name);

/* connection.c: the current connection; opening it (prov_open) and closing
 * it and the retired ones (prov_close, after the events are deregistered). */
virConnectPtr prov_conn(const struct prov *p);
int prov_connect(struct prov *p, char *why);
void prov_disconnect(struct prov *p);

/* events.c: the event loop is shared by every handle in the process. */
int prov_loop_get(char *why);
void prov_loop_put(void);
int prov_on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail,
		      void *opaque);
void prov_lifecycle_released(void *opaque);
/* Updates the VM of domain `name` for an event and tells the keeper. */
void prov_deliver(struct prov *p, const char *name, enum prov_event_kind kind,
		  const char *text);
/* The event a shut-off domain's state reason (VIR_DOMAIN_SHUTOFF_*) stands for. */
enum prov_event_kind prov_classify_shutoff(int reason, const char **text);
/* Deregisters the events and closes every connection. False when libvirt
 * still holds a callback: p must then not be freed. */
bool prov_deregister_events(struct prov *p);

/* config.c: copies cfg into p (owned strings, defaults filled in), checks it. */
int prov_config_copy(struct prov *p, const struct prov_config *cfg, char *why);
int prov_config_check(const struct prov *p, char *why);

/* capacity.c — called with p->lock held. Checks CPUs, memory, GPUs and a
 * forwarded port against the host and the leases already held, and fills
 * l->gpus and l->ssh_port. */
int prov_reserve(struct prov *p, const struct vm_spec *vm,
		 const struct prov_image *img, struct prov_lease *l, char *why);
/* capacity.c — prov_capacity without the connection check: the one rule
 * for what the host leases in all, which admission and the announcement
 * share. */
int prov_host_capacity(struct prov *p, struct prov_capacity *c, char *why);

/* files.c */
enum prov_file {
	PROV_FILE_DISK,
	PROV_FILE_SEED,
	PROV_FILE_SEED_DIR,   /* scratch directory while the seed is made */
	PROV_FILE_CONSOLE,
};
void prov_file_path(const struct prov *p, const char *name, enum prov_file which,
		    char out[PROV_PATH_MAX]);
/* Makes the lease's disk: a qcow2 overlay on the image's base disk, or an
 * empty qcow2 of disk_gib for kernel images. *made says whether a disk was
 * needed at all. */
int prov_make_disk(const struct prov *p, const struct prov_image *img,
		   const char *name, uint32_t disk_gib, bool *made, char *why);
int prov_check_disk_size(const struct prov_image *img, uint32_t disk_gib, char *why);
/* The NoCloud seed: hostname and, when ssh_key is not empty, the key for
 * the image's ssh_user (or cloud-init's default user when it has none).
 * Both were checked with hostname_check and ssh_key_check. */
int prov_make_seed(const struct prov *p, const char *name,
		   const uint8_t lease_id[LEASE_ID_LEN], const char *hostname,
		   const char *ssh_user, const char *ssh_key, char *why);
/* Archives the console logs and deletes every file made for the domain.
 * Returns how many files were removed. */
unsigned prov_remove_files(const struct prov *p, const char *name,
			   const uint8_t *lease_id /* NULL: unknown */);
int prov_mkdir_p(const char *dir, char *why);

/* reconcile.c helpers shared with provision.c */
void prov_undefine_domain(virDomainPtr dom);

#endif
