/* The worker pool (see workers.h). Jobs wait in a list under one mutex;
 * each thread, the caller included, takes one item at a time from the
 * oldest job that has items left, so two callers' jobs both make progress.
 * An item is a signature check (about 100 us): a lock per item costs
 * little beside it. */
#include "daemon/ledger/workers.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

struct job {
	struct job *next;
	void (*fn)(void *ctx, size_t i);
	void *ctx;
	size_t n, taken, done;
	pthread_cond_t finished;         /* done == n */
};

struct workers {
	pthread_mutex_t mu;
	pthread_cond_t work;             /* a job was queued, or stop */
	struct job *jobs;                /* with items not yet taken */
	bool stop;
	size_t nthreads;
	pthread_t *threads;
};

/* With mu held: takes the next item of j, and unlinks j once every item
 * is taken. */
static size_t take(struct workers *w, struct job *j)
{
	size_t i = j->taken++;

	if (j->taken == j->n) {
		struct job **p = &w->jobs;

		while (*p != j)
			p = &(*p)->next;
		*p = j->next;
	}
	return i;
}

/* With mu held: runs item i of j without it, then counts it done. */
static void run_item(struct workers *w, struct job *j, size_t i)
{
	pthread_mutex_unlock(&w->mu);
	j->fn(j->ctx, i);
	pthread_mutex_lock(&w->mu);
	if (++j->done == j->n)
		pthread_cond_signal(&j->finished);
}

static void *worker(void *arg)
{
	struct workers *w = arg;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		struct job *j;

		while (!w->stop && !w->jobs)
			pthread_cond_wait(&w->work, &w->mu);
		if (w->stop)
			break;
		j = w->jobs;
		run_item(w, j, take(w, j));
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

static size_t default_threads(void)
{
	long cores = sysconf(_SC_NPROCESSORS_ONLN);

	if (cores < 2)
		return 1;
	return (size_t)cores - 1 < WORKERS_MAX ? (size_t)cores - 1 : WORKERS_MAX;
}

struct workers *workers_new(size_t nthreads)
{
	struct workers *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	if (!nthreads)
		nthreads = default_threads();
	if (nthreads > WORKERS_MAX)
		nthreads = WORKERS_MAX;
	w->threads = calloc(nthreads, sizeof(*w->threads));
	if (!w->threads) {
		free(w);
		return NULL;
	}
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->work, NULL);
	for (; w->nthreads < nthreads; w->nthreads++)
		if (pthread_create(&w->threads[w->nthreads], NULL, worker, w))
			break;
	if (!w->nthreads) {
		workers_free(w);
		return NULL;
	}
	return w;
}

void workers_free(struct workers *w)
{
	if (!w)
		return;
	/* Callers wait for their own jobs: none is queued once they return. */
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	pthread_cond_broadcast(&w->work);
	pthread_mutex_unlock(&w->mu);
	for (size_t i = 0; i < w->nthreads; i++)
		pthread_join(w->threads[i], NULL);
	pthread_cond_destroy(&w->work);
	pthread_mutex_destroy(&w->mu);
	free(w->threads);
	free(w);
}

size_t workers_threads(const struct workers *w)
{
	return w ? w->nthreads : 0;
}

void workers_run(struct workers *w, size_t n, void (*fn)(void *ctx, size_t i), void *ctx)
{
	struct job j = { .fn = fn, .ctx = ctx, .n = n };
	struct job **tail;

	if (!w || n < 2) {
		for (size_t i = 0; i < n; i++)
			fn(ctx, i);
		return;
	}
	pthread_cond_init(&j.finished, NULL);
	pthread_mutex_lock(&w->mu);
	for (tail = &w->jobs; *tail; tail = &(*tail)->next)
		;
	*tail = &j;
	pthread_cond_broadcast(&w->work);
	while (j.taken < j.n)
		run_item(w, &j, take(w, &j));
	while (j.done < j.n)
		pthread_cond_wait(&j.finished, &w->mu);
	pthread_mutex_unlock(&w->mu);
	pthread_cond_destroy(&j.finished);
}
