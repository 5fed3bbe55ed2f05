/* Making a file's existence durable: what the signing guard and the
 * consensus WAL need before a signature or an input may be acted on. A
 * file's data is made durable with fsync/fdatasync on it; a new name (a file
 * created, a rename) only once its directory is fsynced too. */
#ifndef TALLY_CONSENSUS_DURABLE_H
#define TALLY_CONSENSUS_DURABLE_H

/* fsyncs the directory that holds path: 0, TALLY_E_NOMEM or TALLY_E_IO
 * (errno says why). */
int durable_dir_of(const char *path);

#endif
