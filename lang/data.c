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

int af_json_parse(const char *text, size_t len, struct cJSON **root, size_t *line,
                  size_t *column, char *reason, size_t reason_len)
{
    const char *end = NULL;
    *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (*root != NULL)
        return 0;

    size_t offset = end != NULL && end >= text && (size_t)(end - text) < len
                        ? (size_t)(end - text)
                        : len;
    const char *at = text + offset;
    /* A text that ends too soon is reported at the end of its last line. */
    int ends_early = offset + strspn(at, " \t\r\n") >= len;
    if (ends_early) {
        offset = len;
        while (offset > 0 && (text[offset - 1] == '\n' || text[offset - 1] == '\r'))
            offset--;
    }
    line_and_column(text, offset, line, column);
    if (ends_early)
        snprintf(reason, reason_len,
                 "invalid JSON: the file ends before its last value is complete");
    else if (strncmp(at, "NaN", 3) == 0 || strncmp(at, "Infinity", 8) == 0 ||
             strncmp(at, "-Infinity", 9) == 0 || strncmp(at, "inf", 3) == 0 ||
             strncmp(at, "-inf", 4) == 0 || strncmp(at, "nan", 3) == 0)
        snprintf(reason, reason_len,
                 "invalid JSON: write NaN and infinities as the strings \"NaN\", \"Inf\" "
                 "and \"-Inf\", as CmdStan's JSON does");
    else
        snprintf(reason, reason_len, "invalid JSON near '%.*s'",
                 (int)(strcspn(at, "\r\n") < 20 ? strcspn(at, "\r\n") : 20), at);
    return -1;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int af_json_repeated_name(const struct cJSON *object, const char **repeated)
{
    size_t n = (size_t)cJSON_GetArraySize(object);
    *repeated = NULL;
    if (n < 2)
        return 0;
    const char **names = malloc(n * sizeof *names);
    if (names == NULL)
        return -1;
    size_t k = 0;
    for (const cJSON *item = object->child; item != NULL && k < n; item = item->next)
        names[k++] = item->string;
    qsort(names, k, sizeof *names, compare_names);
    for (size_t i = 1; i < k && *repeated == NULL; i++)
        if (strcmp(names[i - 1], names[i]) == 0)
            *repeated = names[i];
    free(names);
    return 0;
}

int lang_load_json(lang_context *ctx, const char *path, cJSON **root)
{
    size_t len = 0;
    char *text = read_file(path, &len);
    if (text == NULL) {
        diag_file_error(&ctx->diag, path, 0, 0, "cannot read the data file: %s", strerror(errno));
        return -1;
    }
    char reason[160];
    size_t line, col;
    if (strspn(text, " \t\r\n") >= len) {
        diag_file_error(&ctx->diag, path, 0, 0,
                        "the data file is empty; it must be a JSON object such as "
                        "{\"N\": 3, \"y\": [1.5, 2, 0.3]}");
        free(text);
        *root = NULL;
        return -1;
    }
    if (af_json_parse(text, len, root, &line, &col, reason, sizeof reason) != 0) {
        diag_file_error(&ctx->diag, path, line, col, "%s", reason);
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
    const char *repeated = NULL;
    if (af_json_repeated_name(*root, &repeated) != 0) {
        diag_file_error(&ctx->diag, path, 0, 0, "out of memory checking the data's names");
    } else if (repeated != NULL) {
        diag_file_error(&ctx->diag, path, 0, 0,
                        "'%s' appears more than once; keep one value for it", repeated);
    } else {
        return 0;
    }
    cJSON_Delete(*root);
    *root = NULL;
    return -1;
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

static void expected_shape(const ast_decl *d, char *out, size_t cap)
{
    size_t used = 0;
    size_t k = 0;
    out[0] = '\0';
    if (d->type.dims > 0) {
        used += (size_t)snprintf(out, cap, "array[");
        for (; k < (size_t)d->type.dims && used < cap; k++)
            used += (size_t)snprintf(out + used, cap - used, "%s%zu", k ? ", " : "", d->shape[k]);
        if (used < cap)
            used += (size_t)snprintf(out + used, cap - used, "] ");
    }
    if (used >= cap)
        return;
    if (d->type.base == TYPE_MATRIX)
        snprintf(out + used, cap - used, "matrix[%zu, %zu]", d->shape[k], d->shape[k + 1]);
    else if (d->type.base == TYPE_VECTOR || d->type.base == TYPE_ROW_VECTOR)
        snprintf(out + used, cap - used, "%s[%zu]", ast_base_name(d->type.base), d->shape[k]);
    else
        snprintf(out + used, cap - used, "%s", ast_base_name(d->type.base));
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
    /* A written number beyond the largest double parses as an infinity;
     * infinities come only as the strings "Inf" and "-Inf". */
    if (cJSON_IsNumber(item)) {
        *out = item->valuedouble;
        return isinf(*out) ? -1 : 0;
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
    double *values;
    size_t index[AF_MAX_ARRAY_DIMS + 2]; /* 0-based position being read */
    size_t nan_count;                    /* NaN values read */
    char first_nan[96];                  /* " at [i, j]" of the first */
} data_request;

/* Writes " at [i, j]" (1-based) for the first DEPTH indices, "" for none. */
static void position_text(const data_request *r, size_t depth, char *out, size_t cap)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t k = 0; k < depth && used < cap; k++)
        used += (size_t)snprintf(out + used, cap - used, "%s%zu", k ? ", " : " at [",
                                 r->index[k] + 1);
    if (depth > 0 && used < cap)
        snprintf(out + used, cap - used, "]");
}

static int mismatch(const data_request *r, size_t depth, const char *want, const cJSON *found)
{
    char got[96], where[96], shape[96];
    describe(found, got, sizeof got);
    position_text(r, depth, where, sizeof where);
    expected_shape(r->decl, shape, sizeof shape);
    diag_file_error(&r->ctx->diag, r->path, 0, 0,
                    "variable '%s' (%s)%s: expected %s, found %s", r->decl->name, shape, where,
                    want, got);
    diag_note(&r->ctx->diag, r->decl->span, "'%s' is declared here", r->decl->name);
    return -1;
}

/* Flat offset of the position in R->index, in afm's layout. */
static size_t flat_offset(const data_request *r)
{
    const ast_decl *d = r->decl;
    size_t arrays = (size_t)d->type.dims;
    size_t inner = 1;
    for (size_t k = arrays; k < d->rank; k++)
        inner *= d->shape[k];
    size_t outer = 0;
    for (size_t k = 0; k < arrays; k++)
        outer = outer * d->shape[k] + r->index[k];
    size_t within = 0;
    if (d->rank == arrays + 1)
        within = r->index[arrays];
    else if (d->rank == arrays + 2)
        within = r->index[arrays + 1] * d->shape[arrays] + r->index[arrays];
    return outer * inner + within;
}

static int read_scalar(data_request *r, const cJSON *item, size_t depth)
{
    int is_int = r->decl->type.base == TYPE_INT;
    double *out = &r->values[flat_offset(r)];
    if ((is_int ? read_int(item, out) : read_real(item, out)) == 0) {
        if (isnan(*out) && r->nan_count++ == 0)
            position_text(r, depth, r->first_nan, sizeof r->first_nan);
        return 0;
    }
    const char *want = is_int ? "an int" : "a real";
    if (!is_int && cJSON_IsNumber(item) && isinf(item->valuedouble))
        want = "a real within the range of a double (write \"Inf\" for infinity)";
    if (is_int && cJSON_IsNumber(item) && item->valuedouble == floor(item->valuedouble))
        want = "an int (from -2147483648 to 2147483647)";
    return mismatch(r, depth, want, item);
}

/* Reads dimension DEPTH of the value: a JSON array of shape[DEPTH] items,
 * or a scalar past the last dimension. */
static int read_level(data_request *r, const cJSON *item, size_t depth)
{
    if (depth == r->decl->rank)
        return read_scalar(r, item, depth);
    size_t n = r->decl->shape[depth];
    char want[64];
    snprintf(want, sizeof want, "an array of length %zu", n);
    if (!cJSON_IsArray(item) || (size_t)cJSON_GetArraySize(item) != n)
        return mismatch(r, depth, want, item);
    size_t i = 0;
    const cJSON *element;
    cJSON_ArrayForEach(element, item)
    {
        r->index[depth] = i++;
        if (read_level(r, element, depth + 1) != 0)
            return -1;
    }
    return 0;
}

int lang_read_data(lang_context *ctx, const cJSON *root, const char *path, const ast_decl *decl,
                   double *values)
{
    data_request r = {ctx, path, decl, values, {0}, 0, ""};
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, decl->name);
    if (item == NULL) {
        char want[96];
        expected_shape(decl, want, sizeof want);
        diag_file_error(&ctx->diag, path, 0, 0, "variable '%s' is missing; the model expects %s",
                        decl->name, want);
        diag_note(&ctx->diag, decl->span, "'%s' is declared here", decl->name);
        return -1;
    }
    if (read_level(&r, item, 0) != 0)
        return -1;
    if (r.nan_count > 0)
        diag_file_warning(&ctx->diag, path,
                          "variable '%s' has %zu NaN value%s (the first%s); the log-density is "
                          "NaN wherever one is used, so leave missing values out of the data",
                          decl->name, r.nan_count, r.nan_count == 1 ? "" : "s", r.first_nan);
    return 0;
}
