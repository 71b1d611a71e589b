/* Lowering of expressions: operators with broadcasting of scalars, matrix
 * products built from columns, transposition, indexing with single indices,
 * ranges and multi-indexes, literals, the shape functions (size,
 * rep_vector, ...) and calls of built-in ops. Control flow on data is
 * resolved here; on parameters it becomes a select of both branches. */
#include "lower_internal.h"

#include <math.h>
#include <string.h>

#define PI 3.14159265358979323846

static const shape SCALAR_SHAPE = {0, {0}};

size_t shape_len(const shape *sh)
{
    size_t n = 1;
    for (size_t k = 0; k < sh->rank; k++)
        n *= sh->dims[k];
    return n;
}

const char *shape_text(ast_type type, const shape *sh, char *out, size_t cap)
{
    size_t used = 0;
    size_t k = 0;
    out[0] = '\0';
    if (type.dims > 0) {
        used += (size_t)snprintf(out + used, cap - used, "array[");
        for (; k < (size_t)type.dims && k < sh->rank; k++)
            used += (size_t)snprintf(out + used, cap - used, "%s%zu", k ? ", " : "", sh->dims[k]);
        used += (size_t)snprintf(out + used, cap - used, "] ");
    }
    if (used >= cap)
        return out;
    if (type.base == TYPE_MATRIX && k + 1 < sh->rank)
        snprintf(out + used, cap - used, "matrix[%zu, %zu]", sh->dims[k], sh->dims[k + 1]);
    else if ((type.base == TYPE_VECTOR || type.base == TYPE_ROW_VECTOR) && k < sh->rank)
        snprintf(out + used, cap - used, "%s[%zu]", ast_base_name(type.base), sh->dims[k]);
    else
        snprintf(out + used, cap - used, "%s", ast_base_name(type.base));
    return out;
}

static value make_value(size_t node, ast_type type, shape sh)
{
    value v = {node, type, sh};
    return v;
}

static value scalar_value(lowerer *l, double x, ast_type type, af_span span)
{
    return make_value(lower_scalar(l, x, span), type, SCALAR_SHAPE);
}

size_t lower_element(lowerer *l, value v, size_t i, af_span span)
{
    if (lower_node_len(l, v.node) == 1)
        return v.node;
    size_t node = v.node;
    return lower_emit(l, AF_OP_INDEX, &node, 1, 1, i, span);
}

size_t lower_gather(lowerer *l, size_t node, const size_t *offsets, size_t n, af_span span)
{
    size_t len = lower_node_len(l, node);
    int identity = n == len;
    for (size_t k = 0; identity && k < n; k++)
        identity = offsets[k] == k;
    if (identity)
        return node;
    if (n == 1)
        return lower_emit(l, AF_OP_INDEX, &node, 1, 1, offsets[0], span);
    size_t *parts = arena_alloc(&l->ctx->arena, (n ? n : 1) * sizeof *parts);
    for (size_t k = 0; k < n; k++)
        parts[k] = lower_emit(l, AF_OP_INDEX, &node, 1, 1, offsets[k], span);
    return lower_emit(l, AF_OP_CONCAT, parts, n, n, 0, span);
}

/* ---- indexing ---- */

/* Strides of each dimension in the flat layout. */
static void layout_strides(ast_type type, const shape *sh, size_t *strides)
{
    size_t arrays = (size_t)type.dims;
    size_t inner = 1;
    for (size_t k = arrays; k < sh->rank; k++)
        inner *= sh->dims[k];
    if (type.base == TYPE_MATRIX && sh->rank >= arrays + 2) {
        strides[arrays] = 1;
        strides[arrays + 1] = sh->dims[arrays];
    } else if (sh->rank > arrays) {
        strides[arrays] = 1;
    }
    size_t stride = inner;
    for (size_t k = arrays; k-- > 0;) {
        strides[k] = stride;
        stride *= sh->dims[k];
    }
}

/* The positions selected along one dimension of size SIZE. */
typedef struct {
    size_t *at; /* 0-based */
    size_t n;
    int multi;
} selection;

static size_t checked_index(lowerer *l, double i, size_t size, af_span span)
{
    if (!(i >= 1 && i <= (double)size))
        lower_fail(l, span, NULL, "index %.0f is out of range (the size is %zu)", i, size);
    return (size_t)i - 1;
}

static selection select_range(lowerer *l, const ast_expr *index, size_t size)
{
    selection s = {NULL, 0, 1};
    double lo = 1, hi = (double)size;
    if (index->args[0] != NULL)
        lo = lower_known_value(l, lower_expr(l, index->args[0]).node, index->args[0]->span,
                               "a range bound");
    if (index->args[1] != NULL)
        hi = lower_known_value(l, lower_expr(l, index->args[1]).node, index->args[1]->span,
                               "a range bound");
    /* Both ends are checked first, so that a range such as 1:2147483647
     * fails before its positions are allocated. */
    size_t n = 0;
    if (hi >= lo) {
        size_t first = checked_index(l, lo, size, index->span);
        n = checked_index(l, hi, size, index->span) - first + 1;
    }
    s.at = arena_alloc(&l->ctx->arena, (n ? n : 1) * sizeof *s.at);
    for (size_t k = 0; k < n; k++)
        s.at[k] = checked_index(l, lo + (double)k, size, index->span);
    s.n = n;
    return s;
}

static selection select_one(lowerer *l, const ast_expr *index, size_t size)
{
    if (index->kind == EXPR_RANGE)
        return select_range(l, index, size);
    value v = lower_expr(l, index);
    size_t n = lower_node_len(l, v.node);
    const double *known = lower_known(l, v.node);
    if (known == NULL)
        lower_fail(l, index->span, "compute it from data only",
                   "an index must not depend on parameters");
    selection s = {arena_alloc(&l->ctx->arena, (n ? n : 1) * sizeof(size_t)), n,
                   index->type.dims > 0};
    for (size_t k = 0; k < n; k++)
        s.at[k] = checked_index(l, known[k], size, index->span);
    return s;
}

size_t *lower_index_offsets(lowerer *l, ast_type type, const shape *sh, ast_expr *const *args,
                            size_t n, shape *result, size_t *count, af_span span)
{
    size_t strides[AF_MAX_RANK];
    selection sel[AF_MAX_RANK];
    layout_strides(type, sh, strides);
    result->rank = 0;
    for (size_t k = 0; k < sh->rank; k++) {
        if (k < n) {
            sel[k] = select_one(l, args[k], sh->dims[k]);
        } else {
            sel[k] = (selection){arena_alloc(&l->ctx->arena, (sh->dims[k] + 1) * sizeof(size_t)),
                                 sh->dims[k], 1};
            for (size_t i = 0; i < sh->dims[k]; i++)
                sel[k].at[i] = i;
        }
        if (sel[k].multi)
            result->dims[result->rank++] = sel[k].n;
    }
    (void)span;

    /* Visit the selection in the result's layout: array dimensions
     * outermost first, then a matrix's columns, then its rows. */
    size_t order[AF_MAX_RANK], rank = sh->rank;
    for (size_t k = 0; k < rank; k++)
        order[k] = k;
    if (type.base == TYPE_MATRIX && rank >= 2) {
        order[rank - 2] = rank - 1;
        order[rank - 1] = rank - 2;
    }
    size_t total = 1;
    for (size_t k = 0; k < rank; k++)
        total *= sel[k].n;
    size_t *offsets = arena_alloc(&l->ctx->arena, (total ? total : 1) * sizeof *offsets);
    size_t pos[AF_MAX_RANK] = {0};
    for (size_t t = 0; t < total; t++) {
        size_t off = 0;
        for (size_t k = 0; k < rank; k++)
            off += sel[k].at[pos[k]] * strides[k];
        offsets[t] = off;
        for (size_t q = rank; q-- > 0;) {
            size_t k = order[q];
            if (++pos[k] < sel[k].n)
                break;
            pos[k] = 0;
        }
    }
    *count = total;
    return offsets;
}

size_t *lower_csv_order(lowerer *l, ast_type type, const shape *sh)
{
    size_t strides[AF_MAX_RANK];
    size_t n = shape_len(sh);
    size_t *offsets = arena_alloc(&l->ctx->arena, (n ? n : 1) * sizeof *offsets);
    size_t pos[AF_MAX_RANK] = {0};
    layout_strides(type, sh, strides);
    for (size_t t = 0; t < n; t++) {
        size_t off = 0;
        for (size_t k = 0; k < sh->rank; k++)
            off += pos[k] * strides[k];
        offsets[t] = off;
        for (size_t k = 0; k < sh->rank; k++) { /* the first index runs fastest */
            if (++pos[k] < sh->dims[k])
                break;
            pos[k] = 0;
        }
    }
    return offsets;
}

static value lower_index(lowerer *l, const ast_expr *e)
{
    const ast_expr *base = e->args[0];
    value b;
    if (base->kind == EXPR_VAR) {
        var_value *v = &l->vars[base->decl->slot];
        b = make_value(AF_GRAPH_NONE, v->type, v->sh);
        shape result;
        size_t count;
        size_t *offsets = lower_index_offsets(l, v->type, &v->sh, e->args + 1, e->nargs - 1,
                                              &result, &count, e->span);
        if (count == 1 && result.rank == 0)
            return make_value(lower_var_element(l, v, offsets[0], e->span), e->type, result);
        size_t whole = lower_var_whole(l, v, e->span);
        return make_value(lower_gather(l, whole, offsets, count, e->span), e->type, result);
    }
    b = lower_expr(l, base);
    shape result;
    size_t count;
    size_t *offsets = lower_index_offsets(l, b.type, &b.sh, e->args + 1, e->nargs - 1, &result,
                                          &count, e->span);
    return make_value(lower_gather(l, b.node, offsets, count, e->span), e->type, result);
}

/* ---- operators ---- */

static int same_dims(const shape *a, const shape *b)
{
    if (a->rank != b->rank)
        return 0;
    for (size_t k = 0; k < a->rank; k++)
        if (a->dims[k] != b->dims[k])
            return 0;
    return 1;
}

/* Elementwise op over values that are scalars or of one shape. */
static value elementwise(lowerer *l, af_op op, const value *args, size_t nargs, ast_type type,
                         af_span span)
{
    shape sh = SCALAR_SHAPE;
    size_t nodes[AF_OP_MAX_ARITY];
    ast_type sh_type = type;
    for (size_t k = 0; k < nargs; k++) {
        nodes[k] = args[k].node;
        if (args[k].sh.rank == 0)
            continue;
        if (sh.rank != 0 && !same_dims(&sh, &args[k].sh)) {
            char a[96], b[96];
            lower_fail(l, span, NULL, "sizes differ: %s and %s", shape_text(sh_type, &sh, a, 96),
                       shape_text(args[k].type, &args[k].sh, b, 96));
        }
        sh = args[k].sh;
        sh_type = args[k].type;
    }
    if (op == AF_OP_IDIV || op == AF_OP_MOD) {
        const double *d = lower_known(l, nodes[1]);
        if (d != NULL && d[0] == 0.0)
            lower_fail(l, span, NULL, "integer division by zero");
    }
    return make_value(lower_emit(l, op, nodes, nargs, shape_len(&sh), 0, span), type, sh);
}

static size_t sum_of(lowerer *l, size_t node, af_span span)
{
    return lower_emit(l, AF_OP_SUM, &node, 1, 1, 0, span);
}

static size_t binary_node(lowerer *l, af_op op, size_t a, size_t b, size_t len, af_span span)
{
    size_t args[2] = {a, b};
    return lower_emit(l, op, args, 2, len, 0, span);
}

static size_t rows_of(const value *v)
{
    return v->type.base == TYPE_ROW_VECTOR ? 1 : v->sh.dims[0];
}

static size_t cols_of(const value *v)
{
    if (v->type.base == TYPE_VECTOR)
        return 1;
    return v->type.base == TYPE_ROW_VECTOR ? v->sh.dims[0] : v->sh.dims[1];
}

/* Column J of a matrix-shaped value (a vector is one column). */
static size_t column(lowerer *l, const value *v, size_t j, af_span span)
{
    size_t m = rows_of(v);
    size_t *offsets = arena_alloc(&l->ctx->arena, (m ? m : 1) * sizeof *offsets);
    for (size_t i = 0; i < m; i++)
        offsets[i] = j * m + i;
    return lower_gather(l, v->node, offsets, m, span);
}

/* A (m x k) times B (k x n). When A or B is data, the product is one
 * MATMUL node, which runs on BLAS. MATMUL has no BLAS form for two
 * operands that both change from point to point, so then column j of the
 * result is the sum over t of column t of A times B[t, j], each product
 * one op over m elements. */
static value matrix_product(lowerer *l, const value *a, const value *b, ast_type type,
                            af_span span)
{
    size_t m = rows_of(a), k = cols_of(a), n = cols_of(b);
    if (rows_of(b) != k)
        lower_fail(l, span, NULL, "the sizes of the product do not match: %zu x %zu times %zu x %zu",
                   m, k, rows_of(b), n);
    shape sh = SCALAR_SHAPE;
    if (type.base == TYPE_VECTOR)
        sh = (shape){1, {m}};
    else if (type.base == TYPE_ROW_VECTOR)
        sh = (shape){1, {n}};
    else if (type.base == TYPE_MATRIX)
        sh = (shape){2, {m, n}};
    if (m > 0 && (lower_known(l, a->node) != NULL || lower_known(l, b->node) != NULL)) {
        size_t args[2] = {a->node, b->node};
        return make_value(lower_emit(l, AF_OP_MATMUL, args, 2, m * n, m, span), type, sh);
    }

    size_t *cols = arena_alloc(&l->ctx->arena, (n ? n : 1) * sizeof *cols);
    size_t *acols = arena_alloc(&l->ctx->arena, (k ? k : 1) * sizeof *acols);
    for (size_t t = 0; t < k; t++)
        acols[t] = column(l, a, t, span);
    for (size_t j = 0; j < n; j++) {
        size_t sum = lower_scalar(l, 0.0, span);
        if (m == 1 && k > 1) {
            size_t brow = column(l, b, j, span);
            sum = sum_of(l, binary_node(l, AF_OP_MUL, a->node, brow, k, span), span);
        } else {
            for (size_t t = 0; t < k; t++) {
                size_t bt = lower_element(l, *b, j * k + t, span);
                size_t term = binary_node(l, AF_OP_MUL, acols[t], bt, m, span);
                sum = t == 0 ? term : binary_node(l, AF_OP_ADD, sum, term, m, span);
            }
        }
        cols[j] = sum;
    }
    size_t node = n == 1 ? cols[0] : lower_emit(l, AF_OP_CONCAT, cols, n, m * n, 0, span);
    return make_value(node, type, sh);
}

static value transpose(lowerer *l, value v, ast_type type, af_span span)
{
    if (v.type.base != TYPE_MATRIX)
        return make_value(v.node, type, v.sh);
    size_t m = v.sh.dims[0], n = v.sh.dims[1];
    size_t *offsets = arena_alloc(&l->ctx->arena, (m * n > 0 ? m * n : 1) * sizeof *offsets);
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++)
            offsets[i * n + j] = j * m + i;
    shape sh = {2, {n, m}};
    return make_value(lower_gather(l, v.node, offsets, m * n, span), type, sh);
}

static af_op operator_op(ast_operator oper, const ast_expr *e)
{
    int ints = e->args[0]->type.base == TYPE_INT && e->nargs > 1 &&
               e->args[1]->type.base == TYPE_INT;
    static const af_op ops[] = {AF_OP_ADD,    AF_OP_SUB, AF_OP_MUL, AF_OP_DIV, AF_OP_MUL,
                                AF_OP_DIV,    AF_OP_POW_OP, AF_OP_POW_OP, AF_OP_MOD, AF_OP_IDIV,
                                AF_OP_LT,     AF_OP_LE,  AF_OP_GT,  AF_OP_GE,  AF_OP_EQ,
                                AF_OP_NE,     AF_OP_AND, AF_OP_OR,  AF_OP_NEG, AF_OP_NOT,
                                AF_OP_CONST};
    if (oper == OPER_DIV && ints)
        return AF_OP_IDIV; /* Stan divides two ints as ints, truncating toward zero */
    return ops[oper];
}

static int is_matrix_like(const value *v)
{
    return v->type.dims == 0 &&
           (v->type.base == TYPE_VECTOR || v->type.base == TYPE_ROW_VECTOR ||
            v->type.base == TYPE_MATRIX);
}

/* && and || evaluate their right side only when needed. When the left
 * side is known from data, the right side is lowered only then. Otherwise
 * both are lowered, and a reject or an _lp function in the right side acts
 * only where Stan would evaluate it, as for a side of ?:. */
static value logical(lowerer *l, const ast_expr *e)
{
    const int is_and = e->oper == OPER_AND;
    value a = lower_expr(l, e->args[0]);
    const double *known = lower_known(l, a.node);
    if (known != NULL) {
        int truth = known[0] != 0.0;
        if (is_and && !truth)
            return scalar_value(l, 0, e->type, e->span);
        if (!is_and && truth)
            return scalar_value(l, 1, e->type, e->span);
        value args[2] = {a, lower_expr(l, e->args[1])};
        return elementwise(l, operator_op(e->oper, e), args, 2, e->type, e->span);
    }

    /* The right side runs where the left is true for &&, false for ||. */
    size_t guard = l->guard, target = l->target;
    l->guard = lower_guard_branch(l, guard, a.node, is_and, e->span);
    value b = lower_expr(l, e->args[1]);
    size_t right_guard = l->guard, right_target = l->target;
    if (right_target != target) {
        size_t targets[3] = {a.node, is_and ? right_target : target,
                             is_and ? target : right_target};
        l->target = lower_emit(l, AF_OP_SELECT, targets, 3, 1, 0, e->span);
    }
    l->guard = lower_guard_merge(l, guard, a.node, is_and ? right_guard : guard,
                                 is_and ? guard : right_guard, e->span);
    value args[2] = {a, b};
    return elementwise(l, operator_op(e->oper, e), args, 2, e->type, e->span);
}

static value lower_binary(lowerer *l, const ast_expr *e)
{
    if (e->oper == OPER_AND || e->oper == OPER_OR)
        return logical(l, e);
    return lower_binary_values(l, e, lower_expr(l, e->args[0]), lower_expr(l, e->args[1]));
}

value lower_binary_values(lowerer *l, const ast_expr *e, value a, value b)
{
    value args[2] = {a, b};
    if (e->oper == OPER_MUL && is_matrix_like(&args[0]) && is_matrix_like(&args[1])) {
        if (args[0].type.base == TYPE_ROW_VECTOR && args[1].type.base == TYPE_VECTOR) {
            value prod = elementwise(l, AF_OP_MUL, args, 2, args[1].type, e->span);
            return make_value(sum_of(l, prod.node, e->span), e->type, SCALAR_SHAPE);
        }
        return matrix_product(l, &args[0], &args[1], e->type, e->span);
    }
    return elementwise(l, operator_op(e->oper, e), args, 2, e->type, e->span);
}

static value lower_unary(lowerer *l, const ast_expr *e)
{
    value v = lower_expr(l, e->args[0]);
    if (e->oper == OPER_TRANSPOSE)
        return transpose(l, v, e->type, e->span);
    return elementwise(l, e->oper == OPER_NEG ? AF_OP_NEG : AF_OP_NOT, &v, 1, e->type, e->span);
}

static value lower_ternary(lowerer *l, const ast_expr *e)
{
    value cond = lower_expr(l, e->args[0]);
    const double *known = lower_known(l, cond.node);
    if (known != NULL) {
        value v = lower_expr(l, e->args[known[0] != 0.0 ? 1 : 2]);
        v.type = e->type;
        return v;
    }
    /* Both sides are lowered, but Stan evaluates only the chosen one, so a
     * reject or an _lp function inlined in a side acts only where that
     * side is chosen: its guard and the target are merged as for an if. */
    size_t guard = l->guard, target = l->target;
    l->guard = lower_guard_branch(l, guard, cond.node, 1, e->span);
    value then_value = lower_expr(l, e->args[1]);
    size_t then_guard = l->guard, then_target = l->target;
    l->guard = lower_guard_branch(l, guard, cond.node, 0, e->span);
    l->target = target;
    value else_value = lower_expr(l, e->args[2]);
    if (then_target != l->target) {
        size_t targets[3] = {cond.node, then_target, l->target};
        l->target = lower_emit(l, AF_OP_SELECT, targets, 3, 1, 0, e->span);
    }
    l->guard = lower_guard_merge(l, guard, cond.node, then_guard, l->guard, e->span);
    value args[3] = {cond, then_value, else_value};
    return elementwise(l, AF_OP_SELECT, args, 3, e->type, e->span);
}

/* ---- literals ---- */

static value row_literal(lowerer *l, const ast_expr *e)
{
    size_t n = e->nargs;
    value *items = arena_alloc(&l->ctx->arena, n * sizeof *items);
    for (size_t k = 0; k < n; k++)
        items[k] = lower_expr(l, e->args[k]);
    if (e->type.base == TYPE_ROW_VECTOR) {
        size_t *nodes = arena_alloc(&l->ctx->arena, n * sizeof *nodes);
        for (size_t k = 0; k < n; k++)
            nodes[k] = items[k].node;
        shape sh = {1, {n}};
        return make_value(n == 1 ? nodes[0] : lower_emit(l, AF_OP_CONCAT, nodes, n, n, 0, e->span),
                          e->type, sh);
    }
    size_t cols = items[0].sh.dims[0];
    for (size_t k = 1; k < n; k++)
        if (items[k].sh.dims[0] != cols)
            lower_fail(l, e->args[k]->span, NULL, "row %zu has %zu elements, row 1 has %zu", k + 1,
                       items[k].sh.dims[0], cols);
    size_t *nodes = arena_alloc(&l->ctx->arena, (n * cols > 0 ? n * cols : 1) * sizeof *nodes);
    for (size_t j = 0; j < cols; j++)
        for (size_t i = 0; i < n; i++)
            nodes[j * n + i] = lower_element(l, items[i], j, e->span);
    shape sh = {2, {n, cols}};
    return make_value(lower_emit(l, AF_OP_CONCAT, nodes, n * cols, n * cols, 0, e->span), e->type,
                      sh);
}

static value array_literal(lowerer *l, const ast_expr *e)
{
    size_t n = e->nargs;
    size_t *nodes = arena_alloc(&l->ctx->arena, n * sizeof *nodes);
    shape first = SCALAR_SHAPE;
    size_t total = 0;
    for (size_t k = 0; k < n; k++) {
        value v = lower_expr(l, e->args[k]);
        if (k == 0)
            first = v.sh;
        else if (!same_dims(&first, &v.sh))
            lower_fail(l, e->args[k]->span, NULL, "the elements of '{...}' differ in size");
        nodes[k] = v.node;
        total += lower_node_len(l, v.node);
    }
    shape sh = {first.rank + 1, {n}};
    for (size_t k = 0; k < first.rank; k++)
        sh.dims[k + 1] = first.dims[k];
    size_t node = n == 1 ? nodes[0] : lower_emit(l, AF_OP_CONCAT, nodes, n, total, 0, e->span);
    return make_value(node, e->type, sh);
}

/* ---- calls ---- */

static double known_int(lowerer *l, const ast_expr *e, const char *what)
{
    double v = lower_known_value(l, lower_expr(l, e).node, e->span, what);
    if (v < 0)
        lower_fail(l, e->span, NULL, "%s must not be negative, found %.0f", what, v);
    if (v > AF_MAX_VECTOR_LEN)
        lower_fail(l, e->span, NULL, "too many elements (limit is %d)", AF_MAX_VECTOR_LEN);
    return v;
}

static value repeat(lowerer *l, const ast_expr *e, shape sh)
{
    value x = lower_expr(l, e->args[0]);
    size_t len = shape_len(&sh);
    size_t reps = len / (lower_node_len(l, x.node) ? lower_node_len(l, x.node) : 1);
    if (len > AF_MAX_VECTOR_LEN)
        lower_fail(l, e->span, NULL, "too many elements (limit is %d)", AF_MAX_VECTOR_LEN);
    if (x.sh.rank == 0) {
        size_t zero = lower_constant(l, (double[]){0.0}, 1, e->span);
        if (len != 1) {
            double *zeros = arena_alloc(&l->ctx->arena, (len ? len : 1) * sizeof *zeros);
            memset(zeros, 0, len * sizeof *zeros);
            zero = lower_constant(l, zeros, len, e->span);
        }
        size_t args[2] = {zero, x.node};
        return make_value(lower_emit(l, AF_OP_ADD, args, 2, len, 0, e->span), e->type, sh);
    }
    size_t *parts = arena_alloc(&l->ctx->arena, (reps ? reps : 1) * sizeof *parts);
    for (size_t k = 0; k < reps; k++)
        parts[k] = x.node;
    return make_value(lower_emit(l, AF_OP_CONCAT, parts, reps, len, 0, e->span), e->type, sh);
}

static value size_builtin(lowerer *l, const ast_expr *e)
{
    value v = lower_expr(l, e->args[0]);
    double n = 0;
    switch ((ast_builtin)e->builtin) {
    case BUILTIN_SIZE:
        n = v.sh.rank > 0 ? (double)v.sh.dims[0] : 1;
        break;
    case BUILTIN_NUM_ELEMENTS:
        n = (double)shape_len(&v.sh);
        break;
    case BUILTIN_ROWS:
        n = is_matrix_like(&v) ? (double)rows_of(&v) : 1;
        break;
    default:
        n = is_matrix_like(&v) ? (double)cols_of(&v) : 1;
        break;
    }
    return scalar_value(l, n, e->type, e->span);
}

static value lower_builtin(lowerer *l, const ast_expr *e)
{
    switch ((ast_builtin)e->builtin) {
    case BUILTIN_PI:
        return scalar_value(l, PI, e->type, e->span);
    case BUILTIN_E:
        return scalar_value(l, exp(1.0), e->type, e->span);
    case BUILTIN_NOT_A_NUMBER:
        return scalar_value(l, NAN, e->type, e->span);
    case BUILTIN_POSITIVE_INFINITY:
        return scalar_value(l, INFINITY, e->type, e->span);
    case BUILTIN_NEGATIVE_INFINITY:
        return scalar_value(l, -INFINITY, e->type, e->span);
    case BUILTIN_REP_VECTOR:
    case BUILTIN_REP_ROW_VECTOR:
        return repeat(l, e, (shape){1, {(size_t)known_int(l, e->args[1], "a size")}});
    case BUILTIN_REP_MATRIX:
        return repeat(l, e, (shape){2, {(size_t)known_int(l, e->args[1], "a size"),
                                        (size_t)known_int(l, e->args[2], "a size")}});
    case BUILTIN_REP_ARRAY: {
        value x = lower_expr(l, e->args[0]);
        shape sh = {x.sh.rank + 1, {(size_t)known_int(l, e->args[1], "a size")}};
        for (size_t k = 0; k < x.sh.rank; k++)
            sh.dims[k + 1] = x.sh.dims[k];
        return repeat(l, e, sh);
    }
    case BUILTIN_TO_VECTOR:
    case BUILTIN_TO_ROW_VECTOR: {
        value v = lower_expr(l, e->args[0]);
        shape sh = {1, {lower_node_len(l, v.node)}};
        return make_value(v.node, e->type, sh);
    }
    case BUILTIN_DOT_PRODUCT: {
        value args[2] = {lower_expr(l, e->args[0]), lower_expr(l, e->args[1])};
        args[0].type = args[1].type; /* a vector times a row_vector elementwise */
        args[0].sh = lower_node_len(l, args[0].node) == 1 ? args[0].sh : args[1].sh;
        value prod = elementwise(l, AF_OP_MUL, args, 2, args[1].type, e->span);
        return make_value(sum_of(l, prod.node, e->span), e->type, SCALAR_SHAPE);
    }
    default:
        return size_builtin(l, e);
    }
}

static value lower_call(lowerer *l, const ast_expr *e)
{
    if (e->builtin != BUILTIN_NONE)
        return lower_builtin(l, e);
    value *args = arena_alloc(&l->ctx->arena, (e->nargs ? e->nargs : 1) * sizeof *args);
    for (size_t k = 0; k < e->nargs; k++)
        args[k] = lower_expr(l, e->args[k]);
    if (e->function != NULL)
        return lower_user_call(l, e, args);
    if (af_op_kind_of(e->op) == AF_KIND_MAP)
        return elementwise(l, e->op, args, e->nargs, e->type, e->span);
    size_t *nodes = arena_alloc(&l->ctx->arena, (e->nargs ? e->nargs : 1) * sizeof *nodes);
    size_t len = 1;
    for (size_t k = 0; k < e->nargs; k++) {
        nodes[k] = args[k].node;
        size_t n = lower_node_len(l, nodes[k]);
        if (af_op_kind_of(e->op) != AF_KIND_FOLD || n == 1)
            continue;
        if (len != 1 && n != len)
            lower_fail(l, e->span, NULL, "the arguments of '%s' differ in length: %zu and %zu",
                       e->name, len, n);
        len = n;
    }
    return make_value(lower_emit(l, e->op, nodes, e->nargs, 1, 0, e->span), e->type,
                      SCALAR_SHAPE);
}

static value lower_var(lowerer *l, const ast_expr *e)
{
    if (e->decl->origin == ORIGIN_LEVEL) {
        if (l->level_node == AF_GRAPH_NONE)
            l->level_node = lower_checked(l, af_graph_level(l->ctx->graph), e->span);
        return make_value(l->level_node, e->type, SCALAR_SHAPE);
    }
    var_value *v = &l->vars[e->decl->slot];
    return make_value(lower_var_whole(l, v, e->span), v->type, v->sh);
}

value lower_expr(lowerer *l, const ast_expr *e)
{
    lower_count_steps(l, 1, e->span);
    switch (e->kind) {
    case EXPR_INT:
        return scalar_value(l, (double)e->int_value, e->type, e->span);
    case EXPR_REAL:
        return scalar_value(l, e->real_value, e->type, e->span);
    case EXPR_VAR:
        return lower_var(l, e);
    case EXPR_INDEX:
        return lower_index(l, e);
    case EXPR_CALL:
        return lower_call(l, e);
    case EXPR_UNARY:
        return lower_unary(l, e);
    case EXPR_BINARY:
        return lower_binary(l, e);
    case EXPR_TERNARY:
        return lower_ternary(l, e);
    case EXPR_ROW_LITERAL:
        return row_literal(l, e);
    case EXPR_ARRAY_LITERAL:
        return array_literal(l, e);
    case EXPR_STRING:
    case EXPR_RANGE:
        break;
    }
    lower_fail(l, e->span, NULL, "this expression cannot be evaluated here");
}
