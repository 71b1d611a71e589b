/* Golden error test: compiles CASE.afm (with CASE.json as data when that
 * file exists) in the current folder, expects compilation to fail, and
 * compares every diagnostic with CASE.expected byte for byte. CASE.options,
 * when it exists, holds afrun options that set compiler options; only
 * --allow-extern is known. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "af_lang.h"

static const char *case_name;

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    char *text = calloc(1, 1 << 16);
    size_t n = fread(text, 1, (1 << 16) - 1, f);
    text[n] = '\0';
    fclose(f);
    return text;
}

/* Reads CASE.options into OPTS; fails the test on an unknown option. */
static void read_options(af_lang_options *opts)
{
    char path[256], word[64];
    snprintf(path, sizeof path, "%s.options", case_name);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return;
    while (fscanf(f, "%63s", word) == 1) {
        if (strcmp(word, "--allow-extern") != 0)
            fail_msg("%s: unknown option '%s'", path, word);
        opts->allow_extern = 1;
    }
    fclose(f);
}

static void diagnostic_matches(void **state)
{
    (void)state;
    char model[256], data[256], expected_path[256];
    snprintf(model, sizeof model, "%s.afm", case_name);
    snprintf(data, sizeof data, "%s.json", case_name);
    snprintf(expected_path, sizeof expected_path, "%s.expected", case_name);
    FILE *f = fopen(data, "rb");
    if (f != NULL)
        fclose(f);

    af_lang_options opts = {0};
    read_options(&opts);
    af_model *m = NULL;
    char *message = NULL;
    int status = af_model_compile_opts(model, f != NULL ? data : NULL, &opts, &m, &message);
    assert_int_not_equal(status, 0);
    assert_null(m);
    assert_non_null(message);

    char *expected = read_text(expected_path);
    if (expected == NULL)
        fail_msg("missing %s; the diagnostic was:\n%s", expected_path, message);
    if (strcmp(expected, message) != 0)
        fail_msg("diagnostic differs from %s\n--- found:\n%s--- expected:\n%s", expected_path,
                 message, expected);
    free(expected);
    free(message);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: run_error_case CASE\n");
        return 2;
    }
    case_name = argv[1];
    const struct CMUnitTest tests[] = {cmocka_unit_test(diagnostic_matches)};
    return cmocka_run_group_tests_name(case_name, tests, NULL, NULL);
}
