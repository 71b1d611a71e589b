/* af_flow: Annealing Flow. Trains a chain of continuous normalizing flow
 * blocks, each an MLP velocity field integrated with RK4, along the path
 * f_k = N(0, I)^(1 - beta_k) * q^beta_k, then pushes fresh N(0, I) points
 * through all blocks to give samples with their exact flow log-density.
 * Sees the target only through af_target; knows nothing of the language. */
#ifndef AF_FLOW_H
#define AF_FLOW_H

#include <stddef.h>
#include <stdint.h>

/* Evaluates log q and its gradient (the score) at N points X (row-major,
 * N x dim). SCORE may be NULL. Returns 0, or non-zero with a message. */
typedef int (*af_target_fn)(void *context, const double *x, size_t n, double *logq,
                            double *score, char *message, size_t message_len);

typedef struct {
    size_t dim;
    af_target_fn eval;
    void *context;
} af_target;

/* Progress of training, reported once per logged iteration and once at the
 * end of each block (then ITERATION == ITERATIONS). */
typedef struct {
    size_t block;      /* 1-based */
    size_t blocks;
    double beta;       /* annealing level of this block */
    size_t iteration;  /* 1-based */
    size_t iterations;
    double loss;       /* mean loss over the last logged iterations */
    double seconds;    /* since the start of training */
} af_flow_progress;

typedef void (*af_progress_fn)(void *context, const af_flow_progress *progress);

/* Settings of training and sampling. af_flow_options_default fills them. */
typedef struct {
    size_t hidden1, hidden2;  /* hidden layer widths of each velocity MLP */
    double sharpness;         /* softplus sharpness: softplus(s * u) / s */
    size_t substeps;          /* RK4 steps over the unit time of a block */
    size_t blocks;            /* annealing blocks, geometric in beta */
    double beta_first;        /* beta of the first block */
    size_t final_blocks;      /* extra blocks at beta = 1 */
    size_t train_size;        /* points in the training set */
    size_t batch_size;        /* points per Adam iteration */
    size_t iterations;        /* Adam iterations per block */
    double learning_rate;     /* Adam step size */
    double clip_norm;         /* global gradient norm clip */
    double w2_weight;         /* weight of the dynamic W2 penalty */
    uint64_t seed;
    af_progress_fn progress;  /* may be NULL */
    void *progress_context;
} af_flow_options;

void af_flow_options_default(af_flow_options *options);

/* A trained flow: the chain of blocks. */
typedef struct af_flow af_flow;

/* Trains a flow for TARGET with OPTIONS. Returns 0 and sets *OUT, or
 * non-zero with a message (a NaN names the block and iteration). */
int af_flow_train(const af_target *target, const af_flow_options *options, af_flow **out,
                  char *message, size_t message_len);

void af_flow_free(af_flow *flow);

size_t af_flow_dim(const af_flow *flow);
size_t af_flow_block_count(const af_flow *flow);
double af_flow_block_beta(const af_flow *flow, size_t block);

/* Draws N samples X (N x dim) from the flow with the random stream SEED and
 * writes each sample's flow log-density LOG_RHO[N], from the exact
 * divergence integrated by the same RK4 steps. Returns 0, or non-zero with
 * a message when out of memory. */
int af_flow_sample(const af_flow *flow, size_t n, uint64_t seed, double *x, double *log_rho,
                   char *message, size_t message_len);

#endif
