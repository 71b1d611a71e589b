/* af_model_compile and the model accessors: reads the source, runs parse,
 * check and lower, and keeps the graph and the output column names. The
 * AST and every other compile-time allocation are freed before returning. */
#include "af_lang.h"
#include "effect.h"
#include "lang_internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* What af_model_unconstrain needs of one parameter. */
typedef struct {
    ast_constraint constraint;
    size_t len;       /* constrained elements */
    size_t z_offset;  /* into z */
    size_t column;    /* first output column */
    size_t *flat;     /* flat element of each of its columns, len of them */
} param_info;

struct af_model {
    af_graph *graph;
    af_graph *columns_graph; /* output columns, then 4 bounds per parameter element */
    size_t dim;
    size_t column_count;
    size_t bounds_count; /* values after the columns in the columns graph's root */
    char **columns;      /* column_count names inside one block */
    param_info *params;
    size_t param_count;
    char *printed;
    char *warnings; /* the compiler's warnings, or NULL */
    lang_effects *effects; /* prints and rejects run at given points, or NULL */
    char **sources;        /* the model file, then each included file once */
    size_t source_count;
    int uses_level;
    int uses_extern;
    af_ffi_function **externs; /* opened extern functions, which the graphs call */
    size_t extern_count;
};

static char *copy_string(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p != NULL)
        memcpy(p, s, n);
    return p;
}

/* Writes the CSV name of element T (in CSV order) of D: "mu", "x.1",
 * "A.2.1"; the first index runs fastest. */
static int column_name(const ast_decl *d, size_t t, char *out)
{
    int n = sprintf(out, "%s", d->name);
    for (size_t k = 0; k < d->rank; k++) {
        n += sprintf(out + n, ".%zu", t % d->shape[k] + 1);
        t /= d->shape[k];
    }
    return n;
}

typedef struct {
    const ast_decl **decls;
    size_t count;
} output_list;

static output_list output_decls(lang_context *ctx, const ast_program *p)
{
    output_list list = {NULL, 0};
    size_t cap = 0;
    for (const ast_decl *d = p->params; d != NULL; d = d->next)
        cap++;
    for (const ast_stmt *s = p->tparams; s != NULL; s = s->next)
        cap += s->kind == STMT_DECL;
    for (const ast_stmt *s = p->gq; s != NULL; s = s->next)
        cap += s->kind == STMT_DECL;
    list.decls = arena_alloc(&ctx->arena, (cap ? cap : 1) * sizeof *list.decls);
    for (const ast_decl *d = p->params; d != NULL; d = d->next)
        list.decls[list.count++] = d;
    for (const ast_stmt *s = p->tparams; s != NULL; s = s->next)
        if (s->kind == STMT_DECL && s->decl->origin == ORIGIN_TPARAM)
            list.decls[list.count++] = s->decl;
    for (const ast_stmt *s = p->gq; s != NULL; s = s->next)
        if (s->kind == STMT_DECL && s->decl->origin == ORIGIN_GQ)
            list.decls[list.count++] = s->decl;
    return list;
}

static int name_columns(af_model *m, const output_list *list)
{
    size_t count = 0, bytes = 0;
    for (size_t i = 0; i < list->count; i++) {
        count += list->decls[i]->len;
        bytes += list->decls[i]->len * (strlen(list->decls[i]->name) + 24 * (list->decls[i]->rank + 1));
    }
    m->columns = malloc((count ? count : 1) * sizeof(char *) + bytes);
    if (m->columns == NULL)
        return -1;
    char *names = (char *)(m->columns + (count ? count : 1));
    size_t c = 0;
    for (size_t i = 0; i < list->count; i++) {
        for (size_t t = 0; t < list->decls[i]->len; t++) {
            m->columns[c++] = names;
            names += column_name(list->decls[i], t, names) + 1;
        }
    }
    m->column_count = count;
    return 0;
}

/* Flat offset (arrays row-major, each matrix column-major) of the element
 * at CSV position T of D, where the first index runs fastest. */
static size_t csv_to_flat(const ast_decl *d, size_t t)
{
    size_t idx[AF_MAX_ARRAY_DIMS + 2];
    for (size_t k = 0; k < d->rank; k++) {
        idx[k] = t % d->shape[k];
        t /= d->shape[k];
    }
    size_t arrays = (size_t)d->type.dims, outer = 0, inner = 1, within = 0;
    for (size_t k = 0; k < arrays; k++)
        outer = outer * d->shape[k] + idx[k];
    for (size_t k = arrays; k < d->rank; k++)
        inner *= d->shape[k];
    if (d->rank == arrays + 1)
        within = idx[arrays];
    else if (d->rank == arrays + 2)
        within = idx[arrays + 1] * d->shape[arrays] + idx[arrays];
    return outer * inner + within;
}

static int describe_params(af_model *m, const ast_program *p)
{
    size_t n = 0, z = 0, column = 0;
    for (const ast_decl *d = p->params; d != NULL; d = d->next)
        n++;
    m->params = calloc(n ? n : 1, sizeof *m->params);
    if (m->params == NULL)
        return -1;
    for (const ast_decl *d = p->params; d != NULL; d = d->next) {
        param_info *info = &m->params[m->param_count++];
        *info = (param_info){d->constraint, d->len, z, column, calloc(d->len + 1, sizeof(size_t))};
        if (info->flat == NULL)
            return -1;
        for (size_t t = 0; t < d->len; t++)
            info->flat[t] = csv_to_flat(d, t);
        z += d->constraint == CONSTRAINT_SIMPLEX ? d->len - 1 : d->len;
        column += d->len;
    }
    return 0;
}

static int uses_extern(const ast_program *p)
{
    for (const ast_function *f = p->functions; f != NULL; f = f->next)
        if (f->is_extern)
            return 1;
    return 0;
}

static int graph_uses_level(const af_graph *g)
{
    for (size_t i = 0; i < af_graph_node_count(g); i++)
        if (af_graph_node_op(g, i) == AF_OP_LEVEL)
            return 1;
    return 0;
}

static af_model *new_model(lang_context *ctx, lang_lowered *lowered, const ast_program *p)
{
    af_model *m = calloc(1, sizeof *m);
    output_list list = output_decls(ctx, p);
    if (m == NULL || name_columns(m, &list) != 0 || describe_params(m, p) != 0 ||
        (m->sources = lang_source_paths(ctx, &m->source_count)) == NULL) {
        af_model_free(m);
        return NULL;
    }
    m->effects = lowered->effects;
    m->graph = lowered->graph;
    m->columns_graph = lowered->columns;
    m->printed = lowered->printed;
    if (ctx->diag.len > 0) {
        m->warnings = malloc(ctx->diag.len + 1);
        if (m->warnings == NULL) {
            af_model_free(m);
            return NULL;
        }
        memcpy(m->warnings, ctx->diag.text, ctx->diag.len);
        m->warnings[ctx->diag.len] = '\0';
    }
    m->dim = af_graph_dim(lowered->graph);
    m->bounds_count = af_graph_node_len(lowered->columns, af_graph_root(lowered->columns)) -
                      m->column_count;
    m->uses_level = graph_uses_level(lowered->graph);
    m->uses_extern = uses_extern(p);
    m->externs = ctx->externs;
    m->extern_count = ctx->extern_count;
    ctx->externs = NULL;
    ctx->extern_count = 0;
    return m;
}

/* Runs the passes; returns 0 and fills LOWERED, or non-zero after
 * reporting errors. */
static int compile_passes(lang_context *ctx, ast_program *program, const char *model_path,
                          const char *data_path, const af_lang_options *opts,
                          lang_lowered *lowered)
{
    if (lang_read_model(ctx, model_path) != 0)
        return -1;
    if (lang_parse(ctx, program) != 0)
        return -1;
    if (lang_check(ctx, program) != 0)
        return -1;
    for (const ast_function *f = program->functions; f != NULL; f = f->next) {
        if (!f->is_extern || (opts != NULL && opts->allow_extern))
            continue;
        diag_error(&ctx->diag, f->span, NULL,
                   "model uses extern function '%s' from %s: loading native code runs it with "
                   "your rights; pass --allow-extern to permit",
                   f->name, f->library);
        return -1;
    }
    if (lang_open_externs(ctx, program, model_path) != 0)
        return -1;
    return lang_lower(ctx, program, data_path, lowered);
}

static void close_externs(af_ffi_function **externs, size_t count)
{
    for (size_t i = 0; i < count; i++)
        af_ffi_close(externs[i]);
    free(externs);
}

static void release_context(lang_context *ctx)
{
    close_externs(ctx->externs, ctx->extern_count);
    af_graph_free(ctx->graph);
    cJSON_Delete(ctx->data);
    arena_free(&ctx->arena);
    free(ctx->source_buffer);
    free(ctx->diag.text);
    free(ctx);
}

static int fail_compile(lang_context *ctx, char **message)
{
    int status = ctx->incomplete ? AF_LANG_INCOMPLETE : AF_LANG_ERROR;
    *message = ctx->diag.text;
    ctx->diag.text = NULL;
    release_context(ctx);
    if (*message == NULL)
        *message = copy_string("the model could not be compiled");
    return status;
}

int af_model_compile_opts(const char *model_path, const char *data_path,
                          const af_lang_options *opts, af_model **out, char **message)
{
    *out = NULL;
    *message = NULL;
    lang_context *ctx = calloc(1, sizeof *ctx);
    if (ctx == NULL) {
        *message = copy_string("out of memory");
        return AF_LANG_ERROR;
    }
    ctx->arena.on_failure = &ctx->on_failure;
    ctx->diag.on_failure = &ctx->on_failure;
    if (setjmp(ctx->on_failure) != 0) {
        release_context(ctx);
        *message = copy_string("out of memory while compiling the model");
        return AF_LANG_ERROR;
    }

    ast_program *program = arena_alloc(&ctx->arena, sizeof *program);
    lang_lowered lowered = {0};
    if (compile_passes(ctx, program, model_path, data_path, opts, &lowered) != 0)
        return fail_compile(ctx, message);
    *out = new_model(ctx, &lowered, program);
    release_context(ctx);
    if (*out == NULL) {
        af_graph_free(lowered.graph);
        af_graph_free(lowered.columns);
        free(lowered.printed);
        lang_effects_free(lowered.effects);
        *message = copy_string("out of memory while compiling the model");
        return AF_LANG_ERROR;
    }
    return AF_LANG_OK;
}

int af_model_compile(const char *model_path, const char *data_path, af_model **out,
                     char **message)
{
    return af_model_compile_opts(model_path, data_path, NULL, out, message);
}

void af_model_free(af_model *model)
{
    if (model == NULL)
        return;
    af_graph_free(model->graph);
    af_graph_free(model->columns_graph);
    close_externs(model->externs, model->extern_count);
    free(model->columns);
    for (size_t i = 0; model->params != NULL && i < model->param_count; i++)
        free(model->params[i].flat);
    free(model->params);
    free(model->printed);
    free(model->warnings);
    lang_effects_free(model->effects);
    free(model->sources);
    free(model);
}

size_t af_model_dim(const af_model *model)
{
    return model->dim;
}

size_t af_model_column_count(const af_model *model)
{
    return model->column_count;
}

size_t af_model_parameter_column_count(const af_model *model)
{
    size_t count = 0;
    for (size_t p = 0; p < model->param_count; p++)
        count += model->params[p].len;
    return count;
}

const char *af_model_column_name(const af_model *model, size_t i)
{
    return i < model->column_count ? model->columns[i] : NULL;
}

int af_model_uses_level(const af_model *model)
{
    return model->uses_level;
}

const char *af_model_printed(const af_model *model)
{
    return model->printed;
}

const char *af_model_warnings(const af_model *model)
{
    return model->warnings;
}

int af_model_print_at(const af_model *model, const double *z, char **text, char *message,
                      size_t message_len)
{
    return lang_effects_print(model->effects, z, text, message, message_len);
}

size_t af_model_source_count(const af_model *model)
{
    return model->source_count;
}

const char *af_model_source_path(const af_model *model, size_t i)
{
    return i < model->source_count ? model->sources[i] : NULL;
}

size_t af_model_extern_count(const af_model *model)
{
    return model->extern_count;
}

const char *af_model_extern_library(const af_model *model, size_t i)
{
    return i < model->extern_count ? af_ffi_library_path(model->externs[i]) : NULL;
}

/* Evaluates the columns graph at Z into a malloc'ed array of the columns
 * followed by the bounds, or returns NULL with a message in MESSAGE when out
 * of memory or when an extern function fails. */
static double *eval_columns(const af_model *m, const double *z, char *message,
                            size_t message_len)
{
    double *all = malloc((m->column_count + m->bounds_count + 1) * sizeof *all);
    if (all == NULL) {
        snprintf(message, message_len, "out of memory");
        return NULL;
    }
    if (af_graph_eval_point(m->columns_graph, z, 1.0, all, message, message_len) != 0) {
        free(all);
        return NULL;
    }
    return all;
}

int af_model_constrain(const af_model *model, const double *z, double *values, char *message,
                       size_t message_len)
{
    double *all = eval_columns(model, z, message, message_len);
    if (all == NULL) {
        for (size_t i = 0; i < model->column_count; i++)
            values[i] = NAN;
        return -1;
    }
    memcpy(values, all, model->column_count * sizeof *values);
    free(all);
    return lang_effects_check_generated(model->effects, z, message, message_len);
}

const af_graph *af_model_graph(const af_model *model)
{
    return model->graph;
}

/* ---- the inverse transforms ---- */

static double logit(double u)
{
    return log(u / (1.0 - u));
}

/* Inverts a bound or affine transform of one element X with bounds B
 * (lower, upper, offset, multiplier; NaN when absent). Returns NaN outside
 * the support. */
static double invert_scalar(ast_constraint c, double x, const double *b)
{
    if (c == CONSTRAINT_AFFINE) {
        double mu = isnan(b[2]) ? 0.0 : b[2], sigma = isnan(b[3]) ? 1.0 : b[3];
        return (x - mu) / sigma;
    }
    if (c != CONSTRAINT_BOUNDS)
        return x;
    if (!isnan(b[0]) && !isnan(b[1]))
        return x > b[0] && x < b[1] ? logit((x - b[0]) / (b[1] - b[0])) : NAN;
    if (!isnan(b[0]))
        return x > b[0] ? log(x - b[0]) : NAN;
    return x < b[1] ? log(b[1] - x) : NAN;
}

/* Inverts simplex, ordered and positive_ordered vectors X of length K,
 * which check_vector has accepted. The simplex's stick-breaking fractions
 * use the sums of the remaining elements, so that each fraction stays in
 * (0, 1) when the sum is 1 only within the tolerance. */
static void invert_vector(ast_constraint c, const double *x, size_t k, double *z)
{
    if (c == CONSTRAINT_SIMPLEX) {
        double rest = 0.0;
        for (size_t i = k; i-- > 1;) {
            rest += x[i];
            z[i - 1] = rest; /* the sum of x[i..k-1] until the loop below */
        }
        for (size_t i = 0; i + 1 < k; i++) {
            double u = x[i] / (x[i] + z[i]);
            z[i] = logit(u) + log((double)(k - 1 - i));
        }
        return;
    }
    for (size_t i = 0; i < k; i++) {
        if (i == 0)
            z[i] = c == CONSTRAINT_POSITIVE_ORDERED ? log(x[0]) : x[0];
        else
            z[i] = log(x[i] - x[i - 1]);
    }
}

/* The tolerance on a simplex's sum, as for simplex data and in Stan's
 * simplex check (CONSTRAINT_TOLERANCE). */
static const double SIMPLEX_TOLERANCE = 1e-8;

/* Length of the parameter name at the start of COLUMN ("theta" of
 * "theta.2"): names cannot contain '.'. */
static int name_len(const char *column)
{
    return (int)strcspn(column, ".");
}

/* Checks that the vector X of a simplex, ordered or positive_ordered
 * parameter satisfies its constraint. Returns 0, or -1 with a message
 * that names the column, its value and the constraint. */
static int check_vector(const af_model *m, const param_info *info, const double *x, char *msg,
                        size_t len)
{
    const char *first = m->columns[info->column];
    double sum = 0.0;
    for (size_t i = 0; i < info->len; i++) {
        const char *column = m->columns[info->column + i];
        /* Stan's simplex allows elements of 0, but only the limit of the
         * stick-breaking transform reaches them. */
        if (info->constraint == CONSTRAINT_SIMPLEX && !(x[i] > 0.0)) {
            snprintf(msg, len, "column '%s' is %.17g, but the elements of simplex '%.*s' must be "
                     "above 0", column, x[i], name_len(first), first);
            return -1;
        }
        if (info->constraint == CONSTRAINT_POSITIVE_ORDERED && i == 0 && !(x[0] > 0.0)) {
            snprintf(msg, len, "column '%s' is %.17g, not above 0 as positive_ordered '%.*s' needs",
                     column, x[0], name_len(first), first);
            return -1;
        }
        if (info->constraint != CONSTRAINT_SIMPLEX && i > 0 && !(x[i] > x[i - 1])) {
            snprintf(msg, len,
                     "column '%s' is %.17g, not above the previous element %.17g of %s '%.*s'",
                     column, x[i], x[i - 1],
                     info->constraint == CONSTRAINT_ORDERED ? "ordered" : "positive_ordered",
                     name_len(first), first);
            return -1;
        }
        sum += x[i];
    }
    if (info->constraint == CONSTRAINT_SIMPLEX && !(fabs(sum - 1.0) <= SIMPLEX_TOLERANCE)) {
        snprintf(msg, len, "the columns of simplex '%.*s' sum to %.12g; they must sum to 1 "
                 "within %g", name_len(first), first, sum, SIMPLEX_TOLERANCE);
        return -1;
    }
    return 0;
}

/* Checks that X, the value of COLUMN, is finite and strictly inside the
 * bounds B (lower, upper, offset, multiplier; NaN when absent), as the
 * transform of constraint C reaches it. Returns 0, or -1 with a message. */
static int check_scalar(ast_constraint c, const char *column, double x, const double *b,
                        char *msg, size_t len)
{
    if (!isfinite(x)) {
        snprintf(msg, len, "column '%s' is %.17g; parameter values must be finite", column, x);
        return -1;
    }
    if (c != CONSTRAINT_BOUNDS)
        return 0;
    if (!isnan(b[0]) && !(x > b[0])) {
        snprintf(msg, len, "column '%s' is %.17g, not above its lower bound %.17g", column, x,
                 b[0]);
        return -1;
    }
    if (!isnan(b[1]) && !(x < b[1])) {
        snprintf(msg, len, "column '%s' is %.17g, not below its upper bound %.17g", column, x,
                 b[1]);
        return -1;
    }
    return 0;
}

/* Checks the values of one parameter and writes its unconstrained values
 * into Z. ALL contains the output columns and then the bounds at the point
 * whose earlier parameters are already in Z. Returns 0, or -1 with a
 * message. */
static int invert_param(const af_model *m, const param_info *info, const double *values,
                        const double *all, double *z, char *msg, size_t len)
{
    double *x = malloc((info->len + 1) * sizeof *x);
    if (x == NULL) {
        snprintf(msg, len, "out of memory");
        return -1;
    }
    for (size_t t = 0; t < info->len; t++)
        x[info->flat[t]] = values[info->column + t];

    int status = 0;
    if (info->constraint == CONSTRAINT_SIMPLEX || info->constraint == CONSTRAINT_ORDERED ||
        info->constraint == CONSTRAINT_POSITIVE_ORDERED) {
        status = check_vector(m, info, x, msg, len);
        if (status == 0)
            invert_vector(info->constraint, x, info->len, z + info->z_offset);
    } else {
        size_t first_bound = m->column_count + 4 * info->column;
        for (size_t t = 0; t < info->len && status == 0; t++) {
            size_t e = info->flat[t];
            status = check_scalar(info->constraint, m->columns[info->column + t], x[e],
                                  all + first_bound + 4 * e, msg, len);
            z[info->z_offset + e] =
                invert_scalar(info->constraint, x[e], all + first_bound + 4 * e);
        }
    }
    free(x);
    return status;
}

int af_model_unconstrain(const af_model *model, const double *values, double *z, char *msg,
                         size_t len)
{
    for (size_t j = 0; j < model->dim; j++)
        z[j] = 0.0;
    /* A bound may depend on earlier parameters, so each parameter is
     * inverted after those before it are known. */
    for (size_t p = 0; p < model->param_count; p++) {
        const param_info *info = &model->params[p];
        double *all = eval_columns(model, z, msg, len);
        if (all == NULL)
            return -1;
        int status = invert_param(model, info, values, all, z, msg, len);
        free(all);
        if (status != 0)
            return -1;
        /* The checks above leave only overflow, such as a bound difference
         * of more than DBL_MAX, to make a value infinite. */
        size_t zlen = info->constraint == CONSTRAINT_SIMPLEX ? info->len - 1 : info->len;
        for (size_t j = 0; j < zlen; j++) {
            if (isfinite(z[info->z_offset + j]))
                continue;
            snprintf(msg, len, "column '%s' (%.17g) has no finite unconstrained value",
                     model->columns[info->column + j], values[info->column + j]);
            return -1;
        }
    }
    return 0;
}
