/* A directory one process owns at a time: an exclusive flock(2) on the
 * directory itself, taken without waiting and held while the owner runs
 * (the kernel drops it when the process ends, however it ends), and the
 * owner's pid and command found again from /proc/locks for the message.
 *
 * tallyd holds its data directory this way (two nodes on one store and one
 * signing guard could sign twice), and a CPU meter its pin directory
 * (lib/meter_pins.h). */
#ifndef TALLY_DIRLOCK_H
#define TALLY_DIRLOCK_H

#include <sys/types.h>

/* Opens dir and takes the lock; *fd holds it until closed. On failure *fd
 * is -1 and: TALLY_E_STATE when another process holds it (*holder its pid,
 * 0 when /proc does not say, comm its command or ""), TALLY_E_IO when dir
 * cannot be opened or locked (why[WHY_MAX] says so). */
int dir_lock(const char *dir, int *fd, pid_t *holder, char comm[16], char *why);

/* The process holding the lock on dir: 0 when none (or unknown); its
 * command into comm (at most 15 characters, "" when unknown). */
pid_t dir_lock_holder(const char *dir, char comm[16]);

#endif
