/* Kernels of the ops that the compiler adds for the language itself: the
 * select behind '?:' and if on parameters, and the leaves that the
 * evaluator fills (the annealing level, calls of extern functions).
 * They sit in their own block at the end of AF_OP_LIST. */
#include "ops_internal.h"

#include <assert.h>

/* select(c, a, b) is a where c is not 0, else b, elementwise with scalars
 * broadcast. The tangent is copied from the chosen branch only, so a NaN
 * tangent in the branch not taken (log of a negative number there) does
 * not leak into the result, as 0 * NaN would. */
void af_kernel_SELECT(const af_op_call *c)
{
    const af_operand *cond = &c->args[0];
    size_t stride = c->stride;

    for (size_t e = 0; e < c->len; e++) {
        for (size_t b = 0; b < c->count; b++) {
            const af_operand *x = operand_value(cond, e, b) != 0.0 ? &c->args[1] : &c->args[2];
            size_t xe = broadcast_index(x, e);
            c->value[e * stride + b] = operand_value(x, e, b);
            for (size_t j = 0; c->tangent != NULL && j < c->dim; j++)
                c->tangent[(j * c->len + e) * stride + b] =
                    x->tangent == NULL ? 0.0 : x->tangent[(j * x->len + xe) * stride + b];
        }
    }
}

/* The evaluator writes the level's value; there is nothing to compute. */
void af_kernel_LEVEL(const af_op_call *c)
{
    (void)c;
    assert(!"leaf ops have no kernel");
}

/* The evaluator calls the extern function through af_ffi. */
void af_kernel_EXTERN(const af_op_call *c)
{
    (void)c;
    assert(!"leaf ops have no kernel");
}
