/* The libvirt connection: opened with keepalive and a close callback, so a
 * libvirtd that dies or restarts is noticed; reopened by prov_reconnect,
 * which registers the lifecycle events again and resynchronises every
 * lease's VM with what libvirt says now, so an event missed while the
 * connection was down (a domain destroyed, paused, or shut down in the
 * meantime) is still delivered, once.
 *
 * Connections replaced by a reconnect are kept open (dead) until
 * prov_close: another thread may still hold the pointer it read a moment
 * before, and libvirt calls on a dead connection fail cleanly. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/provision/provision_impl.h"
#include "lib/errors.h"

virConnectPtr prov_conn(const struct prov *p)
{
	return __atomic_load_n(&p->conn, __ATOMIC_ACQUIRE);
}

static void on_close(virConnectPtr conn, int reason, void *opaque)
{
	struct prov *p = opaque;

	(void)reason;
	if (conn == prov_conn(p))
		atomic_store(&p->conn_lost, true);
}

/* Opens uri with keepalive, the close callback and the lifecycle events;
 * *cb receives the lifecycle registration. */
static virConnectPtr open_conn(struct prov *p, int *cb, char *why)
{
	virConnectPtr c = virConnectOpen(p->uri);

	if (!c) {
		why_set(why, TALLY_E_UNAVAILABLE, "cannot connect to libvirt at %s: %s", p->uri,
			prov_virt_error());
		return NULL;
	}
	/* Notice a dead libvirtd instead of waiting on it forever. */
	virConnectSetKeepAlive(c, 5, 3);
	virConnectRegisterCloseCallback(c, on_close, p, NULL);
	*cb = virConnectDomainEventRegisterAny(c, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
					       VIR_DOMAIN_EVENT_CALLBACK(prov_on_lifecycle),
					       p, prov_lifecycle_released);
	if (*cb < 0) {
		why_set(why, TALLY_E_UNAVAILABLE, "cannot register for domain events at %s: %s",
			p->uri, prov_virt_error());
		virConnectUnregisterCloseCallback(c, on_close);
		virConnectClose(c);
		return NULL;
	}
	pthread_mutex_lock(&p->lock);
	p->cb_live++;
	pthread_mutex_unlock(&p->lock);
	return c;
}

int prov_connect(struct prov *p, char *why)
{
	int cb;
	virConnectPtr c = open_conn(p, &cb, why);

	if (!c)
		return TALLY_E_UNAVAILABLE;
	p->lifecycle_cb = cb;
	__atomic_store_n(&p->conn, c, __ATOMIC_RELEASE);
	atomic_store(&p->conn_lost, false);
	return 0;
}

bool prov_connected(struct prov *p)
{
	virConnectPtr c = prov_conn(p);

	return c && !atomic_load(&p->conn_lost) && virConnectIsAlive(c) == 1;
}

/* What libvirt says of a VM tally runs, as the event it would have sent:
 * 0 when nothing happened that the keeper does not know. */
static enum prov_event_kind judge_state(virConnectPtr c, const struct prov_lease *l,
					 const char **text)
{
	virDomainPtr dom = virDomainLookupByName(c, l->name);
	int state = 0, reason = 0;

	if (!dom) {
		if (virGetLastErrorCode() != VIR_ERR_NO_DOMAIN)
			return 0;                  /* cannot tell: ask again later */
		*text = "the domain disappeared while libvirt was unreachable";
		return PROV_EV_DESTROYED_EXTERNALLY;
	}
	if (virDomainGetState(dom, &state, &reason, 0) < 0)
		state = -1;
	virDomainFree(dom);
	switch (state) {
	case VIR_DOMAIN_RUNNING:
		*text = "running again (noticed after libvirt came back)";
		return l->paused ? PROV_EV_RESUMED : 0;
	case VIR_DOMAIN_PAUSED:
		*text = "paused while libvirt was unreachable";
		return l->paused ? 0 : PROV_EV_SUSPENDED;
	case VIR_DOMAIN_SHUTOFF:
		return prov_classify_shutoff(reason, text);
	case VIR_DOMAIN_CRASHED:
		*text = "the guest crashed while libvirt was unreachable";
		return PROV_EV_CRASHED;
	default:
		return 0;
	}
}

/* Delivers, for each lease tally runs, what happened to its VM while the
 * connection was down. Leases being created or stopped are left to the
 * calls doing that. Returns how many VMs were checked. */
static unsigned resync(struct prov *p, virConnectPtr c)
{
	char (*names)[PROV_NAME_MAX] = NULL;
	size_t n = 0, cap = 0;
	unsigned checked = 0;

	pthread_mutex_lock(&p->lock);
	for (struct prov_lease *l = p->leases; l; l = l->next)
		cap++;
	names = calloc(cap + 1, sizeof(*names));
	for (struct prov_lease *l = p->leases; names && l; l = l->next)
		if (l->state == PROV_LS_RUNNING && !l->stopping)
			snprintf(names[n++], PROV_NAME_MAX, "%s", l->name);
	pthread_mutex_unlock(&p->lock);
	for (size_t i = 0; i < n; i++) {
		struct prov_lease copy, *l;
		const char *text = NULL;
		enum prov_event_kind kind;

		pthread_mutex_lock(&p->lock);
		l = prov_find_lease_by_name(p, names[i]);
		if (l)
			copy = *l;
		pthread_mutex_unlock(&p->lock);
		if (!l || copy.state != PROV_LS_RUNNING || copy.stopping)
			continue;
		checked++;
		kind = judge_state(c, &copy, &text);
		if (kind)
			prov_deliver(p, names[i], kind, text);
	}
	free(names);
	return checked;
}

int prov_reconnect(struct prov *p, unsigned *checked, char *why)
{
	virConnectPtr c, old;
	int cb, old_cb;

	*checked = 0;
	if (prov_connected(p))
		return 0;
	c = open_conn(p, &cb, why);
	if (!c)
		return TALLY_E_UNAVAILABLE;
	pthread_mutex_lock(&p->lock);
	old = p->conn;
	old_cb = p->lifecycle_cb;
	p->lifecycle_cb = cb;
	if (old && p->nretired == PROV_RETIRED_MAX) {
		/* Bounded: the oldest, long unused, goes. */
		virConnectClose(p->retired[0]);
		memmove(p->retired, p->retired + 1, (PROV_RETIRED_MAX - 1) * sizeof(p->retired[0]));
		p->nretired--;
	}
	if (old)
		p->retired[p->nretired++] = old;
	__atomic_store_n(&p->conn, c, __ATOMIC_RELEASE);
	atomic_store(&p->conn_lost, false);
	pthread_mutex_unlock(&p->lock);
	if (old) {
		/* Fails on a dead connection; closing it at prov_close releases it. */
		virConnectDomainEventDeregisterAny(old, old_cb);
		virConnectUnregisterCloseCallback(old, on_close);
	}
	*checked = resync(p, c);
	return 0;
}

void prov_disconnect(struct prov *p)
{
	virConnectPtr c = prov_conn(p);

	if (c)
		virConnectUnregisterCloseCallback(c, on_close);
	for (size_t i = 0; i < p->nretired; i++)
		virConnectClose(p->retired[i]);
	p->nretired = 0;
	if (c)
		virConnectClose(c);
	__atomic_store_n(&p->conn, NULL, __ATOMIC_RELEASE);
}
