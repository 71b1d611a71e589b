/* Extern C functions end to end, with the library built from
 * tests/lang/extern_test_lib.c at AF_EXTERN_LIB. The tests compare the
 * log-density and score with the same model written in the language, with
 * derivative functions and with finite differences. They also cover library
 * paths relative to the model, calls on data, output columns, and the
 * errors of a non-finite value or a missing partial derivative. Models are
 * written to a fresh folder under the working folder. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp, symlink */

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "af_eval.h"
#include "score_check.h"

enum { MAX_DIM = 16, POINTS = 20 };

static char folder[64];

/* Writes TEXT, with every "LIB" replaced by the library's path, to NAME in
 * the test folder, and returns the file's path in a static buffer. */
static const char *write_model(const char *name, const char *text)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", folder, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (const char *p = text; *p != '\0'; p++) {
        if (strncmp(p, "LIB", 3) == 0) {
            fputs(AF_EXTERN_LIB, f);
            p += 2;
        } else {
            fputc(*p, f);
        }
    }
    fclose(f);
    return path;
}

static af_model *compile_extern(const char *name, const char *text)
{
    af_lang_options opts = {1};
    af_model *m = NULL;
    char *message = NULL;
    if (af_model_compile_opts(write_model(name, text), NULL, &opts, &m, &message) != 0)
        fail_msg("%s", message);
    return m;
}

/* Compiles TEXT with extern functions allowed, expects failure and returns
 * the malloc'ed message. */
static char *compile_error(const char *name, const char *text)
{
    af_lang_options opts = {1};
    af_model *m = NULL;
    char *message = NULL;
    assert_int_not_equal(af_model_compile_opts(write_model(name, text), NULL, &opts, &m, &message), 0);
    assert_null(m);
    assert_non_null(message);
    return message;
}

static void random_point(double *z, size_t d, double scale)
{
    for (size_t j = 0; j < d; j++)
        z[j] = scale * (2.0 * rand() / RAND_MAX - 1.0);
}

static void assert_relative(double found, double expected, double tolerance, const char *what,
                            int point)
{
    if (!(fabs(found - expected) <= tolerance * (1 + fabs(expected))))
        fail_msg("%s at point %d: found %.17g, expected %.17g", what, point, found, expected);
}

static const char *plain_model =
    "parameters { real a; real b; vector[3] v; real<lower=0> s; }\n"
    "model {\n"
    "  target += -(square(1 - a) + 100 * square(b - square(a))) / 20;\n"
    "  target += normal_lpdf(v | a, s);\n"
    "  s ~ lognormal(0, 1);\n"
    "}\n";

/* Compares the log-density and score of M with the plain model's at random
 * points to TOLERANCE, and checks M's score against finite differences. */
static void compare_with_plain(af_model *m, double tolerance)
{
    af_model *plain = compile_extern("plain.afm", plain_model);
    size_t d = af_model_dim(m);
    assert_int_equal(d, af_model_dim(plain));
    af_eval *ev = af_eval_new(m), *plain_ev = af_eval_new(plain);
    srand(7);
    for (int p = 0; p < POINTS; p++) {
        double z[MAX_DIM], score[MAX_DIM], lp, plain_score[MAX_DIM], plain_lp;
        random_point(z, d, 1.5);
        assert_int_equal(af_eval_logp(ev, z, 1, &lp, score, NULL, 0), 0);
        assert_int_equal(af_eval_logp(plain_ev, z, 1, &plain_lp, plain_score, NULL, 0), 0);
        assert_relative(lp, plain_lp, 1e-12, "log-density", p);
        for (size_t j = 0; j < d; j++)
            assert_relative(score[j], plain_score[j], tolerance, "score", p);
        score_check_point("extern", p, ev, z, d, score, lp, 1e-6, 0.0);
    }
    af_eval_free(ev);
    af_eval_free(plain_ev);
    af_model_free(plain);
}

static void derivative_matches_plain_model(void **state)
{
    (void)state;
    af_model *m = compile_extern(
        "derivative.afm",
        "functions {\n"
        "  extern real ext_rosen(real x, real y) from \"LIB\" derivative \"ext_rosen_grad\";\n"
        "  extern real ext_normal_sum(vector x, real mu, real sigma) from \"LIB\"\n"
        "      derivative \"ext_normal_sum_grad\";\n"
        "}\n"
        "parameters { real a; real b; vector[3] v; real<lower=0> s; }\n"
        "model {\n"
        "  target += -ext_rosen(a, b) / 20;\n"
        "  target += ext_normal_sum(v, a, s);\n"
        "  s ~ lognormal(0, 1);\n"
        "}\n");
    compare_with_plain(m, 1e-12);
    af_model_free(m);
}

static void finite_difference_matches_plain_model(void **state)
{
    (void)state;
    af_model *m = compile_extern(
        "finite_difference.afm",
        "functions {\n"
        "  extern real ext_rosen_fd(real x, real y) from \"LIB\" derivative finite_difference;\n"
        "  extern real ext_normal_sum(vector x, real mu, real sigma) from \"LIB\"\n"
        "      derivative finite_difference;\n"
        "}\n"
        "parameters { real a; real b; vector[3] v; real<lower=0> s; }\n"
        "model {\n"
        "  target += -ext_rosen_fd(a, b) / 20;\n"
        "  target += ext_normal_sum(v, a, s);\n"
        "  s ~ lognormal(0, 1);\n"
        "}\n");
    compare_with_plain(m, 1e-7);
    af_model_free(m);
}

/* "./lib" in a model resolves against the model's folder, not the working
 * folder: the library is linked into the test folder only. */
static void relative_library_path(void **state)
{
    (void)state;
    char link[256];
    snprintf(link, sizeof link, "%s/libextern_here.so", folder);
    assert_int_equal(symlink(AF_EXTERN_LIB, link), 0);
    af_model *m = compile_extern(
        "relative.afm",
        "functions {\n"
        "  extern real ext_log(real x) from \"./libextern_here.so\" derivative \"ext_log_grad\";\n"
        "}\n"
        "parameters { real<lower=0> x; }\n"
        "model { target += ext_log(x); }\n");
    /* The flow identity hashes the library at this path: the model's
     * folder joined to the path as written. */
    char resolved[256];
    snprintf(resolved, sizeof resolved, "%s/./libextern_here.so", folder);
    assert_int_equal(af_model_extern_count(m), 1);
    assert_string_equal(af_model_extern_library(m, 0), resolved);
    assert_null(af_model_extern_library(m, 1));
    af_eval *ev = af_eval_new(m);
    double z = 0.5, lp, score;
    assert_int_equal(af_eval_logp(ev, &z, 1, &lp, &score, NULL, 0), 0);
    /* x = exp(z): log x = z, plus the log-Jacobian z. */
    assert_relative(lp, 2 * z, 1e-14, "log-density", 0);
    assert_relative(score, 2.0, 1e-14, "score", 0);
    af_eval_free(ev);
    af_model_free(m);
    remove(link);
}

static void non_finite_value_is_an_error(void **state)
{
    (void)state;
    af_model *m = compile_extern(
        "nan.afm",
        "functions {\n"
        "  extern real ext_log(real x) from \"LIB\" derivative \"ext_log_grad\";\n"
        "}\n"
        "parameters { real x; }\n"
        "model { target += ext_log(x); }\n");
    af_eval *ev = af_eval_new(m);
    double z[2] = {2.0, -1.0}, lp[2], score[2];
    char message[512] = "";
    assert_int_equal(af_eval_logp(ev, z, 1, lp, score, message, sizeof message), 0);
    assert_relative(score[0], 0.5, 1e-15, "score", 0);
    assert_int_not_equal(af_eval_logp(ev, z, 2, lp, NULL, message, sizeof message), 0);
    if (strstr(message, "extern function 'ext_log' returned nan at (-1)") == NULL)
        fail_msg("unexpected message: %s", message);
    af_eval_free(ev);
    af_model_free(m);
}

static void missing_partial_is_an_error(void **state)
{
    (void)state;
    af_model *m = compile_extern(
        "partial.afm",
        "functions {\n"
        "  extern real ext_product(real x, real y) from \"LIB\" derivative \"ext_product_grad\";\n"
        "}\n"
        "parameters { real x; real y; }\n"
        "model { target += ext_product(x, y); }\n");
    af_eval *ev = af_eval_new(m);
    double z[2] = {2.0, 3.0}, lp, score[2];
    char message[512] = "";
    assert_int_equal(af_eval_logp(ev, z, 1, &lp, NULL, message, sizeof message), 0);
    assert_relative(lp, 6.0, 1e-15, "log-density", 0);
    assert_int_not_equal(af_eval_logp(ev, z, 1, &lp, score, message, sizeof message), 0);
    if (strstr(message, "'ext_product_grad' wrote nan (or nothing)") == NULL ||
        strstr(message, "argument element 2") == NULL)
        fail_msg("unexpected message: %s", message);
    af_eval_free(ev);
    af_model_free(m);
}

/* A call on data runs while compiling; a failing one is a compile error at
 * the call. */
static void call_on_data_runs_while_compiling(void **state)
{
    (void)state;
    af_model *m = compile_extern(
        "folded.afm",
        "functions {\n"
        "  extern real ext_rosen(real x, real y) from \"LIB\" derivative \"ext_rosen_grad\";\n"
        "}\n"
        "transformed data { real c = ext_rosen(2, 3); print(\"c = \", c); }\n"
        "parameters { real x; }\n"
        "model { x ~ normal(c, 1); }\n");
    assert_string_equal(af_model_printed(m), "c = 101\n");
    af_model_free(m);

    char *message = compile_error(
        "folded_nan.afm",
        "functions {\n"
        "  extern real ext_log(real x) from \"LIB\" derivative \"ext_log_grad\";\n"
        "}\n"
        "transformed data { real c = ext_log(-2); }\n"
        "parameters { real x; }\n"
        "model { x ~ normal(c, 1); }\n");
    if (strstr(message, "folded_nan.afm:4:29: error: extern function 'ext_log' returned nan") ==
        NULL)
        fail_msg("unexpected message: %s", message);
    free(message);
}

static void call_in_generated_quantities(void **state)
{
    (void)state;
    af_model *m = compile_extern(
        "columns.afm",
        "functions {\n"
        "  extern real ext_rosen(real x, real y) from \"LIB\" derivative \"ext_rosen_grad\";\n"
        "}\n"
        "parameters { real a; real b; }\n"
        "model { a ~ normal(0, 1); b ~ normal(0, 1); }\n"
        "generated quantities { real r = ext_rosen(a, b); }\n");
    assert_int_equal(af_model_column_count(m), 3);
    assert_string_equal(af_model_column_name(m, 2), "r");
    double z[2] = {0.5, -0.25}, columns[3];
    char message[256];
    assert_int_equal(af_model_constrain(m, z, columns, message, sizeof message), 0);
    assert_relative(columns[2], 0.25 + 100 * 0.25, 1e-15, "column r", 0);
    af_model_free(m);

    m = compile_extern(
        "columns_nan.afm",
        "functions {\n"
        "  extern real ext_log(real x) from \"LIB\" derivative \"ext_log_grad\";\n"
        "}\n"
        "parameters { real a; }\n"
        "model { a ~ normal(0, 1); }\n"
        "generated quantities { real l = ext_log(a); }\n");
    double negative = -1.0;
    assert_int_not_equal(af_model_constrain(m, &negative, columns, message, sizeof message), 0);
    if (strstr(message, "extern function 'ext_log' returned nan at (-1)") == NULL)
        fail_msg("unexpected message: %s", message);
    af_model_free(m);
}

static int make_folder(void **state)
{
    (void)state;
    snprintf(folder, sizeof folder, "extern_test_XXXXXX");
    return mkdtemp(folder) == NULL ? -1 : 0;
}

static int remove_folder(void **state)
{
    (void)state;
    const char *names[] = {"plain.afm", "derivative.afm", "finite_difference.afm",
                           "relative.afm", "nan.afm", "partial.afm", "folded.afm",
                           "folded_nan.afm", "columns.afm", "columns_nan.afm",
                           "libextern_here.so"};
    char path[256];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", folder, names[i]);
        remove(path);
    }
    return rmdir(folder);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(derivative_matches_plain_model),
        cmocka_unit_test(finite_difference_matches_plain_model),
        cmocka_unit_test(relative_library_path),
        cmocka_unit_test(non_finite_value_is_an_error),
        cmocka_unit_test(missing_partial_is_an_error),
        cmocka_unit_test(call_on_data_runs_while_compiling),
        cmocka_unit_test(call_in_generated_quantities),
    };
    return cmocka_run_group_tests(tests, make_folder, remove_folder);
}
