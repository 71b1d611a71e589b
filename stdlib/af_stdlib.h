/* af_stdlib: the built-in operations of afm. One op list (AF_OP_LIST) gives
 * the enum, the names the language calls, the argument rules and the kernel
 * dispatch. Each kernel computes values and forward-mode tangents for a chunk
 * of points. Knows nothing of the parser, the graph or flows. */
#ifndef AF_STDLIB_H
#define AF_STDLIB_H

#include <stddef.h>

/* How an op maps its arguments to its result:
 * LEAF   no kernel: the caller fills the values (constants, parameter
 *        slices, the annealing level, calls of extern C functions).
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
    X(STUDENT_T_LPDF, "student_t_lpdf", AF_KIND_FOLD, 4, AF_RESULT_REAL, 1)              \
    X(CAUCHY_LPDF, "cauchy_lpdf", AF_KIND_FOLD, 3, AF_RESULT_REAL, 1)                    \
    X(DOUBLE_EXPONENTIAL_LPDF, "double_exponential_lpdf", AF_KIND_FOLD, 3, AF_RESULT_REAL, 1) \
    X(LOGISTIC_LPDF, "logistic_lpdf", AF_KIND_FOLD, 3, AF_RESULT_REAL, 1)                \
    X(EXPONENTIAL_LPDF, "exponential_lpdf", AF_KIND_FOLD, 2, AF_RESULT_REAL, 1)          \
    X(GAMMA_LPDF, "gamma_lpdf", AF_KIND_FOLD, 3, AF_RESULT_REAL, 1)                      \
    X(INV_GAMMA_LPDF, "inv_gamma_lpdf", AF_KIND_FOLD, 3, AF_RESULT_REAL, 1)              \
    X(BETA_LPDF, "beta_lpdf", AF_KIND_FOLD, 3, AF_RESULT_REAL, 1)                        \
    X(LOGNORMAL_LPDF, "lognormal_lpdf", AF_KIND_FOLD, 3, AF_RESULT_REAL, 1)              \
    X(UNIFORM_LPDF, "uniform_lpdf", AF_KIND_FOLD, 3, AF_RESULT_REAL, 1)                  \
    X(NORMAL_LCDF, "normal_lcdf", AF_KIND_FOLD, 3, AF_RESULT_REAL, 1)                    \
    X(NORMAL_LCCDF, "normal_lccdf", AF_KIND_FOLD, 3, AF_RESULT_REAL, 1)                  \
    X(EXPONENTIAL_LCDF, "exponential_lcdf", AF_KIND_FOLD, 2, AF_RESULT_REAL, 1)          \
    X(EXPONENTIAL_LCCDF, "exponential_lccdf", AF_KIND_FOLD, 2, AF_RESULT_REAL, 1)        \
    X(BERNOULLI_LPMF, "bernoulli_lpmf", AF_KIND_FOLD, 2, AF_RESULT_REAL, 1)              \
    X(BERNOULLI_LOGIT_LPMF, "bernoulli_logit_lpmf", AF_KIND_FOLD, 2, AF_RESULT_REAL, 1)  \
    X(BINOMIAL_LPMF, "binomial_lpmf", AF_KIND_FOLD, 3, AF_RESULT_REAL, 1)                \
    X(BINOMIAL_LOGIT_LPMF, "binomial_logit_lpmf", AF_KIND_FOLD, 3, AF_RESULT_REAL, 1)    \
    X(POISSON_LPMF, "poisson_lpmf", AF_KIND_FOLD, 2, AF_RESULT_REAL, 1)                  \
    X(POISSON_LOG_LPMF, "poisson_log_lpmf", AF_KIND_FOLD, 2, AF_RESULT_REAL, 1)          \
    X(LOG_SUM_EXP, "log_sum_exp", AF_KIND_SPECIAL, 1, AF_RESULT_REAL, 1)                 \
    X(NORM2, "norm2", AF_KIND_SPECIAL, 1, AF_RESULT_REAL, 1)                             \
    X(INDEX, "[]", AF_KIND_SPECIAL, 1, AF_RESULT_REAL, 0)                                \
    X(CONCAT, "concat", AF_KIND_SPECIAL, -1, AF_RESULT_REAL, 0)                          \
    X(POW, "pow", AF_KIND_MAP, 2, AF_RESULT_REAL, 1)                                     \
    X(POW_OP, "^", AF_KIND_MAP, 2, AF_RESULT_REAL, 0)                                    \
    X(TAN, "tan", AF_KIND_MAP, 1, AF_RESULT_REAL, 1)                                     \
    X(ASIN, "asin", AF_KIND_MAP, 1, AF_RESULT_REAL, 1)                                   \
    X(ACOS, "acos", AF_KIND_MAP, 1, AF_RESULT_REAL, 1)                                   \
    X(ATAN, "atan", AF_KIND_MAP, 1, AF_RESULT_REAL, 1)                                   \
    X(ATAN2, "atan2", AF_KIND_MAP, 2, AF_RESULT_REAL, 1)                                 \
    X(SINH, "sinh", AF_KIND_MAP, 1, AF_RESULT_REAL, 1)                                   \
    X(COSH, "cosh", AF_KIND_MAP, 1, AF_RESULT_REAL, 1)                                   \
    X(TANH, "tanh", AF_KIND_MAP, 1, AF_RESULT_REAL, 1)                                   \
    X(ASINH, "asinh", AF_KIND_MAP, 1, AF_RESULT_REAL, 1)                                 \
    X(ACOSH, "acosh", AF_KIND_MAP, 1, AF_RESULT_REAL, 1)                                 \
    X(ATANH, "atanh", AF_KIND_MAP, 1, AF_RESULT_REAL, 1)                                 \
    X(SQUARE, "square", AF_KIND_MAP, 1, AF_RESULT_REAL, 1)                               \
    X(INV, "inv", AF_KIND_MAP, 1, AF_RESULT_REAL, 1)                                     \
    X(INV_SQRT, "inv_sqrt", AF_KIND_MAP, 1, AF_RESULT_REAL, 1)                           \
    X(INV_SQUARE, "inv_square", AF_KIND_MAP, 1, AF_RESULT_REAL, 1)                       \
    X(CBRT, "cbrt", AF_KIND_MAP, 1, AF_RESULT_REAL, 1)                                   \
    X(EXP2, "exp2", AF_KIND_MAP, 1, AF_RESULT_REAL, 1)                                   \
    X(LOG2, "log2", AF_KIND_MAP, 1, AF_RESULT_REAL, 1)                                   \
    X(LOG10, "log10", AF_KIND_MAP, 1, AF_RESULT_REAL, 1)                                 \
    X(FMIN, "fmin", AF_KIND_MAP, 2, AF_RESULT_REAL, 1)                                   \
    X(FMAX, "fmax", AF_KIND_MAP, 2, AF_RESULT_REAL, 1)                                   \
    X(FDIM, "fdim", AF_KIND_MAP, 2, AF_RESULT_REAL, 1)                                   \
    X(HYPOT, "hypot", AF_KIND_MAP, 2, AF_RESULT_REAL, 1)                                 \
    X(MIN2, "min", AF_KIND_MAP, 2, AF_RESULT_INT_IF_INT, 1)                              \
    X(MAX2, "max", AF_KIND_MAP, 2, AF_RESULT_INT_IF_INT, 1)                              \
    X(ABS, "abs", AF_KIND_MAP, 1, AF_RESULT_INT_IF_INT, 1)                               \
    X(FLOOR, "floor", AF_KIND_MAP, 1, AF_RESULT_REAL, 1)                                 \
    X(CEIL, "ceil", AF_KIND_MAP, 1, AF_RESULT_REAL, 1)                                   \
    X(ROUND, "round", AF_KIND_MAP, 1, AF_RESULT_REAL, 1)                                 \
    X(TRUNC, "trunc", AF_KIND_MAP, 1, AF_RESULT_REAL, 1)                                 \
    X(STEP, "step", AF_KIND_MAP, 1, AF_RESULT_REAL, 1)                                   \
    X(INT_STEP, "int_step", AF_KIND_MAP, 1, AF_RESULT_INT, 1)                            \
    X(NOT, "!", AF_KIND_MAP, 1, AF_RESULT_INT, 0)                                        \
    X(AND, "&&", AF_KIND_MAP, 2, AF_RESULT_INT, 0)                                       \
    X(OR, "||", AF_KIND_MAP, 2, AF_RESULT_INT, 0)                                        \
    X(MOD, "%", AF_KIND_MAP, 2, AF_RESULT_INT, 0)                                        \
    X(LGAMMA, "lgamma", AF_KIND_MAP, 1, AF_RESULT_REAL, 1)                               \
    X(DIGAMMA, "digamma", AF_KIND_MAP, 1, AF_RESULT_REAL, 1)                             \
    X(TRIGAMMA, "trigamma", AF_KIND_MAP, 1, AF_RESULT_REAL, 1)                           \
    X(ERF, "erf", AF_KIND_MAP, 1, AF_RESULT_REAL, 1)                                     \
    X(ERFC, "erfc", AF_KIND_MAP, 1, AF_RESULT_REAL, 1)                                   \
    X(PHI, "Phi", AF_KIND_MAP, 1, AF_RESULT_REAL, 1)                                     \
    X(PHI_APPROX, "Phi_approx", AF_KIND_MAP, 1, AF_RESULT_REAL, 1)                       \
    X(INV_PHI, "inv_Phi", AF_KIND_MAP, 1, AF_RESULT_REAL, 1)                             \
    X(LBETA, "lbeta", AF_KIND_MAP, 2, AF_RESULT_REAL, 1)                                 \
    X(LCHOOSE, "lchoose", AF_KIND_MAP, 2, AF_RESULT_REAL, 1)                             \
    X(BINOMIAL_COEFFICIENT_LOG, "binomial_coefficient_log", AF_KIND_MAP, 2, AF_RESULT_REAL, 1) \
    X(INV_LOGIT, "inv_logit", AF_KIND_MAP, 1, AF_RESULT_REAL, 1)                         \
    X(LOGIT, "logit", AF_KIND_MAP, 1, AF_RESULT_REAL, 1)                                 \
    X(LOG_INV_LOGIT, "log_inv_logit", AF_KIND_MAP, 1, AF_RESULT_REAL, 1)                 \
    X(LOG1M_INV_LOGIT, "log1m_inv_logit", AF_KIND_MAP, 1, AF_RESULT_REAL, 1)             \
    X(LOG1M, "log1m", AF_KIND_MAP, 1, AF_RESULT_REAL, 1)                                 \
    X(LOG1M_EXP, "log1m_exp", AF_KIND_MAP, 1, AF_RESULT_REAL, 1)                         \
    X(LOG_DIFF_EXP, "log_diff_exp", AF_KIND_MAP, 2, AF_RESULT_REAL, 1)                   \
    X(DOT_PRODUCT, "dot_product", AF_KIND_FOLD, 2, AF_RESULT_REAL, 1)                    \
    X(SQUARED_DISTANCE, "squared_distance", AF_KIND_FOLD, 2, AF_RESULT_REAL, 1)          \
    X(PROD, "prod", AF_KIND_SPECIAL, 1, AF_RESULT_REAL, 1)                               \
    X(MEAN, "mean", AF_KIND_SPECIAL, 1, AF_RESULT_REAL, 1)                               \
    X(VARIANCE, "variance", AF_KIND_SPECIAL, 1, AF_RESULT_REAL, 1)                       \
    X(SD, "sd", AF_KIND_SPECIAL, 1, AF_RESULT_REAL, 1)                                   \
    X(MIN, "min", AF_KIND_SPECIAL, 1, AF_RESULT_REAL, 1)                                 \
    X(MAX, "max", AF_KIND_SPECIAL, 1, AF_RESULT_REAL, 1)                                 \
    X(DISTANCE, "distance", AF_KIND_SPECIAL, 2, AF_RESULT_REAL, 1)                       \
    X(MULTI_NORMAL_LPDF, "multi_normal_lpdf", AF_KIND_SPECIAL, 3, AF_RESULT_REAL, 1)     \
    X(MULTI_NORMAL_CHOLESKY_LPDF, "multi_normal_cholesky_lpdf", AF_KIND_SPECIAL, 3,      \
      AF_RESULT_REAL, 1)                                                                 \
    X(CATEGORICAL_LPMF, "categorical_lpmf", AF_KIND_SPECIAL, 2, AF_RESULT_REAL, 1)       \
    X(CATEGORICAL_LOGIT_LPMF, "categorical_logit_lpmf", AF_KIND_SPECIAL, 2, AF_RESULT_REAL, 1) \
    X(DIRICHLET_LPDF, "dirichlet_lpdf", AF_KIND_SPECIAL, 2, AF_RESULT_REAL, 1)           \
    /* Ops the compiler emits for the language (kernels in ops_matrix.c). */             \
    X(SELECT, "?:", AF_KIND_MAP, 3, AF_RESULT_REAL, 0)                                   \
    X(MATMUL, "matrix_product", AF_KIND_SPECIAL, 2, AF_RESULT_REAL, 0) /* ops_matmul.c */ \
    X(LEVEL, "annealing_level", AF_KIND_LEAF, 0, AF_RESULT_REAL, 0)                      \
    X(EXTERN, "extern", AF_KIND_LEAF, -1, AF_RESULT_REAL, 0)

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
 * af_op_scratch_len doubles. INDEX is the 0-based element of an INDEX op
 * and the row count of a MATMUL result.
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
