/* Checks the distribution ops' values: against closed forms computed here
 * in another way, by normalisation (a density integrates to 1, a mass
 * function sums to 1), and at bad input (invalid parameters, outcomes
 * outside the support, empty vectors). Tangents are checked in test_ops. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>

#include <cmocka.h>

#include "af_stdlib.h"

#define PI_VALUE 3.14159265358979323846

enum { GRID_CHUNK = 1000 };

static void assert_close(double found, double expected, double tolerance)
{
    if (!(fabs(found - expected) <= tolerance))
        fail_msg("found %.17g, expected %.17g", found, expected);
}

/* Value of OP at scalar arguments X[0..NARGS), one point. */
static double lp(af_op op, size_t nargs, const double *x)
{
    af_operand args[4];
    for (size_t k = 0; k < nargs; k++)
        args[k] = (af_operand){&x[k], NULL, 1, 1, 0};
    double y, scratch[64];
    af_op_call call = {op, nargs, args, &y, NULL, 1, 1, 1, 0, 0, scratch};
    af_op_eval(&call);
    return y;
}

static double lp2(af_op op, double y, double a)
{
    double x[2] = {y, a};
    return lp(op, 2, x);
}

static double lp3(af_op op, double y, double a, double b)
{
    double x[3] = {y, a, b};
    return lp(op, 3, x);
}

/* Values of OP at COUNT outcomes Y, one outcome per point of a chunk, with
 * the parameters PARAM[0..NPARAM) shared. */
static void lp_points(af_op op, const double *y, size_t count, const double *param,
                      size_t nparam, double *out)
{
    af_operand args[4];
    args[0] = (af_operand){y, NULL, 1, count, 1};
    for (size_t k = 0; k < nparam; k++)
        args[k + 1] = (af_operand){&param[k], NULL, 1, 1, 0};
    double scratch[4];
    af_op_call call = {op, nparam + 1, args, out, NULL, 1, count, count, 0, 0, scratch};
    af_op_eval(&call);
}

/* Integral of exp(lpdf) over the real line (SUPPORT 'r'), (0, Inf) ('p')
 * or (0, 1) ('u'), by the midpoint rule in t over a finite interval after
 * the substitution y = t / (1 - t^2), y = t / (1 - t) or y = t. The
 * substitution maps heavy tails to bounded integrands. */
static double integrate(af_op op, const double *param, size_t nparam, char support)
{
    enum { STEPS = 400000 };
    double lo = support == 'r' ? -1.0 : 0.0;
    double h = (1.0 - lo) / STEPS;
    double y[GRID_CHUNK], jacobian[GRID_CHUNK], value[GRID_CHUNK];
    double total = 0.0;

    for (size_t start = 0; start < STEPS; start += GRID_CHUNK) {
        for (size_t i = 0; i < GRID_CHUNK; i++) {
            double t = lo + ((double)(start + i) + 0.5) * h;
            if (support == 'r') {
                y[i] = t / (1.0 - t * t);
                jacobian[i] = (1.0 + t * t) / ((1.0 - t * t) * (1.0 - t * t));
            } else if (support == 'p') {
                y[i] = t / (1.0 - t);
                jacobian[i] = 1.0 / ((1.0 - t) * (1.0 - t));
            } else {
                y[i] = t;
                jacobian[i] = 1.0;
            }
        }
        lp_points(op, y, GRID_CHUNK, param, nparam, value);
        for (size_t i = 0; i < GRID_CHUNK; i++)
            total += exp(value[i]) * jacobian[i] * h;
    }
    return total;
}

static void assert_normalised(af_op op, const double *param, size_t nparam, char support)
{
    double total = integrate(op, param, nparam, support);
    if (!(fabs(total - 1.0) <= 1e-6))
        fail_msg("%s: density integrates to %.12g", af_op_name(op), total);
}

static void densities_integrate_to_one(void **state)
{
    (void)state;
    const struct {
        af_op op;
        char support;
        size_t nparam;
        double param[2][3];
    } cases[] = {
        {AF_OP_NORMAL_LPDF, 'r', 2, {{0.5, 1.5}, {-3.0, 0.2}}},
        {AF_OP_STUDENT_T_LPDF, 'r', 3, {{3.0, 0.5, 1.5}, {1.5, -1.0, 0.7}}},
        {AF_OP_CAUCHY_LPDF, 'r', 2, {{0.5, 1.5}, {-2.0, 0.3}}},
        {AF_OP_DOUBLE_EXPONENTIAL_LPDF, 'r', 2, {{0.5, 1.5}, {-2.0, 0.3}}},
        {AF_OP_LOGISTIC_LPDF, 'r', 2, {{0.5, 1.5}, {-2.0, 0.3}}},
        {AF_OP_EXPONENTIAL_LPDF, 'p', 1, {{0.7}, {3.0}}},
        {AF_OP_GAMMA_LPDF, 'p', 2, {{2.5, 1.5}, {1.0, 0.4}}},
        {AF_OP_INV_GAMMA_LPDF, 'p', 2, {{2.5, 1.5}, {4.0, 0.4}}},
        {AF_OP_BETA_LPDF, 'u', 2, {{2.5, 1.5}, {3.0, 7.0}}},
        {AF_OP_LOGNORMAL_LPDF, 'p', 2, {{0.3, 0.8}, {-1.0, 0.4}}},
        {AF_OP_UNIFORM_LPDF, 'u', 2, {{0.2, 0.7}, {0.0, 1.0}}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        for (size_t s = 0; s < 2; s++)
            assert_normalised(cases[i].op, cases[i].param[s], cases[i].nparam,
                              cases[i].support);
}

/* Sum of exp(lpmf) over the outcomes 0..MAX. */
static double sum_mass(af_op op, const double *param, size_t nparam, int max)
{
    double total = 0.0;
    for (int n = 0; n <= max; n++) {
        double x[3] = {(double)n, param[0], nparam > 1 ? param[1] : 0.0};
        total += exp(lp(op, nparam + 1, x));
    }
    return total;
}

static void masses_sum_to_one(void **state)
{
    (void)state;
    const double bernoulli[2][1] = {{0.3}, {1.0}};
    const double logit[2][1] = {{-0.8}, {30.0}};
    const double binomial[2][2] = {{10.0, 0.3}, {7.0, 0.0}};
    const double binomial_logit[2][2] = {{10.0, 1.2}, {25.0, -3.0}};
    const double poisson[2][1] = {{3.5}, {20.0}};
    const double poisson_log[2][1] = {{log(3.5)}, {-2.0}};
    for (size_t s = 0; s < 2; s++) {
        assert_close(sum_mass(AF_OP_BERNOULLI_LPMF, bernoulli[s], 1, 1), 1.0, 1e-14);
        assert_close(sum_mass(AF_OP_BERNOULLI_LOGIT_LPMF, logit[s], 1, 1), 1.0, 1e-14);
        assert_close(sum_mass(AF_OP_BINOMIAL_LPMF, binomial[s], 2, 30), 1.0, 1e-13);
        assert_close(sum_mass(AF_OP_BINOMIAL_LOGIT_LPMF, binomial_logit[s], 2, 30), 1.0,
                     1e-13);
        assert_close(sum_mass(AF_OP_POISSON_LPMF, poisson[s], 1, 120), 1.0, 1e-13);
        assert_close(sum_mass(AF_OP_POISSON_LOG_LPMF, poisson_log[s], 1, 120), 1.0, 1e-13);
    }
}

/* Each density at one point against its formula written out as a density
 * and then logged. */
static void densities_match_closed_forms(void **state)
{
    (void)state;
    double z = (1.3 - 0.5) / 2.0;
    double t_density = tgamma(2.0) / (tgamma(1.5) * sqrt(3.0 * PI_VALUE) * 2.0) *
                       pow(1.0 + z * z / 3.0, -2.0);
    double x[4] = {1.3, 3.0, 0.5, 2.0};
    assert_close(lp(AF_OP_STUDENT_T_LPDF, 4, x), log(t_density), 1e-14);
    assert_close(lp3(AF_OP_CAUCHY_LPDF, 1.3, 0.5, 2.0),
                 log(1.0 / (PI_VALUE * 2.0 * (1.0 + z * z))), 1e-14);
    assert_close(lp3(AF_OP_DOUBLE_EXPONENTIAL_LPDF, 1.3, 0.5, 2.0),
                 log(exp(-0.8 / 2.0) / 4.0), 1e-14);
    assert_close(lp3(AF_OP_LOGISTIC_LPDF, 1.3, 0.5, 2.0),
                 log(exp(-z) / (2.0 * (1.0 + exp(-z)) * (1.0 + exp(-z)))), 1e-14);
    assert_close(lp2(AF_OP_EXPONENTIAL_LPDF, 1.3, 2.0), log(2.0 * exp(-2.6)), 1e-14);
    assert_close(lp3(AF_OP_GAMMA_LPDF, 1.3, 3.0, 2.0),
                 log(8.0 / 2.0 * 1.3 * 1.3 * exp(-2.6)), 1e-14);
    assert_close(lp3(AF_OP_INV_GAMMA_LPDF, 1.3, 3.0, 2.0),
                 log(8.0 / 2.0 * pow(1.3, -4.0) * exp(-2.0 / 1.3)), 1e-14);
    assert_close(lp3(AF_OP_BETA_LPDF, 0.3, 2.0, 3.0), log(12.0 * 0.3 * 0.7 * 0.7), 1e-14);
    assert_close(lp3(AF_OP_LOGNORMAL_LPDF, 1.3, 0.5, 2.0),
                 log(exp(-0.5 * pow((log(1.3) - 0.5) / 2.0, 2.0)) /
                     (1.3 * 2.0 * sqrt(2.0 * PI_VALUE))),
                 1e-14);
    assert_close(lp3(AF_OP_UNIFORM_LPDF, 1.3, -1.0, 3.0), -log(4.0), 1e-15);
    assert_close(lp3(AF_OP_NORMAL_LPDF, 1.3, 0.5, 2.0),
                 log(exp(-0.5 * z * z) / (2.0 * sqrt(2.0 * PI_VALUE))), 1e-14);

    assert_close(lp2(AF_OP_BERNOULLI_LPMF, 1.0, 0.3), log(0.3), 1e-15);
    assert_close(lp2(AF_OP_BERNOULLI_LOGIT_LPMF, 0.0, 0.4), log(1.0 / (1.0 + exp(0.4))), 1e-15);
    assert_close(lp3(AF_OP_BINOMIAL_LPMF, 3.0, 10.0, 0.3), log(120.0 * 0.027 * pow(0.7, 7)),
                 1e-13);
    double p = 1.0 / (1.0 + exp(-0.4));
    assert_close(lp3(AF_OP_BINOMIAL_LOGIT_LPMF, 3.0, 10.0, 0.4),
                 log(120.0 * pow(p, 3) * pow(1.0 - p, 7)), 1e-13);
    assert_close(lp2(AF_OP_POISSON_LPMF, 4.0, 2.5), log(pow(2.5, 4) * exp(-2.5) / 24.0), 1e-14);
    assert_close(lp2(AF_OP_POISSON_LOG_LPMF, 4.0, log(2.5)),
                 log(pow(2.5, 4) * exp(-2.5) / 24.0), 1e-14);
}

/* Log distribution functions against erfc and exp, and in the far tails
 * where the naive formulas give log(0) or log(1). */
static void cdfs_match_closed_forms(void **state)
{
    (void)state;
    double z = (1.3 - 0.5) / 2.0;
    assert_close(lp3(AF_OP_NORMAL_LCDF, 1.3, 0.5, 2.0), log(0.5 * erfc(-z / sqrt(2.0))), 1e-15);
    assert_close(lp3(AF_OP_NORMAL_LCCDF, 1.3, 0.5, 2.0), log(0.5 * erfc(z / sqrt(2.0))), 1e-15);
    /* Phi(-x) = phi(x) / (x + 1/(x + 2/(x + 3/(x + ...)))), Laplace's
     * continued fraction, evaluated from the back. */
    double fraction = 40.0;
    for (int k = 60; k >= 1; k--)
        fraction = 40.0 + k / fraction;
    double tail = -800.0 - 0.5 * log(2.0 * PI_VALUE) - log(fraction);
    assert_close(lp3(AF_OP_NORMAL_LCDF, -40.0, 0.0, 1.0), tail, 1e-9);
    assert_close(lp3(AF_OP_NORMAL_LCCDF, 40.0, 0.0, 1.0), tail, 1e-9);
    /* Both sides of the switch to the series agree. */
    assert_close(lp3(AF_OP_NORMAL_LCDF, -37.0 - 1e-9, 0.0, 1.0),
                 lp3(AF_OP_NORMAL_LCDF, -37.0 + 1e-9, 0.0, 1.0), 1e-6);
    assert_close(lp3(AF_OP_NORMAL_LCDF, 10.0, 0.0, 1.0), -0.5 * erfc(10.0 / sqrt(2.0)), 1e-30);
    assert_close(lp2(AF_OP_EXPONENTIAL_LCDF, 1.3, 2.0), log(1.0 - exp(-2.6)), 1e-15);
    assert_close(lp2(AF_OP_EXPONENTIAL_LCDF, 1e-20, 2.0), log(2e-20), 1e-12);
    assert_close(lp2(AF_OP_EXPONENTIAL_LCCDF, 1.3, 2.0), -2.6, 1e-15);
    assert_close(lp2(AF_OP_EXPONENTIAL_LCCDF, -1.0, 2.0), 0.0, 0.0);
    assert_true(lp2(AF_OP_EXPONENTIAL_LCDF, -1.0, 2.0) == -INFINITY);
}

/* Invalid parameters and outcomes outside the support give -Inf, never
 * NaN. */
static void bad_input_gives_minus_inf(void **state)
{
    (void)state;
    const double bad_scales[] = {0.0, -1.0, NAN, INFINITY};
    for (size_t i = 0; i < 4; i++) {
        double s = bad_scales[i];
        assert_true(lp3(AF_OP_NORMAL_LPDF, 0.1, 0.0, s) == -INFINITY);
        assert_true(lp3(AF_OP_CAUCHY_LPDF, 0.1, 0.0, s) == -INFINITY);
        assert_true(lp3(AF_OP_DOUBLE_EXPONENTIAL_LPDF, 0.1, 0.0, s) == -INFINITY);
        assert_true(lp3(AF_OP_LOGISTIC_LPDF, 0.1, 0.0, s) == -INFINITY);
        assert_true(lp3(AF_OP_LOGNORMAL_LPDF, 0.1, 0.0, s) == -INFINITY);
        assert_true(lp3(AF_OP_NORMAL_LCDF, 0.1, 0.0, s) == -INFINITY);
        assert_true(lp2(AF_OP_EXPONENTIAL_LPDF, 0.1, s) == -INFINITY);
        assert_true(lp3(AF_OP_GAMMA_LPDF, 0.1, s, 1.0) == -INFINITY);
        assert_true(lp3(AF_OP_GAMMA_LPDF, 0.1, 1.0, s) == -INFINITY);
        assert_true(lp3(AF_OP_INV_GAMMA_LPDF, 0.1, 1.0, s) == -INFINITY);
        assert_true(lp3(AF_OP_BETA_LPDF, 0.1, s, 1.0) == -INFINITY);
        double t[4] = {0.1, s, 0.0, 1.0};
        assert_true(lp(AF_OP_STUDENT_T_LPDF, 4, t) == -INFINITY);
        t[1] = 3.0;
        t[3] = s;
        assert_true(lp(AF_OP_STUDENT_T_LPDF, 4, t) == -INFINITY);
    }
    assert_true(lp2(AF_OP_EXPONENTIAL_LPDF, -0.1, 1.0) == -INFINITY);
    assert_true(lp3(AF_OP_GAMMA_LPDF, -0.1, 2.0, 1.0) == -INFINITY);
    assert_true(lp3(AF_OP_INV_GAMMA_LPDF, 0.0, 2.0, 1.0) == -INFINITY);
    assert_true(lp3(AF_OP_BETA_LPDF, 1.5, 2.0, 2.0) == -INFINITY);
    assert_true(lp3(AF_OP_LOGNORMAL_LPDF, -1.0, 0.0, 1.0) == -INFINITY);
    assert_true(lp3(AF_OP_UNIFORM_LPDF, 3.5, -1.0, 3.0) == -INFINITY);
    assert_true(lp3(AF_OP_UNIFORM_LPDF, 0.0, 3.0, -1.0) == -INFINITY);
    assert_true(lp3(AF_OP_UNIFORM_LPDF, NAN, -1.0, 3.0) == -INFINITY);

    assert_true(lp2(AF_OP_BERNOULLI_LPMF, 2.0, 0.5) == -INFINITY);
    assert_true(lp2(AF_OP_BERNOULLI_LPMF, 1.0, 1.5) == -INFINITY);
    assert_true(lp2(AF_OP_BERNOULLI_LOGIT_LPMF, 0.5, 0.0) == -INFINITY);
    assert_true(lp3(AF_OP_BINOMIAL_LPMF, 4.0, 3.0, 0.5) == -INFINITY);
    assert_true(lp3(AF_OP_BINOMIAL_LPMF, -1.0, 3.0, 0.5) == -INFINITY);
    assert_true(lp3(AF_OP_BINOMIAL_LPMF, 1.0, 3.0, NAN) == -INFINITY);
    assert_true(lp3(AF_OP_BINOMIAL_LOGIT_LPMF, 1.5, 3.0, 0.0) == -INFINITY);
    assert_true(lp2(AF_OP_POISSON_LPMF, 2.5, 1.0) == -INFINITY);
    assert_true(lp2(AF_OP_POISSON_LPMF, 2.0, -1.0) == -INFINITY);
    assert_true(lp2(AF_OP_POISSON_LPMF, 2.0, INFINITY) == -INFINITY);
    assert_true(lp2(AF_OP_POISSON_LOG_LPMF, 2.0, INFINITY) == -INFINITY);
}

/* Boundaries inside the support: a zero exponent or rate keeps a finite
 * value where a naive 0 * log(0) would give NaN. */
static void support_boundaries(void **state)
{
    (void)state;
    assert_close(lp3(AF_OP_GAMMA_LPDF, 0.0, 1.0, 2.0), log(2.0), 1e-15);
    assert_true(lp3(AF_OP_GAMMA_LPDF, 0.0, 2.0, 2.0) == -INFINITY);
    assert_close(lp3(AF_OP_BETA_LPDF, 1.0, 2.0, 1.0), log(2.0), 1e-15);
    assert_close(lp2(AF_OP_BERNOULLI_LPMF, 0.0, 0.0), 0.0, 0.0);
    assert_true(lp2(AF_OP_BERNOULLI_LPMF, 1.0, 0.0) == -INFINITY);
    assert_close(lp3(AF_OP_BINOMIAL_LPMF, 5.0, 5.0, 1.0), 0.0, 1e-15);
    assert_close(lp2(AF_OP_POISSON_LPMF, 0.0, 0.0), 0.0, 0.0);
    assert_true(lp2(AF_OP_POISSON_LPMF, 1.0, 0.0) == -INFINITY);
    assert_close(lp2(AF_OP_POISSON_LOG_LPMF, 0.0, -INFINITY), 0.0, 0.0);
    assert_close(lp2(AF_OP_BERNOULLI_LOGIT_LPMF, 1.0, -800.0), -800.0, 1e-12);
}

/* A vector outcome sums the terms, a scalar parameter repeats, and an
 * empty vector contributes 0. */
static void vectors_sum_and_broadcast(void **state)
{
    (void)state;
    double y[3] = {0.2, -1.0, 2.5}, mu = 0.5, sigma[3] = {1.0, 2.0, 0.5};
    af_operand args[3] = {{y, NULL, 3, 1, 0}, {&mu, NULL, 1, 1, 0}, {sigma, NULL, 3, 1, 0}};
    double out, scratch[64];
    af_op_call call = {AF_OP_NORMAL_LPDF, 3, args, &out, NULL, 1, 1, 1, 0, 0, scratch};
    af_op_eval(&call);
    double expected = 0.0;
    for (int i = 0; i < 3; i++)
        expected += lp3(AF_OP_NORMAL_LPDF, y[i], mu, sigma[i]);
    assert_close(out, expected, 1e-14);

    args[0].len = 0;
    af_op_eval(&call);
    assert_close(out, 0.0, 0.0);
}

/* ---- multivariate ---- */

enum { MAX_INPUTS = 12 };

/* One multivariate call at one point: NARGS arguments of lengths LEN, all
 * values packed in X. With SEED, direction j seeds input element j. */
static double multi_lp(af_op op, size_t nargs, const size_t *len, const double *x,
                       double *tangent)
{
    af_operand args[3];
    double seed[MAX_INPUTS * MAX_INPUTS] = {0};
    size_t offset = 0, total = 0;
    for (size_t k = 0; k < nargs; k++)
        total += len[k];
    for (size_t k = 0; k < nargs; k++) {
        double *sk = seed + offset * total;
        for (size_t j = 0; j < total; j++)
            for (size_t e = 0; e < len[k]; e++)
                sk[j * len[k] + e] = j == offset + e ? 1.0 : 0.0;
        args[k] = (af_operand){x + offset, tangent ? sk : NULL, len[k], 1, 1};
        offset += len[k];
    }
    double y, scratch[256];
    assert_true(af_op_scratch_len(MAX_INPUTS, 1) <= 256);
    af_op_call call = {op, nargs, args, &y, tangent, 1, 1, 1, tangent ? total : 0, 0, scratch};
    af_op_eval(&call);
    return y;
}

/* Compares the tangent along V (a combination of input elements) with a
 * central difference along V. */
static void check_along(af_op op, size_t nargs, const size_t *len, double *x, const double *v)
{
    size_t total = 0;
    for (size_t k = 0; k < nargs; k++)
        total += len[k];
    double tangent[MAX_INPUTS];
    multi_lp(op, nargs, len, x, tangent);
    double expected = 0.0;
    for (size_t i = 0; i < total; i++)
        expected += v[i] * tangent[i];

    const double h = 1e-6;
    double plus[MAX_INPUTS], minus[MAX_INPUTS];
    for (size_t i = 0; i < total; i++) {
        plus[i] = x[i] + h * v[i];
        minus[i] = x[i] - h * v[i];
    }
    double fd = (multi_lp(op, nargs, len, plus, NULL) - multi_lp(op, nargs, len, minus, NULL)) /
                (2 * h);
    if (!(fabs(fd - expected) <= 1e-6 * (1.0 + fabs(fd))))
        fail_msg("%s: tangent %.10g, finite difference %.10g", af_op_name(op), expected, fd);
}

/* Every input element on its own, except the simplex argument SIMPLEX
 * (or none: nargs), whose element i moves against its last element. An
 * int outcome (categorical's y, argument 0) must have a zero tangent. */
static void check_all_directions(af_op op, size_t nargs, const size_t *len, double *x,
                                 size_t simplex)
{
    int int_outcome = op == AF_OP_CATEGORICAL_LPMF || op == AF_OP_CATEGORICAL_LOGIT_LPMF;
    if (int_outcome) {
        double tangent[MAX_INPUTS];
        multi_lp(op, nargs, len, x, tangent);
        for (size_t i = 0; i < len[0]; i++)
            assert_true(tangent[i] == 0.0);
    }
    size_t total = 0, start = 0;
    for (size_t k = 0; k < nargs; k++) {
        if (k < simplex)
            start += len[k];
        total += len[k];
    }
    for (size_t i = int_outcome ? len[0] : 0; i < total; i++) {
        double v[MAX_INPUTS] = {0};
        v[i] = 1.0;
        if (simplex < nargs && i >= start && i < start + len[simplex]) {
            if (i == start + len[simplex] - 1)
                continue;
            v[start + len[simplex] - 1] = -1.0;
        }
        check_along(op, nargs, len, x, v);
    }
}

/* A 2-D case by hand: Sigma = [[2, 0.3], [0.3, 1]], det 1.91, and the
 * quadratic form r^T Sigma^-1 r = 4.6 / 1.91 at r = (1, 1.5). */
static void multi_normal_two_dimensions(void **state)
{
    (void)state;
    double expected = -log(2.0 * PI_VALUE) - 0.5 * log(1.91) - 0.5 * 4.6 / 1.91;
    size_t len[3] = {2, 2, 4};
    double x[8] = {1.0, 2.0, 0.0, 0.5, 2.0, 0.3, 0.3, 1.0};
    assert_close(multi_lp(AF_OP_MULTI_NORMAL_LPDF, 3, len, x, NULL), expected, 1e-14);
    check_all_directions(AF_OP_MULTI_NORMAL_LPDF, 3, len, x, 3);

    double l21 = 0.3 / sqrt(2.0);
    double chol[8] = {1.0, 2.0, 0.0, 0.5, sqrt(2.0), l21, 99.0, sqrt(1.0 - l21 * l21)};
    assert_close(multi_lp(AF_OP_MULTI_NORMAL_CHOLESKY_LPDF, 3, len, chol, NULL), expected,
                 1e-14);
    check_all_directions(AF_OP_MULTI_NORMAL_CHOLESKY_LPDF, 3, len, chol, 3);

    /* Two observations stacked in y against one mu: twice one term here. */
    size_t stacked[3] = {4, 2, 4};
    double y2[10] = {1.0, 2.0, 1.0, 2.0, 0.0, 0.5, 2.0, 0.3, 0.3, 1.0};
    assert_close(multi_lp(AF_OP_MULTI_NORMAL_LPDF, 3, stacked, y2, NULL), 2.0 * expected,
                 1e-13);
    check_all_directions(AF_OP_MULTI_NORMAL_LPDF, 3, stacked, y2, 3);

    double indefinite[8] = {1.0, 2.0, 0.0, 0.5, 1.0, 2.0, 2.0, 1.0};
    assert_true(multi_lp(AF_OP_MULTI_NORMAL_LPDF, 3, len, indefinite, NULL) == -INFINITY);
    double bad_diagonal[8] = {1.0, 2.0, 0.0, 0.5, -1.0, 0.0, 0.0, 1.0};
    assert_true(multi_lp(AF_OP_MULTI_NORMAL_CHOLESKY_LPDF, 3, len, bad_diagonal, NULL) ==
                -INFINITY);
    size_t mismatched[3] = {3, 2, 4};
    assert_true(multi_lp(AF_OP_MULTI_NORMAL_LPDF, 3, mismatched, y2, NULL) == -INFINITY);
}

static void categorical_and_dirichlet(void **state)
{
    (void)state;
    size_t len[2] = {2, 3};
    double x[5] = {1.0, 3.0, 0.2, 0.5, 0.3};
    assert_close(multi_lp(AF_OP_CATEGORICAL_LPMF, 2, len, x, NULL), log(0.2) + log(0.3), 1e-15);
    check_all_directions(AF_OP_CATEGORICAL_LPMF, 2, len, x, 1);

    double logits[5] = {1.0, 3.0, 0.4, -1.0, 2.0};
    double norm = log(exp(0.4) + exp(-1.0) + exp(2.0));
    assert_close(multi_lp(AF_OP_CATEGORICAL_LOGIT_LPMF, 2, len, logits, NULL),
                 0.4 + 2.0 - 2.0 * norm, 1e-14);
    check_all_directions(AF_OP_CATEGORICAL_LOGIT_LPMF, 2, len, logits, 2);

    size_t dir_len[2] = {3, 3};
    double d[6] = {0.2, 0.5, 0.3, 1.0, 2.0, 3.0};
    assert_close(multi_lp(AF_OP_DIRICHLET_LPDF, 2, dir_len, d, NULL),
                 log(120.0 / 2.0) + log(0.5) + 2.0 * log(0.3), 1e-14);
    check_all_directions(AF_OP_DIRICHLET_LPDF, 2, dir_len, d, 0);

    double out_of_range[5] = {4.0, 1.0, 0.2, 0.5, 0.3};
    assert_true(multi_lp(AF_OP_CATEGORICAL_LPMF, 2, len, out_of_range, NULL) == -INFINITY);
    assert_true(multi_lp(AF_OP_CATEGORICAL_LOGIT_LPMF, 2, len, out_of_range, NULL) ==
                -INFINITY);
    double not_simplex[5] = {1.0, 3.0, 0.2, 0.5, 0.4};
    assert_true(multi_lp(AF_OP_CATEGORICAL_LPMF, 2, len, not_simplex, NULL) == -INFINITY);
    double bad_alpha[6] = {0.2, 0.5, 0.3, 1.0, 0.0, 3.0};
    assert_true(multi_lp(AF_OP_DIRICHLET_LPDF, 2, dir_len, bad_alpha, NULL) == -INFINITY);
}

/* laplace is another name of double_exponential, with the same arity. */
static void laplace_names_double_exponential(void **state)
{
    (void)state;
    af_op alias, op;
    int arity = 0;
    assert_int_equal(af_op_find("laplace_lpdf", 3, &alias, &arity), 0);
    assert_int_equal(af_op_find("double_exponential_lpdf", 3, &op, &arity), 0);
    assert_int_equal(alias, op);
    assert_int_equal(af_op_find("laplace_lpdf", 2, &alias, &arity), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(densities_integrate_to_one),
        cmocka_unit_test(masses_sum_to_one),
        cmocka_unit_test(densities_match_closed_forms),
        cmocka_unit_test(cdfs_match_closed_forms),
        cmocka_unit_test(bad_input_gives_minus_inf),
        cmocka_unit_test(support_boundaries),
        cmocka_unit_test(vectors_sum_and_broadcast),
        cmocka_unit_test(multi_normal_two_dimensions),
        cmocka_unit_test(categorical_and_dirichlet),
        cmocka_unit_test(laplace_names_double_exponential),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
