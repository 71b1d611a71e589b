/* The block loss and its gradient over one training batch, split into
 * fixed units of points spread over threads. Each unit has its own gradient
 * buffer and the units are summed in order, so the result is the same for
 * every thread count.
 *
 * A target with its own path may have a hard wall at level 1 (log q = -inf
 * inside), the limit of a finite penalty that steepens with the level. No
 * flow can keep all its mass out of such a wall, and a point inside gives
 * neither a finite loss nor a gradient out of it. So the blocks at level 1
 * train such a point with the log-density of the last level below 1,
 * because that level's penalty pushes it out. Everywhere else they train
 * with level 1 itself. The importance weights of the samples still use
 * level 1, where such points weigh 0. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "af_flow.h"
#include "flow_internal.h"

/* Largest unit of a batch: small enough to spread a 1000-point batch over a
 * few cores, large enough that the matrix products stay efficient. */
enum { UNIT_POINTS = 256 };

typedef struct {
    ode_work *tape;
    double *logq, *score, *gx;
    double *wall_x, *wall_logq;  /* points at -inf at level 1, and their
                                    log q at the fallback level */
    size_t *wall_index;
    void *context;  /* the target's context for this thread */
} thread_work;

typedef struct {
    double *grad;
    double loss;    /* sum over the unit's points */
    int status;     /* 0, 1 for a non-finite loss, -1 for a target error */
    char message[1024];
} unit_result;

struct batch_work {
    net_shape shape;
    size_t substeps, batch, threads, units;
    const af_target *target;
    thread_work *per_thread;
    unit_result *per_unit;

    /* Level below 1 whose log-density trains the points where level 1 has
     * none, or -1 when there is none (the -inf is then an error). */
    double fallback;

    /* Inputs of the current call. */
    const double *theta, *m, *c, *x;
    double beta, path_weight;
};

static size_t unit_start(const batch_work *w, size_t u)
{
    return u * w->batch / w->units;
}

static int thread_work_init(batch_work *w, thread_work *t, size_t t_index)
{
    const size_t cap = (w->batch + w->units - 1) / w->units, d = w->shape.d;

    t->tape = ode_work_new(&w->shape, w->substeps, cap, 1);
    t->logq = malloc(cap * sizeof *t->logq);
    t->score = malloc(cap * d * sizeof *t->score);
    t->gx = malloc(cap * d * sizeof *t->gx);
    t->wall_x = malloc(cap * d * sizeof *t->wall_x);
    t->wall_logq = malloc(cap * sizeof *t->wall_logq);
    t->wall_index = malloc(cap * sizeof *t->wall_index);
    /* A target may have no context at all; only a failed copy is an error. */
    t->context = w->target->context;
    int copied = 1;
    if (t_index > 0 && w->target->clone) {
        t->context = w->target->clone(w->target->context);
        copied = t->context != NULL;
    }
    return t->tape && t->logq && t->score && t->gx && t->wall_x && t->wall_logq &&
                   t->wall_index && copied
               ? 0
               : -1;
}

batch_work *batch_work_new(const net_shape *shape, size_t substeps, size_t batch,
                           size_t threads, const af_target *target)
{
    batch_work *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;

    w->shape = *shape;
    w->substeps = substeps;
    w->batch = batch;
    w->units = (batch + UNIT_POINTS - 1) / UNIT_POINTS;
    /* Without a way to copy the target's context, one thread evaluates. */
    w->threads = threads < w->units ? threads : w->units;
    if (!target->clone || w->threads == 0)
        w->threads = 1;
    w->target = target;
    w->fallback = -1.0;
    w->per_thread = calloc(w->threads, sizeof *w->per_thread);
    w->per_unit = calloc(w->units, sizeof *w->per_unit);
    int failed = !w->per_thread || !w->per_unit;

    for (size_t t = 0; !failed && t < w->threads; t++)
        failed = thread_work_init(w, &w->per_thread[t], t);
    for (size_t u = 0; !failed && u < w->units; u++)
        failed = !(w->per_unit[u].grad = malloc(shape->n_params * sizeof(double)));
    if (failed) {
        batch_work_free(w);
        return NULL;
    }
    return w;
}

void batch_work_free(batch_work *w)
{
    if (!w)
        return;
    for (size_t t = 0; w->per_thread && t < w->threads; t++) {
        thread_work *tw = &w->per_thread[t];
        ode_work_free(tw->tape);
        free(tw->logq);
        free(tw->score);
        free(tw->gx);
        free(tw->wall_x);
        free(tw->wall_logq);
        free(tw->wall_index);
        if (t > 0 && tw->context && w->target->release)
            w->target->release(tw->context);
    }
    for (size_t u = 0; w->per_unit && u < w->units; u++)
        free(w->per_unit[u].grad);
    free(w->per_thread);
    free(w->per_unit);
    free(w);
}

void batch_set_fallback(batch_work *w, const af_flow *flow)
{
    w->fallback = -1.0;
    for (size_t k = 0; k < af_flow_block_count(flow); k++)
        if (af_flow_block_beta(flow, k) < 1.0)
            w->fallback = af_flow_block_beta(flow, k);
}

void flow_format_point(const double *x, size_t d, char *out, size_t len)
{
    size_t used = (size_t)snprintf(out, len, "x = (");
    for (size_t j = 0; j < d && j < 4 && used < len; j++)
        used += (size_t)snprintf(out + used, len - used, "%s%.10g", j ? ", " : "", x[j]);
    if (used < len)
        snprintf(out + used, len - used, "%s)", d > 4 ? ", ..." : "");
}

/* Explains a non-finite loss over B points: the first point whose
 * log-density or score is not finite, or else a diverged flow. */
static void explain_bad_loss(const thread_work *t, const af_target *target, size_t b,
                             size_t d, const double *x, char *msg, size_t len)
{
    char point[400];
    const int own_path = target->own_path;

    for (size_t p = 0; p < b; p++) {
        int bad_score = 0;
        for (size_t j = 0; j < d; j++)
            bad_score |= !isfinite(t->score[p * d + j]);
        double lq = t->logq[p];
        if (isfinite(lq) && !bad_score)
            continue;

        if (target->describe)
            target->describe(t->context, x + p * d, point, sizeof point);
        else
            flow_format_point(x + p * d, d, point, sizeof point);
        if (isnan(lq))
            snprintf(msg, len, "the log-density is NaN at %s; look for an invalid "
                     "argument there (log or sqrt of a negative number, 0/0) or NaN in the data",
                     point);
        else if (lq > 0)
            snprintf(msg, len, "the log-density is +inf at %s, so the density is improper "
                     "or overflows there", point);
        else if (isinf(lq) && own_path)
            snprintf(msg, len, "the log-density is -inf at %s, below annealing_level 1 or "
                     "with no block below it; a model's own path must stay finite below "
                     "level 1 (a wall as a penalty that steepens with the level) so that "
                     "training can move the mass out of it", point);
        else if (isinf(lq))
            snprintf(msg, len, "the log-density is -inf at %s: outside the support, or an "
                     "invalid argument such as a non-positive scale", point);
        else
            snprintf(msg, len, "the gradient of the log-density is not finite at %s", point);
        return;
    }
    snprintf(msg, len, "the flow diverged (its log-determinant or path length is not "
             "finite); lower --learning-rate");
}

/* At level 1 of a target with its own path, replaces log q = -inf at the
 * B points X by the log-density and score of the fallback level. Returns
 * the target's status. */
static int train_walls_below(batch_work *w, thread_work *t, const double *x, size_t b,
                             char *msg, size_t len)
{
    const size_t d = w->shape.d;
    size_t n = 0;

    if (!(w->beta >= 1.0 && w->target->own_path && w->fallback >= 0.0))
        return 0;
    for (size_t p = 0; p < b; p++)
        if (t->logq[p] == -INFINITY) {
            memcpy(t->wall_x + n * d, x + p * d, d * sizeof *x);
            t->wall_index[n++] = p;
        }
    if (n == 0)
        return 0;

    /* gx is unused until the loss is summed, so it stores the fallback scores. */
    if (w->target->eval(t->context, w->fallback, t->wall_x, n, t->wall_logq, t->gx, msg, len))
        return -1;
    for (size_t i = 0; i < n; i++) {
        size_t p = t->wall_index[i];
        t->logq[p] = t->wall_logq[i];
        memcpy(t->score + p * d, t->gx + i * d, d * sizeof *t->gx);
    }
    return 0;
}

/* Loss and gradient of unit U on thread T. Loss per point:
 * -log f(x_S) - logdet + a S sum_s |x_s - x_(s-1)|^2, with
 * log f = (1 - beta) log N(x; 0, I) + beta log q up to constants, or the
 * target at level beta itself when it defines its own path. */
static void run_unit(void *context, size_t thread, size_t u)
{
    batch_work *w = context;
    thread_work *t = &w->per_thread[thread];
    unit_result *r = &w->per_unit[u];
    const size_t d = w->shape.d, start = unit_start(w, u), b = unit_start(w, u + 1) - start;
    const double inv_b = 1.0 / (double)w->batch;
    /* Own path: log f = log q_beta, the geometric formula with beta = 1. */
    const double beta = w->target->own_path ? 1.0 : w->beta;

    ode_forward_taped(t->tape, w->theta, w->c, w->x + start * d, b);
    const double *x = ode_work_end(t->tape);
    r->status = 0;
    if (w->target->eval(t->context, w->beta, x, b, t->logq, t->score, r->message,
                        sizeof r->message) ||
        train_walls_below(w, t, x, b, r->message, sizeof r->message)) {
        r->status = -1;
        return;
    }

    /* A model without its own path may be -inf at some points (a reject, or
     * a support the declared bounds do not cover) or NaN (an invalid
     * argument such as sqrt of a negative number, which acts like a reject).
     * Such points have no energy gradient out of that region. While some
     * point of the unit is finite, they train with the base's energy
     * |x|^2 / 2 alone, which pulls them towards the origin (the middle of
     * every unconstrained parameter) and balances their log-determinant
     * term. Their importance weights are 0 anyway. When every point of the
     * unit is like this, the loss is not finite and explain_bad_loss names
     * the first one. */
    size_t outside = 0;
    for (size_t p = 0; p < b; p++)
        outside += !(t->logq[p] > -INFINITY);
    const int drop = !w->target->own_path && outside > 0 && outside < b;

    const double *logdet = ode_work_logdet(t->tape), *path = ode_work_path(t->tape);
    double sum = 0.0;
    for (size_t p = 0; p < b; p++) {
        int skip = drop && !(t->logq[p] > -INFINITY);
        double sq = 0.0;
        for (size_t j = p * d; j < (p + 1) * d; j++) {
            sq += x[j] * x[j];
            t->gx[j] = (skip ? x[j] : (1.0 - beta) * x[j] - beta * t->score[j]) * inv_b;
        }
        double energy = skip ? 0.5 * sq : 0.5 * (1.0 - beta) * sq - beta * t->logq[p];
        sum += energy - logdet[p] + w->path_weight * path[p];
    }
    r->loss = sum;
    if (!isfinite(sum)) {
        explain_bad_loss(t, w->target, b, d, x, r->message, sizeof r->message);
        r->status = 1;
        return;
    }

    memset(r->grad, 0, w->shape.n_params * sizeof *r->grad);
    ode_backward(t->tape, w->theta, w->c, w->m, t->gx, -inv_b, w->path_weight * inv_b, r->grad);
}

int batch_loss_gradient(batch_work *w, const double *theta, const double *m, const double *c,
                        const double *x, double beta, double path_weight, double *loss,
                        double *grad, char *msg, size_t len)
{
    w->theta = theta;
    w->m = m;
    w->c = c;
    w->x = x;
    w->beta = beta;
    w->path_weight = path_weight;
    parallel_for(w->threads, w->units, run_unit, w);

    double sum = 0.0;
    memset(grad, 0, w->shape.n_params * sizeof *grad);
    for (size_t u = 0; u < w->units; u++) {
        const unit_result *r = &w->per_unit[u];
        if (r->status) {
            snprintf(msg, len, "%s", r->message);
            *loss = NAN;
            return r->status;
        }
        sum += r->loss;
        for (size_t i = 0; i < w->shape.n_params; i++)
            grad[i] += r->grad[i];
    }
    *loss = sum / (double)w->batch;
    return 0;
}
