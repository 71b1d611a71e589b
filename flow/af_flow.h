/* af_flow: Annealing Flow. Trains a chain of continuous normalizing flow
 * blocks, each an MLP velocity field integrated with RK4, along the path
 * f_k = N(0, I)^(1 - beta_k) * q^beta_k, then pushes fresh N(0, I) points
 * through all blocks to give samples with their exact flow log-density.
 * Uses the target only through af_target and includes nothing of the language. */
#ifndef AF_FLOW_H
#define AF_FLOW_H

#include <stddef.h>
#include <stdint.h>

/* Evaluates log q and its gradient (the score) at N points X (row-major,
 * N x dim) for the annealing level LEVEL in [0, 1]. A target that defines
 * its own path reads LEVEL; others ignore it. SCORE may be NULL. Returns 0,
 * or non-zero with a message. */
typedef int (*af_target_fn)(void *context, double level, const double *x, size_t n,
                            double *logq, double *score, char *message, size_t message_len);

/* The target: its dimension, its evaluation, and optionally a way to copy
 * the context for another thread (NULL: training evaluates on one thread). */
typedef struct af_target {
    size_t dim;
    int own_path;  /* non-zero: f_k is the target at level beta_k itself, not
                      N(0, I)^(1 - beta_k) q^beta_k */
    af_target_fn eval;
    void *context;
    void *(*clone)(void *context);  /* may be NULL; returns NULL when out of memory */
    void (*release)(void *clone);   /* frees what clone returned */
    /* May be NULL. Writes the point X (DIM values) in the user's terms for
     * an error message, such as "mu = 1.5, sigma = 0.2", into OUT (capacity
     * LEN). Without it messages print "x = (x1, x2, ...)". */
    void (*describe)(void *context, const double *x, char *out, size_t len);
} af_target;

/* Progress of training, reported once per logged iteration and once at the
 * end of each block (then BLOCK_DONE is set). */
typedef struct {
    size_t block;      /* 1-based */
    size_t blocks;     /* planned blocks, or 0 when the schedule is adaptive */
    double beta;       /* annealing level of this block */
    size_t iteration;  /* 1-based */
    size_t iterations; /* the block's budget */
    int block_done;    /* the block ended here: its budget or a loss plateau */
    double loss;       /* mean loss over the last logged iterations */
    double seconds;    /* since the start of training */
} af_flow_progress;

typedef void (*af_progress_fn)(void *context, const af_flow_progress *progress);

/* A trained flow: the chain of blocks. */
typedef struct af_flow af_flow;

/* Called after each finished block with the flow so far (for example to
 * save it). A non-zero return stops training with that status. */
typedef int (*af_block_fn)(void *context, const af_flow *flow, char *message,
                           size_t message_len);

/* Polled once per iteration; a non-zero return interrupts training. */
typedef int (*af_stop_fn)(void *context);

/* Receives one line of news from training: the outcome of the
 * standardisation, the importance ESS after each block at beta = 1, and
 * retries after a NaN (starting "warning: "). */
typedef void (*af_log_fn)(void *context, const char *line);

/* Integrators of af_flow_sample_with. */
typedef enum {
    AF_SAMPLER_RK4 = 0,  /* the fixed RK4 steps that training used */
    AF_SAMPLER_DOPRI     /* adaptive Dormand-Prince 5(4), step sizes per sample */
} af_sampler;

/* Settings of training and sampling. af_flow_options_default fills them. */
typedef struct {
    size_t hidden1, hidden2;  /* hidden layer widths of each velocity MLP */
    double sharpness;         /* softplus sharpness: softplus(s * u) / s */
    size_t substeps;          /* RK4 steps over the unit time of a block */
    int adaptive;             /* choose each beta from the samples (else geometric) */
    double ess_fraction;      /* adaptive: ESS fraction kept by each beta step */
    size_t max_blocks;        /* adaptive: most annealing blocks before beta = 1 */
    size_t blocks;            /* geometric: annealing blocks, the last at beta = 1 */
    double beta_first;        /* geometric: beta of the first block */
    size_t final_blocks;      /* fewest extra blocks at beta = 1 */
    size_t max_final_blocks;  /* most extra blocks at beta = 1 */
    double target_ess;        /* extra blocks stop once the importance ESS of the
                                 training points reaches this fraction */
    size_t train_size;        /* points in the training set */
    size_t batch_size;        /* points per Adam iteration */
    size_t iterations;        /* Adam iterations per block: the budget */
    int plateau_stop;         /* end a block early once its loss stops falling */
    double learning_rate;     /* Adam step size */
    double clip_norm;         /* global gradient norm clip */
    double w2_weight;         /* weight of the dynamic W2 penalty */
    uint64_t seed;
    int standardise;          /* search a mode first and train in coordinates
                                 where it looks like N(0, I), when that helps */
    size_t threads;           /* worker threads; results do not depend on it */
    size_t langevin_steps;    /* MALA steps on the training points after each block,
                                 targeting that block's level (0: none) */
    af_sampler sampler;       /* integrator for sampling; training always uses RK4 */
    double ode_tolerance;     /* AF_SAMPLER_DOPRI: bound on each step's local error
                                 in every coordinate and the log-density, as a
                                 fraction of 1 + their magnitude */
    af_progress_fn progress;  /* may be NULL */
    void *progress_context;
    af_block_fn block_done;   /* may be NULL */
    void *block_context;
    af_stop_fn stop;          /* may be NULL */
    void *stop_context;
    af_log_fn log;            /* may be NULL */
    void *log_context;
} af_flow_options;

void af_flow_options_default(af_flow_options *options);

/* Status of af_flow_train besides 0 (success). */
enum {
    AF_FLOW_FAILED = 1,      /* the message gives the reason */
    AF_FLOW_INTERRUPTED = 2  /* the stop callback asked; *OUT has the finished blocks */
};

/* Trains a flow for TARGET with OPTIONS, starting from the finished blocks
 * of START when it is not NULL (a resumed run; START must come from the same
 * target and options). Returns 0 and sets *OUT; AF_FLOW_INTERRUPTED and
 * sets *OUT to the blocks finished so far; or AF_FLOW_FAILED with a message
 * that names the block and iteration of a NaN. */
int af_flow_train(const af_target *target, const af_flow_options *options,
                  const af_flow *start, af_flow **out, char *message, size_t message_len);

/* Tells whether training of FLOW finished: it reached beta = 1 and its
 * extra blocks there met their stopping rule. A flow read from a file keeps
 * the mark. */
int af_flow_complete(const af_flow *flow);

/* Maximum length of the settings text in a flow file, in bytes without the
 * terminating NUL; a longer length field marks the file as corrupt. */
#define AF_FLOW_SETTINGS_MAX 2048

/* Identity of the model behind a flow file, supplied by the front end. */
typedef struct {
    uint64_t model_hash;     /* of the model source */
    uint64_t data_hash;      /* of the data file, 0 without data */
    uint64_t settings_hash;  /* of every option that changes training */
    /* "key=value\n" lines of the same options, from af_flow_options_text;
     * empty in files of format versions 1 and 2. */
    char settings[AF_FLOW_SETTINGS_MAX + 1];
} af_flow_identity;

/* Hash of the options that change what training produces, for
 * af_flow_identity. */
uint64_t af_flow_options_hash(const af_flow_options *options);

/* Writes the options that af_flow_options_hash covers as "key=value\n"
 * lines into TEXT (SIZE bytes, NUL-terminated), each key named after its
 * af_flow_options field. Returns 0, or -1 when SIZE is too small. */
int af_flow_options_text(const af_flow_options *options, char *text, size_t size);

/* 64-bit FNV-1a hash of N bytes, continuing from HASH (start with
 * AF_FLOW_HASH_INIT). For identities, not for security. */
#define AF_FLOW_HASH_INIT 0xcbf29ce484222325ULL
uint64_t af_flow_hash(uint64_t hash, const void *data, size_t n);

/* Encodes FLOW with IDENTITY in the flow file format: a magic number, a
 * version, the identity, the network shape, each block's level and
 * weights, and a checksum. Sets *BYTES (malloc'ed, caller frees) and *SIZE.
 * Returns 0, or non-zero when out of memory. The caller writes the file. */
int af_flow_serialize(const af_flow *flow, const af_flow_identity *identity,
                      unsigned char **bytes, size_t *size);

/* Tells whether SIZE BYTES start with the flow file magic number, so that a
 * damaged flow file can be distinguished from another file. */
int af_flow_has_magic(const unsigned char *bytes, size_t size);

/* Decodes SIZE BYTES of a flow file. Returns 0 and sets *OUT and *IDENTITY,
 * or non-zero with a message saying what is wrong (not a flow file, a newer
 * version, truncated, checksum mismatch). */
int af_flow_deserialize(const unsigned char *bytes, size_t size, af_flow_identity *identity,
                        af_flow **out, char *message, size_t message_len);

void af_flow_free(af_flow *flow);

size_t af_flow_dim(const af_flow *flow);

/* Tells whether FLOW works in standardised coordinates (an affine map from
 * a mode search); its samples are in the target's coordinates either way. */
int af_flow_standardised(const af_flow *flow);

/* Maps N points X of the target's coordinates into the flow's standardised
 * ones Z (x = mode + R z), or copies them when FLOW is not standardised;
 * af_flow_from_standard maps back. X and Z must not overlap. In the
 * standardised coordinates the Laplace approximation at the mode is
 * N(0, I), so distances there do not depend on each parameter's scale. */
void af_flow_to_standard(const af_flow *flow, const double *x, size_t n, double *z);
void af_flow_from_standard(const af_flow *flow, const double *z, size_t n, double *x);
size_t af_flow_block_count(const af_flow *flow);
double af_flow_block_beta(const af_flow *flow, size_t block);

/* Integrator work of one af_flow_sample_with call. */
typedef struct {
    size_t accepted, rejected;  /* Dormand-Prince steps over all samples and blocks;
                                   0 for RK4 */
} af_sample_stats;

/* Draws N samples X (N x dim) from the flow with the random stream
 * OPTIONS->seed on OPTIONS->threads threads (the samples do not depend on
 * it), integrating with OPTIONS->sampler, and writes each sample's flow
 * log-density LOG_RHO[N] from the exact divergence integrated alongside.
 * Fills STATS when it is not NULL. Returns 0, or non-zero with a message
 * (out of memory, or a Dormand-Prince step size that collapsed). */
int af_flow_sample_with(const af_flow *flow, const af_flow_options *options, size_t n,
                        double *x, double *log_rho, af_sample_stats *stats, char *message,
                        size_t message_len);

/* Moves the N points X (the target's coordinates, N x dim, in place) by
 * STEPS Metropolis-adjusted Langevin steps that leave TARGET at level 1
 * invariant, in FLOW's standardised coordinates. The step size starts at
 * 1.65 dim^(-1/6) and adapts towards an acceptance rate of 0.574 between
 * steps; *ACCEPTANCE returns the mean acceptance rate. Applied to draws
 * resampled by their importance weights, the moves spread out repeated
 * rows without changing the distribution. The moves do not depend on
 * THREADS. Returns 0, or non-zero with a message (a target error, or out
 * of memory). */
int af_flow_move(const af_flow *flow, const af_target *target, double *x, size_t n,
                 size_t steps, uint64_t seed, size_t threads, double *acceptance,
                 char *message, size_t message_len);

/* Draws N samples X (N x dim) from the flow with the random stream SEED, on
 * THREADS threads (the samples do not depend on it), and
 * writes each sample's flow log-density LOG_RHO[N], from the exact
 * divergence integrated by the same RK4 steps. Returns 0, or non-zero with
 * a message when out of memory. */
int af_flow_sample(const af_flow *flow, size_t n, uint64_t seed, size_t threads, double *x,
                   double *log_rho, char *message, size_t message_len);

#endif
