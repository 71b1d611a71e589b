/* #include: paths relative to the including file and then to the current
 * directory, the nesting limit, diagnostics that name the included file,
 * and the list of source files that the flow-file hash reads. Every file
 * lives in a fresh temporary folder. */
#define _POSIX_C_SOURCE 200809L

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "af_eval.h"
#include "af_lang.h"
#include "score_check.h"
#include "lang_internal.h"

static char folder[] = "/tmp/afm_include_XXXXXX";

/* Writes TEXT to FOLDER/NAME and returns that path in a static buffer
 * that the next call overwrites. */
static const char *write_file(const char *name, const char *text)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", folder, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

static const char *path_of(const char *name)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", folder, name);
    return path;
}

static af_model *compile_ok(const char *path)
{
    af_model *m = NULL;
    char *message = NULL;
    if (af_model_compile(path, NULL, &m, &message) != AF_LANG_OK)
        fail_msg("%s does not compile:\n%s", path, message);
    return m;
}

/* Compiles PATH, expects a failure and returns the diagnostics. */
static char *compile_fails(const char *path)
{
    af_model *m = NULL;
    char *message = NULL;
    assert_int_equal(af_model_compile(path, NULL, &m, &message), AF_LANG_ERROR);
    assert_null(m);
    assert_non_null(message);
    return message;
}

static void include_next_to_including_file(void **state)
{
    (void)state;
    write_file("sub/priors.afm", "mu ~ normal(0, 2);\n#include \"scale.afm\"\n");
    write_file("sub/scale.afm", "sigma ~ exponential(1);\n");
    const char *model = write_file("model.afm",
                                   "parameters { real mu; real<lower=0> sigma; }\n"
                                   "model {\n  #include \"sub/priors.afm\"\n"
                                   "  target += -mu * sigma;\n}\n");
    af_model *m = compile_ok(model);
    assert_int_equal(af_model_source_count(m), 3);
    assert_string_equal(af_model_source_path(m, 0), path_of("model.afm"));
    assert_string_equal(af_model_source_path(m, 1), path_of("sub/priors.afm"));
    assert_string_equal(af_model_source_path(m, 2), path_of("sub/scale.afm"));
    assert_null(af_model_source_path(m, 3));

    /* The same model pasted in one file has the same log-density. */
    af_model *pasted = compile_ok(write_file("pasted.afm",
                                             "parameters { real mu; real<lower=0> sigma; }\n"
                                             "model {\n  mu ~ normal(0, 2);\n"
                                             "  sigma ~ exponential(1);\n"
                                             "  target += -mu * sigma;\n}\n"));
    double z[2] = {0.3, -0.7};
    assert_true(score_check_model_logp(m, z) == score_check_model_logp(pasted, z));
    af_model_free(pasted);
    af_model_free(m);
}

static void include_from_current_directory(void **state)
{
    (void)state;
    char saved[4096];
    assert_non_null(getcwd(saved, sizeof saved));
    write_file("shared.afm", "x ~ normal(0, 1);\n");
    write_file("models/uses_shared.afm",
               "parameters { real x; }\nmodel {\n#include shared.afm\n}\n");
    assert_int_equal(chdir(folder), 0);
    af_model *m = NULL;
    char *message = NULL;
    int status = af_model_compile("models/uses_shared.afm", NULL, &m, &message);
    assert_int_equal(chdir(saved), 0);
    if (status != AF_LANG_OK)
        fail_msg("models/uses_shared.afm does not compile:\n%s", message);
    assert_int_equal(af_model_source_count(m), 2);
    assert_string_equal(af_model_source_path(m, 1), "shared.afm");
    af_model_free(m);
}

static void file_included_twice_listed_once(void **state)
{
    (void)state;
    write_file("half.afm", "target += -0.25 * x^2;\n");
    af_model *m = compile_ok(write_file("twice.afm", "parameters { real x; }\nmodel {\n"
                                                     "#include \"half.afm\"\n"
                                                     "#include \"half.afm\"\n}\n"));
    assert_int_equal(af_model_source_count(m), 2);
    double z[1] = {2.0};
    assert_true(score_check_model_logp(m, z) == -2.0);
    af_model_free(m);
}

/* Writes a chain model.afm -> level_1.afm -> ... -> level_DEPTH.afm. */
static const char *write_chain(int depth)
{
    char name[64], text[128];
    for (int k = 1; k <= depth; k++) {
        snprintf(name, sizeof name, "chain/level_%d.afm", k);
        if (k < depth)
            snprintf(text, sizeof text, "#include \"level_%d.afm\"\n", k + 1);
        else
            snprintf(text, sizeof text, "x ~ normal(0, 1);\n");
        write_file(name, text);
    }
    return write_file("chain/model.afm",
                      "parameters { real x; }\nmodel {\n#include \"level_1.afm\"\n}\n");
}

static void nesting_limit(void **state)
{
    (void)state;
    af_model *m = compile_ok(write_chain(AF_MAX_INCLUDE_DEPTH));
    assert_int_equal(af_model_source_count(m), AF_MAX_INCLUDE_DEPTH + 1);
    af_model_free(m);

    char *message = compile_fails(write_chain(AF_MAX_INCLUDE_DEPTH + 1));
    char want[128];
    snprintf(want, sizeof want, "level_%d.afm:1:11: error: too many nested #include files "
             "(limit is %d)", AF_MAX_INCLUDE_DEPTH, AF_MAX_INCLUDE_DEPTH);
    if (strstr(message, want) == NULL)
        fail_msg("expected '%s' in:\n%s", want, message);
    free(message);
}

static void error_names_included_file(void **state)
{
    (void)state;
    write_file("deep/inner.afm", "// line 1\n\n  y ~ normal(0, 1);\n");
    write_file("deep/outer.afm", "#include \"inner.afm\"\n");
    char *message = compile_fails(write_file("deep/model.afm",
                                             "parameters { real x; }\nmodel {\n"
                                             "#include \"outer.afm\"\n}\n"));
    char want[600];
    snprintf(want, sizeof want,
             "%s:3:3: error: unknown identifier 'y'\n  y ~ normal(0, 1);\n  ^\n",
             path_of("deep/inner.afm"));
    if (strncmp(message, want, strlen(want)) != 0)
        fail_msg("expected:\n%sfound:\n%s", want, message);
    free(message);

    /* An error after the include is again in the model file. */
    message = compile_fails(write_file("deep/after.afm", "parameters { real x; }\nmodel {\n"
                                                         "#include \"outer.afm\"\n  z = 1;\n}\n"));
    snprintf(want, sizeof want, "%s:4:3: error: unknown identifier 'z'",
             path_of("deep/after.afm"));
    if (strstr(message, want) == NULL)
        fail_msg("expected '%s' in:\n%s", want, message);
    free(message);
}

static void directory_is_not_included(void **state)
{
    (void)state;
    char *message = compile_fails(write_file("dir.afm", "parameters { real x; }\nmodel {\n"
                                                        "#include \"sub\"\n}\n"));
    assert_non_null(strstr(message, "not a regular file"));
    free(message);
}

static int make_folders(void **state)
{
    (void)state;
    if (mkdtemp(folder) == NULL)
        return -1;
    const char *subs[] = {"sub", "models", "chain", "deep"};
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
        if (mkdir(path_of(subs[i]), 0700) != 0)
            return -1;
    return 0;
}

static int remove_folders(void **state)
{
    (void)state;
    char command[600];
    snprintf(command, sizeof command, "rm -rf '%s'", folder);
    return system(command) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(include_next_to_including_file),
        cmocka_unit_test(include_from_current_directory),
        cmocka_unit_test(file_included_twice_listed_once),
        cmocka_unit_test(nesting_limit),
        cmocka_unit_test(error_names_included_file),
        cmocka_unit_test(directory_is_not_included),
    };
    return cmocka_run_group_tests(tests, make_folders, remove_folders);
}
