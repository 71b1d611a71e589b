/* Compiles every file in a folder of fuzzer finds: NAME.afm as a model
 * without data, NAME.json as data for the fixed data model. A file passes
 * when the compiler returns, with success or with a diagnostic. A crash,
 * a hang or a sanitizer report fails the CTest entry. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "af_lang.h"

static int has_suffix(const char *name, const char *suffix)
{
    size_t n = strlen(name), k = strlen(suffix);
    return n >= k && strcmp(name + n - k, suffix) == 0;
}

/* Compiles one regression file and prints its outcome. Returns 0 when the
 * status is one af_model_compile documents. */
static int run_case(const char *data_model, const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int is_data = has_suffix(name, ".json");

    af_model *model = NULL;
    char *message = NULL;
    int status = is_data ? af_model_compile(data_model, path, &model, &message)
                         : af_model_compile(path, NULL, &model, &message);
    int valid = status == AF_LANG_OK ? model != NULL && message == NULL
                                     : model == NULL && message != NULL;
    printf("%-8s %s\n", status == AF_LANG_OK ? "compiles" : "rejected", name);
    af_model_free(model);
    free(message);
    if (!valid)
        fprintf(stderr, "%s: status %d does not match its model and message\n", name, status);
    return valid ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: run_fuzz_regressions DATA_MODEL.afm DIR\n");
        return 2;
    }
    DIR *dir = opendir(argv[2]);
    if (dir == NULL) {
        fprintf(stderr, "%s: cannot open folder: %s\n", argv[2], strerror(errno));
        return 2;
    }

    int failures = 0, cases = 0;
    for (struct dirent *e; (e = readdir(dir)) != NULL;) {
        if (!has_suffix(e->d_name, ".afm") && !has_suffix(e->d_name, ".json"))
            continue;
        failures += run_case(argv[1], argv[2], e->d_name);
        cases++;
    }
    closedir(dir);
    printf("%d regression inputs, %d failed\n", cases, failures);
    return failures == 0 ? 0 : 1;
}
