/* Constraints. A constrained parameter is a transform of its slice of the
 * unconstrained vector z, and the log absolute Jacobian determinant of
 * that transform is added to the target, as Stan does (Stan Reference
 * Manual, "Constraint transforms"):
 *   lower bound a:        x = a + exp(z),                 log|J| = z
 *   upper bound b:        x = b - exp(z),                 log|J| = z
 *   both:                 x = a + (b - a) inv_logit(z),   log|J| = log(b - a)
 *                                                          + log inv_logit(z) + log(1 - inv_logit(z))
 *   offset m, multiplier s: x = m + s z,                  log|J| = log s
 *   ordered:              x1 = z1, xk = x(k-1) + exp(zk), log|J| = sum over k > 1 of zk
 *   positive_ordered:     x1 = exp(z1), then as ordered,  log|J| = sum of zk
 *   simplex[K] (stick-breaking, K - 1 free values): for k < K,
 *     u = inv_logit(zk - log(K - k)), xk = r u with r = 1 - (x1 + ... + x(k-1)),
 *     log|J| += log r + log u + log(1 - u); xK = r after the last step.
 * Data and transformed data are checked against their constraints instead. */
#include "lower_internal.h"

#include <math.h>
#include <string.h>

static size_t op1(lowerer *l, af_op op, size_t a, size_t len, af_span span)
{
    return lower_emit(l, op, &a, 1, len, 0, span);
}

static size_t op2(lowerer *l, af_op op, size_t a, size_t b, size_t len, af_span span)
{
    size_t args[2] = {a, b};
    return lower_emit(l, op, args, 2, len, 0, span);
}

static void add_jacobian(lowerer *l, size_t term, af_span span)
{
    if (lower_node_len(l, term) != 1)
        term = op1(l, AF_OP_SUM, term, 1, span);
    l->target = op2(l, AF_OP_ADD, l->target, term, 1, span);
}

/* Lowers bound expression E of D; NONE when E is NULL. */
static size_t bound_node(lowerer *l, const ast_decl *d, const ast_expr *e, size_t len)
{
    if (e == NULL)
        return AF_GRAPH_NONE;
    size_t node = lower_expr(l, e).node;
    size_t n = lower_node_len(l, node);
    if (n != 1 && n != len)
        lower_fail(l, e->span, NULL, "a bound of '%s' has %zu elements, but '%s' has %zu", d->name,
                   n, d->name, len);
    return node;
}

/* Records the four bounds of every element of a parameter, for
 * af_model_unconstrain; a missing one is NaN. */
static void record_bounds(lowerer *l, const size_t *nodes, size_t len, af_span span)
{
    size_t nan = lower_scalar(l, NAN, span);
    for (size_t e = 0; e < len; e++) {
        for (int k = 0; k < 4; k++) {
            size_t node = nodes[k] == AF_GRAPH_NONE ? nan : nodes[k];
            size_t item = lower_node_len(l, node) == 1
                              ? node
                              : lower_emit(l, AF_OP_INDEX, &node, 1, 1, e, span);
            if (l->bounds_count == l->bounds_cap) {
                size_t cap = l->bounds_cap ? 2 * l->bounds_cap : 64;
                size_t *p = arena_alloc(&l->ctx->arena, cap * sizeof *p);
                if (l->bounds_count)
                    memcpy(p, l->bounds, l->bounds_count * sizeof *p);
                l->bounds = p;
                l->bounds_cap = cap;
            }
            l->bounds[l->bounds_count++] = item;
        }
    }
}

static size_t constrain_bounds(lowerer *l, size_t lb, size_t ub, size_t z, size_t len,
                               af_span span)
{
    if (lb != AF_GRAPH_NONE && ub != AF_GRAPH_NONE) {
        size_t width = op2(l, AF_OP_SUB, ub, lb, lower_node_len(l, ub) > lower_node_len(l, lb)
                                                     ? lower_node_len(l, ub)
                                                     : lower_node_len(l, lb),
                           span);
        size_t u = op1(l, AF_OP_INV_LOGIT, z, len, span);
        size_t x = op2(l, AF_OP_ADD, lb, op2(l, AF_OP_MUL, width, u, len, span), len, span);
        size_t log_width = op1(l, AF_OP_LOG, width, lower_node_len(l, width), span);
        size_t jac = op2(l, AF_OP_ADD, op1(l, AF_OP_LOG_INV_LOGIT, z, len, span),
                         op1(l, AF_OP_LOG1M_INV_LOGIT, z, len, span), len, span);
        add_jacobian(l, op2(l, AF_OP_ADD, jac, log_width, len, span), span);
        return x;
    }
    size_t e = op1(l, AF_OP_EXP, z, len, span);
    add_jacobian(l, z, span);
    if (lb != AF_GRAPH_NONE)
        return op2(l, AF_OP_ADD, lb, e, len, span);
    return op2(l, AF_OP_SUB, ub, e, len, span);
}

static size_t constrain_affine(lowerer *l, size_t mu, size_t sigma, size_t z, size_t len,
                               af_span span)
{
    size_t x = z;
    if (sigma != AF_GRAPH_NONE) {
        x = op2(l, AF_OP_MUL, sigma, x, len, span);
        size_t log_sigma = op1(l, AF_OP_LOG, sigma, lower_node_len(l, sigma), span);
        if (lower_node_len(l, sigma) == 1)
            log_sigma = op2(l, AF_OP_MUL, log_sigma, lower_scalar(l, (double)len, span), 1, span);
        add_jacobian(l, log_sigma, span);
    }
    if (mu != AF_GRAPH_NONE)
        x = op2(l, AF_OP_ADD, mu, x, len, span);
    return x;
}

/* ordered and positive_ordered: a running sum of exp(z_k) after the first. */
static size_t constrain_ordered(lowerer *l, size_t z, size_t len, int positive, af_span span)
{
    if (len == 0)
        return z;
    size_t *x = arena_alloc(&l->ctx->arena, len * sizeof *x);
    size_t first = lower_emit(l, AF_OP_INDEX, &z, 1, 1, 0, span);
    x[0] = positive ? op1(l, AF_OP_EXP, first, 1, span) : first;
    if (positive)
        add_jacobian(l, first, span);
    for (size_t k = 1; k < len; k++) {
        size_t zk = lower_emit(l, AF_OP_INDEX, &z, 1, 1, k, span);
        x[k] = op2(l, AF_OP_ADD, x[k - 1], op1(l, AF_OP_EXP, zk, 1, span), 1, span);
        add_jacobian(l, zk, span);
    }
    return len == 1 ? x[0] : lower_emit(l, AF_OP_CONCAT, x, len, len, 0, span);
}

static size_t constrain_simplex(lowerer *l, size_t z, size_t len, af_span span)
{
    size_t *x = arena_alloc(&l->ctx->arena, len * sizeof *x);
    size_t rest = lower_scalar(l, 1.0, span);
    for (size_t k = 0; k + 1 < len; k++) {
        size_t zk = len == 2 ? z : lower_emit(l, AF_OP_INDEX, &z, 1, 1, k, span);
        size_t shifted = op2(l, AF_OP_SUB, zk, lower_scalar(l, log((double)(len - 1 - k)), span),
                             1, span);
        size_t u = op1(l, AF_OP_INV_LOGIT, shifted, 1, span);
        x[k] = op2(l, AF_OP_MUL, rest, u, 1, span);
        add_jacobian(l, op1(l, AF_OP_LOG, rest, 1, span), span);
        add_jacobian(l, op1(l, AF_OP_LOG_INV_LOGIT, shifted, 1, span), span);
        add_jacobian(l, op1(l, AF_OP_LOG1M_INV_LOGIT, shifted, 1, span), span);
        rest = op2(l, AF_OP_SUB, rest, x[k], 1, span);
    }
    x[len - 1] = rest;
    return len == 1 ? x[0] : lower_emit(l, AF_OP_CONCAT, x, len, len, 0, span);
}

size_t lower_unconstrained_len(lowerer *l, const ast_decl *d, size_t len)
{
    (void)l;
    return d->constraint == CONSTRAINT_SIMPLEX ? len - 1 : len;
}

static void index_text(const ast_decl *d, size_t e, char *out, size_t cap);
static double bound_at(const double *bound, size_t n, size_t e);

/* Rejects bounds from data that leave a parameter no values: a lower bound
 * not below the upper one, a multiplier not above 0, or NaN. Bounds that
 * depend on other parameters are not checked here. */
static void check_known_bounds(lowerer *l, const ast_decl *d, const size_t *nodes, size_t len)
{
    const double *lo = nodes[0] == AF_GRAPH_NONE ? NULL : lower_known(l, nodes[0]);
    const double *hi = nodes[1] == AF_GRAPH_NONE ? NULL : lower_known(l, nodes[1]);
    const double *scale = nodes[3] == AF_GRAPH_NONE ? NULL : lower_known(l, nodes[3]);
    char where[96];

    for (size_t e = 0; e < len; e++) {
        double a = lo ? bound_at(lo, lower_node_len(l, nodes[0]), e) : -INFINITY;
        double b = hi ? bound_at(hi, lower_node_len(l, nodes[1]), e) : INFINITY;
        double m = scale ? bound_at(scale, lower_node_len(l, nodes[3]), e) : 1.0;
        if (a < b && m > 0.0)
            continue;
        index_text(d, e, where, sizeof where);
        if (!(m > 0.0))
            lower_fail(l, d->multiplier->span, "the multiplier scales the parameter, so it must "
                       "be above 0", "the multiplier of '%s%s' is %.17g", d->name, where, m);
        lower_fail(l, (lo ? d->lower : d->upper)->span,
                   "check the bounds' data; a parameter needs lower < upper",
                   "the bounds of '%s%s' leave no values: lower %.17g, upper %.17g", d->name,
                   where, a, b);
    }
}

size_t lower_constrain(lowerer *l, ast_decl *d, size_t z, size_t len)
{
    size_t nodes[4] = {bound_node(l, d, d->lower, len), bound_node(l, d, d->upper, len),
                       bound_node(l, d, d->offset, len), bound_node(l, d, d->multiplier, len)};
    record_bounds(l, nodes, len, d->span);
    check_known_bounds(l, d, nodes, len);
    switch (d->constraint) {
    case CONSTRAINT_BOUNDS:
        return constrain_bounds(l, nodes[0], nodes[1], z, len, d->span);
    case CONSTRAINT_AFFINE:
        return constrain_affine(l, nodes[2], nodes[3], z, len, d->span);
    case CONSTRAINT_ORDERED:
        return constrain_ordered(l, z, len, 0, d->span);
    case CONSTRAINT_POSITIVE_ORDERED:
        return constrain_ordered(l, z, len, 1, d->span);
    case CONSTRAINT_SIMPLEX:
        return constrain_simplex(l, z, len, d->span);
    case CONSTRAINT_NONE:
        break;
    }
    return z;
}

/* ---- checks of data ---- */

/* Writes the 1-based Stan index of flat element E of D, "" for a scalar. */
static void index_text(const ast_decl *d, size_t e, char *out, size_t cap)
{
    size_t idx[AF_MAX_RANK];
    size_t arrays = (size_t)d->type.dims;
    size_t inner = 1;
    for (size_t k = arrays; k < d->rank; k++)
        inner *= d->shape[k];
    size_t outer = e / (inner ? inner : 1), within = e % (inner ? inner : 1);
    for (size_t k = arrays; k-- > 0;) {
        idx[k] = outer % d->shape[k];
        outer /= d->shape[k];
    }
    if (d->rank == arrays + 1)
        idx[arrays] = within;
    else if (d->rank == arrays + 2) {
        idx[arrays] = within % d->shape[arrays];
        idx[arrays + 1] = within / d->shape[arrays];
    }
    size_t used = 0;
    out[0] = '\0';
    for (size_t k = 0; k < d->rank && used < cap; k++)
        used += (size_t)snprintf(out + used, cap - used, "%s%zu", k ? ", " : "[", idx[k] + 1);
    if (d->rank > 0 && used < cap)
        snprintf(out + used, cap - used, "]");
}

static double bound_at(const double *bound, size_t n, size_t e)
{
    return n == 1 ? bound[0] : bound[e];
}

static void fail_bound(lowerer *l, const ast_decl *d, size_t e, double v, const char *side,
                       double bound)
{
    char where[96];
    index_text(d, e, where, sizeof where);
    lower_fail(l, d->span, NULL, "'%s%s' is %.17g, %s bound %.17g", d->name, where, v, side,
               bound);
}

static void check_simplex_data(lowerer *l, const ast_decl *d, const double *v)
{
    double sum = 0.0;
    for (size_t e = 0; e < d->len; e++) {
        if (!(v[e] >= 0.0))
            fail_bound(l, d, e, v[e], "a simplex needs values of at least 0; below the lower", 0.0);
        sum += v[e];
    }
    if (fabs(sum - 1.0) > 1e-8)
        lower_fail(l, d->span, NULL, "'%s' is a simplex, but its elements sum to %.17g, not 1",
                   d->name, sum);
}

static void check_ordered_data(lowerer *l, const ast_decl *d, const double *v)
{
    for (size_t e = 0; e < d->len; e++) {
        if (d->constraint == CONSTRAINT_POSITIVE_ORDERED && !(v[e] > 0.0))
            fail_bound(l, d, e, v[e], "not above the lower", 0.0);
        if (e > 0 && !(v[e] > v[e - 1]))
            fail_bound(l, d, e, v[e], "not above the previous element,", v[e - 1]);
    }
}

void lower_check_data_bounds(lowerer *l, const ast_decl *d, size_t node)
{
    const double *v = lower_known(l, node);
    if (v == NULL || d->constraint == CONSTRAINT_NONE || d->constraint == CONSTRAINT_AFFINE)
        return;
    if (d->constraint == CONSTRAINT_SIMPLEX) {
        check_simplex_data(l, d, v);
        return;
    }
    if (d->constraint != CONSTRAINT_BOUNDS) {
        check_ordered_data(l, d, v);
        return;
    }
    size_t lb = bound_node(l, d, d->lower, d->len), ub = bound_node(l, d, d->upper, d->len);
    const double *lo = lb == AF_GRAPH_NONE ? NULL : lower_known(l, lb);
    const double *hi = ub == AF_GRAPH_NONE ? NULL : lower_known(l, ub);
    for (size_t e = 0; e < d->len; e++) {
        if (lo != NULL && !(v[e] >= bound_at(lo, lower_node_len(l, lb), e)))
            fail_bound(l, d, e, v[e], "below the lower", bound_at(lo, lower_node_len(l, lb), e));
        if (hi != NULL && !(v[e] <= bound_at(hi, lower_node_len(l, ub), e)))
            fail_bound(l, d, e, v[e], "above the upper", bound_at(hi, lower_node_len(l, ub), e));
    }
}

void lower_check_tparam_bounds(lowerer *l, const ast_decl *d, size_t node)
{
    if (d->constraint != CONSTRAINT_BOUNDS)
        return;
    /* NOTE: only lower and upper bounds of transformed parameters are
     * checked; a point that breaks one gets log-density -Inf. */
    size_t bad = lower_scalar(l, 0.0, d->span);
    size_t len = d->len;
    size_t lb = bound_node(l, d, d->lower, len), ub = bound_node(l, d, d->upper, len);
    if (lb != AF_GRAPH_NONE)
        bad = op2(l, AF_OP_ADD, bad, op1(l, AF_OP_SUM, op2(l, AF_OP_LT, node, lb, len, d->span), 1, d->span), 1, d->span);
    if (ub != AF_GRAPH_NONE)
        bad = op2(l, AF_OP_ADD, bad, op1(l, AF_OP_SUM, op2(l, AF_OP_GT, node, ub, len, d->span), 1, d->span), 1, d->span);
    size_t args[3] = {bad, lower_scalar(l, -INFINITY, d->span), l->target};
    l->target = lower_emit(l, AF_OP_SELECT, args, 3, 1, 0, d->span);
}
