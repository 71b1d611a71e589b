/* Compiles every ```stan block of docs/language.md, so that the language
 * reference stays true. A block's data is the JSON after "// data:" on its
 * first line. Extern functions are allowed: the example of extern C
 * functions loads the test library, which CMake builds into the working
 * folder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "af_lang.h"

static char *read_all(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    char *text = calloc(1, 1 << 20);
    size_t n = fread(text, 1, (1 << 20) - 1, f);
    text[n] = '\0';
    fclose(f);
    return text;
}

static void write_file(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fwrite(text, 1, len, f);
    fclose(f);
}

static void compile_block(const char *block, size_t len, int number)
{
    char model[64], data[64];
    snprintf(model, sizeof model, "docs_block_%d.afm", number);
    snprintf(data, sizeof data, "docs_block_%d.json", number);
    write_file(model, block, len);
    const char *marker = "// data: ";
    int has_data = strncmp(block, marker, strlen(marker)) == 0;
    if (has_data) {
        const char *json = block + strlen(marker);
        write_file(data, json, (size_t)(strchr(json, '\n') - json));
    }
    af_lang_options opts = {1};
    af_model *m = NULL;
    char *message = NULL;
    if (af_model_compile_opts(model, has_data ? data : NULL, &opts, &m, &message) != 0)
        fail_msg("block %d of docs/language.md does not compile:\n%s", number, message);
    af_model_free(m);
    remove(model);
    remove(data);
}

static void doc_blocks_compile(void **state)
{
    (void)state;
    char *text = read_all(AF_DOCS_DIR "/language.md");
    assert_non_null(text);
    int count = 0;
    const char *p = text;
    while ((p = strstr(p, "```stan\n")) != NULL) {
        p += strlen("```stan\n");
        const char *end = strstr(p, "```");
        assert_non_null(end);
        compile_block(p, (size_t)(end - p), ++count);
        p = end + 3;
    }
    assert_true(count >= 5);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(doc_blocks_compile)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
