/* Shared by the libFuzzer targets: writes one fuzz input to a file of this
 * process's own, because af_model_compile reads its model and data by path,
 * and compiles it. */
#ifndef AF_FUZZ_COMMON_H
#define AF_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "af_lang.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Writes DATA to a file named after SUFFIX and the process id in $TMPDIR
 * (or /tmp), so that parallel fuzzers do not share it, and compiles it: as
 * the model when DATA_MODEL is NULL, else as the data for DATA_MODEL. Any
 * compiler status passes; only a crash or a sanitizer report fails. */
static int fuzz_compile(const uint8_t *data, size_t size, const char *data_model)
{
    char path[4096];
    const char *dir = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/afm_fuzz_%ld%s", dir != NULL ? dir : "/tmp", (long)getpid(),
             data_model == NULL ? ".afm" : ".json");
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return 0;
    size_t written = fwrite(data, 1, size, f);
    if (fclose(f) != 0 || written != size)
        return 0;

    af_model *model = NULL;
    char *message = NULL;
    if (data_model == NULL)
        af_model_compile(path, NULL, &model, &message);
    else
        af_model_compile(data_model, path, &model, &message);
    af_model_free(model);
    free(message);
    return 0;
}

#endif
