/* libvirt lifecycle events: one process-wide event loop thread, and the
 * callback that tells the lease keeper what happened to a VM, above all what
 * it did not ask for (a crash, an outside destroy). */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "daemon/provision/provision_impl.h"
#include "lib/errors.h"

bool prov_event_is_provider_failure(enum prov_event_kind kind)
{
	return kind == PROV_EV_CRASHED || kind == PROV_EV_DESTROYED_EXTERNALLY;
}

const char *prov_event_name(enum prov_event_kind kind)
{
	switch (kind) {
	case PROV_EV_STARTED: return "started";
	case PROV_EV_STOPPED: return "stopped";
	case PROV_EV_SHUTDOWN: return "shutdown";
	case PROV_EV_CRASHED: return "crashed";
	case PROV_EV_DESTROYED_EXTERNALLY: return "destroyed-externally";
	case PROV_EV_SUSPENDED: return "paused";
	case PROV_EV_RESUMED: return "resumed";
	}
	return "unknown";
}

/* ---- the process-wide libvirt event loop ---------------------------------
 * libvirt has one event implementation per process, so one thread runs it
 * for every open provisioner; it starts with the first prov_open and ends
 * with the last prov_close. */

static pthread_once_t loop_once = PTHREAD_ONCE_INIT;
static int loop_init_rc;
static pthread_mutex_t loop_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned loop_users;
static pthread_t loop_thread;
static atomic_bool loop_quit;

/* libvirt prints every error to stderr by default; tally reports them
 * itself, with context, through why. */
static void quiet_errors(void *arg, virErrorPtr e)
{
	(void)arg;
	(void)e;
}

static void loop_init(void)
{
	virSetErrorFunc(NULL, quiet_errors);
	loop_init_rc = virEventRegisterDefaultImpl();
}

static void *loop_main(void *arg)
{
	(void)arg;
	while (!atomic_load(&loop_quit))
		if (virEventRunDefaultImpl() < 0)
			break;
	return NULL;
}

static void loop_wake(int timer, void *arg)
{
	(void)arg;
	virEventRemoveTimeout(timer);
}

int prov_loop_get(char *why)
{
	int err = 0;

	pthread_once(&loop_once, loop_init);
	if (loop_init_rc < 0)
		return why_set(why, TALLY_E_INTERNAL, "cannot set up libvirt's event loop: %s",
				 prov_virt_error());
	pthread_mutex_lock(&loop_lock);
	if (loop_users == 0) {
		atomic_store(&loop_quit, false);
		if (pthread_create(&loop_thread, NULL, loop_main, NULL))
			err = why_set(why, TALLY_E_INTERNAL, "cannot start the event thread");
	}
	if (!err)
		loop_users++;
	pthread_mutex_unlock(&loop_lock);
	return err;
}

void prov_loop_put(void)
{
	pthread_mutex_lock(&loop_lock);
	if (--loop_users == 0) {
		atomic_store(&loop_quit, true);
		/* A zero timeout makes the loop run one more round and see the flag. */
		virEventAddTimeout(0, loop_wake, NULL, NULL);
		pthread_join(loop_thread, NULL);
	}
	pthread_mutex_unlock(&loop_lock);
}

/* ---- lifecycle events --------------------------------------------------- */

/* What a STOPPED event means when tally did not ask for it. */
static enum prov_event_kind classify_stop(int detail, const char **text)
{
	switch (detail) {
	case VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN:
		*text = "the guest powered itself off";
		return PROV_EV_SHUTDOWN;
	case VIR_DOMAIN_EVENT_STOPPED_DESTROYED:
		*text = "the domain was destroyed outside tally (virsh destroy or another libvirt client)";
		return PROV_EV_DESTROYED_EXTERNALLY;
	case VIR_DOMAIN_EVENT_STOPPED_CRASHED:
		*text = "the guest crashed";
		return PROV_EV_CRASHED;
	case VIR_DOMAIN_EVENT_STOPPED_FAILED:
		*text = "the QEMU process failed or was killed";
		return PROV_EV_CRASHED;
	case VIR_DOMAIN_EVENT_STOPPED_MIGRATED:
		*text = "the domain was migrated away outside tally";
		return PROV_EV_DESTROYED_EXTERNALLY;
	case VIR_DOMAIN_EVENT_STOPPED_SAVED:
		*text = "the domain was saved to a file outside tally";
		return PROV_EV_DESTROYED_EXTERNALLY;
	default:
		*text = "the domain stopped for a reason libvirt did not name";
		return PROV_EV_DESTROYED_EXTERNALLY;
	}
}

enum prov_event_kind prov_classify_shutoff(int reason, const char **text)
{
	switch (reason) {
	case VIR_DOMAIN_SHUTOFF_SHUTDOWN:
		*text = "the guest powered itself off while libvirt was unreachable";
		return PROV_EV_SHUTDOWN;
	case VIR_DOMAIN_SHUTOFF_CRASHED:
	case VIR_DOMAIN_SHUTOFF_FAILED:
		*text = "the guest crashed or QEMU failed while libvirt was unreachable";
		return PROV_EV_CRASHED;
	case VIR_DOMAIN_SHUTOFF_DESTROYED:
		*text = "the domain was destroyed outside tally while libvirt was unreachable";
		return PROV_EV_DESTROYED_EXTERNALLY;
	default:
		*text = "the domain stopped while libvirt was unreachable, for a reason it did"
			" not name";
		return PROV_EV_DESTROYED_EXTERNALLY;
	}
}

/* What a SUSPENDED event means: tally itself never pauses a VM. */
static const char *suspend_text(int detail)
{
	switch (detail) {
	case VIR_DOMAIN_EVENT_SUSPENDED_PAUSED:
		return "paused outside tally (virsh suspend or another libvirt client)";
	case VIR_DOMAIN_EVENT_SUSPENDED_IOERROR:
		return "paused by QEMU on a disk I/O error on the host";
	case VIR_DOMAIN_EVENT_SUSPENDED_WATCHDOG:
		return "paused by its watchdog";
	case VIR_DOMAIN_EVENT_SUSPENDED_API_ERROR:
		return "paused after a failed libvirt operation";
	default:
		return "paused";
	}
}

void prov_deliver(struct prov *p, const char *name, enum prov_event_kind kind,
		  const char *text)
{
	uint8_t id[LEASE_ID_LEN];
	struct prov_lease *l;

	pthread_mutex_lock(&p->lock);
	l = prov_find_lease_by_name(p, name);
	if (l) {
		switch (kind) {
		case PROV_EV_STARTED:
			l->state = PROV_LS_RUNNING;
			l->paused = false;
			break;
		case PROV_EV_SUSPENDED:
			l->paused = true;
			break;
		case PROV_EV_RESUMED:
			l->paused = false;
			break;
		default:                /* every kind of stop */
			l->state = PROV_LS_DOWN;
			l->paused = false;
			break;
		}
		memcpy(id, l->lease_id, LEASE_ID_LEN);
	}
	pthread_mutex_unlock(&p->lock);
	if (l && p->cfg.on_event)
		p->cfg.on_event(p->cfg.event_arg, id, kind, text);
}

int prov_on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail,
			void *opaque)
{
	struct prov *p = opaque;
	const char *name = virDomainGetName(dom);
	const char *text = NULL;
	enum prov_event_kind kind = 0;
	struct prov_lease *l;

	if (!name || conn != prov_conn(p))
		return 0;               /* a connection a reconnect replaced */
	pthread_mutex_lock(&p->lock);
	l = prov_find_lease_by_name(p, name);
	if (l && event == VIR_DOMAIN_EVENT_STARTED) {
		kind = PROV_EV_STARTED;
		text = "the domain is running";
	} else if (l && event == VIR_DOMAIN_EVENT_SUSPENDED && !l->paused) {
		kind = PROV_EV_SUSPENDED;
		text = suspend_text(detail);
	} else if (l && event == VIR_DOMAIN_EVENT_RESUMED && l->paused) {
		/* (libvirt also sends one as a domain first boots) */
		kind = PROV_EV_RESUMED;
		text = "resumed";
	} else if (l && event == VIR_DOMAIN_EVENT_STOPPED) {
		if (l->stopping) {
			l->stop_seen = true;
			pthread_cond_broadcast(&p->changed);
			kind = PROV_EV_STOPPED;
			text = detail == VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN ?
			       "stopped by tally: the guest shut down gracefully" :
			       "stopped by tally: the domain was destroyed";
		} else {
			kind = classify_stop(detail, &text);
		}
	}
	pthread_mutex_unlock(&p->lock);
	if (kind)
		prov_deliver(p, name, kind, text);
	return 0;
}

/* libvirt calls this once no dispatch of the callback can still be running,
 * which may be after deregistration returns: only then may p be freed. */
void prov_lifecycle_released(void *opaque)
{
	struct prov *p = opaque;

	pthread_mutex_lock(&p->lock);
	p->cb_live--;
	pthread_cond_broadcast(&p->changed);
	pthread_mutex_unlock(&p->lock);
}

/* False when libvirt still holds the callback: p must then not be freed. */
bool prov_deregister_events(struct prov *p)
{
	struct timespec until;
	bool released;

	if (p->lifecycle_cb >= 0 && prov_conn(p))
		virConnectDomainEventDeregisterAny(prov_conn(p), p->lifecycle_cb);
	p->lifecycle_cb = -1;
	/* Closing the connections (the retired ones too) releases whatever
	 * registration a dead connection could not take back. */
	prov_disconnect(p);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 5;
	pthread_mutex_lock(&p->lock);
	while (p->cb_live > 0)
		if (pthread_cond_timedwait(&p->changed, &p->lock, &until) == ETIMEDOUT)
			break;
	released = p->cb_live == 0;
	pthread_mutex_unlock(&p->lock);
	if (!released)
		fprintf(stderr, "tally: provisioner: libvirt kept the event callback; "
			"leaking the handle rather than freeing it under a running callback\n");
	return released;
}
