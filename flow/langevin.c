/* Metropolis-adjusted Langevin (MALA) moves of a population of points
 * towards one annealing level f = N(0, I)^(1 - beta) q^beta (or the
 * target's own level beta). The Metropolis test keeps f invariant, so the
 * moves can only bring the points closer to f. One step size serves the
 * whole population and is adapted between steps from the population's
 * acceptance rate, as adaptive SMC samplers do. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "af_flow.h"
#include "flow_internal.h"

/* Points per unit of work: fixed slices, so the moves do not depend on the
 * thread count. */
enum { LANGEVIN_CHUNK = 1024 };

/* The acceptance rate that is asymptotically optimal for MALA in high
 * dimension, and how strongly a step's acceptance rate moves the log step
 * size towards it. */
#define TARGET_ACCEPTANCE 0.574
#define ADAPT_GAIN 2.0

typedef struct {
    void *context;           /* the target's context for this thread */
    double *y, *logf, *grad; /* LANGEVIN_CHUNK proposals, their log f and gradient */
} thread_work;

typedef struct {
    size_t accepted, tried;
    int status;
    char message[400];
} chunk_result;

struct langevin_work {
    const af_target *target;
    size_t d, capacity, threads, chunks;
    thread_work *per_thread;
    chunk_result *per_chunk;
    double *logf, *grad; /* capacity: log f and its gradient at the current points */

    /* Inputs of the current step. */
    double *x;
    size_t n;
    double beta, step;
    uint64_t seed, stream;
    int first;  /* evaluate the current points only */
};

langevin_work *langevin_work_new(const af_target *target, size_t capacity, size_t threads)
{
    langevin_work *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;

    const size_t d = target->dim;
    w->target = target;
    w->d = d;
    w->capacity = capacity;
    w->chunks = (capacity + LANGEVIN_CHUNK - 1) / LANGEVIN_CHUNK;
    w->threads = target->clone && threads > 1 ? threads : 1;
    w->per_thread = calloc(w->threads, sizeof *w->per_thread);
    w->per_chunk = calloc(w->chunks ? w->chunks : 1, sizeof *w->per_chunk);
    w->logf = malloc((capacity ? capacity : 1) * sizeof *w->logf);
    w->grad = malloc((capacity ? capacity : 1) * d * sizeof *w->grad);
    int failed = !w->per_thread || !w->per_chunk || !w->logf || !w->grad;

    for (size_t t = 0; !failed && t < w->threads; t++) {
        thread_work *tw = &w->per_thread[t];
        tw->y = malloc(LANGEVIN_CHUNK * d * sizeof *tw->y);
        tw->logf = malloc(LANGEVIN_CHUNK * sizeof *tw->logf);
        tw->grad = malloc(LANGEVIN_CHUNK * d * sizeof *tw->grad);
        /* A target may have no context at all; only a failed copy is an error. */
        tw->context = t > 0 ? target->clone(target->context) : target->context;
        failed = !tw->y || !tw->logf || !tw->grad || (t > 0 && !tw->context);
    }
    if (failed) {
        langevin_work_free(w);
        return NULL;
    }
    return w;
}

void langevin_work_free(langevin_work *w)
{
    if (!w)
        return;
    for (size_t t = 0; w->per_thread && t < w->threads; t++) {
        thread_work *tw = &w->per_thread[t];
        free(tw->y);
        free(tw->logf);
        free(tw->grad);
        if (t > 0 && tw->context && w->target->release)
            w->target->release(tw->context);
    }
    free(w->per_thread);
    free(w->per_chunk);
    free(w->logf);
    free(w->grad);
    free(w);
}

/* log f and its gradient at the B points X, up to a constant: the target at
 * level beta itself when it defines its own path, else
 * (1 - beta) log N(x; 0, I) + beta log q. */
static int eval_level(const langevin_work *w, void *context, const double *x, size_t b,
                      double *logf, double *grad, char *msg, size_t len)
{
    const af_target *t = w->target;
    const size_t d = w->d;

    if (t->own_path)
        return t->eval(context, w->beta, x, b, logf, grad, msg, len);
    if (t->eval(context, 1.0, x, b, logf, grad, msg, len))
        return -1;
    for (size_t p = 0; p < b; p++) {
        double sq = 0.0;
        for (size_t j = p * d; j < (p + 1) * d; j++) {
            sq += x[j] * x[j];
            grad[j] = -(1.0 - w->beta) * x[j] + w->beta * grad[j];
        }
        logf[p] = -0.5 * (1.0 - w->beta) * sq + w->beta * logf[p];
    }
    return 0;
}

static int finite_point(const double *logf, const double *grad, size_t d)
{
    int ok = isfinite(*logf);
    for (size_t j = 0; ok && j < d; j++)
        ok = isfinite(grad[j]);
    return ok;
}

/* log of the Langevin proposal density from X (gradient G) to Y, up to
 * the constant that cancels in the Metropolis ratio. */
static double log_proposal(const double *x, const double *g, const double *y, size_t d,
                           double step)
{
    double sq = 0.0;
    for (size_t j = 0; j < d; j++) {
        double r = y[j] - x[j] - 0.5 * step * step * g[j];
        sq += r * r;
    }
    return -0.5 * sq / (step * step);
}

/* One MALA step of the points of chunk C, or their first evaluation. A
 * point whose log f or gradient is not finite (outside the support) stays
 * where it is and is not counted. A proposal there is rejected. */
static void step_chunk(void *context, size_t thread, size_t c)
{
    langevin_work *w = context;
    thread_work *t = &w->per_thread[thread];
    chunk_result *r = &w->per_chunk[c];
    const size_t d = w->d, start = c * LANGEVIN_CHUNK;
    const size_t b = w->n - start < LANGEVIN_CHUNK ? w->n - start : LANGEVIN_CHUNK;
    double *x = w->x + start * d, *logf = w->logf + start, *grad = w->grad + start * d;
    const double h = w->step;

    r->accepted = r->tried = 0;
    r->status = 0;
    if (w->first) {
        r->status = eval_level(w, t->context, x, b, logf, grad, r->message, sizeof r->message);
        return;
    }

    rng_state rng;
    rng_seed(&rng, w->seed, w->stream + c);
    for (size_t j = 0; j < b * d; j++)
        t->y[j] = x[j] + 0.5 * h * h * grad[j] + h * rng_normal(&rng);
    if (eval_level(w, t->context, t->y, b, t->logf, t->grad, r->message, sizeof r->message)) {
        r->status = -1;
        return;
    }

    for (size_t p = 0; p < b; p++) {
        /* Drawn for every point, so each point's stream use is fixed. */
        double u = rng_uniform(&rng);
        if (!finite_point(&logf[p], grad + p * d, d))
            continue;
        r->tried++;
        if (!finite_point(&t->logf[p], t->grad + p * d, d))
            continue;
        double log_ratio = t->logf[p] - logf[p] +
                           log_proposal(t->y + p * d, t->grad + p * d, x + p * d, d, h) -
                           log_proposal(x + p * d, grad + p * d, t->y + p * d, d, h);
        if (log(u) < log_ratio) {
            r->accepted++;
            memcpy(x + p * d, t->y + p * d, d * sizeof *x);
            memcpy(grad + p * d, t->grad + p * d, d * sizeof *grad);
            logf[p] = t->logf[p];
        }
    }
}

/* Runs one pass over the chunks of the current points. Returns 0, or -1
 * with the first failed chunk's message; sums the acceptance counts. */
static int run_pass(langevin_work *w, size_t *accepted, size_t *tried, char *msg, size_t len)
{
    const size_t chunks = (w->n + LANGEVIN_CHUNK - 1) / LANGEVIN_CHUNK;

    parallel_for(w->threads, chunks, step_chunk, w);
    *accepted = *tried = 0;
    for (size_t c = 0; c < chunks; c++) {
        if (w->per_chunk[c].status) {
            snprintf(msg, len, "%s", w->per_chunk[c].message);
            return -1;
        }
        *accepted += w->per_chunk[c].accepted;
        *tried += w->per_chunk[c].tried;
    }
    return 0;
}

int langevin_run(langevin_work *w, double beta, double *x, size_t n, size_t steps,
                 uint64_t seed, uint64_t stream, double *step, double *acceptance, char *msg,
                 size_t len)
{
    const size_t chunks = (n + LANGEVIN_CHUNK - 1) / LANGEVIN_CHUNK;
    size_t accepted = 0, tried = 0, total_accepted = 0, total_tried = 0;

    if (n > w->capacity || !(*step > 0.0)) {
        snprintf(msg, len, "Langevin moves of %zu points with step %g: at most %zu points and "
                 "a positive step", n, *step, w->capacity);
        return -1;
    }
    w->x = x;
    w->n = n;
    w->beta = beta;
    w->seed = seed;
    w->first = 1;
    if (run_pass(w, &accepted, &tried, msg, len))
        return -1;

    w->first = 0;
    for (size_t s = 0; s < steps; s++) {
        w->step = *step;
        w->stream = stream + s * chunks;
        if (run_pass(w, &accepted, &tried, msg, len))
            return -1;
        total_accepted += accepted;
        total_tried += tried;
        /* The log step moves towards the target acceptance. Each move's
         * step is fixed before the move, so each move keeps f invariant. */
        if (tried > 0)
            *step *= exp(ADAPT_GAIN * ((double)accepted / (double)tried - TARGET_ACCEPTANCE));
    }
    *acceptance = total_tried ? (double)total_accepted / (double)total_tried : 0.0;
    return 0;
}

/* The random streams of af_flow_move start here, far above the others:
 * small numbers, and block k + 1 shifted left by 32 bits in training. */
#define MOVE_STREAM ((uint64_t)1 << 56)

int af_flow_move(const af_flow *flow, const af_target *target, double *x, size_t n,
                 size_t steps, uint64_t seed, size_t threads, double *acceptance, char *msg,
                 size_t len)
{
    const size_t d = target->dim;
    const flow_affine *map = flow_get_affine(flow);
    af_target seen = *target;
    double *z = NULL;
    langevin_work *w = NULL;
    int rc = -1;

    *acceptance = 0.0;
    if (d != af_flow_dim(flow)) {
        snprintf(msg, len, "moves of a %zu-dimensional target with a %zu-dimensional flow", d,
                 af_flow_dim(flow));
        return -1;
    }
    if (n == 0 || steps == 0)
        return 0;
    if (map && flow_affine_target(target, map, &seen)) {
        snprintf(msg, len, "out of memory for the Langevin moves");
        return -1;
    }
    z = malloc(n * d * sizeof *z);
    w = z ? langevin_work_new(&seen, n, threads) : NULL;
    if (!w) {
        snprintf(msg, len, "out of memory for the Langevin moves of %zu points", n);
    } else {
        double step = 1.65 * pow((double)d, -1.0 / 6.0);
        af_flow_to_standard(flow, x, n, z);
        rc = langevin_run(w, 1.0, z, n, steps, seed, MOVE_STREAM, &step, acceptance, msg, len);
        if (rc == 0)
            af_flow_from_standard(flow, z, n, x);
    }
    langevin_work_free(w);
    free(z);
    if (map)
        flow_affine_target_free(&seen);
    return rc;
}
