/* The CPU meter's pin directory on a bpf file system: the names a meter pins
 * there (this version's and earlier versions'), the lock a meter that writes
 * holds on it while it runs, and its removal, which detaches the programs.
 *
 * Shared by the meter (daemon/meter/) and `tally node meter-detach`
 * (cli/cmd_meter.c), which may not include each other. Plain system calls:
 * no libbpf. */
#ifndef TALLY_METER_PINS_H
#define TALLY_METER_PINS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define METER_PIN_DIR_DEFAULT "/sys/fs/bpf/tally"

/* What this version pins: maps, then links (NULL-terminated). */
extern const char *const meter_pin_maps[];
extern const char *const meter_pin_links[];
/* What earlier versions pinned: their links ran on every context switch. */
extern const char *const meter_pin_stale[];

/* true when name is one a meter of any version pins. */
bool meter_pin_known(const char *name);
/* true when dir holds a pin of an earlier version of the meter. */
bool meter_pins_stale(const char *dir);

/* Opens dir and takes the writer's lock on it (flock, exclusive, without
 * waiting, lib/dirlock.h); *fd holds it until closed. TALLY_E_STATE, with
 * why[WHY_MAX] naming the holder's pid and command, when another process
 * holds it. */
int meter_pins_lock(const char *dir, int *fd, char *why);

#define METER_PINS_MAX 16

struct meter_pins_removal {
	bool found;                 /* dir existed */
	bool dir_removed;
	size_t nremoved;            /* pins unlinked */
	char removed[METER_PINS_MAX][64];
	size_t nkept;               /* entries that are not a meter's, left */
	char kept[METER_PINS_MAX][64];
};

/* Detach a meter and delete what it pinned: unlinks every pin a meter of
 * any version makes in dir (the last reference to a link detaches its
 * program), then the directory if nothing else is in it. Entries a meter
 * never makes are left and listed. A dir that does not exist is not an
 * error (found = false). Errors, with why[WHY_MAX] filled:
 *   TALLY_E_STATE    a running meter holds dir (its pid in why)
 *   TALLY_E_INVALID  dir is not empty and holds nothing a meter pins
 *   TALLY_E_IO       a pin or the directory could not be removed */
int meter_pins_remove(const char *dir, struct meter_pins_removal *r, char *why);

#endif
