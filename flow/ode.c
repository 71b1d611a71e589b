/* RK4 integration of one flow block over unit time in S equal steps, with
 * the log-Jacobian integrated by the same stages, and the hand-written
 * backward pass through every stage for training. */
#include <stdlib.h>
#include <string.h>

#include "flow_internal.h"

enum { STAGES = 4 };

/* RK4 weights of the four stages, over 6. */
static const double rk4_weight[STAGES] = {1.0, 2.0, 2.0, 1.0};

struct ode_work {
    net_shape shape;
    size_t substeps, capacity;
    int tape;
    size_t taped;  /* points in the last taped forward pass */

    /* Stage inputs and network activations: one set, or S * 4 with a tape. */
    double *y;           /* stages x cap x d */
    net_cache *caches;   /* stages */
    double *cache_mem;

    double *k;           /* 4 x cap x d: stage velocities */
    double *div;         /* 4 x cap */
    double *x;           /* (S + 1) x cap x d with a tape, else unused */
    double *logdet;      /* cap */
    double *path;        /* cap */

    /* Backward scratch. */
    double *gx, *gk, *gy, *gdiv, *gc, *gm;
    net_scratch scratch;
    double *scratch_mem;
};

static size_t stage_sets(const ode_work *w)
{
    return w->tape ? w->substeps * STAGES : 1;
}

static int alloc_caches(ode_work *w)
{
    const size_t cap = w->capacity, h1 = w->shape.h1, h2 = w->shape.h2;
    const size_t per_set = cap * (2 * h1 + 3 * h2);
    const size_t sets = stage_sets(w);

    w->caches = calloc(sets, sizeof *w->caches);
    w->cache_mem = malloc(sets * per_set * sizeof *w->cache_mem);
    if (!w->caches || !w->cache_mem)
        return -1;

    for (size_t i = 0; i < sets; i++) {
        double *base = w->cache_mem + i * per_set;
        w->caches[i].h1 = base;
        w->caches[i].s1 = base + cap * h1;
        w->caches[i].h2 = base + 2 * cap * h1;
        w->caches[i].s2 = base + 2 * cap * h1 + cap * h2;
        w->caches[i].t = base + 2 * cap * h1 + 2 * cap * h2;
    }
    return 0;
}

static int alloc_backward(ode_work *w)
{
    const size_t cap = w->capacity, d = w->shape.d;
    const size_t h = w->shape.h1 > w->shape.h2 ? w->shape.h1 : w->shape.h2;

    w->gx = malloc(cap * d * sizeof *w->gx);
    w->gk = malloc(STAGES * cap * d * sizeof *w->gk);
    w->gy = malloc(cap * d * sizeof *w->gy);
    w->gdiv = malloc(cap * sizeof *w->gdiv);
    w->gc = malloc(w->shape.h1 * w->shape.h2 * sizeof *w->gc);
    w->gm = malloc(w->shape.h1 * w->shape.h2 * sizeof *w->gm);
    w->scratch_mem = malloc(3 * cap * h * sizeof *w->scratch_mem);
    if (!w->gx || !w->gk || !w->gy || !w->gdiv || !w->gc || !w->gm || !w->scratch_mem)
        return -1;

    w->scratch.ga1 = w->scratch_mem;
    w->scratch.ga2 = w->scratch_mem + cap * h;
    w->scratch.gh = w->scratch_mem + 2 * cap * h;
    return 0;
}

ode_work *ode_work_new(const net_shape *shape, size_t substeps, size_t capacity, int tape)
{
    ode_work *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;

    w->shape = *shape;
    w->substeps = substeps;
    w->capacity = capacity;
    w->tape = tape;

    const size_t d = shape->d;
    w->y = malloc(stage_sets(w) * capacity * d * sizeof *w->y);
    w->k = malloc(STAGES * capacity * d * sizeof *w->k);
    w->div = malloc(STAGES * capacity * sizeof *w->div);
    w->logdet = malloc(capacity * sizeof *w->logdet);
    w->path = malloc(capacity * sizeof *w->path);
    int failed = !w->y || !w->k || !w->div || !w->logdet || !w->path || alloc_caches(w);
    if (!failed && tape) {
        w->x = malloc((substeps + 1) * capacity * d * sizeof *w->x);
        failed = !w->x || alloc_backward(w);
    }
    if (failed) {
        ode_work_free(w);
        return NULL;
    }
    return w;
}

void ode_work_free(ode_work *w)
{
    if (!w)
        return;
    free(w->y);
    free(w->caches);
    free(w->cache_mem);
    free(w->k);
    free(w->div);
    free(w->x);
    free(w->logdet);
    free(w->path);
    free(w->gx);
    free(w->gk);
    free(w->gy);
    free(w->gdiv);
    free(w->gc);
    free(w->gm);
    free(w->scratch_mem);
    free(w);
}

/* One RK4 step from X to X_NEXT (may alias X) for B points, using stage set
 * FIRST_SET (with a tape) or set 0. Adds the step's divergence integral to
 * LOGDET and its squared length to PATH, when not NULL. */
static void rk4_step(ode_work *w, const double *theta, const double *c, const double *x,
                     double *x_next, size_t b, size_t first_set, double *logdet, double *path)
{
    const size_t d = w->shape.d, n = b * d, cap = w->capacity;
    const double h = 1.0 / (double)w->substeps;
    const double offset[STAGES] = {0.0, 0.5 * h, 0.5 * h, h};

    for (size_t i = 0; i < STAGES; i++) {
        size_t set = w->tape ? first_set + i : 0;
        double *y = w->y + set * cap * d;
        double *k = w->k + i * cap * d;

        if (i == 0)
            memcpy(y, x, n * sizeof *y);
        else
            for (size_t j = 0; j < n; j++)
                y[j] = x[j] + offset[i] * w->k[(i - 1) * cap * d + j];
        net_forward(&w->shape, theta, c, y, b, &w->caches[set], k,
                    logdet ? w->div + i * cap : NULL);
    }

    for (size_t p = 0; p < b; p++) {
        double sq = 0.0;
        for (size_t j = p * d; j < (p + 1) * d; j++) {
            double step = 0.0;
            for (size_t i = 0; i < STAGES; i++)
                step += rk4_weight[i] * w->k[i * cap * d + j];
            step *= h / 6.0;
            x_next[j] = x[j] + step;
            sq += step * step;
        }
        if (path)
            path[p] += sq;
        if (logdet) {
            double sum = 0.0;
            for (size_t i = 0; i < STAGES; i++)
                sum += rk4_weight[i] * w->div[i * cap + p];
            logdet[p] += h / 6.0 * sum;
        }
    }
}

void ode_push(ode_work *w, const double *theta, const double *c, double *x, size_t b,
              double *logdet)
{
    for (size_t s = 0; s < w->substeps; s++)
        rk4_step(w, theta, c, x, x, b, s * STAGES, logdet, NULL);
}

void ode_forward_taped(ode_work *w, const double *theta, const double *c, const double *x0,
                       size_t b)
{
    const size_t d = w->shape.d, cap = w->capacity;

    w->taped = b;
    memcpy(w->x, x0, b * d * sizeof *w->x);
    memset(w->logdet, 0, b * sizeof *w->logdet);
    memset(w->path, 0, b * sizeof *w->path);
    for (size_t s = 0; s < w->substeps; s++)
        rk4_step(w, theta, c, w->x + s * cap * d, w->x + (s + 1) * cap * d, b, s * STAGES,
                 w->logdet, w->path);
}

const double *ode_work_end(const ode_work *w)
{
    return w->x + w->substeps * w->capacity * w->shape.d;
}

const double *ode_work_logdet(const ode_work *w)
{
    return w->logdet;
}

const double *ode_work_path(const ode_work *w)
{
    return w->path;
}

/* Back-propagates one RK4 step s. On entry w->gx contains the gradient with
 * respect to x_(s+1); on exit, with respect to x_s. */
static void rk4_step_backward(ode_work *w, const double *theta, const double *c, size_t s,
                              size_t b, double logdet_weight, double path_weight, double *grad)
{
    const size_t d = w->shape.d, n = b * d, cap = w->capacity;
    const double h = 1.0 / (double)w->substeps;
    const double *x0 = w->x + s * cap * d, *x1 = w->x + (s + 1) * cap * d;

    /* x_(s+1) = x_s + h/6 sum_i w_i k_i; the W2 term adds 2 a (x_(s+1) - x_s). */
    for (size_t j = 0; j < n; j++) {
        double g = w->gx[j] + 2.0 * path_weight * (x1[j] - x0[j]);
        for (size_t i = 0; i < STAGES; i++)
            w->gk[i * cap * d + j] = h / 6.0 * rk4_weight[i] * g;
        w->gx[j] = g - 2.0 * path_weight * (x1[j] - x0[j]);
    }

    /* Stages in reverse: y_i = x_s + offset_i k_(i-1). */
    const double offset[STAGES] = {0.0, 0.5 * h, 0.5 * h, h};
    for (size_t i = STAGES; i-- > 0;) {
        size_t set = s * STAGES + i;
        for (size_t p = 0; p < b; p++)
            w->gdiv[p] = h / 6.0 * rk4_weight[i] * logdet_weight;

        net_backward(&w->shape, theta, c, w->y + set * cap * d, b, &w->caches[set],
                     w->gk + i * cap * d, w->gdiv, grad, w->gc, w->gy, &w->scratch);
        for (size_t j = 0; j < n; j++) {
            w->gx[j] += w->gy[j];
            if (i > 0)
                w->gk[(i - 1) * cap * d + j] += offset[i] * w->gy[j];
        }
    }
}

void ode_backward(ode_work *w, const double *theta, const double *c, const double *m,
                  const double *gx_end, double logdet_weight, double path_weight, double *grad)
{
    const size_t n = w->taped * w->shape.d;

    memcpy(w->gx, gx_end, n * sizeof *w->gx);
    memset(w->gc, 0, w->shape.h1 * w->shape.h2 * sizeof *w->gc);
    for (size_t s = w->substeps; s-- > 0;)
        rk4_step_backward(w, theta, c, s, w->taped, logdet_weight, path_weight, grad);
    net_finish_gradient(&w->shape, theta, m, w->gc, grad, w->gm);
}
