/* Lowering: runs the checked program once with the data known, so that
 * loops unroll, data and transformed data become constants, and what is
 * left of the model block is a graph of ops over z. Vector lengths, loop
 * bounds and indices are checked here because they depend on data. Lowering
 * stops at its first error, since later ones would follow from it. */
#include "lang_internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define PI 3.14159265358979323846

/* The current value of a variable: a graph node for the whole value and,
 * for a vector whose elements were assigned one by one, a node per element.
 * Either may be missing; the other is then rebuilt on demand. */
typedef struct {
    size_t whole;
    size_t *elems;
    size_t len;
} var_value;

typedef struct {
    lang_context *ctx;
    var_value *vars; /* by ast_decl slot */
    size_t target;
    const char *data_path;
    size_t dim;
    size_t unrolled;
    jmp_buf fail;
} lowerer;

static size_t lower_expr(lowerer *l, const ast_expr *e);
static void lower_stmt(lowerer *l, const ast_stmt *s);

/* Reports an error at SPAN and abandons lowering. */
static void fail(lowerer *l, af_span span, const char *hint, const char *format, ...)
    __attribute__((format(printf, 4, 5), noreturn));
static void fail(lowerer *l, af_span span, const char *hint, const char *format, ...)
{
    char message[512];
    va_list ap;
    va_start(ap, format);
    vsnprintf(message, sizeof message, format, ap);
    va_end(ap);
    diag_error(&l->ctx->diag, span, hint, "%s", message);
    longjmp(l->fail, 1);
}

static size_t checked_node(lowerer *l, size_t id, af_span span)
{
    if (id != AF_GRAPH_NONE)
        return id;
    if (af_graph_status_of(l->ctx->graph) == AF_GRAPH_TOO_MANY_NODES)
        fail(l, span, "use fewer loop iterations or smaller vectors",
             "too many graph nodes (limit is %d)", AF_MAX_NODES);
    lang_out_of_memory(&l->ctx->on_failure);
    return id;
}

static size_t constant(lowerer *l, const double *values, size_t len, af_span span)
{
    return checked_node(l, af_graph_constant(l->ctx->graph, values, len), span);
}

static size_t scalar(lowerer *l, double value, af_span span)
{
    return constant(l, &value, 1, span);
}

static size_t emit(lowerer *l, af_op op, const size_t *args, size_t nargs, size_t len,
                   size_t index, af_span span)
{
    return checked_node(l, af_graph_op(l->ctx->graph, op, args, nargs, len, index), span);
}

static size_t node_len(const lowerer *l, size_t id)
{
    return af_graph_node_len(l->ctx->graph, id);
}

/* Returns the value of a node that must be known before sampling. */
static double known_value(lowerer *l, size_t id, af_span span, const char *what)
{
    const double *v = af_graph_node_values(l->ctx->graph, id);
    if (v == NULL)
        fail(l, span, "compute it from data only", "%s must not depend on parameters", what);
    return v[0];
}

/* ---- variables ---- */

static size_t read_whole(lowerer *l, var_value *v, af_span span)
{
    if (v->whole == AF_GRAPH_NONE)
        v->whole = emit(l, AF_OP_CONCAT, v->elems, v->len, v->len, 0, span);
    return v->whole;
}

static size_t read_element(lowerer *l, var_value *v, size_t i, af_span span)
{
    if (v->elems != NULL)
        return v->elems[i];
    size_t whole = v->whole;
    return emit(l, AF_OP_INDEX, &whole, 1, 1, i, span);
}

static void write_element(lowerer *l, var_value *v, size_t i, size_t value, af_span span)
{
    if (v->elems == NULL) {
        size_t *elems = arena_alloc(&l->ctx->arena, v->len * sizeof *elems);
        for (size_t e = 0; e < v->len; e++)
            elems[e] = read_element(l, v, e, span);
        v->elems = elems;
    }
    v->elems[i] = value;
    v->whole = AF_GRAPH_NONE;
}

static void write_whole(var_value *v, size_t value)
{
    v->whole = value;
    v->elems = NULL;
}

/* ---- expressions ---- */

/* Checks that the vector arguments of an elementwise op agree in length and
 * returns that length (1 when all are scalars). */
static size_t broadcast(lowerer *l, const size_t *args, size_t nargs, af_span span)
{
    size_t len = 1;
    for (size_t k = 0; k < nargs; k++) {
        size_t n = node_len(l, args[k]);
        if (n == 1)
            continue;
        if (len != 1 && n != len)
            fail(l, span, NULL, "vector lengths differ: %zu and %zu", len, n);
        len = n;
    }
    return len;
}

/* Converts a 1-based int index to 0-based, checking its range. */
static size_t element_index(lowerer *l, const ast_expr *index, size_t len)
{
    double i = known_value(l, lower_expr(l, index), index->span, "an index");
    if (!(i >= 1 && i <= (double)len))
        fail(l, index->span, NULL, "index %.0f is out of range for a vector of length %zu", i,
             len);
    return (size_t)i - 1;
}

static size_t lower_index(lowerer *l, const ast_expr *e)
{
    const ast_expr *base = e->args[0];
    if (base->kind == EXPR_VAR) {
        var_value *v = &l->vars[base->decl->slot];
        return read_element(l, v, element_index(l, e->args[1], v->len), e->span);
    }
    size_t node = lower_expr(l, base);
    size_t i = element_index(l, e->args[1], node_len(l, node));
    return emit(l, AF_OP_INDEX, &node, 1, 1, i, e->span);
}

static size_t lower_op(lowerer *l, const ast_expr *e, const size_t *args)
{
    af_op op = e->op;
    size_t len = broadcast(l, args, e->nargs, e->span);
    if (op == AF_OP_IDIV && af_graph_node_values(l->ctx->graph, args[1]) != NULL &&
        af_graph_node_values(l->ctx->graph, args[1])[0] == 0.0)
        fail(l, e->args[1]->span, NULL, "integer division by zero");
    if (af_op_kind_of(op) != AF_KIND_MAP)
        len = 1;
    return emit(l, op, args, e->nargs, len, 0, e->span);
}

static size_t lower_args_and_op(lowerer *l, const ast_expr *e)
{
    size_t args[AF_OP_MAX_ARITY];
    for (size_t k = 0; k < e->nargs; k++)
        args[k] = lower_expr(l, e->args[k]);
    return lower_op(l, e, args);
}

static size_t lower_expr(lowerer *l, const ast_expr *e)
{
    switch (e->kind) {
    case EXPR_INT:
        return scalar(l, (double)e->int_value, e->span);
    case EXPR_REAL:
        return scalar(l, e->real_value, e->span);
    case EXPR_VAR:
        return read_whole(l, &l->vars[e->decl->slot], e->span);
    case EXPR_INDEX:
        return lower_index(l, e);
    case EXPR_CALL:
        if (e->is_pi)
            return scalar(l, PI, e->span);
        return lower_args_and_op(l, e);
    case EXPR_UNARY:
    case EXPR_BINARY:
        return lower_args_and_op(l, e);
    }
    return AF_GRAPH_NONE;
}

/* ---- declarations ---- */

static size_t declared_len(lowerer *l, const ast_decl *d)
{
    if (d->type != TYPE_VECTOR)
        return 1;
    double n = known_value(l, lower_expr(l, d->size), d->size->span, "the size of a vector");
    if (n < 0)
        fail(l, d->size->span, NULL, "the size of '%s' is negative (%.0f)", d->name, n);
    if (n > AF_MAX_VECTOR_LEN)
        fail(l, d->size->span, NULL, "vector '%s' is too long (limit is %d elements)", d->name,
             AF_MAX_VECTOR_LEN);
    return (size_t)n;
}

static size_t read_data(lowerer *l, const ast_decl *d, size_t len)
{
    double *values = malloc((len ? len : 1) * sizeof *values);
    if (values == NULL)
        lang_out_of_memory(&l->ctx->on_failure);
    int status = lang_read_data(l->ctx, l->ctx->data, l->data_path, d, len, values);
    size_t id = status == 0 ? af_graph_constant(l->ctx->graph, values, len) : AF_GRAPH_NONE;
    free(values);
    if (status != 0)
        longjmp(l->fail, 1);
    return checked_node(l, id, d->span);
}

/* A local without an initial value holds NaN, as in Stan. */
static size_t initial_value(lowerer *l, const ast_decl *d, size_t len)
{
    if (d->init == NULL) {
        double *nan_values = arena_alloc(&l->ctx->arena, (len ? len : 1) * sizeof(double));
        for (size_t e = 0; e < len; e++)
            nan_values[e] = NAN;
        return constant(l, nan_values, len, d->span);
    }
    size_t value = lower_expr(l, d->init);
    size_t n = node_len(l, value);
    if (d->type == TYPE_VECTOR && n != len)
        fail(l, d->init->span, NULL, "'%s' has length %zu but is initialised with length %zu",
             d->name, len, n);
    return value;
}

static void lower_decl(lowerer *l, ast_decl *d)
{
    size_t len = declared_len(l, d);
    size_t value;
    if (d->origin == ORIGIN_DATA) {
        value = read_data(l, d, len);
    } else if (d->origin == ORIGIN_PARAM) {
        value = checked_node(l, af_graph_parameter(l->ctx->graph, l->dim, len), d->span);
        d->len = len;
        l->dim += len;
    } else {
        value = initial_value(l, d, len);
    }
    var_value *v = &l->vars[d->slot];
    v->len = len;
    write_whole(v, value);
}

/* ---- statements ---- */

static void lower_assign(lowerer *l, const ast_stmt *s)
{
    const ast_expr *lhs = s->lhs;
    size_t value = lower_expr(l, s->rhs);
    if (lhs->kind == EXPR_INDEX) {
        var_value *v = &l->vars[lhs->args[0]->decl->slot];
        write_element(l, v, element_index(l, lhs->args[1], v->len), value, s->span);
        return;
    }
    var_value *v = &l->vars[lhs->decl->slot];
    if (lhs->type == TYPE_VECTOR && node_len(l, value) != v->len)
        fail(l, s->rhs->span, NULL, "'%s' has length %zu but is assigned length %zu",
             lhs->decl->name, v->len, node_len(l, value));
    write_whole(v, value);
}

/* Adds VALUE (summed when it is a vector) to the target. */
static void add_to_target(lowerer *l, size_t value, af_span span)
{
    if (node_len(l, value) != 1)
        value = emit(l, AF_OP_SUM, &value, 1, 1, 0, span);
    size_t args[2] = {l->target, value};
    l->target = emit(l, AF_OP_ADD, args, 2, 1, 0, span);
}

static void lower_for(lowerer *l, const ast_stmt *s)
{
    double lo = known_value(l, lower_expr(l, s->lower), s->lower->span, "a loop bound");
    double hi = known_value(l, lower_expr(l, s->upper), s->upper->span, "a loop bound");
    var_value *v = &l->vars[s->decl->slot];
    v->len = 1;
    for (double i = lo; i <= hi; i++) {
        if (++l->unrolled > AF_MAX_UNROLL)
            fail(l, s->span, NULL, "too many loop iterations (limit is %d)", AF_MAX_UNROLL);
        write_whole(v, scalar(l, i, s->decl->span));
        lower_stmt(l, s->body);
    }
}

static void lower_stmt(lowerer *l, const ast_stmt *s)
{
    switch (s->kind) {
    case STMT_DECL:
        lower_decl(l, s->decl);
        break;
    case STMT_ASSIGN:
        lower_assign(l, s);
        break;
    case STMT_TARGET:
        add_to_target(l, lower_expr(l, s->rhs), s->span);
        break;
    case STMT_TILDE:
        add_to_target(l, lower_expr(l, s->rhs), s->span);
        break;
    case STMT_FOR:
        lower_for(l, s);
        break;
    case STMT_BLOCK:
        for (const ast_stmt *b = s->body; b != NULL; b = b->next)
            lower_stmt(l, b);
        break;
    case STMT_ERROR:
        break;
    }
}

/* ---- driver ---- */

static void lower_program(lowerer *l, ast_program *p)
{
    if (p->has_data) {
        if (l->data_path == NULL)
            fail(l, p->data_span, "pass --data FILE.json",
                 "the model has a data block but no data file was given");
        if (lang_load_json(l->ctx, l->data_path, &l->ctx->data) != 0)
            longjmp(l->fail, 1);
    }
    for (ast_decl *d = p->data; d != NULL; d = d->next)
        lower_decl(l, d);
    for (const ast_stmt *s = p->tdata; s != NULL; s = s->next)
        lower_stmt(l, s);
    for (ast_decl *d = p->params; d != NULL; d = d->next)
        lower_decl(l, d);
    l->target = scalar(l, 0.0, (af_span){0, 0});
    for (const ast_stmt *s = p->model; s != NULL; s = s->next)
        lower_stmt(l, s);
}

af_graph *lang_lower(lang_context *ctx, ast_program *program, const char *data_path)
{
    /* Volatile because longjmp may return here after they were changed. */
    lowerer *volatile l = arena_alloc(&ctx->arena, sizeof *l);
    l->ctx = ctx;
    l->data_path = data_path;
    l->vars = arena_alloc(&ctx->arena, (program->slots ? program->slots : 1) * sizeof *l->vars);
    l->ctx->graph = af_graph_new(AF_MAX_NODES);
    if (l->ctx->graph == NULL)
        lang_out_of_memory(&ctx->on_failure);

    if (setjmp(l->fail) != 0) {
        af_graph_free(ctx->graph);
        ctx->graph = NULL;
        cJSON_Delete(ctx->data);
        ctx->data = NULL;
        return NULL;
    }
    lower_program(l, program);
    cJSON_Delete(ctx->data);
    ctx->data = NULL;
    if (af_graph_finish(ctx->graph, l->target, l->dim) != 0)
        lang_out_of_memory(&ctx->on_failure);
    af_graph *graph = ctx->graph;
    ctx->graph = NULL;
    return graph;
}
