/* The compilation arena and the AST constructors that allocate from it.
 * Nothing in the arena is freed on its own: the whole arena goes at the end
 * of af_model_compile. Allocation failure jumps to the compile driver. */
#include "lang_internal.h"

#include <stdalign.h>
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

ast_decl *ast_decl_new(lang_context *ctx, ast_type type, ast_expr *size, af_span span)
{
    ast_decl *d = arena_alloc(&ctx->arena, sizeof *d);
    d->type = type;
    d->size = size;
    d->span = span;
    return d;
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

const char *ast_type_name(ast_type type)
{
    switch (type) {
    case TYPE_INT:
        return "int";
    case TYPE_REAL:
        return "real";
    case TYPE_VECTOR:
        return "vector";
    case TYPE_ERROR:
        break;
    }
    return "invalid type";
}
