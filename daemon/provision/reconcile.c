/* Reconcile on start: make libvirt and the state dir agree with the ledger.
 *
 * A node may have died anywhere inside prov_create or prov_stop. What it can
 * leave behind is a domain (running or only defined) and some of the lease's
 * files. Only domains named with this node's prefix, carrying tally
 * metadata and made by this node are touched; everything else belongs to
 * someone else. Several nodes may share a host and a prefix (a devnet's
 * nodes do), so the prefix alone does not say whose a domain is: the owner
 * its metadata records does. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/provision/domxml.h"
#include "daemon/provision/provision_impl.h"
#include "lib/errors.h"

enum verdict { SKIP, FOREIGN, ADOPT, REMOVE_ORPHAN, REMOVE_STOPPED };

static enum verdict judge(struct prov *p, virDomainPtr dom, prov_lease_fn standing,
			  void *arg, struct domxml_lease_meta *m)
{
	const char *name = virDomainGetName(dom);
	size_t plen = strlen(p->prefix);
	enum prov_lease_standing st;
	bool tracked;
	char *meta;
	int bad;

	if (!name || strncmp(name, p->prefix, plen) != 0)
		return SKIP;
	meta = virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT, PROV_XMLNS, 0);
	if (!meta)
		return SKIP;            /* our prefix, but not made by tally */
	bad = domxml_parse_meta(meta, m);
	free(meta);
	if (bad)
		return SKIP;
	pthread_mutex_lock(&p->lock);
	tracked = prov_find_lease_by_name(p, name) != NULL;
	pthread_mutex_unlock(&p->lock);
	if (tracked)
		return SKIP;
	if (p->cfg.owner && m->owner[0] && strcmp(m->owner, p->cfg.owner))
		return FOREIGN;         /* another node's, whatever its lease */
	st = standing(arg, m->lease_id);
	/* With no owner recorded (made by an older tallyd) only the lease says
	 * whose it is: this node's, running or ended, or someone else's. */
	if (p->cfg.owner && !m->owner[0] && st == PROV_LEASE_OTHER)
		return FOREIGN;
	if (st != PROV_LEASE_ACTIVE)
		return REMOVE_ORPHAN;
	return virDomainIsActive(dom) == 1 ? ADOPT : REMOVE_STOPPED;
}

/* The adopted lease's resources are what the running domain really has:
 * vCPUs and memory from libvirt, the rest from the metadata. */
static int adopt(struct prov *p, virDomainPtr dom, const struct domxml_lease_meta *m,
		 char *why)
{
	struct prov_lease *l = calloc(1, sizeof(*l));
	virDomainInfo di;

	if (!l)
		return why_set(why, TALLY_E_NOMEM, "out of memory");
	if (virDomainGetInfo(dom, &di) < 0) {
		free(l);
		return why_set(why, TALLY_E_INTERNAL, "cannot read %s: %s",
				 virDomainGetName(dom), prov_virt_error());
	}
	memcpy(l->lease_id, m->lease_id, LEASE_ID_LEN);
	snprintf(l->name, sizeof(l->name), "%s", virDomainGetName(dom));
	l->vm.vcpus = di.nrVirtCpu;
	l->vm.memory_mib = (uint32_t)(di.maxMem / 1024);
	l->vm.disk_gib = m->disk_gib;
	l->vm.gpus = (uint32_t)m->n_gpus;
	snprintf(l->vm.image, sizeof(l->vm.image), "%s", m->image);
	snprintf(l->vm.hostname, sizeof(l->vm.hostname), "%s", m->hostname);
	l->ssh_port = m->ssh_port;
	l->n_gpus = m->n_gpus;
	memcpy(l->gpus, m->gpus, sizeof(l->gpus));
	l->state = PROV_LS_RUNNING;
	pthread_mutex_lock(&p->lock);
	l->next = p->leases;
	p->leases = l;
	pthread_mutex_unlock(&p->lock);
	return 0;
}

/* The names of the domains left alone: their files are not stray. */
struct names {
	char (*v)[PROV_NAME_MAX];
	size_t n;
};

static bool names_has(const struct names *ns, const char *name)
{
	for (size_t i = 0; i < ns->n; i++)
		if (!strcmp(ns->v[i], name))
			return true;
	return false;
}

static int reconcile_domains(struct prov *p, prov_lease_fn standing, void *arg,
			     struct prov_reconcile_report *r, struct names *left, char *why)
{
	virDomainPtr *doms = NULL;
	int n = virConnectListAllDomains(prov_conn(p), &doms, 0);
	int err = 0;

	if (n < 0)
		return why_set(why, TALLY_E_INTERNAL, "cannot list domains: %s",
				 prov_virt_error());
	left->v = calloc((size_t)n + 1, sizeof(*left->v));
	if (!left->v) {
		for (int i = 0; i < n; i++)
			virDomainFree(doms[i]);
		free(doms);
		return why_set(why, TALLY_E_NOMEM, "out of memory");
	}
	for (int i = 0; i < n; i++) {
		struct domxml_lease_meta m;
		char name[PROV_NAME_MAX];

		snprintf(name, sizeof(name), "%s", virDomainGetName(doms[i]));
		switch (judge(p, doms[i], standing, arg, &m)) {
		case SKIP:
			break;
		case FOREIGN:
			r->foreign++;
			memcpy(left->v[left->n++], name, PROV_NAME_MAX);
			break;
		case ADOPT:
			if (!err)
				err = adopt(p, doms[i], &m, why);
			if (!err)
				r->adopted++;
			break;
		case REMOVE_ORPHAN:
		case REMOVE_STOPPED:
			prov_undefine_domain(doms[i]);
			prov_remove_files(p, name, m.lease_id);
			if (virDomainIsActive(doms[i]) == 1)
				break;
			if (standing(arg, m.lease_id) == PROV_LEASE_ACTIVE)
				r->removed_stopped++;
			else
				r->removed_orphans++;
			break;
		}
		virDomainFree(doms[i]);
	}
	free(doms);
	return err;
}

/* Files named "<prefix>..." that no managed lease owns are left from a
 * create or stop that never finished (those of a domain left alone are
 * that domain's). */
static size_t sweep_some(struct prov *p, const struct names *left,
			 struct prov_reconcile_report *r)
{
	size_t plen = strlen(p->prefix);
	DIR *d = opendir(p->state_dir);
	struct dirent *e;
	char owners[64][PROV_NAME_MAX];
	size_t n_owners = 0;

	if (!d)
		return 0;
	while (n_owners < 64 && (e = readdir(d))) {
		char name[PROV_NAME_MAX];
		size_t nlen = strcspn(e->d_name, ".");
		bool owned;

		if (strncmp(e->d_name, p->prefix, plen) != 0 || nlen >= sizeof(name))
			continue;
		memcpy(name, e->d_name, nlen);
		name[nlen] = '\0';
		pthread_mutex_lock(&p->lock);
		owned = prov_find_lease_by_name(p, name) != NULL;
		pthread_mutex_unlock(&p->lock);
		if (owned || names_has(left, name))
			continue;
		/* Removal rewrites the directory; collect names first. */
		for (size_t i = 0; i < n_owners; i++)
			if (strcmp(owners[i], name) == 0)
				goto next;
		strcpy(owners[n_owners++], name);
next:;
	}
	closedir(d);
	for (size_t i = 0; i < n_owners; i++)
		r->removed_files += prov_remove_files(p, owners[i], NULL);
	return n_owners;
}

static void sweep_files(struct prov *p, const struct names *left,
			struct prov_reconcile_report *r)
{
	while (sweep_some(p, left, r) == 64)
		;
}

int prov_reconcile(struct prov *p, prov_lease_fn standing, void *arg,
		   struct prov_reconcile_report *report, char *why)
{
	struct prov_reconcile_report r = { 0 };
	struct names left = { 0 };
	int err = reconcile_domains(p, standing, arg, &r, &left, why);

	if (!err)
		sweep_files(p, &left, &r);
	free(left.v);
	if (report)
		*report = r;
	return err;
}
