/* Types of expressions: variables, operators (with Stan's rules for
 * vectors and matrices), indexing, literals and calls of built-in ops, of
 * the shape functions that lowering implements and of user functions. */
#include "check_internal.h"

#include <string.h>

static const ast_type ERROR_TYPE = {TYPE_ERROR, 0};
static const ast_type INT_TYPE = {TYPE_INT, 0};
static const ast_type REAL_TYPE = {TYPE_REAL, 0};

static int is_scalar(ast_type t)
{
    return t.dims == 0 && (t.base == TYPE_INT || t.base == TYPE_REAL);
}

static int is_failed(ast_type t)
{
    return t.base == TYPE_ERROR;
}

static const char *text(ast_type t, char *buf)
{
    return ast_type_text(t, buf, 64);
}

/* ---- variables ---- */

static ast_type check_var(checker *c, ast_expr *e)
{
    e->decl = check_lookup(c, e->name);
    if (e->decl != NULL)
        return e->decl->type;
    if (strcmp(e->name, "annealing_level") == 0)
        diag_error(&c->ctx->diag, e->span, NULL,
                   "'annealing_level' can only be read in the model block");
    else
        diag_error(&c->ctx->diag, e->span, check_name_hint(c, e->name, 0, NULL),
                   "unknown identifier '%s'", e->name);
    return ERROR_TYPE;
}

/* ---- operators ---- */

static ast_type product_type(checker *c, ast_type l, ast_type r, af_span span)
{
    char a[64], b[64];
    if (is_scalar(l))
        return r;
    if (is_scalar(r))
        return l;
    if (l.dims == 0 && r.dims == 0) {
        if (l.base == TYPE_ROW_VECTOR && r.base == TYPE_VECTOR)
            return REAL_TYPE;
        if (l.base == TYPE_VECTOR && r.base == TYPE_ROW_VECTOR)
            return (ast_type){TYPE_MATRIX, 0};
        if (l.base == TYPE_MATRIX && r.base == TYPE_VECTOR)
            return r;
        if (l.base == TYPE_ROW_VECTOR && r.base == TYPE_MATRIX)
            return l;
        if (l.base == TYPE_MATRIX && r.base == TYPE_MATRIX)
            return l;
    }
    diag_error(&c->ctx->diag, span, "for the elementwise product write 'a .* b'",
               "'*' is not defined for %s and %s", text(l, a), text(r, b));
    return ERROR_TYPE;
}

/* Elementwise operators: equal types, or a scalar with anything. */
static ast_type elementwise_type(checker *c, const char *op, ast_type l, ast_type r,
                                 af_span span, int int_result)
{
    char a[64], b[64];
    if (is_scalar(l) && is_scalar(r))
        return (int_result && l.base == TYPE_INT && r.base == TYPE_INT) ? INT_TYPE : REAL_TYPE;
    if (l.dims > 0 || r.dims > 0) {
        diag_error(&c->ctx->diag, span, "use a vector, or loop over the array",
                   "'%s' is not defined for arrays (%s and %s)", op, text(l, a), text(r, b));
        return ERROR_TYPE;
    }
    if (is_scalar(l))
        return r;
    if (is_scalar(r) || l.base == r.base)
        return l;
    diag_error(&c->ctx->diag, span, NULL, "'%s' is not defined between %s and %s", op,
               text(l, a), text(r, b));
    return ERROR_TYPE;
}

static ast_type int_only(checker *c, const char *op, ast_type l, ast_type r, af_span span)
{
    char a[64], b[64];
    if (l.dims == 0 && r.dims == 0 && l.base == TYPE_INT && r.base == TYPE_INT)
        return INT_TYPE;
    diag_error(&c->ctx->diag, span, NULL, "'%s' takes two ints, found %s and %s", op,
               text(l, a), text(r, b));
    return ERROR_TYPE;
}

static ast_type scalar_only(checker *c, const char *op, ast_type l, ast_type r, af_span span)
{
    char a[64], b[64];
    if (is_scalar(l) && is_scalar(r))
        return INT_TYPE;
    diag_error(&c->ctx->diag, span, NULL, "'%s' compares int or real values, not %s and %s",
               op, text(l, a), text(r, b));
    return ERROR_TYPE;
}

ast_type check_operator_type(checker *c, ast_operator oper, ast_type l, ast_type r,
                             af_span span)
{
    static const char *const names[] = {"+",  "-",  "*",  "/",  ".*", "./", "^",
                                        ".^", "%",  "%/%", "<", "<=", ">",  ">=",
                                        "==", "!=", "&&", "||", "-",  "!",  "'"};
    const char *op = names[oper];
    switch (oper) {
    case OPER_ADD:
    case OPER_SUB:
        return elementwise_type(c, op, l, r, span, 1);
    case OPER_MUL:
        if (is_scalar(l) && is_scalar(r))
            return elementwise_type(c, op, l, r, span, 1);
        return product_type(c, l, r, span);
    case OPER_DIV:
        if (is_scalar(l) && is_scalar(r))
            return elementwise_type(c, op, l, r, span, 1);
        if (is_scalar(r) || is_scalar(l))
            return elementwise_type(c, op, l, r, span, 0);
        diag_error(&c->ctx->diag, span, "for the elementwise quotient write 'a ./ b'",
                   "'/' is not defined between %s and %s", text(l, (char[64]){0}),
                   text(r, (char[64]){0}));
        return ERROR_TYPE;
    case OPER_ELT_MUL:
    case OPER_ELT_DIV:
    case OPER_POW:
    case OPER_ELT_POW:
        return elementwise_type(c, op, l, r, span, 0);
    case OPER_MOD:
    case OPER_INT_DIV:
        return int_only(c, op, l, r, span);
    default:
        return scalar_only(c, op, l, r, span);
    }
}

static ast_type check_unary(checker *c, ast_expr *e)
{
    ast_type t = check_expr(c, e->args[0]);
    if (is_failed(t))
        return t;
    if (e->oper == OPER_NEG && t.dims == 0)
        return t;
    if (e->oper == OPER_NOT && is_scalar(t))
        return INT_TYPE;
    if (e->oper == OPER_TRANSPOSE && t.dims == 0) {
        if (t.base == TYPE_VECTOR)
            return (ast_type){TYPE_ROW_VECTOR, 0};
        if (t.base == TYPE_ROW_VECTOR)
            return (ast_type){TYPE_VECTOR, 0};
        if (t.base == TYPE_MATRIX)
            return t;
    }
    diag_error(&c->ctx->diag, e->span, NULL, "%s is not defined for %s",
               e->oper == OPER_NEG   ? "negation (-)"
               : e->oper == OPER_NOT ? "logical not (!)"
                                     : "transposition (')",
               text(t, (char[64]){0}));
    return ERROR_TYPE;
}

static ast_type check_binary(checker *c, ast_expr *e)
{
    ast_type l = check_expr(c, e->args[0]);
    ast_type r = check_expr(c, e->args[1]);
    if (is_failed(l) || is_failed(r))
        return ERROR_TYPE;
    return check_operator_type(c, e->oper, l, r, e->span);
}

static ast_type check_ternary(checker *c, ast_expr *e)
{
    ast_type cond = check_expr(c, e->args[0]);
    ast_type a = check_expr(c, e->args[1]);
    ast_type b = check_expr(c, e->args[2]);
    if (is_failed(cond) || is_failed(a) || is_failed(b))
        return ERROR_TYPE;
    if (!is_scalar(cond)) {
        diag_error(&c->ctx->diag, e->args[0]->span, NULL,
                   "the condition of '?:' must be int or real, found %s", text(cond, (char[64]){0}));
        return ERROR_TYPE;
    }
    if (check_assignable(a, b) && !(a.base == TYPE_INT && b.base == TYPE_REAL))
        return a;
    if (check_assignable(b, a))
        return b;
    diag_error(&c->ctx->diag, e->span, NULL, "the branches of '?:' differ: %s and %s",
               text(a, (char[64]){0}), text(b, (char[64]){0}));
    return ERROR_TYPE;
}

/* ---- indexing ---- */

/* Returns 1 for a multi-index (a range or an int array), 0 for a single
 * int, -1 after an error. */
static int check_one_index(checker *c, ast_expr *index)
{
    if (index->kind == EXPR_RANGE) {
        for (size_t k = 0; k < 2; k++) {
            if (index->args[k] == NULL)
                continue;
            ast_type t = check_expr(c, index->args[k]);
            if (!is_failed(t) && !(t.base == TYPE_INT && t.dims == 0)) {
                diag_error(&c->ctx->diag, index->args[k]->span, NULL,
                           "a range bound must be int, found %s", text(t, (char[64]){0}));
                return -1;
            }
        }
        return 1;
    }
    ast_type t = check_expr(c, index);
    if (is_failed(t))
        return -1;
    if (t.base == TYPE_INT && t.dims <= 1)
        return t.dims;
    diag_error(&c->ctx->diag, index->span, NULL, "an index must be int, found %s",
               text(t, (char[64]){0}));
    return -1;
}

/* Type left after indexing BASE (no array dimensions) by MULTI flags. */
static ast_type index_element(ast_base base, const int *multi, size_t n)
{
    if (n == 0)
        return (ast_type){base, 0};
    if (base == TYPE_VECTOR || base == TYPE_ROW_VECTOR)
        return n == 1 ? (ast_type){multi[0] ? base : TYPE_REAL, 0} : ERROR_TYPE;
    if (base != TYPE_MATRIX || n > 2)
        return ERROR_TYPE;
    if (n == 1)
        return (ast_type){multi[0] ? TYPE_MATRIX : TYPE_ROW_VECTOR, 0};
    if (multi[0] && multi[1])
        return (ast_type){TYPE_MATRIX, 0};
    if (multi[0])
        return (ast_type){TYPE_VECTOR, 0};
    return (ast_type){multi[1] ? TYPE_ROW_VECTOR : TYPE_REAL, 0};
}

static ast_type check_index(checker *c, ast_expr *e)
{
    ast_type base = check_expr(c, e->args[0]);
    size_t n = e->nargs - 1;
    int multi[AF_MAX_ARRAY_DIMS + 2];
    int failed = is_failed(base);
    if (n > AF_MAX_ARRAY_DIMS + 2)
        n = AF_MAX_ARRAY_DIMS + 2;
    for (size_t k = 0; k < n; k++) {
        multi[k] = check_one_index(c, e->args[k + 1]);
        failed |= multi[k] < 0;
    }
    if (failed)
        return ERROR_TYPE;
    size_t array_part = n < (size_t)base.dims ? n : (size_t)base.dims;
    int dims = base.dims - (int)array_part;
    for (size_t k = 0; k < array_part; k++)
        dims += multi[k];
    ast_type element = index_element(base.base, multi + array_part, n - array_part);
    if (is_failed(element)) {
        diag_error(&c->ctx->diag, e->span, NULL, "too many indices (%zu) for %s", e->nargs - 1,
                   text(base, (char[64]){0}));
        return ERROR_TYPE;
    }
    return (ast_type){element.base, dims};
}

/* ---- literals ---- */

/* The type of an array of ELEMENT, or an error past AF_MAX_ARRAY_DIMS,
 * because lowering keeps shapes in fixed arrays of that rank. */
static ast_type add_array_dim(checker *c, ast_type element, af_span span)
{
    if (element.dims >= AF_MAX_ARRAY_DIMS) {
        diag_error(&c->ctx->diag, span, NULL, "too many array dimensions (limit is %d)",
                   AF_MAX_ARRAY_DIMS);
        return ERROR_TYPE;
    }
    return (ast_type){element.base, element.dims + 1};
}

static ast_type check_row_literal(checker *c, ast_expr *e)
{
    int scalars = 1, rows = 1;
    for (size_t k = 0; k < e->nargs; k++) {
        ast_type t = check_expr(c, e->args[k]);
        if (is_failed(t))
            return ERROR_TYPE;
        scalars &= is_scalar(t);
        rows &= t.dims == 0 && t.base == TYPE_ROW_VECTOR;
    }
    if (scalars)
        return (ast_type){TYPE_ROW_VECTOR, 0};
    if (rows)
        return (ast_type){TYPE_MATRIX, 0};
    diag_error(&c->ctx->diag, e->span, "write [a, b] for a row_vector, [[a, b], [c, d]] for a matrix",
               "the elements of '[...]' must be all scalars or all row_vectors");
    return ERROR_TYPE;
}

static ast_type check_array_literal(checker *c, ast_expr *e)
{
    ast_type element = check_expr(c, e->args[0]);
    for (size_t k = 1; k < e->nargs; k++) {
        ast_type t = check_expr(c, e->args[k]);
        if (is_failed(t) || is_failed(element))
            return ERROR_TYPE;
        if (check_assignable(element, t))
            continue;
        if (check_assignable(t, element)) {
            element = t;
            continue;
        }
        diag_error(&c->ctx->diag, e->args[k]->span, NULL,
                   "the elements of '{...}' differ: %s and %s", text(element, (char[64]){0}),
                   text(t, (char[64]){0}));
        return ERROR_TYPE;
    }
    if (is_failed(element))
        return ERROR_TYPE;
    return add_array_dim(c, element, e->span);
}

/* ---- calls ---- */

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int is_density(const char *name)
{
    return ends_with(name, "_lpdf") || ends_with(name, "_lpmf") || ends_with(name, "_lcdf") ||
           ends_with(name, "_lccdf");
}

/* Checks the '|' of a density call: normal_lpdf(y | mu, sigma). */
static int check_bar(checker *c, ast_expr *e)
{
    int density = is_density(e->name);
    if (density && e->nargs >= 2 && !e->bar) {
        diag_error(&c->ctx->diag, e->span, "write it as f(y | parameters)",
                   "the first argument of '%s' must be followed by '|'", e->name);
        return -1;
    }
    if (!density && e->bar) {
        diag_error(&c->ctx->diag, e->span, NULL,
                   "'|' separates the arguments of _lpdf and _lpmf functions only, not of '%s'",
                   e->name);
        return -1;
    }
    return 0;
}

typedef struct {
    const char *name;
    int nargs;
    ast_builtin id;
} builtin_entry;

static const builtin_entry builtins[] = {
    {"pi", 0, BUILTIN_PI},
    {"e", 0, BUILTIN_E},
    {"not_a_number", 0, BUILTIN_NOT_A_NUMBER},
    {"positive_infinity", 0, BUILTIN_POSITIVE_INFINITY},
    {"negative_infinity", 0, BUILTIN_NEGATIVE_INFINITY},
    {"size", 1, BUILTIN_SIZE},
    {"num_elements", 1, BUILTIN_NUM_ELEMENTS},
    {"rows", 1, BUILTIN_ROWS},
    {"cols", 1, BUILTIN_COLS},
    {"rep_vector", 2, BUILTIN_REP_VECTOR},
    {"rep_row_vector", 2, BUILTIN_REP_ROW_VECTOR},
    {"rep_matrix", 3, BUILTIN_REP_MATRIX},
    {"rep_array", 2, BUILTIN_REP_ARRAY},
    {"to_vector", 1, BUILTIN_TO_VECTOR},
    {"to_row_vector", 1, BUILTIN_TO_ROW_VECTOR},
    {"dot_product", 2, BUILTIN_DOT_PRODUCT},
};

const char *check_structural_name(size_t i)
{
    return i < sizeof builtins / sizeof builtins[0] ? builtins[i].name : NULL;
}

static ast_type builtin_type(checker *c, ast_expr *e, const ast_type *args)
{
    switch ((ast_builtin)e->builtin) {
    case BUILTIN_SIZE:
    case BUILTIN_NUM_ELEMENTS:
    case BUILTIN_ROWS:
    case BUILTIN_COLS:
        return INT_TYPE;
    case BUILTIN_REP_VECTOR:
    case BUILTIN_TO_VECTOR:
        return (ast_type){TYPE_VECTOR, 0};
    case BUILTIN_REP_ROW_VECTOR:
    case BUILTIN_TO_ROW_VECTOR:
        return (ast_type){TYPE_ROW_VECTOR, 0};
    case BUILTIN_REP_MATRIX:
        return (ast_type){TYPE_MATRIX, 0};
    case BUILTIN_REP_ARRAY:
        return add_array_dim(c, args[0], e->span);
    default:
        (void)c;
        return REAL_TYPE;
    }
}

/* Checks the argument of to_vector and to_row_vector: as in Stan, a
 * vector, row_vector, matrix (taken column-major) or 1-D array of int or
 * real. Lowering reuses the argument's flat storage, which already has
 * this order. */
static int check_flatten_arg(checker *c, ast_expr *e, ast_type arg)
{
    int container = arg.dims == 0 && (arg.base == TYPE_VECTOR || arg.base == TYPE_ROW_VECTOR ||
                                      arg.base == TYPE_MATRIX);
    int array = arg.dims == 1 && (arg.base == TYPE_INT || arg.base == TYPE_REAL);
    if (container || array)
        return 0;
    diag_error(&c->ctx->diag, e->args[0]->span, NULL,
               "'%s' takes a vector, row_vector, matrix or 1-D array of int or real, found %s",
               e->name, text(arg, (char[64]){0}));
    return -1;
}

/* Checks that every size argument of a rep_ function is int and that a
 * rep_ function other than rep_array repeats a scalar. */
static int check_builtin_args(checker *c, ast_expr *e, const ast_type *args)
{
    if (e->builtin == BUILTIN_TO_VECTOR || e->builtin == BUILTIN_TO_ROW_VECTOR)
        return check_flatten_arg(c, e, args[0]);
    size_t first_size = e->builtin == BUILTIN_REP_VECTOR || e->builtin == BUILTIN_REP_ROW_VECTOR ||
                                e->builtin == BUILTIN_REP_MATRIX || e->builtin == BUILTIN_REP_ARRAY
                            ? 1
                            : e->nargs;
    for (size_t k = first_size; k < e->nargs; k++)
        if (!(args[k].base == TYPE_INT && args[k].dims == 0)) {
            diag_error(&c->ctx->diag, e->args[k]->span, NULL, "a size must be int, found %s",
                       text(args[k], (char[64]){0}));
            return -1;
        }
    if (first_size == 1 && e->builtin != BUILTIN_REP_ARRAY && !is_scalar(args[0])) {
        diag_error(&c->ctx->diag, e->args[0]->span, NULL, "'%s' repeats a scalar, found %s",
                   e->name, text(args[0], (char[64]){0}));
        return -1;
    }
    return 0;
}

static int find_builtin(checker *c, ast_expr *e)
{
    for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++) {
        if (strcmp(builtins[i].name, e->name) != 0)
            continue;
        if ((size_t)builtins[i].nargs != e->nargs) {
            diag_error(&c->ctx->diag, e->span, NULL, "'%s' takes %d argument%s, found %zu",
                       e->name, builtins[i].nargs, builtins[i].nargs == 1 ? "" : "s", e->nargs);
            return -1;
        }
        e->builtin = (int)builtins[i].id;
        return 1;
    }
    return 0;
}

/* Result type of a built-in op: elementwise ops keep the shape of their
 * container argument. */
static ast_type op_type(checker *c, ast_expr *e, const ast_type *args)
{
    ast_type shape = INT_TYPE;
    for (size_t k = 0; k < e->nargs; k++) {
        if (is_scalar(args[k])) {
            if (args[k].base == TYPE_REAL)
                shape = shape.base == TYPE_INT && shape.dims == 0 ? REAL_TYPE : shape;
            continue;
        }
        if (!is_scalar(shape) && !ast_type_equal(shape, args[k]) &&
            af_op_kind_of(e->op) == AF_KIND_MAP) {
            diag_error(&c->ctx->diag, e->span, NULL, "the arguments of '%s' differ in type: %s and %s",
                       e->name, text(shape, (char[64]){0}), text(args[k], (char[64]){0}));
            return ERROR_TYPE;
        }
        shape = args[k];
    }
    if (af_op_kind_of(e->op) != AF_KIND_MAP)
        return REAL_TYPE;
    af_result_type result = af_op_result(e->op);
    if (shape.base == TYPE_INT && result == AF_RESULT_REAL)
        shape.base = TYPE_REAL;
    if (result == AF_RESULT_INT && is_scalar(shape))
        shape.base = TYPE_INT;
    return shape;
}

static ast_type user_call_type(checker *c, ast_expr *e, ast_function *f, const ast_type *args)
{
    if (e->nargs != f->nparams) {
        diag_error(&c->ctx->diag, e->span, NULL, "'%s' takes %zu argument%s, found %zu", e->name,
                   f->nparams, f->nparams == 1 ? "" : "s", e->nargs);
        return ERROR_TYPE;
    }
    size_t k = 0;
    for (ast_decl *p = f->params; p != NULL; p = p->next, k++) {
        if (check_assignable(p->type, args[k]))
            continue;
        diag_error(&c->ctx->diag, e->args[k]->span, NULL,
                   "argument %zu of '%s' must be %s, found %s", k + 1, e->name,
                   text(p->type, (char[64]){0}), text(args[k], (char[64]){0}));
        return ERROR_TYPE;
    }
    e->function = f;
    return f->result;
}

static ast_type resolve_call(checker *c, ast_expr *e, const ast_type *args)
{
    ast_function *f = check_find_function(c, e->name);
    if (f != NULL)
        return user_call_type(c, e, f, args);
    int builtin = find_builtin(c, e);
    if (builtin < 0)
        return ERROR_TYPE;
    if (builtin > 0)
        return check_builtin_args(c, e, args) == 0 ? builtin_type(c, e, args) : ERROR_TYPE;
    int arity = 0;
    int found = af_op_find(e->name, e->nargs, &e->op, &arity);
    if (found == 2) {
        const char *hint = ends_with(e->name, "_rng")
                               ? "random number generators are not supported yet"
                               : check_name_hint(c, e->name, 1, NULL);
        diag_error(&c->ctx->diag, e->name_span, hint, "unknown function '%s'", e->name);
        return ERROR_TYPE;
    }
    if (found == 1) {
        diag_error(&c->ctx->diag, e->span, NULL, "'%s' takes %d argument%s, found %zu", e->name,
                   arity, arity == 1 ? "" : "s", e->nargs);
        return ERROR_TYPE;
    }
    return op_type(c, e, args);
}

static ast_type check_call(checker *c, ast_expr *e)
{
    ast_type args[AF_MAX_ARGS];
    int failed = 0;
    if (e->nargs > AF_MAX_ARGS) {
        diag_error(&c->ctx->diag, e->span, NULL, "too many arguments (limit is %d)", AF_MAX_ARGS);
        return ERROR_TYPE;
    }
    for (size_t k = 0; k < e->nargs; k++) {
        args[k] = check_expr(c, e->args[k]);
        failed |= is_failed(args[k]);
    }
    if (failed || check_bar(c, e) != 0)
        return ERROR_TYPE;
    return resolve_call(c, e, args);
}

/* y ~ dist(args) adds dist_lpdf(y | args) (or _lpmf): the call is resolved
 * under that name with Y as its first argument. */
void check_tilde(checker *c, ast_stmt *s)
{
    ast_expr *call = s->rhs;
    size_t len = strlen(call->name) + sizeof "_lpdf";
    char *pdf = arena_alloc(&c->ctx->arena, len);
    char *pmf = arena_alloc(&c->ctx->arena, len);
    snprintf(pdf, len, "%s_lpdf", call->name);
    snprintf(pmf, len, "%s_lpmf", call->name);
    af_op op;
    int arity = 0;
    const char *name = NULL;
    if (check_find_function(c, pdf) != NULL || af_op_find(pdf, call->nargs + 1, &op, &arity) != 2)
        name = pdf;
    else if (check_find_function(c, pmf) != NULL ||
             af_op_find(pmf, call->nargs + 1, &op, &arity) != 2)
        name = pmf;
    if (name == NULL) {
        check_expr(c, s->lhs);
        for (size_t k = 0; k < call->nargs; k++)
            check_expr(c, call->args[k]);
        diag_error(&c->ctx->diag, call->name_span, check_name_hint(c, call->name, 1, "_lpdf"),
                   "unknown distribution '%s'", call->name);
        return;
    }
    if (check_find_function(c, name) == NULL &&
        af_op_find(name, call->nargs + 1, &op, &arity) == 1) {
        check_expr(c, s->lhs);
        for (size_t k = 0; k < call->nargs; k++)
            check_expr(c, call->args[k]);
        diag_error(&c->ctx->diag, call->span, NULL, "'%s' takes %d argument%s, found %zu",
                   call->name, arity - 1, arity - 1 == 1 ? "" : "s", call->nargs);
        return;
    }
    ast_expr **args = arena_alloc(&c->ctx->arena, (call->nargs + 1) * sizeof *args);
    args[0] = s->lhs;
    memcpy(args + 1, call->args, call->nargs * sizeof *args);
    call->name = name;
    call->args = args;
    call->nargs++;
    call->bar = 1;
    check_expr(c, call);
}

/* ---- dispatch ---- */

static ast_type check_expr_kind(checker *c, ast_expr *e)
{
    switch (e->kind) {
    case EXPR_INT:
        return INT_TYPE;
    case EXPR_REAL:
        return REAL_TYPE;
    case EXPR_STRING:
        diag_error(&c->ctx->diag, e->span, NULL, "a string can only be printed");
        return ERROR_TYPE;
    case EXPR_VAR:
        return check_var(c, e);
    case EXPR_UNARY:
        return check_unary(c, e);
    case EXPR_BINARY:
        return check_binary(c, e);
    case EXPR_TERNARY:
        return check_ternary(c, e);
    case EXPR_CALL:
        return check_call(c, e);
    case EXPR_INDEX:
        return check_index(c, e);
    case EXPR_RANGE:
        diag_error(&c->ctx->diag, e->span, NULL, "a range a:b can only be an index");
        return ERROR_TYPE;
    case EXPR_ROW_LITERAL:
        return check_row_literal(c, e);
    case EXPR_ARRAY_LITERAL:
        return check_array_literal(c, e);
    }
    return ERROR_TYPE;
}

ast_type check_expr(checker *c, ast_expr *e)
{
    if (c->depth >= AF_MAX_DEPTH) {
        if (!c->depth_reported)
            diag_error(&c->ctx->diag, e->span, NULL, "too many nested expressions (limit is %d)",
                       AF_MAX_DEPTH);
        c->depth_reported = 1;
        return e->type = ERROR_TYPE;
    }
    c->depth++;
    e->type = check_expr_kind(c, e);
    c->depth--;
    return e->type;
}
