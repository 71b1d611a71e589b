/* Multivariate distributions as SPECIAL ops: multi_normal(_cholesky),
 * categorical(_logit) and dirichlet. Matrices are column-major K x K, and K
 * comes from the length K * K of the matrix (or of theta). The compiler
 * checks shapes; a call with inconsistent lengths here gives -Inf. */
#include "ops_internal.h"

/* Partial of element E of argument K at point B, with the arguments'
 * partials laid out one after another: [offset of K + e][b]. */
static double *partial(const af_op_call *c, size_t k, size_t e, size_t b)
{
    size_t offset = 0;
    for (size_t i = 0; i < k; i++)
        offset += c->args[i].len;
    return &c->scratch[(offset + e) * c->stride + b];
}

static size_t total_len(const af_op_call *c)
{
    size_t n = 0;
    for (size_t k = 0; k < c->nargs; k++)
        n += c->args[k].len;
    return n;
}

/* Workspace of one point, after the partials of all points. */
static double *workspace(const af_op_call *c)
{
    return c->scratch + total_len(c) * c->stride;
}

static void zero_partials(const af_op_call *c, size_t b)
{
    for (size_t i = 0; i < total_len(c); i++)
        c->scratch[i * c->stride + b] = 0.0;
}

/* Tangent of the scalar result: the sum over arguments and elements of
 * partial times the operand's tangent. */
static void combine_by_argument(const af_op_call *c)
{
    if (c->tangent == NULL || c->dim == 0)
        return;
    for (size_t j = 0; j < c->dim; j++) {
        double *out = c->tangent + j * c->stride;
        memset(out, 0, c->count * sizeof(double));
        for (size_t k = 0; k < c->nargs; k++) {
            const af_operand *x = &c->args[k];
            if (x->tangent == NULL)
                continue;
            for (size_t e = 0; e < x->len; e++) {
                const double *dx = x->tangent + (j * x->len + e) * c->stride;
                for (size_t b = 0; b < c->count; b++)
                    out[b] += *partial(c, k, e, b) * dx[b];
            }
        }
    }
}

static size_t square_root_of(size_t len)
{
    size_t k = (size_t)sqrt((double)len);
    while (k * k > len)
        k--;
    while ((k + 1) * (k + 1) <= len)
        k++;
    return k;
}

/* ---- multi_normal ---- */

/* Lower Cholesky factor L of the symmetric part of the K x K matrix at
 * argument 2, point B. Returns 0 when that part is not positive definite. */
static int cholesky(const af_op_call *c, size_t b, size_t dim, double *lower)
{
    const af_operand *sigma = &c->args[2];
    for (size_t j = 0; j < dim; j++) {
        for (size_t i = j; i < dim; i++) {
            double s = 0.5 * (operand_value(sigma, i + j * dim, b) +
                              operand_value(sigma, j + i * dim, b));
            for (size_t k = 0; k < j; k++)
                s -= lower[i + k * dim] * lower[j + k * dim];
            if (i == j) {
                if (!(s > 0.0 && s < INFINITY))
                    return 0;
                lower[j + j * dim] = sqrt(s);
            } else {
                lower[i + j * dim] = s / lower[j + j * dim];
            }
        }
    }
    return 1;
}

/* Solves L z = r (forward) and then L^T w = z (backward), in place. */
static void solve_forward(const double *lower, size_t dim, double *z)
{
    for (size_t i = 0; i < dim; i++) {
        for (size_t k = 0; k < i; k++)
            z[i] -= lower[i + k * dim] * z[k];
        z[i] /= lower[i + i * dim];
    }
}

static void solve_backward(const double *lower, size_t dim, double *w)
{
    for (size_t i = dim; i-- > 0;) {
        for (size_t k = i + 1; k < dim; k++)
            w[i] -= lower[k + i * dim] * w[k];
        w[i] /= lower[i + i * dim];
    }
}

/* Sum over the N observations y_n (rows of y, each of length DIM) of the
 * log density given the Cholesky factor LOWER of the covariance. Writes
 * the partials in y and mu, and in the matrix: in L (lower triangle) when
 * CHOLESKY_INPUT, else in every entry of Sigma, symmetric. */
static double mvn_point(const af_op_call *c, size_t b, size_t dim, const double *lower,
                        int cholesky_input)
{
    const af_operand *y = &c->args[0], *mu = &c->args[1];
    size_t n_obs = y->len / dim;
    double *z = workspace(c) + dim * dim;
    double *w = z + dim;
    double log_det = 0.0, value = 0.0;
    for (size_t i = 0; i < dim; i++)
        log_det += log(lower[i + i * dim]);

    for (size_t n = 0; n < n_obs; n++) {
        size_t mu_start = mu->len == dim ? 0 : n * dim;
        for (size_t i = 0; i < dim; i++)
            z[i] = operand_value(y, n * dim + i, b) - operand_value(mu, mu_start + i, b);
        solve_forward(lower, dim, z);
        memcpy(w, z, dim * sizeof(double));
        solve_backward(lower, dim, w);
        for (size_t i = 0; i < dim; i++) {
            value -= 0.5 * z[i] * z[i];
            *partial(c, 0, n * dim + i, b) = -w[i];
            *partial(c, 1, mu_start + i, b) += w[i];
            for (size_t j = 0; j < dim; j++) {
                if (cholesky_input && j <= i)
                    *partial(c, 2, i + j * dim, b) += w[i] * z[j];
                else if (!cholesky_input)
                    *partial(c, 2, i + j * dim, b) += 0.5 * w[i] * w[j];
            }
        }
    }
    return value - (double)n_obs * ((double)dim * LOG_SQRT_2PI + log_det);
}

/* Adds -N/2 Sigma^-1 to the Sigma partials, one column of the inverse at a
 * time (L L^T x = e_j). */
static void add_inverse_term(const af_op_call *c, size_t b, size_t dim, const double *lower,
                             double n_obs)
{
    double *column = workspace(c) + dim * dim;
    for (size_t j = 0; j < dim; j++) {
        memset(column, 0, dim * sizeof(double));
        column[j] = 1.0;
        solve_forward(lower, dim, column);
        solve_backward(lower, dim, column);
        for (size_t i = 0; i < dim; i++)
            *partial(c, 2, i + j * dim, b) -= 0.5 * n_obs * column[i];
    }
}

static int mvn_shapes_valid(const af_op_call *c, size_t dim)
{
    size_t y_len = c->args[0].len, mu_len = c->args[1].len;
    return dim > 0 && dim * dim == c->args[2].len && y_len % dim == 0 &&
           (mu_len == dim || mu_len == y_len);
}

/* multi_normal_lpdf(y | mu, Sigma). The density is that of the symmetric
 * part (Sigma + Sigma^T) / 2, so each of the K * K entries is an input with
 * its own partial; a caller that fills both triangles from one parameter
 * gets the sum of the two, the full derivative. -Inf when the symmetric
 * part is not positive definite. */
void af_kernel_MULTI_NORMAL_LPDF(const af_op_call *c)
{
    size_t dim = square_root_of(c->args[2].len);
    double *lower = workspace(c);
    for (size_t b = 0; b < c->count; b++) {
        zero_partials(c, b);
        if (!mvn_shapes_valid(c, dim) || !cholesky(c, b, dim, lower)) {
            c->value[b] = -INFINITY;
            continue;
        }
        c->value[b] = mvn_point(c, b, dim, lower, 0);
        add_inverse_term(c, b, dim, lower, (double)(c->args[0].len / dim));
    }
    combine_by_argument(c);
}

/* multi_normal_cholesky_lpdf(y | mu, L): only the lower triangle of L is
 * read, so entries above the diagonal get a zero partial. -Inf unless the
 * diagonal is positive and finite. */
void af_kernel_MULTI_NORMAL_CHOLESKY_LPDF(const af_op_call *c)
{
    size_t dim = square_root_of(c->args[2].len);
    double *lower = workspace(c);
    const af_operand *factor = &c->args[2];
    for (size_t b = 0; b < c->count; b++) {
        zero_partials(c, b);
        int valid = mvn_shapes_valid(c, dim);
        for (size_t j = 0; valid && j < dim; j++)
            for (size_t i = 0; i < dim; i++)
                lower[i + j * dim] = i >= j ? operand_value(factor, i + j * dim, b) : 0.0;
        for (size_t i = 0; valid && i < dim; i++)
            valid = lower[i + i * dim] > 0.0 && lower[i + i * dim] < INFINITY;
        if (!valid) {
            c->value[b] = -INFINITY;
            continue;
        }
        c->value[b] = mvn_point(c, b, dim, lower, 1);
        double n_obs = (double)(c->args[0].len / dim);
        for (size_t i = 0; i < dim; i++)
            *partial(c, 2, i + i * dim, b) -= n_obs / lower[i + i * dim];
    }
    combine_by_argument(c);
}

/* ---- categorical and dirichlet ---- */

/* Stan's tolerance for a simplex: entries >= 0 summing to 1 within 1e-8. */
static int is_simplex(const af_operand *theta, size_t b)
{
    double sum = 0.0;
    for (size_t e = 0; e < theta->len; e++) {
        double v = operand_value(theta, e, b);
        if (!(v >= 0.0))
            return 0;
        sum += v;
    }
    return theta->len > 0 && fabs(sum - 1.0) <= 1e-8;
}

/* Outcome E of the int argument y as a 0-based category below K, or K when
 * it is not one of 1..K. */
static size_t category(const af_operand *y, size_t e, size_t b, size_t k)
{
    double v = operand_value(y, e, b);
    return (v >= 1.0 && v <= (double)k && v == floor(v)) ? (size_t)v - 1 : k;
}

/* categorical_lpmf(y | theta): the sum of log theta[y_n] over the ints
 * y_n in 1..K. -Inf when theta is not a simplex or an outcome is out of
 * range. */
void af_kernel_CATEGORICAL_LPMF(const af_op_call *c)
{
    const af_operand *y = &c->args[0], *theta = &c->args[1];
    size_t k = theta->len;
    for (size_t b = 0; b < c->count; b++) {
        zero_partials(c, b);
        double value = is_simplex(theta, b) ? 0.0 : -INFINITY;
        for (size_t n = 0; n < y->len && value > -INFINITY; n++) {
            size_t i = category(y, n, b, k);
            double t = i < k ? operand_value(theta, i, b) : 0.0;
            value += log(t);
            if (i < k)
                *partial(c, 1, i, b) += 1.0 / t;
        }
        c->value[b] = value;
        if (value == -INFINITY)
            zero_partials(c, b);
    }
    combine_by_argument(c);
}

/* categorical_logit_lpmf(y | beta) = categorical of softmax(beta): the
 * partial in beta_i is count_i - N softmax_i. */
void af_kernel_CATEGORICAL_LOGIT_LPMF(const af_op_call *c)
{
    const af_operand *y = &c->args[0], *beta = &c->args[1];
    size_t k = beta->len;
    for (size_t b = 0; b < c->count; b++) {
        zero_partials(c, b);
        double m = -INFINITY, s = 0.0;
        for (size_t i = 0; i < k; i++)
            m = fmax(m, operand_value(beta, i, b));
        for (size_t i = 0; i < k; i++)
            s += exp(operand_value(beta, i, b) - m);
        double log_norm = m + log(s);
        double value = (k > 0 && isfinite(log_norm)) ? 0.0 : -INFINITY;
        for (size_t n = 0; n < y->len && value > -INFINITY; n++) {
            size_t i = category(y, n, b, k);
            value += i < k ? operand_value(beta, i, b) - log_norm : -INFINITY;
            if (i < k)
                *partial(c, 1, i, b) += 1.0;
        }
        c->value[b] = value;
        for (size_t i = 0; i < k && value > -INFINITY; i++)
            *partial(c, 1, i, b) -= (double)y->len * exp(operand_value(beta, i, b) - log_norm);
        if (value == -INFINITY)
            zero_partials(c, b);
    }
    combine_by_argument(c);
}

/* dirichlet_lpdf(theta | alpha) with the normalising constant. -Inf when
 * theta is not a simplex, an alpha is not positive and finite, or the
 * lengths differ. */
void af_kernel_DIRICHLET_LPDF(const af_op_call *c)
{
    const af_operand *theta = &c->args[0], *alpha = &c->args[1];
    size_t k = theta->len;
    for (size_t b = 0; b < c->count; b++) {
        zero_partials(c, b);
        int valid = alpha->len == k && is_simplex(theta, b);
        double alpha_sum = 0.0;
        for (size_t i = 0; valid && i < k; i++) {
            double a = operand_value(alpha, i, b);
            valid = a > 0.0 && a < INFINITY;
            alpha_sum += a;
        }
        if (!valid) {
            c->value[b] = -INFINITY;
            continue;
        }
        double value = af_lgamma(alpha_sum), psi_sum = af_digamma(alpha_sum);
        for (size_t i = 0; i < k; i++) {
            double a = operand_value(alpha, i, b), t = operand_value(theta, i, b);
            double log_t = log(t);
            value += (a == 1.0 ? 0.0 : (a - 1.0) * log_t) - af_lgamma(a);
            *partial(c, 0, i, b) = a == 1.0 ? 0.0 : (a - 1.0) / t;
            *partial(c, 1, i, b) = psi_sum - af_digamma(a) + log_t;
        }
        c->value[b] = value;
    }
    combine_by_argument(c);
}
