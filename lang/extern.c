/* Extern C functions of a model: opens each declared one through af_ffi,
 * with its library path resolved against the model's folder, and lowers
 * its calls to EXTERN graph nodes, or to constants when every argument is
 * known while compiling. The checker has already limited the signatures to
 * real results of real and vector arguments. */
#include "lower_internal.h"

#include <stdlib.h>
#include <string.h>

/* A relative path with a '/' is relative to the folder of the model file,
 * so that a model and its library can move together. Absolute paths stay,
 * and so do bare file names, which dlopen searches in the system's
 * library folders (LD_LIBRARY_PATH, ld.so.cache) as for any program. */
static const char *resolve_library(lang_context *ctx, const char *model_path,
                                   const char *library)
{
    if (library[0] == '/' || strchr(library, '/') == NULL)
        return library;
    const char *slash = strrchr(model_path, '/');
    if (slash == NULL)
        return library;
    size_t folder = (size_t)(slash - model_path) + 1;
    size_t len = strlen(library);
    char *path = arena_alloc(&ctx->arena, folder + len + 1);
    memcpy(path, model_path, folder);
    memcpy(path + folder, library, len + 1);
    return path;
}

static void keep_extern(lang_context *ctx, af_ffi_function *fn)
{
    af_ffi_function **list =
        realloc(ctx->externs, (ctx->extern_count + 1) * sizeof *ctx->externs);
    if (list == NULL) {
        af_ffi_close(fn);
        lang_out_of_memory(&ctx->on_failure);
    }
    ctx->externs = list;
    ctx->externs[ctx->extern_count++] = fn;
}

static void report_open_failure(lang_context *ctx, const ast_function *f, const char *library,
                                af_ffi_status status, const char *reason)
{
    char hint[512];
    const char *exported = "the C function must carry this name and be exported: not static, "
                           "and extern \"C\" in C++; 'nm -D LIBRARY' lists the exported names";
    switch (status) {
    case AF_FFI_NO_LIBRARY:
        if (strchr(f->library, '/') == NULL)
            snprintf(hint, sizeof hint,
                     "a bare file name is searched in the system's library folders; write "
                     "\"./%s\" for a library in the model's folder",
                     f->library);
        else
            snprintf(hint, sizeof hint,
                     "build the library or fix the path; a relative path is relative to the "
                     "model's folder");
        diag_error(&ctx->diag, f->span, hint,
                   "cannot load library '%s' of extern function '%s' (dlopen: %s)", library,
                   f->name, reason);
        break;
    case AF_FFI_NO_SYMBOL:
        diag_error(&ctx->diag, f->span, exported, "extern function '%s': %s", f->name, reason);
        break;
    case AF_FFI_NO_DERIVATIVE:
        diag_error(&ctx->diag, f->span,
                   "export the derivative function, or write 'derivative finite_difference'",
                   "derivative of extern function '%s': %s", f->name, reason);
        break;
    default:
        diag_error(&ctx->diag, f->span, NULL, "extern function '%s': %s", f->name, reason);
        break;
    }
}

static void open_extern(lang_context *ctx, const char *model_path, ast_function *f)
{
    af_ffi_arg kinds[AF_FFI_MAX_ARGS];
    if (f->nparams > AF_FFI_MAX_ARGS) {
        diag_error(&ctx->diag, f->name_span, NULL,
                   "too many arguments of extern function '%s' (limit is %d)", f->name,
                   AF_FFI_MAX_ARGS);
        return;
    }
    size_t k = 0;
    for (const ast_decl *p = f->params; p != NULL; p = p->next)
        kinds[k++] = p->type.base == TYPE_VECTOR ? AF_FFI_VECTOR : AF_FFI_REAL;

    const char *library = resolve_library(ctx, model_path, f->library);
    char reason[1024];
    af_ffi_function *fn = NULL;
    af_ffi_status status = af_ffi_open(library, f->name, f->derivative, kinds, f->nparams, &fn,
                                       reason, sizeof reason);
    if (status == AF_FFI_NO_MEMORY)
        lang_out_of_memory(&ctx->on_failure);
    if (status != AF_FFI_OK) {
        report_open_failure(ctx, f, library, status, reason);
        return;
    }
    keep_extern(ctx, fn);
    f->loaded = fn;
}

size_t lang_open_externs(lang_context *ctx, ast_program *program, const char *model_path)
{
    size_t before = ctx->diag.errors;
    for (ast_function *f = program->functions; f != NULL; f = f->next)
        if (f->is_extern)
            open_extern(ctx, model_path, f);
    return ctx->diag.errors - before;
}

/* Calls F now on the known values of NODES and returns the constant. */
static size_t call_while_compiling(lowerer *l, const ast_expr *e, const size_t *nodes)
{
    af_operand operands[AF_FFI_MAX_ARGS];
    for (size_t k = 0; k < e->nargs; k++)
        operands[k] = (af_operand){lower_known(l, nodes[k]), NULL, lower_node_len(l, nodes[k]),
                                   1, 0};
    double result;
    af_op_call call = {AF_OP_EXTERN, e->nargs, operands, &result, NULL, 1, 1, 1, 0, 0, NULL};
    char message[1024];
    if (af_ffi_eval(e->function->loaded, &call, message, sizeof message) != 0)
        lower_fail(l, e->span, NULL, "%s", message);
    return lower_scalar(l, result, e->span);
}

value lower_extern_call(lowerer *l, const ast_expr *e, const value *args)
{
    size_t nodes[AF_FFI_MAX_ARGS];
    int known = 1;
    for (size_t k = 0; k < e->nargs; k++) {
        nodes[k] = args[k].node;
        known &= lower_known(l, nodes[k]) != NULL;
    }
    size_t node = known ? call_while_compiling(l, e, nodes)
                        : lower_checked(l,
                                        af_graph_extern_call(l->ctx->graph, e->function->loaded,
                                                             nodes, e->nargs),
                                        e->span);
    return (value){node, e->type, {0, {0}}};
}
