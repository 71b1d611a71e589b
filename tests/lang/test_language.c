/* Whole-model tests of the language: scores against central finite
 * differences for models that use every statement and expression, the
 * log-Jacobians of the parameter transforms against the finite-difference
 * determinant of af_model_constrain, the inverse transforms, output
 * columns, the annealing level and the compile status of unfinished input. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "af_eval.h"
#include "score_check.h"

#define MODELS AF_TEST_DIR "/lang/models/"

enum { MAX_DIM = 32, MAX_COLUMNS = 64 };

static af_model *compile(const char *name, const char *data)
{
    char path[512], data_path[512];
    snprintf(path, sizeof path, MODELS "%s", name);
    if (data != NULL)
        snprintf(data_path, sizeof data_path, MODELS "%s", data);
    af_model *m = NULL;
    char *message = NULL;
    if (af_model_compile(path, data ? data_path : NULL, &m, &message) != 0)
        fail_msg("%s", message);
    return m;
}

static void check_scores(af_model *m, double scale)
{
    af_eval *ev = af_eval_new(m);
    size_t d = af_model_dim(m);
    srand(11);
    for (int p = 0; p < 20; p++) {
        double z[MAX_DIM], score[MAX_DIM], lp;
        for (size_t j = 0; j < d; j++)
            z[j] = scale * (2.0 * rand() / RAND_MAX - 1.0);
        assert_int_equal(af_eval_logp(ev, z, 1, &lp, score, NULL, 0), 0);
        assert_true(isfinite(lp));
        score_check_point("model", p, ev, z, d, score, lp, 1e-6, 0.0);
    }
    af_eval_free(ev);
}

static void language_scores(void **state)
{
    (void)state;
    af_model *m = compile("language.afm", "language.json");
    assert_int_equal(af_model_dim(m), 4);
    assert_string_equal(af_model_printed(m), "total = 1.3, k = 3\n");
    check_scores(m, 1.5);
    af_model_free(m);
}

/* log|det| of the square matrix A (n x n, row-major) by Gaussian
 * elimination with partial pivoting. */
static double log_abs_det(double *a, size_t n)
{
    double sum = 0.0;
    for (size_t k = 0; k < n; k++) {
        size_t pivot = k;
        for (size_t i = k + 1; i < n; i++)
            if (fabs(a[i * n + k]) > fabs(a[pivot * n + k]))
                pivot = i;
        for (size_t j = 0; j < n; j++) {
            double t = a[k * n + j];
            a[k * n + j] = a[pivot * n + j];
            a[pivot * n + j] = t;
        }
        sum += log(fabs(a[k * n + k]));
        for (size_t i = k + 1; i < n; i++) {
            double f = a[i * n + k] / a[k * n + k];
            for (size_t j = k; j < n; j++)
                a[i * n + j] -= f * a[k * n + j];
        }
    }
    return sum;
}

/* The model block of constraints.afm is empty, so log q(z) must equal the
 * log|det| of the map from z to the constrained values, without the last
 * element of the simplex (which the others determine). */
static void transform_jacobians(void **state)
{
    (void)state;
    af_model *m = compile("constraints.afm", NULL);
    af_eval *ev = af_eval_new(m);
    size_t d = af_model_dim(m), cols = af_model_column_count(m);
    assert_int_equal(d, 14);
    assert_int_equal(cols, 15);
    size_t dropped = 7; /* s.4 */
    assert_string_equal(af_model_column_name(m, dropped), "s.4");
    srand(5);
    for (int p = 0; p < 10; p++) {
        double z[MAX_DIM], up[MAX_COLUMNS], down[MAX_COLUMNS], jac[MAX_DIM * MAX_DIM];
        for (size_t j = 0; j < d; j++)
            z[j] = 2.0 * rand() / RAND_MAX - 1.0;
        for (size_t j = 0; j < d; j++) {
            const double h = 1e-6;
            double saved = z[j];
            z[j] = saved + h;
            char message[256];
            assert_int_equal(af_model_constrain(m, z, up, message, sizeof message), 0);
            z[j] = saved - h;
            assert_int_equal(af_model_constrain(m, z, down, message, sizeof message), 0);
            z[j] = saved;
            for (size_t i = 0, row = 0; i < cols; i++)
                if (i != dropped)
                    jac[(row++) * d + j] = (up[i] - down[i]) / (2 * h);
        }
        double want = log_abs_det(jac, d);
        double lp = score_check_logp(ev, z);
        if (fabs(lp - want) > 1e-6 * (1 + fabs(want)))
            fail_msg("log-Jacobian %.12g, finite-difference log|det| %.12g", lp, want);
    }
    af_eval_free(ev);
    af_model_free(m);
}

static void unconstrain_inverts_constrain(void **state)
{
    (void)state;
    af_model *m = compile("constraints.afm", NULL);
    size_t d = af_model_dim(m);
    double z[MAX_DIM], back[MAX_DIM], values[MAX_COLUMNS];
    char message[256];
    for (size_t j = 0; j < d; j++)
        z[j] = 0.3 * (double)j - 1.5;
    assert_int_equal(af_model_constrain(m, z, values, message, sizeof message), 0);
    assert_int_equal(af_model_unconstrain(m, values, back, message, sizeof message), 0);
    for (size_t j = 0; j < d; j++)
        assert_true(fabs(back[j] - z[j]) < 1e-10);

    values[0] = -1.0; /* a has lower=0 */
    assert_int_not_equal(af_model_unconstrain(m, values, back, message, sizeof message), 0);
    assert_non_null(strstr(message, "'a'"));
    af_model_free(m);
}

/* Each case breaks one constrained value of constraints.afm: the column
 * (a, b, c, d, s.1-s.4, o.1-o.3, p.1-p.2, v.1-v.2), its new value, or
 * its shift from the valid value when SHIFT is set, and a part of the
 * expected message. */
static void unconstrain_rejects_outside_support(void **state)
{
    (void)state;
    static const struct {
        size_t column;
        double value;
        int shift;
        const char *message;
    } cases[] = {
        {0, -1.0, 0, "column 'a' is -1, not above its lower bound 0"},
        {1, 2.0, 0, "column 'b' is 2, not below its upper bound 2"},
        {2, -1.5, 0, "column 'c' is -1.5, not above its lower bound -1"},
        {3, NAN, 0, "column 'd' is nan"},
        {7, -7.0, 0, "column 's.4' is -7, but the elements of simplex 's' must be above 0"},
        {5, 0.0, 0, "column 's.2' is 0, but the elements of simplex 's' must be above 0"},
        {6, 0.1, 1, "the columns of simplex 's' sum to 1.1"},
        {9, -10.0, 1, "not above the previous element"},
        {11, 0.0, 0, "column 'p.1' is 0, not above 0"},
        {13, -100.0, 1, "not above its lower bound"},
    };
    af_model *m = compile("constraints.afm", NULL);
    size_t d = af_model_dim(m);
    double z[MAX_DIM], back[MAX_DIM], valid[MAX_COLUMNS], values[MAX_COLUMNS];
    char message[256];
    for (size_t j = 0; j < d; j++)
        z[j] = 0.3 * (double)j - 1.5;
    assert_int_equal(af_model_constrain(m, z, valid, message, sizeof message), 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memcpy(values, valid, sizeof values);
        size_t c = cases[i].column;
        values[c] = cases[i].shift ? values[c] + cases[i].value : cases[i].value;
        message[0] = '\0';
        if (af_model_unconstrain(m, values, back, message, sizeof message) == 0)
            fail_msg("case %zu: %s accepted", i, cases[i].message);
        if (strstr(message, cases[i].message) == NULL)
            fail_msg("case %zu: expected '%s' in '%s'", i, cases[i].message, message);
    }
    af_model_free(m);
}

static void output_columns(void **state)
{
    (void)state;
    static const char *const names[] = {"beta.1", "beta.2", "sigma",    "mu",       "eta.1",
                                        "eta.2",  "eta.3",  "m2",       "y_rep",    "pair.1.1",
                                        "pair.2.1", "pair.1.2", "pair.2.2"};
    af_model *m = compile("language.afm", "language.json");
    assert_int_equal(af_model_column_count(m), 13);
    for (size_t i = 0; i < 13; i++)
        assert_string_equal(af_model_column_name(m, i), names[i]);
    double z[4] = {-0.2, -0.1, 0.0, 0.1}, v[13];
    char message[256];
    assert_int_equal(af_model_constrain(m, z, v, message, sizeof message), 0);
    assert_true(fabs(v[2] - 1.0) < 1e-15);                  /* sigma = exp(0) */
    assert_true(fabs(v[4] - (-0.2 + 0.3 * -0.1)) < 1e-15);  /* eta.1 = X[1] * beta */
    assert_true(fabs(v[7] - 0.2) < 1e-15);                  /* m2 = twice(mu) */
    assert_true(fabs(v[10] - 0.1) < 1e-15);                 /* pair[2][1] = mu */
    af_model_free(m);
}

static void annealing_level(void **state)
{
    (void)state;
    af_model *m = compile("level.afm", NULL);
    assert_true(af_model_uses_level(m));
    af_eval *ev = af_eval_new(m);
    double z = 0.0;
    double full = score_check_logp(ev, &z);
    af_eval_set_level(ev, 0.0);
    double none = score_check_logp(ev, &z);
    assert_true(fabs(none - full - 1.0) < 1e-12);
    check_scores(m, 2.0);
    af_eval_free(ev);
    af_model_free(m);

    m = compile("constraints.afm", NULL);
    assert_false(af_model_uses_level(m));
    af_model_free(m);
}

static void unfinished_input_status(void **state)
{
    (void)state;
    af_model *m = NULL;
    char *message = NULL;
    assert_int_equal(af_model_compile(MODELS "unfinished.afm", NULL, &m, &message),
                     AF_LANG_INCOMPLETE);
    free(message);
    assert_int_equal(af_model_compile(MODELS "extern.afm", NULL, &m, &message), AF_LANG_ERROR);
    assert_non_null(strstr(message, "model uses extern function 'cube' from libcube.so: loading "
                                    "native code runs it with your rights; pass --allow-extern "
                                    "to permit"));
    free(message);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(language_scores),
        cmocka_unit_test(transform_jacobians),
        cmocka_unit_test(unconstrain_inverts_constrain),
        cmocka_unit_test(unconstrain_rejects_outside_support),
        cmocka_unit_test(output_columns),
        cmocka_unit_test(annealing_level),
        cmocka_unit_test(unfinished_input_status),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
