/* Automatic standardisation: before training, a mode search from a few
 * starting points and the curvature at the best mode give an affine map
 * x = shift + R z with R R' the inverse of minus the Hessian there (the
 * Laplace approximation). The flow is trained and sampled in z, where a
 * posterior with sd 1e-3 or a mean of 1e3 looks like N(0, I). Samples are
 * mapped back to x.
 *
 * The map is used only when it matters and is safe: every start must reach
 * the same peak (a multimodal target keeps its coordinates, because
 * centring N(0, I) on one mode would hide the others), minus the Hessian
 * must be positive definite, and the Laplace scales or location must be far
 * from those of N(0, I). The mode search is L-BFGS from libLBFGS. */
#include <lbfgs.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "af_flow.h"
#include "flow_internal.h"

/* Starts of the mode search: the origin and this many N(0, I) draws. */
enum { RANDOM_STARTS = 4 };

/* Iterations of one L-BFGS run. */
enum { MODE_MAX_ITERATIONS = 2000 };

/* Two modes are distinct when their squared Mahalanobis distance under the
 * best mode's curvature exceeds this (5 standard deviations). */
#define DISTINCT_MODES 25.0

/* A mode is accepted when its Newton decrement g' Sigma g is below this:
 * the peak is less than a tenth of a standard deviation away. */
#define NEWTON_DECREMENT 1e-2

/* The map is used when some Laplace sd differs from 1 by more than this
 * factor, or the mode lies farther than LOCATION_LIMIT sds (at least unit
 * ones) from the origin in some coordinate. */
#define SCALE_FACTOR 3.0
#define LOCATION_LIMIT 3.0

/* Evaluation of -log q at level 1 for L-BFGS. */
typedef struct {
    const af_target *target;
    int failed;  /* the target returned an error */
    int met_infinity;  /* some point had log q = +inf */
    char message[400];
} mode_search;

static lbfgsfloatval_t negative_logq(void *instance, const lbfgsfloatval_t *x,
                                     lbfgsfloatval_t *g, const int n, const lbfgsfloatval_t step)
{
    (void)step;
    mode_search *s = instance;
    double logq;

    if (s->target->eval(s->target->context, 1.0, x, 1, &logq, g, s->message,
                        sizeof s->message)) {
        s->failed = 1;
        logq = -INFINITY;
    }
    /* A point outside the support, or a NaN, stops the line search step. */
    s->met_infinity |= logq > 0.0 && isinf(logq);
    if (!isfinite(logq)) {
        for (int i = 0; i < n; i++)
            g[i] = 0.0;
        return INFINITY;
    }
    for (int i = 0; i < n; i++)
        g[i] = -g[i];
    return -logq;
}

/* Returns how many of the N values are not finite. */
static size_t count_not_finite(const double *values, size_t n)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        count += !isfinite(values[i]);
    return count;
}

/* Runs L-BFGS from X (in place). Returns the log q it reached, or -inf. */
static double climb(mode_search *s, double *x, size_t d)
{
    lbfgs_parameter_t param;
    lbfgsfloatval_t fx = INFINITY;

    lbfgs_parameter_init(&param);
    param.max_iterations = MODE_MAX_ITERATIONS;
    param.linesearch = LBFGS_LINESEARCH_BACKTRACKING;
    param.epsilon = 1e-8;
    lbfgs((int)d, x, &fx, negative_logq, NULL, s, &param);
    return isfinite(fx) ? -fx : -INFINITY;
}

/* Minus the Hessian of log q at MODE by central differences of the score,
 * symmetrised, into H (d x d). STEP[j] is the difference step of
 * coordinate j. Uses 2d evaluations in one call. Returns 0, or -1. */
static int curvature(const af_target *t, const double *mode, const double *step, double *h,
                     char *msg, size_t len)
{
    const size_t d = t->dim;
    double *pts = malloc(2 * d * d * sizeof *pts), *score = malloc(2 * d * d * sizeof *score);
    double *logq = malloc(2 * d * sizeof *logq);
    int rc = -1;

    if (!pts || !score || !logq) {
        snprintf(msg, len, "out of memory while measuring the curvature at the mode");
        goto done;
    }
    for (size_t j = 0; j < d; j++)
        for (int side = 0; side < 2; side++) {
            double *p = pts + (2 * j + (size_t)side) * d;
            memcpy(p, mode, d * sizeof *p);
            p[j] += side ? -step[j] : step[j];
        }
    if (t->eval(t->context, 1.0, pts, 2 * d, logq, score, msg, len))
        goto done;

    /* Row j of the Jacobian of the score: (g(x + h e_j) - g(x - h e_j)) / 2h. */
    for (size_t j = 0; j < d; j++)
        for (size_t i = 0; i < d; i++)
            h[j * d + i] = -(score[2 * j * d + i] - score[(2 * j + 1) * d + i]) / (2.0 * step[j]);
    for (size_t i = 0; i < d; i++)
        for (size_t j = 0; j < i; j++)
            h[i * d + j] = h[j * d + i] = 0.5 * (h[i * d + j] + h[j * d + i]);
    rc = 0;
done:
    free(pts);
    free(score);
    free(logq);
    return rc;
}

/* Cholesky factor of the symmetric A (d x d) in place, lower triangle,
 * zeros above. Returns 0, or -1 when A is not positive definite. */
static int cholesky(double *a, size_t d)
{
    for (size_t j = 0; j < d; j++) {
        double diag = a[j * d + j];
        for (size_t k = 0; k < j; k++)
            diag -= a[j * d + k] * a[j * d + k];
        if (!(diag > 0.0) || !isfinite(diag))
            return -1;
        a[j * d + j] = sqrt(diag);
        for (size_t i = j + 1; i < d; i++) {
            double v = a[i * d + j];
            for (size_t k = 0; k < j; k++)
                v -= a[i * d + k] * a[j * d + k];
            a[i * d + j] = v / a[j * d + j];
        }
        for (size_t k = j + 1; k < d; k++)
            a[j * d + k] = 0.0;
    }
    return 0;
}

/* With the precision P = U U' (U lower triangular), R = U'^-1 is a square
 * root of Sigma = P^-1: R R' = U'^-1 U^-1 = (U U')^-1. R is upper
 * triangular; column j solves U' c = e_j by back substitution. Writes R
 * (d x d, row-major) and the Laplace sd of each coordinate. */
static void sigma_root(const double *u, double *root, double *sd, size_t d)
{
    for (size_t j = 0; j < d; j++)
        for (size_t ii = d; ii-- > 0;) {
            double v = ii == j ? 1.0 : 0.0;
            for (size_t k = ii + 1; k < d; k++)
                v -= u[k * d + ii] * root[k * d + j];
            root[ii * d + j] = v / u[ii * d + ii];
        }
    for (size_t i = 0; i < d; i++) {
        double s = 0.0;
        for (size_t j = 0; j < d; j++)
            s += root[i * d + j] * root[i * d + j];
        sd[i] = sqrt(s);
    }
}

flow_affine *flow_affine_new(size_t d)
{
    flow_affine *map = calloc(1, sizeof *map);
    if (!map)
        return NULL;
    map->d = d;
    map->shift = calloc(d, sizeof *map->shift);
    map->root = calloc(d * d, sizeof *map->root);
    if (!map->shift || !map->root) {
        flow_affine_free(map);
        return NULL;
    }
    return map;
}

void flow_affine_free(flow_affine *map)
{
    if (!map)
        return;
    free(map->shift);
    free(map->root);
    free(map);
}

int flow_affine_finish(flow_affine *map)
{
    const size_t d = map->d;

    map->log_det = 0.0;
    for (size_t i = 0; i < d; i++) {
        for (size_t j = 0; j < i; j++)
            if (map->root[i * d + j] != 0.0)
                return -1;
        if (!(map->root[i * d + i] > 0.0) || !isfinite(map->root[i * d + i]))
            return -1;
        map->log_det += log(map->root[i * d + i]);
    }
    return 0;
}

void flow_affine_apply(const flow_affine *map, const double *z, size_t n, double *x)
{
    const size_t d = map->d;

    for (size_t p = 0; p < n; p++)
        for (size_t i = 0; i < d; i++) {
            double v = map->shift[i];
            for (size_t j = i; j < d; j++)  /* the root is upper triangular */
                v += map->root[i * d + j] * z[p * d + j];
            x[p * d + i] = v;
        }
}

/* OUT = R' G for one point: the gradient in z of a function whose gradient
 * in x is G. */
static void root_transpose_apply(const flow_affine *map, const double *g, double *out)
{
    const size_t d = map->d;

    for (size_t j = 0; j < d; j++) {
        double v = 0.0;
        for (size_t i = 0; i <= j; i++)  /* the root is upper triangular */
            v += map->root[i * d + j] * g[i];
        out[j] = v;
    }
}

void flow_affine_invert(const flow_affine *map, const double *x, size_t n, double *z)
{
    const size_t d = map->d;

    /* Back substitution of R z = x - shift, R upper triangular. */
    for (size_t p = 0; p < n; p++)
        for (size_t ii = d; ii-- > 0;) {
            double v = x[p * d + ii] - map->shift[ii];
            for (size_t j = ii + 1; j < d; j++)
                v -= map->root[ii * d + j] * z[p * d + j];
            z[p * d + ii] = v / map->root[ii * d + ii];
        }
}

/* Decision of flow_affine_find once the best mode and its precision factor
 * are known: fills *OUT when the map is worth using, with a note why. */
static int decide(const af_target *t, const double *starts, const double *start_logq,
                  size_t best, const double *u, flow_affine **out, char *note, size_t note_len,
                  char *msg, size_t len)
{
    const size_t d = t->dim, n_starts = RANDOM_STARTS + 1;
    const double *mode = starts + best * d;
    flow_affine *map = flow_affine_new(d);
    double *sd = malloc(d * sizeof *sd), *g = malloc(2 * d * sizeof *g), logq;
    int rc = -1;

    if (!map || !sd || !g) {
        snprintf(msg, len, "out of memory while standardising the target");
        goto done;
    }
    sigma_root(u, map->root, sd, d);
    memcpy(map->shift, mode, d * sizeof *mode);
    rc = 0;

    /* Newton decrement g' Sigma g = |R' g|^2 at the best point. */
    double decrement = INFINITY;
    if (t->eval(t->context, 1.0, mode, 1, &logq, g, msg, len) == 0) {
        double *rg = g + d;  /* R' g */
        root_transpose_apply(map, g, rg);
        decrement = 0.0;
        for (size_t j = 0; j < d; j++)
            decrement += rg[j] * rg[j];
    }
    if (!(decrement < NEWTON_DECREMENT)) {
        snprintf(note, note_len, "kept the coordinates: the mode search did not converge");
        goto done;
    }

    /* Squared Mahalanobis distance |U' (m_s - m)|^2 of every other start's end. */
    for (size_t s = 0; s < n_starts; s++) {
        double dist = 0.0;
        for (size_t j = 0; j < d; j++) {
            double v = 0.0;
            for (size_t i = j; i < d; i++)
                v += u[i * d + j] * (starts[s * d + i] - mode[i]);
            dist += v * v;
        }
        if (!isfinite(start_logq[s])) {
            snprintf(note, note_len, "kept the coordinates: %zu of the mode search's %zu starts "
                     "met a log-density of -inf or NaN (a support narrower than the "
                     "parameters' range?)", count_not_finite(start_logq, n_starts), n_starts);
            goto done;
        }
        if (dist > DISTINCT_MODES) {
            snprintf(note, note_len, "kept the coordinates: the mode search from %zu starts did "
                     "not reach a single peak (the target may have several modes)", n_starts);
            goto done;
        }
    }

    double sd_min = INFINITY, sd_max = 0.0, far = 0.0;
    for (size_t i = 0; i < d; i++) {
        sd_min = fmin(sd_min, sd[i]);
        sd_max = fmax(sd_max, sd[i]);
        far = fmax(far, fabs(mode[i]) / fmax(1.0, sd[i]));
    }
    if (sd_max <= SCALE_FACTOR && sd_min >= 1.0 / SCALE_FACTOR && far <= LOCATION_LIMIT) {
        snprintf(note, note_len, "kept the coordinates: near unit scale already (Laplace sd "
                 "%.3g to %.3g at the mode)", sd_min, sd_max);
        goto done;
    }
    if (flow_affine_finish(map)) {
        snprintf(note, note_len, "kept the coordinates: the curvature at the mode is "
                 "degenerate");
        goto done;
    }
    snprintf(note, note_len, "standardised the target: Laplace sd %.3g to %.3g at a mode whose "
             "largest |coordinate| / max(1, sd) is %.3g", sd_min, sd_max, far);
    *out = map;
    map = NULL;
done:
    flow_affine_free(map);
    free(sd);
    free(g);
    return rc;
}

int flow_affine_find(const af_target *t, uint64_t seed, flow_affine **out, char *note,
                     size_t note_len, char *msg, size_t len)
{
    const size_t d = t->dim, n_starts = RANDOM_STARTS + 1;
    double *starts = malloc(n_starts * d * sizeof *starts);
    double *h = malloc(d * d * sizeof *h), *step = malloc(d * sizeof *step);
    double start_logq[RANDOM_STARTS + 1];
    mode_search search = {t, 0, 0, ""};
    rng_state rng;
    size_t best = 0;
    int rc = -1;

    *out = NULL;
    if (!starts || !h || !step) {
        snprintf(msg, len, "out of memory while standardising the target");
        goto done;
    }

    rng_seed(&rng, seed, 4);
    for (size_t s = 0; s < n_starts; s++) {
        for (size_t j = 0; j < d; j++)
            starts[s * d + j] = s == 0 ? 0.0 : rng_normal(&rng);
        start_logq[s] = climb(&search, starts + s * d, d);
        if (start_logq[s] > start_logq[best])
            best = s;
    }
    rc = 0;
    if (!search.failed && search.met_infinity && !isfinite(start_logq[best])) {
        snprintf(note, note_len, "kept the coordinates: the mode search met a log-density of "
                 "+inf, so the density is improper or overflows");
        goto done;
    }
    if (search.failed || !isfinite(start_logq[best])) {
        snprintf(note, note_len, "kept the coordinates: the mode search found no finite "
                 "log-density%s%s", search.failed ? ": " : "", search.failed ? search.message : "");
        goto done;
    }

    /* Two passes: a small relative step finds the scales, then a step of a
     * thousandth of each scale measures the curvature where it matters. */
    const double *mode = starts + best * d;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t j = 0; j < d; j++) {
            double floor = 1e-7 * fmax(1.0, fabs(mode[j]));
            step[j] = pass == 0 ? 1e-5 * fmax(1.0, fabs(mode[j]))
                                : fmax(floor, 1e-3 / sqrt(h[j * d + j]));
        }
        if (curvature(t, mode, step, h, note, note_len)) {
            rc = 0;
            goto done;
        }
        int peak = 1;
        for (size_t j = 0; j < d; j++)
            peak = peak && h[j * d + j] > 0.0 && isfinite(h[j * d + j]);
        if (!peak) {
            snprintf(note, note_len, "kept the coordinates: the best point of the mode search "
                     "is not a peak");
            goto done;
        }
    }
    if (cholesky(h, d)) {
        snprintf(note, note_len, "kept the coordinates: the curvature at the mode is not "
                 "positive definite");
        goto done;
    }
    rc = decide(t, starts, start_logq, best, h, out, note, note_len, msg, len);
done:
    free(starts);
    free(h);
    free(step);
    return rc;
}

/* The target in z: log q(shift + R z) + log|det R|, with the score R' g. */
typedef struct {
    const af_target *inner;
    void *context;  /* the inner target's context, or a clone of it */
    int owns_context;
    const flow_affine *map;
    double *x, *g;  /* scratch for CAP points */
    size_t cap;
} affine_context;

static int affine_eval(void *context, double level, const double *z, size_t n, double *logq,
                       double *score, char *msg, size_t len)
{
    affine_context *a = context;
    const size_t d = a->map->d;

    if (n > a->cap) {
        double *x = realloc(a->x, n * d * sizeof *x);
        if (x)
            a->x = x;
        double *g = realloc(a->g, n * d * sizeof *g);
        if (g)
            a->g = g;
        if (!x || !g) {
            snprintf(msg, len, "out of memory evaluating %zu points", n);
            return -1;
        }
        a->cap = n;
    }

    flow_affine_apply(a->map, z, n, a->x);
    if (a->inner->eval(a->context, level, a->x, n, logq, score ? a->g : NULL, msg, len))
        return -1;
    for (size_t p = 0; p < n; p++) {
        logq[p] += a->map->log_det;
        if (!score)
            continue;
        root_transpose_apply(a->map, a->g + p * d, score + p * d);
    }
    return 0;
}

static affine_context *affine_context_new(const af_target *inner, void *context, int owns,
                                          const flow_affine *map)
{
    affine_context *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->inner = inner;
    a->context = context;
    a->owns_context = owns;
    a->map = map;
    return a;
}

static void affine_release(void *context)
{
    affine_context *a = context;
    if (!a)
        return;
    if (a->owns_context)
        a->inner->release(a->context);
    free(a->x);
    free(a->g);
    free(a);
}

static void *affine_clone(void *context)
{
    affine_context *a = context;
    void *inner_copy = a->inner->clone(a->context);
    if (!inner_copy)
        return NULL;
    affine_context *copy = affine_context_new(a->inner, inner_copy, 1, a->map);
    if (!copy)
        a->inner->release(inner_copy);
    return copy;
}

/* Describes the standardised point Z by the user's point it maps to. */
static void affine_describe(void *context, const double *z, char *out, size_t len)
{
    const affine_context *a = context;
    double *x = malloc(a->map->d * sizeof *x);
    if (!x) {
        flow_format_point(z, a->map->d, out, len);
        return;
    }
    flow_affine_apply(a->map, z, 1, x);
    if (a->inner->describe)
        a->inner->describe(a->context, x, out, len);
    else
        flow_format_point(x, a->map->d, out, len);
    free(x);
}

int flow_affine_target(const af_target *inner, const flow_affine *map, af_target *out)
{
    *out = *inner;
    out->eval = affine_eval;
    out->describe = affine_describe;
    out->context = affine_context_new(inner, inner->context, 0, map);
    out->clone = inner->clone && inner->release ? affine_clone : NULL;
    out->release = affine_release;
    return out->context ? 0 : -1;
}

void flow_affine_target_free(af_target *wrapped)
{
    affine_release(wrapped->context);
    wrapped->context = NULL;
}
