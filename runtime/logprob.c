/* afrun --log-prob: reads points from a JSON or CSV file, maps constrained
 * points to the unconstrained scale when asked, and writes the log-density
 * and its gradient per point. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "af_logprob.h"

/* Points as read: ROWS x WIDTH values, growing by rows. */
typedef struct {
    double *values;
    size_t rows, width, capacity;  /* capacity in rows */
} point_table;

static int table_add_row(point_table *t, const double *row)
{
    if (t->rows == t->capacity) {
        size_t capacity = t->capacity ? 2 * t->capacity : 64;
        double *grown = realloc(t->values, capacity * t->width * sizeof *grown);
        if (!grown)
            return -1;
        t->values = grown;
        t->capacity = capacity;
    }
    memcpy(t->values + t->rows * t->width, row, t->width * sizeof *row);
    t->rows++;
    return 0;
}

static char *read_text(const char *path, char *msg, size_t len)
{
    FILE *f = fopen(path, "rb");
    char *text = NULL;
    long n = -1;

    if (!f) {
        snprintf(msg, len, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) == 0)
        n = ftell(f);
    if (n >= 0 && fseek(f, 0, SEEK_SET) == 0)
        text = malloc((size_t)n + 1);
    if (text && fread(text, 1, (size_t)n, f) == (size_t)n)
        text[n] = '\0';
    else {
        free(text);
        text = NULL;
        snprintf(msg, len, "cannot read %s", path);
    }
    fclose(f);
    return text;
}

/* Splits LINE at commas into at most MAX fields (in place). Returns the
 * field count, or MAX + 1 when there are more. */
static size_t split_fields(char *line, char **fields, size_t max)
{
    size_t n = 0;
    for (char *p = line;; p++) {
        if (n == max)
            return max + 1;
        fields[n++] = p;
        p = strchr(p, ',');
        if (!p)
            return n;
        *p = '\0';
    }
}

/* Reads TEXT as a number. Returns 0, -1 when it is not a number, or -2
 * when it is one beyond the largest double (1e400). */
static int parse_number(const char *text, double *out)
{
    char *end;
    while (*text == ' ' || *text == '\t' || *text == '"')
        text++;
    errno = 0;
    *out = strtod(text, &end);
    /* A written number beyond the largest double is an error; "inf" is not. */
    int overflow = errno == ERANGE && isinf(*out);
    while (*end == ' ' || *end == '\t' || *end == '"' || *end == '\r')
        end++;
    if (end == text || *end != '\0')
        return -1;
    return overflow ? -2 : 0;
}

/* Where each point value comes from in a CSV row: a column index per value. */
typedef struct {
    size_t *column;
    size_t width;      /* values per point */
    size_t row_width;  /* fields per row, when a header fixed it; 0 otherwise */
} column_map;

/* Maps the parameter names of MODEL to the fields of the header HEADER
 * (N fields). Returns 0, or -1 with a message. */
static int map_header(const af_model *model, char **header, size_t n, column_map *map,
                      const char *path, char *msg, size_t len)
{
    for (size_t j = 0; j < map->width; j++) {
        const char *name = af_model_column_name(model, j);
        size_t k = 0;
        while (k < n && strcmp(header[k], name) != 0)
            k++;
        if (k == n) {
            snprintf(msg, len, "%s: the header has no column '%s'; constrained points need "
                     "every parameter column", path, name);
            return -1;
        }
        map->column[j] = k;
    }
    map->row_width = n;
    return 0;
}

enum { MAX_FIELDS = 100000 };

/* Reads one CSV line into the table. With CONSTRAINED, a first line that
 * is not numbers is the header. Unconstrained points have no header, so
 * such a line is an error: read as numbers, an afrun output CSV would give
 * its lp__, lp_approx__, ... columns as the point. Returns 0, or -1 with
 * a message. */
static int read_csv_line(const af_model *model, char *line, size_t line_no, int constrained,
                         column_map *map, point_table *t, char **fields, double *row,
                         const char *path, char *msg, size_t len)
{
    size_t n = split_fields(line, fields, MAX_FIELDS);
    if (n > MAX_FIELDS) {
        snprintf(msg, len, "%s:%zu: too many columns (limit is %d)", path, line_no, MAX_FIELDS);
        return -1;
    }

    double first;
    for (size_t k = 0; k < n; k++) {
        if (parse_number(fields[k], &first) == -2) {
            snprintf(msg, len, "%s:%zu: '%s' in column %zu is beyond the largest double "
                     "(about 1.8e308)", path, line_no, fields[k], k + 1);
            return -1;
        }
    }
    if (t->rows == 0 && map->row_width == 0 && parse_number(fields[0], &first) != 0) {
        for (size_t k = 0; k < n; k++)
            fields[k][strcspn(fields[k], "\r")] = '\0';
        if (constrained)
            return map_header(model, fields, n, map, path, msg, len);
        snprintf(msg, len,
                 "%s:%zu: invalid number '%s'; unconstrained points are rows of %zu numbers "
                 "with no header, and an afrun output CSV needs --constrained",
                 path, line_no, fields[0], map->width);
        return -1;
    }

    size_t expected = map->row_width ? map->row_width : map->width;
    if (n != expected) {
        snprintf(msg, len, "%s:%zu: expected %zu values, found %zu%s", path, line_no, expected,
                 n, constrained ? "" : " (one per unconstrained parameter)");
        return -1;
    }
    for (size_t j = 0; j < map->width; j++) {
        size_t k = constrained && map->row_width ? map->column[j] : j;
        if (parse_number(fields[k], &row[j]) != 0) {
            snprintf(msg, len, "%s:%zu: invalid number '%s' in column %zu", path, line_no,
                     fields[k], k + 1);
            return -1;
        }
    }
    return table_add_row(t, row);
}

static int read_csv(const af_model *model, char *text, int constrained, point_table *t,
                    const char *path, char *msg, size_t len)
{
    column_map map = {calloc(t->width, sizeof(size_t)), t->width, 0};
    char **fields = malloc(MAX_FIELDS * sizeof *fields);
    double *row = malloc(t->width * sizeof *row);
    int rc = map.column && fields && row ? 0 : -1;
    size_t line_no = 0;

    if (rc)
        snprintf(msg, len, "out of memory reading %s", path);
    for (char *line = text; rc == 0 && line && *line; line_no++) {
        char *next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        line[strcspn(line, "\r")] = '\0';
        if (*line != '\0' && *line != '#')
            rc = read_csv_line(model, line, line_no + 1, constrained, &map, t, fields, row,
                               path, msg, len);
        line = next;
    }
    free(map.column);
    free(fields);
    free(row);
    return rc;
}

static int read_json(cJSON *root, point_table *t, const char *path, char *msg, size_t len)
{
    double *row = malloc(t->width * sizeof *row);
    int single = cJSON_IsArray(root) && cJSON_IsNumber(cJSON_GetArrayItem(root, 0));
    size_t index = 0;
    int rc = row ? 0 : -1;

    if (!cJSON_IsArray(root)) {
        snprintf(msg, len, "%s: expected a JSON array of points", path);
        rc = -1;
    }
    for (cJSON *point = single ? root : (root ? root->child : NULL); rc == 0 && point;
         point = single ? NULL : point->next, index++) {
        size_t n = (size_t)cJSON_GetArraySize(point), j = 0;
        if (!cJSON_IsArray(point) || n != t->width) {
            snprintf(msg, len, "%s: point %zu: expected an array of %zu numbers", path,
                     index + 1, t->width);
            rc = -1;
            break;
        }
        for (cJSON *v = point->child; v; v = v->next, j++) {
            if (!cJSON_IsNumber(v)) {
                snprintf(msg, len, "%s: point %zu, value %zu is not a number", path, index + 1,
                         j + 1);
                rc = -1;
                break;
            }
            row[j] = v->valuedouble;
        }
        if (rc == 0)
            rc = table_add_row(t, row);
    }
    free(row);
    return rc;
}

/* One value of a named point: its column name ("beta.2", "Sigma.1.2") and
 * value. */
typedef struct {
    char name[256];
    double value;
} named_value;

typedef struct {
    named_value *items;
    size_t count, capacity;
} named_list;

/* Adds the numbers of V, a number or nested arrays of numbers, to LIST
 * under NAME with each array index appended as ".i" (from 1), the column
 * names of afrun's CSV. Returns 0, or -1 with a message. */
static int add_named(named_list *list, const char *name, const cJSON *v, size_t index,
                     const char *path, char *msg, size_t len)
{
    if (cJSON_IsArray(v)) {
        size_t i = 1;
        for (const cJSON *item = v->child; item; item = item->next, i++) {
            char inner[256];
            if ((size_t)snprintf(inner, sizeof inner, "%s.%zu", name, i) >= sizeof inner) {
                snprintf(msg, len, "%s: point %zu: the name '%s' is too long", path, index + 1,
                         name);
                return -1;
            }
            if (add_named(list, inner, item, index, path, msg, len))
                return -1;
        }
        return 0;
    }
    if (!cJSON_IsNumber(v)) {
        snprintf(msg, len, "%s: point %zu: '%s' is not a number or an array of numbers", path,
                 index + 1, name);
        return -1;
    }
    if (list->count == list->capacity) {
        size_t capacity = list->capacity ? 2 * list->capacity : 64;
        named_value *grown = realloc(list->items, capacity * sizeof *grown);
        if (!grown) {
            snprintf(msg, len, "out of memory reading %s", path);
            return -1;
        }
        list->items = grown;
        list->capacity = capacity;
    }
    snprintf(list->items[list->count].name, sizeof list->items[0].name, "%s", name);
    list->items[list->count++].value = v->valuedouble;
    return 0;
}

/* Tells whether column NAME belongs to parameter KEY: it is KEY itself,
 * or KEY followed by ".i...". */
static int column_of(const char *name, const char *key)
{
    size_t n = strlen(key);
    return strncmp(name, key, n) == 0 && (name[n] == '\0' || name[n] == '.');
}

/* Checks that the values given for KEY (entries [FIRST, LIST->count) of
 * LIST) are exactly the columns of that parameter, or that KEY is not a
 * parameter. Returns 0, or -1 with a message. */
static int check_named_shape(const af_model *model, size_t width, const named_list *list,
                             size_t first, const char *key, size_t index, const char *path,
                             char *msg, size_t len)
{
    size_t columns = 0, matched = 0;
    const char *first_name = NULL, *last_name = NULL;
    for (size_t j = 0; j < width; j++) {
        const char *name = af_model_column_name(model, j);
        if (!column_of(name, key))
            continue;
        columns++;
        first_name = first_name ? first_name : name;
        last_name = name;
        for (size_t k = first; k < list->count; k++)
            matched += strcmp(list->items[k].name, name) == 0;
    }
    if (columns == 0 || (matched == columns && list->count - first == columns))
        return 0;
    size_t found = list->count - first;
    const char *from = found ? list->items[first].name : "";
    const char *to = found ? list->items[list->count - 1].name : "";
    if (columns == 1)
        snprintf(msg, len, "%s: point %zu: '%s' must be one number, not an array (found %s "
                 "to %s)", path, index + 1, key, from, to);
    else
        snprintf(msg, len, "%s: point %zu: '%s' does not match its shape: expected %zu numbers "
                 "%s to %s (an array for a vector, an array of rows for a matrix), found %zu "
                 "numbers %s to %s", path, index + 1, key, columns, first_name, last_name,
                 found, from, to);
    return -1;
}

/* Reads one JSON object of named parameter values (CmdStan's inits layout:
 * {"mu": 1.5, "beta": [0.1, 0.2]}) into a row of the table, in the model's
 * parameter column order. Names that are not parameters are skipped.
 * Returns 0, or -1 with a message. */
static int read_named_point(const af_model *model, const cJSON *object, size_t index,
                            point_table *t, const char *path, char *msg, size_t len)
{
    named_list list = {NULL, 0, 0};
    double *row = malloc(t->width * sizeof *row);
    int rc = row ? 0 : -1;

    if (!row)
        snprintf(msg, len, "out of memory reading %s", path);
    const char *repeated = NULL;
    if (rc == 0 && af_json_repeated_name(object, &repeated) != 0) {
        snprintf(msg, len, "out of memory reading %s", path);
        rc = -1;
    } else if (rc == 0 && repeated != NULL) {
        snprintf(msg, len, "%s: point %zu: '%s' appears more than once", path, index + 1,
                 repeated);
        rc = -1;
    }
    for (const cJSON *v = object->child; rc == 0 && v; v = v->next) {
        size_t first = list.count;
        rc = add_named(&list, v->string, v, index, path, msg, len);
        if (rc == 0)
            rc = check_named_shape(model, t->width, &list, first, v->string, index, path, msg,
                                   len);
    }
    for (size_t j = 0; rc == 0 && j < t->width; j++) {
        const char *name = af_model_column_name(model, j);
        size_t k = 0;
        while (k < list.count && strcmp(list.items[k].name, name) != 0)
            k++;
        if (k == list.count) {
            snprintf(msg, len, "%s: point %zu has no value for '%s'; give every parameter, "
                     "with arrays for vectors and arrays of rows for matrices", path,
                     index + 1, name);
            rc = -1;
            break;
        }
        row[j] = list.items[k].value;
    }
    if (rc == 0 && table_add_row(t, row)) {
        snprintf(msg, len, "out of memory reading %s", path);
        rc = -1;
    }
    free(list.items);
    free(row);
    return rc;
}

/* Reads a JSON object of named parameter values, or an array of them. */
static int read_named_json(const af_model *model, const cJSON *root, point_table *t,
                           const char *path, char *msg, size_t len)
{
    if (cJSON_IsObject(root))
        return read_named_point(model, root, 0, t, path, msg, len);
    size_t index = 0;
    for (const cJSON *point = root->child; point; point = point->next, index++) {
        if (!cJSON_IsObject(point)) {
            snprintf(msg, len, "%s: point %zu: expected an object of named parameter values, "
                     "as the other points", path, index + 1);
            return -1;
        }
        if (read_named_point(model, point, index, t, path, msg, len))
            return -1;
    }
    return 0;
}

/* Maps the table's points to unconstrained points Z (rows x d). */
static int to_unconstrained(const af_model *model, const point_table *t, int constrained,
                            double *z, const char *path, char *msg, size_t len)
{
    const size_t d = af_model_dim(model);
    char why[256];

    for (size_t p = 0; p < t->rows; p++) {
        const double *values = t->values + p * t->width;
        if (!constrained)
            memcpy(z + p * d, values, d * sizeof *z);
        else if (af_model_unconstrain(model, values, z + p * d, why, sizeof why)) {
            snprintf(msg, len, "%s: point %zu: %s", path, p + 1, why);
            return -1;
        }
    }
    return 0;
}

static void write_rows(FILE *out, const double *lp, const double *grad, size_t rows, size_t d)
{
    fputs("lp__", out);
    for (size_t j = 0; j < d; j++)
        fprintf(out, ",g.%zu", j + 1);
    fputc('\n', out);
    for (size_t p = 0; p < rows; p++) {
        fprintf(out, "%.17g", lp[p]);
        for (size_t j = 0; j < d; j++)
            fprintf(out, ",%.17g", grad[p * d + j]);
        fputc('\n', out);
    }
}

/* Writes to MSG a warning naming the points among ROWS where LP is NaN, or
 * an empty string when there are none. */
static void note_nan_points(const double *lp, size_t rows, char *msg, size_t len)
{
    size_t count = 0, first = 0;
    for (size_t p = 0; p < rows; p++)
        if (isnan(lp[p]) && count++ == 0)
            first = p;
    if (count == 0) {
        if (len > 0)
            msg[0] = '\0';
        return;
    }
    snprintf(msg, len, "the log-density is NaN at %zu of %zu points (the first is point %zu); "
             "look for an invalid argument there (log or sqrt of a negative number, 0/0) or "
             "NaN in the data", count, rows, first + 1);
}

/* Runs the model's parameter-dependent print statements at each of the
 * ROWS points Z and writes their text to PRINTS. */
static int run_prints(const af_model *model, const double *z, size_t rows, FILE *prints,
                      char *msg, size_t len)
{
    const size_t d = af_model_dim(model);
    for (size_t p = 0; p < rows; p++) {
        char *text, why[512];
        if (af_model_print_at(model, z + p * d, &text, why, sizeof why) != 0) {
            snprintf(msg, len, "print statements at point %zu: %s", p + 1, why);
            return -1;
        }
        if (text)
            fputs(text, prints);
        free(text);
    }
    return 0;
}

int af_logprob_run(const af_model *model, af_eval *eval, const char *path, int constrained,
                   FILE *out, FILE *prints, char *msg, size_t len)
{
    const size_t d = af_model_dim(model);
    point_table t = {NULL, 0, constrained ? af_model_parameter_column_count(model) : d, 0};
    char *text = read_text(path, msg, len);
    double *z = NULL, *lp = NULL, *grad = NULL;
    int rc = -1;

    if (!text)
        return -1;
    const char *start = text + strspn(text, " \t\r\n");
    if (*start == '[' || *start == '{') {
        cJSON *root = NULL;
        char reason[160];
        size_t line, col;
        if (af_json_parse(text, strlen(text), &root, &line, &col, reason, sizeof reason))
            snprintf(msg, len, "%s:%zu:%zu: %s", path, line, col, reason);
        int named = root && (cJSON_IsObject(root) || cJSON_IsObject(root->child));
        if (named) {
            /* Named values are parameter values, with or without --constrained. */
            constrained = 1;
            t.width = af_model_parameter_column_count(model);
        }
        if (!root)
            rc = -1;
        else if (named)
            rc = read_named_json(model, root, &t, path, msg, len);
        else
            rc = read_json(root, &t, path, msg, len);
        cJSON_Delete(root);
    } else {
        rc = read_csv(model, text, constrained, &t, path, msg, len);
    }
    free(text);

    if (rc == 0 && t.rows == 0) {
        snprintf(msg, len, "%s: no points", path);
        rc = -1;
    }
    if (rc == 0) {
        z = malloc(t.rows * d * sizeof *z + 1);
        lp = malloc(t.rows * sizeof *lp);
        grad = malloc(t.rows * d * sizeof *grad + 1);
        rc = z && lp && grad ? 0 : -1;
        if (rc)
            snprintf(msg, len, "out of memory for %zu points", t.rows);
    }
    if (rc == 0)
        rc = to_unconstrained(model, &t, constrained, z, path, msg, len);
    if (rc == 0 && prints)
        rc = run_prints(model, z, t.rows, prints, msg, len);
    if (rc == 0)
        rc = af_eval_logp(eval, z, t.rows, lp, grad, msg, len);
    if (rc == 0) {
        write_rows(out, lp, grad, t.rows, d);
        note_nan_points(lp, t.rows, msg, len);
    }
    free(t.values);
    free(z);
    free(lp);
    free(grad);
    return rc;
}
