/* The model's source files: reads the model file, and for each #include
 * directive finds the named file, checks it and reads it whole, so that
 * the lexer can scan it in place of the directive. Every file becomes a
 * diag_source, so diagnostics inside it name it and its own line. */
#define _POSIX_C_SOURCE 200809L

#include "lang_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static size_t total_bytes(const diag *d)
{
    size_t total = 0;
    for (size_t i = 0; i < d->source_count; i++)
        total += d->sources[i].len;
    return total;
}

/* Appends F to diag.sources after the last file's offsets and returns its
 * index. */
static size_t add_source(lang_context *ctx, diag_source f)
{
    diag *d = &ctx->diag;
    if (d->source_count == d->source_cap) {
        size_t cap = d->source_cap ? 2 * d->source_cap : 8;
        diag_source *p = arena_alloc(&ctx->arena, cap * sizeof *p);
        if (d->source_count)
            memcpy(p, d->sources, d->source_count * sizeof *p);
        d->sources = p;
        d->source_cap = cap;
    }
    if (d->source_count > 0) {
        const diag_source *last = &d->sources[d->source_count - 1];
        f.base = last->base + last->len + 1;
    }
    d->sources[d->source_count] = f;
    return d->source_count++;
}

/* Returns whether TEXT of LEN bytes contains a NUL byte, and sets its line
 * and column (from 1). Such a file is binary, not source text. */
static int find_nul(const char *text, size_t len, size_t *line, size_t *col)
{
    const char *nul = memchr(text, '\0', len);
    if (nul == NULL)
        return 0;
    *line = 1;
    const char *line_start = text;
    for (const char *p = text; p < nul; p++) {
        if (*p == '\n') {
            (*line)++;
            line_start = p + 1;
        }
    }
    *col = (size_t)(nul - line_start) + 1;
    return 1;
}

/* Reads the model into ctx->source_buffer, growing it as needed, so that
 * pipes work as well as files. */
int lang_read_model(lang_context *ctx, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        diag_file_error(&ctx->diag, path, 0, 0, "cannot read the model file: %s",
                        strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0)
        memset(&st, 0, sizeof st);
    size_t used = 0, cap = 0;
    for (;;) {
        if (used == cap) {
            cap = cap ? 2 * cap : 16384;
            char *p = realloc(ctx->source_buffer, cap + 1);
            if (p == NULL) {
                fclose(f);
                lang_out_of_memory(&ctx->on_failure);
            }
            ctx->source_buffer = p;
        }
        size_t n = fread(ctx->source_buffer + used, 1, cap - used, f);
        used += n;
        if (n == 0 || used > AF_MAX_SOURCE_BYTES)
            break;
    }
    int failed = ferror(f);
    fclose(f);
    if (failed) {
        diag_file_error(&ctx->diag, path, 0, 0, "cannot read the model file");
        return -1;
    }
    if (used > AF_MAX_SOURCE_BYTES) {
        diag_file_error(&ctx->diag, path, 0, 0, "the model file is too large (limit is %d bytes)",
                        AF_MAX_SOURCE_BYTES);
        return -1;
    }
    ctx->source_buffer[used] = '\0';
    size_t line, col;
    if (find_nul(ctx->source_buffer, used, &line, &col)) {
        diag_file_error(&ctx->diag, path, line, col,
                        "the model file is not text: it contains a NUL byte");
        return -1;
    }
    add_source(ctx, (diag_source){path, ctx->source_buffer, used, 0, (unsigned long long)st.st_dev,
                                  (unsigned long long)st.st_ino, {0, 0}});
    return 0;
}

/* ---- #include ---- */

/* Joins the folder of the file INCLUDING with NAME, in the arena; NULL when
 * NAME is absolute or INCLUDING has no folder part. */
static char *path_next_to(lang_context *ctx, const char *including, const char *name)
{
    const char *slash = strrchr(including, '/');
    if (name[0] == '/' || slash == NULL)
        return NULL;
    size_t folder = (size_t)(slash - including) + 1, n = strlen(name);
    char *path = arena_alloc(&ctx->arena, folder + n + 1);
    memcpy(path, including, folder);
    memcpy(path + folder, name, n + 1);
    return path;
}

/* Opens PATH for reading without blocking, so that a FIFO named by a
 * directive cannot stall the compiler before the regular-file check. */
static int open_nonblocking(const char *path)
{
    return open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
}

/* Opens the file that NAME names from the file INCLUDING: next to it, then
 * in the current directory. Sets *PATH to the path that was opened (or the
 * last one tried) and returns a descriptor, or -1 with errno set. */
static int open_included(lang_context *ctx, const char *including, const char *name,
                         const char **path)
{
    char *next_to = path_next_to(ctx, including, name);
    if (next_to != NULL) {
        *path = next_to;
        int fd = open_nonblocking(next_to);
        if (fd >= 0 || errno != ENOENT)
            return fd;
    }
    *path = name;
    return open_nonblocking(name);
}

/* Reports an #include cycle: NAME is the file FILE, which LEX is already
 * reading. Lists the chain from its first opening to the directive. */
static void report_cycle(lex_state *lex, const char *name, size_t file, af_span span)
{
    const diag *d = &lex->ctx->diag;
    char chain[1024] = "";
    size_t used = 0;
    int started = 0;
    for (size_t k = 0; k <= lex->depth && used < sizeof chain; k++) {
        size_t s = k < lex->depth ? lex->stack[k].source : lex->source;
        started |= s == file;
        if (started)
            used += (size_t)snprintf(chain + used, sizeof chain - used, "%s -> ",
                                     d->sources[s].path);
    }
    if (used < sizeof chain)
        snprintf(chain + used, sizeof chain - used, "%s", d->sources[file].path);
    diag_error(&lex->ctx->diag, span, "include each file from one place only",
               "#include cycle: '%s' is already being read (%s)", name, chain);
}

/* Returns the index of the file being read by LEX (the current one or one
 * suspended on the stack) with ST's identity, or -1. */
static long find_open_file(const lex_state *lex, const struct stat *st)
{
    const diag *d = &lex->ctx->diag;
    for (size_t k = 0; k <= lex->depth; k++) {
        size_t s = k < lex->depth ? lex->stack[k].source : lex->source;
        if (d->sources[s].device == (unsigned long long)st->st_dev &&
            d->sources[s].inode == (unsigned long long)st->st_ino)
            return (long)s;
    }
    return -1;
}

/* Checks the opened file of NAME at PATH, whose status is ST. Returns 0,
 * or -1 after an error. */
static int check_included(lex_state *lex, const char *name, const char *path,
                          const struct stat *st, af_span span)
{
    diag *d = &lex->ctx->diag;
    if (!S_ISREG(st->st_mode)) {
        diag_error(d, span, NULL, "cannot include '%s': not a regular file", path);
        return -1;
    }
    long open_file = find_open_file(lex, st);
    if (open_file >= 0) {
        report_cycle(lex, name, (size_t)open_file, span);
        return -1;
    }
    size_t total = total_bytes(d);
    if (st->st_size < 0 || (unsigned long long)st->st_size > AF_MAX_SOURCE_BYTES - total) {
        diag_error(d, span, NULL,
                   "the model and its included files are too large (limit is %d bytes in all)",
                   AF_MAX_SOURCE_BYTES);
        return -1;
    }
    return 0;
}

/* Reads up to LEN bytes of FD into an arena buffer and sets *USED to the
 * bytes read, fewer when the file shrank. Returns the buffer, or NULL. */
static char *read_all(lang_context *ctx, int fd, size_t len, size_t *used)
{
    char *text = arena_alloc(&ctx->arena, len + 1);
    *used = 0;
    while (*used < len) {
        ssize_t n = read(fd, text + *used, len - *used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return NULL;
        if (n == 0)
            break;
        *used += (size_t)n;
    }
    text[*used] = '\0';
    return text;
}

long lang_read_include(lex_state *lex, const char *name, af_span span, af_span directive)
{
    lang_context *ctx = lex->ctx;
    const char *including = ctx->diag.sources[lex->source].path;
    const char *path;
    int fd = open_included(ctx, including, name, &path);
    if (fd < 0) {
        if (errno == ENOENT && name[0] != '/')
            diag_error(&ctx->diag, span, NULL,
                       "cannot find '%s' next to %s or in the current directory", name,
                       including);
        else
            diag_error(&ctx->diag, span, NULL, "cannot read '%s': %s", path, strerror(errno));
        return -1;
    }

    struct stat st;
    char *text = NULL;
    size_t len = 0;
    int status = -1;
    if (fstat(fd, &st) != 0)
        diag_error(&ctx->diag, span, NULL, "cannot read '%s': %s", path, strerror(errno));
    else
        status = check_included(lex, name, path, &st, span);
    if (status == 0)
        text = read_all(ctx, fd, (size_t)st.st_size, &len);
    if (status == 0 && text == NULL)
        diag_error(&ctx->diag, span, NULL, "cannot read '%s': %s", path, strerror(errno));
    close(fd);
    if (text == NULL)
        return -1;
    size_t line, col;
    if (find_nul(text, len, &line, &col)) {
        diag_error(&ctx->diag, span, "#include takes .afm or .stan source files",
                   "cannot include '%s': not a text file (a NUL byte at line %zu, column %zu)",
                   path, line, col);
        return -1;
    }
    diag_source f = {path, text, len, 0, (unsigned long long)st.st_dev,
                     (unsigned long long)st.st_ino, directive};
    return (long)add_source(ctx, f);
}

char **lang_source_paths(const lang_context *ctx, size_t *count)
{
    const diag *d = &ctx->diag;
    size_t bytes = 0;
    for (size_t i = 0; i < d->source_count; i++)
        bytes += strlen(d->sources[i].path) + 1;
    char **paths = malloc((d->source_count + 1) * sizeof *paths + bytes);
    if (paths == NULL)
        return NULL;
    char *next = (char *)(paths + d->source_count + 1);
    size_t n = 0;
    for (size_t i = 0; i < d->source_count; i++) {
        /* A file included twice is hashed once. */
        int seen = 0;
        for (size_t k = 0; k < i && !seen; k++)
            seen = d->sources[k].device == d->sources[i].device &&
                   d->sources[k].inode == d->sources[i].inode;
        if (seen)
            continue;
        size_t len = strlen(d->sources[i].path) + 1;
        memcpy(next, d->sources[i].path, len);
        paths[n++] = next;
        next += len;
    }
    *count = n;
    return paths;
}
