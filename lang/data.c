/* Reads data variables from a CmdStan-style JSON file with cJSON. Every
 * mismatch names the data file, the variable, the expected and the found
 * shape, then points at the declaration in the model. Reals may be given as
 * the strings "Inf", "-Inf" or "NaN". */
#include "lang_internal.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    char *text = NULL;
    size_t used = 0, cap = 0;
    for (;;) {
        if (used + 4096 > cap) {
            cap = cap ? 2 * cap : 65536;
            char *p = realloc(text, cap);
            if (p == NULL) {
                free(text);
                fclose(f);
                errno = ENOMEM;
                return NULL;
            }
            text = p;
        }
        size_t n = fread(text + used, 1, cap - used, f);
        used += n;
        if (n == 0)
            break;
    }
    int failed = ferror(f);
    fclose(f);
    if (failed) {
        free(text);
        errno = EIO;
        return NULL;
    }
    *len = used;
    return text;
}

static void line_and_column(const char *text, size_t offset, size_t *line, size_t *col)
{
    *line = 1;
    size_t start = 0;
    for (size_t i = 0; i < offset; i++) {
        if (text[i] == '\n') {
            (*line)++;
            start = i + 1;
        }
    }
    *col = offset - start + 1;
}

int lang_load_json(lang_context *ctx, const char *path, cJSON **root)
{
    size_t len = 0;
    char *text = read_file(path, &len);
    if (text == NULL) {
        diag_file_error(&ctx->diag, path, 0, 0, "cannot read the data file: %s", strerror(errno));
        return -1;
    }
    const char *end = NULL;
    *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (*root == NULL) {
        size_t line, col;
        size_t offset = end != NULL && end >= text ? (size_t)(end - text) : 0;
        line_and_column(text, offset, &line, &col);
        diag_file_error(&ctx->diag, path, line, col, "invalid JSON");
        free(text);
        return -1;
    }
    free(text);
    if (!cJSON_IsObject(*root)) {
        diag_file_error(&ctx->diag, path, 0, 0,
                        "the data must be a JSON object mapping variable names to values");
        cJSON_Delete(*root);
        *root = NULL;
        return -1;
    }
    return 0;
}

/* Describes a JSON value for "found ..." in messages. */
static void describe(const cJSON *item, char *out, size_t cap)
{
    if (cJSON_IsNumber(item))
        snprintf(out, cap, "%.17g", item->valuedouble);
    else if (cJSON_IsString(item))
        snprintf(out, cap, "the string \"%.40s\"", item->valuestring);
    else if (cJSON_IsArray(item))
        snprintf(out, cap, "an array of length %d", cJSON_GetArraySize(item));
    else if (cJSON_IsObject(item))
        snprintf(out, cap, "an object");
    else if (cJSON_IsBool(item))
        snprintf(out, cap, "%s", cJSON_IsTrue(item) ? "true" : "false");
    else
        snprintf(out, cap, "null");
}

static void expected_shape(const ast_decl *d, size_t len, char *out, size_t cap)
{
    if (d->type == TYPE_VECTOR)
        snprintf(out, cap, "vector[%zu]", len);
    else
        snprintf(out, cap, "%s", ast_type_name(d->type));
}

static int equal_ignoring_case(const char *a, const char *b)
{
    for (; *a != '\0' && *b != '\0'; a++, b++)
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b))
            return 0;
    return *a == *b;
}

/* Reads a real from a number or from "Inf", "-Inf", "NaN" (also
 * "Infinity", "+Inf" and lower case). Returns 0 on success. */
static int read_real(const cJSON *item, double *out)
{
    if (cJSON_IsNumber(item)) {
        *out = item->valuedouble;
        return 0;
    }
    if (!cJSON_IsString(item))
        return -1;
    const char *s = item->valuestring;
    int negative = s[0] == '-';
    if (s[0] == '-' || s[0] == '+')
        s++;
    if (equal_ignoring_case(s, "inf") || equal_ignoring_case(s, "infinity"))
        *out = negative ? -INFINITY : INFINITY;
    else if (equal_ignoring_case(s, "nan"))
        *out = NAN;
    else
        return -1;
    return 0;
}

static int read_int(const cJSON *item, double *out)
{
    if (!cJSON_IsNumber(item))
        return -1;
    double v = item->valuedouble;
    if (v != floor(v) || v < INT32_MIN || v > INT32_MAX)
        return -1;
    *out = v;
    return 0;
}

typedef struct {
    lang_context *ctx;
    const char *path;
    const ast_decl *decl;
    size_t len;
} data_request;

static int mismatch(const data_request *r, const char *element, const cJSON *found)
{
    char want[64], got[96];
    expected_shape(r->decl, r->len, want, sizeof want);
    describe(found, got, sizeof got);
    if (element != NULL)
        diag_file_error(&r->ctx->diag, r->path, 0, 0,
                        "variable '%s': %s: expected %s, found %s", r->decl->name, element,
                        r->decl->type == TYPE_INT ? "int" : "real", got);
    else
        diag_file_error(&r->ctx->diag, r->path, 0, 0, "variable '%s': expected %s, found %s",
                        r->decl->name, want, got);
    diag_note(&r->ctx->diag, r->decl->span, "'%s' is declared here", r->decl->name);
    return -1;
}

static int read_element(const data_request *r, const cJSON *item, double *out)
{
    return r->decl->type == TYPE_INT ? read_int(item, out) : read_real(item, out);
}

int lang_read_data(lang_context *ctx, const cJSON *root, const char *path, const ast_decl *decl,
                   size_t len, double *values)
{
    data_request r = {ctx, path, decl, len};
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, decl->name);
    if (item == NULL) {
        char want[64];
        expected_shape(decl, len, want, sizeof want);
        diag_file_error(&ctx->diag, path, 0, 0, "variable '%s' is missing; the model expects %s",
                        decl->name, want);
        diag_note(&ctx->diag, decl->span, "'%s' is declared here", decl->name);
        return -1;
    }
    if (decl->type != TYPE_VECTOR)
        return read_element(&r, item, values) == 0 ? 0 : mismatch(&r, NULL, item);

    if (!cJSON_IsArray(item) || (size_t)cJSON_GetArraySize(item) != len)
        return mismatch(&r, NULL, item);
    size_t e = 0;
    const cJSON *element;
    cJSON_ArrayForEach(element, item)
    {
        if (read_element(&r, element, &values[e]) != 0) {
            char where[48];
            snprintf(where, sizeof where, "element %zu", e + 1);
            return mismatch(&r, where, element);
        }
        e++;
    }
    return 0;
}
