/* Lowering: runs the checked program once with the data known, so that
 * loops unroll, data and transformed data become constants, and what is
 * left is a graph of ops over z: the log-density (the model block) and the
 * output columns (constrained parameters, transformed parameters, generated
 * quantities). Sizes, loop bounds and indices are checked here because they
 * depend on data. Lowering stops at its first error, since later ones
 * would follow from it. Expressions are in lower_expr.c, constraints in
 * lower_transform.c. */
#include "lower_internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void lower_fail(lowerer *l, af_span span, const char *hint, const char *format, ...)
{
    char message[512];
    va_list ap;
    va_start(ap, format);
    vsnprintf(message, sizeof message, format, ap);
    va_end(ap);
    diag_error(&l->ctx->diag, span, hint, "%s", message);
    longjmp(l->fail, 1);
}

void lower_count_steps(lowerer *l, size_t cost, af_span span)
{
    l->steps += cost;
    if (l->steps > AF_MAX_LOWER_STEPS)
        lower_fail(l, span, "loops are unrolled while compiling: vectorise the loop body or "
                   "run fewer iterations",
                   "too many compile steps (limit is %d expressions and statements)",
                   AF_MAX_LOWER_STEPS);
}

size_t lower_checked(lowerer *l, size_t id, af_span span)
{
    if (id != AF_GRAPH_NONE)
        return id;
    if (af_graph_status_of(l->ctx->graph) == AF_GRAPH_TOO_MANY_NODES && l->block == ORIGIN_TDATA)
        lower_fail(l, span, "transformed data loops are unrolled too, and each new value "
                   "is a node: use functions on whole vectors (sum(1 ./ v), dot_product) or "
                   "fewer iterations, and check that every while loop ends",
                   "too many graph nodes (limit is %d)", AF_MAX_NODES);
    if (af_graph_status_of(l->ctx->graph) == AF_GRAPH_TOO_MANY_NODES)
        lower_fail(l, span, "loops are unrolled: write the loop as one vectorised statement "
                   "(y ~ normal(mu, sigma) on whole vectors) or use fewer iterations",
                   "too many graph nodes (limit is %d)", AF_MAX_NODES);
    if (af_graph_status_of(l->ctx->graph) == AF_GRAPH_TOO_MANY_CONSTANTS)
        lower_fail(l, span, "use less data or smaller vectors computed from data",
                   "too many constant values (limit is %d)", AF_MAX_CONSTANTS);
    if (af_graph_status_of(l->ctx->graph) == AF_GRAPH_TOO_MANY_FOLDED)
        lower_fail(l, span, "move the computation to a block that runs per draw",
                   "too many values computed from data (limit is %d)", AF_MAX_FOLDED);
    lang_out_of_memory(&l->ctx->on_failure);
    return id;
}

size_t lower_constant(lowerer *l, const double *values, size_t len, af_span span)
{
    return lower_checked(l, af_graph_constant(l->ctx->graph, values, len), span);
}

size_t lower_scalar(lowerer *l, double v, af_span span)
{
    return lower_constant(l, &v, 1, span);
}

size_t lower_emit(lowerer *l, af_op op, const size_t *args, size_t nargs, size_t len,
                  size_t index, af_span span)
{
    return lower_checked(l, af_graph_op(l->ctx->graph, op, args, nargs, len, index), span);
}

size_t lower_node_len(const lowerer *l, size_t id)
{
    return af_graph_node_len(l->ctx->graph, id);
}

const double *lower_known(const lowerer *l, size_t id)
{
    return af_graph_node_values(l->ctx->graph, id);
}

double lower_known_value(lowerer *l, size_t id, af_span span, const char *what)
{
    const double *v = lower_known(l, id);
    if (v == NULL)
        lower_fail(l, span, "compute it from data only", "%s must not depend on parameters",
                   what);
    return v[0];
}

/* ---- variables ---- */

size_t lower_var_whole(lowerer *l, var_value *v, af_span span)
{
    if (v->whole == AF_GRAPH_NONE)
        v->whole = v->len == 1 ? v->elems[0]
                               : lower_emit(l, AF_OP_CONCAT, v->elems, v->len, v->len, 0, span);
    return v->whole;
}

size_t lower_var_element(lowerer *l, var_value *v, size_t i, af_span span)
{
    if (v->elems != NULL)
        return v->elems[i];
    size_t whole = v->whole;
    if (v->len == 1)
        return whole;
    return lower_emit(l, AF_OP_INDEX, &whole, 1, 1, i, span);
}

void lower_var_write_element(lowerer *l, var_value *v, size_t i, size_t node, af_span span)
{
    if (v->elems == NULL) {
        size_t *elems = arena_alloc(&l->ctx->arena, (v->len ? v->len : 1) * sizeof *elems);
        for (size_t e = 0; e < v->len; e++)
            elems[e] = lower_var_element(l, v, e, span);
        v->elems = elems;
    }
    v->elems[i] = node;
    v->whole = AF_GRAPH_NONE;
}

static void write_whole(var_value *v, size_t node)
{
    v->whole = node;
    v->elems = NULL;
}

/* ---- declarations ---- */

static size_t known_size(lowerer *l, const ast_expr *size, const ast_decl *d)
{
    double n = lower_known_value(l, lower_expr(l, size).node, size->span, "a size");
    if (n < 0)
        lower_fail(l, size->span, NULL, "a size of '%s' is negative (%.0f)", d->name, n);
    if (n > AF_MAX_VECTOR_LEN)
        lower_fail(l, size->span, NULL, "'%s' is too large (limit is %d elements)", d->name,
                   AF_MAX_VECTOR_LEN);
    return (size_t)n;
}

/* Sets D's shape and length from its size expressions. */
static void declared_shape(lowerer *l, ast_decl *d)
{
    d->rank = 0;
    for (int k = 0; k < d->type.dims; k++)
        d->shape[d->rank++] = known_size(l, d->array_sizes[k], d);
    if (d->type.base == TYPE_VECTOR || d->type.base == TYPE_MATRIX)
        d->shape[d->rank++] = known_size(l, d->rows, d);
    if (d->type.base == TYPE_ROW_VECTOR || d->type.base == TYPE_MATRIX)
        d->shape[d->rank++] = known_size(l, d->cols, d);
    double total = 1;
    for (size_t k = 0; k < d->rank; k++)
        total *= (double)d->shape[k];
    if (total > AF_MAX_VECTOR_LEN)
        lower_fail(l, d->span, NULL, "'%s' is too large (limit is %d elements)", d->name,
                   AF_MAX_VECTOR_LEN);
    d->len = (size_t)total;
    if (d->constraint == CONSTRAINT_SIMPLEX && d->len == 0)
        lower_fail(l, d->rows->span, NULL, "a simplex needs at least one element");
}

static size_t read_data(lowerer *l, const ast_decl *d)
{
    double *values = malloc((d->len ? d->len : 1) * sizeof *values);
    if (values == NULL)
        lang_out_of_memory(&l->ctx->on_failure);
    int status = lang_read_data(l->ctx, l->ctx->data, l->data_path, d, values);
    size_t id = status == 0 ? af_graph_constant(l->ctx->graph, values, d->len) : AF_GRAPH_NONE;
    free(values);
    if (status != 0)
        longjmp(l->fail, 1);
    return lower_checked(l, id, d->span);
}

/* A variable without an initial value holds NaN, as in Stan. */
static size_t initial_value(lowerer *l, const ast_decl *d)
{
    if (d->init == NULL) {
        double *nan_values = arena_alloc(&l->ctx->arena, (d->len ? d->len : 1) * sizeof(double));
        for (size_t e = 0; e < d->len; e++)
            nan_values[e] = NAN;
        return lower_constant(l, nan_values, d->len, d->span);
    }
    value v = lower_expr(l, d->init);
    size_t n = lower_node_len(l, v.node);
    if (n != d->len || (d->rank > 0 && v.sh.rank != d->rank)) {
        char a[96], b[96];
        shape want = {d->rank, {0}};
        memcpy(want.dims, d->shape, sizeof d->shape);
        lower_fail(l, d->init->span, NULL, "'%s' is %s but is initialised with %s", d->name,
                   shape_text(d->type, &want, a, sizeof a), shape_text(v.type, &v.sh, b, sizeof b));
    }
    return v.node;
}

static void set_var(lowerer *l, ast_decl *d, size_t node)
{
    var_value *v = &l->vars[d->slot];
    v->type = d->type;
    v->sh.rank = d->rank;
    memcpy(v->sh.dims, d->shape, sizeof d->shape);
    v->len = d->len;
    write_whole(v, node);
}

static void lower_param(lowerer *l, ast_decl *d)
{
    size_t ulen = lower_unconstrained_len(l, d, d->len);
    size_t z = lower_checked(l, af_graph_parameter(l->ctx->graph, l->dim, ulen), d->span);
    l->dim += ulen;
    set_var(l, d, lower_constrain(l, d, z, d->len));
}

void lower_declaration(lowerer *l, ast_decl *d)
{
    declared_shape(l, d);
    if (d->origin == ORIGIN_DATA) {
        size_t node = read_data(l, d);
        lower_check_data_bounds(l, d, node);
        set_var(l, d, node);
    } else if (d->origin == ORIGIN_PARAM) {
        lower_param(l, d);
    } else {
        set_var(l, d, initial_value(l, d));
    }
}

/* ---- output columns ---- */

static void push(lowerer *l, size_t **list, size_t *count, size_t *cap, size_t node)
{
    if (*count == *cap) {
        size_t n = *cap ? 2 * *cap : 64;
        size_t *p = arena_alloc(&l->ctx->arena, n * sizeof *p);
        if (*count)
            memcpy(p, *list, *count * sizeof *p);
        *list = p;
        *cap = n;
    }
    (*list)[(*count)++] = node;
}

/* Appends the elements of D in CSV order to the output columns. */
static void add_outputs(lowerer *l, const ast_decl *d)
{
    var_value *v = &l->vars[d->slot];
    size_t *order = lower_csv_order(l, d->type, &v->sh);
    for (size_t k = 0; k < d->len; k++)
        push(l, &l->outputs, &l->output_count, &l->output_cap,
             lower_var_element(l, v, order[k], d->span));
}

/* ---- driver ---- */

static void lower_stmts(lowerer *l, const ast_stmt *list)
{
    for (const ast_stmt *s = list; s != NULL; s = s->next)
        lower_stmt(l, s);
    l->jump = JUMP_NONE;
}

static void check_block_bounds(lowerer *l, const ast_stmt *list, ast_origin origin)
{
    for (const ast_stmt *s = list; s != NULL; s = s->next) {
        if (s->kind != STMT_DECL || s->decl->origin != origin)
            continue;
        size_t node = lower_var_whole(l, &l->vars[s->decl->slot], s->decl->span);
        if (origin == ORIGIN_TDATA)
            lower_check_data_bounds(l, s->decl, node);
        else
            lower_check_tparam_bounds(l, s->decl, node);
    }
}

static void load_data(lowerer *l, ast_program *p)
{
    if (!p->has_data)
        return;
    if (l->data_path == NULL)
        lower_fail(l, p->data_span, "pass --data FILE.json",
                   "the model has a data block but no data file was given");
    if (lang_load_json(l->ctx, l->data_path, &l->ctx->data) != 0)
        longjmp(l->fail, 1);
}

static void lower_program(lowerer *l, ast_program *p)
{
    load_data(l, p);
    for (ast_decl *d = p->data; d != NULL; d = d->next)
        lower_declaration(l, d);
    l->target = lower_scalar(l, 0.0, (af_span){0, 0});
    l->block = ORIGIN_TDATA;
    lower_stmts(l, p->tdata);
    check_block_bounds(l, p->tdata, ORIGIN_TDATA);
    l->block = ORIGIN_PARAM;
    for (ast_decl *d = p->params; d != NULL; d = d->next)
        lower_declaration(l, d);
    l->block = ORIGIN_TPARAM;
    lower_stmts(l, p->tparams);
    check_block_bounds(l, p->tparams, ORIGIN_TPARAM);
    l->block = ORIGIN_LOCAL;
    lower_stmts(l, p->model);
    l->block = ORIGIN_GQ;
    lower_stmts(l, p->gq);

    for (ast_decl *d = p->params; d != NULL; d = d->next)
        add_outputs(l, d);
    for (const ast_stmt *s = p->tparams; s != NULL; s = s->next)
        if (s->kind == STMT_DECL && s->decl->origin == ORIGIN_TPARAM)
            add_outputs(l, s->decl);
    for (const ast_stmt *s = p->gq; s != NULL; s = s->next)
        if (s->kind == STMT_DECL && s->decl->origin == ORIGIN_GQ)
            add_outputs(l, s->decl);
}

/* The output graph's root: the columns, then the bounds of every parameter
 * element (for af_model_unconstrain). */
static size_t output_root(lowerer *l)
{
    size_t n = l->output_count + l->bounds_count;
    size_t *all = arena_alloc(&l->ctx->arena, (n ? n : 1) * sizeof *all);
    if (l->output_count)
        memcpy(all, l->outputs, l->output_count * sizeof *all);
    if (l->bounds_count)
        memcpy(all + l->output_count, l->bounds, l->bounds_count * sizeof *all);
    if (n == 0) {
        double none = 0.0;
        return lower_constant(l, &none, 0, (af_span){0, 0});
    }
    return lower_emit(l, AF_OP_CONCAT, all, n, n, 0, (af_span){0, 0});
}

static void init_lowerer(lowerer *l, lang_context *ctx, ast_program *program,
                         const char *data_path)
{
    l->ctx = ctx;
    l->program = program;
    l->data_path = data_path;
    l->level_node = AF_GRAPH_NONE;
    l->guard = AF_GRAPH_NONE;
    l->tracks_guard = lower_program_has_effects(program);
    l->block = ORIGIN_DATA;
    size_t slots = program->slots ? program->slots : 1;
    l->vars = arena_alloc(&ctx->arena, slots * sizeof *l->vars);
    for (size_t i = 0; i < slots; i++)
        l->vars[i].whole = AF_GRAPH_NONE;
}

int lang_lower(lang_context *ctx, ast_program *program, const char *data_path,
               lang_lowered *out)
{
    /* Volatile because longjmp may return here after they were changed. */
    lowerer *volatile l = arena_alloc(&ctx->arena, sizeof *l);
    init_lowerer(l, ctx, program, data_path);
    ctx->graph = af_graph_new(AF_MAX_NODES, AF_MAX_CONSTANTS, AF_MAX_FOLDED);
    if (ctx->graph == NULL)
        lang_out_of_memory(&ctx->on_failure);

    if (setjmp(l->fail) != 0) {
        af_graph_free(ctx->graph);
        ctx->graph = NULL;
        cJSON_Delete(ctx->data);
        ctx->data = NULL;
        free(l->printed.text);
        return -1;
    }
    lower_program(l, program);
    cJSON_Delete(ctx->data);
    ctx->data = NULL;

    size_t outputs = output_root(l);
    out->effects = lower_effects_graph(l);
    af_graph *columns = af_graph_clone(ctx->graph);
    if (columns == NULL || af_graph_finish(columns, outputs, l->dim) != 0 ||
        af_graph_finish(ctx->graph, l->target, l->dim) != 0) {
        af_graph_free(columns);
        lang_effects_free(out->effects);
        out->effects = NULL;
        lang_out_of_memory(&ctx->on_failure);
    }
    out->graph = ctx->graph;
    out->columns = columns;
    out->column_count = l->output_count;
    out->printed = l->printed.text;
    ctx->graph = NULL;
    return 0;
}
