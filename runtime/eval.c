/* The batch evaluator: runs a model's graph on chunks of points with dense
 * forward-mode tangents, one per direction of z, to get log q and its score.
 * Buffers are laid out point-fastest (value[e * chunk + b]) so each kernel
 * loops over the points of a chunk; all memory is allocated by af_eval_new. */
#include "af_eval.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "af_graph.h"

/* Default workspace size. Chosen to keep a chunk's values and tangents
 * within a typical L2/L3 cache; an estimate, not a measured optimum. */
#define AF_EVAL_DEFAULT_BUDGET (8u * 1024u * 1024u)
/* Beyond this many points a chunk gains nothing from amortising dispatch. */
#define AF_EVAL_MAX_CHUNK 1024

struct af_eval {
    const af_graph *graph;
    size_t dim;
    size_t nodes;
    size_t chunk;       /* points per chunk */
    double **value;     /* per node; a constant's own values are used in place */
    double **tangent;   /* per node; NULL for nodes that do not vary with z */
    af_operand *operands;
    double *scratch;
    double *pool;
    double level; /* the annealing level that LEVEL nodes read */
};

static int is_constant(const af_graph *g, size_t i)
{
    return af_graph_node_op(g, i) == AF_OP_CONST;
}

/* Longest of node I and, when its kernel uses scratch, of its arguments.
 * The matrix product needs none, so a large data matrix as its argument
 * does not shrink the chunk. */
static size_t scratch_elements(const af_graph *g, size_t i)
{
    size_t longest = af_graph_node_len(g, i);
    if (af_graph_node_op(g, i) == AF_OP_MATMUL)
        return longest;
    for (size_t k = 0; k < af_graph_node_nargs(g, i); k++) {
        size_t len = af_graph_node_len(g, af_graph_node_args(g, i)[k]);
        longest = len > longest ? len : longest;
    }
    return longest;
}

/* Doubles one point needs: values and tangents of every computed node, and
 * scratch for the longest argument of a kernel.
 * TODO: reuse the buffer of a node after its last user has run; a long
 * unrolled loop now gets one buffer per node, so its chunks are small. */
static size_t doubles_per_point(const af_graph *g, size_t *max_len, size_t *max_nargs)
{
    size_t dim = af_graph_dim(g), total = 0;
    *max_len = 1;
    *max_nargs = 1;
    for (size_t i = 0; i < af_graph_node_count(g); i++) {
        if (af_graph_node_nargs(g, i) > *max_nargs)
            *max_nargs = af_graph_node_nargs(g, i);
        if (is_constant(g, i))
            continue;
        size_t len = af_graph_node_len(g, i), longest = scratch_elements(g, i);
        if (longest > *max_len)
            *max_len = longest;
        total += len * (1 + (af_graph_node_varies(g, i) ? dim : 0));
    }
    return total + af_op_scratch_len(*max_len, 1);
}

/* Writes the tangent of a PARAM node, which is the same for every chunk:
 * direction j of element e is 1 when j is that element's offset in z. */
static void seed_parameter(af_eval *ev, size_t i)
{
    size_t len = af_graph_node_len(ev->graph, i);
    size_t offset = af_graph_node_aux(ev->graph, i);
    double *t = ev->tangent[i];
    memset(t, 0, ev->dim * len * ev->chunk * sizeof(double));
    for (size_t e = 0; e < len; e++) {
        double *row = t + ((offset + e) * len + e) * ev->chunk;
        for (size_t b = 0; b < ev->chunk; b++)
            row[b] = 1.0;
    }
}

/* Points each node at its part of the pool. */
static void assign_buffers(af_eval *ev)
{
    double *next = ev->pool;
    for (size_t i = 0; i < ev->nodes; i++) {
        size_t len = af_graph_node_len(ev->graph, i);
        if (is_constant(ev->graph, i)) {
            ev->value[i] = (double *)af_graph_node_values(ev->graph, i);
            ev->tangent[i] = NULL;
            continue;
        }
        ev->value[i] = next;
        next += len * ev->chunk;
        ev->tangent[i] = NULL;
        if (af_graph_node_varies(ev->graph, i)) {
            ev->tangent[i] = next;
            next += ev->dim * len * ev->chunk;
        }
        if (af_graph_node_op(ev->graph, i) == AF_OP_PARAM)
            seed_parameter(ev, i);
    }
    ev->scratch = next;
}

af_eval *af_eval_new_with_budget(const af_model *model, size_t budget_bytes)
{
    const af_graph *g = af_model_graph(model);
    size_t max_len, max_nargs;
    size_t per_point = doubles_per_point(g, &max_len, &max_nargs);
    size_t chunk = budget_bytes / (per_point * sizeof(double));
    chunk = chunk < 1 ? 1 : (chunk > AF_EVAL_MAX_CHUNK ? AF_EVAL_MAX_CHUNK : chunk);

    af_eval *ev = calloc(1, sizeof *ev);
    if (ev == NULL)
        return NULL;
    ev->graph = g;
    ev->dim = af_graph_dim(g);
    ev->nodes = af_graph_node_count(g);
    ev->chunk = chunk;
    ev->level = 1.0;
    ev->value = calloc(ev->nodes, sizeof *ev->value);
    ev->tangent = calloc(ev->nodes, sizeof *ev->tangent);
    ev->operands = calloc(max_nargs, sizeof *ev->operands);
    ev->pool = malloc(per_point * chunk * sizeof(double));
    if (ev->value == NULL || ev->tangent == NULL || ev->operands == NULL || ev->pool == NULL) {
        af_eval_free(ev);
        return NULL;
    }
    assign_buffers(ev);
    return ev;
}

af_eval *af_eval_new(const af_model *model)
{
    return af_eval_new_with_budget(model, AF_EVAL_DEFAULT_BUDGET);
}

void af_eval_free(af_eval *ev)
{
    if (ev == NULL)
        return;
    free(ev->value);
    free(ev->tangent);
    free(ev->operands);
    free(ev->pool);
    free(ev);
}

void af_eval_set_level(af_eval *ev, double level)
{
    ev->level = level;
}

size_t af_eval_chunk_size(const af_eval *ev)
{
    return ev->chunk;
}

/* ---- one chunk ---- */

static void load_parameter(af_eval *ev, size_t i, const double *z, size_t count)
{
    size_t len = af_graph_node_len(ev->graph, i);
    size_t offset = af_graph_node_aux(ev->graph, i);
    double *v = ev->value[i];
    for (size_t e = 0; e < len; e++)
        for (size_t b = 0; b < count; b++)
            v[e * ev->chunk + b] = z[b * ev->dim + offset + e];
}

static void load_level(af_eval *ev, size_t i, size_t count)
{
    for (size_t b = 0; b < count; b++)
        ev->value[i][b] = ev->level;
}

/* Runs node I; returns 0, or non-zero with a message when the node calls
 * an extern function that fails. */
static int run_node(af_eval *ev, size_t i, size_t count, int with_score, char *message,
                    size_t message_len)
{
    const af_graph *g = ev->graph;
    size_t nargs = af_graph_node_nargs(g, i);
    const size_t *args = af_graph_node_args(g, i);
    for (size_t k = 0; k < nargs; k++) {
        size_t a = args[k];
        int constant = is_constant(g, a);
        ev->operands[k] = (af_operand){
            ev->value[a], with_score ? ev->tangent[a] : NULL, af_graph_node_len(g, a),
            constant ? 1 : ev->chunk, constant ? 0 : 1};
    }
    af_op_call call = {af_graph_node_op(g, i), nargs, ev->operands, ev->value[i],
                       with_score ? ev->tangent[i] : NULL, af_graph_node_len(g, i), ev->chunk,
                       count, ev->dim, af_graph_node_aux(g, i), ev->scratch};
    const af_ffi_function *fn = af_graph_node_extern(g, i);
    if (fn != NULL)
        return af_ffi_eval(fn, &call, message, message_len);
    af_op_eval(&call);
    return 0;
}

/* Copies the root's value and tangents out. A point whose log-density is
 * -Inf (outside the support) or NaN (an invalid argument such as the log of
 * a negative number) gets a zero score. NaN is kept apart from -Inf because
 * messages explain the two differently, and its sign bit is cleared so that
 * it prints as "nan", not "-nan". */
static void store_results(af_eval *ev, size_t count, double *logp, double *score)
{
    size_t root = af_graph_root(ev->graph);
    const double *v = ev->value[root];
    const double *t = score != NULL ? ev->tangent[root] : NULL;
    int constant = is_constant(ev->graph, root);
    for (size_t b = 0; b < count; b++) {
        double lp = constant ? v[0] : v[b];
        int outside = isnan(lp) || lp == -INFINITY;
        logp[b] = isnan(lp) ? NAN : lp;
        if (score == NULL)
            continue;
        for (size_t j = 0; j < ev->dim; j++)
            score[b * ev->dim + j] = (outside || t == NULL) ? 0.0 : t[j * ev->chunk + b];
    }
}

static int run_chunk(af_eval *ev, const double *z, size_t count, double *logp, double *score,
                     char *message, size_t message_len)
{
    for (size_t i = 0; i < ev->nodes; i++) {
        af_op op = af_graph_node_op(ev->graph, i);
        if (op == AF_OP_CONST)
            continue;
        if (op == AF_OP_PARAM)
            load_parameter(ev, i, z, count);
        else if (op == AF_OP_LEVEL)
            load_level(ev, i, count);
        else if (run_node(ev, i, count, score != NULL, message, message_len) != 0)
            return -1;
    }
    store_results(ev, count, logp, score);
    return 0;
}

int af_eval_logp(af_eval *ev, const double *z, size_t n, double *logp, double *score,
                 char *message, size_t message_len)
{
    if (n > 0 && (z == NULL || logp == NULL)) {
        if (message != NULL && message_len > 0)
            snprintf(message, message_len, "af_eval_logp: z and logp must not be NULL");
        return -1;
    }
    for (size_t start = 0; start < n; start += ev->chunk) {
        size_t count = n - start < ev->chunk ? n - start : ev->chunk;
        if (run_chunk(ev, z + start * ev->dim, count, logp + start,
                      score != NULL ? score + start * ev->dim : NULL, message, message_len) != 0)
            return -1;
    }
    return 0;
}
