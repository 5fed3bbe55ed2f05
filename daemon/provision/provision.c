/* The VM provisioner's lifecycle: open, create, stop, lookup and close.
 * See provision.h; events.c has the libvirt events, config.c the checks of
 * the node's catalogue and inventory. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <libxml/parser.h>

#include "daemon/provision/domxml.h"
#include "daemon/provision/provision_impl.h"
#include "lib/codec.h"
#include "lib/errors.h"

/* How long prov_stop waits for libvirt to report a destroyed domain stopped
 * before it undefines it anyway. */
#define STOP_EVENT_WAIT_MS 3000
#define POLL_MS 50

const char *prov_virt_error(void)
{
	const char *m = virGetLastErrorMessage();

	return m ? m : "unknown libvirt error";
}

/* ---- leases ------------------------------------------------------------- */

struct prov_lease *prov_find_lease(struct prov *p, const uint8_t id[LEASE_ID_LEN])
{
	for (struct prov_lease *l = p->leases; l; l = l->next)
		if (memcmp(l->lease_id, id, LEASE_ID_LEN) == 0)
			return l;
	return NULL;
}

struct prov_lease *prov_find_lease_by_name(struct prov *p, const char *name)
{
	for (struct prov_lease *l = p->leases; l; l = l->next)
		if (strcmp(l->name, name) == 0)
			return l;
	return NULL;
}

static void unlink_lease(struct prov *p, struct prov_lease *gone)
{
	for (struct prov_lease **pl = &p->leases; *pl; pl = &(*pl)->next) {
		if (*pl == gone) {
			*pl = gone->next;
			return;
		}
	}
}

const struct prov_image *prov_find_image(const struct prov *p, const char *name)
{
	for (size_t i = 0; i < p->cfg.n_images; i++)
		if (strcmp(p->images[i].name, name) == 0)
			return &p->images[i];
	return NULL;
}

void prov_domain_name(const struct prov *p, const uint8_t lease_id[LEASE_ID_LEN],
		      char name[PROV_NAME_MAX])
{
	char hex[2 * LEASE_ID_LEN + 1];

	hex_encode(lease_id, LEASE_ID_LEN, hex);
	snprintf(name, PROV_NAME_MAX, "%s%.*s", p->prefix, PROV_LEASE_HEX_PREFIX, hex);
}

/* ---- open and close ----------------------------------------------------- */

/* libvirt's usual "default" NAT network, defined and started when missing. */
static const char default_network_xml[] =
	"<network>\n  <name>default</name>\n  <forward mode='nat'/>\n"
	"  <bridge name='virbr0' stp='on' delay='0'/>\n"
	"  <ip address='192.168.122.1' netmask='255.255.255.0'>\n"
	"    <dhcp>\n      <range start='192.168.122.2' end='192.168.122.254'/>\n"
	"    </dhcp>\n  </ip>\n</network>\n";

static int ensure_nat_network(struct prov *p, char *why)
{
	virNetworkPtr net = virNetworkLookupByName(prov_conn(p), "default");
	int err = 0;

	if (!net)
		net = virNetworkDefineXML(prov_conn(p), default_network_xml);
	if (!net)
		return why_set(why, TALLY_E_INTERNAL, "cannot define the default network: %s",
				 prov_virt_error());
	if (virNetworkIsActive(net) != 1) {
		if (virNetworkCreate(net) < 0)
			err = why_set(why, TALLY_E_INTERNAL,
					"cannot start the default network: %s", prov_virt_error());
		else
			virNetworkSetAutostart(net, 1);
	}
	virNetworkFree(net);
	return err;
}

static void free_prov(struct prov *p)
{
	while (p->leases) {
		struct prov_lease *l = p->leases;

		p->leases = l->next;
		free(l);
	}
	pthread_cond_destroy(&p->changed);
	pthread_mutex_destroy(&p->lock);
	free(p->uri);
	free(p->prefix);
	free(p->owner);
	free(p->state_dir);
	free(p->archive_dir);
	free(p->forward_address);
	free(p->images);
	free(p->gpus);
	free(p);
}

int prov_config_validate(const struct prov_config *cfg, char *why)
{
	struct prov *p = calloc(1, sizeof(*p));
	int err;

	if (!p)
		return why_set(why, TALLY_E_NOMEM, "out of memory");
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->changed, NULL);
	err = prov_config_copy(p, cfg, why);
	if (!err)
		err = prov_config_check(p, why);
	free_prov(p);
	return err;
}

int prov_open(struct prov **out, const struct prov_config *cfg, char *why)
{
	struct prov *p = calloc(1, sizeof(*p));
	bool looping = false, released;
	int err;

	if (!p)
		return why_set(why, TALLY_E_NOMEM, "out of memory");
	xmlInitParser();        /* once, before threads share libxml2 */
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->changed, NULL);
	p->lifecycle_cb = -1;
	err = prov_config_copy(p, cfg, why);
	if (!err)
		err = prov_config_check(p, why);
	if (!err)
		err = prov_mkdir_p(p->state_dir, why);
	if (!err && p->archive_dir)
		err = prov_mkdir_p(p->archive_dir, why);
	if (!err && !(err = prov_loop_get(why)))
		looping = true;
	if (err)
		goto fail;
	if ((err = prov_connect(p, why)))
		goto fail;
	if (p->cfg.net == PROV_NET_NAT && (err = ensure_nat_network(p, why)))
		goto fail;
	*out = p;
	return 0;
fail:
	released = prov_deregister_events(p);
	if (looping)
		prov_loop_put();
	if (released)
		free_prov(p);
	return err;
}

void prov_close(struct prov *p)
{
	bool released;

	if (!p)
		return;
	released = prov_deregister_events(p);
	prov_loop_put();
	if (released)
		free_prov(p);
}

/* ---- create ------------------------------------------------------------- */

static int require_connection(struct prov *p, char *why)
{
	if (prov_connected(p))
		return 0;
	return why_set(why, TALLY_E_UNAVAILABLE, "libvirt at %s is unreachable; try again in"
			 " a moment", p->uri);
}

/* The guest's hostname: the contract's, or the domain name made into one
 * RFC 1123 label (a prefix may hold '.' or '_'). */
static void effective_hostname(const struct vm_spec *vm, const char *name,
			       char out[HOSTNAME_MAX + 1])
{
	size_t n = 0;

	if (vm->hostname[0]) {
		snprintf(out, HOSTNAME_MAX + 1, "%s", vm->hostname);
		return;
	}
	for (const char *s = name; *s && n < HOSTNAME_MAX; s++)
		out[n++] = (islower((unsigned char)*s) || isdigit((unsigned char)*s)) ? *s : '-';
	while (n && out[n - 1] == '-')
		n--;
	out[n] = '\0';
	while (out[0] == '-')
		memmove(out, out + 1, n--);
}

static int check_request(const struct prov *p, const struct prov_request *req,
			 const struct prov_image **imgp, char *why)
{
	const struct vm_spec *vm = &req->vm;
	const struct prov_image *img;

	if (vm->vcpus == 0)
		return why_set(why, TALLY_E_INVALID, "lease asks for 0 vCPUs; a VM needs at least 1");
	if (vm->memory_mib == 0)
		return why_set(why, TALLY_E_INVALID,
				 "lease asks for 0 MiB of memory; a VM needs some");
	if (memchr(vm->image, '\0', sizeof(vm->image)) == NULL)
		return why_set(why, TALLY_E_INVALID, "image name is not terminated");
	img = prov_find_image(p, vm->image);
	if (!img)
		return why_set(why, TALLY_E_NOTFOUND, "image '%s' is not in this node's catalogue",
				 vm->image);
	if (vm->memory_mib < img->min_memory_mib)
		return why_set(why, TALLY_E_INVALID,
				 "image '%s' needs at least %u MiB of memory; the lease asks for %u MiB",
				 img->name, img->min_memory_mib, vm->memory_mib);
	/* The contract's rules, checked again: these reach YAML and XML. */
	if (hostname_check(vm->hostname, why) || ssh_key_check(vm->ssh_key, why))
		return TALLY_E_INVALID;
	*imgp = img;
	return prov_check_disk_size(img, vm->disk_gib, why);
}

/* The name must be free in libvirt too: a domain that is not in our table
 * (another node's state dir, an operator's domain, or a lease whose id
 * shares its first 48 bits) must never be redefined. */
static int check_name_free(struct prov *p, const char *name,
			   const uint8_t lease_id[LEASE_ID_LEN], char *why)
{
	virDomainPtr dom = virDomainLookupByName(prov_conn(p), name);
	struct domxml_lease_meta m;
	char hex[2 * LEASE_ID_LEN + 1];
	char *meta;
	int err;

	if (!dom)
		return 0;
	meta = virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, PROV_XMLNS, 0);
	virDomainFree(dom);
	if (!meta || domxml_parse_meta(meta, &m)) {
		err = why_set(why, TALLY_E_EXISTS,
				"domain name '%s' is already used by a domain tally does not manage",
				name);
	} else if (memcmp(m.lease_id, lease_id, LEASE_ID_LEN) == 0) {
		err = why_set(why, TALLY_E_EXISTS,
				"lease already has domain '%s' (reconcile adopts or removes it)", name);
	} else {
		hex_encode(m.lease_id, LEASE_ID_LEN, hex);
		err = why_set(why, TALLY_E_EXISTS,
				"domain name '%s' is already taken by lease %s "
				"(the first %d hex digits of the lease ids collide)",
				name, hex, PROV_LEASE_HEX_PREFIX);
	}
	free(meta);
	return err;
}

static int render(struct prov *p, const struct prov_lease *l, const struct prov_image *img,
		  const struct vm_spec *vm, bool disk, bool seed, char **xml, char *why)
{
	char disk_path[PROV_PATH_MAX], seed_path[PROV_PATH_MAX], log_path[PROV_PATH_MAX];
	struct domxml_params dp = {
		.name = l->name,
		.type = p->cfg.domain_type,
		.vcpus = vm->vcpus,
		.memory_mib = vm->memory_mib,
		.image = img,
		.net = p->cfg.net,
		.console_log = log_path,
		.forward_address = p->cfg.forward_address,
		.guest_outbound = p->cfg.guest_outbound,
	};
	uint8_t uuid[16];
	int err;

	memcpy(dp.meta.lease_id, l->lease_id, LEASE_ID_LEN);
	snprintf(dp.meta.image, sizeof(dp.meta.image), "%s", img->name);
	dp.meta.disk_gib = vm->disk_gib;
	dp.meta.n_gpus = l->n_gpus;
	memcpy(dp.meta.gpus, l->gpus, sizeof(dp.meta.gpus));
	dp.meta.ssh_port = l->ssh_port;
	if (p->cfg.owner)
		snprintf(dp.meta.owner, sizeof(dp.meta.owner), "%s", p->cfg.owner);
	if (seed)
		effective_hostname(vm, l->name, dp.meta.hostname);

	prov_file_path(p, l->name, PROV_FILE_DISK, disk_path);
	prov_file_path(p, l->name, PROV_FILE_SEED, seed_path);
	prov_file_path(p, l->name, PROV_FILE_CONSOLE, log_path);
	dp.disk_path = disk ? disk_path : NULL;
	dp.seed_path = seed ? seed_path : NULL;
	/* Our own UUID makes libvirt refuse a same-named domain instead of
	 * silently redefining it. */
	if (getrandom(uuid, sizeof(uuid), 0) != sizeof(uuid))
		return why_set(why, TALLY_E_INTERNAL, "getrandom: %s", strerror(errno));
	uuid[6] = (uuid[6] & 0x0f) | 0x40;
	uuid[8] = (uuid[8] & 0x3f) | 0x80;
	memcpy(dp.uuid, uuid, sizeof(uuid));
	err = domxml_build(&dp, xml);
	if (err)
		return why_set(why, err, "cannot build the domain XML for %s", l->name);
	return 0;
}

static struct prov_lease *new_lease(const struct prov *p, const struct prov_request *req)
{
	struct prov_lease *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	memcpy(l->lease_id, req->lease_id, LEASE_ID_LEN);
	prov_domain_name(p, req->lease_id, l->name);
	l->vm = req->vm;
	l->state = PROV_LS_CREATING;
	return l;
}

/* Checks and reserves under the lock; the lease enters the table as
 * CREATING so that concurrent creates see its resources as taken. */
static int admit(struct prov *p, struct prov_lease *l, const struct prov_image *img,
		 char *why)
{
	struct prov_lease *other;
	char hex[2 * LEASE_ID_LEN + 1];
	int err;

	pthread_mutex_lock(&p->lock);
	if (prov_find_lease(p, l->lease_id)) {
		err = why_set(why, TALLY_E_EXISTS, "lease already has domain '%s'", l->name);
	} else if ((other = prov_find_lease_by_name(p, l->name))) {
		hex_encode(other->lease_id, LEASE_ID_LEN, hex);
		err = why_set(why, TALLY_E_EXISTS,
				"domain name '%s' is already taken by lease %s "
				"(the first %d hex digits of the lease ids collide)",
				l->name, hex, PROV_LEASE_HEX_PREFIX);
	} else {
		err = prov_reserve(p, &l->vm, img, l, why);
	}
	if (!err) {
		l->next = p->leases;
		p->leases = l;
	}
	pthread_mutex_unlock(&p->lock);
	return err;
}

static void drop_lease(struct prov *p, struct prov_lease *l)
{
	pthread_mutex_lock(&p->lock);
	unlink_lease(p, l);
	pthread_mutex_unlock(&p->lock);
	free(l);
}

static int make_files(struct prov *p, const struct prov_request *req,
		      const struct prov_image *img, struct prov_lease *l,
		      bool *disk, bool *seed, char *why)
{
	int err = prov_make_disk(p, img, l->name, req->vm.disk_gib, disk, why);

	*seed = false;
	if (!err && img->cloud_init) {
		char hostname[HOSTNAME_MAX + 1];

		*seed = true;
		effective_hostname(&req->vm, l->name, hostname);
		err = prov_make_seed(p, l->name, l->lease_id, hostname, img->ssh_user,
				     req->vm.ssh_key, why);
	}
	return err;
}

int prov_create(struct prov *p, const struct prov_request *req,
		struct prov_vm_info *info, char *why)
{
	const struct prov_image *img = NULL;
	struct prov_lease *l;
	virDomainPtr dom = NULL;
	bool disk, seed;
	char *xml = NULL;
	int err;

	err = check_request(p, req, &img, why);
	if (!err)
		err = require_connection(p, why);
	if (err)
		return err;
	l = new_lease(p, req);
	if (!l)
		return why_set(why, TALLY_E_NOMEM, "out of memory");
	err = admit(p, l, img, why);
	if (err) {
		free(l);
		return err;
	}
	err = check_name_free(p, l->name, l->lease_id, why);
	if (err)
		goto fail_reserved;
	err = make_files(p, req, img, l, &disk, &seed, why);
	if (!err)
		err = render(p, l, img, &req->vm, disk, seed, &xml, why);
	if (err)
		goto fail_files;
	dom = virDomainDefineXML(prov_conn(p), xml);
	if (!dom) {
		err = why_set(why, TALLY_E_INTERNAL, "libvirt refused to define %s: %s",
				l->name, prov_virt_error());
		goto fail_files;
	}
	if (p->cfg.after_define)
		p->cfg.after_define(p->cfg.hook_arg, l->name);
	if (virDomainCreate(dom) < 0) {
		err = why_set(why, TALLY_E_INTERNAL, "libvirt could not start %s: %s",
				l->name, prov_virt_error());
		goto fail_defined;
	}
	pthread_mutex_lock(&p->lock);
	if (l->state == PROV_LS_CREATING)
		l->state = PROV_LS_RUNNING;
	pthread_mutex_unlock(&p->lock);
	virDomainFree(dom);
	free(xml);
	if (info)
		prov_lookup(p, req->lease_id, info);
	return 0;

fail_defined:
	prov_undefine_domain(dom);
	virDomainFree(dom);
fail_files:
	free(xml);
	prov_remove_files(p, l->name, NULL);
fail_reserved:
	drop_lease(p, l);
	return err;
}

int prov_admit_check(struct prov *p, const struct vm_spec *vm, char *why)
{
	struct prov_request req = { .vm = *vm };
	const struct prov_image *img = NULL;
	struct prov_lease scratch;
	int err = check_request(p, &req, &img, why);

	if (!err)
		err = require_connection(p, why);
	if (err)
		return err;
	memset(&scratch, 0, sizeof(scratch));
	pthread_mutex_lock(&p->lock);
	err = prov_reserve(p, vm, img, &scratch, why);
	pthread_mutex_unlock(&p->lock);
	return err;
}

int prov_capacity(struct prov *p, struct prov_capacity *c, char *why)
{
	int err = require_connection(p, why);

	return err ? err : prov_host_capacity(p, c, why);
}

int prov_render_xml(struct prov *p, const struct prov_request *req, char **xml, char *why)
{
	const struct prov_image *img = NULL;
	struct prov_lease *l;
	int err = check_request(p, req, &img, why);

	if (err)
		return err;
	l = new_lease(p, req);
	if (!l)
		return why_set(why, TALLY_E_NOMEM, "out of memory");
	/* The first GPUs of a class the image takes, without reserving them. */
	for (size_t i = 0; i < p->cfg.n_gpus && l->n_gpus < req->vm.gpus &&
	     l->n_gpus < PROV_GPUS_MAX; i++)
		for (size_t c = 0; c < img->n_gpu_classes; c++)
			if (strcmp(img->gpu_classes[c], p->gpus[i].class_name) == 0) {
				strcpy(l->gpus[l->n_gpus++], p->gpus[i].pci_addr);
				break;
			}
	/* The first port of the range, without reserving it. */
	if (p->cfg.net == PROV_NET_USER && img->ssh_user[0])
		l->ssh_port = p->cfg.forward_port_min;
	err = render(p, l, img, &req->vm, img->disk_path[0] || req->vm.disk_gib,
		     img->cloud_init, xml, why);
	free(l);
	return err;
}

/* ---- stop --------------------------------------------------------------- */

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static bool wait_inactive(virDomainPtr dom, unsigned timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;

	while (virDomainIsActive(dom) == 1) {
		if (now_ms() >= deadline)
			return false;
		usleep(POLL_MS * 1000);
	}
	return true;
}

/* Destroy can fail with EBUSY while QEMU is still flushing; libvirt's own
 * advice is to try again. */
static int destroy_domain(virDomainPtr dom)
{
	for (int tries = 0; tries < 5; tries++) {
		if (virDomainDestroy(dom) == 0 || virDomainIsActive(dom) == 0)
			return 0;
		usleep(200 * 1000);
	}
	return -1;
}

void prov_undefine_domain(virDomainPtr dom)
{
	unsigned flags = VIR_DOMAIN_UNDEFINE_MANAGED_SAVE |
			 VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA |
			 VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA | VIR_DOMAIN_UNDEFINE_NVRAM;

	if (virDomainIsActive(dom) == 1)
		destroy_domain(dom);
	if (virDomainUndefineFlags(dom, flags) < 0)
		virDomainUndefine(dom);
}

static void wait_stop_event(struct prov *p, struct prov_lease *l)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += STOP_EVENT_WAIT_MS / 1000;
	pthread_mutex_lock(&p->lock);
	while (!l->stop_seen)
		if (pthread_cond_timedwait(&p->changed, &p->lock, &until) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&p->lock);
}

/* Takes the domain down: ACPI shutdown first, destroy when the guest does not
 * go within timeout_ms. */
static int halt_domain(struct prov *p, struct prov_lease *l, virDomainPtr dom,
		       unsigned timeout_ms, bool *graceful, char *why)
{
	*graceful = false;
	if (virDomainIsActive(dom) != 1)
		return 0;
	if (timeout_ms > 0 && virDomainShutdown(dom) == 0)
		*graceful = wait_inactive(dom, timeout_ms);
	if (!*graceful && destroy_domain(dom) < 0)
		return why_set(why, TALLY_E_INTERNAL, "cannot destroy %s: %s", l->name,
				 prov_virt_error());
	wait_stop_event(p, l);
	return 0;
}

int prov_stop(struct prov *p, const uint8_t lease_id[LEASE_ID_LEN],
	      unsigned timeout_ms, bool *graceful, char *why)
{
	struct prov_lease *l;
	virDomainPtr dom;
	bool went_gracefully = false;
	int err = 0;

	pthread_mutex_lock(&p->lock);
	l = prov_find_lease(p, lease_id);
	if (l && (l->stopping || l->state == PROV_LS_CREATING))
		err = why_set(why, TALLY_E_STATE, "%s is being %s", l->name,
				l->stopping ? "stopped" : "created");
	else if (l)
		l->stopping = true;
	pthread_mutex_unlock(&p->lock);
	if (!l)
		return why_set(why, TALLY_E_NOTFOUND, "no VM for this lease on this node");
	if (err)
		return err;
	/* Only what libvirt says counts: a VM it cannot be asked about is not
	 * stopped, and its lease and files stay until it can. */
	if (!prov_connected(p)) {
		err = why_set(why, TALLY_E_UNAVAILABLE, "libvirt at %s is unreachable; %s is"
				" stopped once it is back", p->uri, l->name);
	} else if (!(dom = virDomainLookupByName(prov_conn(p), l->name))) {
		if (virGetLastErrorCode() != VIR_ERR_NO_DOMAIN)
			err = why_set(why, TALLY_E_UNAVAILABLE, "cannot look up %s: %s", l->name,
					prov_virt_error());
	} else {
		err = halt_domain(p, l, dom, timeout_ms, &went_gracefully, why);
		if (err && !prov_connected(p))
			err = TALLY_E_UNAVAILABLE;
		if (!err)
			prov_undefine_domain(dom);
		virDomainFree(dom);
	}
	if (err) {
		pthread_mutex_lock(&p->lock);
		l->stopping = false;
		pthread_mutex_unlock(&p->lock);
		return err;
	}
	prov_remove_files(p, l->name, l->lease_id);
	drop_lease(p, l);
	if (graceful)
		*graceful = went_gracefully;
	return 0;
}

/* ---- lookup ------------------------------------------------------------- */

/* libvirt's QEMU driver writes the PID of each running guest here; the
 * command line check guards against a stale file and a reused PID. */
static pid_t qemu_pid(const char *name)
{
	char path[PROV_PATH_MAX], buf[4096], want[PROV_NAME_MAX + 8];
	FILE *f;
	long pid = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/run/libvirt/qemu/%s.pid", name);
	f = fopen(path, "re");
	if (!f)
		return 0;
	if (fscanf(f, "%ld", &pid) != 1)
		pid = 0;
	fclose(f);
	if (pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%ld/cmdline", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	for (ssize_t i = 0; i < n; i++)
		if (buf[i] == '\0')
			buf[i] = ' ';
	snprintf(want, sizeof(want), "guest=%s,", name);
	return strstr(buf, want) ? (pid_t)pid : 0;
}

static void fill_info(struct prov *p, const struct prov_lease *l, struct prov_vm_info *info)
{
	const struct prov_image *img;
	virDomainPtr dom;

	memset(info, 0, sizeof(*info));
	info->state = "unknown";
	memcpy(info->lease_id, l->lease_id, LEASE_ID_LEN);
	snprintf(info->name, sizeof(info->name), "%s", l->name);
	info->vm = l->vm;
	info->n_gpus = l->n_gpus;
	memcpy(info->gpus, l->gpus, sizeof(info->gpus));
	prov_file_path(p, l->name, PROV_FILE_CONSOLE, info->console_log);
	info->domain_id = -1;
	info->ssh_port = l->ssh_port;
	if (l->ssh_port)
		snprintf(info->ssh_address, sizeof(info->ssh_address), "%s",
			 p->cfg.forward_address);
	img = prov_find_image(p, l->vm.image);
	if (img) {
		snprintf(info->ssh_user, sizeof(info->ssh_user), "%s", img->ssh_user);
		if (img->cloud_init)
			effective_hostname(&l->vm, l->name, info->hostname);
	}
	dom = virDomainLookupByName(prov_conn(p), l->name);
	if (!dom) {
		if (virGetLastErrorCode() == VIR_ERR_NO_DOMAIN) {
			info->state = "stopped";
			return;
		}
		/* libvirt cannot say: QEMU's own process can. */
		info->qemu_pid = qemu_pid(l->name);
		info->running = info->qemu_pid && !l->paused;
		info->state = !info->qemu_pid ? "unknown" : l->paused ? "paused" : "running";
		return;
	}
	virDomainGetUUIDString(dom, info->uuid);
	int state = 0, reason = 0;
	if (virDomainGetState(dom, &state, &reason, 0) < 0)
		state = -1;
	info->running = state == VIR_DOMAIN_RUNNING;
	info->state = state == VIR_DOMAIN_RUNNING ? "running" :
		      state == VIR_DOMAIN_PAUSED ? "paused" :
		      state == VIR_DOMAIN_SHUTOFF || state == VIR_DOMAIN_CRASHED ? "stopped" :
		      "unknown";
	if (state == VIR_DOMAIN_RUNNING || state == VIR_DOMAIN_PAUSED) {
		info->domain_id = (int)virDomainGetID(dom);
		info->qemu_pid = qemu_pid(l->name);
	}
	virDomainFree(dom);
}

int prov_lookup(struct prov *p, const uint8_t lease_id[LEASE_ID_LEN],
		struct prov_vm_info *info)
{
	struct prov_lease copy, *l;

	pthread_mutex_lock(&p->lock);
	l = prov_find_lease(p, lease_id);
	if (l)
		copy = *l;
	pthread_mutex_unlock(&p->lock);
	if (!l)
		return TALLY_E_NOTFOUND;
	fill_info(p, &copy, info);
	return 0;
}

int prov_vm_address(struct prov *p, const uint8_t lease_id[LEASE_ID_LEN], char *buf)
{
	char name[PROV_NAME_MAX];
	virDomainInterfacePtr *ifaces = NULL;
	virDomainPtr dom;
	int n, err = TALLY_E_NOTFOUND;

	if (p->cfg.net != PROV_NET_NAT)
		return TALLY_E_NOTFOUND;
	pthread_mutex_lock(&p->lock);
	if (!prov_find_lease(p, lease_id))
		err = -1;
	pthread_mutex_unlock(&p->lock);
	if (err < 0)
		return TALLY_E_NOTFOUND;
	prov_domain_name(p, lease_id, name);
	dom = virDomainLookupByName(prov_conn(p), name);
	if (!dom)
		return TALLY_E_NOTFOUND;
	n = virDomainInterfaceAddresses(dom, &ifaces, VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE, 0);
	for (int i = 0; i < n; i++) {
		for (unsigned j = 0; err && j < ifaces[i]->naddrs; j++) {
			if (ifaces[i]->addrs[j].type != VIR_IP_ADDR_TYPE_IPV4)
				continue;
			snprintf(buf, 64, "%s", ifaces[i]->addrs[j].addr);
			err = 0;
		}
		virDomainInterfaceFree(ifaces[i]);
	}
	free(ifaces);
	virDomainFree(dom);
	return err;
}

int prov_list(struct prov *p, struct prov_vm_info **out, size_t *n)
{
	struct prov_lease *copies;
	size_t count = 0, i = 0;

	pthread_mutex_lock(&p->lock);
	for (struct prov_lease *l = p->leases; l; l = l->next)
		count++;
	copies = calloc(count + 1, sizeof(*copies));
	for (struct prov_lease *l = p->leases; copies && l; l = l->next)
		copies[i++] = *l;
	pthread_mutex_unlock(&p->lock);
	if (!copies)
		return TALLY_E_NOMEM;
	*out = calloc(count + 1, sizeof(**out));
	if (!*out) {
		free(copies);
		return TALLY_E_NOMEM;
	}
	for (i = 0; i < count; i++)
		fill_info(p, &copies[i], &(*out)[i]);
	free(copies);
	*n = count;
	return 0;
}
