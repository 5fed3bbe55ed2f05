/* The CPU meter's pin directory (see meter_pins.h). */
#include "lib/meter_pins.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lib/dirlock.h"
#include "lib/errors.h"

const char *const meter_pin_maps[] = { "ledger", "exits", "threads", NULL };
const char *const meter_pin_links[] = { "link_exit", "link_free", NULL };
const char *const meter_pin_stale[] = {
	"link_runtime", "link_switch", "link_wakeup", "link_wakeup_new",
	"counters", "cg_table", "cg_index", "cg_slot", "queued_at",
	"queued_since", "thread_seen", "tid_seen", NULL,
};

static bool in_list(const char *const *list, const char *name)
{
	for (; *list; list++)
		if (!strcmp(*list, name))
			return true;
	return false;
}

bool meter_pin_known(const char *name)
{
	return in_list(meter_pin_maps, name) || in_list(meter_pin_links, name) ||
	       in_list(meter_pin_stale, name);
}

bool meter_pins_stale(const char *dir)
{
	char path[PATH_MAX];
	const char *const *n;

	for (n = meter_pin_stale; *n; n++) {
		if (snprintf(path, sizeof(path), "%s/%s", dir, *n) >= (int)sizeof(path))
			return false;
		if (access(path, F_OK) == 0)
			return true;
	}
	return false;
}

int meter_pins_lock(const char *dir, int *fd, char *why)
{
	char comm[16];
	pid_t pid;
	int rc = dir_lock(dir, fd, &pid, comm, why);

	if (rc != TALLY_E_STATE)
		return rc;
	if (pid)
		return why_set(why, TALLY_E_STATE, "the meter pinned at %s is in use by "
			       "%s (pid %d); each node on a host pins its own ([metering] "
			       "pin_dir)", dir, comm[0] ? comm : "a process", (int)pid);
	return why_set(why, TALLY_E_STATE, "the meter pinned at %s is in use by "
		       "another process; each node on a host pins its own ([metering] pin_dir)",
		       dir);
}

/* Unlinks the meter's pins in dir: its links, or everything else. */
static int unlink_pass(const char *dir, DIR *d, bool links,
		       struct meter_pins_removal *r, char *why)
{
	char path[PATH_MAX];
	struct dirent *de;

	rewinddir(d);
	while ((de = readdir(d))) {
		if (!meter_pin_known(de->d_name) ||
		    links != !strncmp(de->d_name, "link_", 5))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (unlink(path) < 0 && errno != ENOENT)
			return why_set(why, TALLY_E_IO, "cannot remove %s: %s", path,
				       strerror(errno));
		if (r->nremoved < METER_PINS_MAX)
			snprintf(r->removed[r->nremoved++], sizeof(r->removed[0]), "%.63s",
				 de->d_name);
	}
	return 0;
}

int meter_pins_remove(const char *dir, struct meter_pins_removal *r, char *why)
{
	struct dirent *de;
	size_t nknown = 0;
	int fd, err = 0;
	DIR *d;

	memset(r, 0, sizeof(*r));
	if (access(dir, F_OK) < 0) {
		if (errno == ENOENT)
			return 0;
		return why_set(why, TALLY_E_IO, "%s: %s", dir, strerror(errno));
	}
	r->found = true;
	err = meter_pins_lock(dir, &fd, why);
	if (err)
		return err;
	d = fdopendir(dup(fd));
	if (!d) {
		close(fd);
		return why_set(why, TALLY_E_IO, "cannot read %s: %s", dir, strerror(errno));
	}
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (meter_pin_known(de->d_name))
			nknown++;
		else if (r->nkept < METER_PINS_MAX)
			snprintf(r->kept[r->nkept++], sizeof(r->kept[0]), "%.63s", de->d_name);
	}
	if (!nknown && r->nkept) {
		closedir(d);
		close(fd);
		return why_set(why, TALLY_E_INVALID, "%s holds no tally meter (it holds "
			       "%s%s): nothing removed", dir, r->kept[0],
			       r->nkept > 1 ? ", ..." : "");
	}
	/* Links first, so that the programs stop before their maps go. */
	err = unlink_pass(dir, d, true, r, why);
	if (!err)
		err = unlink_pass(dir, d, false, r, why);
	closedir(d);
	if (!err && !r->nkept) {
		if (rmdir(dir) == 0 || errno == ENOENT)
			r->dir_removed = true;
		else
			err = why_set(why, TALLY_E_IO, "cannot remove %s: %s", dir,
				      strerror(errno));
	}
	close(fd);
	return err;
}
