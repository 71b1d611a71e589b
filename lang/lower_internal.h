/* The lowering pass's state and the helpers shared by its files: lower.c
 * (driver, declarations, statements), lower_expr.c (expressions, indexing,
 * matrix products) and lower_transform.c (constraints of parameters and
 * checks of data). Private to lang/. */
#ifndef AF_LOWER_INTERNAL_H
#define AF_LOWER_INTERNAL_H

#include "effect.h"
#include "lang_internal.h"

#define AF_MAX_RANK (AF_MAX_ARRAY_DIMS + 2)

/* Sizes of every dimension: the array dimensions, then one for a vector or
 * row_vector, two (rows, cols) for a matrix. */
typedef struct {
    size_t rank;
    size_t dims[AF_MAX_RANK];
} shape;

/* A lowered expression: a graph node holding all elements (arrays
 * row-major, each matrix column-major) with its type and shape. */
typedef struct {
    size_t node;
    ast_type type;
    shape sh;
} value;

/* The current value of a variable: a node for the whole value and, for one
 * whose elements were assigned one by one, a node per element. Either may
 * be missing; the other is then rebuilt on demand. */
typedef struct {
    size_t whole;
    size_t *elems;
    ast_type type;
    shape sh;
    size_t len;
} var_value;

typedef enum { JUMP_NONE, JUMP_BREAK, JUMP_CONTINUE, JUMP_RETURN } jump_kind;

typedef struct {
    lang_context *ctx;
    ast_program *program;
    var_value *vars; /* by ast_decl slot */
    size_t target;
    const char *data_path;
    size_t dim;
    size_t unrolled;
    size_t steps; /* counted against AF_MAX_LOWER_STEPS */
    size_t inline_depth;
    size_t inlined_calls;
    /* Set when lowering a branch of an if whose condition depends on
     * parameters: jumps there cannot be resolved while lowering. */
    size_t parameter_branches;
    jump_kind jump;
    value returned;
    /* The block being lowered: ORIGIN_TDATA, ORIGIN_PARAM (parameters),
     * ORIGIN_TPARAM, ORIGIN_LOCAL (the model block) or ORIGIN_GQ. */
    ast_origin block;
    size_t level_node;
    size_t *outputs; /* output column nodes in CSV order */
    size_t output_count, output_cap;
    size_t *bounds; /* per parameter element: lower, upper, offset, multiplier nodes */
    size_t bounds_count, bounds_cap;
    effect_text printed; /* output of the prints run while compiling */
    /* Whether the statement being lowered runs: AF_GRAPH_NONE for always,
     * else a node that is non-zero where it runs (lower_effect.c). */
    size_t guard;
    /* Set when the program has a print or reject; else no guard is built. */
    int tracks_guard;
    struct lowered_effect *effects; /* prints and rejects kept for run time */
    size_t effect_count, effect_cap;
    jmp_buf fail;
} lowerer;

/* Reports an error at SPAN and abandons lowering. */
void lower_fail(lowerer *l, af_span span, const char *hint, const char *format, ...)
    __attribute__((format(printf, 4, 5), noreturn));

size_t lower_checked(lowerer *l, size_t id, af_span span);
/* Counts COST steps of lowering work at SPAN; fails past AF_MAX_LOWER_STEPS. */
void lower_count_steps(lowerer *l, size_t cost, af_span span);
size_t lower_constant(lowerer *l, const double *values, size_t len, af_span span);
size_t lower_scalar(lowerer *l, double v, af_span span);
size_t lower_emit(lowerer *l, af_op op, const size_t *args, size_t nargs, size_t len,
                  size_t index, af_span span);
size_t lower_node_len(const lowerer *l, size_t id);
/* Values of a node known before sampling, or NULL. */
const double *lower_known(const lowerer *l, size_t id);
double lower_known_value(lowerer *l, size_t id, af_span span, const char *what);

size_t shape_len(const shape *sh);
/* Writes "vector[3]", "array[2, 3] real", ... */
const char *shape_text(ast_type type, const shape *sh, char *out, size_t cap);

value lower_expr(lowerer *l, const ast_expr *e);
/* Node of element I (0-based, flat) of V. */
size_t lower_element(lowerer *l, value v, size_t i, af_span span);
/* A node of the elements of NODE at OFFSETS, in that order. */
size_t lower_gather(lowerer *l, size_t node, const size_t *offsets, size_t n, af_span span);

/* Flat offsets selected by the indices ARGS[0..N) of a value of TYPE and
 * SHAPE; sets *RESULT to the shape of the selection. Returns an arena array. */
size_t *lower_index_offsets(lowerer *l, ast_type type, const shape *sh, ast_expr *const *args,
                            size_t n, shape *result, size_t *count, af_span span);
/* Flat offsets of a value's elements in CSV order (column-major over all
 * dimensions). */
size_t *lower_csv_order(lowerer *l, ast_type type, const shape *sh);

size_t lower_var_whole(lowerer *l, var_value *v, af_span span);
size_t lower_var_element(lowerer *l, var_value *v, size_t i, af_span span);
void lower_var_write_element(lowerer *l, var_value *v, size_t i, size_t value, af_span span);

/* Applies the constraint of parameter D to the unconstrained node Z,
 * adds its log-Jacobian to the target and returns the constrained node. */
size_t lower_constrain(lowerer *l, ast_decl *d, size_t z, size_t len);
/* Length of the unconstrained vector of parameter D of LEN elements. */
size_t lower_unconstrained_len(lowerer *l, const ast_decl *d, size_t len);
/* Checks the bounds of data or transformed data D against its values. */
void lower_check_data_bounds(lowerer *l, const ast_decl *d, size_t node);
/* Adds -Inf to the target where transformed parameter D breaks a bound. */
void lower_check_tparam_bounds(lowerer *l, const ast_decl *d, size_t node);

void lower_stmt(lowerer *l, const ast_stmt *s);
void lower_declaration(lowerer *l, ast_decl *d);
/* Applies the binary operator of E to the lowered operands A and B. */
value lower_binary_values(lowerer *l, const ast_expr *e, value a, value b);
/* Lowers a call of an extern function with the lowered arguments ARGS. */
value lower_extern_call(lowerer *l, const ast_expr *e, const value *args);
/* Inlines a call of user function F with the lowered arguments ARGS. */
value lower_user_call(lowerer *l, const ast_expr *e, const value *args);

/* print and reject (lower_effect.c). */
int lower_program_has_effects(const ast_program *program);
void lower_print(lowerer *l, const ast_stmt *s);
void lower_reject(lowerer *l, const ast_stmt *s);
/* The guard of a branch of an if on parameters with condition COND: the
 * then branch (THEN_BRANCH = 1), which runs where COND is non-zero, or the
 * else branch (0), inside a statement whose guard is OUTER. */
size_t lower_guard_branch(lowerer *l, size_t outer, size_t cond, int then_branch, af_span span);
/* The guard after that if, whose branches ended with guards THEN_END and
 * ELSE_END. */
size_t lower_guard_merge(lowerer *l, size_t outer, size_t cond, size_t then_end,
                         size_t else_end, af_span span);
/* Builds the effects graph from the graph so far; NULL when there is no
 * effect. Call before the graph is finished. */
lang_effects *lower_effects_graph(lowerer *l);

#endif
