/* Times the model evaluator: af_eval_logp with the score on batches of
 * random points, as the flow trainer calls it once per Adam iteration.
 * Prints one line of key=value figures on stdout.
 *
 *   bench_eval MODEL.afm [DATA.json] [--points N] [--repeats R] [--seed S]
 *
 * The points are N(0, I) draws on the unconstrained scale. The first batch
 * is a warm-up. The fastest and the median of the R timed batches are
 * reported in milliseconds per batch of N points, in wall time and in CPU
 * time of the process, which is the steadier figure on a loaded machine.
 * It runs one thread with one BLAS thread, as each afrun worker does. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>

#include "af_eval.h"
#include "af_lang.h"

enum { DEFAULT_POINTS = 1000, DEFAULT_REPEATS = 5 };

static double seconds_now(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Parses a positive count. Returns 0, or -1 with a message on stderr. */
static int parse_count(const char *option, const char *text, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v == 0 || text[0] == '-') {
        fprintf(stderr, "bench_eval: %s expects a positive integer, found '%s'\n", option, text);
        return -1;
    }
    *out = (size_t)v;
    return 0;
}

/* Draws a standard normal by Box-Muller from rand(), which is enough for
 * timing. */
static double normal_draw(void)
{
    double u1 = ((double)rand() + 1.0) / ((double)RAND_MAX + 2.0);
    double u2 = (double)rand() / ((double)RAND_MAX + 1.0);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct {
    const char *model_path;
    const char *data_path;
    size_t points;
    size_t repeats;
    size_t seed;
} bench_args;

static int parse_args(int argc, char **argv, bench_args *args)
{
    *args = (bench_args){NULL, NULL, DEFAULT_POINTS, DEFAULT_REPEATS, 1};
    for (int i = 1; i < argc; i++) {
        size_t *count = NULL;
        if (strcmp(argv[i], "--points") == 0)
            count = &args->points;
        else if (strcmp(argv[i], "--repeats") == 0)
            count = &args->repeats;
        else if (strcmp(argv[i], "--seed") == 0)
            count = &args->seed;
        if (count != NULL) {
            if (i + 1 >= argc) {
                fprintf(stderr, "bench_eval: %s is missing its value\n", argv[i]);
                return -1;
            }
            if (parse_count(argv[i], argv[i + 1], count) != 0)
                return -1;
            i++;
        } else if (args->model_path == NULL) {
            args->model_path = argv[i];
        } else if (args->data_path == NULL) {
            args->data_path = argv[i];
        } else {
            fprintf(stderr, "bench_eval: unexpected argument '%s'\n", argv[i]);
            return -1;
        }
    }
    if (args->model_path == NULL) {
        fprintf(stderr, "usage: bench_eval MODEL.afm [DATA.json] [--points N] [--repeats R] "
                        "[--seed S]\n");
        return -1;
    }
    return 0;
}

/* Evaluates the batch REPEATS + 1 times and writes the wall and CPU
 * seconds of each timed batch. */
static int time_batches(af_eval *eval, const bench_args *args, const double *z, double *logp,
                        double *score, double *wall, double *cpu)
{
    char message[512] = "";
    for (size_t r = 0; r <= args->repeats; r++) {
        double wall_start = seconds_now(CLOCK_MONOTONIC);
        double cpu_start = seconds_now(CLOCK_PROCESS_CPUTIME_ID);
        if (af_eval_logp(eval, z, args->points, logp, score, message, sizeof message) != 0) {
            fprintf(stderr, "bench_eval: evaluation failed: %s\n", message);
            return -1;
        }
        if (r == 0)
            continue;
        wall[r - 1] = seconds_now(CLOCK_MONOTONIC) - wall_start;
        cpu[r - 1] = seconds_now(CLOCK_PROCESS_CPUTIME_ID) - cpu_start;
    }
    return 0;
}

int main(int argc, char **argv)
{
    bench_args args;
    if (parse_args(argc, argv, &args) != 0)
        return 2;
    openblas_set_num_threads(1);

    af_model *model = NULL;
    char *message = NULL;
    if (af_model_compile(args.model_path, args.data_path, &model, &message) != 0) {
        fprintf(stderr, "%s", message != NULL ? message : "bench_eval: compilation failed\n");
        free(message);
        return 1;
    }
    size_t d = af_model_dim(model);
    af_eval *eval = af_eval_new(model);
    double *z = malloc(args.points * d * sizeof *z);
    double *logp = malloc(args.points * sizeof *logp);
    double *score = malloc(args.points * d * sizeof *score);
    double *wall = malloc(args.repeats * sizeof *wall);
    double *cpu = malloc(args.repeats * sizeof *cpu);
    int status = 1;
    if (eval == NULL || z == NULL || logp == NULL || score == NULL || wall == NULL ||
        cpu == NULL) {
        fprintf(stderr, "bench_eval: out of memory\n");
        goto done;
    }
    srand((unsigned)args.seed);
    for (size_t i = 0; i < args.points * d; i++)
        z[i] = normal_draw();
    if (time_batches(eval, &args, z, logp, score, wall, cpu) != 0)
        goto done;

    /* A checksum of the results, so that two builds can be seen to agree. */
    double logp_sum = 0.0, score_sum = 0.0;
    for (size_t b = 0; b < args.points; b++) {
        logp_sum += logp[b];
        for (size_t j = 0; j < d; j++)
            score_sum += score[b * d + j];
    }
    qsort(wall, args.repeats, sizeof *wall, compare_doubles);
    qsort(cpu, args.repeats, sizeof *cpu, compare_doubles);
    printf("model=%s d=%zu points=%zu chunk=%zu repeats=%zu wall_fastest_ms=%.2f "
           "wall_median_ms=%.2f cpu_fastest_ms=%.2f cpu_median_ms=%.2f logp_sum=%.10g "
           "score_sum=%.10g\n",
           args.model_path, d, args.points, af_eval_chunk_size(eval), args.repeats,
           1e3 * wall[0], 1e3 * wall[args.repeats / 2], 1e3 * cpu[0],
           1e3 * cpu[args.repeats / 2], logp_sum, score_sum);
    status = 0;
done:
    free(z);
    free(logp);
    free(score);
    free(wall);
    free(cpu);
    af_eval_free(eval);
    af_model_free(model);
    return status;
}
