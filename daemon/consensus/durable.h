/* Making a file's existence durable: what the signing guard and the
 * consensus WAL need before a signature or an input may be acted on. A
 * file's data is made durable with fsync/fdatasync on it; a new name (a file
 * created, a rename) only once its directory is fsynced too. */
#ifndef TALLY_CONSENSUS_DURABLE_H
#define TALLY_CONSENSUS_DURABLE_H

#include <stddef.h>
#include <stdint.h>

/* fsyncs the directory that holds path: 0, TALLY_E_NOMEM or TALLY_E_IO
 * (errno says why). */
int durable_dir_of(const char *path);

/* Writes all n bytes of b at offset off of fd (pwrite, again after a
 * partial write or EINTR): 0, or -1 with errno (ENOSPC for a write that
 * took nothing). Durable only once fd is fsynced. */
int durable_write_at(int fd, const uint8_t *b, size_t n, uint64_t off);

#endif
