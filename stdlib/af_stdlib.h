/* af_stdlib: the built-in operations of afm. One op list (AF_OP_LIST) gives
 * the enum, the names the language calls, the argument rules and the kernel
 * dispatch. Each kernel computes values and forward-mode tangents for a chunk
 * of points. Knows nothing of the parser, the graph or flows. */
#ifndef AF_STDLIB_H
#define AF_STDLIB_H

#include <stddef.h>

/* How an op maps its arguments to its result:
 * LEAF   no kernel: constants and parameter slices, filled by the caller.
 * MAP    elementwise over the arguments broadcast to one length (a scalar
 *        argument repeats); the result has that length.
 * FOLD   the same pointwise rule, summed over the elements to one scalar.
 * SPECIAL its own kernel (indexing, concatenation, stable reductions). */
typedef enum { AF_KIND_LEAF, AF_KIND_MAP, AF_KIND_FOLD, AF_KIND_SPECIAL } af_op_kind;

/* Result type of a MAP op applied to int arguments: INT_IF_INT keeps int
 * (k - 1 is int), INT always gives int (comparisons), REAL always real. */
typedef enum { AF_RESULT_REAL, AF_RESULT_INT, AF_RESULT_INT_IF_INT } af_result_type;

/* X(ID, name, kind, arity, result type, callable). Name is what a model
 * writes: a function name when CALLABLE is 1, an operator otherwise. ARITY
 * -1 means any number of arguments. Two ops may share a name when their
 * arities differ (log_sum_exp of a vector, log_sum_exp of two reals). */
#define AF_OP_LIST(X)                                                                    \
    X(CONST, "constant", AF_KIND_LEAF, 0, AF_RESULT_REAL, 0)                             \
    X(PARAM, "parameter", AF_KIND_LEAF, 0, AF_RESULT_REAL, 0)                            \
    X(NEG, "-", AF_KIND_MAP, 1, AF_RESULT_INT_IF_INT, 0)                                 \
    X(ADD, "+", AF_KIND_MAP, 2, AF_RESULT_INT_IF_INT, 0)                                 \
    X(SUB, "-", AF_KIND_MAP, 2, AF_RESULT_INT_IF_INT, 0)                                 \
    X(MUL, "*", AF_KIND_MAP, 2, AF_RESULT_INT_IF_INT, 0)                                 \
    X(DIV, "/", AF_KIND_MAP, 2, AF_RESULT_REAL, 0)                                       \
    X(IDIV, "%/%", AF_KIND_MAP, 2, AF_RESULT_INT, 0)                                     \
    X(LT, "<", AF_KIND_MAP, 2, AF_RESULT_INT, 0)                                         \
    X(LE, "<=", AF_KIND_MAP, 2, AF_RESULT_INT, 0)                                        \
    X(GT, ">", AF_KIND_MAP, 2, AF_RESULT_INT, 0)                                         \
    X(GE, ">=", AF_KIND_MAP, 2, AF_RESULT_INT, 0)                                        \
    X(EQ, "==", AF_KIND_MAP, 2, AF_RESULT_INT, 0)                                        \
    X(NE, "!=", AF_KIND_MAP, 2, AF_RESULT_INT, 0)                                        \
    X(EXP, "exp", AF_KIND_MAP, 1, AF_RESULT_REAL, 1)                                     \
    X(LOG, "log", AF_KIND_MAP, 1, AF_RESULT_REAL, 1)                                     \
    X(LOG1P, "log1p", AF_KIND_MAP, 1, AF_RESULT_REAL, 1)                                 \
    X(EXPM1, "expm1", AF_KIND_MAP, 1, AF_RESULT_REAL, 1)                                 \
    X(SQRT, "sqrt", AF_KIND_MAP, 1, AF_RESULT_REAL, 1)                                   \
    X(FABS, "fabs", AF_KIND_MAP, 1, AF_RESULT_REAL, 1)                                   \
    X(SIN, "sin", AF_KIND_MAP, 1, AF_RESULT_REAL, 1)                                     \
    X(COS, "cos", AF_KIND_MAP, 1, AF_RESULT_REAL, 1)                                     \
    X(LOG1P_EXP, "log1p_exp", AF_KIND_MAP, 1, AF_RESULT_REAL, 1)                         \
    X(LOG_SUM_EXP2, "log_sum_exp", AF_KIND_MAP, 2, AF_RESULT_REAL, 1)                    \
    X(SUM, "sum", AF_KIND_FOLD, 1, AF_RESULT_REAL, 1)                                    \
    X(DOT_SELF, "dot_self", AF_KIND_FOLD, 1, AF_RESULT_REAL, 1)                          \
    X(NORMAL_LPDF, "normal_lpdf", AF_KIND_FOLD, 3, AF_RESULT_REAL, 1)                    \
    X(STD_NORMAL_LPDF, "std_normal_lpdf", AF_KIND_FOLD, 1, AF_RESULT_REAL, 1)            \
    X(LOG_SUM_EXP, "log_sum_exp", AF_KIND_SPECIAL, 1, AF_RESULT_REAL, 1)                 \
    X(NORM2, "norm2", AF_KIND_SPECIAL, 1, AF_RESULT_REAL, 1)                             \
    X(INDEX, "[]", AF_KIND_SPECIAL, 1, AF_RESULT_REAL, 0)                                \
    X(CONCAT, "concat", AF_KIND_SPECIAL, -1, AF_RESULT_REAL, 0)

#define AF_OP_ENUM(id, name, kind, arity, result, callable) AF_OP_##id,
typedef enum { AF_OP_LIST(AF_OP_ENUM) AF_OP_COUNT } af_op;
#undef AF_OP_ENUM

/* Largest arity of a MAP or FOLD op: kernels keep that many partials. */
#define AF_OP_MAX_ARITY 4

/* One argument of a kernel call. Element e of point b is
 * value[e * estride + b * bstride]: a constant has estride 1 and bstride 0,
 * a computed node has estride equal to the chunk stride and bstride 1.
 * TANGENT is NULL for a constant; otherwise direction j of element e of
 * point b is tangent[(j * len + e) * stride + b]. */
typedef struct {
    const double *value;
    const double *tangent;
    size_t len;
    size_t estride;
    size_t bstride;
} af_operand;

/* One kernel call over COUNT points of a chunk laid out with STRIDE points
 * per element. Writes value[e * stride + b] and, when TANGENT is not NULL,
 * tangent[(j * len + e) * stride + b] for the DIM directions j. SCRATCH holds
 * af_op_scratch_len doubles. INDEX is the 0-based element of an INDEX op.
 * The multivariate ops infer their dimension K from the length K * K of
 * their matrix argument, so no shape field is needed for them. */
typedef struct {
    af_op op;
    size_t nargs;
    const af_operand *args;
    double *value;
    double *tangent;
    size_t len;
    size_t stride;
    size_t count;
    size_t dim;
    size_t index;
    double *scratch;
} af_op_call;

const char *af_op_name(af_op op);
af_op_kind af_op_kind_of(af_op op);
int af_op_arity(af_op op);
af_result_type af_op_result(af_op op);

/* Finds the callable op named NAME. Returns 0 and sets *OP when one takes
 * NARGS arguments; 1 when NAME exists with other arities (then *ARITY is
 * one of them); 2 when no callable op has that name. */
int af_op_find(const char *name, size_t nargs, af_op *op, int *arity);

/* Visits every callable name, for "did you mean" hints. */
const char *af_op_callable_name(size_t i);

/* Doubles of scratch a call needs, for arguments of at most MAX_LEN elements
 * and a chunk stride of STRIDE points: partials for every argument element
 * and point, and workspace for one point (a Cholesky factor) on top. The
 * result for STRIDE 1 times the chunk stride is also enough. */
size_t af_op_scratch_len(size_t max_len, size_t stride);

/* Runs the kernel of CALL->op (not a LEAF). */
void af_op_eval(const af_op_call *call);

#endif
