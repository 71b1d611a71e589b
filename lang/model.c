/* af_model_compile and the model accessors: reads the source, runs parse,
 * check and lower, and keeps the graph and the output column names. The
 * AST and every other compile-time allocation are freed before returning. */
#include "af_lang.h"
#include "lang_internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Largest model source, in bytes; flex takes its buffer length as int. */
#define AF_MAX_SOURCE_BYTES (64 * 1024 * 1024)

struct af_model {
    af_graph *graph;
    size_t dim;
    size_t column_count;
    char **columns; /* column_count names inside one block */
};

static char *copy_string(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p != NULL)
        memcpy(p, s, n);
    return p;
}

/* Reads the model into ctx->source_buffer, growing it as needed, so that
 * pipes work as well as files. */
static int read_source(lang_context *ctx, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        diag_file_error(&ctx->diag, path, 0, 0, "cannot read the model file: %s",
                        strerror(errno));
        return -1;
    }
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
    ctx->diag.source = ctx->source_buffer;
    ctx->diag.source_len = used;
    return 0;
}

/* Names the columns "mu" for a real and "x.1", "x.2", ... for a vector. */
static int name_columns(af_model *m, const ast_decl *params)
{
    size_t count = 0, bytes = 0;
    for (const ast_decl *d = params; d != NULL; d = d->next) {
        size_t n = d->type == TYPE_VECTOR ? d->len : 1;
        count += n;
        bytes += n * (strlen(d->name) + 24);
    }
    m->columns = malloc((count ? count : 1) * sizeof(char *) + bytes);
    if (m->columns == NULL)
        return -1;
    char *names = (char *)(m->columns + (count ? count : 1));
    size_t i = 0;
    for (const ast_decl *d = params; d != NULL; d = d->next) {
        size_t n = d->type == TYPE_VECTOR ? d->len : 1;
        for (size_t e = 0; e < n; e++) {
            m->columns[i++] = names;
            if (d->type == TYPE_VECTOR)
                names += sprintf(names, "%s.%zu", d->name, e + 1) + 1;
            else
                names += sprintf(names, "%s", d->name) + 1;
        }
    }
    m->column_count = count;
    return 0;
}

static af_model *new_model(af_graph *graph, const ast_decl *params)
{
    af_model *m = calloc(1, sizeof *m);
    if (m == NULL || name_columns(m, params) != 0) {
        free(m);
        return NULL;
    }
    m->graph = graph;
    m->dim = af_graph_dim(graph);
    return m;
}

/* Runs the passes; returns the graph or NULL after reporting errors. */
static af_graph *compile_passes(lang_context *ctx, ast_program *program, const char *model_path,
                                const char *data_path)
{
    if (read_source(ctx, model_path) != 0)
        return NULL;
    if (lang_parse(ctx, program) != 0)
        return NULL;
    if (lang_check(ctx, program) != 0)
        return NULL;
    return lang_lower(ctx, program, data_path);
}

static void release_context(lang_context *ctx)
{
    af_graph_free(ctx->graph);
    cJSON_Delete(ctx->data);
    arena_free(&ctx->arena);
    free(ctx->source_buffer);
    free(ctx->diag.text);
    free(ctx);
}

int af_model_compile(const char *model_path, const char *data_path, af_model **out,
                     char **message)
{
    *out = NULL;
    *message = NULL;
    lang_context *ctx = calloc(1, sizeof *ctx);
    if (ctx == NULL) {
        *message = copy_string("out of memory");
        return -1;
    }
    ctx->arena.on_failure = &ctx->on_failure;
    ctx->diag.on_failure = &ctx->on_failure;
    ctx->diag.path = model_path;
    ctx->diag.source = "";
    if (setjmp(ctx->on_failure) != 0) {
        release_context(ctx);
        *message = copy_string("out of memory while compiling the model");
        return -1;
    }

    ast_program *program = arena_alloc(&ctx->arena, sizeof *program);
    af_graph *graph = compile_passes(ctx, program, model_path, data_path);
    if (graph != NULL) {
        *out = new_model(graph, program->params);
        if (*out == NULL) {
            af_graph_free(graph);
            release_context(ctx);
            *message = copy_string("out of memory while compiling the model");
            return -1;
        }
        release_context(ctx);
        return 0;
    }
    *message = ctx->diag.text;
    ctx->diag.text = NULL;
    release_context(ctx);
    if (*message == NULL)
        *message = copy_string("the model could not be compiled");
    return -1;
}

void af_model_free(af_model *model)
{
    if (model == NULL)
        return;
    af_graph_free(model->graph);
    free(model->columns);
    free(model);
}

size_t af_model_dim(const af_model *model)
{
    return model->dim;
}

size_t af_model_column_count(const af_model *model)
{
    return model->column_count;
}

const char *af_model_column_name(const af_model *model, size_t i)
{
    return i < model->column_count ? model->columns[i] : NULL;
}

/* NOTE: parameters are unconstrained for now, so the columns are z itself.
 * Bounded parameters will apply their transforms here. */
void af_model_constrain(const af_model *model, const double *z, double *values)
{
    memcpy(values, z, model->dim * sizeof(double));
}

const af_graph *af_model_graph(const af_model *model)
{
    return model->graph;
}
