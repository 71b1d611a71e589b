/* The trained flow as a chain of blocks, and sampling from it: fresh
 * N(0, I) points pushed through every block, with the exact divergence
 * integrated for each sample's flow log-density. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "af_flow.h"
#include "flow_internal.h"

struct af_flow {
    net_shape shape;
    size_t substeps;
    size_t count, capacity;
    int complete;   /* training finished */
    double *beta;   /* per block */
    double *theta;  /* capacity x n_params */
    flow_affine *affine;  /* map from the flow's coordinates to the target's, or NULL */
};

struct af_flow *flow_new(const net_shape *shape, size_t substeps, size_t capacity)
{
    af_flow *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->shape = *shape;
    f->substeps = substeps;
    f->capacity = capacity ? capacity : 1;
    f->beta = malloc(f->capacity * sizeof *f->beta);
    f->theta = malloc(f->capacity * shape->n_params * sizeof *f->theta);
    if (!f->beta || !f->theta) {
        af_flow_free(f);
        return NULL;
    }
    return f;
}

int flow_append(struct af_flow *f, double beta, const double *theta)
{
    if (f->count == f->capacity) {
        size_t capacity = 2 * f->capacity;
        double *b = realloc(f->beta, capacity * sizeof *b);
        if (b)
            f->beta = b;
        double *t = realloc(f->theta, capacity * f->shape.n_params * sizeof *t);
        if (t)
            f->theta = t;
        if (!b || !t)
            return -1;
        f->capacity = capacity;
    }
    f->beta[f->count] = beta;
    memcpy(f->theta + f->count * f->shape.n_params, theta,
           f->shape.n_params * sizeof *f->theta);
    f->count++;
    return 0;
}

int af_flow_complete(const af_flow *f)
{
    return f->complete;
}

void flow_mark_complete(struct af_flow *f, int complete)
{
    f->complete = complete;
}

const net_shape *flow_shape(const struct af_flow *f)
{
    return &f->shape;
}

size_t flow_substeps(const struct af_flow *f)
{
    return f->substeps;
}

const double *flow_block_weights(const struct af_flow *f, size_t block)
{
    return f->theta + block * f->shape.n_params;
}

void af_flow_free(af_flow *f)
{
    if (!f)
        return;
    free(f->beta);
    free(f->theta);
    flow_affine_free(f->affine);
    free(f);
}

const flow_affine *flow_get_affine(const struct af_flow *f)
{
    return f->affine;
}

void flow_set_affine(struct af_flow *f, flow_affine *map)
{
    flow_affine_free(f->affine);
    f->affine = map;
}

int af_flow_standardised(const af_flow *f)
{
    return f->affine != NULL;
}

void af_flow_to_standard(const af_flow *f, const double *x, size_t n, double *z)
{
    if (f->affine)
        flow_affine_invert(f->affine, x, n, z);
    else
        memmove(z, x, n * f->shape.d * sizeof *z);
}

void af_flow_from_standard(const af_flow *f, const double *z, size_t n, double *x)
{
    if (f->affine)
        flow_affine_apply(f->affine, z, n, x);
    else
        memmove(x, z, n * f->shape.d * sizeof *x);
}

size_t af_flow_dim(const af_flow *f)
{
    return f->shape.d;
}

size_t af_flow_block_count(const af_flow *f)
{
    return f->count;
}

double af_flow_block_beta(const af_flow *f, size_t block)
{
    return block < f->count ? f->beta[block] : NAN;
}

int af_flow_sample_with(const af_flow *f, const af_flow_options *o, size_t n, double *x,
                        double *log_rho, af_sample_stats *stats, char *msg, size_t len)
{
    const size_t d = f->shape.d, hh = f->shape.h1 * f->shape.h2;
    const size_t threads = o->threads ? o->threads : 1;
    const double log_norm = -0.5 * (double)d * log(2.0 * FLOW_PI);
    double *m = malloc(hh * sizeof *m), *c = malloc((f->count ? f->count : 1) * hh * sizeof *c);
    double *logdet = calloc(n ? n : 1, sizeof *logdet);
    af_sample_stats counted = {0, 0};
    int failed = !m || !c || !logdet;

    if (failed)
        snprintf(msg, len, "out of memory while sampling %zu points", n);
    if (!failed && o->sampler == AF_SAMPLER_DOPRI && !(o->ode_tolerance > 0.0)) {
        snprintf(msg, len, "invalid ODE tolerance %g: expected a positive number",
                 o->ode_tolerance);
        failed = 1;
    }

    if (!failed) {
        for (size_t k = 0; k < f->count; k++)
            net_prepare(&f->shape, f->theta + k * f->shape.n_params, m, c + k * hh);

        /* Base points and log N(x0; 0, I), drawn in order from one stream. */
        rng_state rng;
        rng_seed(&rng, o->seed, 3);
        for (size_t p = 0; p < n; p++) {
            double sq = 0.0;
            for (size_t j = p * d; j < (p + 1) * d; j++) {
                x[j] = rng_normal(&rng);
                sq += x[j] * x[j];
            }
            log_rho[p] = log_norm - 0.5 * sq;
        }

        /* log rho_K = log pi0(x0) - sum_k integral of div v_k. */
        if (o->sampler == AF_SAMPLER_DOPRI)
            failed = dopri_push_parallel(&f->shape, f->count, f->theta, c, x, n, logdet,
                                         o->ode_tolerance, threads, &counted, msg, len);
        else if (flow_push_parallel(&f->shape, f->substeps, f->count, f->theta, c, x, n,
                                    logdet, threads)) {
            snprintf(msg, len, "out of memory while sampling %zu points", n);
            failed = 1;
        }
        for (size_t p = 0; !failed && p < n; p++)
            log_rho[p] -= logdet[p];
    }

    /* Into the target's coordinates: x = shift + R z, rho_x = rho_z / det R. */
    double *z = !failed && f->affine ? malloc(n * d * sizeof *z) : NULL;
    if (z) {
        memcpy(z, x, n * d * sizeof *z);
        flow_affine_apply(f->affine, z, n, x);
        for (size_t p = 0; p < n; p++)
            log_rho[p] -= f->affine->log_det;
    } else if (!failed && f->affine) {
        snprintf(msg, len, "out of memory while sampling %zu points", n);
        failed = 1;
    }
    free(z);
    if (stats)
        *stats = counted;
    free(m);
    free(c);
    free(logdet);
    return failed ? -1 : 0;
}

int af_flow_sample(const af_flow *f, size_t n, uint64_t seed, size_t threads, double *x,
                   double *log_rho, char *msg, size_t len)
{
    af_flow_options o;
    af_flow_options_default(&o);
    o.seed = seed;
    o.threads = threads;
    o.sampler = AF_SAMPLER_RK4;
    return af_flow_sample_with(f, &o, n, x, log_rho, NULL, msg, len);
}

void flow_push_point(const struct af_flow *f, double *x, double *logdet)
{
    const size_t hh = f->shape.h1 * f->shape.h2;
    ode_work *work = ode_work_new(&f->shape, f->substeps, 1, 0);
    double *m = malloc(hh * sizeof *m), *c = malloc(hh * sizeof *c);

    *logdet = 0.0;
    if (work && m && c)
        for (size_t k = 0; k < f->count; k++) {
            const double *theta = f->theta + k * f->shape.n_params;
            net_prepare(&f->shape, theta, m, c);
            ode_push(work, theta, c, x, 1, logdet);
        }
    else
        *logdet = NAN;
    ode_work_free(work);
    free(m);
    free(c);
}
