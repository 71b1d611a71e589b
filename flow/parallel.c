/* Work split over threads so that results never depend on the thread
 * count: items are fixed slices of the data, each thread takes every T-th
 * item, and whatever is summed over items is summed afterwards in item
 * order by the caller. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "flow_internal.h"

typedef struct {
    parallel_task task;
    void *context;
    size_t thread, threads, items;
} worker;

static void *run_worker(void *arg)
{
    const worker *w = arg;
    for (size_t item = w->thread; item < w->items; item += w->threads)
        w->task(w->context, w->thread, item);
    return NULL;
}

void parallel_for(size_t threads, size_t items, parallel_task task, void *context)
{
    enum { MAX_THREADS = 256 };
    pthread_t ids[MAX_THREADS];
    worker workers[MAX_THREADS];
    size_t started = 1;

    if (threads > items)
        threads = items;
    if (threads > MAX_THREADS)
        threads = MAX_THREADS;
    if (threads == 0)
        return;

    for (size_t t = 0; t < threads; t++)
        workers[t] = (worker){task, context, t, threads, items};

    /* Thread 0 is the caller. A thread that cannot start leaves the items
     * after it to the caller, so the work is done in any case. */
    for (size_t t = 1; t < threads; t++) {
        if (pthread_create(&ids[t], NULL, run_worker, &workers[t]) != 0)
            break;
        started++;
    }
    for (size_t t = 0; t < threads; t++)
        workers[t].threads = started;
    run_worker(&workers[0]);
    for (size_t t = 1; t < started; t++)
        pthread_join(ids[t], NULL);
}

/* Points pushed through the blocks, chunk by chunk. */
typedef struct {
    const net_shape *shape;
    size_t substeps, blocks;
    const double *thetas, *cs;
    double *x, *logdet;
    size_t n;
    ode_work **works;
} push_job;

static void push_chunk(void *context, size_t thread, size_t item)
{
    const push_job *job = context;
    const size_t start = item * FLOW_CHUNK, d = job->shape->d;
    const size_t b = job->n - start < FLOW_CHUNK ? job->n - start : FLOW_CHUNK;
    const size_t hh = job->shape->h1 * job->shape->h2;

    for (size_t k = 0; k < job->blocks; k++)
        ode_push(job->works[thread], job->thetas + k * job->shape->n_params, job->cs + k * hh,
                 job->x + start * d, b, job->logdet ? job->logdet + start : NULL);
}

int flow_push_parallel(const net_shape *shape, size_t substeps, size_t blocks,
                       const double *thetas, const double *cs, double *x, size_t n,
                       double *logdet, size_t threads)
{
    size_t chunks = (n + FLOW_CHUNK - 1) / FLOW_CHUNK;
    if (threads > chunks)
        threads = chunks ? chunks : 1;

    ode_work **works = calloc(threads, sizeof *works);
    int failed = !works;
    for (size_t t = 0; !failed && t < threads; t++)
        failed = !(works[t] = ode_work_new(shape, substeps, FLOW_CHUNK, 0));

    if (!failed) {
        push_job job = {shape, substeps, blocks, thetas, cs, x, logdet, n, works};
        parallel_for(threads, chunks, push_chunk, &job);
    }
    for (size_t t = 0; works && t < threads; t++)
        ode_work_free(works[t]);
    free(works);
    return failed ? -1 : 0;
}
