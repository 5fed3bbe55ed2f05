/* A small pool of threads that share out the items of a job: the batch
 * submission's signature checks (ledger_submit_batch), spread over the
 * cores.
 *
 * workers_run(w, n, fn, ctx) calls fn(ctx, i) once for each i in [0, n),
 * on the pool's threads and on the calling thread, which takes items too,
 * and returns when every call has returned. Items run in no particular
 * order and at the same time: fn must only touch what item i owns. Several
 * threads may run jobs at once; each job's items are shared out in turn
 * with the others'. Without a pool (w NULL, or none could be started) the
 * caller runs every item itself, in order. */
#ifndef TALLY_LEDGER_WORKERS_H
#define TALLY_LEDGER_WORKERS_H

#include <stddef.h>

struct workers;

/* nthreads helper threads (0: one fewer than the online cores, at least
 * one, at most WORKERS_MAX). NULL when memory or threads run out. */
#define WORKERS_MAX 16
struct workers *workers_new(size_t nthreads);
/* Waits for the jobs being run, then stops and joins the threads. */
void workers_free(struct workers *w);
size_t workers_threads(const struct workers *w);
void workers_run(struct workers *w, size_t n, void (*fn)(void *ctx, size_t i), void *ctx);

#endif
