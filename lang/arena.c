/* The compilation arena and the AST constructors that allocate from it.
 * Nothing in the arena is freed on its own: the whole arena goes at the end
 * of af_model_compile. Allocation failure jumps to the compile driver. */
#include "lang_internal.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_BLOCK_SIZE 65536

struct arena_block {
    arena_block *next;
    size_t used;
    size_t cap;
    alignas(max_align_t) unsigned char data[];
};

void lang_out_of_memory(jmp_buf *on_failure)
{
    longjmp(*on_failure, 1);
}

void *arena_alloc(arena *a, size_t size)
{
    size_t align = alignof(max_align_t);
    /* A size near SIZE_MAX would wrap to a small block below. */
    if (size > SIZE_MAX / 2)
        lang_out_of_memory(a->on_failure);
    size = (size + align - 1) / align * align;
    arena_block *b = a->head;
    if (b == NULL || b->cap - b->used < size) {
        size_t cap = size > ARENA_BLOCK_SIZE ? size : ARENA_BLOCK_SIZE;
        b = malloc(sizeof *b + cap);
        if (b == NULL)
            lang_out_of_memory(a->on_failure);
        b->next = a->head;
        b->used = 0;
        b->cap = cap;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += size;
    memset(p, 0, size);
    return p;
}

char *arena_strndup(arena *a, const char *s, size_t n)
{
    char *p = arena_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void arena_free(arena *a)
{
    arena_block *b = a->head;
    while (b != NULL) {
        arena_block *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
}

/* ---- AST constructors ---- */

ast_expr *ast_expr_new(lang_context *ctx, ast_expr_kind kind, af_span span)
{
    ast_expr *e = arena_alloc(&ctx->arena, sizeof *e);
    e->kind = kind;
    e->span = span;
    return e;
}

ast_stmt *ast_stmt_new(lang_context *ctx, ast_stmt_kind kind, af_span span)
{
    ast_stmt *s = arena_alloc(&ctx->arena, sizeof *s);
    s->kind = kind;
    s->span = span;
    return s;
}

ast_decl *ast_decl_new(lang_context *ctx, ast_base base, af_span span)
{
    ast_decl *d = arena_alloc(&ctx->arena, sizeof *d);
    d->type.base = base;
    d->span = span;
    return d;
}

ast_expr *ast_expr_with(lang_context *ctx, ast_expr_kind kind, af_span span, size_t n,
                        ast_expr *a, ast_expr *b, ast_expr *c)
{
    ast_expr *e = ast_expr_new(ctx, kind, span);
    ast_expr *given[3] = {a, b, c};
    e->args = arena_alloc(&ctx->arena, 3 * sizeof *e->args);
    for (size_t k = 0; k < n && k < 3; k++)
        e->args[k] = given[k];
    e->nargs = n;
    return e;
}

void ast_set_args(lang_context *ctx, ast_expr *e, ast_expr *reversed)
{
    size_t n = 0;
    for (ast_expr *a = reversed; a != NULL; a = a->next)
        n++;
    e->args = arena_alloc(&ctx->arena, (n ? n : 1) * sizeof *e->args);
    e->nargs = n;
    for (ast_expr *a = reversed; a != NULL; a = a->next)
        e->args[--n] = a;
}

ast_stmt *ast_reverse_stmts(ast_stmt *s)
{
    ast_stmt *out = NULL;
    while (s != NULL) {
        ast_stmt *next = s->next;
        s->next = out;
        out = s;
        s = next;
    }
    return out;
}

ast_decl *ast_reverse_decls(ast_decl *d)
{
    ast_decl *out = NULL;
    while (d != NULL) {
        ast_decl *next = d->next;
        d->next = out;
        out = d;
        d = next;
    }
    return out;
}

const char *ast_base_name(ast_base base)
{
    static const char *const names[] = {"invalid type", "int",    "real", "vector",
                                        "row_vector",   "matrix", "void"};
    return names[base];
}

const char *ast_type_text(ast_type type, char *out, size_t cap)
{
    if (type.dims == 0) {
        snprintf(out, cap, "%s", ast_base_name(type.base));
        return out;
    }
    char commas[AF_MAX_ARRAY_DIMS + 1] = "";
    for (int k = 1; k < type.dims && k < AF_MAX_ARRAY_DIMS; k++)
        commas[k - 1] = ',';
    snprintf(out, cap, "array[%s] %s", commas, ast_base_name(type.base));
    return out;
}

int ast_type_equal(ast_type a, ast_type b)
{
    return a.base == b.base && a.dims == b.dims;
}
