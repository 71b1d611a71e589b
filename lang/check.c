/* Name resolution and type checking. Types here are int, real and vector;
 * vector lengths depend on data, so lowering checks them. An expression
 * with an error gets TYPE_ERROR, which later checks accept silently, so one
 * mistake gives one message while checking goes on with the next statement. */
#include "lang_internal.h"

#include <string.h>

typedef enum { BLOCK_DATA, BLOCK_TDATA, BLOCK_PARAMS, BLOCK_MODEL } block_kind;

typedef struct symbol symbol;
struct symbol {
    ast_decl *decl;
    symbol *next;
};

typedef struct {
    lang_context *ctx;
    symbol *scope; /* innermost first */
    block_kind block;
    size_t depth;
    int depth_reported;
    size_t slots;
} checker;

static ast_type check_expr(checker *c, ast_expr *e);
static void check_stmt(checker *c, ast_stmt *s);

static int is_scalar(ast_type t)
{
    return t == TYPE_INT || t == TYPE_REAL;
}

static ast_decl *lookup(const checker *c, const char *name)
{
    for (const symbol *s = c->scope; s != NULL; s = s->next)
        if (strcmp(s->decl->name, name) == 0)
            return s->decl;
    return NULL;
}

/* Returns a "did you mean" hint for NAME among the visible variables (or
 * among callable names when CALLABLE), formatted in the arena. */
static const char *name_hint(checker *c, const char *name, int callable, const char *suffix)
{
    enum { MAX_CANDIDATES = 512 };
    const char *names[MAX_CANDIDATES];
    char stripped[MAX_CANDIDATES][64];
    size_t n = 0;

    if (callable) {
        const char *f;
        for (size_t i = 0; (f = af_op_callable_name(i)) != NULL && n < MAX_CANDIDATES; i++) {
            size_t len = strlen(f), slen = suffix ? strlen(suffix) : 0;
            if (suffix && (len <= slen || strcmp(f + len - slen, suffix) != 0))
                continue;
            snprintf(stripped[n], sizeof stripped[n], "%.*s", (int)(len - slen), f);
            names[n] = stripped[n];
            n++;
        }
        if (!suffix)
            names[n++] = "pi";
    } else {
        for (const symbol *s = c->scope; s != NULL && n < MAX_CANDIDATES; s = s->next)
            names[n++] = s->decl->name;
    }
    const char *best = diag_closest(name, names, n);
    if (best == NULL)
        return NULL;
    size_t len = strlen(best) + 32;
    char *hint = arena_alloc(&c->ctx->arena, len);
    snprintf(hint, len, "did you mean '%s'?", best);
    return hint;
}

/* ---- expressions ---- */

static ast_type check_var(checker *c, ast_expr *e)
{
    e->decl = lookup(c, e->name);
    if (e->decl == NULL) {
        diag_error(&c->ctx->diag, e->span, name_hint(c, e->name, 0, NULL),
                   "unknown identifier '%s'", e->name);
        return TYPE_ERROR;
    }
    return e->decl->type;
}

static ast_type check_index(checker *c, ast_expr *e)
{
    ast_type base = check_expr(c, e->args[0]);
    ast_type index = check_expr(c, e->args[1]);
    if (base == TYPE_ERROR || index == TYPE_ERROR)
        return TYPE_ERROR;
    if (base != TYPE_VECTOR) {
        diag_error(&c->ctx->diag, e->args[0]->span, NULL,
                   "only a vector can be indexed, but this is %s", ast_type_name(base));
        return TYPE_ERROR;
    }
    if (index != TYPE_INT) {
        diag_error(&c->ctx->diag, e->args[1]->span, NULL, "an index must be int, found %s",
                   ast_type_name(index));
        return TYPE_ERROR;
    }
    return TYPE_REAL;
}

static ast_type check_product(checker *c, ast_expr *e, ast_type l, ast_type r)
{
    if (l == TYPE_VECTOR && r == TYPE_VECTOR && !e->elementwise) {
        const char *hint = e->op == AF_OP_MUL ? "for the elementwise product write 'a .* b'"
                                              : "for the elementwise quotient write 'a ./ b'";
        diag_error(&c->ctx->diag, e->span, hint,
                   "'%s' is not defined between two vectors", af_op_name(e->op));
        return TYPE_ERROR;
    }
    if (l == TYPE_INT && r == TYPE_INT && !e->elementwise) {
        /* Stan divides two ints as ints, truncating toward zero. */
        if (e->op == AF_OP_DIV)
            e->op = AF_OP_IDIV;
        return TYPE_INT;
    }
    return (l == TYPE_VECTOR || r == TYPE_VECTOR) ? TYPE_VECTOR : TYPE_REAL;
}

static ast_type check_binary(checker *c, ast_expr *e)
{
    ast_type l = check_expr(c, e->args[0]);
    ast_type r = check_expr(c, e->args[1]);
    if (l == TYPE_ERROR || r == TYPE_ERROR)
        return TYPE_ERROR;

    if (af_op_result(e->op) == AF_RESULT_INT) {
        if (!is_scalar(l) || !is_scalar(r)) {
            diag_error(&c->ctx->diag, e->span, NULL,
                       "'%s' compares int or real values, not vectors", af_op_name(e->op));
            return TYPE_ERROR;
        }
        return TYPE_INT;
    }
    if (e->op == AF_OP_MUL || e->op == AF_OP_DIV)
        return check_product(c, e, l, r);
    if (l == TYPE_INT && r == TYPE_INT)
        return TYPE_INT;
    return (l == TYPE_VECTOR || r == TYPE_VECTOR) ? TYPE_VECTOR : TYPE_REAL;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Checks the '|' of a density call: normal_lpdf(y | mu, sigma). */
static int check_bar(checker *c, ast_expr *e)
{
    int density = ends_with(e->name, "_lpdf");
    if (density && e->nargs >= 2 && !e->bar) {
        diag_error(&c->ctx->diag, e->span, "write it as f(y | parameters)",
                   "the first argument of '%s' must be followed by '|'", e->name);
        return -1;
    }
    if (!density && e->bar) {
        diag_error(&c->ctx->diag, e->span, NULL,
                   "'|' separates the arguments of _lpdf functions only, not of '%s'", e->name);
        return -1;
    }
    return 0;
}

static int resolve_function(checker *c, ast_expr *e)
{
    if (strcmp(e->name, "pi") == 0 && e->nargs == 0) {
        e->is_pi = 1;
        return 0;
    }
    int arity = 0;
    int found = af_op_find(e->name, e->nargs, &e->op, &arity);
    if (found == 2) {
        diag_error(&c->ctx->diag, e->name_span, name_hint(c, e->name, 1, NULL),
                   "unknown function '%s'", e->name);
        return -1;
    }
    if (found == 1 || strcmp(e->name, "pi") == 0) {
        diag_error(&c->ctx->diag, e->span, NULL, "'%s' takes %d argument%s, found %zu",
                   e->name, arity, arity == 1 ? "" : "s", e->nargs);
        return -1;
    }
    return 0;
}

static ast_type check_call(checker *c, ast_expr *e)
{
    int failed = 0;
    int any_vector = 0;
    for (size_t k = 0; k < e->nargs; k++) {
        ast_type t = check_expr(c, e->args[k]);
        failed |= t == TYPE_ERROR;
        any_vector |= t == TYPE_VECTOR;
    }
    if (resolve_function(c, e) != 0 || failed || check_bar(c, e) != 0)
        return TYPE_ERROR;
    if (e->is_pi)
        return TYPE_REAL;
    if (af_op_kind_of(e->op) == AF_KIND_MAP && any_vector)
        return TYPE_VECTOR;
    return TYPE_REAL;
}

static ast_type check_expr_kind(checker *c, ast_expr *e)
{
    switch (e->kind) {
    case EXPR_INT:
        return TYPE_INT;
    case EXPR_REAL:
        return TYPE_REAL;
    case EXPR_VAR:
        return check_var(c, e);
    case EXPR_UNARY:
        return check_expr(c, e->args[0]);
    case EXPR_BINARY:
        return check_binary(c, e);
    case EXPR_CALL:
        return check_call(c, e);
    case EXPR_INDEX:
        return check_index(c, e);
    }
    return TYPE_ERROR;
}

static ast_type check_expr(checker *c, ast_expr *e)
{
    if (c->depth >= AF_MAX_DEPTH) {
        if (!c->depth_reported)
            diag_error(&c->ctx->diag, e->span, NULL, "too many nested expressions (limit is %d)",
                       AF_MAX_DEPTH);
        c->depth_reported = 1;
        return e->type = TYPE_ERROR;
    }
    c->depth++;
    e->type = check_expr_kind(c, e);
    c->depth--;
    return e->type;
}

/* ---- declarations ---- */

static int assignable(ast_type to, ast_type from)
{
    if (to == TYPE_ERROR || from == TYPE_ERROR)
        return 1;
    if (to == TYPE_REAL)
        return is_scalar(from);
    return to == from;
}

static void declare(checker *c, ast_decl *d)
{
    ast_decl *previous = lookup(c, d->name);
    if (previous != NULL) {
        diag_error(&c->ctx->diag, d->name_span, NULL, "'%s' is already declared", d->name);
        diag_note(&c->ctx->diag, previous->name_span, "'%s' is declared here", d->name);
    }
    symbol *s = arena_alloc(&c->ctx->arena, sizeof *s);
    s->decl = d;
    s->next = c->scope;
    c->scope = s;
    d->slot = c->slots++;
}

static void check_decl_init(checker *c, ast_decl *d)
{
    if (d->init == NULL)
        return;
    if (d->origin == ORIGIN_DATA || d->origin == ORIGIN_PARAM) {
        diag_error(&c->ctx->diag, d->init->span, NULL,
                   "%s cannot have an initial value",
                   d->origin == ORIGIN_DATA ? "a data variable" : "a parameter");
        return;
    }
    ast_type t = check_expr(c, d->init);
    if (!assignable(d->type, t))
        diag_error(&c->ctx->diag, d->init->span, NULL, "cannot initialise %s '%s' with %s",
                   ast_type_name(d->type), d->name, ast_type_name(t));
}

static void check_decl(checker *c, ast_decl *d)
{
    if (d->size != NULL) {
        ast_type t = check_expr(c, d->size);
        if (t != TYPE_ERROR && t != TYPE_INT)
            diag_error(&c->ctx->diag, d->size->span, NULL,
                       "the size of a vector must be int, found %s", ast_type_name(t));
    }
    if (d->origin == ORIGIN_PARAM && d->type == TYPE_INT)
        diag_error(&c->ctx->diag, d->span, "declare it as real, or move it to the data block",
                   "parameter '%s' cannot be int", d->name);
    check_decl_init(c, d);
    declare(c, d);
}

/* ---- statements ---- */

static void check_assign(checker *c, ast_stmt *s)
{
    ast_expr *lhs = s->lhs;
    ast_expr *var = lhs->kind == EXPR_INDEX ? lhs->args[0] : lhs;
    ast_type to = check_expr(c, lhs);
    ast_type from = check_expr(c, s->rhs);
    if (var->kind != EXPR_VAR) {
        diag_error(&c->ctx->diag, lhs->span, NULL,
                   "the left side of '=' must be a variable or an element of one");
        return;
    }
    const ast_decl *d = var->decl;
    if (d == NULL)
        return;
    int writable = d->origin == ORIGIN_LOCAL || (d->origin == ORIGIN_TDATA && c->block == BLOCK_TDATA);
    if (!writable) {
        static const char *const what[] = {"data", "transformed data", "a parameter",
                                           "a local variable", "a loop variable"};
        diag_error(&c->ctx->diag, var->span, NULL, "cannot assign to '%s', which is %s",
                   d->name, what[d->origin]);
        return;
    }
    if (!assignable(to, from))
        diag_error(&c->ctx->diag, s->rhs->span, NULL, "cannot assign %s to %s",
                   ast_type_name(from), ast_type_name(to));
}

static int in_model_block(checker *c, ast_stmt *s, const char *what)
{
    if (c->block == BLOCK_MODEL)
        return 1;
    diag_error(&c->ctx->diag, s->span, NULL, "%s is only allowed in the model block", what);
    return 0;
}

/* y ~ dist(args) adds dist_lpdf(y | args): the call is resolved under that name. */
static void check_tilde(checker *c, ast_stmt *s)
{
    ast_expr *call = s->rhs;
    check_expr(c, s->lhs);
    if (!in_model_block(c, s, "'~'"))
        return;
    size_t len = strlen(call->name) + sizeof "_lpdf";
    char *name = arena_alloc(&c->ctx->arena, len);
    snprintf(name, len, "%s_lpdf", call->name);

    ast_expr **args = arena_alloc(&c->ctx->arena, (call->nargs + 1) * sizeof *args);
    args[0] = s->lhs;
    memcpy(args + 1, call->args, call->nargs * sizeof *args);
    int failed = 0;
    for (size_t k = 0; k < call->nargs; k++)
        failed |= check_expr(c, call->args[k]) == TYPE_ERROR;
    int arity = 0;
    int found = af_op_find(name, call->nargs + 1, &call->op, &arity);
    if (found == 2)
        diag_error(&c->ctx->diag, call->name_span, name_hint(c, call->name, 1, "_lpdf"),
                   "unknown distribution '%s'", call->name);
    else if (found == 1)
        diag_error(&c->ctx->diag, call->span, NULL, "'%s' takes %d argument%s, found %zu",
                   call->name, arity - 1, arity - 1 == 1 ? "" : "s", call->nargs);
    if (found != 0 || failed)
        return;
    call->name = name;
    call->args = args;
    call->nargs++;
    call->type = TYPE_REAL;
}

static void check_for(checker *c, ast_stmt *s)
{
    ast_type lo = check_expr(c, s->lower);
    ast_type hi = check_expr(c, s->upper);
    if (lo == TYPE_REAL || lo == TYPE_VECTOR)
        diag_error(&c->ctx->diag, s->lower->span, NULL, "a loop bound must be int, found %s",
                   ast_type_name(lo));
    if (hi == TYPE_REAL || hi == TYPE_VECTOR)
        diag_error(&c->ctx->diag, s->upper->span, NULL, "a loop bound must be int, found %s",
                   ast_type_name(hi));
    symbol *outer = c->scope;
    declare(c, s->decl);
    check_stmt(c, s->body);
    c->scope = outer;
}

static void check_stmt_kind(checker *c, ast_stmt *s)
{
    symbol *outer = c->scope;
    switch (s->kind) {
    case STMT_DECL:
        s->decl->origin = (c->block == BLOCK_TDATA && c->depth == 1) ? ORIGIN_TDATA
                                                                     : ORIGIN_LOCAL;
        check_decl(c, s->decl);
        break;
    case STMT_ASSIGN:
        check_assign(c, s);
        break;
    case STMT_TARGET:
        check_expr(c, s->rhs);
        in_model_block(c, s, "'target +='");
        break;
    case STMT_TILDE:
        check_tilde(c, s);
        break;
    case STMT_FOR:
        check_for(c, s);
        break;
    case STMT_BLOCK:
        for (ast_stmt *b = s->body; b != NULL; b = b->next)
            check_stmt(c, b);
        c->scope = outer; /* a block's declarations end with it */
        break;
    case STMT_ERROR:
        break;
    }
}

static void check_stmt(checker *c, ast_stmt *s)
{
    if (c->depth >= AF_MAX_DEPTH) {
        if (!c->depth_reported)
            diag_error(&c->ctx->diag, s->span, NULL, "too many nested statements (limit is %d)",
                       AF_MAX_DEPTH);
        c->depth_reported = 1;
        return;
    }
    c->depth++;
    check_stmt_kind(c, s);
    c->depth--;
}

static void check_decls(checker *c, ast_decl *list, ast_origin origin)
{
    for (ast_decl *d = list; d != NULL; d = d->next) {
        d->origin = origin;
        check_decl(c, d);
    }
}

static void check_stmts(checker *c, ast_stmt *list, block_kind block)
{
    c->block = block;
    for (ast_stmt *s = list; s != NULL; s = s->next)
        check_stmt(c, s);
}

size_t lang_check(lang_context *ctx, ast_program *program)
{
    checker c = {ctx, NULL, BLOCK_DATA, 0, 0, 0};
    size_t before = ctx->diag.errors;

    check_decls(&c, program->data, ORIGIN_DATA);
    check_stmts(&c, program->tdata, BLOCK_TDATA);
    c.block = BLOCK_PARAMS;
    check_decls(&c, program->params, ORIGIN_PARAM);

    symbol *globals = c.scope;
    check_stmts(&c, program->model, BLOCK_MODEL);
    c.scope = globals;

    program->slots = c.slots;
    return ctx->diag.errors - before;
}
