/* Compiles the example models and checks them end to end: log-density
 * values against closed forms computed here, and the score against central
 * finite differences of the log-density. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "af_eval.h"
#include "score_check.h"

#define PI 3.14159265358979323846
#define MODELS AF_TEST_DIR "/lang/models/"

enum { POINTS = 25, MAX_DIM = 50 };

typedef double (*closed_form)(const double *z);

static double normal_lpdf(double y, double mu, double sigma)
{
    double r = (y - mu) / sigma;
    return -0.5 * r * r - log(sigma) - 0.5 * log(2 * PI);
}

static double gmm_circle(const double *z)
{
    double sum = 0.0;
    for (int k = 0; k < 6; k++) {
        double a = 2 * PI * k / 6;
        sum += exp(normal_lpdf(z[0], 8 * cos(a), 1) + normal_lpdf(z[1], 8 * sin(a), 1));
    }
    return log(sum / 6);
}

static double funnel(const double *z)
{
    double lp = normal_lpdf(z[0], 0, 0.9);
    for (int i = 1; i < 5; i++)
        lp += normal_lpdf(z[i], 0, exp(z[0] / 2));
    return lp;
}

static double exp_gauss(const double *z)
{
    double lp = 0.0;
    for (int i = 0; i < 50; i++)
        lp += (i < 10 ? 10 * fabs(z[i]) : 0.0) - 0.5 * z[i] * z[i];
    return lp;
}

static double normal_data(const double *z)
{
    static const double y[5] = {1.2, -0.4, 2.5, 0.9, 3.1};
    double lp = normal_lpdf(z[0], 0, 10) + normal_lpdf(z[1], 0, 2);
    for (int i = 0; i < 5; i++)
        lp += normal_lpdf(y[i], z[0], exp(z[1]));
    return lp;
}

static double builtins(const double *z)
{
    double a = z[0], lp = 0.0, m = -INFINITY, s = 0.0, norm = 0.0;
    for (int i = 1; i <= 3; i++) {
        double v = z[i];
        lp += exp(v) + log1p(exp(v)) - log1p(v * v) + expm1(v / 4);
        m = fmax(m, v);
        norm += v * v;
        lp += normal_lpdf(v, 0, 1) + normal_lpdf(v, a, 2) + v * v;
    }
    for (int i = 1; i <= 3; i++)
        s += exp(z[i] - m);
    lp += sin(a) * cos(a) + sqrt(exp(a)) + fabs(a) + log(1 + a * a);
    lp += m + log(s) + log(exp(a) + exp(-a)) + sqrt(norm) + normal_lpdf(a, 0, 1) - z[2] / 2;
    return lp;
}

/* tests/lang/models/to_vector.afm with z = (M column-major, v, r). */
static double to_vector_expected(const double *z)
{
    const double *m = z, *v = z + 6, *r = z + 8;
    double lp = m[1] * m[1] + v[0] * (1 + 3) + v[1] * (2 + 4);
    lp += -0.25 * (r[0] * r[0] + r[1] * r[1]) + r[1];
    for (int i = 0; i < 6; i++)
        lp += (i + 1) * m[i] - 0.5 * m[i] * m[i];
    return lp - 0.5 * (v[0] * v[0] + v[1] * v[1]);
}

static af_model *compile(const char *name, const char *data)
{
    char path[512], data_path[512];
    snprintf(path, sizeof path, MODELS "%s.afm", name);
    if (data != NULL)
        snprintf(data_path, sizeof data_path, MODELS "%s", data);
    af_model *m = NULL;
    char *message = NULL;
    if (af_model_compile(path, data ? data_path : NULL, &m, &message) != 0)
        fail_msg("%s", message);
    return m;
}

/* Checks values and scores at random points drawn with the given scale. */
static void check_model(const char *name, const char *data, closed_form expected, double scale)
{
    af_model *m = compile(name, data);
    af_eval *ev = af_eval_new(m);
    assert_non_null(ev);
    size_t d = af_model_dim(m);
    srand(7);
    for (int p = 0; p < POINTS; p++) {
        double z[MAX_DIM], score[MAX_DIM], lp;
        for (size_t j = 0; j < d; j++)
            z[j] = scale * (2.0 * rand() / RAND_MAX - 1.0);
        assert_int_equal(af_eval_logp(ev, z, 1, &lp, score, NULL, 0), 0);
        double want = expected(z);
        if (fabs(lp - want) > 1e-10 * (1 + fabs(want)))
            fail_msg("%s: log-density %.15g, closed form %.15g", name, lp, want);
        score_check_point(name, p, ev, z, d, score, lp, 1e-5, 0.0);
    }
    af_eval_free(ev);
    af_model_free(m);
}

static void gmm_circle_model(void **state)
{
    (void)state;
    check_model("gmm_circle", NULL, gmm_circle, 10.0);
}

static void funnel_model(void **state)
{
    (void)state;
    check_model("funnel", NULL, funnel, 2.0);
}

static void exp_gauss_model(void **state)
{
    (void)state;
    check_model("exp_gauss", NULL, exp_gauss, 12.0);
}

static void normal_data_model(void **state)
{
    (void)state;
    check_model("normal_data", "normal_data.json", normal_data, 2.0);
}

static void builtins_model(void **state)
{
    (void)state;
    check_model("builtins", NULL, builtins, 1.5);
}

static void to_vector_model(void **state)
{
    (void)state;
    check_model("to_vector", NULL, to_vector_expected, 2.0);
}

static void column_names(void **state)
{
    (void)state;
    af_model *m = compile("normal_data", "normal_data.json");
    assert_int_equal(af_model_dim(m), 2);
    assert_int_equal(af_model_column_count(m), 2);
    assert_string_equal(af_model_column_name(m, 0), "mu");
    assert_string_equal(af_model_column_name(m, 1), "log_sigma");
    af_model_free(m);

    m = compile("funnel", NULL);
    assert_int_equal(af_model_column_count(m), 5);
    assert_string_equal(af_model_column_name(m, 0), "x.1");
    assert_string_equal(af_model_column_name(m, 4), "x.5");
    assert_null(af_model_column_name(m, 5));
    af_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gmm_circle_model),  cmocka_unit_test(funnel_model),
        cmocka_unit_test(exp_gauss_model),   cmocka_unit_test(normal_data_model),
        cmocka_unit_test(builtins_model),    cmocka_unit_test(to_vector_model),
        cmocka_unit_test(column_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
