/* Adaptive Dormand-Prince 5(4) integration of the flow's blocks for
 * sampling: each point carries its own step size, chosen from the embedded
 * error estimate of its state and its divergence integral together. The
 * velocity does not depend on time, so points at different times still
 * share one batched network evaluation per stage. Not used in training,
 * whose backward pass needs the fixed RK4 steps of ode.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flow_internal.h"

/* Stages, counting the seventh (first same as last: the velocity at the
 * accepted end point is the next step's first stage). */
enum { DOPRI_STAGES = 7 };

/* The Dormand-Prince 5(4) pair: the stage matrix, whose last row is the
 * fifth-order weights, and the difference of the fifth- and fourth-order
 * weights, which estimates the local error. tests/flow/test_sampler.c
 * checks the integrator against RK4 with 400 steps. */
static const double stage_matrix[DOPRI_STAGES][DOPRI_STAGES - 1] = {
    {0},
    {1.0 / 5.0},
    {3.0 / 40.0, 9.0 / 40.0},
    {44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0},
    {19372.0 / 6561.0, -25360.0 / 2187.0, 64448.0 / 6561.0, -212.0 / 729.0},
    {9017.0 / 3168.0, -355.0 / 33.0, 46732.0 / 5247.0, 49.0 / 176.0, -5103.0 / 18656.0},
    {35.0 / 384.0, 0.0, 500.0 / 1113.0, 125.0 / 192.0, -2187.0 / 6784.0, 11.0 / 84.0},
};
static const double error_weight[DOPRI_STAGES] = {
    71.0 / 57600.0,   0.0, -71.0 / 16695.0, 71.0 / 1920.0, -17253.0 / 339200.0,
    22.0 / 525.0,     -1.0 / 40.0};

/* Step size control: the usual safety factor, the bounds on how much one
 * step may grow or shrink the next, the first step of a point, and the
 * smallest step before the integration is declared failed. */
#define SAFETY 0.9
#define GROW_MAX 5.0
#define SHRINK_MAX 0.2
#define FIRST_STEP 0.1
#define MIN_STEP 1e-10

/* Workspace for one chunk of up to CAP points. Arrays named per point are
 * indexed by the point's place in the chunk; the others by its place in
 * the list of points still integrating. */
typedef struct {
    size_t cap, d;
    net_cache cache;
    double *cache_mem;
    double *t, *h;        /* per point: time reached in the block, next step */
    double *k_first;      /* per point x d: velocity at the point (the first stage) */
    double *div_first;    /* per point: divergence at the point */
    double *block_logdet; /* per point: divergence integral of the current block */
    size_t *active;       /* indices of the points still integrating */
    double *step;         /* active: this step's size, clipped to end at t = 1 */
    double *x0, *y, *x5;  /* active x d: step start, stage input, fifth-order end */
    double *k;            /* DOPRI_STAGES x active x d */
    double *div;          /* DOPRI_STAGES x active */
} dopri_work;

static void dopri_work_free(dopri_work *w)
{
    if (!w)
        return;
    free(w->cache_mem);
    free(w->t);
    free(w->h);
    free(w->k_first);
    free(w->div_first);
    free(w->block_logdet);
    free(w->active);
    free(w->step);
    free(w->x0);
    free(w->y);
    free(w->x5);
    free(w->k);
    free(w->div);
    free(w);
}

static dopri_work *dopri_work_new(const net_shape *shape, size_t cap)
{
    dopri_work *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;

    const size_t d = shape->d, h1 = shape->h1, h2 = shape->h2;
    w->cap = cap;
    w->d = d;
    w->cache_mem = malloc(cap * (2 * h1 + 3 * h2) * sizeof *w->cache_mem);
    w->t = malloc(cap * sizeof *w->t);
    w->h = malloc(cap * sizeof *w->h);
    w->k_first = malloc(cap * d * sizeof *w->k_first);
    w->div_first = malloc(cap * sizeof *w->div_first);
    w->block_logdet = malloc(cap * sizeof *w->block_logdet);
    w->active = malloc(cap * sizeof *w->active);
    w->step = malloc(cap * sizeof *w->step);
    w->x0 = malloc(cap * d * sizeof *w->x0);
    w->y = malloc(cap * d * sizeof *w->y);
    w->x5 = malloc(cap * d * sizeof *w->x5);
    w->k = malloc(DOPRI_STAGES * cap * d * sizeof *w->k);
    w->div = malloc(DOPRI_STAGES * cap * sizeof *w->div);
    if (!w->cache_mem || !w->t || !w->h || !w->k_first || !w->div_first || !w->block_logdet ||
        !w->active || !w->step || !w->x0 || !w->y || !w->x5 || !w->k || !w->div) {
        dopri_work_free(w);
        return NULL;
    }
    double *base = w->cache_mem;
    w->cache = (net_cache){base, base + cap * h1, base + 2 * cap * h1,
                           base + 2 * cap * h1 + cap * h2, base + 2 * cap * h1 + 2 * cap * h2};
    return w;
}

/* Root mean square over the D coordinates and the divergence integral of
 * the estimated local errors, each over TOL (1 + the larger magnitude at
 * the step's ends): at most 1 means the step meets the tolerance.
 * NOTE: the estimate assumes a smooth field, but softplus of sharpness 20
 * nearly has kinks. On a 2-block test flow the log-density then erred by
 * up to 300 times TOL at TOL = 1e-6, against 0.4 times with sharpness 1. */
static double error_norm(const dopri_work *w, size_t i, size_t na, double h, double tol,
                         double logdet0, double logdet5)
{
    const size_t d = w->d;
    double sum = 0.0;

    for (size_t j = 0; j < d; j++) {
        double e = 0.0;
        for (size_t s = 0; s < DOPRI_STAGES; s++)
            e += error_weight[s] * w->k[(s * na + i) * d + j];
        double scale = tol * (1.0 + fmax(fabs(w->x0[i * d + j]), fabs(w->x5[i * d + j])));
        sum += (h * e / scale) * (h * e / scale);
    }
    double e = 0.0;
    for (size_t s = 0; s < DOPRI_STAGES; s++)
        e += error_weight[s] * w->div[s * na + i];
    double scale = tol * (1.0 + fmax(fabs(logdet0), fabs(logdet5)));
    sum += (h * e / scale) * (h * e / scale);
    return sqrt(sum / (double)(d + 1));
}

/* Stage S of one step for the NA active points: its input y = x0 + h sum
 * a_sr k_r, then the velocity and divergence there. */
static void eval_stage(dopri_work *w, const net_shape *shape, const double *theta,
                       const double *c, size_t s, size_t na)
{
    const size_t d = w->d;

    for (size_t i = 0; i < na; i++) {
        const double h = w->step[i];
        for (size_t j = 0; j < d; j++) {
            double sum = 0.0;
            for (size_t r = 0; r < s; r++)
                sum += stage_matrix[s][r] * w->k[(r * na + i) * d + j];
            w->y[i * d + j] = w->x0[i * d + j] + h * sum;
        }
    }
    net_forward(shape, theta, c, w->y, na, &w->cache, w->k + s * na * d, w->div + s * na);
}

/* Decides the step of active point I (chunk point P) from its error norm:
 * accepts it (moving X and the divergence integral on, the last stage
 * becoming the next first one) or rejects it, and chooses the next step.
 * Returns 0, or -1 when a rejection shrinks the step below MIN_STEP. */
static int finish_step(dopri_work *w, size_t i, size_t na, size_t p, double *x, double tol,
                       af_sample_stats *stats)
{
    const size_t d = w->d;
    const double h = w->step[i];
    const int last = h == 1.0 - w->t[p];
    double logdet5 = w->block_logdet[p];
    for (size_t s = 0; s < DOPRI_STAGES - 1; s++)
        logdet5 += h * stage_matrix[DOPRI_STAGES - 1][s] * w->div[s * na + i];

    double err = error_norm(w, i, na, h, tol, w->block_logdet[p], logdet5);
    /* fmax and fmin drop a NaN, so a NaN error shrinks the step as far as
     * allowed, and a step that stays NaN ends at MIN_STEP. */
    double factor = fmin(GROW_MAX, fmax(SHRINK_MAX, SAFETY * pow(err, -0.2)));
    if (!(err <= 1.0)) {
        stats->rejected++;
        w->h[p] = h * fmin(factor, 1.0);
        return w->h[p] < MIN_STEP ? -1 : 0;
    }

    stats->accepted++;
    w->t[p] = last ? 1.0 : w->t[p] + h;
    w->block_logdet[p] = logdet5;
    memcpy(x + p * d, w->x5 + i * d, d * sizeof *x);
    memcpy(w->k_first + p * d, w->k + ((DOPRI_STAGES - 1) * na + i) * d, d * sizeof *x);
    w->div_first[p] = w->div[(DOPRI_STAGES - 1) * na + i];
    /* A last step clipped short is a poor guide to the next block's first
     * step, so the larger of the two proposals is kept. */
    w->h[p] = last ? fmax(w->h[p], h * factor) : h * factor;
    return 0;
}

/* Integrates the B points X (in place) through one block over unit time,
 * adding each point's divergence integral to LOGDET. FIRST_BLOCK starts
 * every point at FIRST_STEP; later blocks start from the step the previous
 * block ended with. Returns 0, or -1 with a message naming the point. */
static int dopri_block(dopri_work *w, const net_shape *shape, const double *theta,
                       const double *c, double *x, size_t b, double *logdet, double tol,
                       int first_block, af_sample_stats *stats, char *msg, size_t len)
{
    const size_t d = w->d;

    net_forward(shape, theta, c, x, b, &w->cache, w->k_first, w->div_first);
    for (size_t p = 0; p < b; p++) {
        w->t[p] = 0.0;
        w->block_logdet[p] = 0.0;
        if (first_block)
            w->h[p] = FIRST_STEP;
    }

    for (;;) {
        /* The points still short of t = 1. */
        size_t na = 0;
        for (size_t p = 0; p < b; p++)
            if (w->t[p] < 1.0)
                w->active[na++] = p;
        if (na == 0)
            break;
        for (size_t i = 0; i < na; i++) {
            size_t p = w->active[i];
            /* Never leave a remainder below MIN_STEP before t = 1. */
            w->step[i] = w->h[p] >= 1.0 - w->t[p] - MIN_STEP ? 1.0 - w->t[p] : w->h[p];
            memcpy(w->x0 + i * d, x + p * d, d * sizeof *x);
            memcpy(w->k + i * d, w->k_first + p * d, d * sizeof *x);
            w->div[i] = w->div_first[p];
        }

        for (size_t s = 1; s < DOPRI_STAGES; s++)
            eval_stage(w, shape, theta, c, s, na);
        /* The last stage's input is the fifth-order end point. */
        memcpy(w->x5, w->y, na * d * sizeof *x);
        for (size_t i = 0; i < na; i++) {
            size_t p = w->active[i];
            if (finish_step(w, i, na, p, x, tol, stats)) {
                snprintf(msg, len, "the Dormand-Prince step fell below %g at a point at time "
                         "%g of a block; the velocity field is too stiff for tolerance %g",
                         MIN_STEP, w->t[p], tol);
                return -1;
            }
        }
    }
    for (size_t p = 0; p < b; p++)
        logdet[p] += w->block_logdet[p];
    return 0;
}

/* Points integrated chunk by chunk: the chunks are fixed slices of the
 * points, so the results do not depend on the thread count. */
typedef struct {
    const net_shape *shape;
    size_t blocks;
    const double *thetas, *cs;
    double *x, *logdet;
    size_t n;
    double tol;
    dopri_work **works;
    af_sample_stats *chunk_stats;
    int *chunk_status;
    char (*chunk_message)[256];
} dopri_job;

static void dopri_chunk(void *context, size_t thread, size_t item)
{
    const dopri_job *job = context;
    const size_t start = item * FLOW_CHUNK, d = job->shape->d;
    const size_t b = job->n - start < FLOW_CHUNK ? job->n - start : FLOW_CHUNK;
    const size_t hh = job->shape->h1 * job->shape->h2;

    for (size_t k = 0; k < job->blocks && !job->chunk_status[item]; k++) {
        char why[200];
        if (dopri_block(job->works[thread], job->shape, job->thetas + k * job->shape->n_params,
                        job->cs + k * hh, job->x + start * d, b, job->logdet + start, job->tol,
                        k == 0, &job->chunk_stats[item], why, sizeof why)) {
            snprintf(job->chunk_message[item], sizeof job->chunk_message[item],
                     "block %zu, samples %zu to %zu: %s", k + 1, start + 1, start + b, why);
            job->chunk_status[item] = -1;
        }
    }
}

int dopri_push_parallel(const net_shape *shape, size_t blocks, const double *thetas,
                        const double *cs, double *x, size_t n, double *logdet, double tol,
                        size_t threads, af_sample_stats *stats, char *msg, size_t len)
{
    const size_t chunks = (n + FLOW_CHUNK - 1) / FLOW_CHUNK;
    if (threads > chunks)
        threads = chunks ? chunks : 1;

    dopri_work **works = calloc(threads, sizeof *works);
    af_sample_stats *chunk_stats = calloc(chunks ? chunks : 1, sizeof *chunk_stats);
    int *chunk_status = calloc(chunks ? chunks : 1, sizeof *chunk_status);
    char(*chunk_message)[256] = calloc(chunks ? chunks : 1, sizeof *chunk_message);
    int failed = !works || !chunk_stats || !chunk_status || !chunk_message;
    for (size_t t = 0; !failed && t < threads; t++)
        failed = !(works[t] = dopri_work_new(shape, FLOW_CHUNK));
    if (failed)
        snprintf(msg, len, "out of memory for the Dormand-Prince integrator");

    if (!failed) {
        dopri_job job = {shape, blocks, thetas, cs, x, logdet, n, tol, works,
                         chunk_stats, chunk_status, chunk_message};
        parallel_for(threads, chunks, dopri_chunk, &job);
        *stats = (af_sample_stats){0, 0};
        for (size_t i = 0; i < chunks; i++) {
            stats->accepted += chunk_stats[i].accepted;
            stats->rejected += chunk_stats[i].rejected;
            if (!failed && chunk_status[i]) {
                snprintf(msg, len, "%s", chunk_message[i]);
                failed = 1;
            }
        }
    }
    for (size_t t = 0; works && t < threads; t++)
        dopri_work_free(works[t]);
    free(works);
    free(chunk_stats);
    free(chunk_status);
    free(chunk_message);
    return failed ? -1 : 0;
}
