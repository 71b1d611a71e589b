/* Name resolution and type checking. A type is an element type (int, real,
 * vector, row_vector, matrix) inside zero or more array dimensions; sizes
 * depend on data, so lowering checks them. An expression with an error gets
 * TYPE_ERROR, which later checks accept silently, so one mistake gives one
 * message while checking goes on with the next statement. Operator typing
 * lives in check_expr.c. */
#include "check_internal.h"

#include <string.h>

ast_decl *check_lookup(const checker *c, const char *name)
{
    for (const symbol *s = c->scope; s != NULL; s = s->next)
        if (strcmp(s->decl->name, name) == 0)
            return s->decl;
    return NULL;
}

ast_function *check_find_function(const checker *c, const char *name)
{
    for (ast_function *f = c->program->functions; f != NULL; f = f->next)
        if (strcmp(f->name, name) == 0)
            return f;
    return NULL;
}

static const char *closest_callable(checker *c, const char *name, const char *suffix,
                                    char stripped[][64], const char **names)
{
    enum { MAX_CANDIDATES = 512 };
    size_t n = 0, slen = suffix ? strlen(suffix) : 0;
    const char *f;
    for (size_t i = 0; (f = af_op_callable_name(i)) != NULL && n + 1 < MAX_CANDIDATES; i++) {
        size_t len = strlen(f);
        if (suffix && (len <= slen || strcmp(f + len - slen, suffix) != 0))
            continue;
        snprintf(stripped[n], 64, "%.*s", (int)(len - slen), f);
        names[n] = stripped[n];
        n++;
    }
    for (ast_function *u = c->program->functions; u != NULL && n + 1 < MAX_CANDIDATES;
         u = u->next)
        names[n++] = u->name;
    if (!suffix)
        for (size_t i = 0; check_structural_name(i) != NULL && n + 1 < MAX_CANDIDATES; i++)
            names[n++] = check_structural_name(i);
    return diag_closest(name, names, n);
}

const char *check_name_hint(checker *c, const char *name, int callable, const char *suffix)
{
    enum { MAX_CANDIDATES = 512 };
    const char *names[MAX_CANDIDATES];
    static char stripped[MAX_CANDIDATES][64];
    const char *best = NULL;

    if (callable) {
        best = closest_callable(c, name, suffix, stripped, names);
    } else {
        size_t n = 0;
        for (const symbol *s = c->scope; s != NULL && n < MAX_CANDIDATES; s = s->next)
            names[n++] = s->decl->name;
        best = diag_closest(name, names, n);
    }
    if (best == NULL)
        return NULL;
    size_t len = strlen(best) + 32;
    char *hint = arena_alloc(&c->ctx->arena, len);
    snprintf(hint, len, "did you mean '%s'?", best);
    return hint;
}

/* ---- declarations ---- */

int check_assignable(ast_type to, ast_type from)
{
    if (to.base == TYPE_ERROR || from.base == TYPE_ERROR)
        return 1;
    if (to.dims != from.dims)
        return 0;
    if (to.base == TYPE_REAL)
        return from.base == TYPE_INT || from.base == TYPE_REAL;
    return to.base == from.base;
}

/* Returns whether NAME could clash with afrun's own CSV columns: it ends
 * in "__" (lp__, lp_approx__) or is log_weight. */
static int reserved_column(const char *name)
{
    size_t n = strlen(name);
    return (n >= 2 && strcmp(name + n - 2, "__") == 0) || strcmp(name, "log_weight") == 0;
}

void check_declare(checker *c, ast_decl *d)
{
    ast_decl *previous = check_lookup(c, d->name);
    if (previous != NULL && previous->origin != ORIGIN_LEVEL) {
        diag_error(&c->ctx->diag, d->name_span, NULL, "'%s' is already declared", d->name);
        diag_note(&c->ctx->diag, previous->name_span, "'%s' is declared here", d->name);
    } else if (strcmp(d->name, "annealing_level") == 0 || strcmp(d->name, "target") == 0) {
        diag_error(&c->ctx->diag, d->name_span, "choose another name",
                   "'%s' is a reserved name", d->name);
    } else if (reserved_column(d->name)) {
        diag_error(&c->ctx->diag, d->name_span, "choose another name",
                   "'%s' is a reserved name: afrun's output has the columns lp__, "
                   "lp_approx__ and log_weight, and names ending in '__' are kept for such "
                   "columns", d->name);
    }
    symbol *s = arena_alloc(&c->ctx->arena, sizeof *s);
    s->decl = d;
    s->next = c->scope;
    c->scope = s;
    d->slot = c->slots++;
}

static void check_init(checker *c, ast_decl *d)
{
    char want[64], got[64];
    if (d->init == NULL)
        return;
    if (d->origin == ORIGIN_DATA || d->origin == ORIGIN_PARAM) {
        diag_error(&c->ctx->diag, d->init->span, NULL, "%s cannot have an initial value",
                   d->origin == ORIGIN_DATA ? "a data variable" : "a parameter");
        return;
    }
    ast_type t = check_expr(c, d->init);
    if (!check_assignable(d->type, t))
        diag_error(&c->ctx->diag, d->init->span, NULL, "cannot initialise %s '%s' with %s",
                   ast_type_text(d->type, want, sizeof want), d->name,
                   ast_type_text(t, got, sizeof got));
}

static void check_size(checker *c, ast_expr *size, const char *what)
{
    if (size == NULL)
        return;
    ast_type t = check_expr(c, size);
    if (t.base != TYPE_ERROR && (t.base != TYPE_INT || t.dims != 0))
        diag_error(&c->ctx->diag, size->span, NULL, "the size of %s must be int, found %s", what,
                   ast_type_text(t, (char[64]){0}, 64));
}

static void check_bound(checker *c, ast_decl *d, ast_expr *bound)
{
    if (bound == NULL)
        return;
    ast_type t = check_expr(c, bound);
    if (t.base == TYPE_ERROR)
        return;
    int elementwise = t.dims == d->type.dims && t.base == d->type.base && d->type.base != TYPE_INT;
    if ((t.dims == 0 && (t.base == TYPE_INT || t.base == TYPE_REAL)) || elementwise)
        return;
    diag_error(&c->ctx->diag, bound->span, NULL,
               "a bound of '%s' must be a scalar or have the variable's type, found %s",
               d->name, ast_type_text(t, (char[64]){0}, 64));
}

static void check_constraint(checker *c, ast_decl *d)
{
    check_bound(c, d, d->lower);
    check_bound(c, d, d->upper);
    check_bound(c, d, d->offset);
    check_bound(c, d, d->multiplier);
    if (d->constraint == CONSTRAINT_AFFINE && d->type.base == TYPE_INT)
        diag_error(&c->ctx->diag, d->span, NULL, "offset and multiplier apply to reals only");
    if (d->constraint == CONSTRAINT_NONE || d->origin == ORIGIN_DATA ||
        d->origin == ORIGIN_PARAM || d->origin == ORIGIN_TDATA ||
        d->origin == ORIGIN_TPARAM || d->origin == ORIGIN_GQ)
        return;
    diag_error(&c->ctx->diag, d->span, "check the value with an if and reject() instead",
               "a local variable cannot have a constraint");
}

void check_decl(checker *c, ast_decl *d)
{
    for (int k = 0; k < d->type.dims; k++)
        check_size(c, d->array_sizes[k], "an array");
    check_size(c, d->rows, "a vector or matrix");
    check_size(c, d->cols, "a vector or matrix");
    check_constraint(c, d);
    if (d->origin == ORIGIN_PARAM && d->type.base == TYPE_INT)
        diag_error(&c->ctx->diag, d->span, "declare it as real, or move it to the data block",
                   "parameter '%s' cannot be int", d->name);
    check_init(c, d);
    check_declare(c, d);
}

/* ---- statements ---- */

static const char *origin_text(ast_origin origin)
{
    static const char *const what[] = {
        "data",          "transformed data", "a parameter",   "a transformed parameter",
        "a generated quantity", "a local variable", "a loop variable", "a function argument",
        "the annealing level"};
    return what[origin];
}

static int writable(const checker *c, const ast_decl *d)
{
    switch (d->origin) {
    case ORIGIN_LOCAL:
        return 1;
    case ORIGIN_TDATA:
        return c->block == BLOCK_TDATA;
    case ORIGIN_TPARAM:
        return c->block == BLOCK_TPARAMS;
    case ORIGIN_GQ:
        return c->block == BLOCK_GQ;
    default:
        return 0;
    }
}

static void check_assign(checker *c, ast_stmt *s)
{
    ast_expr *lhs = s->lhs;
    ast_expr *var = lhs;
    while (var->kind == EXPR_INDEX)
        var = var->args[0];
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
    if (!writable(c, d)) {
        diag_error(&c->ctx->diag, var->span, NULL, "cannot assign to '%s', which is %s",
                   d->name, origin_text(d->origin));
        return;
    }
    if (s->compound && to.base != TYPE_ERROR && from.base != TYPE_ERROR)
        from = check_operator_type(c, s->oper, to, from, s->span);
    if (!check_assignable(to, from))
        diag_error(&c->ctx->diag, s->rhs->span, NULL, "cannot assign %s to %s",
                   ast_type_text(from, (char[64]){0}, 64), ast_type_text(to, (char[64]){0}, 64));
}

static int in_model_block(checker *c, ast_stmt *s, const char *what)
{
    if (c->block == BLOCK_MODEL || (c->function != NULL && c->function_lp))
        return 1;
    diag_error(&c->ctx->diag, s->span, NULL, "%s is only allowed in the model block", what);
    return 0;
}

static void check_loop_body(checker *c, ast_stmt *body)
{
    c->loops++;
    check_stmt(c, body);
    c->loops--;
}

static void check_for(checker *c, ast_stmt *s)
{
    ast_expr *bounds[2] = {s->lower, s->upper};
    for (int k = 0; k < 2; k++) {
        ast_type t = check_expr(c, bounds[k]);
        if (t.base != TYPE_ERROR && (t.base != TYPE_INT || t.dims != 0))
            diag_error(&c->ctx->diag, bounds[k]->span, NULL, "a loop bound must be int, found %s",
                       ast_type_text(t, (char[64]){0}, 64));
    }
    symbol *outer = c->scope;
    check_declare(c, s->decl);
    check_loop_body(c, s->body);
    c->scope = outer;
}

/* for (x in container): x takes the type of one element. */
static void check_foreach(checker *c, ast_stmt *s)
{
    ast_type t = check_expr(c, s->rhs);
    ast_type element = {TYPE_ERROR, 0};
    if (t.dims > 0)
        element = (ast_type){t.base, t.dims - 1};
    else if (t.base == TYPE_VECTOR || t.base == TYPE_ROW_VECTOR || t.base == TYPE_MATRIX)
        element = (ast_type){TYPE_REAL, 0};
    else if (t.base != TYPE_ERROR)
        diag_error(&c->ctx->diag, s->rhs->span, "loop over a range: for (i in 1:n)",
                   "cannot loop over the elements of %s", ast_type_text(t, (char[64]){0}, 64));
    s->decl->type = element;
    symbol *outer = c->scope;
    check_declare(c, s->decl);
    check_loop_body(c, s->body);
    c->scope = outer;
}

static void check_condition(checker *c, ast_expr *e)
{
    ast_type t = check_expr(c, e);
    if (t.base != TYPE_ERROR && (t.dims != 0 || (t.base != TYPE_INT && t.base != TYPE_REAL)))
        diag_error(&c->ctx->diag, e->span, NULL, "a condition must be int or real, found %s",
                   ast_type_text(t, (char[64]){0}, 64));
}

static void check_printables(checker *c, ast_stmt *s)
{
    for (size_t k = 0; k < s->nargs; k++)
        if (s->args[k]->kind != EXPR_STRING)
            check_expr(c, s->args[k]);
}

static void check_jump(checker *c, ast_stmt *s, const char *what)
{
    if (c->loops == 0)
        diag_error(&c->ctx->diag, s->span, NULL, "'%s' is only allowed inside a loop", what);
}

static void check_return(checker *c, ast_stmt *s)
{
    if (c->function == NULL) {
        diag_error(&c->ctx->diag, s->span, NULL, "'return' is only allowed inside a function");
        return;
    }
    ast_type want = c->function->result;
    ast_type got = s->rhs ? check_expr(c, s->rhs) : (ast_type){TYPE_VOID, 0};
    if (want.base == TYPE_VOID && s->rhs != NULL)
        diag_error(&c->ctx->diag, s->rhs->span, NULL,
                   "function '%s' returns void, so 'return' takes no value", c->function->name);
    else if (want.base != TYPE_VOID && !check_assignable(want, got))
        diag_error(&c->ctx->diag, s->span, NULL, "function '%s' returns %s, found %s",
                   c->function->name, ast_type_text(want, (char[64]){0}, 64),
                   ast_type_text(got, (char[64]){0}, 64));
    c->returned = 1;
}

static void check_call_stmt(checker *c, ast_stmt *s)
{
    ast_type t = check_expr(c, s->rhs);
    if (t.base != TYPE_ERROR && t.base != TYPE_VOID)
        diag_error(&c->ctx->diag, s->span, "use the value: x = f(...); or target += f(...);",
                   "the value of '%s' is not used", s->rhs->name);
}

static ast_origin local_origin(const checker *c)
{
    if (c->depth != 1 || c->function != NULL)
        return ORIGIN_LOCAL;
    switch (c->block) {
    case BLOCK_TDATA:
        return ORIGIN_TDATA;
    case BLOCK_TPARAMS:
        return ORIGIN_TPARAM;
    case BLOCK_GQ:
        return ORIGIN_GQ;
    default:
        return ORIGIN_LOCAL;
    }
}

static void check_stmt_kind(checker *c, ast_stmt *s)
{
    symbol *outer = c->scope;
    switch (s->kind) {
    case STMT_DECL:
        s->decl->origin = local_origin(c);
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
        if (in_model_block(c, s, "'~'"))
            check_tilde(c, s);
        break;
    case STMT_FOR:
        check_for(c, s);
        break;
    case STMT_FOREACH:
        check_foreach(c, s);
        break;
    case STMT_WHILE:
        check_condition(c, s->lower);
        check_loop_body(c, s->body);
        break;
    case STMT_IF:
        check_condition(c, s->lower);
        check_stmt(c, s->body);
        c->scope = outer;
        if (s->orelse != NULL)
            check_stmt(c, s->orelse);
        break;
    case STMT_BREAK:
        check_jump(c, s, "break");
        break;
    case STMT_CONTINUE:
        check_jump(c, s, "continue");
        break;
    case STMT_PRINT:
    case STMT_REJECT:
        check_printables(c, s);
        break;
    case STMT_RETURN:
        check_return(c, s);
        break;
    case STMT_CALL:
        check_call_stmt(c, s);
        break;
    case STMT_BLOCK:
        for (ast_stmt *b = s->body; b != NULL; b = b->next)
            check_stmt(c, b);
        break;
    case STMT_ERROR:
        break;
    }
    /* A declaration stays visible for the rest of its block; any other
     * statement's declarations (in a loop body or a block) end with it. */
    if (s->kind != STMT_DECL)
        c->scope = outer;
}

void check_stmt(checker *c, ast_stmt *s)
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

/* ---- blocks ---- */

static void check_decls(checker *c, ast_decl *list, ast_origin origin, block_kind block)
{
    c->block = block;
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

/* An extern function returns real and takes real or vector arguments,
 * which af_ffi passes as double and as (const double *, size_t). */
static void check_extern_signature(checker *c, const ast_function *f)
{
    char found[64];
    if (f->result.base != TYPE_REAL || f->result.dims != 0)
        diag_error(&c->ctx->diag, f->name_span, "declare it as: extern real f(...)",
                   "extern function '%s' must return real, found %s", f->name,
                   ast_type_text(f->result, found, sizeof found));
    for (const ast_decl *p = f->params; p != NULL; p = p->next) {
        int vector = p->type.base == TYPE_VECTOR && p->type.dims == 0;
        if ((p->type.base == TYPE_REAL && p->type.dims == 0) || vector)
            continue;
        diag_error(&c->ctx->diag, p->span,
                   "pass an int as real, and other containers as a vector (to_vector)",
                   "argument '%s' of extern function '%s' is %s; extern functions take real "
                   "and vector arguments only",
                   p->name, f->name, ast_type_text(p->type, found, sizeof found));
    }
}

static void check_function(checker *c, ast_function *f)
{
    for (ast_function *g = c->program->functions; g != f; g = g->next)
        if (strcmp(g->name, f->name) == 0 &&
            ((g->body != NULL && f->body != NULL) || g->is_extern || f->is_extern)) {
            diag_error(&c->ctx->diag, f->name_span, "afm has no overloading; rename one",
                       "function '%s' is already defined", f->name);
            diag_note(&c->ctx->diag, g->name_span, "'%s' is defined here", f->name);
        }
    if (f->is_extern)
        check_extern_signature(c, f);
    if (f->body == NULL)
        return;
    symbol *outer = c->scope;
    c->function = f;
    c->function_lp = strlen(f->name) > 3 && strcmp(f->name + strlen(f->name) - 3, "_lp") == 0;
    c->returned = 0;
    for (ast_decl *p = f->params; p != NULL; p = p->next)
        check_declare(c, p);
    check_stmts(c, f->body->body != NULL ? f->body->body : f->body, BLOCK_FUNCTIONS);
    if (f->result.base != TYPE_VOID && !c->returned)
        diag_error(&c->ctx->diag, f->name_span, "end it with 'return value;'",
                   "function '%s' never returns a value", f->name);
    c->function = NULL;
    c->function_lp = 0;
    c->scope = outer;
}

size_t lang_check(lang_context *ctx, ast_program *program)
{
    checker c = {0};
    c.ctx = ctx;
    c.program = program;
    size_t before = ctx->diag.errors;

    for (ast_function *f = program->functions; f != NULL; f = f->next)
        check_function(&c, f);

    check_decls(&c, program->data, ORIGIN_DATA, BLOCK_DATA);
    check_stmts(&c, program->tdata, BLOCK_TDATA);
    check_decls(&c, program->params, ORIGIN_PARAM, BLOCK_PARAMS);
    check_stmts(&c, program->tparams, BLOCK_TPARAMS);

    symbol *globals = c.scope;
    program->level = ast_decl_new(ctx, TYPE_REAL, (af_span){0, 0});
    program->level->name = "annealing_level";
    program->level->origin = ORIGIN_LEVEL;
    symbol *level = arena_alloc(&ctx->arena, sizeof *level);
    level->decl = program->level;
    level->next = c.scope;
    c.scope = level;
    program->level->slot = c.slots++;
    check_stmts(&c, program->model, BLOCK_MODEL);
    c.scope = globals;

    check_stmts(&c, program->gq, BLOCK_GQ);
    program->slots = c.slots;
    return ctx->diag.errors - before;
}
