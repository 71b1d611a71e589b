/* af_ffi: calls real-valued C functions of shared libraries through libffi,
 * and gets their partial derivatives from a derivative function of the
 * same library or from central finite differences. It knows nothing of the
 * language: lang/ opens a model's extern functions with it, and the
 * evaluators run the graph nodes of their calls with af_ffi_eval.
 *
 * The C interface, for an extern function f with arguments a1..an:
 *   double f(A1, ..., An);
 *   void f_grad(A1, ..., An, double *grad);
 * where a real argument is passed as `double` and a vector argument as
 * `const double *x, size_t n` (its elements and their count). f_grad writes
 * one partial derivative of f per argument element into grad, in argument
 * order: one for a real, n for a vector. Both must be pure: same arguments,
 * same result, and safe to call from several threads at once. */
#ifndef AF_FFI_H
#define AF_FFI_H

#include <stddef.h>

#include "af_stdlib.h"

typedef struct af_ffi_function af_ffi_function;

/* How one argument is passed: AF_FFI_REAL as a double, AF_FFI_VECTOR as a
 * pointer to its elements followed by their count as size_t. */
typedef enum { AF_FFI_REAL, AF_FFI_VECTOR } af_ffi_arg;

/* Most arguments of one extern function. */
#define AF_FFI_MAX_ARGS 64

/* Step of the central differences: the partial for element x is
 * (f(x + h) - f(x - h)) / (2h) with h = AF_FFI_STEP * max(1, |x|).
 * cbrt(DBL_EPSILON), about 6.06e-6, balances the truncation error (order
 * h^2) against rounding (order DBL_EPSILON / h), so a smooth function of
 * moderate size gets partials with a relative error of about 1e-10 (an
 * estimate from those two orders, not a bound). */
#define AF_FFI_STEP 6.0554544523933395e-06

/* Results of af_ffi_open. */
typedef enum {
    AF_FFI_OK = 0,
    AF_FFI_NO_LIBRARY,    /* dlopen failed; the message has dlerror's text */
    AF_FFI_NO_SYMBOL,     /* the function's symbol is not in the library */
    AF_FFI_NO_DERIVATIVE, /* the derivative's symbol is not in the library */
    AF_FFI_BAD_SIGNATURE, /* libffi cannot describe the call */
    AF_FFI_NO_MEMORY
} af_ffi_status;

/* Opens LIBRARY with dlopen (a path with '/' as given, a bare name through
 * the dynamic linker's search) and looks up SYMBOL, and DERIVATIVE unless it
 * is NULL, which selects finite differences. ARGS gives the NARGS argument
 * kinds (at most AF_FFI_MAX_ARGS). Returns AF_FFI_OK and sets *OUT, or
 * another status with the reason in MESSAGE (capacity MESSAGE_LEN). */
af_ffi_status af_ffi_open(const char *library, const char *symbol, const char *derivative,
                          const af_ffi_arg *args, size_t nargs, af_ffi_function **out,
                          char *message, size_t message_len);

/* Releases FN and its reference to the library; accepts NULL. */
void af_ffi_close(af_ffi_function *fn);

/* The function's symbol name, for messages. */
const char *af_ffi_symbol(const af_ffi_function *fn);

/* Path of the shared library that FN was loaded from, as the dynamic
 * linker found it: the path given to af_ffi_open when it has a '/', else
 * the file that the search chose. Valid while FN is open; NULL when the
 * linker does not report one. */
const char *af_ffi_library_path(const af_ffi_function *fn);

/* Runs FN on the CALL->count points of CALL the way a stdlib kernel runs:
 * CALL->args are FN's arguments (a real one of length 1, a vector one of any
 * length), and FN's value goes to CALL->value (length 1). When
 * CALL->tangent is not NULL, the tangents follow by the chain rule from the
 * partial derivatives and the arguments' tangents. CALL->op, index and
 * scratch are not read. Returns 0, or non-zero with a message naming the
 * function and the point when a value or a partial derivative is not
 * finite, or when out of memory. Safe to call from several threads. */
int af_ffi_eval(const af_ffi_function *fn, const af_op_call *call, char *message,
                size_t message_len);

#endif
