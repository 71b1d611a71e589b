/* print and reject on values that depend on parameters: which prints run
 * while compiling and which at given points (af_model_print_at), the
 * -Inf log-density and message of a reached reject in the model, and the
 * error of a reject reached in generated quantities. */
#define _POSIX_C_SOURCE 200809L

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
#include "af_lang.h"
#include "score_check.h"

static char model_path[] = "/tmp/afm_effects_XXXXXX";

/* Compiles TEXT from the file at model_path. */
static af_model *compile_text(const char *text)
{
    FILE *f = fopen(model_path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    af_model *m = NULL;
    char *message = NULL;
    if (af_model_compile(model_path, NULL, &m, &message) != AF_LANG_OK)
        fail_msg("the model does not compile:\n%s", message);
    return m;
}

/* Returns what af_model_print_at writes at Z, "" when nothing. */
static char *printed_at(const af_model *m, const double *z)
{
    char *text = NULL, message[256];
    if (af_model_print_at(m, z, &text, message, sizeof message) != 0)
        fail_msg("af_model_print_at failed: %s", message);
    if (text == NULL) {
        text = malloc(1);
        text[0] = '\0';
    }
    return text;
}

static void expect_printed(const af_model *m, const double *z, const char *want)
{
    char *text = printed_at(m, z);
    if (strcmp(text, want) != 0)
        fail_msg("printed:\n%s\nexpected:\n%s", text, want);
    free(text);
}

static const char *const branch_model =
    "parameters { real mu; vector[2] v; }\n"
    "model {\n"
    "  print(\"known \", 1.5);\n"
    "  print(\"mu = \", mu, \", v = \", v);\n"
    "  if (mu > 0)\n"
    "    print(\"positive\");\n"
    "  else\n"
    "    print(\"not positive\");\n"
    "  mu ~ normal(0, 1);\n"
    "  v ~ normal(0, 1);\n"
    "}\n";

static void prints_of_parameters_run_at_points(void **state)
{
    (void)state;
    af_model *m = compile_text(branch_model);
    /* Only the print of known values that always runs ran while compiling. */
    assert_string_equal(af_model_printed(m), "known 1.5\n");
    double above[3] = {0.5, 1.0, -2.25}, below[3] = {-1.0, 0.0, 3.0};
    expect_printed(m, above, "mu = 0.5, v = [1,-2.25]\npositive\n");
    expect_printed(m, below, "mu = -1, v = [0,3]\nnot positive\n");
    af_model_free(m);
}

static void model_without_effects_prints_nothing(void **state)
{
    (void)state;
    af_model *m = compile_text("parameters { real x; }\nmodel { x ~ normal(0, 1); }\n");
    double z[1] = {0.5};
    char *text = (char *)1, message[64];
    assert_int_equal(af_model_print_at(m, z, &text, message, sizeof message), 0);
    assert_null(text);
    af_model_free(m);
}

static const char *const reject_model =
    "parameters { real x; }\n"
    "model {\n"
    "  if (x > 1)\n"
    "    reject(\"x must be at most 1, found \", x);\n"
    "  print(\"x passed: \", x);\n"
    "  x ~ normal(0, 1);\n"
    "}\n";

static void reject_in_model_gives_minus_infinity(void **state)
{
    (void)state;
    af_model *m = compile_text(reject_model);
    double inside[1] = {0.5}, outside[1] = {2.5};
    double normal_at_half = -0.5 * log(2 * acos(-1.0)) - 0.125;
    assert_true(fabs(score_check_model_logp(m, inside) - normal_at_half) < 1e-12);
    assert_true(score_check_model_logp(m, outside) == -INFINITY);

    /* The message shows the value; the print after the reject does not run. */
    char want[256];
    snprintf(want, sizeof want, "%s:4:5: reject: x must be at most 1, found 2.5\n", model_path);
    expect_printed(m, outside, want);
    expect_printed(m, inside, "x passed: 0.5\n");
    af_model_free(m);
}

/* A function that rejects a non-positive argument. */
#define CHECKED_LOG_FUNCTIONS                                                  \
    "functions {\n"                                                           \
    "  real checked_log(real x) {\n"                                          \
    "    if (x <= 0)\n"                                                       \
    "      reject(\"checked_log needs a positive argument, found \", x);\n"   \
    "    return log(x);\n"                                                    \
    "  }\n"                                                                   \
    "}\n"

static const char *const ternary_model =
    CHECKED_LOG_FUNCTIONS
    "parameters { real x; }\n"
    "model {\n"
    "  target += x > 0 ? checked_log(x) : -x;\n"
    "}\n";

static void reject_in_unchosen_side_ignored(void **state)
{
    (void)state;
    af_model *m = compile_text(ternary_model);
    double positive[1] = {2.0}, negative[1] = {-1.0};
    assert_true(score_check_model_logp(m, positive) == log(2.0));
    /* Stan never calls checked_log(-1), so its reject does not apply. */
    assert_true(score_check_model_logp(m, negative) == 1.0);
    expect_printed(m, negative, "");
    af_model_free(m);
}

static const char *const logical_model =
    CHECKED_LOG_FUNCTIONS
    "parameters { real x; }\n"
    "model {\n"
    "  if (x > 0 && checked_log(x) > -1)\n"
    "    target += 1;\n"
    "  if (x <= 0 || checked_log(x) < 5)\n"
    "    target += 2;\n"
    "}\n";

/* The right side of && and || runs only where the left side does not
 * settle the result, so a reject there applies only at those points. */
static void reject_in_unevaluated_right_side_ignored(void **state)
{
    (void)state;
    af_model *m = compile_text(logical_model);
    double negative[1] = {-1.0}, half[1] = {0.5}, tiny[1] = {0.1};
    /* x = -1: && stops at its left side, || at its left side. */
    assert_true(score_check_model_logp(m, negative) == 2.0);
    /* x = 0.5: log(0.5) > -1, and log(0.5) < 5. */
    assert_true(score_check_model_logp(m, half) == 3.0);
    /* x = 0.1: log(0.1) < -1, so only the second if adds. */
    assert_true(score_check_model_logp(m, tiny) == 2.0);
    expect_printed(m, negative, "");
    af_model_free(m);
}

static const char *const generated_model =
    "parameters { real mu; }\n"
    "model { mu ~ normal(0, 1); }\n"
    "generated quantities {\n"
    "  real t = 2 * mu;\n"
    "  if (t > 3)\n"
    "    reject(\"t is too large: \", t);\n"
    "}\n";

static void reject_in_generated_quantities_stops(void **state)
{
    (void)state;
    af_model *m = compile_text(generated_model);
    double values[2], small[1] = {1.0}, large[1] = {2.0};
    char message[256];
    assert_int_equal(af_model_constrain(m, small, values, message, sizeof message), 0);
    assert_true(values[1] == 2.0);

    assert_int_not_equal(af_model_constrain(m, large, values, message, sizeof message), 0);
    char want[256];
    snprintf(want, sizeof want, "%s:6:5: reject in generated quantities: t is too large: 4",
             model_path);
    assert_string_equal(message, want);

    /* The log-density ignores generated quantities. */
    assert_true(isfinite(score_check_model_logp(m, large)));
    af_model_free(m);
}

static int make_model_file(void **state)
{
    (void)state;
    int fd = mkstemp(model_path);
    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

static int remove_model_file(void **state)
{
    (void)state;
    return remove(model_path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(prints_of_parameters_run_at_points),
        cmocka_unit_test(model_without_effects_prints_nothing),
        cmocka_unit_test(reject_in_model_gives_minus_infinity),
        cmocka_unit_test(reject_in_unchosen_side_ignored),
        cmocka_unit_test(reject_in_unevaluated_right_side_ignored),
        cmocka_unit_test(reject_in_generated_quantities_stops),
    };
    return cmocka_run_group_tests(tests, make_model_file, remove_model_file);
}
