/* af_graph: the expression graph that lowering produces and the evaluator
 * runs. Nodes are stdlib ops over vectors of known length, stored in
 * topological order (every argument precedes its user). Constants are
 * folded and equal nodes shared while the graph is built. EXTERN nodes
 * call C functions of shared libraries through af_ffi. */
#ifndef AF_GRAPH_H
#define AF_GRAPH_H

#include <stddef.h>

#include "af_ffi.h"
#include "af_lang.h"
#include "af_stdlib.h"

typedef struct af_graph af_graph;

/* Returned by the builders when the graph cannot grow. */
#define AF_GRAPH_NONE ((size_t)-1)

typedef enum {
    AF_GRAPH_OK,
    AF_GRAPH_NO_MEMORY,
    AF_GRAPH_TOO_MANY_NODES,
    AF_GRAPH_TOO_MANY_CONSTANTS,
    AF_GRAPH_TOO_MANY_FOLDED
} af_graph_status;

/* ---- building ---- */

/* Creates an empty graph that may hold up to MAX_NODES nodes and up to
 * MAX_CONSTANTS values in its constant nodes, and that folds ops on
 * constants until their operands and results reach MAX_FOLDED values in
 * all. Returns NULL when out of memory. */
af_graph *af_graph_new(size_t max_nodes, size_t max_constants, size_t max_folded);
void af_graph_free(af_graph *graph);

/* Each builder returns the node id, or AF_GRAPH_NONE and sets the status. */
size_t af_graph_constant(af_graph *graph, const double *values, size_t len);
size_t af_graph_parameter(af_graph *graph, size_t offset, size_t len);
/* Adds OP over ARGS with result length LEN. INDEX is the element of an
 * INDEX op, 0 otherwise. When every argument is constant the op runs now
 * and the result is a constant node. */
size_t af_graph_op(af_graph *graph, af_op op, const size_t *args, size_t nargs, size_t len,
                   size_t index);
af_graph_status af_graph_status_of(const af_graph *graph);
/* Adds the node of the annealing level: not constant, the same for every
 * point of a batch, without tangent. The evaluator fills it. */
size_t af_graph_level(af_graph *graph);
/* Adds a call of the extern function FN (opened by the caller, who keeps
 * it open while the graph lives) on ARGS: a scalar node per real argument,
 * a node of any length per vector argument. The call is never folded and
 * varies when an argument does. Calls of one function on the same nodes
 * share one node, since extern functions must be pure. */
size_t af_graph_extern_call(af_graph *graph, const af_ffi_function *fn, const size_t *args,
                            size_t nargs);
/* Returns a copy of GRAPH, or NULL when out of memory. */
af_graph *af_graph_clone(const af_graph *graph);

/* Sets the root and the dimension DIM of z (every PARAM node lies inside
 * it), then drops every node the root does not use, renumbering the others.
 * Returns 0, or non-zero when out of memory. */
int af_graph_finish(af_graph *graph, size_t root, size_t dim);

/* ---- reading ---- */

const af_graph *af_model_graph(const af_model *model);

size_t af_graph_dim(const af_graph *graph);
size_t af_graph_node_count(const af_graph *graph);
size_t af_graph_root(const af_graph *graph);
af_op af_graph_node_op(const af_graph *graph, size_t node);
size_t af_graph_node_len(const af_graph *graph, size_t node);
size_t af_graph_node_nargs(const af_graph *graph, size_t node);
const size_t *af_graph_node_args(const af_graph *graph, size_t node);
/* Element of an INDEX node; offset into z of a PARAM node. */
size_t af_graph_node_aux(const af_graph *graph, size_t node);
/* Values of a CONST node (af_graph_node_len of them), NULL for other ops. */
const double *af_graph_node_values(const af_graph *graph, size_t node);
/* The function an EXTERN node calls, NULL for other ops. */
const af_ffi_function *af_graph_node_extern(const af_graph *graph, size_t node);
/* Non-zero when the node depends on z (its tangent can be non-zero). */
int af_graph_node_varies(const af_graph *graph, size_t node);

/* Evaluates GRAPH at one point Z with annealing level LEVEL and writes the
 * root's values to OUT (af_graph_node_len of the root). Returns 0, or
 * non-zero with a message in MESSAGE (capacity MESSAGE_LEN) when out of
 * memory or when an extern function fails. */
int af_graph_eval_point(const af_graph *graph, const double *z, double level, double *out,
                        char *message, size_t message_len);

#endif
