/* Extern C functions through libffi: dlopen and dlsym when a model is
 * compiled, one call interface for the function and one for its derivative,
 * and the loop over a chunk's points that turns partial derivatives into
 * forward-mode tangents. Nothing here is specific to the language. */
#define _GNU_SOURCE /* dlinfo and struct link_map in glibc */
#include "af_ffi.h"

#include <dlfcn.h>
#include <link.h>
#include <ffi.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Argument elements listed in a message about a point. */
#define SHOWN_ELEMENTS 8

#if SIZE_MAX == UINT64_MAX
#define FFI_TYPE_SIZE_T ffi_type_uint64
#else
#define FFI_TYPE_SIZE_T ffi_type_uint32
#endif

struct af_ffi_function {
    void *library; /* dlopen handle, one reference */
    /* Both names live in the same allocation, after the struct. */
    char *symbol;
    char *derivative_symbol; /* NULL for finite differences */
    void (*function)(void);
    void (*derivative)(void);
    size_t nargs;
    af_ffi_arg kinds[AF_FFI_MAX_ARGS];
    /* C parameter types: those of f, then the grad pointer of f_grad. */
    ffi_type *types[2 * AF_FFI_MAX_ARGS + 1];
    size_t ntypes; /* C parameters of f */
    ffi_cif cif;
    ffi_cif derivative_cif;
};

/* ---- opening ---- */

/* Looks SYMBOL up in FN's library. ISO C has no conversion from the data
 * pointer dlsym returns to a function pointer, so the bits are copied. */
static int find_symbol(af_ffi_function *fn, const char *symbol, void (**out)(void))
{
    dlerror();
    void *address = dlsym(fn->library, symbol);
    if (address == NULL)
        return -1;
    memcpy(out, &address, sizeof address);
    return 0;
}

static af_ffi_status prepare_interfaces(af_ffi_function *fn, const af_ffi_arg *args,
                                        size_t nargs)
{
    fn->nargs = nargs;
    for (size_t k = 0; k < nargs; k++) {
        fn->kinds[k] = args[k];
        if (args[k] == AF_FFI_REAL) {
            fn->types[fn->ntypes++] = &ffi_type_double;
        } else {
            fn->types[fn->ntypes++] = &ffi_type_pointer;
            fn->types[fn->ntypes++] = &FFI_TYPE_SIZE_T;
        }
    }
    fn->types[fn->ntypes] = &ffi_type_pointer;
    if (ffi_prep_cif(&fn->cif, FFI_DEFAULT_ABI, (unsigned)fn->ntypes, &ffi_type_double,
                     fn->types) != FFI_OK)
        return AF_FFI_BAD_SIGNATURE;
    if (fn->derivative_symbol != NULL &&
        ffi_prep_cif(&fn->derivative_cif, FFI_DEFAULT_ABI, (unsigned)fn->ntypes + 1,
                     &ffi_type_void, fn->types) != FFI_OK)
        return AF_FFI_BAD_SIGNATURE;
    return AF_FFI_OK;
}

static af_ffi_status open_function(af_ffi_function *fn, const char *library,
                                   const af_ffi_arg *args, size_t nargs, char *message,
                                   size_t message_len)
{
    if (nargs > AF_FFI_MAX_ARGS) {
        snprintf(message, message_len, "too many arguments (limit is %d)", AF_FFI_MAX_ARGS);
        return AF_FFI_BAD_SIGNATURE;
    }
    /* RTLD_NOW reports a library's missing dependencies here rather than
     * at the first call; RTLD_LOCAL keeps its symbols out of later lookups. */
    fn->library = dlopen(library, RTLD_NOW | RTLD_LOCAL);
    if (fn->library == NULL) {
        const char *reason = dlerror();
        snprintf(message, message_len, "%s", reason != NULL ? reason : "unknown reason");
        return AF_FFI_NO_LIBRARY;
    }
    if (find_symbol(fn, fn->symbol, &fn->function) != 0) {
        snprintf(message, message_len, "symbol '%s' not found in %s", fn->symbol, library);
        return AF_FFI_NO_SYMBOL;
    }
    if (fn->derivative_symbol != NULL &&
        find_symbol(fn, fn->derivative_symbol, &fn->derivative) != 0) {
        snprintf(message, message_len, "symbol '%s' not found in %s", fn->derivative_symbol,
                 library);
        return AF_FFI_NO_DERIVATIVE;
    }
    af_ffi_status status = prepare_interfaces(fn, args, nargs);
    if (status != AF_FFI_OK)
        snprintf(message, message_len, "libffi cannot prepare a call of '%s'", fn->symbol);
    return status;
}

af_ffi_status af_ffi_open(const char *library, const char *symbol, const char *derivative,
                          const af_ffi_arg *args, size_t nargs, af_ffi_function **out,
                          char *message, size_t message_len)
{
    *out = NULL;
    size_t symbol_len = strlen(symbol) + 1;
    size_t derivative_len = derivative != NULL ? strlen(derivative) + 1 : 0;
    af_ffi_function *fn = calloc(1, sizeof *fn + symbol_len + derivative_len);
    if (fn == NULL) {
        snprintf(message, message_len, "out of memory");
        return AF_FFI_NO_MEMORY;
    }
    fn->symbol = (char *)(fn + 1);
    memcpy(fn->symbol, symbol, symbol_len);
    if (derivative != NULL) {
        fn->derivative_symbol = fn->symbol + symbol_len;
        memcpy(fn->derivative_symbol, derivative, derivative_len);
    }
    af_ffi_status status = open_function(fn, library, args, nargs, message, message_len);
    if (status != AF_FFI_OK) {
        af_ffi_close(fn);
        return status;
    }
    *out = fn;
    return AF_FFI_OK;
}

void af_ffi_close(af_ffi_function *fn)
{
    if (fn == NULL)
        return;
    if (fn->library != NULL)
        dlclose(fn->library);
    free(fn);
}

const char *af_ffi_symbol(const af_ffi_function *fn)
{
    return fn->symbol;
}

const char *af_ffi_library_path(const af_ffi_function *fn)
{
    struct link_map *map = NULL;
    if (dlinfo(fn->library, RTLD_DI_LINKMAP, &map) != 0 || map == NULL || map->l_name == NULL ||
        map->l_name[0] == '\0')
        return NULL;
    return map->l_name;
}

/* ---- calling ---- */

/* The arguments of one call, pointing into X and GRAD: libffi reads each C
 * argument through VALUES, so a vector argument's pointer and count live
 * here too. */
typedef struct {
    double *x;    /* every argument element of one point, in argument order */
    double *grad; /* a partial derivative per element of X */
    size_t total; /* elements of X */
    double *pointers[AF_FFI_MAX_ARGS];
    size_t lengths[AF_FFI_MAX_ARGS];
    double *grad_pointer;
    void *values[2 * AF_FFI_MAX_ARGS + 1];
} frame;

static void setup_frame(const af_ffi_function *fn, const af_op_call *call, frame *f)
{
    size_t offset = 0, t = 0;
    for (size_t k = 0; k < fn->nargs; k++) {
        if (fn->kinds[k] == AF_FFI_REAL) {
            f->values[t++] = &f->x[offset];
        } else {
            f->pointers[k] = f->x + offset;
            f->lengths[k] = call->args[k].len;
            f->values[t++] = &f->pointers[k];
            f->values[t++] = &f->lengths[k];
        }
        offset += call->args[k].len;
    }
    f->grad_pointer = f->grad;
    f->values[t] = &f->grad_pointer;
}

static void gather_point(const af_op_call *call, frame *f, size_t b)
{
    size_t i = 0;
    for (size_t k = 0; k < call->nargs; k++) {
        const af_operand *a = &call->args[k];
        for (size_t e = 0; e < a->len; e++)
            f->x[i++] = a->value[e * a->estride + b * a->bstride];
    }
}

static double call_function(const af_ffi_function *fn, frame *f)
{
    double result = 0.0;
    ffi_call((ffi_cif *)&fn->cif, fn->function, &result, f->values);
    return result;
}

/* Writes "(1.5, 2, ...)": the first elements of the point, for messages. */
static void describe_point(const frame *f, char *out, size_t cap)
{
    size_t used = (size_t)snprintf(out, cap, "(");
    for (size_t i = 0; i < f->total && i < SHOWN_ELEMENTS && used < cap; i++)
        used += (size_t)snprintf(out + used, cap - used, "%s%.17g", i ? ", " : "", f->x[i]);
    if (used < cap)
        snprintf(out + used, cap - used, "%s)", f->total > SHOWN_ELEMENTS ? ", ..." : "");
}

/* Writes X for a message; NaN as "nan" whatever its sign bit. */
static const char *number_text(double x, char *out, size_t cap)
{
    if (isnan(x))
        snprintf(out, cap, "nan");
    else
        snprintf(out, cap, "%g", x);
    return out;
}

/* Central differences, element by element, at the point in F->x. */
static void difference_partials(const af_ffi_function *fn, frame *f)
{
    for (size_t i = 0; i < f->total; i++) {
        double xi = f->x[i];
        double h = AF_FFI_STEP * fmax(1.0, fabs(xi));
        double up = xi + h, down = xi - h;
        f->x[i] = up;
        double f_up = call_function(fn, f);
        f->x[i] = down;
        double f_down = call_function(fn, f);
        f->x[i] = xi;
        /* up - down is the step actually taken after rounding. */
        f->grad[i] = (f_up - f_down) / (up - down);
    }
}

/* Fills F->grad; returns the index of the first partial that is not
 * finite, or F->total when all are. */
static size_t compute_partials(const af_ffi_function *fn, frame *f)
{
    if (fn->derivative == NULL) {
        difference_partials(fn, f);
    } else {
        /* NaN marks an element that the derivative function leaves unwritten. */
        for (size_t i = 0; i < f->total; i++)
            f->grad[i] = NAN;
        ffi_call((ffi_cif *)&fn->derivative_cif, fn->derivative, NULL, f->values);
    }
    size_t i = 0;
    while (i < f->total && isfinite(f->grad[i]))
        i++;
    return i;
}

static void write_tangents(const af_op_call *call, const frame *f, size_t b)
{
    for (size_t j = 0; j < call->dim; j++) {
        double sum = 0.0;
        size_t i = 0;
        for (size_t k = 0; k < call->nargs; k++) {
            const af_operand *a = &call->args[k];
            if (a->tangent == NULL) {
                i += a->len;
                continue;
            }
            for (size_t e = 0; e < a->len; e++, i++)
                sum += f->grad[i] * a->tangent[(j * a->len + e) * call->stride + b];
        }
        call->tangent[j * call->stride + b] = sum;
    }
}

static int fail_partial(const af_ffi_function *fn, const frame *f, size_t i, char *message,
                        size_t message_len)
{
    char point[512], partial[32];
    describe_point(f, point, sizeof point);
    number_text(f->grad[i], partial, sizeof partial);
    if (fn->derivative == NULL)
        snprintf(message, message_len,
                 "extern function '%s': the finite difference for argument element %zu is %s "
                 "at %s; the function must be finite within a relative step of %.2g of the point",
                 fn->symbol, i + 1, partial, point, AF_FFI_STEP);
    else
        snprintf(message, message_len,
                 "extern function '%s': its derivative '%s' wrote %s (or nothing) as the partial "
                 "derivative for argument element %zu at %s",
                 fn->symbol, fn->derivative_symbol, partial, i + 1, point);
    return -1;
}

static int run_points(const af_ffi_function *fn, const af_op_call *call, frame *f,
                      char *message, size_t message_len)
{
    setup_frame(fn, call, f);
    for (size_t b = 0; b < call->count; b++) {
        gather_point(call, f, b);
        double y = call_function(fn, f);
        if (!isfinite(y)) {
            char point[512], result[32];
            describe_point(f, point, sizeof point);
            snprintf(message, message_len,
                     "extern function '%s' returned %s at %s; it must return a finite value",
                     fn->symbol, number_text(y, result, sizeof result), point);
            return -1;
        }
        call->value[b] = y;
        if (call->tangent == NULL)
            continue;
        size_t bad = compute_partials(fn, f);
        if (bad < f->total)
            return fail_partial(fn, f, bad, message, message_len);
        write_tangents(call, f, b);
    }
    return 0;
}

int af_ffi_eval(const af_ffi_function *fn, const af_op_call *call, char *message,
                size_t message_len)
{
    frame f;
    f.total = 0;
    for (size_t k = 0; k < call->nargs; k++)
        f.total += call->args[k].len;
    if (call->nargs != fn->nargs) {
        snprintf(message, message_len, "extern function '%s' takes %zu arguments, found %zu",
                 fn->symbol, fn->nargs, call->nargs);
        return -1;
    }
    /* NOTE: one allocation per chunk and extern node. Each point of the
     * chunk makes at least one libffi call, so we estimate (without a
     * measurement) that the allocation is a small share of the work. */
    double *buffer = malloc(2 * (f.total + 1) * sizeof *buffer);
    if (buffer == NULL) {
        snprintf(message, message_len, "out of memory calling extern function '%s'",
                 fn->symbol);
        return -1;
    }
    f.x = buffer;
    f.grad = buffer + f.total + 1;
    int status = run_points(fn, call, &f, message, message_len);
    free(buffer);
    return status;
}
