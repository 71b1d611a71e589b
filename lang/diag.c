/* Diagnostics: the one printer of locations ("file:line:col: error: text",
 * the source line, a caret underline as wide as the span) and the edit
 * distance behind "did you mean" hints. Messages collect in a buffer that
 * af_model_compile hands to its caller; nothing is printed here. */
#include "lang_internal.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static void append_bytes(diag *d, const char *s, size_t n)
{
    if (d->len + n + 1 > d->cap) {
        size_t cap = d->cap ? d->cap : 256;
        while (cap < d->len + n + 1)
            cap *= 2;
        char *p = realloc(d->text, cap);
        if (p == NULL)
            lang_out_of_memory(d->on_failure);
        d->text = p;
        d->cap = cap;
    }
    memcpy(d->text + d->len, s, n);
    d->len += n;
    d->text[d->len] = '\0';
}

static void append_vformat(diag *d, const char *format, va_list ap)
{
    char small[512];
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(small, sizeof small, format, copy);
    va_end(copy);
    if (n < 0)
        return;
    if ((size_t)n < sizeof small) {
        append_bytes(d, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (big == NULL)
        lang_out_of_memory(d->on_failure);
    vsnprintf(big, (size_t)n + 1, format, ap);
    append_bytes(d, big, (size_t)n);
    free(big);
}

static void append_format(diag *d, const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    append_vformat(d, format, ap);
    va_end(ap);
}

diag_source diag_source_at(const diag *d, size_t offset)
{
    /* Files lie in increasing base order, and every offset past the end of
     * the last file read belongs to it. */
    for (size_t i = d->source_count; i-- > 0;)
        if (offset >= d->sources[i].base)
            return d->sources[i];
    return (diag_source){.path = "", .text = ""};
}

/* Finds the line of SPAN's start in its file F: sets *LINE (from 1) and
 * *LINE_START (offset in F's text) and returns the offset in F's text. */
static size_t locate(const diag_source *f, af_span span, size_t *line, size_t *line_start)
{
    size_t at = span.begin - f->base;
    if (at > f->len)
        at = f->len;
    *line = 1;
    *line_start = 0;
    for (size_t i = 0; i < at; i++) {
        if (f->text[i] == '\n') {
            (*line)++;
            *line_start = i + 1;
        }
    }
    return at;
}

void diag_location(const diag *d, af_span span, char *out, size_t cap)
{
    diag_source f = diag_source_at(d, span.begin);
    size_t line, line_start;
    size_t at = locate(&f, span, &line, &line_start);
    snprintf(out, cap, "%s:%zu:%zu", f.path, line, at - line_start + 1);
}

/* Appends the line of F holding AT and a caret line under the span from AT
 * to END (offsets in F's text), cut at the end of that line. Tabs are
 * copied into the caret line so that the carets line up in any tab width. */
static void append_source_line(diag *d, const diag_source *f, size_t at, size_t end,
                               size_t line_start)
{
    size_t line_end = line_start;
    while (line_end < f->len && f->text[line_end] != '\n')
        line_end++;
    append_bytes(d, f->text + line_start, line_end - line_start);
    append_bytes(d, "\n", 1);

    for (size_t i = line_start; i < at && i < line_end; i++)
        append_bytes(d, f->text[i] == '\t' ? "\t" : " ", 1);
    end = end < line_end ? end : line_end;
    append_bytes(d, "^", 1);
    for (size_t i = at + 1; i < end; i++)
        append_bytes(d, "~", 1);
    append_bytes(d, "\n", 1);
}

static void append_located(diag *d, af_span span, const char *kind, const char *format,
                           va_list ap)
{
    diag_source f = diag_source_at(d, span.begin);
    size_t line, line_start;
    size_t at = locate(&f, span, &line, &line_start);
    /* A span that ends in another file (an #include inside a statement)
     * is underlined to the end of its first line. */
    size_t end = span.end >= span.begin && span.end - f.base <= f.len ? span.end - f.base : f.len;
    append_format(d, "%s:%zu:%zu: %s: ", f.path, line, at - line_start + 1, kind);
    append_vformat(d, format, ap);
    append_bytes(d, "\n", 1);
    append_source_line(d, &f, at, end, line_start);

    /* The chain of #include directives that read the file, innermost first. */
    diag_source g = f;
    for (int depth = 0; g.directive.end > 0 && depth <= AF_MAX_INCLUDE_DEPTH; depth++) {
        diag_source outer = diag_source_at(d, g.directive.begin);
        size_t outer_line, outer_start;
        size_t outer_at = locate(&outer, g.directive, &outer_line, &outer_start);
        append_format(d, "included from %s:%zu:%zu\n", outer.path, outer_line,
                      outer_at - outer_start + 1);
        g = outer;
    }
}

/* Counts one more error and returns whether to print it. Errors past
 * AF_MAX_ERRORS are counted but not printed, so a file of garbage costs a
 * bounded number of line scans. */
static int count_error(diag *d)
{
    d->errors++;
    if (d->errors == AF_MAX_ERRORS + 1)
        append_format(d, "error: too many errors (limit is %d); fix these and compile again\n",
                      AF_MAX_ERRORS);
    return d->errors <= AF_MAX_ERRORS;
}

void diag_error(diag *d, af_span span, const char *hint, const char *format, ...)
{
    if (!count_error(d))
        return;
    va_list ap;
    va_start(ap, format);
    append_located(d, span, "error", format, ap);
    va_end(ap);
    if (hint != NULL)
        append_format(d, "hint: %s\n", hint);
}

void diag_note(diag *d, af_span span, const char *format, ...)
{
    if (d->errors > AF_MAX_ERRORS)
        return;
    va_list ap;
    va_start(ap, format);
    append_located(d, span, "note", format, ap);
    va_end(ap);
}

void diag_file_error(diag *d, const char *path, size_t line, size_t col, const char *format,
                     ...)
{
    if (!count_error(d))
        return;
    va_list ap;
    if (line > 0)
        append_format(d, "%s:%zu:%zu: error: ", path, line, col);
    else
        append_format(d, "%s: error: ", path);
    va_start(ap, format);
    append_vformat(d, format, ap);
    va_end(ap);
    append_bytes(d, "\n", 1);
}

void diag_file_warning(diag *d, const char *path, const char *format, ...)
{
    va_list ap;
    append_format(d, "%s: warning: ", path);
    va_start(ap, format);
    append_vformat(d, format, ap);
    va_end(ap);
    append_bytes(d, "\n", 1);
}

/* Edit distance counting insertions, deletions, substitutions and swaps of
 * two neighbouring characters (optimal string alignment), so that "lgo" is
 * one edit from "log". Returns LIMIT + 1 once the distance exceeds LIMIT. */
static size_t edit_distance(const char *a, const char *b, size_t limit)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > AF_MAX_NAME_LEN || lb > AF_MAX_NAME_LEN)
        return limit + 1;
    size_t rows[3][AF_MAX_NAME_LEN + 1];
    size_t *before = rows[0], *previous = rows[1], *current = rows[2];
    for (size_t j = 0; j <= lb; j++)
        previous[j] = j;
    for (size_t i = 1; i <= la; i++) {
        current[0] = i;
        size_t best = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = previous[j - 1] + (a[i - 1] != b[j - 1]);
            size_t insert_or_delete = (previous[j] < current[j - 1] ? previous[j] : current[j - 1]) + 1;
            size_t d = cost < insert_or_delete ? cost : insert_or_delete;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                before[j - 2] + 1 < d)
                d = before[j - 2] + 1;
            current[j] = d;
            if (d < best)
                best = d;
        }
        if (best > limit)
            return limit + 1;
        size_t *spare = before;
        before = previous;
        previous = current;
        current = spare;
    }
    return previous[lb];
}

const char *diag_closest(const char *name, const char *const *candidates, size_t count)
{
    /* A third of the name's length, at least 1 and at most 3, is taken as a
     * typo; further than that a hint misleads more than it helps. */
    size_t limit = strlen(name) / 3;
    limit = limit < 1 ? 1 : (limit > 3 ? 3 : limit);
    const char *best = NULL;
    size_t best_distance = limit + 1;
    for (size_t i = 0; i < count; i++) {
        size_t dist = edit_distance(name, candidates[i], limit);
        if (dist < best_distance && dist > 0) {
            best = candidates[i];
            best_distance = dist;
        }
    }
    return best;
}
