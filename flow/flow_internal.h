/* Declarations shared by the files of flow/: the velocity network, the RK4
 * integrator, the random streams and Adam. Not part of the public API. */
#ifndef AF_FLOW_INTERNAL_H
#define AF_FLOW_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "af_flow.h"

/* ---- random streams (rng.c) ---- */

/* xoshiro256** state; one per independent stream. */
typedef struct {
    uint64_t s[4];
} rng_state;

void rng_seed(rng_state *rng, uint64_t seed, uint64_t stream);
uint64_t rng_next(rng_state *rng);
double rng_uniform(rng_state *rng);  /* in (0, 1) */
double rng_normal(rng_state *rng);

/* ---- velocity network (net.c) ----
 * v(y) = W3 softplus(W2 softplus(W1 y + b1) + b2) + b3, with the parameters
 * packed in one array in the order W1 (h1 x d), b1, W2 (h2 x h1), b2,
 * W3 (d x h2), b3, all row-major. Exactly two hidden layers, because the
 * divergence tr(W3 D2 W2 D1 W1) = s2' (W2 .* (W1 W3)') s1 then costs one
 * h2 x h1 product per point, whatever d is. */
typedef struct {
    size_t d, h1, h2;
    double sharpness;
    size_t n_params;
    size_t w1, b1, w2, b2, w3, b3;  /* offsets into the parameter array */
} net_shape;

void net_shape_init(net_shape *shape, size_t d, size_t h1, size_t h2, double sharpness);

/* Adds BIAS to each of the B rows of A (B x H) and replaces each entry a by
 * softplus(s a) / s, writing the derivative sigmoid(s a) to DERIV
 * (softplus.c). */
void softplus_rows(double *a, double *deriv, const double *bias, size_t b, size_t h,
                   double sharpness);
void softplus_rows_scalar(double *a, double *deriv, const double *bias, size_t b, size_t h,
                          double sharpness);
void softplus_rows_avx2(double *a, double *deriv, const double *bias, size_t b, size_t h,
                        double sharpness);

/* Back-propagates through softplus rows with derivative S (B x H, from
 * softplus_rows): GA = GH .* S + SCALE_p GS .* sharpness S (1 - S), where
 * GS (may be NULL: no second term) is the gradient of S and SCALE (may be
 * NULL: 1) scales row p. GA may alias GS. Adds the column sums of GA to
 * GBIAS (H). The AVX-512 path gives the same bits as the portable loop. */
void softplus_backward_rows(double *ga, const double *gh, const double *gs,
                            const double *scale, const double *s, size_t b, size_t h,
                            double sharpness, double *gbias);

/* Per-parameter-value constants: M = W1 W3 (h1 x h2), C = W2 .* M' (h2 x h1). */
void net_prepare(const net_shape *shape, const double *theta, double *m, double *c);

/* Activations of one evaluation of B points, kept for the backward pass. */
typedef struct {
    double *h1, *s1;  /* B x h1: softplus and its derivative */
    double *h2, *s2;  /* B x h2 */
    double *t;        /* B x h2: s1 C', for the divergence */
} net_cache;

/* Velocity V (B x d) and, when DIV is not NULL, divergence DIV (B) at Y. */
void net_forward(const net_shape *shape, const double *theta, const double *c,
                 const double *y, size_t b, net_cache *cache, double *v, double *div);

/* Scratch for net_backward: two B x max(h1, h2) blocks. */
typedef struct {
    double *ga1, *ga2, *gh;
} net_scratch;

/* Back-propagates GV (B x d) and GDIV (B, may be NULL) through one
 * net_forward at Y. Adds to GRAD (parameters) and GC (h2 x h1), writes GY. */
void net_backward(const net_shape *shape, const double *theta, const double *c,
                  const double *y, size_t b, const net_cache *cache, const double *gv,
                  const double *gdiv, double *grad, double *gc, double *gy,
                  net_scratch *scratch);

/* Adds the part of the gradient that flows through C (GC) to GRAD. */
void net_finish_gradient(const net_shape *shape, const double *theta, const double *m,
                         const double *gc, double *grad, double *scratch_h1h2);

/* Small random initial weights with a zero last layer, so a new block starts
 * as the identity map. */
void net_init(const net_shape *shape, double *theta, rng_state *rng);


/* ---- threads (parallel.c) ---- */

typedef void (*parallel_task)(void *context, size_t thread, size_t item);

/* Runs TASK on items 0..ITEMS-1 over THREADS threads (the caller is thread
 * 0); thread t takes items t, t + T, ... */
void parallel_for(size_t threads, size_t items, parallel_task task, void *context);

/* Pushes N points X (in place) through BLOCKS blocks with weights THETAS
 * (BLOCKS x n_params) and net_prepare constants CS (BLOCKS x h1 h2), in
 * chunks over THREADS threads; adds the divergence integrals to LOGDET when
 * it is not NULL. Returns 0, or -1 when out of memory. */
int flow_push_parallel(const net_shape *shape, size_t substeps, size_t blocks,
                       const double *thetas, const double *cs, double *x, size_t n,
                       double *logdet, size_t threads);

/* Pushes N points X (in place) through BLOCKS blocks like
 * flow_push_parallel, with the adaptive Dormand-Prince 5(4) method at local
 * error tolerance TOL in place of RK4, and adds the divergence integrals
 * to LOGDET. Each point chooses its own steps, and the chunks are fixed, so
 * the results do not depend on THREADS. Sets *STATS to the step counts.
 * Returns 0, or -1 with a message (out of memory, a collapsed step) (dopri.c). */
int dopri_push_parallel(const net_shape *shape, size_t blocks, const double *thetas,
                        const double *cs, double *x, size_t n, double *logdet, double tol,
                        size_t threads, af_sample_stats *stats, char *message,
                        size_t message_len);

/* ---- Metropolis-adjusted Langevin moves (langevin.c) ---- */

/* Workspace for moving up to CAPACITY points of TARGET's dimension on
 * THREADS threads. Each thread past the first evaluates through its own
 * clone of the context, so without a clone one thread does all the work. */
typedef struct langevin_work langevin_work;

langevin_work *langevin_work_new(const struct af_target *target, size_t capacity,
                                 size_t threads);
void langevin_work_free(langevin_work *work);

/* Runs STEPS MALA steps on the N points X (in place) towards the level
 * BETA of the target: N(0, I)^(1 - BETA) q^BETA, or the target's own level
 * BETA when it defines its path. *STEP is the first step size (the
 * proposal's standard deviation) and returns adapted towards an acceptance
 * rate of 0.574; *ACCEPTANCE returns the mean acceptance rate of the moves.
 * Step s of chunk c of the points draws from the stream (SEED, STREAM + s *
 * chunks + c), so the moves do not depend on the thread count. Returns 0, or
 * -1 with a message (a target error). */
int langevin_run(langevin_work *work, double beta, double *x, size_t n, size_t steps,
                 uint64_t seed, uint64_t stream, double *step, double *acceptance,
                 char *message, size_t message_len);

/* ---- the loss over a batch (batch.c) ---- */

struct af_target;
typedef struct batch_work batch_work;

/* Workspace for batches of BATCH points over THREADS threads; each thread
 * past the first evaluates TARGET through its own clone of the context. */
batch_work *batch_work_new(const net_shape *shape, size_t substeps, size_t batch,
                           size_t threads, const struct af_target *target);
void batch_work_free(batch_work *work);

/* Takes the level of FLOW's last block below 1 as the one that trains the
 * points where an own-path target is -inf at level 1 (see batch.c). */
struct af_flow;
void batch_set_fallback(batch_work *work, const struct af_flow *flow);

/* Mean block loss of the batch X (BATCH x d) for the block THETA (with M and
 * C from net_prepare) at level BETA, and its gradient GRAD. PATH_WEIGHT is
 * the W2 weight times S. Returns 0; 1 for a non-finite loss and -1 for a
 * target error, each with a message. */
int batch_loss_gradient(batch_work *work, const double *theta, const double *m, const double *c,
                        const double *x, double beta, double path_weight, double *loss,
                        double *grad, char *message, size_t message_len);

/* ---- Adam (adam.c) ---- */

typedef struct {
    size_t n;
    double *m, *v;  /* first and second moment estimates */
    size_t t;       /* steps taken since the last reset */
} adam_state;

int adam_init(adam_state *adam, size_t n);
void adam_free(adam_state *adam);
void adam_reset(adam_state *adam);

/* Clips GRAD to global norm CLIP (in place), then takes one Adam step of size
 * LR on THETA with the usual moment decays 0.9 and 0.999. */
void adam_step(adam_state *adam, double *theta, double *grad, double lr, double clip);

/* ---- the flow as a chain of blocks (flow.c) ---- */

/* Points per chunk when pushing many points through a block. */
enum { FLOW_CHUNK = 1024 };

#define FLOW_PI 3.14159265358979323846

struct af_flow;
struct af_flow *flow_new(const net_shape *shape, size_t substeps, size_t capacity);

/* Pushes one point X (in place) through every block of FLOW and stores the
 * summed divergence integral in *LOGDET. For tests and single points. */
void flow_push_point(const struct af_flow *flow, double *x, double *logdet);

void flow_mark_complete(struct af_flow *flow, int complete);
const net_shape *flow_shape(const struct af_flow *flow);
size_t flow_substeps(const struct af_flow *flow);
const double *flow_block_weights(const struct af_flow *flow, size_t block);

/* Appends a block with level BETA and parameters THETA (copied), growing
 * the flow as needed. Returns 0, or -1 when out of memory. */
int flow_append(struct af_flow *flow, double beta, const double *theta);

/* Formats the D-dimensional point X as "x = (x1, ...)", with up to four
 * coordinates, for messages. */
void flow_format_point(const double *x, size_t d, char *out, size_t len);

#endif

/* ---- standardisation (standardise.c) ---- */

/* The affine map x = shift + R z between the flow's coordinates z and the
 * target's x, with R an upper triangular square root of the Laplace
 * covariance at the target's mode. */
typedef struct {
    size_t d;
    double *shift;   /* d */
    double *root;    /* d x d, row-major, upper triangular, positive diagonal */
    double log_det;  /* log det R, set by flow_affine_finish */
} flow_affine;

flow_affine *flow_affine_new(size_t d);  /* zero shift and root */
void flow_affine_free(flow_affine *map);

/* Checks that the root is upper triangular with a positive diagonal and
 * sets log_det. Returns 0, or -1 for a root that is not. */
int flow_affine_finish(flow_affine *map);

/* X = shift + R Z for N points (row-major, N x d). */
void flow_affine_apply(const flow_affine *map, const double *z, size_t n, double *x);

/* Z = R^-1 (X - shift) for N points, the inverse of flow_affine_apply. X
 * and Z must not overlap. */
void flow_affine_invert(const flow_affine *map, const double *x, size_t n, double *z);

/* Searches the target's mode and decides whether training should use the
 * map. Returns 0 and sets *OUT to the map, or to NULL when the target keeps
 * its coordinates, with a one-line NOTE saying which and why; -1 with a
 * message when out of memory. */
int flow_affine_find(const af_target *target, uint64_t seed, flow_affine **out, char *note,
                     size_t note_len, char *msg, size_t len);

/* Fills OUT with the target seen in z: log q(shift + R z) + log det R and
 * its score R' g. MAP and INNER must outlive it; free it with
 * flow_affine_target_free. Returns 0, or -1 when out of memory. */
int flow_affine_target(const af_target *inner, const flow_affine *map, af_target *out);
void flow_affine_target_free(af_target *wrapped);

/* The flow's map, or NULL; flow_set_affine takes ownership of MAP. */
const flow_affine *flow_get_affine(const struct af_flow *flow);
void flow_set_affine(struct af_flow *flow, flow_affine *map);

/* ---- RK4 integration of one block (ode.c) ---- */

/* Workspace for integrating up to CAPACITY points through one block with S
 * RK4 steps. With TAPE set it keeps every stage for the backward pass. */
typedef struct ode_work ode_work;

ode_work *ode_work_new(const net_shape *shape, size_t substeps, size_t capacity, int tape);
void ode_work_free(ode_work *work);

/* Pushes B points X (in place) through the block with parameters THETA and
 * adds the integrated divergence to LOGDET[B] when it is not NULL. C comes
 * from net_prepare. */
void ode_push(ode_work *work, const double *theta, const double *c, double *x, size_t b,
              double *logdet);

/* Per-point terms of the block loss at the end of a taped forward pass. */
typedef struct {
    double beta;       /* annealing level of the block's target */
    double w2_weight;  /* weight of the dynamic W2 penalty */
} ode_loss_spec;

/* Taped forward pass of B points X0 (not modified): leaves the end points in
 * ode_work_end(work), the integrated divergence in ode_work_logdet(work) and
 * the summed squared step lengths in ode_work_path(work). */
void ode_forward_taped(ode_work *work, const double *theta, const double *c, const double *x0,
                       size_t b);
const double *ode_work_end(const ode_work *work);
const double *ode_work_logdet(const ode_work *work);
const double *ode_work_path(const ode_work *work);

/* Backward pass of the mean block loss over the B taped points, seeded with
 * GX_END (B x d, the gradient of the mean loss with respect to the end
 * points, without the W2 term) and the weights of the log-det and W2 terms.
 * Adds the parameter gradient to GRAD. */
void ode_backward(ode_work *work, const double *theta, const double *c, const double *m,
                  const double *gx_end, double logdet_weight, double path_weight, double *grad);
