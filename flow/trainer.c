/* Block-by-block training of the Annealing Flow: the geometric beta
 * schedule, the per-block loss and its Adam minimisation, and the pushing
 * of the training set from block to block. */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "af_flow.h"
#include "flow_internal.h"

/* Progress reports per block, besides the one at its end. */
enum { REPORTS_PER_BLOCK = 10 };

void af_flow_options_default(af_flow_options *o)
{
    memset(o, 0, sizeof *o);
    o->hidden1 = 32;
    o->hidden2 = 32;
    o->sharpness = 20.0;
    o->substeps = 3;
    o->adaptive = 1;
    o->ess_fraction = 0.5;
    o->max_blocks = 40;
    o->blocks = 8;
    o->beta_first = 0.05;
    o->final_blocks = 1;
    o->max_final_blocks = 5;
    o->target_ess = 0.9;
    o->train_size = 100000;
    o->batch_size = 1000;
    o->iterations = 400;
    o->learning_rate = 2e-3;
    o->clip_norm = 1.0;
    o->w2_weight = 0.01;
    o->seed = 1;
    o->standardise = 1;
    o->plateau_stop = 1;
    o->threads = 1;
    o->sampler = AF_SAMPLER_RK4;
    o->ode_tolerance = 1e-6;
}

static int check_options(const af_target *t, const af_flow_options *o, char *msg, size_t len)
{
    const char *bad = NULL;

    if (t->dim == 0)
        bad = "the target has no parameters (dimension 0)";
    else if (o->hidden1 == 0 || o->hidden2 == 0)
        bad = "hidden layer widths must be positive";
    else if (!(o->sharpness > 0))
        bad = "softplus sharpness must be positive";
    else if (o->substeps == 0)
        bad = "the number of RK4 steps must be positive";
    else if (o->blocks == 0 || o->max_blocks == 0)
        bad = "the number of blocks must be positive";
    else if (!(o->ess_fraction > 0 && o->ess_fraction < 1))
        bad = "the ESS fraction of the adaptive schedule must be in (0, 1)";
    else if (o->max_final_blocks < o->final_blocks || !(o->target_ess > 0 && o->target_ess <= 1))
        bad = "the most final blocks must be at least the fewest, the target ESS in (0, 1]";
    else if (!(o->beta_first > 0 && o->beta_first <= 1))
        bad = "the first beta must be in (0, 1]";
    else if (o->batch_size == 0 || o->train_size < o->batch_size)
        bad = "the batch size must be positive and at most the training set size";
    else if (o->iterations == 0)
        bad = "the number of iterations per block must be positive";
    else if (!(o->learning_rate > 0) || !(o->clip_norm > 0) || !(o->w2_weight >= 0))
        bad = "learning rate and clip norm must be positive, the W2 weight non-negative";
    if (bad)
        snprintf(msg, len, "invalid flow options: %s", bad);
    return bad != NULL;
}

/* Blocks at beta = 1 after the first one there. */
static size_t extra_blocks(const af_flow *flow)
{
    size_t at_one = 0;
    for (size_t k = 0; k < af_flow_block_count(flow); k++)
        at_one += af_flow_block_beta(flow, k) >= 1.0;
    return at_one > 0 ? at_one - 1 : 0;
}

/* Blocks of a full run for the progress display, or 0 when adaptive. */
static size_t planned_blocks(const af_flow_options *o)
{
    int fixed = !o->adaptive && o->max_final_blocks == o->final_blocks;
    return fixed ? o->blocks + o->final_blocks : 0;
}

static uint64_t hash_size(uint64_t h, size_t v)
{
    uint64_t x = v;
    return af_flow_hash(h, &x, sizeof x);
}

static uint64_t hash_double(uint64_t h, double v)
{
    return af_flow_hash(h, &v, sizeof v);
}

uint64_t af_flow_options_hash(const af_flow_options *o)
{
    uint64_t h = AF_FLOW_HASH_INIT;
    const size_t sizes[] = {o->hidden1,      o->hidden2,    o->substeps,
                            o->blocks,       o->final_blocks, o->train_size,
                            o->batch_size,   o->iterations, (size_t)o->adaptive,
                            o->max_blocks,   o->max_final_blocks, (size_t)o->standardise,
                            (size_t)o->plateau_stop};
    const double reals[] = {o->sharpness, o->beta_first, o->learning_rate, o->clip_norm,
                            o->w2_weight, o->ess_fraction, o->target_ess};

    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        h = hash_size(h, sizes[i]);
    for (size_t i = 0; i < sizeof reals / sizeof reals[0]; i++)
        h = hash_double(h, reals[i]);
    /* Hashed only when on, so flow files trained without moves still match. */
    if (o->langevin_steps)
        h = hash_size(h, o->langevin_steps);
    return hash_size(h, (size_t)o->seed);
}

/* Appends a "KEY=VALUE\n" line formatted from FORMAT to TEXT at *USED.
 * Returns -1 when it does not fit in SIZE bytes. */
static int append_line(char *text, size_t size, size_t *used, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    int n = vsnprintf(text + *used, size - *used, format, args);
    va_end(args);
    if (n < 0 || (size_t)n >= size - *used)
        return -1;
    *used += (size_t)n;
    return 0;
}

int af_flow_options_text(const af_flow_options *o, char *text, size_t size)
{
    /* The same options as af_flow_options_hash; keep the two lists in step. */
    const struct {
        const char *key;
        size_t value;
    } sizes[] = {
        {"hidden1", o->hidden1},
        {"hidden2", o->hidden2},
        {"substeps", o->substeps},
        {"blocks", o->blocks},
        {"final_blocks", o->final_blocks},
        {"train_size", o->train_size},
        {"batch_size", o->batch_size},
        {"iterations", o->iterations},
        {"adaptive", (size_t)o->adaptive},
        {"max_blocks", o->max_blocks},
        {"max_final_blocks", o->max_final_blocks},
        {"standardise", (size_t)o->standardise},
        {"plateau_stop", (size_t)o->plateau_stop},
        {"langevin_steps", o->langevin_steps},
    };
    const struct {
        const char *key;
        double value;
    } reals[] = {
        {"sharpness", o->sharpness},       {"beta_first", o->beta_first},
        {"learning_rate", o->learning_rate}, {"clip_norm", o->clip_norm},
        {"w2_weight", o->w2_weight},       {"ess_fraction", o->ess_fraction},
        {"target_ess", o->target_ess},
    };
    size_t used = 0;

    if (size == 0)
        return -1;
    text[0] = '\0';
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        if (append_line(text, size, &used, "%s=%zu\n", sizes[i].key, sizes[i].value))
            return -1;
    for (size_t i = 0; i < sizeof reals / sizeof reals[0]; i++) {
        /* The shortest of %.15g and %.17g that reads back as the same double. */
        char number[32];
        snprintf(number, sizeof number, "%.15g", reals[i].value);
        if (strtod(number, NULL) != reals[i].value)
            snprintf(number, sizeof number, "%.17g", reals[i].value);
        if (append_line(text, size, &used, "%s=%s\n", reals[i].key, number))
            return -1;
    }
    return append_line(text, size, &used, "seed=%llu\n", (unsigned long long)o->seed);
}

/* Beta of block K (0-based) in the geometric schedule: from beta_first to 1
 * over the annealing blocks, then 1 for the final blocks. */
static double schedule_beta(const af_flow_options *o, size_t k)
{
    if (k + 1 >= o->blocks)
        return 1.0;
    double frac = (double)k / (double)(o->blocks - 1);
    return pow(o->beta_first, 1.0 - frac);
}

static double seconds_since(const struct timespec *start)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - start->tv_sec) + 1e-9 * (double)(now.tv_nsec - start->tv_nsec);
}

/* Training points used to choose the next beta: enough for an ESS estimate
 * good to a few percent. */
enum { SCHEDULE_POINTS = 4096 };

static double ess_fraction(const double *log_w, size_t n);

/* State of one training run. */
typedef struct {
    const af_target *target;
    const af_flow_options *opt;
    net_shape shape;
    double *train;        /* train_size x d */
    double *batch;        /* batch x d */
    double *grad, *m, *c; /* parameter gradient, net_prepare constants */
    double *train_logrho;    /* train_size: flow log-density of each training point */
    double *logdet;          /* train_size: scratch for one push */
    double *schedule_logq;   /* 2 x SCHEDULE_POINTS values for the adaptive schedule */
    /* With Langevin moves only: the moved training points have no known
     * flow log-density, so these points, pushed through the blocks and
     * never moved, measure the importance ESS of the flow that sampling uses. */
    double *probe;           /* SCHEDULE_POINTS x d, or NULL */
    double *probe_logrho;    /* flow log-density of each probe point */
    langevin_work *langevin; /* NULL without Langevin moves */
    double langevin_step;    /* MALA step size, carried from block to block */
    adam_state adam;
    batch_work *work;
    rng_state rng;
    struct timespec start;
} trainer;

/* N points X of N(0, I) in dimension D from RNG, with their log-density. */
static void draw_base_points(rng_state *rng, double *x, double *log_rho, size_t n, size_t d)
{
    const double log_norm = -0.5 * (double)d * log(2.0 * FLOW_PI);
    for (size_t p = 0; p < n; p++) {
        double sq = 0.0;
        for (size_t j = p * d; j < (p + 1) * d; j++) {
            x[j] = rng_normal(rng);
            sq += x[j] * x[j];
        }
        log_rho[p] = log_norm - 0.5 * sq;
    }
}

static size_t probe_count(const af_flow_options *o)
{
    return o->train_size < SCHEDULE_POINTS ? o->train_size : SCHEDULE_POINTS;
}

/* Sets up the Langevin moves: their workspace, the first step size and the
 * probe points, drawn from a stream of their own. */
static int langevin_init(trainer *tr)
{
    const af_flow_options *o = tr->opt;
    const size_t d = tr->shape.d, n = probe_count(o);

    tr->langevin = langevin_work_new(tr->target, o->train_size, o->threads ? o->threads : 1);
    tr->probe = malloc(n * d * sizeof *tr->probe);
    tr->probe_logrho = malloc(n * sizeof *tr->probe_logrho);
    if (!tr->langevin || !tr->probe || !tr->probe_logrho)
        return -1;

    /* About the step at which MALA on N(0, I_d) in high dimension accepts
     * 57% of its moves. The adaptation takes it from there. */
    tr->langevin_step = 1.65 * pow((double)d, -1.0 / 6.0);
    rng_state rng;
    rng_seed(&rng, o->seed, 5);
    draw_base_points(&rng, tr->probe, tr->probe_logrho, n, d);
    return 0;
}

static int trainer_init(trainer *tr, const af_target *t, const af_flow_options *o)
{
    const size_t d = t->dim, b = o->batch_size;

    memset(tr, 0, sizeof *tr);
    tr->target = t;
    tr->opt = o;
    net_shape_init(&tr->shape, d, o->hidden1, o->hidden2, o->sharpness);
    rng_seed(&tr->rng, o->seed, 1);
    clock_gettime(CLOCK_MONOTONIC, &tr->start);

    tr->train = malloc(o->train_size * d * sizeof *tr->train);
    tr->batch = malloc(b * d * sizeof *tr->batch);
    tr->grad = malloc(tr->shape.n_params * sizeof *tr->grad);
    tr->m = malloc(o->hidden1 * o->hidden2 * sizeof *tr->m);
    tr->c = malloc(o->hidden1 * o->hidden2 * sizeof *tr->c);
    tr->schedule_logq = malloc(2 * SCHEDULE_POINTS * sizeof *tr->schedule_logq);
    tr->train_logrho = malloc(o->train_size * sizeof *tr->train_logrho);
    tr->logdet = malloc(o->train_size * sizeof *tr->logdet);
    tr->work = batch_work_new(&tr->shape, o->substeps, b, o->threads ? o->threads : 1, t);
    if (!tr->train || !tr->batch || !tr->grad || !tr->m || !tr->c || !tr->schedule_logq ||
        !tr->train_logrho || !tr->logdet || !tr->work ||
        adam_init(&tr->adam, tr->shape.n_params))
        return -1;
    draw_base_points(&tr->rng, tr->train, tr->train_logrho, o->train_size, d);
    return o->langevin_steps ? langevin_init(tr) : 0;
}

static void trainer_free(trainer *tr)
{
    free(tr->train);
    free(tr->batch);
    free(tr->grad);
    free(tr->m);
    free(tr->c);
    free(tr->schedule_logq);
    free(tr->train_logrho);
    free(tr->logdet);
    free(tr->probe);
    free(tr->probe_logrho);
    langevin_work_free(tr->langevin);
    adam_free(&tr->adam);
    batch_work_free(tr->work);
}

static void draw_batch(trainer *tr)
{
    const size_t d = tr->shape.d, n = tr->opt->train_size;

    for (size_t p = 0; p < tr->opt->batch_size; p++) {
        size_t row = (size_t)(rng_next(&tr->rng) % n);
        memcpy(tr->batch + p * d, tr->train + row * d, d * sizeof *tr->batch);
    }
}

/* One Adam iteration on a fresh batch. Stores the batch's mean loss in
 * *LOSS. Returns 0; 1 for a non-finite loss and -1 for a target error, each
 * with a message. */
static int train_iteration(trainer *tr, double *theta, double beta, double lr, double *loss,
                           char *msg, size_t len)
{
    const double path_weight = tr->opt->w2_weight * (double)tr->opt->substeps;

    draw_batch(tr);
    net_prepare(&tr->shape, theta, tr->m, tr->c);
    int rc = batch_loss_gradient(tr->work, theta, tr->m, tr->c, tr->batch, beta, path_weight,
                                 loss, tr->grad, msg, len);
    if (rc == 0)
        adam_step(&tr->adam, theta, tr->grad, lr, tr->opt->clip_norm);
    return rc;
}

/* Pushes the N points X through the block whose constants tr->c hold,
 * subtracting the divergence integral from each point's LOG_RHO. */
static int push_points(trainer *tr, const double *theta, double *x, double *log_rho, size_t n)
{
    memset(tr->logdet, 0, n * sizeof *tr->logdet);
    if (flow_push_parallel(&tr->shape, tr->opt->substeps, 1, theta, tr->c, x, n, tr->logdet,
                           tr->opt->threads ? tr->opt->threads : 1))
        return -1;
    for (size_t p = 0; p < n; p++)
        log_rho[p] -= tr->logdet[p];
    return 0;
}

/* Runs the Langevin moves of block K at level BETA on the training set and
 * logs their acceptance. Returns 0, or -1 with a message. */
static int move_train_set(trainer *tr, size_t k, double beta, char *msg, size_t len)
{
    const af_flow_options *o = tr->opt;
    double acceptance;
    char why[400];

    if (langevin_run(tr->langevin, beta, tr->train, o->train_size, o->langevin_steps, o->seed,
                     (uint64_t)(k + 1) << 32, &tr->langevin_step, &acceptance, why,
                     sizeof why)) {
        snprintf(msg, len, "Langevin moves after block %zu (beta %.4g): %s", k + 1, beta, why);
        return -1;
    }
    if (o->log) {
        char line[200];
        snprintf(line, sizeof line, "block %zu: %zu Langevin steps accepted %.1f%% of moves; "
                 "step size now %.3g", k + 1, o->langevin_steps, 100.0 * acceptance,
                 tr->langevin_step);
        o->log(o->log_context, line);
    }
    return 0;
}

/* Pushes the whole training set through block K (level BETA, weights
 * THETA), keeping each point's flow log-density, then moves it with the
 * Langevin steps when the options ask for them. Returns 0, or -1 with a
 * message. */
static int advance_train_set(trainer *tr, size_t k, double beta, const double *theta,
                             char *msg, size_t len)
{
    net_prepare(&tr->shape, theta, tr->m, tr->c);
    if (push_points(tr, theta, tr->train, tr->train_logrho, tr->opt->train_size) ||
        (tr->probe &&
         push_points(tr, theta, tr->probe, tr->probe_logrho, probe_count(tr->opt)))) {
        snprintf(msg, len, "out of memory after block %zu", k + 1);
        return -1;
    }
    return tr->langevin ? move_train_set(tr, k, beta, msg, len) : 0;
}

/* Importance ESS fraction of q / rho over the first SCHEDULE_POINTS
 * training points: how close the flow so far is to the target. After
 * Langevin moves the training points' rho is no longer known, so the ESS
 * is that of the unmoved probe points: the ESS of the flow's own samples,
 * which are what sampling writes. */
static int training_ess(trainer *tr, double *ess, char *msg, size_t len)
{
    const size_t n = probe_count(tr->opt);
    const double *x = tr->probe ? tr->probe : tr->train;
    const double *log_rho = tr->probe ? tr->probe_logrho : tr->train_logrho;
    double *lw = tr->schedule_logq;

    if (tr->target->eval(tr->target->context, 1.0, x, n, lw, NULL, msg, len))
        return -1;
    for (size_t p = 0; p < n; p++)
        lw[p] -= log_rho[p];
    *ess = ess_fraction(lw, n);
    return 0;
}

static void report(trainer *tr, size_t block, size_t blocks, double beta, size_t it,
                   int done, double loss)
{
    if (!tr->opt->progress)
        return;
    af_flow_progress p = {block + 1, blocks, beta, it, tr->opt->iterations, done, loss,
                          seconds_since(&tr->start)};
    tr->opt->progress(tr->opt->progress_context, &p);
}

/* Log incremental weights log f_next - log f_prev at the first N training
 * points, for the step from PREV to NEXT, into H. The geometric path's
 * weights are (next - prev) (log q + |x|^2 / 2) up to a constant, so that
 * path evaluates the target once per block (when FRESH) and keeps log q +
 * |x|^2 / 2 in the second half of schedule_logq. Returns 0, or -1 with a
 * message. */
static int increment_weights(trainer *tr, size_t n, double prev, double next, int fresh,
                             double *h, char *msg, size_t len)
{
    const size_t d = tr->shape.d;
    const af_target *t = tr->target;
    double *other = tr->schedule_logq + SCHEDULE_POINTS;

    if (t->own_path) {
        if (t->eval(t->context, prev, tr->train, n, other, NULL, msg, len) ||
            t->eval(t->context, next, tr->train, n, h, NULL, msg, len))
            return -1;
        for (size_t i = 0; i < n; i++)
            h[i] = isinf(other[i]) && isinf(h[i]) ? -INFINITY : h[i] - other[i];
        return 0;
    }

    if (fresh) {
        if (t->eval(t->context, 1.0, tr->train, n, other, NULL, msg, len))
            return -1;
        for (size_t i = 0; i < n; i++) {
            double sq = 0.0;
            for (size_t j = i * d; j < (i + 1) * d; j++)
                sq += tr->train[j] * tr->train[j];
            other[i] += 0.5 * sq;
        }
    }
    /* A point where the log-density is NaN weighs 0, as at -inf: the batch
     * loss trains such points like those outside the support. */
    for (size_t i = 0; i < n; i++)
        h[i] = isnan(other[i]) ? -INFINITY
               : isinf(other[i]) ? other[i]
                                 : (next - prev) * other[i];
    return 0;
}

/* ESS over N of the weights exp(LOG_W), as a fraction of N. */
static double ess_fraction(const double *log_w, size_t n)
{
    double max = -INFINITY, sum = 0.0, sum_sq = 0.0;
    for (size_t i = 0; i < n; i++)
        if (log_w[i] > max)
            max = log_w[i];
    if (!isfinite(max))
        return 0.0;
    for (size_t i = 0; i < n; i++) {
        /* 0 where log_w is -inf, or NaN (the log-density is NaN there). */
        double w = isnan(log_w[i]) ? 0.0 : exp(log_w[i] - max);
        sum += w;
        sum_sq += w * w;
    }
    return sum * sum / sum_sq / (double)n;
}

/* Chooses the beta after PREV so that the incremental weights f_next /
 * f_prev keep ess_fraction of the training points' ESS, as adaptive SMC
 * does, by bisection on the step. Returns 0, or -1 with a message. */
static int adaptive_beta(trainer *tr, double prev, double *next, char *msg, size_t len)
{
    const size_t n = tr->opt->train_size < SCHEDULE_POINTS ? tr->opt->train_size : SCHEDULE_POINTS;
    double *h = tr->schedule_logq;
    double lo = prev, hi = 1.0;

    if (increment_weights(tr, n, prev, hi, 1, h, msg, len))
        return -1;
    for (size_t i = 0; i < n; i++)
        if (isnan(h[i])) {
            snprintf(msg, len, "the log-density of the annealing path is NaN at a training "
                     "point; look for an invalid argument (log or sqrt of a negative number, "
                     "0/0) or NaN in the data");
            return -1;
        }
    if (ess_fraction(h, n) >= tr->opt->ess_fraction) {
        *next = 1.0;
        return 0;
    }

    /* Each trial of the own path costs two evaluations, so stop at a step
     * resolution of 1e-4 of the remaining range. */
    while (hi - lo > 1e-4 * (1.0 - prev)) {
        double mid = 0.5 * (lo + hi);
        if (increment_weights(tr, n, prev, mid, 0, h, msg, len))
            return -1;
        if (ess_fraction(h, n) >= tr->opt->ess_fraction)
            lo = mid;
        else
            hi = mid;
    }
    *next = lo > prev ? lo : prev + 1e-4 * (1.0 - prev);
    return 0;
}

/* Beta of the next block K after the level PREV. */
static int next_beta(trainer *tr, size_t k, double prev, double *beta, char *msg, size_t len)
{
    if (prev >= 1.0 || (tr->opt->adaptive && k + 1 >= tr->opt->max_blocks)) {
        if (prev < 1.0 && tr->opt->log) {
            char line[200];
            snprintf(line, sizeof line, "warning: the adaptive schedule reached --max-blocks %zu "
                     "at beta %.4g, so block %zu jumps to beta 1", tr->opt->max_blocks, prev,
                     k + 1);
            tr->opt->log(tr->opt->log_context, line);
        }
        *beta = 1.0;
        return 0;
    }
    if (!tr->opt->adaptive) {
        *beta = schedule_beta(tr->opt, k);
        return 0;
    }
    if (adaptive_beta(tr, prev, beta, msg, len))
        return -1;

    /* No step longer than the geometric schedule's, whose first level and
     * ratio the options set: a target whose weights allow long steps
     * still gets that many blocks to move its mass. */
    double ratio = pow(tr->opt->beta_first, -1.0 / (double)(tr->opt->blocks > 1 ? tr->opt->blocks - 1 : 1));
    *beta = fmin(*beta, k == 0 ? tr->opt->beta_first : fmin(1.0, prev * ratio));
    return 0;
}

/* Retries of a block after a non-finite loss, each with half the step. */
enum { MAX_RETRIES = 3 };

/* Plateau test of a block's loss: windows of this fraction of the
 * iteration budget, and no stop before this fraction of it. */
#define PLATEAU_WINDOW 0.1
#define PLATEAU_START 0.3

/* Mean and variance of the losses of one window of iterations. */
typedef struct {
    double sum, sum_sq;
    size_t n;
} loss_window;

static void window_add(loss_window *w, double loss)
{
    w->sum += loss;
    w->sum_sq += loss * loss;
    w->n++;
}

/* Tells whether the window CUR fails to improve on PREV by more than the
 * standard error of the difference of their means: the loss has stopped
 * falling beyond the noise of the batches. */
static int on_plateau(const loss_window *prev, const loss_window *cur)
{
    if (prev->n < 2 || cur->n < 2)
        return 0;
    double mp = prev->sum / (double)prev->n, mc = cur->sum / (double)cur->n;
    double vp = fmax(0.0, prev->sum_sq / (double)prev->n - mp * mp);
    double vc = fmax(0.0, cur->sum_sq / (double)cur->n - mc * mc);
    double se = sqrt(vp / (double)(prev->n - 1) + vc / (double)(cur->n - 1));
    return mp - mc <= se;
}

/* Runs the iterations of block K from THETA at step size LR, up to the
 * budget, or fewer once the loss reaches a plateau (when the options ask).
 * Returns 0, 1 for a non-finite loss (message in WHY), 2 when stopped, -1
 * on error. */
static int run_block(trainer *tr, size_t k, size_t blocks, double beta, double *theta,
                     double lr0, char *why, size_t len)
{
    const size_t iters = tr->opt->iterations;
    const size_t every = iters < REPORTS_PER_BLOCK ? 1 : iters / REPORTS_PER_BLOCK;
    const size_t window = (size_t)fmax(10.0, PLATEAU_WINDOW * (double)iters);
    const size_t earliest = (size_t)fmax(2.0 * (double)window, PLATEAU_START * (double)iters);
    loss_window prev = {0}, cur = {0};
    double acc = 0.0, plateau_lr = 0.0;
    size_t count = 0, plateau_at = 0;  /* iteration where the plateau was seen, 0 before */

    adam_reset(&tr->adam);
    rng_seed(&tr->rng, tr->opt->seed, 100 + k);
    for (size_t it = 1; it <= iters; it++) {
        if (tr->opt->stop && tr->opt->stop(tr->opt->stop_context))
            return 2;

        /* Cosine decay to a tenth of the step size over the budget. After a
         * plateau the step falls linearly to that tenth over one more window,
         * so the block still ends with small steps. */
        double frac = (double)(it - 1) / (double)iters;
        double lr = lr0 * (0.55 + 0.45 * cos(FLOW_PI * frac));
        if (plateau_at) {
            double t = (double)(it - plateau_at) / (double)window;
            lr = plateau_lr + (0.1 * lr0 - plateau_lr) * fmin(1.0, t);
        }
        double loss;
        char detail[400];

        int rc = train_iteration(tr, theta, beta, lr, &loss, detail, sizeof detail);
        if (rc) {
            snprintf(why, len, "block %zu (beta %.4g), iteration %zu: %s", k + 1, beta, it,
                     detail);
            /* The first iteration evaluates the warm start on the block's
             * first batch before any step, so a retry with a smaller step
             * would meet the same loss. */
            return rc > 0 && it > 1 ? 1 : -1;
        }

        acc += loss;
        count++;
        window_add(&cur, loss);
        int last = it == iters || (plateau_at && it == plateau_at + window);
        if (cur.n == window) {
            if (!plateau_at && tr->opt->plateau_stop && it >= earliest &&
                on_plateau(&prev, &cur)) {
                plateau_at = it;
                plateau_lr = lr;
            }
            prev = cur;
            cur = (loss_window){0};
        }
        if (it % every == 0 || last) {
            report(tr, k, blocks, beta, it, last, acc / (double)count);
            acc = 0.0;
            count = 0;
        }
        if (last) {
            if (it < iters && tr->opt->log) {
                char line[160];
                snprintf(line, sizeof line, "block %zu: the loss stopped falling after %zu of "
                         "%zu iterations", k + 1, it, iters);
                tr->opt->log(tr->opt->log_context, line);
            }
            break;
        }
    }
    return 0;
}

/* Trains block K in place from the warm start in THETA, retrying from the
 * warm start with a smaller step after a non-finite loss. Returns 0, 2 when
 * stopped, or -1 with a message. */
static int train_block(trainer *tr, size_t k, size_t blocks, double beta, double *theta,
                       double *warm, char *msg, size_t len)
{
    double lr = tr->opt->learning_rate;
    char why[600];

    memcpy(warm, theta, tr->shape.n_params * sizeof *warm);
    for (int attempt = 0;; attempt++) {
        int rc = run_block(tr, k, blocks, beta, theta, lr, why, sizeof why);
        if (rc == 0 || rc == 2)
            return rc;
        if (rc < 0 || attempt == MAX_RETRIES) {
            snprintf(msg, len, "training failed in %s%s", why,
                     rc > 0 ? " (after retries with smaller steps)" : "");
            return -1;
        }

        memcpy(theta, warm, tr->shape.n_params * sizeof *theta);
        lr *= 0.5;
        if (tr->opt->log) {
            char line[800];
            snprintf(line, sizeof line, "warning: non-finite loss in %s; retrying the block "
                     "with step size %g", why, lr);
            tr->opt->log(tr->opt->log_context, line);
        }
    }
}

/* Pushes the training set through the finished blocks of START and takes
 * them into FLOW; leaves the last block's weights in THETA. */
static int adopt_start(trainer *tr, const af_flow *start, af_flow *flow, double *theta,
                       char *msg, size_t len)
{
    const net_shape *sh = flow_shape(start);

    if (sh->d != tr->shape.d || sh->h1 != tr->shape.h1 || sh->h2 != tr->shape.h2 ||
        sh->sharpness != tr->shape.sharpness || flow_substeps(start) != tr->opt->substeps) {
        snprintf(msg, len, "the flow to resume from has another network shape");
        return -1;
    }
    for (size_t k = 0; k < af_flow_block_count(start); k++) {
        double beta = af_flow_block_beta(start, k);
        memcpy(theta, flow_block_weights(start, k), sh->n_params * sizeof *theta);
        if (advance_train_set(tr, k, beta, theta, msg, len))
            return -1;
        if (flow_append(flow, beta, theta)) {
            snprintf(msg, len, "out of memory while resuming from %zu blocks",
                     af_flow_block_count(start));
            return -1;
        }
    }
    return 0;
}

/* Trains the blocks after those already in FLOW. Returns 0, 2 when
 * stopped, or -1 with a message. */
/* After a block at beta = 1: decides whether training is complete. The
 * extra blocks there continue, between final_blocks and max_final_blocks
 * of them, until the importance ESS of the training points reaches
 * target_ess or stops rising. *LAST_ESS carries the previous measurement. */
static int check_complete(trainer *tr, af_flow *flow, double *last_ess, char *msg, size_t len)
{
    const af_flow_options *o = tr->opt;
    size_t extra = extra_blocks(flow);
    double ess;

    if (training_ess(tr, &ess, msg, len))
        return -1;
    if (o->log) {
        char line[160];
        snprintf(line, sizeof line, "after block %zu (beta 1): importance ESS %.1f%% of the "
                 "%s points", af_flow_block_count(flow), 100.0 * ess,
                 tr->probe ? "probe" : "training");
        o->log(o->log_context, line);
    }
    int done = extra >= o->final_blocks &&
               (extra >= o->max_final_blocks || ess >= o->target_ess ||
                (extra > o->final_blocks && ess < *last_ess + 0.01));
    flow_mark_complete(flow, done);
    *last_ess = ess;
    return 0;
}

static int train_remaining(trainer *tr, af_flow *flow, double *theta, double *warm, char *msg,
                           size_t len)
{
    const size_t blocks = planned_blocks(tr->opt);
    double last_ess = 0.0;

    /* A resumed run measures the ESS its last block at beta = 1 left, as the
     * uninterrupted run did after that block, so both stop alike. */
    size_t done = af_flow_block_count(flow);
    if (done > 0 && af_flow_block_beta(flow, done - 1) >= 1.0 &&
        training_ess(tr, &last_ess, msg, len))
        return -1;

    while (!af_flow_complete(flow)) {
        size_t k = af_flow_block_count(flow);
        double prev = k ? af_flow_block_beta(flow, k - 1) : 0.0, beta;

        if (next_beta(tr, k, prev, &beta, msg, len))
            return -1;
        batch_set_fallback(tr->work, flow);
        int rc = train_block(tr, k, blocks, beta, theta, warm, msg, len);
        if (rc)
            return rc;
        if (advance_train_set(tr, k, beta, theta, msg, len))
            return -1;
        if (flow_append(flow, beta, theta)) {
            snprintf(msg, len, "out of memory after block %zu", k + 1);
            return -1;
        }
        if (beta >= 1.0 && check_complete(tr, flow, &last_ess, msg, len))
            return -1;
        if (tr->opt->block_done && tr->opt->block_done(tr->opt->block_context, flow, msg, len))
            return -1;
    }
    return 0;
}

/* The affine map of a run: the one START was trained with, or a new one
 * from the mode search when the options ask for it. Returns 0 and sets *MAP
 * (NULL for none), or -1 with a message. */
static int choose_affine(const af_target *t, const af_flow_options *o, const af_flow *start,
                         flow_affine **map, char *msg, size_t len)
{
    const flow_affine *old = start ? flow_get_affine(start) : NULL;
    char note[400] = "";

    *map = NULL;
    if (old) {
        *map = flow_affine_new(old->d);
        if (!*map) {
            snprintf(msg, len, "out of memory while resuming");
            return -1;
        }
        memcpy((*map)->shift, old->shift, old->d * sizeof *old->shift);
        memcpy((*map)->root, old->root, old->d * old->d * sizeof *old->root);
        (*map)->log_det = old->log_det;
        return 0;
    }
    if (start || !o->standardise)
        return 0;
    if (t->own_path) {
        snprintf(note, sizeof note, "kept the coordinates: the model defines its own path");
    } else if (flow_affine_find(t, o->seed, map, note, sizeof note, msg, len)) {
        return -1;
    }
    if (o->log)
        o->log(o->log_context, note);
    return 0;
}

int af_flow_train(const af_target *target, const af_flow_options *o, const af_flow *start,
                  af_flow **out, char *msg, size_t len)
{
    *out = NULL;
    if (check_options(target, o, msg, len))
        return AF_FLOW_FAILED;

    trainer tr;
    af_flow *flow = NULL;
    double *theta = NULL, *warm = NULL;
    flow_affine *map = NULL;
    af_target seen = *target;  /* the target in the flow's coordinates */
    int rc = -1, wrapped = 0;

    memset(&tr, 0, sizeof tr);
    if (choose_affine(target, o, start, &map, msg, len))
        return AF_FLOW_FAILED;
    if (map) {
        if (flow_affine_target(target, map, &seen))
            goto out_of_memory;
        wrapped = 1;
    }

    if (trainer_init(&tr, &seen, o))
        goto out_of_memory;
    flow = flow_new(&tr.shape, o->substeps, o->blocks + o->final_blocks);
    theta = malloc(tr.shape.n_params * sizeof *theta);
    warm = malloc(tr.shape.n_params * sizeof *warm);
    if (!flow || !theta || !warm)
        goto out_of_memory;
    if (map) {
        flow_set_affine(flow, map);  /* the flow owns it now; SEEN still reads it */
        map = NULL;
    }

    rng_state init_rng;
    rng_seed(&init_rng, o->seed, 2);
    net_init(&tr.shape, theta, &init_rng);
    if (start && adopt_start(&tr, start, flow, theta, msg, len))
        goto done;

    rc = train_remaining(&tr, flow, theta, warm, msg, len);
    if (rc == 0 || rc == 2) {
        *out = flow;
        flow = NULL;
    }
    goto done;

out_of_memory:
    snprintf(msg, len, "out of memory while setting up training (train size %zu, dimension %zu)",
             o->train_size, target->dim);
done:
    free(theta);
    free(warm);
    trainer_free(&tr);
    if (wrapped)
        flow_affine_target_free(&seen);
    af_flow_free(flow);
    flow_affine_free(map);
    if (rc == 2)
        return AF_FLOW_INTERRUPTED;
    return rc == 0 ? 0 : AF_FLOW_FAILED;
}
