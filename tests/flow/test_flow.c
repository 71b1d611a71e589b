/* Tests of flow/: the exact divergence and the hand-written gradient of the
 * block loss against finite differences, the flow log-density against the
 * log-determinant of the whole map, and samples of a trained flow against
 * the known moments of a Gaussian target. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "af_flow.h"
#include "flow_internal.h"

/* A diagonal Gaussian target N(mean, diag(sd^2)), unnormalised. */
typedef struct {
    size_t d;
    double mean[4], sd[4];
} gauss_target;

static int gauss_eval(void *ctx, double level, const double *x, size_t n, double *logq,
                      double *score, char *msg, size_t len)
{
    const gauss_target *g = ctx;
    (void)level;
    (void)msg;
    (void)len;
    for (size_t p = 0; p < n; p++) {
        double sum = 0.0;
        for (size_t j = 0; j < g->d; j++) {
            double z = (x[p * g->d + j] - g->mean[j]) / g->sd[j];
            sum += z * z;
            if (score)
                score[p * g->d + j] = -z / g->sd[j];
        }
        logq[p] = -0.5 * sum;
    }
    return 0;
}

static void random_theta(const net_shape *sh, double *theta, uint64_t seed)
{
    rng_state rng;
    rng_seed(&rng, seed, 0);
    for (size_t i = 0; i < sh->n_params; i++)
        theta[i] = 0.5 * rng_normal(&rng);
}

static net_cache cache_new(size_t b, const net_shape *sh)
{
    net_cache c = {malloc(b * sh->h1 * sizeof(double)), malloc(b * sh->h1 * sizeof(double)),
                   malloc(b * sh->h2 * sizeof(double)), malloc(b * sh->h2 * sizeof(double)),
                   malloc(b * sh->h2 * sizeof(double))};
    return c;
}

static void cache_free(net_cache *c)
{
    free(c->h1);
    free(c->s1);
    free(c->h2);
    free(c->s2);
    free(c->t);
}

/* The divergence from the h2 x h1 product equals the trace of the Jacobian
 * of v taken by central differences. */
static void divergence_matches_jacobian_trace(void **state)
{
    (void)state;
    net_shape sh;
    net_shape_init(&sh, 3, 5, 4, 20.0);
    double theta[256], m[20], c[20], y[3], v[3], vp[3], vm[3], div;
    random_theta(&sh, theta, 7);
    net_prepare(&sh, theta, m, c);
    net_cache cache = cache_new(1, &sh);

    rng_state rng;
    rng_seed(&rng, 11, 0);
    for (int trial = 0; trial < 5; trial++) {
        for (int j = 0; j < 3; j++)
            y[j] = rng_normal(&rng);
        net_forward(&sh, theta, c, y, 1, &cache, v, &div);

        double trace = 0.0, h = 1e-6;
        for (int j = 0; j < 3; j++) {
            double keep = y[j];
            y[j] = keep + h;
            net_forward(&sh, theta, c, y, 1, &cache, vp, NULL);
            y[j] = keep - h;
            net_forward(&sh, theta, c, y, 1, &cache, vm, NULL);
            y[j] = keep;
            trace += (vp[j] - vm[j]) / (2 * h);
        }
        assert_true(fabs(trace - div) < 1e-6 * (1.0 + fabs(div)));
    }
    cache_free(&cache);
}

enum { B = 6, S = 2 };

/* Mean block loss of B points, as the trainer defines it. */
static double block_loss(ode_work *w, const net_shape *sh, const double *theta,
                         const double *x0, const gauss_target *g, double beta, double a,
                         double *gx_end)
{
    double m[64], c[64], logq[B], score[B * 3];
    net_prepare(sh, theta, m, c);
    ode_forward_taped(w, theta, c, x0, B);
    const double *x = ode_work_end(w), *logdet = ode_work_logdet(w), *path = ode_work_path(w);
    gauss_eval((void *)g, 1.0, x, B, logq, score, NULL, 0);

    double sum = 0.0;
    for (size_t p = 0; p < B; p++) {
        double sq = 0.0;
        for (size_t j = p * sh->d; j < (p + 1) * sh->d; j++) {
            sq += x[j] * x[j];
            if (gx_end)
                gx_end[j] = ((1 - beta) * x[j] - beta * score[j]) / B;
        }
        sum += 0.5 * (1 - beta) * sq - beta * logq[p] - logdet[p] + a * S * path[p];
    }
    return sum / B;
}

/* The back-propagated gradient of the block loss, through RK4 stages, the
 * divergence and the W2 term, equals central differences in every weight. */
static void block_gradient_matches_finite_differences(void **state)
{
    (void)state;
    net_shape sh;
    net_shape_init(&sh, 3, 5, 4, 20.0);
    const double beta = 0.7, a = 0.3;
    gauss_target g = {3, {1.0, -2.0, 0.5}, {0.7, 1.3, 2.0}};
    double theta[256], grad[256], m[64], c[64], x0[B * 3], gx[B * 3];
    random_theta(&sh, theta, 3);

    rng_state rng;
    rng_seed(&rng, 5, 0);
    for (size_t i = 0; i < B * 3; i++)
        x0[i] = rng_normal(&rng);

    ode_work *w = ode_work_new(&sh, S, B, 1);
    assert_non_null(w);
    block_loss(w, &sh, theta, x0, &g, beta, a, gx);
    net_prepare(&sh, theta, m, c);
    memset(grad, 0, sizeof grad);
    ode_backward(w, theta, c, m, gx, -1.0 / B, a * S / B, grad);

    double worst = 0.0;
    for (size_t i = 0; i < sh.n_params; i++) {
        double keep = theta[i], h = 1e-5;
        theta[i] = keep + h;
        double up = block_loss(w, &sh, theta, x0, &g, beta, a, NULL);
        theta[i] = keep - h;
        double down = block_loss(w, &sh, theta, x0, &g, beta, a, NULL);
        theta[i] = keep;
        double fd = (up - down) / (2 * h);
        double err = fabs(fd - grad[i]) / (1e-4 + fabs(fd));
        if (err > worst)
            worst = err;
    }
    ode_work_free(w);
    assert_true(worst < 1e-5);
}

static int train_gauss(const gauss_target *g, af_flow **flow, size_t blocks)
{
    af_flow_options o;
    af_flow_options_default(&o);
    o.blocks = blocks;
    o.train_size = 4000;
    o.batch_size = 500;
    o.iterations = 250;
    o.seed = 42;
    af_target t = {g->d, 0, gauss_eval, (void *)g, NULL, NULL, NULL};
    char msg[256];
    return af_flow_train(&t, &o, NULL, flow, msg, sizeof msg);
}

/* A flow trained on a shifted, scaled Gaussian reproduces its mean and sd. */
static void trained_flow_matches_gaussian_moments(void **state)
{
    (void)state;
    gauss_target g = {2, {3.0, -1.0}, {0.5, 2.0}};
    af_flow *flow;
    assert_int_equal(train_gauss(&g, &flow, 3), 0);

    enum { N = 20000 };
    double *x = malloc(N * 2 * sizeof *x), *lr = malloc(N * sizeof *lr);
    char msg[256];
    assert_int_equal(af_flow_sample(flow, N, 9, 1, x, lr, msg, sizeof msg), 0);

    for (size_t j = 0; j < 2; j++) {
        double s = 0, s2 = 0;
        for (size_t p = 0; p < N; p++) {
            s += x[p * 2 + j];
            s2 += x[p * 2 + j] * x[p * 2 + j];
        }
        double mean = s / N, sd = sqrt(s2 / N - mean * mean);
        /* The flow's own error, not the Monte Carlo error (0.7% of the sd
         * here), dominates these tolerances. */
        assert_true(fabs(mean - g.mean[j]) < 0.1 * g.sd[j]);
        assert_true(fabs(sd / g.sd[j] - 1.0) < 0.08);
    }

    /* Importance weights q / rho: a flow close to the target keeps most of
     * the effective sample size. */
    double max_log_w = -INFINITY, sum = 0.0, sum_sq = 0.0;
    for (size_t p = 0; p < N; p++) {
        double logq;
        gauss_eval(&g, 1.0, x + 2 * p, 1, &logq, NULL, NULL, 0);
        lr[p] = logq - lr[p];
        max_log_w = fmax(max_log_w, lr[p]);
    }
    for (size_t p = 0; p < N; p++) {
        double w = exp(lr[p] - max_log_w);
        sum += w;
        sum_sq += w * w;
    }
    assert_true(sum * sum / sum_sq > 0.9 * N);

    free(x);
    free(lr);
    af_flow_free(flow);
}

/* log rho(x) from the integrated divergence equals log N(x0) minus the log
 * |det| of the Jacobian of the whole map x0 -> x, taken by central
 * differences; the same seed gives the same samples. */
static void log_density_matches_map_jacobian(void **state)
{
    (void)state;
    gauss_target g = {2, {1.0, 0.0}, {0.8, 1.5}};
    af_flow *flow;
    assert_int_equal(train_gauss(&g, &flow, 2), 0);

    double x[8], lr[4], x2[8], lr2[4];
    char msg[256];
    assert_int_equal(af_flow_sample(flow, 4, 17, 1, x, lr, msg, sizeof msg), 0);
    assert_int_equal(af_flow_sample(flow, 4, 17, 1, x2, lr2, msg, sizeof msg), 0);
    assert_memory_equal(x, x2, sizeof x);

    /* Recover x0 of the first sample from the same stream, then push
     * perturbed copies through the flow with the internal integrator. */
    rng_state rng;
    rng_seed(&rng, 17, 3);
    double x0[2] = {rng_normal(&rng), rng_normal(&rng)};
    double log_pi0 = -log(2 * FLOW_PI) - 0.5 * (x0[0] * x0[0] + x0[1] * x0[1]);

    double jac[2][2], h = 1e-5;
    for (int j = 0; j < 2; j++) {
        double up[2] = {x0[0], x0[1]}, down[2] = {x0[0], x0[1]}, lu, ld;
        up[j] += h;
        down[j] -= h;
        flow_push_point(flow, up, &lu);
        flow_push_point(flow, down, &ld);
        for (int i = 0; i < 2; i++)
            jac[i][j] = (up[i] - down[i]) / (2 * h);
    }
    double logdet = log(fabs(jac[0][0] * jac[1][1] - jac[0][1] * jac[1][0]));
    assert_true(fabs((log_pi0 - logdet) - lr[0]) < 1e-3);
    af_flow_free(flow);
}

/* Small, fast settings for the tests of resuming and files. */
static void small_options(af_flow_options *o, size_t blocks)
{
    af_flow_options_default(o);
    o->adaptive = 0;  /* a fixed number of blocks */
    o->blocks = blocks;
    o->final_blocks = 0;
    o->max_final_blocks = 0;
    o->train_size = 1000;
    o->batch_size = 200;
    o->iterations = 30;
    o->seed = 5;
}

/* Stops training once LIMIT blocks have finished. */
typedef struct {
    size_t finished, limit;
} stop_after_block;

static int count_block(void *ctx, const af_flow *flow, char *msg, size_t len)
{
    (void)flow;
    (void)msg;
    (void)len;
    ((stop_after_block *)ctx)->finished++;
    return 0;
}

static int stop_when_finished(void *ctx)
{
    const stop_after_block *stop = ctx;
    return stop->finished >= stop->limit;
}

static void sample_small(const af_flow *flow, double *x, double *lr)
{
    char msg[256];
    assert_int_equal(af_flow_sample(flow, 50, 3, 1, x, lr, msg, sizeof msg), 0);
}

/* A run interrupted after its first block and resumed from it gives the
 * same flow, to the bit, as a run that was never interrupted. */
static void resumed_run_equals_full_run(void **state)
{
    (void)state;
    gauss_target g = {2, {1.0, 2.0}, {0.5, 1.0}};
    af_target t = {2, 0, gauss_eval, &g, NULL, NULL, NULL};
    af_flow_options o;
    af_flow *full, *part, *resumed;
    char msg[256];
    small_options(&o, 3);
    assert_int_equal(af_flow_train(&t, &o, NULL, &full, msg, sizeof msg), 0);

    stop_after_block stop = {0, 1};
    o.block_done = count_block;
    o.block_context = &stop;
    o.stop = stop_when_finished;
    o.stop_context = &stop;
    assert_int_equal(af_flow_train(&t, &o, NULL, &part, msg, sizeof msg), AF_FLOW_INTERRUPTED);
    assert_int_equal(af_flow_block_count(part), 1);

    o.stop = NULL;
    assert_int_equal(af_flow_train(&t, &o, part, &resumed, msg, sizeof msg), 0);
    assert_int_equal(af_flow_block_count(resumed), 3);

    double x1[100], lr1[50], x2[100], lr2[50];
    sample_small(full, x1, lr1);
    sample_small(resumed, x2, lr2);
    assert_memory_equal(x1, x2, sizeof x1);
    assert_memory_equal(lr1, lr2, sizeof lr1);
    af_flow_free(full);
    af_flow_free(part);
    af_flow_free(resumed);
}

/* The same with extra blocks at beta = 1 that stop when the ESS stops
 * rising: interrupted after the first of them, the resumed run stops where
 * the uninterrupted one did. */
static void resumed_run_keeps_ess_rule(void **state)
{
    (void)state;
    gauss_target g = {2, {1.0, 2.0}, {0.5, 1.0}};
    af_target t = {2, 0, gauss_eval, &g, NULL, NULL, NULL};
    af_flow_options o;
    af_flow *full, *part, *resumed;
    char msg[256];
    small_options(&o, 2);
    o.iterations = 40;
    o.max_final_blocks = 6;
    o.target_ess = 1.0;
    assert_int_equal(af_flow_train(&t, &o, NULL, &full, msg, sizeof msg), 0);
    /* Here the ESS falls after block 6, so the rule, not the maximum, ends it. */
    assert_int_equal(af_flow_block_count(full), 6);

    stop_after_block stop = {0, 5};
    o.block_done = count_block;
    o.block_context = &stop;
    o.stop = stop_when_finished;
    o.stop_context = &stop;
    assert_int_equal(af_flow_train(&t, &o, NULL, &part, msg, sizeof msg), AF_FLOW_INTERRUPTED);
    assert_int_equal(af_flow_block_count(part), 5);

    o.stop = NULL;
    assert_int_equal(af_flow_train(&t, &o, part, &resumed, msg, sizeof msg), 0);
    assert_int_equal(af_flow_block_count(resumed), af_flow_block_count(full));
    af_flow_free(full);
    af_flow_free(part);
    af_flow_free(resumed);
}

/* A flow survives encoding and decoding with its identity, and every kind
 * of damage to the bytes is rejected with its own message. */
/* Trains a small flow for a 2-D Gaussian with the options small_options
 * sets in *O. */
static af_flow *train_small_gauss(af_flow_options *o)
{
    gauss_target g = {2, {0.0, 0.0}, {1.0, 2.0}};
    af_target t = {2, 0, gauss_eval, &g, NULL, NULL, NULL};
    af_flow *flow = NULL;
    char msg[256];
    small_options(o, 2);
    assert_int_equal(af_flow_train(&t, o, NULL, &flow, msg, sizeof msg), 0);
    return flow;
}

/* Offset of the settings length field in a version 3 flow file: magic,
 * version and byte-order marker, three hashes, four shape fields,
 * sharpness, block count and completion mark. */
enum { SETTINGS_LENGTH_OFFSET = 8 + 4 + 4 + 3 * 8 + 4 * 8 + 8 + 8 + 8 };

/* Damages the settings field of the SIZE flow file BYTES, whose settings
 * text has LENGTH bytes, in three ways and restores it after each. */
static void flow_settings_damage(unsigned char *bytes, size_t size, size_t length)
{
    af_flow_identity found;
    af_flow *back = NULL;
    char msg[256];
    uint64_t stored, oversized = AF_FLOW_SETTINGS_MAX + 1, huge = UINT64_MAX;

    memcpy(&stored, bytes + SETTINGS_LENGTH_OFFSET, 8);
    assert_int_equal(stored, length);

    memcpy(bytes + SETTINGS_LENGTH_OFFSET, &oversized, 8);
    assert_int_not_equal(af_flow_deserialize(bytes, size, &found, &back, msg, sizeof msg), 0);
    assert_non_null(strstr(msg, "settings text of 2049 bytes"));
    assert_null(back);

    memcpy(bytes + SETTINGS_LENGTH_OFFSET, &huge, 8);
    assert_int_not_equal(af_flow_deserialize(bytes, size, &found, &back, msg, sizeof msg), 0);
    assert_non_null(strstr(msg, "corrupt flow file: settings text"));
    memcpy(bytes + SETTINGS_LENGTH_OFFSET, &stored, 8);

    /* A changed settings byte fails the checksum, and a NUL is rejected first. */
    unsigned char *text = bytes + SETTINGS_LENGTH_OFFSET + 8;
    text[0] ^= 0x01;
    assert_int_not_equal(af_flow_deserialize(bytes, size, &found, &back, msg, sizeof msg), 0);
    assert_non_null(strstr(msg, "checksum"));
    text[0] ^= 0x01;
    unsigned char first = text[0];
    text[0] = '\0';
    assert_int_not_equal(af_flow_deserialize(bytes, size, &found, &back, msg, sizeof msg), 0);
    assert_non_null(strstr(msg, "NUL byte in the settings text"));
    text[0] = first;

    assert_int_equal(af_flow_deserialize(bytes, size, &found, &back, msg, sizeof msg), 0);
    af_flow_free(back);
}

/* A version 2 file, the current format without its settings field, still
 * reads, with an empty settings text. */
static void flow_file_version_2_reads(void **state)
{
    (void)state;
    af_flow_options o;
    af_flow *flow = train_small_gauss(&o), *back;
    af_flow_identity id = {11, 22, 33, "iterations=5\n"}, found;
    unsigned char *bytes;
    size_t size;
    char msg[256];
    assert_int_equal(af_flow_serialize(flow, &id, &bytes, &size), 0);

    /* Cut out the length field and text, then set version 2 and the checksum. */
    const size_t cut = 8 + strlen(id.settings);
    const uint32_t version = 2;
    memmove(bytes + SETTINGS_LENGTH_OFFSET, bytes + SETTINGS_LENGTH_OFFSET + cut,
            size - SETTINGS_LENGTH_OFFSET - cut);
    size -= cut;
    memcpy(bytes + 8, &version, 4);
    uint64_t checksum = af_flow_hash(AF_FLOW_HASH_INIT, bytes, size - 8);
    memcpy(bytes + size - 8, &checksum, 8);

    memset(&found, 'x', sizeof found);
    assert_int_equal(af_flow_deserialize(bytes, size, &found, &back, msg, sizeof msg), 0);
    assert_int_equal(found.settings_hash, 33);
    assert_string_equal(found.settings, "");
    assert_int_equal(af_flow_block_count(back), af_flow_block_count(flow));
    af_flow_free(back);
    free(bytes);
    af_flow_free(flow);
}

static void flow_file_round_trip_and_damage(void **state)
{
    (void)state;
    af_flow_options o;
    af_flow *flow = train_small_gauss(&o), *back;
    af_flow_identity id = {11, 22, 33, ""}, found;
    unsigned char *bytes;
    size_t size;
    char msg[256];
    assert_int_equal(af_flow_options_text(&o, id.settings, sizeof id.settings), 0);
    assert_non_null(strstr(id.settings, "\niterations="));
    assert_int_equal(af_flow_serialize(flow, &id, &bytes, &size), 0);

    assert_int_equal(af_flow_deserialize(bytes, size, &found, &back, msg, sizeof msg), 0);
    assert_int_equal(found.model_hash, 11);
    assert_int_equal(found.data_hash, 22);
    assert_int_equal(found.settings_hash, 33);
    assert_string_equal(found.settings, id.settings);
    double x1[100], lr1[50], x2[100], lr2[50];
    sample_small(flow, x1, lr1);
    sample_small(back, x2, lr2);
    assert_memory_equal(x1, x2, sizeof x1);
    assert_memory_equal(lr1, lr2, sizeof lr1);
    af_flow_free(back);

    bytes[size / 2] ^= 0x10;
    assert_int_not_equal(af_flow_deserialize(bytes, size, &found, &back, msg, sizeof msg), 0);
    assert_non_null(strstr(msg, "checksum"));
    bytes[size / 2] ^= 0x10;

    assert_int_not_equal(af_flow_deserialize(bytes, size - 9, &found, &back, msg, sizeof msg),
                         0);
    assert_non_null(strstr(msg, "truncated"));
    assert_int_not_equal(af_flow_deserialize(bytes, 10, &found, &back, msg, sizeof msg), 0);
    assert_non_null(strstr(msg, "truncated"));

    flow_settings_damage(bytes, size, strlen(id.settings));

    bytes[8] = 99;  /* the version */
    assert_int_not_equal(af_flow_deserialize(bytes, size, &found, &back, msg, sizeof msg), 0);
    assert_non_null(strstr(msg, "version 99"));

    bytes[0] = 'X';
    assert_int_not_equal(af_flow_deserialize(bytes, size, &found, &back, msg, sizeof msg), 0);
    assert_non_null(strstr(msg, "not an afm flow file"));
    free(bytes);
    af_flow_free(flow);
}

/* A correlated 2-D Gaussian far from unit scale: sds 1e-3 and 1e-2,
 * correlation 0.8, mean (1000, 5). */
typedef struct {
    double mean[2], sd[2], rho;
} tilted_target;

static int tilted_eval(void *ctx, double level, const double *x, size_t n, double *logq,
                       double *score, char *msg, size_t len)
{
    const tilted_target *g = ctx;
    const double k = 1.0 / (1.0 - g->rho * g->rho);
    (void)level;
    (void)msg;
    (void)len;
    for (size_t p = 0; p < n; p++) {
        double u = (x[2 * p] - g->mean[0]) / g->sd[0], v = (x[2 * p + 1] - g->mean[1]) / g->sd[1];
        logq[p] = -0.5 * k * (u * u - 2.0 * g->rho * u * v + v * v);
        if (score) {
            score[2 * p] = -k * (u - g->rho * v) / g->sd[0];
            score[2 * p + 1] = -k * (v - g->rho * u) / g->sd[1];
        }
    }
    return 0;
}

static const tilted_target tilted = {{1000.0, 5.0}, {1e-3, 1e-2}, 0.8};

/* The mode search finds the mean and a root R with R R' = Sigma. */
static void standardisation_finds_laplace_map(void **state)
{
    (void)state;
    af_target t = {2, 0, tilted_eval, (void *)&tilted, NULL, NULL, NULL};
    flow_affine *map;
    char note[400], msg[256];

    assert_int_equal(flow_affine_find(&t, 1, &map, note, sizeof note, msg, sizeof msg), 0);
    assert_non_null(map);
    assert_non_null(strstr(note, "standardised"));
    for (int i = 0; i < 2; i++) {
        assert_true(fabs(map->shift[i] - tilted.mean[i]) < 1e-3 * tilted.sd[i]);
        for (int j = 0; j < 2; j++) {
            double sigma = (i == j ? 1.0 : tilted.rho) * tilted.sd[i] * tilted.sd[j];
            double rr = map->root[i * 2] * map->root[j * 2] + map->root[i * 2 + 1] * map->root[j * 2 + 1];
            assert_true(fabs(rr - sigma) < 1e-4 * tilted.sd[i] * tilted.sd[j]);
        }
    }
    flow_affine_free(map);
}

/* Two separate peaks, or a target at unit scale: the coordinates stay. */
static int two_peaks_eval(void *ctx, double level, const double *x, size_t n, double *logq,
                          double *score, char *msg, size_t len)
{
    (void)ctx;
    (void)level;
    (void)msg;
    (void)len;
    for (size_t p = 0; p < n; p++) {
        double a = x[p] - 4.0, b = x[p] + 4.0;
        double la = -0.5 * a * a, lb = -0.5 * b * b, m = fmax(la, lb);
        double wa = exp(la - m), wb = exp(lb - m);
        logq[p] = m + log(wa + wb);
        if (score)
            score[p] = -(wa * a + wb * b) / (wa + wb);
    }
    return 0;
}

static void standardisation_keeps_easy_and_multimodal_targets(void **state)
{
    (void)state;
    af_target peaks = {1, 0, two_peaks_eval, NULL, NULL, NULL, NULL};
    gauss_target unit = {2, {0.5, -0.5}, {1.2, 0.8}};
    af_target near = {2, 0, gauss_eval, &unit, NULL, NULL, NULL};
    flow_affine *map;
    char note[400], msg[256];

    assert_int_equal(flow_affine_find(&peaks, 1, &map, note, sizeof note, msg, sizeof msg), 0);
    assert_null(map);
    assert_non_null(strstr(note, "several modes"));
    assert_int_equal(flow_affine_find(&near, 1, &map, note, sizeof note, msg, sizeof msg), 0);
    assert_null(map);
    assert_non_null(strstr(note, "near unit scale"));
}

/* Training in standardised coordinates: samples in the target's
 * coordinates with its mean, sds and correlation, and a flow file that
 * keeps the map. */
static void standardised_flow_samples_target_scale(void **state)
{
    (void)state;
    af_target t = {2, 0, tilted_eval, (void *)&tilted, NULL, NULL, NULL};
    af_flow_options o;
    af_flow *flow, *back;
    char msg[256];

    small_options(&o, 2);
    o.iterations = 100;
    assert_int_equal(af_flow_train(&t, &o, NULL, &flow, msg, sizeof msg), 0);
    assert_true(af_flow_standardised(flow));

    enum { N = 20000 };
    double *x = malloc(N * 2 * sizeof *x), *lr = malloc(N * sizeof *lr);
    assert_int_equal(af_flow_sample(flow, N, 9, 1, x, lr, msg, sizeof msg), 0);
    double mean[2] = {0, 0}, var[2] = {0, 0}, cov = 0.0;
    for (size_t p = 0; p < N; p++)
        for (int j = 0; j < 2; j++)
            mean[j] += x[2 * p + j] / N;
    for (size_t p = 0; p < N; p++) {
        double u = x[2 * p] - mean[0], v = x[2 * p + 1] - mean[1];
        var[0] += u * u / N;
        var[1] += v * v / N;
        cov += u * v / N;
    }
    for (int j = 0; j < 2; j++) {
        assert_true(fabs(mean[j] - tilted.mean[j]) < 0.05 * tilted.sd[j]);
        assert_true(fabs(sqrt(var[j]) / tilted.sd[j] - 1.0) < 0.05);
    }
    assert_true(fabs(cov / sqrt(var[0] * var[1]) - tilted.rho) < 0.02);

    /* The flow log-density is in x: log q - log rho is about constant,
     * and the constant is log Z = log(2 pi sd1 sd2 sqrt(1 - rho^2)). */
    double log_z = log(2.0 * FLOW_PI * tilted.sd[0] * tilted.sd[1] *
                       sqrt(1.0 - tilted.rho * tilted.rho));
    double logq, mean_w = 0.0;
    for (size_t p = 0; p < N; p++) {
        tilted_eval((void *)&tilted, 1.0, x + 2 * p, 1, &logq, NULL, NULL, 0);
        mean_w += exp(logq - lr[p] - log_z) / N;
    }
    assert_true(fabs(mean_w - 1.0) < 0.01);

    af_flow_identity id = {1, 2, 3, ""}, found;
    unsigned char *bytes;
    size_t size;
    assert_int_equal(af_flow_serialize(flow, &id, &bytes, &size), 0);
    assert_int_equal(af_flow_deserialize(bytes, size, &found, &back, msg, sizeof msg), 0);
    assert_true(af_flow_standardised(back));
    double x1[100], lr1[50], x2[100], lr2[50];
    sample_small(flow, x1, lr1);
    sample_small(back, x2, lr2);
    assert_memory_equal(x1, x2, sizeof x1);
    assert_memory_equal(lr1, lr2, sizeof lr1);
    free(bytes);
    free(x);
    free(lr);
    af_flow_free(back);
    af_flow_free(flow);
}

static void count_plateau_line(void *ctx, const char *line)
{
    if (strstr(line, "stopped falling"))
        (*(int *)ctx)++;
}

/* On an easy target the blocks end before their budget once the loss stops
 * falling, and run the whole budget when plateau_stop is off. */
static void plateau_ends_blocks_early(void **state)
{
    (void)state;
    gauss_target g = {2, {0.5, 0.0}, {1.0, 1.5}};
    af_target t = {2, 0, gauss_eval, &g, NULL, NULL, NULL};
    af_flow_options o;
    af_flow *flow;
    char msg[256];
    int early = 0;

    small_options(&o, 2);
    o.iterations = 300;
    o.log = count_plateau_line;
    o.log_context = &early;
    assert_int_equal(af_flow_train(&t, &o, NULL, &flow, msg, sizeof msg), 0);
    af_flow_free(flow);
    assert_true(early >= 1);

    early = 0;
    o.plateau_stop = 0;
    assert_int_equal(af_flow_train(&t, &o, NULL, &flow, msg, sizeof msg), 0);
    af_flow_free(flow);
    assert_int_equal(early, 0);
}

/* Records the level of each finished block. */
typedef struct {
    double beta[64];
    size_t n;
} beta_record;

static int record_beta(void *ctx, const af_flow *flow, char *msg, size_t len)
{
    (void)msg;
    (void)len;
    beta_record *r = ctx;
    size_t k = af_flow_block_count(flow);
    if (r->n < 64)
        r->beta[r->n++] = af_flow_block_beta(flow, k - 1);
    return 0;
}

/* The adaptive schedule never steps further than the geometric one, and a
 * target whose weights change fast gets more blocks than that. */
static void adaptive_schedule_bounds_steps(void **state)
{
    (void)state;
    af_target peaks = {1, 0, two_peaks_eval, NULL, NULL, NULL, NULL};
    af_flow_options o;
    af_flow *flow;
    beta_record r = {{0}, 0};
    char msg[256];

    small_options(&o, 4);
    o.adaptive = 1;
    o.block_done = record_beta;
    o.block_context = &r;
    int rc = af_flow_train(&peaks, &o, NULL, &flow, msg, sizeof msg);
    if (rc)
        print_error("%s\n", msg);
    assert_int_equal(rc, 0);
    af_flow_free(flow);

    const double ratio = pow(o.beta_first, -1.0 / 3.0);
    size_t below_one = 0;
    assert_true(r.beta[0] <= o.beta_first * (1.0 + 1e-12));
    for (size_t k = 1; k < r.n; k++) {
        assert_true(r.beta[k] >= r.beta[k - 1]);
        assert_true(r.beta[k] <= fmin(1.0, r.beta[k - 1] * ratio) * (1.0 + 1e-12));
    }
    for (size_t k = 0; k < r.n; k++)
        below_one += r.beta[k] < 1.0;
    assert_true(below_one > 3);
}

/* N(0, 1) with log q = -inf above 1, as a model's reject would leave it. */
static int cut_normal_eval(void *ctx, double level, const double *x, size_t n, double *logq,
                           double *score, char *msg, size_t len)
{
    (void)ctx;
    (void)level;
    (void)msg;
    (void)len;
    for (size_t p = 0; p < n; p++) {
        logq[p] = x[p] > 1.0 ? -INFINITY : -0.5 * x[p] * x[p] - 0.5 * log(2.0 * FLOW_PI);
        if (score)
            score[p] = x[p] > 1.0 ? 0.0 : -x[p];
    }
    return 0;
}

/* Training goes on when some points fall where the target is -inf, and
 * the weighted estimate of Z is the mass left, Phi(1). */
static void minus_inf_region_trains(void **state)
{
    (void)state;
    af_target t = {1, 0, cut_normal_eval, NULL, NULL, NULL, NULL};
    af_flow_options o;
    af_flow *flow;
    char msg[256];

    small_options(&o, 3);
    o.iterations = 100;
    o.train_size = 4000;
    int rc = af_flow_train(&t, &o, NULL, &flow, msg, sizeof msg);
    if (rc)
        print_error("%s\n", msg);
    assert_int_equal(rc, 0);

    enum { N = 20000 };
    double *x = malloc(N * sizeof *x), *lr = malloc(N * sizeof *lr), mean_w = 0.0;
    assert_int_equal(af_flow_sample(flow, N, 4, 1, x, lr, msg, sizeof msg), 0);
    for (size_t p = 0; p < N; p++) {
        double logq;
        cut_normal_eval(NULL, 1.0, x + p, 1, &logq, NULL, NULL, 0);
        mean_w += exp(logq - lr[p]) / N;
    }
    double phi_1 = 0.5 * erfc(-1.0 / sqrt(2.0));
    assert_true(fabs(mean_w / phi_1 - 1.0) < 0.02);
    free(x);
    free(lr);
    af_flow_free(flow);
}

/* A target that returns NaN at every point on some calls: after GOOD_CALLS
 * good calls the next BAD_CALLS, and with PERIOD > 0 every PERIOD-th call.
 * Training calls it once per iteration. A failure after the first
 * iteration makes the trainer restore the block's warm start, log a retry
 * and try again with a smaller step. A failure at the first iteration
 * stops at once, because a smaller step cannot change it. (A NaN at only
 * some points of a unit trains like -inf and needs no retry.) */
typedef struct {
    gauss_target g;
    int good_calls, bad_calls, period;
    int calls;
    int retries_logged;
} flaky_target;

static int flaky_eval(void *ctx, double level, const double *x, size_t n, double *logq,
                      double *score, char *msg, size_t len)
{
    flaky_target *f = ctx;
    int rc = gauss_eval(&f->g, level, x, n, logq, score, msg, len);
    int bad = f->period > 0 && ++f->calls % f->period == 0;
    if (f->good_calls > 0) {
        f->good_calls--;
    } else if (f->bad_calls > 0) {
        f->bad_calls--;
        bad = 1;
    }
    for (size_t p = 0; bad && p < n; p++)
        logq[p] = NAN;
    return rc;
}

static void count_retry(void *ctx, const char *line)
{
    flaky_target *f = ctx;
    if (strstr(line, "retrying"))
        f->retries_logged++;
}

/* Trains T, which must fail after RETRIES logged retries at WHERE (an
 * "iteration N:" text), with "after retries" in the message exactly when
 * there were retries. */
static void expect_training_failure(const af_target *t, const af_flow_options *o,
                                    flaky_target *f, int retries, const char *where)
{
    af_flow *flow = NULL;
    char msg[256];

    f->retries_logged = 0;
    assert_int_equal(af_flow_train(t, o, NULL, &flow, msg, sizeof msg), AF_FLOW_FAILED);
    assert_null(flow);
    assert_int_equal(f->retries_logged, retries);
    assert_non_null(strstr(msg, "block 1"));
    assert_non_null(strstr(msg, where));
    assert_non_null(strstr(msg, "NaN"));
    assert_int_equal(strstr(msg, "after retries") != NULL, retries > 0);
}

static void nan_loss_retries_block(void **state)
{
    (void)state;
    flaky_target f = {{2, {0.0, 0.0}, {1.0, 1.0}}, 20, 1, 0, 0, 0};
    af_target t = {2, 0, flaky_eval, &f, NULL, NULL, NULL};
    af_flow_options o;
    af_flow *flow;
    char msg[256];
    small_options(&o, 1);
    o.standardise = 0;  /* the mode search would meet the NaNs first */
    o.log = count_retry;
    o.log_context = &f;

    /* One bad iteration: one retry, then the block trains. */
    assert_int_equal(af_flow_train(&t, &o, NULL, &flow, msg, sizeof msg), 0);
    assert_int_equal(f.retries_logged, 1);
    af_flow_free(flow);

    /* The same iteration fails in every attempt: three retries, then an error. */
    f.period = 21;
    expect_training_failure(&t, &o, &f, 3, "iteration 21:");

    /* Bad from the first iteration: an error at once. */
    f.period = 0;
    f.bad_calls = 1000000;
    expect_training_failure(&t, &o, &f, 0, "iteration 1:");
}

/* Records the point that the standardising wrapper passes on. */
static void record_point(void *ctx, const double *x, char *out, size_t len)
{
    double *seen = ctx;
    seen[0] = x[0];
    seen[1] = x[1];
    snprintf(out, len, "recorded");
}

/* A standardised target describes a bad point in the user's coordinates:
 * z maps to x = shift + R z before it reaches the model's describe callback,
 * and without one the message shows x, not z. */
static void standardised_point_is_described_in_user_terms(void **state)
{
    (void)state;
    double seen[2] = {0.0, 0.0};
    af_target inner = {2, 0, NULL, seen, NULL, NULL, record_point};
    flow_affine *map = flow_affine_new(2);
    assert_non_null(map);
    map->shift[0] = 1000.0;
    map->shift[1] = -5.0;
    map->root[0] = 0.001;
    map->root[1] = 0.002;
    map->root[3] = 0.01;
    assert_int_equal(flow_affine_finish(map), 0);

    af_target wrapped;
    assert_int_equal(flow_affine_target(&inner, map, &wrapped), 0);
    const double z[2] = {1.0, 2.0};
    char text[200];
    wrapped.describe(wrapped.context, z, text, sizeof text);
    assert_string_equal(text, "recorded");
    assert_true(fabs(seen[0] - (1000.0 + 0.001 + 0.004)) < 1e-12);
    assert_true(fabs(seen[1] - (-5.0 + 0.02)) < 1e-12);
    flow_affine_target_free(&wrapped);

    inner.describe = NULL;
    assert_int_equal(flow_affine_target(&inner, map, &wrapped), 0);
    wrapped.describe(wrapped.context, z, text, sizeof text);
    assert_string_equal(text, "x = (1000.005, -4.98)");
    flow_affine_target_free(&wrapped);
    flow_affine_free(map);
}

static void count_ess_line(void *ctx, const char *line)
{
    if (strstr(line, "importance ESS"))
        (*(int *)ctx)++;
}

/* Extra blocks at beta = 1 stop as soon as the training points' importance
 * ESS reaches the target, and otherwise run until it stops rising or the
 * most extra blocks are trained; one ESS line is logged per block at 1. */
static void extra_blocks_follow_ess(void **state)
{
    (void)state;
    gauss_target g = {2, {1.0, -1.0}, {0.7, 1.4}};
    af_target t = {2, 0, gauss_eval, &g, NULL, NULL, NULL};
    af_flow_options o;
    af_flow *flow;
    char msg[256];
    int lines = 0;
    small_options(&o, 2);
    o.iterations = 60;
    o.max_final_blocks = 4;
    o.log = count_ess_line;
    o.log_context = &lines;

    o.target_ess = 0.2;
    assert_int_equal(af_flow_train(&t, &o, NULL, &flow, msg, sizeof msg), 0);
    assert_true(af_flow_complete(flow));
    assert_int_equal(af_flow_block_count(flow), 2);
    assert_int_equal(lines, 1);
    af_flow_free(flow);

    lines = 0;
    o.target_ess = 1.0;
    assert_int_equal(af_flow_train(&t, &o, NULL, &flow, msg, sizeof msg), 0);
    assert_true(af_flow_complete(flow));
    assert_true(af_flow_block_count(flow) > 2);
    assert_true(af_flow_block_count(flow) <= 6);
    assert_int_equal(lines, (int)af_flow_block_count(flow) - 1);
    af_flow_free(flow);
}

/* The Gaussian target has no state, so its clone is itself. */
static void *share_context(void *ctx)
{
    return ctx;
}

static void keep_context(void *ctx)
{
    (void)ctx;
}

/* Relative error of GOT against the reference REF, with 0 for two equal
 * values (infinities and zeros included). */
static double relative_error(double got, long double ref)
{
    if ((long double)got == ref)
        return 0.0;
    return (double)(fabsl((long double)got - ref) / fabsl(ref));
}

/* softplus_rows, on whichever path this processor takes, against libm's
 * long double exp and log1p over a dense grid: at most 1e-15 relative error
 * in the value and in the derivative. Sharpness 1 and bias 0 keep the input
 * exact, so the error is the function's own. */
static void softplus_matches_libm(void **state)
{
    (void)state;
    enum { WIDTH = 37, GRID = 200000 }; /* 37: a partial vector ends each row */
    const size_t rows = (GRID + WIDTH - 1) / WIDTH, n = rows * WIDTH;
    double *a = malloc(n * sizeof *a), *deriv = malloc(n * sizeof *deriv);
    double *input = malloc(n * sizeof *input), bias[WIDTH] = {0};
    assert_non_null(a);
    assert_non_null(deriv);
    assert_non_null(input);

    /* Dense on [-40, 40], where both terms matter, then out to +-700, where
     * the smaller term is still a normal number. */
    for (size_t k = 0; k < n; k++) {
        double u = (double)k / (double)(n - 1);
        input[k] = k % 2 ? -40.0 + 80.0 * u : -700.0 + 1400.0 * u;
    }
    memcpy(a, input, n * sizeof *a);
    softplus_rows(a, deriv, bias, rows, WIDTH, 1.0);

    double worst_value = 0.0, worst_deriv = 0.0;
    for (size_t k = 0; k < n; k++) {
        long double t = input[k], e = expl(-fabsl(t));
        long double value = (t > 0 ? t : 0.0L) + log1pl(e);
        long double sigmoid = t >= 0 ? 1.0L / (1.0L + e) : e / (1.0L + e);
        worst_value = fmax(worst_value, relative_error(a[k], value));
        worst_deriv = fmax(worst_deriv, relative_error(deriv[k], sigmoid));
    }
    assert_true(worst_value < 1e-15);
    assert_true(worst_deriv < 1e-15);

    /* Edge values: zero, the infinities and NaN. */
    const double edge[4] = {0.0, INFINITY, -INFINITY, NAN};
    memcpy(a, edge, sizeof edge);
    softplus_rows(a, deriv, bias, 1, 4, 1.0);
    assert_true(fabs(a[0] - log(2.0)) < 1e-16);
    assert_true(deriv[0] == 0.5);
    assert_true(a[1] == INFINITY);
    assert_true(deriv[1] == 1.0);
    assert_true(a[2] == 0.0);
    assert_true(deriv[2] == 0.0);
    assert_true(isnan(a[3]));
    assert_true(isnan(deriv[3]));

    free(a);
    free(deriv);
    free(input);
}

/* softplus_backward_rows against its formula written out in the same
 * order, which the portable loop and the AVX-512 path both follow: the
 * same bits, with and without the row scales and the second term. */
static void softplus_backward_matches_formula(void **state)
{
    (void)state;
    enum { ROWS = 5, WIDTH = 11 }; /* 11: a partial vector ends each row */
    const double sharpness = 20.0;
    double s[ROWS * WIDTH], gh[ROWS * WIDTH], gs[ROWS * WIDTH], scale[ROWS];
    double ga[ROWS * WIDTH], gbias[WIDTH], expected_bias[WIDTH];
    rng_state rng;
    rng_seed(&rng, 5, 0);
    for (size_t k = 0; k < ROWS * WIDTH; k++) {
        s[k] = rng_uniform(&rng);
        gh[k] = rng_normal(&rng);
        gs[k] = rng_normal(&rng);
    }
    for (size_t p = 0; p < ROWS; p++)
        scale[p] = rng_normal(&rng);

    for (int variant = 0; variant < 3; variant++) {
        const double *use_gs = variant == 2 ? NULL : gs;
        const double *use_scale = variant == 0 ? scale : NULL;
        for (size_t i = 0; i < WIDTH; i++)
            gbias[i] = expected_bias[i] = 0.25 * (double)i;
        softplus_backward_rows(ga, gh, use_gs, use_scale, s, ROWS, WIDTH, sharpness, gbias);

        for (size_t i = 0; i < WIDTH; i++) {
            double sum = 0.0;
            for (size_t p = 0; p < ROWS; p++) {
                size_t k = p * WIDTH + i;
                double g = gh[k] * s[k];
                if (use_gs) {
                    double row_gs = use_scale ? use_scale[p] * gs[k] : gs[k];
                    g += row_gs * (sharpness * s[k] * (1.0 - s[k]));
                }
                assert_true(ga[k] == g);
                sum += g;
            }
            expected_bias[i] += sum;
            assert_true(gbias[i] == expected_bias[i]);
        }
    }
}

/* Training and sampling on two threads give the same bits as on one. */
static void thread_count_does_not_change_results(void **state)
{
    (void)state;
    gauss_target g = {2, {1.0, -1.0}, {0.7, 1.4}};
    af_target t = {2, 0, gauss_eval, &g, share_context, keep_context, NULL};
    af_flow_options o;
    af_flow *one, *two;
    char msg[256];
    small_options(&o, 2);
    o.batch_size = 600;  /* three units of work */
    assert_int_equal(af_flow_train(&t, &o, NULL, &one, msg, sizeof msg), 0);
    o.threads = 2;
    assert_int_equal(af_flow_train(&t, &o, NULL, &two, msg, sizeof msg), 0);

    enum { N = 3000 };
    double *x1 = malloc(N * 2 * sizeof *x1), *x2 = malloc(N * 2 * sizeof *x2);
    double *lr1 = malloc(N * sizeof *lr1), *lr2 = malloc(N * sizeof *lr2);
    assert_int_equal(af_flow_sample(one, N, 4, 1, x1, lr1, msg, sizeof msg), 0);
    assert_int_equal(af_flow_sample(two, N, 4, 2, x2, lr2, msg, sizeof msg), 0);
    assert_memory_equal(x1, x2, N * 2 * sizeof *x1);
    assert_memory_equal(lr1, lr2, N * sizeof *lr1);
    free(x1);
    free(x2);
    free(lr1);
    free(lr2);
    af_flow_free(one);
    af_flow_free(two);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(softplus_matches_libm),
        cmocka_unit_test(softplus_backward_matches_formula),
        cmocka_unit_test(divergence_matches_jacobian_trace),
        cmocka_unit_test(block_gradient_matches_finite_differences),
        cmocka_unit_test(trained_flow_matches_gaussian_moments),
        cmocka_unit_test(log_density_matches_map_jacobian),
        cmocka_unit_test(resumed_run_equals_full_run),
        cmocka_unit_test(resumed_run_keeps_ess_rule),
        cmocka_unit_test(flow_file_round_trip_and_damage),
        cmocka_unit_test(flow_file_version_2_reads),
        cmocka_unit_test(standardisation_finds_laplace_map),
        cmocka_unit_test(standardisation_keeps_easy_and_multimodal_targets),
        cmocka_unit_test(standardised_flow_samples_target_scale),
        cmocka_unit_test(plateau_ends_blocks_early),
        cmocka_unit_test(adaptive_schedule_bounds_steps),
        cmocka_unit_test(minus_inf_region_trains),
        cmocka_unit_test(nan_loss_retries_block),
        cmocka_unit_test(standardised_point_is_described_in_user_terms),
        cmocka_unit_test(thread_count_does_not_change_results),
        cmocka_unit_test(extra_blocks_follow_ess),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
