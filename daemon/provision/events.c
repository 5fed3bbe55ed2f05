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

int prov_on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail,
			void *opaque)
{
	struct prov *p = opaque;
	const char *name = virDomainGetName(dom);
	const char *text = NULL;
	enum prov_event_kind kind = 0;
	uint8_t id[LEASE_ID_LEN];
	struct prov_lease *l;

	(void)conn;
	if (!name)
		return 0;
	pthread_mutex_lock(&p->lock);
	l = prov_find_lease_by_name(p, name);
	if (l && event == VIR_DOMAIN_EVENT_STARTED) {
		l->state = PROV_LS_RUNNING;
		kind = PROV_EV_STARTED;
		text = "the domain is running";
	} else if (l && event == VIR_DOMAIN_EVENT_STOPPED) {
		l->state = PROV_LS_DOWN;
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
	if (kind)
		memcpy(id, l->lease_id, LEASE_ID_LEN);
	pthread_mutex_unlock(&p->lock);
	if (kind && p->cfg.on_event)
		p->cfg.on_event(p->cfg.event_arg, id, kind, text);
	return 0;
}

/* libvirt calls this once no dispatch of the callback can still be running,
 * which may be after deregistration returns: only then may p be freed. */
void prov_lifecycle_released(void *opaque)
{
	struct prov *p = opaque;

	pthread_mutex_lock(&p->lock);
	p->cb_released = true;
	pthread_cond_broadcast(&p->changed);
	pthread_mutex_unlock(&p->lock);
}

/* False when libvirt still holds the callback: p must then not be freed. */
bool prov_deregister_events(struct prov *p)
{
	struct timespec until;
	bool released;

	if (p->lifecycle_cb < 0)
		return true;
	virConnectDomainEventDeregisterAny(p->conn, p->lifecycle_cb);
	p->lifecycle_cb = -1;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 5;
	pthread_mutex_lock(&p->lock);
	while (!p->cb_released)
		if (pthread_cond_timedwait(&p->changed, &p->lock, &until) == ETIMEDOUT)
			break;
	released = p->cb_released;
	pthread_mutex_unlock(&p->lock);
	if (!released)
		fprintf(stderr, "tally: provisioner: libvirt kept the event callback; "
			"leaking the handle rather than freeing it under a running callback\n");
	return released;
}
