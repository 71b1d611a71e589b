/* The expression graph: node storage, constant folding, sharing of equal
 * nodes through a hash table, and the final pass that drops unused nodes.
 * Folding runs the stdlib kernels on one point, so a constant gets exactly
 * the value the evaluator would compute. */
#include "af_graph.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    af_op op;
    int varies;
    size_t len;
    size_t nargs;
    size_t arg_start; /* into args */
    size_t aux;       /* INDEX element, PARAM offset, CONST offset into constants,
                         EXTERN index into externs */
} node;

struct af_graph {
    size_t dim;
    size_t max_nodes;
    size_t max_constants;
    size_t max_folded, folded; /* values read and written by fold() */
    node *nodes;
    size_t count, cap;
    size_t *args;
    size_t args_len, args_cap;
    double *constants;
    size_t constants_len, constants_cap;
    const af_ffi_function **externs; /* functions of EXTERN nodes, by aux */
    size_t extern_count, extern_cap;
    size_t *table; /* open addressing over node ids, AF_GRAPH_NONE when empty */
    size_t table_cap;
    size_t root;
    af_graph_status status;
};

/* Grows *BUF (of *CAP items of SIZE bytes) to hold NEED items. */
static int grow(void **buf, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 16;
    while (n < need)
        n *= 2;
    void *p = realloc(*buf, n * size);
    if (p == NULL)
        return -1;
    *buf = p;
    *cap = n;
    return 0;
}

af_graph *af_graph_new(size_t max_nodes, size_t max_constants, size_t max_folded)
{
    af_graph *g = calloc(1, sizeof *g);
    if (g == NULL)
        return NULL;
    g->max_nodes = max_nodes;
    g->max_constants = max_constants;
    g->max_folded = max_folded;
    g->root = AF_GRAPH_NONE;
    return g;
}

void af_graph_free(af_graph *g)
{
    if (g == NULL)
        return;
    free(g->nodes);
    free(g->args);
    free(g->constants);
    free(g->externs);
    free(g->table);
    free(g);
}

af_graph_status af_graph_status_of(const af_graph *g)
{
    return g->status;
}

/* ---- hashing of nodes, for sharing ---- */

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15u + (h << 6) + (h >> 2);
    return h;
}

/* Spreads every input bit over the low bits, which index the table: the
 * bits of small integers stored as doubles differ only in the high bits. */
static uint64_t finish_hash(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdu;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53u;
    h ^= h >> 33;
    return h;
}

static uint64_t node_hash(const af_graph *g, const node *n)
{
    uint64_t h = mix(mix((uint64_t)n->op, n->len), n->aux);
    if (n->op == AF_OP_CONST) {
        h = mix((uint64_t)n->op, n->len);
        for (size_t e = 0; e < n->len; e++) {
            uint64_t bits;
            memcpy(&bits, &g->constants[n->aux + e], sizeof bits);
            h = mix(h, bits);
        }
        return finish_hash(h);
    }
    for (size_t k = 0; k < n->nargs; k++)
        h = mix(h, g->args[n->arg_start + k]);
    return finish_hash(h);
}

static int node_equal(const af_graph *g, const node *a, const node *b)
{
    if (a->op != b->op || a->len != b->len || a->nargs != b->nargs)
        return 0;
    if (a->op == AF_OP_CONST)
        return memcmp(&g->constants[a->aux], &g->constants[b->aux],
                      a->len * sizeof(double)) == 0;
    if (a->aux != b->aux)
        return 0;
    return memcmp(&g->args[a->arg_start], &g->args[b->arg_start],
                  a->nargs * sizeof(size_t)) == 0;
}

static int table_rehash(af_graph *g)
{
    size_t cap = g->table_cap ? g->table_cap * 2 : 1024;
    size_t *t = malloc(cap * sizeof *t);
    if (t == NULL)
        return -1;
    for (size_t i = 0; i < cap; i++)
        t[i] = AF_GRAPH_NONE;
    for (size_t id = 0; id < g->count; id++) {
        size_t i = node_hash(g, &g->nodes[id]) & (cap - 1);
        while (t[i] != AF_GRAPH_NONE)
            i = (i + 1) & (cap - 1);
        t[i] = id;
    }
    free(g->table);
    g->table = t;
    g->table_cap = cap;
    return 0;
}

/* Returns an existing node equal to the candidate at index g->count (stored
 * but not yet counted), or adds the candidate and returns its id. */
static size_t intern(af_graph *g)
{
    if (g->count >= g->max_nodes) {
        g->status = AF_GRAPH_TOO_MANY_NODES;
        return AF_GRAPH_NONE;
    }
    if (2 * (g->count + 1) > g->table_cap && table_rehash(g) != 0) {
        g->status = AF_GRAPH_NO_MEMORY;
        return AF_GRAPH_NONE;
    }
    const node *cand = &g->nodes[g->count];
    size_t i = node_hash(g, cand) & (g->table_cap - 1);
    while (g->table[i] != AF_GRAPH_NONE) {
        if (node_equal(g, &g->nodes[g->table[i]], cand))
            return g->table[i];
        i = (i + 1) & (g->table_cap - 1);
    }
    g->table[i] = g->count;
    return g->count++;
}

static node *candidate(af_graph *g)
{
    if (grow((void **)&g->nodes, &g->cap, g->count + 1, sizeof(node)) != 0) {
        g->status = AF_GRAPH_NO_MEMORY;
        return NULL;
    }
    node *n = &g->nodes[g->count];
    memset(n, 0, sizeof *n);
    return n;
}

/* ---- builders ---- */

size_t af_graph_constant(af_graph *g, const double *values, size_t len)
{
    size_t start = g->constants_len;
    if (len > g->max_constants - start) {
        g->status = AF_GRAPH_TOO_MANY_CONSTANTS;
        return AF_GRAPH_NONE;
    }
    if (grow((void **)&g->constants, &g->constants_cap, start + len, sizeof(double)) != 0) {
        g->status = AF_GRAPH_NO_MEMORY;
        return AF_GRAPH_NONE;
    }
    node *n = candidate(g);
    if (n == NULL)
        return AF_GRAPH_NONE;
    memcpy(&g->constants[start], values, len * sizeof(double));
    n->op = AF_OP_CONST;
    n->len = len;
    n->aux = start;

    size_t before = g->count;
    size_t id = intern(g);
    if (g->count > before)
        g->constants_len += len; /* kept: a new node, not a shared one */
    return id;
}

size_t af_graph_parameter(af_graph *g, size_t offset, size_t len)
{
    node *n = candidate(g);
    if (n == NULL)
        return AF_GRAPH_NONE;
    n->op = AF_OP_PARAM;
    n->len = len;
    n->aux = offset;
    n->varies = 1;
    return intern(g);
}

size_t af_graph_level(af_graph *g)
{
    node *n = candidate(g);
    if (n == NULL)
        return AF_GRAPH_NONE;
    n->op = AF_OP_LEVEL;
    n->len = 1;
    return intern(g);
}

/* Copies N items of SIZE bytes, or returns NULL (also for N = 0, which the
 * caller treats as an empty array). */
static void *copy_array(const void *from, size_t n, size_t size, int *failed)
{
    if (n == 0)
        return NULL;
    void *p = malloc(n * size);
    if (p == NULL)
        *failed = 1;
    else
        memcpy(p, from, n * size);
    return p;
}

af_graph *af_graph_clone(const af_graph *g)
{
    af_graph *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    int failed = 0;
    *c = *g;
    c->nodes = copy_array(g->nodes, g->count, sizeof(node), &failed);
    c->cap = g->count;
    c->args = copy_array(g->args, g->args_len, sizeof(size_t), &failed);
    c->args_cap = g->args_len;
    c->constants = copy_array(g->constants, g->constants_len, sizeof(double), &failed);
    c->constants_cap = g->constants_len;
    c->externs = copy_array(g->externs, g->extern_count, sizeof *g->externs, &failed);
    c->extern_cap = g->extern_count;
    c->table = NULL; /* rebuilt when a node is added */
    c->table_cap = 0;
    if (failed) {
        af_graph_free(c);
        return NULL;
    }
    return c;
}

static int is_constant_scalar(const af_graph *g, size_t id, double value)
{
    const node *n = &g->nodes[id];
    return n->op == AF_OP_CONST && n->len == 1 && g->constants[n->aux] == value;
}

/* Returns the argument that x + 0, x - 0 and x * 1 reduce to, or NONE. */
static size_t identity_operand(const af_graph *g, af_op op, const size_t *args, size_t len)
{
    if (op != AF_OP_ADD && op != AF_OP_SUB && op != AF_OP_MUL)
        return AF_GRAPH_NONE;
    double unit = op == AF_OP_MUL ? 1.0 : 0.0;
    if (is_constant_scalar(g, args[1], unit) && g->nodes[args[0]].len == len)
        return args[0];
    if (op != AF_OP_SUB && is_constant_scalar(g, args[0], unit) &&
        g->nodes[args[1]].len == len)
        return args[1];
    return AF_GRAPH_NONE;
}

/* Runs OP on constant ARGS for one point and adds the result as a constant. */
static size_t fold(af_graph *g, af_op op, const size_t *args, size_t nargs, size_t len,
                   size_t index)
{
    size_t max_len = len;
    for (size_t k = 0; k < nargs; k++)
        if (g->nodes[args[k]].len > max_len)
            max_len = g->nodes[args[k]].len;
    /* Shared results add no constants, so the work is bounded apart. An
     * INDEX op reads one element of its operand and uses no scratch, while
     * other ops may read all of their operands. */
    size_t work = op == AF_OP_INDEX ? len : max_len;
    if (work > g->max_folded - g->folded) {
        g->status = AF_GRAPH_TOO_MANY_FOLDED;
        return AF_GRAPH_NONE;
    }
    g->folded += work;
    af_operand *operands = calloc(nargs ? nargs : 1, sizeof *operands);
    double *value = malloc(len * sizeof(double));
    double *scratch = malloc(af_op_scratch_len(work, 1) * sizeof(double));
    size_t id = AF_GRAPH_NONE;
    if (operands == NULL || value == NULL || scratch == NULL) {
        g->status = AF_GRAPH_NO_MEMORY;
        goto done;
    }
    for (size_t k = 0; k < nargs; k++) {
        const node *a = &g->nodes[args[k]];
        operands[k] = (af_operand){&g->constants[a->aux], NULL, a->len, 1, 0};
    }
    af_op_call call = {op, nargs, operands, value, NULL, len, 1, 1, 0, index, scratch};
    af_op_eval(&call);
    id = af_graph_constant(g, value, len);
done:
    free(operands);
    free(value);
    free(scratch);
    return id;
}

/* Adds a node of OP over ARGS, or returns an equal one. */
static size_t add_node(af_graph *g, af_op op, int varies, const size_t *args, size_t nargs,
                       size_t len, size_t aux)
{
    size_t start = g->args_len;
    if (grow((void **)&g->args, &g->args_cap, start + nargs, sizeof(size_t)) != 0) {
        g->status = AF_GRAPH_NO_MEMORY;
        return AF_GRAPH_NONE;
    }
    node *n = candidate(g);
    if (n == NULL)
        return AF_GRAPH_NONE;
    memcpy(&g->args[start], args, nargs * sizeof(size_t));
    *n = (node){op, varies, len, nargs, start, aux};

    size_t before = g->count;
    size_t id = intern(g);
    if (g->count > before)
        g->args_len += nargs;
    return id;
}

size_t af_graph_op(af_graph *g, af_op op, const size_t *args, size_t nargs, size_t len,
                   size_t index)
{
    int varies = 0, constant = 1;
    for (size_t k = 0; k < nargs; k++) {
        varies |= g->nodes[args[k]].varies;
        constant &= g->nodes[args[k]].op == AF_OP_CONST;
    }
    if (constant)
        return fold(g, op, args, nargs, len, index);
    if (nargs == 2) {
        size_t same = identity_operand(g, op, args, len);
        if (same != AF_GRAPH_NONE)
            return same;
    }
    return add_node(g, op, varies, args, nargs, len, index);
}

size_t af_graph_extern_call(af_graph *g, const af_ffi_function *fn, const size_t *args,
                            size_t nargs)
{
    size_t index = 0;
    while (index < g->extern_count && g->externs[index] != fn)
        index++;
    if (index == g->extern_count) {
        if (grow((void **)&g->externs, &g->extern_cap, index + 1, sizeof *g->externs) != 0) {
            g->status = AF_GRAPH_NO_MEMORY;
            return AF_GRAPH_NONE;
        }
        g->externs[g->extern_count++] = fn;
    }
    int varies = 0;
    for (size_t k = 0; k < nargs; k++)
        varies |= g->nodes[args[k]].varies;
    return add_node(g, AF_OP_EXTERN, varies, args, nargs, 1, index);
}

int af_graph_finish(af_graph *g, size_t root, size_t dim)
{
    g->dim = dim;
    char *live = calloc(g->count ? g->count : 1, 1);
    size_t *renumber = malloc((g->count ? g->count : 1) * sizeof(size_t));
    if (live == NULL || renumber == NULL) {
        free(live);
        free(renumber);
        return -1;
    }
    live[root] = 1;
    for (size_t i = g->count; i-- > 0;)
        if (live[i])
            for (size_t k = 0; k < g->nodes[i].nargs; k++)
                live[g->args[g->nodes[i].arg_start + k]] = 1;

    size_t kept = 0;
    for (size_t i = 0; i < g->count; i++) {
        if (!live[i])
            continue;
        renumber[i] = kept;
        node n = g->nodes[i];
        for (size_t k = 0; k < n.nargs; k++)
            g->args[n.arg_start + k] = renumber[g->args[n.arg_start + k]];
        g->nodes[kept++] = n;
    }
    g->root = renumber[root];
    g->count = kept;
    free(live);
    free(renumber);
    free(g->table); /* ids changed, so the sharing table is stale */
    g->table = NULL;
    g->table_cap = 0;
    return 0;
}

/* ---- reading ---- */

size_t af_graph_dim(const af_graph *g)
{
    return g->dim;
}

size_t af_graph_node_count(const af_graph *g)
{
    return g->count;
}

size_t af_graph_root(const af_graph *g)
{
    return g->root;
}

af_op af_graph_node_op(const af_graph *g, size_t id)
{
    return g->nodes[id].op;
}

size_t af_graph_node_len(const af_graph *g, size_t id)
{
    return g->nodes[id].len;
}

size_t af_graph_node_nargs(const af_graph *g, size_t id)
{
    return g->nodes[id].nargs;
}

const size_t *af_graph_node_args(const af_graph *g, size_t id)
{
    return &g->args[g->nodes[id].arg_start];
}

size_t af_graph_node_aux(const af_graph *g, size_t id)
{
    return g->nodes[id].aux;
}

const double *af_graph_node_values(const af_graph *g, size_t id)
{
    const node *n = &g->nodes[id];
    return n->op == AF_OP_CONST ? &g->constants[n->aux] : NULL;
}

const af_ffi_function *af_graph_node_extern(const af_graph *g, size_t id)
{
    const node *n = &g->nodes[id];
    return n->op == AF_OP_EXTERN ? g->externs[n->aux] : NULL;
}

int af_graph_node_varies(const af_graph *g, size_t id)
{
    return g->nodes[id].varies;
}

/* ---- evaluation of one point, for output columns ---- */

static int run_point_node(const af_graph *g, size_t i, double **value, double *scratch,
                          af_operand *operands, char *message, size_t message_len)
{
    const node *n = &g->nodes[i];
    for (size_t k = 0; k < n->nargs; k++) {
        size_t a = g->args[n->arg_start + k];
        operands[k] = (af_operand){value[a], NULL, g->nodes[a].len, 1, 0};
    }
    af_op_call call = {n->op, n->nargs, operands, value[i], NULL, n->len, 1, 1, 0, n->aux,
                       scratch};
    if (n->op == AF_OP_EXTERN)
        return af_ffi_eval(g->externs[n->aux], &call, message, message_len);
    af_op_eval(&call);
    return 0;
}

int af_graph_eval_point(const af_graph *g, const double *z, double level, double *out,
                        char *message, size_t message_len)
{
    size_t total = 0, max_len = 1, max_nargs = 1;
    for (size_t i = 0; i < g->count; i++) {
        total += g->nodes[i].op == AF_OP_CONST ? 0 : g->nodes[i].len;
        max_len = g->nodes[i].len > max_len ? g->nodes[i].len : max_len;
        max_nargs = g->nodes[i].nargs > max_nargs ? g->nodes[i].nargs : max_nargs;
    }
    double **value = malloc((g->count ? g->count : 1) * sizeof *value);
    double *pool = malloc((total + af_op_scratch_len(max_len, 1)) * sizeof *pool);
    af_operand *operands = malloc(max_nargs * sizeof *operands);
    int status = value == NULL || pool == NULL || operands == NULL ? -1 : 0;
    if (status != 0 && message_len > 0)
        snprintf(message, message_len, "out of memory");
    double *next = pool;
    for (size_t i = 0; status == 0 && i < g->count; i++) {
        const node *n = &g->nodes[i];
        if (n->op == AF_OP_CONST) {
            value[i] = &g->constants[n->aux];
            continue;
        }
        value[i] = next;
        next += n->len;
        if (n->op == AF_OP_PARAM)
            memcpy(value[i], z + n->aux, n->len * sizeof(double));
        else if (n->op == AF_OP_LEVEL)
            value[i][0] = level;
        else
            status = run_point_node(g, i, value, next, operands, message, message_len);
    }
    if (status == 0 && g->root != AF_GRAPH_NONE)
        memcpy(out, value[g->root], g->nodes[g->root].len * sizeof(double));
    free(value);
    free(pool);
    free(operands);
    return status;
}
