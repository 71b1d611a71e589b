/* Times the training iterations of one Annealing Flow block through the
 * public flow API, for comparison with the PyTorch version in
 * bench/torch_block.py. Prints one line of key=value figures on stdout.
 *
 * What is timed: the Adam iterations of a single block at beta = 1, each
 * drawing a batch from the training set, integrating it with RK4 (exact
 * divergence), evaluating the target and its score, back-propagating and
 * taking the Adam step. The clock runs from the first progress report to the
 * last, so the first tenth of the iterations serves as the warm-up. Drawing
 * the training set, allocating work space and pushing the training set
 * through the finished block are not counted. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>

#include "af_flow.h"

/* Circle mixture: equal-weight unit Gaussians with means spread evenly on
 * a circle in the first two coordinates (the six modes on radius 8 of the
 * Annealing Flow paper). */
enum { CIRCLE_MODES = 6 };
static const double CIRCLE_RADIUS = 8.0;

/* Exp-weighted Gaussian: log q = EXP_GAUSS_WEIGHT * sum of |x_i| over the
 * first EXP_GAUSS_COORDS coordinates - |x|^2 / 2 (1024 modes when d >= 10). */
enum { EXP_GAUSS_COORDS = 10 };
static const double EXP_GAUSS_WEIGHT = 10.0;

typedef enum { TARGET_CIRCLE, TARGET_EXP_GAUSS } target_kind;

typedef struct {
    target_kind kind;
    size_t d;
} bench_target;

static void circle_point(const bench_target *t, const double *x, double *logq, double *score)
{
    const double two_pi = 6.283185307179586;
    double log_terms[CIRCLE_MODES], max = -INFINITY;

    for (size_t k = 0; k < CIRCLE_MODES; k++) {
        double angle = two_pi * (double)k / CIRCLE_MODES;
        double dx = x[0] - CIRCLE_RADIUS * cos(angle), dy = x[1] - CIRCLE_RADIUS * sin(angle);
        log_terms[k] = -0.5 * (dx * dx + dy * dy);
        if (log_terms[k] > max)
            max = log_terms[k];
    }

    /* Log-sum-exp over the modes; the score is the responsibility-weighted
     * pull towards each mean. */
    double sum = 0.0, pull_x = 0.0, pull_y = 0.0;
    for (size_t k = 0; k < CIRCLE_MODES; k++) {
        double angle = two_pi * (double)k / CIRCLE_MODES, w = exp(log_terms[k] - max);
        sum += w;
        pull_x += w * (CIRCLE_RADIUS * cos(angle) - x[0]);
        pull_y += w * (CIRCLE_RADIUS * sin(angle) - x[1]);
    }
    double rest = 0.0;
    for (size_t j = 2; j < t->d; j++)
        rest += x[j] * x[j];
    *logq = max + log(sum) - 0.5 * rest;
    if (!score)
        return;
    score[0] = pull_x / sum;
    score[1] = pull_y / sum;
    for (size_t j = 2; j < t->d; j++)
        score[j] = -x[j];
}

static void exp_gauss_point(const bench_target *t, const double *x, double *logq, double *score)
{
    double sum = 0.0;
    for (size_t j = 0; j < t->d; j++) {
        double pull = 0.0;  /* derivative of the |x_j| term */
        if (j < EXP_GAUSS_COORDS) {
            sum += EXP_GAUSS_WEIGHT * fabs(x[j]);
            pull = x[j] > 0 ? EXP_GAUSS_WEIGHT : -EXP_GAUSS_WEIGHT;
        }
        sum -= 0.5 * x[j] * x[j];
        if (score)
            score[j] = pull - x[j];
    }
    *logq = sum;
}

static int target_eval(void *context, double level, const double *x, size_t n, double *logq,
                       double *score, char *message, size_t message_len)
{
    const bench_target *t = context;
    (void)level;
    (void)message;
    (void)message_len;

    for (size_t p = 0; p < n; p++) {
        double *point_score = score ? score + p * t->d : NULL;
        if (t->kind == TARGET_CIRCLE)
            circle_point(t, x + p * t->d, &logq[p], point_score);
        else
            exp_gauss_point(t, x + p * t->d, &logq[p], point_score);
    }
    return 0;
}

/* The targets keep no state, so every thread may share the context. */
static void *share_context(void *context)
{
    return context;
}

static void keep_context(void *context)
{
    (void)context;
}

/* Clock readings at the first and last progress report of the block. */
typedef struct {
    size_t first_iteration, last_iteration;
    double first_wall, last_wall;  /* seconds since the start of training */
    double first_cpu, last_cpu;    /* process CPU seconds, all threads */
    double first_loss, last_loss;
    int reports;
} timing;

static double process_cpu_seconds(void)
{
    struct timespec now;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
    return (double)now.tv_sec + 1e-9 * (double)now.tv_nsec;
}

static void record_progress(void *context, const af_flow_progress *progress)
{
    timing *t = context;
    double cpu = process_cpu_seconds();

    if (t->reports++ == 0) {
        t->first_iteration = progress->iteration;
        t->first_wall = progress->seconds;
        t->first_cpu = cpu;
        t->first_loss = progress->loss;
    }
    t->last_iteration = progress->iteration;
    t->last_wall = progress->seconds;
    t->last_cpu = cpu;
    t->last_loss = progress->loss;
}

static int parse_size(const char *text, const char *option, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long value = strtoull(text, &end, 10);
    if (errno || end == text || *end || value == 0 || text[0] == '-') {
        fprintf(stderr, "bench_block: invalid value '%s' for %s: expected a positive integer\n",
                text, option);
        return -1;
    }
    *out = (size_t)value;
    return 0;
}

static void print_usage(FILE *out)
{
    fprintf(out,
            "usage: bench_block [--target circle|exp_gauss] [--dim D] [--iterations N]\n"
            "                   [--threads T] [--batch B] [--train-size M]\n"
            "Times N Adam iterations of one flow block (the first N/10 are the warm-up)\n"
            "and prints the wall and CPU seconds per iteration.\n"
            "Defaults: circle, D = 2, N = 200, T = 1, B = 1000, M = 100000.\n");
}

/* Reads the command line into TARGET and OPTIONS. Returns 0, 1 after
 * --help, or -1 after printing what is wrong. */
static int parse_arguments(int argc, char **argv, bench_target *target, af_flow_options *o)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0) {
            print_usage(stdout);
            return 1;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "bench_block: unknown option or missing value: '%s'\n", arg);
            print_usage(stderr);
            return -1;
        }

        const char *value = argv[++i];
        int rc = 0;
        if (strcmp(arg, "--target") == 0 && strcmp(value, "circle") == 0)
            target->kind = TARGET_CIRCLE;
        else if (strcmp(arg, "--target") == 0 && strcmp(value, "exp_gauss") == 0)
            target->kind = TARGET_EXP_GAUSS;
        else if (strcmp(arg, "--target") == 0) {
            fprintf(stderr, "bench_block: unknown target '%s': expected circle or exp_gauss\n",
                    value);
            rc = -1;
        } else if (strcmp(arg, "--dim") == 0)
            rc = parse_size(value, arg, &target->d);
        else if (strcmp(arg, "--iterations") == 0)
            rc = parse_size(value, arg, &o->iterations);
        else if (strcmp(arg, "--threads") == 0)
            rc = parse_size(value, arg, &o->threads);
        else if (strcmp(arg, "--batch") == 0)
            rc = parse_size(value, arg, &o->batch_size);
        else if (strcmp(arg, "--train-size") == 0)
            rc = parse_size(value, arg, &o->train_size);
        else {
            fprintf(stderr, "bench_block: unknown option '%s'\n", arg);
            print_usage(stderr);
            rc = -1;
        }
        if (rc)
            return -1;
    }

    if (target->kind == TARGET_CIRCLE && target->d < 2) {
        fprintf(stderr, "bench_block: the circle target needs --dim of at least 2\n");
        return -1;
    }
    if (o->iterations < 20) {
        fprintf(stderr, "bench_block: --iterations must be at least 20 so that the timed "
                "part (after the first tenth) spans several reports\n");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    bench_target target = {TARGET_CIRCLE, 2};
    af_flow_options o;
    timing clock_readings = {0};

    af_flow_options_default(&o);
    o.iterations = 200;
    int rc = parse_arguments(argc, argv, &target, &o);
    if (rc)
        return rc > 0 ? 0 : 2;

    /* One block at beta = 1 and no extra blocks: the geometric schedule,
     * whose single block is at beta = 1, and every iteration of the budget
     * (no stop on a plateau), so that the iteration count is the one timed. */
    o.adaptive = 0;
    o.plateau_stop = 0;
    o.blocks = 1;
    o.final_blocks = 0;
    o.max_final_blocks = 0;
    o.progress = record_progress;
    o.progress_context = &clock_readings;

    /* Each worker thread calls BLAS on its own small matrices, as afrun does. */
    openblas_set_num_threads(1);

    af_target t = {target.d, 0, target_eval, &target, share_context, keep_context, NULL};
    af_flow *flow = NULL;
    char message[600];
    if (af_flow_train(&t, &o, NULL, &flow, message, sizeof message)) {
        fprintf(stderr, "bench_block: %s\n", message);
        return 1;
    }
    af_flow_free(flow);

    const timing *c = &clock_readings;
    double timed = (double)(c->last_iteration - c->first_iteration);
    printf("afm target=%s d=%zu threads=%zu batch=%zu timed_iterations=%.0f "
           "wall_s_per_iter=%.6g cpu_s_per_iter=%.6g loss_first=%.6g loss_last=%.6g\n",
           target.kind == TARGET_CIRCLE ? "circle" : "exp_gauss", target.d, o.threads,
           o.batch_size, timed, (c->last_wall - c->first_wall) / timed,
           (c->last_cpu - c->first_cpu) / timed, c->first_loss, c->last_loss);
    return 0;
}
