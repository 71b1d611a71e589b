/* afrun: the command-line front end. Compiles a model with its data, trains
 * an Annealing Flow on its log-density, samples it, writes a CmdStan-style
 * CSV file and prints a summary. Progress goes to stderr. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <signal.h>
#include <sys/stat.h>
#include <stdarg.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cblas.h>

#include "af_census.h"
#include "af_eval.h"
#include "af_flow.h"
#include "af_lang.h"
#include "af_logprob.h"
#include "af_output.h"
#include "af_store.h"
#include "af_weights.h"

#define AFRUN_VERSION "0.1.0"

typedef struct {
    const char *model_path;
    const char *data_path;
    const char *output_path;
    const char *flow_path;  /* NULL: the output path with .flow for .csv */
    const char *log_prob_path;  /* --log-prob: evaluate at these points only */
    char default_flow_path[4096];
    size_t samples;
    int quiet;
    int retrain;
    int resample;
    size_t resample_moves;  /* Langevin steps on the resampled draws */
    int has_resample_moves;
    int constrained;
    int allow_extern;
    int no_standardise;
    int full_blocks;
    uint64_t sample_seed;  /* seed of the draws; --seed's when not given */
    int has_sample_seed;
    af_flow_options flow;
} afrun_args;

static void print_usage(FILE *out)
{
    fputs("usage: afrun MODEL.afm [options]\n"
          "\n"
          "Trains an Annealing Flow on the model's log-density and writes samples.\n"
          "\n"
          "options:\n"
          "  --data FILE.json     data for the model's data block (CmdStan JSON layout)\n"
          "  --samples N          number of samples to write (default 1000)\n"
          "  --seed S             random seed, an unsigned integer (default 1)\n"
          "  --sample-seed S      seed of the draws alone: new draws from the same trained\n"
          "                       flow without retraining (default: --seed)\n"
          "  -o, --output FILE    output CSV file (default output.csv)\n"
          "  --schedule S         adaptive (each beta keeps --ess-fraction of the\n"
          "                       samples' ESS, with steps no longer than the geometric\n"
          "                       schedule's) or geometric (--blocks) (default adaptive)\n"
          "  --ess-fraction X     adaptive: ESS fraction kept per beta step (default 0.5)\n"
          "  --max-blocks K       adaptive: most annealing blocks (default 40)\n"
          "  --blocks K           annealing blocks of the geometric schedule, whose steps\n"
          "                       also bound the adaptive one (default 8)\n"
          "  --final-blocks K     fewest extra blocks at beta = 1 (default 1)\n"
          "  --max-final-blocks K most extra blocks at beta = 1; they stop early once the\n"
          "                       importance ESS reaches --target-ess (default 5)\n"
          "  --target-ess X       importance ESS fraction that ends the extra blocks\n"
          "                       (default 0.9)\n"
          "  --iterations N       most Adam iterations per block (default 400); a block\n"
          "                       ends sooner once its loss stops falling\n"
          "  --full-blocks        run every block to --iterations\n"
          "  --train-size N       points in the training set (default 100000)\n"
          "  --batch-size N       points per Adam iteration (default 1000)\n"
          "  --learning-rate X    Adam step size (default 0.002)\n"
          "  --hidden N           width of both hidden layers of each velocity MLP\n"
          "                       (default 32)\n"
          "  --rk4-steps S        RK4 steps over each block's unit time (default 3)\n"
          "  --langevin-steps N   Metropolis-adjusted Langevin steps on the training points\n"
          "                       after each block, at that block's level (default 0);\n"
          "                       the samples written stay pure flow samples, so their\n"
          "                       flow log-density stays exact\n"
          "  --sampler M          integrator for sampling: rk4 (the training's steps) or\n"
          "                       dopri (adaptive Dormand-Prince 5(4)) (default rk4)\n"
          "  --ode-tolerance X    dopri: bound on each step's estimated local error, as a\n"
          "                       fraction of 1 + each value's magnitude (default 1e-06)\n"
          "  --no-standardise     train in the model's own unconstrained coordinates; by\n"
          "                       default a mode search first decides whether an affine\n"
          "                       map to unit scale helps (a single mode far from unit\n"
          "                       scale)\n"
          "  --flow FILE          flow file to reuse, resume or write (default: the output\n"
          "                       path with .flow in place of .csv)\n"
          "  --retrain            train anew even when the flow file matches\n"
          "  --resample           write draws resampled in proportion to their importance\n"
          "                       weights (unweighted)\n"
          "  --resample-moves N   with --resample: Metropolis-adjusted Langevin steps at\n"
          "                       level 1 on the resampled draws, which spread out\n"
          "                       repeated rows; 0 keeps the repeats (default 10)\n"
          "  --threads N          worker threads; the samples do not depend on it\n"
          "                       (default: the number of processors)\n"
          "  --log-prob POINTS    print lp__ and its gradient g.1..g.d (unconstrained)\n"
          "                       at the points in POINTS (CSV rows or a JSON array of\n"
          "                       arrays) instead of sampling\n"
          "  --constrained        with --log-prob: the points are parameter values, or an\n"
          "                       afrun output CSV whose parameter columns are used\n"
          "  --allow-extern       let the model load the shared libraries of its extern\n"
          "                       functions (runs their code with your rights)\n"
          "  --quiet              no progress on stderr\n"
          "  --version            print the version and exit\n"
          "  -h, --help           print this help and exit\n",
          out);
}

/* Parses an unsigned decimal count; returns 0 on success. */
static int parse_size(const char *text, size_t *out)
{
    char *end;
    errno = 0;
    if (!text || *text == '-' || *text == '+' || *text == '\0')
        return -1;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || *end != '\0')
        return -1;
    *out = (size_t)v;
    return 0;
}

static int parse_double(const char *text, double *out)
{
    char *end;
    errno = 0;
    if (!text || *text == '\0')
        return -1;
    *out = strtod(text, &end);
    return errno || *end != '\0' || !isfinite(*out) ? -1 : 0;
}

/* Options that take a count, their destination and smallest valid value. */
static size_t *count_option(afrun_args *a, const char *name, size_t *minimum)
{
    static const struct {
        const char *name;
        size_t minimum;
    } counts[] = {{"--samples", 1},    {"--blocks", 1},     {"--final-blocks", 0},
                  {"--iterations", 1}, {"--train-size", 1}, {"--batch-size", 1},
                  {"--threads", 1},    {"--max-blocks", 1}, {"--max-final-blocks", 0},
                  {"--hidden", 1},     {"--rk4-steps", 1}, {"--langevin-steps", 0},
                  {"--resample-moves", 0}};
    size_t *dest[] = {&a->samples,         &a->flow.blocks,     &a->flow.final_blocks,
                      &a->flow.iterations, &a->flow.train_size, &a->flow.batch_size,
                      &a->flow.threads,    &a->flow.max_blocks, &a->flow.max_final_blocks,
                      &a->flow.hidden1,    &a->flow.substeps, &a->flow.langevin_steps,
                      &a->resample_moves};

    for (size_t k = 0; k < sizeof counts / sizeof counts[0]; k++)
        if (!strcmp(name, counts[k].name)) {
            *minimum = counts[k].minimum;
            return dest[k];
        }
    return NULL;
}

/* Options without a value, and the flag each sets. */
static int *flag_option(afrun_args *a, const char *name)
{
    static const char *const names[] = {"--quiet",         "--retrain",      "--resample",
                                        "--constrained",   "--allow-extern", "--no-standardise",
                                        "--full-blocks"};
    int *dest[] = {&a->quiet,       &a->retrain,      &a->resample,      &a->constrained,
                   &a->allow_extern, &a->no_standardise, &a->full_blocks};

    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
        if (!strcmp(name, names[k]))
            return dest[k];
    return NULL;
}

static int takes_value(const char *name)
{
    static const char *const others[] = {"--seed", "--sample-seed", "--learning-rate",
                                         "--data", "-o", "--output", "--flow", "--schedule",
                                         "--ess-fraction",
                                         "--target-ess", "--log-prob", "--sampler",
                                         "--ode-tolerance"};
    size_t minimum;
    afrun_args scratch;

    for (size_t k = 0; k < sizeof others / sizeof others[0]; k++)
        if (!strcmp(name, others[k]))
            return 1;
    return count_option(&scratch, name, &minimum) != NULL;
}

/* Stores VALUE for the option NAME, which takes a value. Returns 0, or -1
 * after printing an error. */
static int apply_option(afrun_args *a, const char *name, const char *value)
{
    size_t minimum, seed;
    size_t *count = count_option(a, name, &minimum);

    if (count) {
        a->has_resample_moves |= count == &a->resample_moves;
        if (parse_size(value, count) == 0 && *count >= minimum)
            return 0;
        fprintf(stderr, "afrun: invalid value '%s' for %s: expected an integer >= %zu\n",
                value, name, minimum);
        return -1;
    }
    if (!strcmp(name, "--seed") || !strcmp(name, "--sample-seed")) {
        if (parse_size(value, &seed) == 0) {
            if (!strcmp(name, "--seed"))
                a->flow.seed = (uint64_t)seed;
            else
                a->sample_seed = (uint64_t)seed;
            a->has_sample_seed |= !strcmp(name, "--sample-seed");
            return 0;
        }
        fprintf(stderr, "afrun: invalid value '%s' for %s: expected a non-negative integer\n",
                value, name);
        return -1;
    }
    if (!strcmp(name, "--learning-rate")) {
        if (parse_double(value, &a->flow.learning_rate) == 0 && a->flow.learning_rate > 0)
            return 0;
        fprintf(stderr, "afrun: invalid learning rate '%s': expected a positive number\n",
                value);
        return -1;
    }
    if (!strcmp(name, "--schedule")) {
        if (strcmp(value, "adaptive") && strcmp(value, "geometric")) {
            fprintf(stderr, "afrun: invalid schedule '%s': expected adaptive or geometric\n",
                    value);
            return -1;
        }
        a->flow.adaptive = !strcmp(value, "adaptive");
        return 0;
    }
    if (!strcmp(name, "--sampler")) {
        if (strcmp(value, "rk4") && strcmp(value, "dopri")) {
            fprintf(stderr, "afrun: invalid sampler '%s': expected rk4 or dopri\n", value);
            return -1;
        }
        a->flow.sampler = !strcmp(value, "dopri") ? AF_SAMPLER_DOPRI : AF_SAMPLER_RK4;
        return 0;
    }
    if (!strcmp(name, "--ode-tolerance")) {
        if (parse_double(value, &a->flow.ode_tolerance) == 0 && a->flow.ode_tolerance > 0)
            return 0;
        fprintf(stderr, "afrun: invalid ODE tolerance '%s': expected a positive number\n",
                value);
        return -1;
    }
    if (!strcmp(name, "--ess-fraction") || !strcmp(name, "--target-ess")) {
        double *f = name[2] == 'e' ? &a->flow.ess_fraction : &a->flow.target_ess;
        if (parse_double(value, f) == 0 && *f > 0 && *f <= 1)
            return 0;
        fprintf(stderr, "afrun: invalid value '%s' for %s: expected a number in (0, 1]\n",
                value, name);
        return -1;
    }
    if (!strcmp(name, "--data"))
        a->data_path = value;
    else if (!strcmp(name, "--flow"))
        a->flow_path = value;
    else if (!strcmp(name, "--log-prob"))
        a->log_prob_path = value;
    else
        a->output_path = value;
    return 0;
}

/* Parses the option at ARGV[*I], in the form "--name value" or
 * "--name=value". Returns 0, 1 when help or the version was printed, or -1
 * after printing an error. */
static int parse_option(afrun_args *a, int argc, char **argv, int *i)
{
    char name[64];
    const char *arg = argv[*i], *value = NULL;
    const char *equals = strncmp(arg, "--", 2) == 0 ? strchr(arg, '=') : NULL;
    size_t name_len = equals ? (size_t)(equals - arg) : strlen(arg);

    snprintf(name, sizeof name, "%.*s", (int)name_len, arg);
    if (!strcmp(name, "-h") || !strcmp(name, "--help")) {
        print_usage(stdout);
        return 1;
    }
    if (!strcmp(name, "--version")) {
        printf("afrun %s\n", AFRUN_VERSION);
        return 1;
    }
    int *flag = flag_option(a, name);
    if (flag) {
        if (!equals) {
            *flag = 1;
            return 0;
        }
        fprintf(stderr, "afrun: option %s takes no value\n", name);
        return -1;
    }
    if (!takes_value(name)) {
        fprintf(stderr, "afrun: unknown option '%s'; see afrun --help\n", name);
        return -1;
    }

    if (equals)
        value = equals + 1;
    else if (*i + 1 < argc && !(argv[*i + 1][0] == '-' && argv[*i + 1][1] == '-'))
        value = argv[++*i];
    if (!value) {
        fprintf(stderr, "afrun: option %s needs a value; see afrun --help\n", name);
        return -1;
    }
    return apply_option(a, name, value);
}

/* Returns 0 to run, 1 to exit with success, -1 to exit with failure. */
static int parse_args(afrun_args *a, int argc, char **argv)
{
    memset(a, 0, sizeof *a);
    a->samples = 1000;
    a->resample_moves = 10;
    a->output_path = "output.csv";
    af_flow_options_default(&a->flow);
    long processors = sysconf(_SC_NPROCESSORS_ONLN);
    a->flow.threads = processors > 0 ? (size_t)processors : 1;

    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-' && argv[i][1] != '\0') {
            int rc = parse_option(a, argc, argv, &i);
            if (rc)
                return rc;
        } else if (!a->model_path) {
            a->model_path = argv[i];
        } else {
            fprintf(stderr, "afrun: unexpected argument '%s': only one model file is taken\n",
                    argv[i]);
            return -1;
        }
    }
    a->flow.standardise = !a->no_standardise;
    a->flow.plateau_stop = !a->full_blocks;
    if (!a->model_path) {
        fputs("afrun: no model file given\n", stderr);
        print_usage(stderr);
        return -1;
    }
    if (a->has_resample_moves && !a->resample) {
        fputs("afrun: --resample-moves needs --resample; it moves the resampled draws\n",
              stderr);
        return -1;
    }
    if (a->constrained && !a->log_prob_path) {
        fputs("afrun: --constrained needs --log-prob POINTS; it sets how those points are "
              "read\n",
              stderr);
        return -1;
    }
    if (!a->flow_path) {
        size_t n = strlen(a->output_path);
        int csv = n > 4 && !strcmp(a->output_path + n - 4, ".csv");
        if (n + 6 > sizeof a->default_flow_path) {
            fputs("afrun: the output path is too long to derive a flow path; give --flow\n",
                  stderr);
            return -1;
        }
        snprintf(a->default_flow_path, sizeof a->default_flow_path, "%.*s.flow",
                 (int)(csv ? n - 4 : n), a->output_path);
        a->flow_path = a->default_flow_path;
    }
    a->flow.hidden2 = a->flow.hidden1;
    if (a->flow.max_final_blocks < a->flow.final_blocks) {
        fprintf(stderr, "afrun: --max-final-blocks (%zu) must be at least --final-blocks (%zu)\n",
                a->flow.max_final_blocks, a->flow.final_blocks);
        return -1;
    }
    if (a->flow.train_size < a->flow.batch_size) {
        fprintf(stderr,
                "afrun: --train-size (%zu) must be at least --batch-size (%zu); raise the "
                "first or lower the second\n",
                a->flow.train_size, a->flow.batch_size);
        return -1;
    }
    return 0;
}

/* The flow's view of the model: one evaluator workspace per thread. */
typedef struct {
    const af_model *model;
    af_eval *eval;
} target_context;

static int eval_target(void *context, double level, const double *x, size_t n, double *logq,
                       double *score, char *msg, size_t len)
{
    target_context *t = context;
    af_eval_set_level(t->eval, level);
    return af_eval_logp(t->eval, x, n, logq, score, msg, len);
}

/* Writes the unconstrained point X as the named, constrained values of
 * the first parameters, then X itself: "mu = 1.5, sigma = 0.2
 * (unconstrained point (1.5, -1.60944))". */
static void describe_target_point(void *context, const double *x, char *out, size_t len)
{
    const target_context *t = context;
    const size_t d = af_model_dim(t->model), shown = 6;
    size_t columns = af_model_column_count(t->model);
    size_t params = af_model_parameter_column_count(t->model);
    double *values = malloc((columns ? columns : 1) * sizeof *values);
    char ignored[256];
    size_t used = 0;

    out[0] = '\0';
    if (values && af_model_constrain(t->model, x, values, ignored, sizeof ignored) == 0) {
        for (size_t j = 0; j < params && j < shown && used < len; j++)
            used += (size_t)snprintf(out + used, len - used, "%s%s = %.10g", j ? ", " : "",
                                     af_model_column_name(t->model, j), values[j]);
        if (params > shown && used < len)
            used += (size_t)snprintf(out + used, len - used, ", ...");
        if (used < len)
            used += (size_t)snprintf(out + used, len - used, " (unconstrained point ");
    }
    int named = used > 0;
    free(values);
    if (used < len)
        used += (size_t)snprintf(out + used, len - used, named ? "(" : "x = (");
    for (size_t j = 0; j < d && j < shown && used < len; j++)
        used += (size_t)snprintf(out + used, len - used, "%s%.10g", j ? ", " : "", x[j]);
    if (used < len)
        snprintf(out + used, len - used, "%s)%s", d > shown ? ", ..." : "", named ? ")" : "");
}

static void *clone_target(void *context)
{
    const target_context *t = context;
    target_context *copy = malloc(sizeof *copy);
    if (!copy)
        return NULL;
    copy->model = t->model;
    copy->eval = af_eval_new(t->model);
    if (!copy->eval) {
        free(copy);
        return NULL;
    }
    return copy;
}

static void release_target(void *clone)
{
    target_context *t = clone;
    af_eval_free(t->eval);
    free(t);
}

/* The model's log-density as a flow target, evaluated through CONTEXT. */
static af_target model_target(const af_model *model, target_context *context)
{
    af_target target = {af_model_dim(model), af_model_uses_level(model), eval_target,
                        context, clone_target, release_target, describe_target_point};
    return target;
}

/* Exit status after Ctrl-C, as shells report a SIGINT (128 + 2). */
#define EXIT_INTERRUPTED 130

/* Set by SIGINT; training stops at the next iteration. */
static volatile sig_atomic_t interrupted;

static void on_interrupt(int signal_number)
{
    (void)signal_number;
    interrupted = 1;
}

static int should_stop(void *context)
{
    (void)context;
    return interrupted;
}

static void log_line(void *context, const char *line)
{
    int quiet = *(const int *)context;
    if (!quiet || strncmp(line, "warning: ", 9) == 0)
        fprintf(stderr, "afrun: %s\n", line);
}

/* Where finished blocks are saved, for the block callback. */
typedef struct {
    const char *path;
    af_flow_identity id;
} flow_sink;

static int save_block(void *context, const af_flow *flow, char *msg, size_t len)
{
    const flow_sink *sink = context;
    return af_store_save(sink->path, flow, &sink->id, msg, len);
}

/* Progress on stderr: one updating line on a terminal, else a line per
 * block. */
/* Seconds between progress lines within a block when stderr is not a
 * terminal, so that a log shows a slow block is alive. */
#define PROGRESS_LOG_SECONDS 30.0

typedef struct {
    int tty;
    double printed;  /* training seconds at the last line */
} progress_state;

static void show_progress(void *context, const af_flow_progress *p)
{
    progress_state *state = context;
    int tty = state->tty;
    int block_done = p->block_done;

    if (!tty && !block_done && p->seconds - state->printed < PROGRESS_LOG_SECONDS)
        return;
    state->printed = p->seconds;
    char block[48];
    if (p->blocks)
        snprintf(block, sizeof block, "%zu/%zu", p->block, p->blocks);
    else
        snprintf(block, sizeof block, "%zu", p->block);
    fprintf(stderr, "%sblock %s  beta %.4f  iteration %zu/%zu  loss %.4f  %.1f s%s",
            tty ? "\r" : "", block, p->beta, p->iteration, p->iterations, p->loss, p->seconds,
            tty && !block_done ? "" : "\n");
    fflush(stderr);
}

enum { SETTING_LEN = 512, MAX_SETTINGS = 48 };

/* The CSV header's settings, formatted into caller-owned storage. */
typedef struct {
    af_output_setting list[MAX_SETTINGS];
    char text[MAX_SETTINGS][SETTING_LEN];
    size_t n;
} settings_table;

static void add_setting(settings_table *t, const char *key, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static void add_setting(settings_table *t, const char *key, const char *format, ...)
{
    va_list ap;
    if (t->n == MAX_SETTINGS)
        return; /* MAX_SETTINGS is sized for fill_settings; a new line needs it raised */
    va_start(ap, format);
    vsnprintf(t->text[t->n], SETTING_LEN, format, ap);
    va_end(ap);
    t->list[t->n].key = key;
    t->list[t->n].value = t->text[t->n];
    t->n++;
}

static void fill_settings(settings_table *t, const afrun_args *a, const af_flow *flow,
                          double train_seconds, double sample_seconds)
{
    const af_flow_options *f = &a->flow;

    t->n = 0;
    add_setting(t, "afm_version", "%s", AFRUN_VERSION);
    add_setting(t, "method", "%s", "annealing_flow");
    /* rstan's read_stan_csv names the sampler from this key when the
     * header has no CmdStan algorithm of its own. */
    add_setting(t, "sampler_t", "%s", "annealing_flow");
    add_setting(t, "model", "%s", a->model_path);
    if (a->data_path)
        add_setting(t, "data", "%s", a->data_path);
    add_setting(t, "seed", "%" PRIu64, f->seed);
    add_setting(t, "sample_seed", "%" PRIu64, a->has_sample_seed ? a->sample_seed : f->seed);
    add_setting(t, "num_warmup", "%d", 0);  /* rstan's read_stan_csv needs these three */
    add_setting(t, "save_warmup", "%d", 0);
    add_setting(t, "num_samples", "%zu", a->samples);
    add_setting(t, "thin", "%d", 1);
    add_setting(t, "schedule", "%s", f->adaptive ? "adaptive" : "geometric");
    add_setting(t, "ess_fraction", "%g", f->ess_fraction);
    add_setting(t, "max_blocks", "%zu", f->max_blocks);
    add_setting(t, "blocks", "%zu", f->blocks);
    add_setting(t, "final_blocks", "%zu", f->final_blocks);
    add_setting(t, "max_final_blocks", "%zu", f->max_final_blocks);
    add_setting(t, "target_ess", "%g", f->target_ess);
    add_setting(t, "beta_first", "%g", f->beta_first);
    add_setting(t, "iterations", "%zu", f->iterations);
    add_setting(t, "plateau_stop", "%s", f->plateau_stop ? "true" : "false");
    add_setting(t, "train_size", "%zu", f->train_size);
    add_setting(t, "batch_size", "%zu", f->batch_size);
    add_setting(t, "learning_rate", "%g", f->learning_rate);
    add_setting(t, "clip_norm", "%g", f->clip_norm);
    add_setting(t, "w2_weight", "%g", f->w2_weight);
    add_setting(t, "hidden", "%zu,%zu", f->hidden1, f->hidden2);
    add_setting(t, "softplus_sharpness", "%g", f->sharpness);
    add_setting(t, "rk4_steps", "%zu", f->substeps);
    add_setting(t, "langevin_steps", "%zu", f->langevin_steps);
    add_setting(t, "sampler", "%s", f->sampler == AF_SAMPLER_DOPRI ? "dopri" : "rk4");
    if (f->sampler == AF_SAMPLER_DOPRI)
        add_setting(t, "ode_tolerance", "%g", f->ode_tolerance);
    add_setting(t, "standardise", "%s", f->standardise ? "true" : "false");
    add_setting(t, "standardised", "%s", af_flow_standardised(flow) ? "true" : "false");
    add_setting(t, "flow_file", "%s", a->flow_path);
    add_setting(t, "threads", "%zu", f->threads);
    add_setting(t, "resampled", "%s", a->resample ? "true" : "false");
    add_setting(t, "resample_moves", "%zu", a->resample ? a->resample_moves : 0);
    add_setting(t, "train_seconds", "%.1f", train_seconds);
    add_setting(t, "sample_seconds", "%.1f", sample_seconds);
}

/* Everything one run allocates, freed in one place. */
typedef struct {
    af_model *model;
    af_eval *eval;
    af_flow *flow;
    double *z, *lp, *lp_approx, *log_weight, *values;
    af_weights_summary weights;  /* of the draws before any resampling */
    af_census *census;           /* of the draws before any resampling; NULL when it
                                    failed */
    const char **names;
} afrun_state;

static void state_free(afrun_state *s)
{
    af_flow_free(s->flow);
    af_eval_free(s->eval);
    af_model_free(s->model);
    af_census_free(s->census);
    free(s->z);
    free(s->lp);
    free(s->lp_approx);
    free(s->log_weight);
    free(s->values);
    free(s->names);
}

/* Draws the samples and evaluates lp__, log_weight and the output columns. */
/* Replaces the N draws by N draws taken from them in proportion to their
 * importance weights (systematic resampling). Each row keeps its own lp__
 * and lp_approx__, and its log_weight becomes 0: the rows are unweighted. */
static int resample_draws(afrun_state *s, size_t n, size_t d, uint64_t seed, char *msg,
                          size_t len)
{
    size_t *index = malloc(n * sizeof *index);
    double *z = malloc(n * d * sizeof *z), *row = malloc(2 * n * sizeof *row);
    int rc = -1;

    if (!index || !z || !row)
        snprintf(msg, len, "out of memory while resampling %zu draws", n);
    else if (af_weights_resample(s->log_weight, n, seed, index))
        snprintf(msg, len, "cannot resample: every importance weight is zero");
    else
        rc = 0;

    if (rc == 0) {
        memcpy(z, s->z, n * d * sizeof *z);
        memcpy(row, s->lp, n * sizeof *row);
        memcpy(row + n, s->lp_approx, n * sizeof *row);
        for (size_t p = 0; p < n; p++) {
            memcpy(s->z + p * d, z + index[p] * d, d * sizeof *z);
            s->lp[p] = row[index[p]];
            s->lp_approx[p] = row[n + index[p]];
            s->log_weight[p] = 0.0;
        }
    }
    free(index);
    free(z);
    free(row);
    return rc;
}

/* Moves the N resampled draws by a->resample_moves Langevin steps at level
 * 1, which keep the target invariant, so repeated rows spread out. The
 * moved rows have a new lp__, no flow log-density (lp_approx__ NaN) and
 * log_weight 0: they are unweighted draws. */
static int move_draws(afrun_state *s, const afrun_args *a, size_t n, uint64_t seed, char *msg,
                      size_t len)
{
    if (a->resample_moves == 0)
        return 0;
    target_context context = {s->model, s->eval};
    af_target target = model_target(s->model, &context);
    double acceptance;
    char why[768];

    if (af_flow_move(s->flow, &target, s->z, n, a->resample_moves, seed, a->flow.threads,
                     &acceptance, why, sizeof why)) {
        snprintf(msg, len, "Langevin moves of the resampled draws failed: %s", why);
        return -1;
    }
    af_eval_set_level(s->eval, 1.0);
    if (af_eval_logp(s->eval, s->z, n, s->lp, NULL, msg, len))
        return -1;
    for (size_t p = 0; p < n; p++) {
        s->lp_approx[p] = NAN;
        s->log_weight[p] = 0.0;
    }
    if (!a->quiet)
        fprintf(stderr, "moved the resampled draws by %zu Langevin steps (%.0f%% accepted)\n",
                a->resample_moves, 100.0 * acceptance);
    return 0;
}

static int draw_samples(afrun_state *s, const afrun_args *a, char *msg, size_t len)
{
    const size_t n = a->samples, d = af_model_dim(s->model);
    const size_t cols = af_model_column_count(s->model);

    s->z = malloc(n * d * sizeof *s->z);
    s->lp = malloc(n * sizeof *s->lp);
    s->lp_approx = malloc(n * sizeof *s->lp_approx);
    s->log_weight = malloc(n * sizeof *s->log_weight);
    s->values = malloc(n * (cols ? cols : 1) * sizeof *s->values);
    s->names = malloc((cols ? cols : 1) * sizeof *s->names);
    if (!s->z || !s->lp || !s->lp_approx || !s->log_weight || !s->values || !s->names) {
        snprintf(msg, len, "out of memory for %zu samples of dimension %zu", n, d);
        return -1;
    }

    af_eval_set_level(s->eval, 1.0);
    af_sample_stats stats;
    af_flow_options sampling = a->flow;
    sampling.seed = a->has_sample_seed ? a->sample_seed : a->flow.seed;
    if (af_flow_sample_with(s->flow, &sampling, n, s->z, s->lp_approx, &stats, msg, len) ||
        af_eval_logp(s->eval, s->z, n, s->lp, NULL, msg, len))
        return -1;
    size_t steps = stats.accepted + stats.rejected;
    if (steps > 0 && !a->quiet)
        fprintf(stderr, "dopri: %.1f steps per sample per block, %.1f%% of them rejected\n",
                (double)steps / (double)(n * af_flow_block_count(s->flow)),
                100.0 * (double)stats.rejected / (double)steps);

    /* A draw where the log-density is NaN weighs 0, as one outside the
     * support does; lp__ keeps the NaN. */
    for (size_t p = 0; p < n; p++)
        s->log_weight[p] = isnan(s->lp[p]) ? -INFINITY : s->lp[p] - s->lp_approx[p];
    af_weights_summarise(s->log_weight, n, &s->weights);
    /* The census is a diagnostic: when it fails, the run goes on without it. */
    /* It clusters in the flow's standardised coordinates, where a target
     * whose parameters differ in scale by orders of magnitude is round. */
    char census_msg[256];
    double *standard = malloc((n * d > 0 ? n * d : 1) * sizeof *standard);
    if (!standard)
        snprintf(census_msg, sizeof census_msg, "out of memory");
    else
        af_flow_to_standard(s->flow, s->z, n, standard);
    if (!standard || af_census_run(standard, n, d, s->log_weight, NULL, &s->census, census_msg,
                                   sizeof census_msg))
        fprintf(stderr, "afrun: warning: no mode census: %s\n", census_msg);
    free(standard);
    if (a->resample && (resample_draws(s, n, d, sampling.seed, msg, len) ||
                        move_draws(s, a, n, sampling.seed, msg, len)))
        return -1;
    char why[768];
    for (size_t p = 0; p < n; p++) {
        if (af_model_constrain(s->model, s->z + p * d, s->values + p * cols, why, sizeof why)) {
            snprintf(msg, len, "draw %zu: %s", p + 1, why);
            return -1;
        }
    }
    for (size_t j = 0; j < cols; j++)
        s->names[j] = af_model_column_name(s->model, j);
    return 0;
}

/* Points at which warn_flat_directions evaluates the score. */
enum { FLAT_CHECK_POINTS = 8 };

/* Warns about each unconstrained coordinate on which the log-density at
 * level 1 does not depend: its score is exactly 0 at every finite one of a
 * few spread points. Such a parameter has no prior and no likelihood term,
 * so the target is improper along it.
 * NOTE: a parameter with only a lower bound and no prior is improper too,
 * but the log-Jacobian gives it a score of 1, so it is not caught here. */
static void warn_flat_directions(afrun_state *s)
{
    const size_t d = af_model_dim(s->model), n = FLAT_CHECK_POINTS;
    double *z = malloc(n * d * sizeof *z), *score = malloc(n * d * sizeof *score);
    double logp[FLAT_CHECK_POINTS];
    char msg[256];

    /* Deterministic points spread over [-1.5, 1.5] in every coordinate. */
    for (size_t p = 0; p < n && z; p++)
        for (size_t j = 0; j < d; j++)
            z[p * d + j] = 1.5 * sin(1.0 + 1.7 * (double)p + 2.3 * (double)j);
    af_eval_set_level(s->eval, 1.0);
    if (!z || !score || af_eval_logp(s->eval, z, n, logp, score, msg, sizeof msg)) {
        free(z);
        free(score);
        return;
    }

    int named = af_model_parameter_column_count(s->model) == d;
    for (size_t j = 0; j < d; j++) {
        size_t finite = 0, flat = 0;
        for (size_t p = 0; p < n; p++) {
            if (!isfinite(logp[p]))
                continue;
            finite++;
            flat += score[p * d + j] == 0.0;
        }
        if (finite < 2 || flat < finite)
            continue;
        char name[128];
        if (named)
            snprintf(name, sizeof name, "%s", af_model_column_name(s->model, j));
        else
            snprintf(name, sizeof name, "unconstrained coordinate %zu", j + 1);
        fprintf(stderr,
                "afrun: warning: the log-density does not change with %s (its derivative is "
                "exactly 0 at %zu points), so the target is improper along it and its draws "
                "and log Z mean nothing. Give it a prior, or remove it if it is unused.\n",
                name, finite);
    }
    free(z);
    free(score);
}

/* Below this fraction of the draws, the importance-weight ESS shows that the
 * flow has not reached the target (a well-trained flow keeps most of it). */
#define LOW_ESS_FRACTION 0.1

/* Above this fraction of the draws at weight 0 (outside the support), the
 * flow puts mass where the target has none, which the warnings name first. */
#define OUTSIDE_FRACTION 0.01

static void warn_poor_weights(const af_weights_summary *weights, size_t n)
{
    const af_weights_summary w = *weights;
    double fraction = w.ess / (double)n;
    double outside = (double)w.zero_weights / (double)n;

    if (outside > OUTSIDE_FRACTION)
        fprintf(stderr,
                "afrun: warning: %zu of %zu draws (%.1f%%) fall where the log-density is -inf "
                "or NaN, so the weighted estimates rest on the other draws. When the model's "
                "support is narrower than its parameters' declared range (a reject, or a "
                "density that is 0 somewhere), declare the bounds (<lower=0>, say) so that "
                "every draw lies inside.\n",
                w.zero_weights, n, 100.0 * outside);
    else if (fraction < LOW_ESS_FRACTION)
        fprintf(stderr,
                "afrun: warning: the importance-weight ESS is %.1f of %zu draws (%.1f%%), so "
                "the flow is far from the target and the summary and log Z are not reliable. "
                "Train longer (--iterations, --blocks) or check that the model's density is "
                "proper.\n",
                w.ess, n, 100.0 * fraction);
    else if (w.pareto_k > AF_WEIGHTS_K_UNRELIABLE && w.max_ratio > AF_WEIGHTS_FLAT_RATIO)
        fprintf(stderr,
                "afrun: warning: the largest importance weights have a heavy tail (Pareto k "
                "%.2f, above %.1f): the flow's tails are lighter than the target's, so "
                "weighted tail estimates and the standard error of log Z are not reliable. "
                "Train longer (--iterations, --blocks) or draw more samples.\n",
                w.pareto_k, AF_WEIGHTS_K_UNRELIABLE);
}

/* Prints the mode census after the summary table, with each shown
 * cluster's centre mapped to the constrained scale, and warns on stderr
 * when the importance weights disagree with the draws. */
static void print_census(const afrun_state *s, const af_output_draws *draws)
{
    const size_t columns = draws->columns;
    size_t shown = af_census_cluster_count(s->census);
    char msg[1024];

    shown = shown < AF_CENSUS_SHOWN ? shown : AF_CENSUS_SHOWN;
    double *centres = malloc((shown * columns > 0 ? shown * columns : 1) * sizeof *centres);
    if (!centres) {
        fputs("afrun: warning: no mode census: out of memory\n", stderr);
        return;
    }
    /* The census is a diagnostic, so a centre whose columns fail is shown as it is. */
    double *centre = malloc((af_flow_dim(s->flow) ? af_flow_dim(s->flow) : 1) * sizeof *centre);
    if (!centre) {
        free(centres);
        fputs("afrun: warning: no mode census: out of memory\n", stderr);
        return;
    }
    for (size_t i = 0; i < shown; i++) {
        af_flow_from_standard(s->flow, af_census_centre(s->census, i), 1, centre);
        af_model_constrain(s->model, centre, centres + i * columns, msg, sizeof msg);
    }
    free(centre);
    af_census_print(stdout, s->census, draws->names, columns, centres);
    free(centres);
    if (af_census_warning(s->census, msg, sizeof msg))
        fprintf(stderr, "afrun: warning: %s\n", msg);
}

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Explains an interrupted training run that kept FINISHED blocks. */
static void describe_interrupt(const afrun_args *a, size_t finished, char *msg, size_t len)
{
    if (finished == 0)
        snprintf(msg, len, "interrupted before the first block finished; nothing was saved");
    else
        snprintf(msg, len, "interrupted; %s keeps the %zu finished blocks, and the same "
                 "command%s resumes from there", a->flow_path, finished,
                 a->retrain ? " without --retrain" : "");
}

/* Reuses, resumes or trains the flow, saving each finished block to the flow
 * file. Returns 0, or non-zero with a message. */
static int obtain_flow(afrun_args *a, afrun_state *s, char *msg, size_t len)
{
    flow_sink sink = {a->flow_path, {0, 0, 0, ""}};
    af_flow *saved = NULL;

    if (af_store_identity(s->model, a->data_path, &a->flow, &sink.id, msg, len) ||
        (a->retrain && af_store_check_replaceable(a->flow_path, msg, len)) ||
        (!a->retrain && af_store_load(a->flow_path, &sink.id, &saved, msg, len)))
        return -1;
    if (saved && af_flow_complete(saved)) {
        if (!a->quiet)
            fprintf(stderr, "reusing the trained flow in %s (%zu blocks)\n", a->flow_path,
                    af_flow_block_count(saved));
        s->flow = saved;
        return 0;
    }
    if (saved && !a->quiet)
        fprintf(stderr, "resuming from %s at block %zu\n", a->flow_path,
                af_flow_block_count(saved) + 1);

    progress_state progress = {isatty(STDERR_FILENO), 0.0};
    target_context context = {s->model, s->eval};
    af_target target = model_target(s->model, &context);
    a->flow.progress = a->quiet ? NULL : show_progress;
    a->flow.progress_context = &progress;
    a->flow.block_done = save_block;
    a->flow.block_context = &sink;
    a->flow.stop = should_stop;
    a->flow.log = log_line;
    a->flow.log_context = &a->quiet;

    int rc = af_flow_train(&target, &a->flow, saved, &s->flow, msg, len);
    af_flow_free(saved);
    if (rc == AF_FLOW_INTERRUPTED)
        describe_interrupt(a, af_flow_block_count(s->flow), msg, len);
    return rc;
}

/* Tells whether paths A and B name the same existing file. */
static int same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    if (!a || !b || stat(a, &sa) != 0 || stat(b, &sb) != 0)
        return a && b && strcmp(a, b) == 0;
    return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* Checks before any work that the output and flow files can be written and
 * that neither is an input or the other output. */
static int check_paths(const afrun_args *a, char *msg, size_t len)
{
    const char *outputs[2][2] = {{a->output_path, "-o"}, {a->flow_path, "--flow"}};
    const char *inputs[2][2] = {{a->model_path, "model"}, {a->data_path, "data"}};

    if (same_file(a->output_path, a->flow_path)) {
        snprintf(msg, len, "the output and the flow file are both %s; give them different paths "
                 "with -o and --flow", a->output_path);
        return -1;
    }
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++)
            if (same_file(outputs[i][0], inputs[j][0])) {
                snprintf(msg, len, "%s %s is the %s file; choose another path so it is not "
                         "overwritten", outputs[i][1], outputs[i][0], inputs[j][1]);
                return -1;
            }
    for (int i = 0; i < 2; i++)
        if (af_output_check_writable(outputs[i][0], msg, len))
            return -1;
    return 0;
}

static int run(afrun_args *a, afrun_state *s)
{
    char msg[1024];
    char *diagnostics = NULL;

    if (!a->log_prob_path && check_paths(a, msg, sizeof msg)) {
        fprintf(stderr, "afrun: %s\n", msg);
        return -1;
    }
    af_lang_options lang = {a->allow_extern};
    if (af_model_compile_opts(a->model_path, a->data_path, &lang, &s->model, &diagnostics)) {
        fprintf(stderr, "%s", diagnostics ? diagnostics : "afrun: compilation failed\n");
        free(diagnostics);
        return -1;
    }
    if (af_model_warnings(s->model))
        fputs(af_model_warnings(s->model), stderr);
    if (af_model_printed(s->model) && !a->quiet)
        fputs(af_model_printed(s->model), stderr);
    s->eval = af_eval_new(s->model);
    if (!s->eval) {
        fputs("afrun: out of memory for the model evaluator\n", stderr);
        return -1;
    }

    if (af_model_dim(s->model) == 0) {
        fprintf(stderr,
                "%s: error: the model has no parameters to sample; declare at least one in "
                "its parameters block\n",
                a->model_path);
        return -1;
    }

    if (a->log_prob_path) {
        if (af_logprob_run(s->model, s->eval, a->log_prob_path, a->constrained, stdout,
                           a->quiet ? NULL : stderr, msg, sizeof msg) == 0) {
            if (msg[0] != '\0')
                fprintf(stderr, "afrun: warning: %s\n", msg);
            return 0;
        }
        fprintf(stderr, "afrun: %s\n", msg);
        return -1;
    }

    warn_flat_directions(s);
    double start = now_seconds();
    int rc = obtain_flow(a, s, msg, sizeof msg);
    double trained = now_seconds();
    if (rc == 0 && draw_samples(s, a, msg, sizeof msg))
        rc = AF_FLOW_FAILED;
    /* NOTE: sampling itself is not interruptible; Ctrl-C during it takes
     * effect here, before the output is written. */
    if (rc == 0 && interrupted) {
        snprintf(msg, sizeof msg, "interrupted before writing %s; the flow in %s is saved, so "
                 "the same command only samples", a->output_path, a->flow_path);
        rc = AF_FLOW_INTERRUPTED;
    }
    if (rc) {
        fprintf(stderr, "afrun: %s\n", msg);
        return rc == AF_FLOW_INTERRUPTED ? EXIT_INTERRUPTED : -1;
    }
    double seconds = now_seconds() - start;

    settings_table settings;
    fill_settings(&settings, a, s->flow, trained - start, now_seconds() - trained);
    af_output_draws draws = {a->samples,     af_model_column_count(s->model),
                             s->names,       s->values,
                             s->lp,          s->lp_approx,
                             s->log_weight};
    if (af_output_write_csv(a->output_path, settings.list, settings.n, &draws, msg,
                            sizeof msg)) {
        fprintf(stderr, "afrun: %s\n", msg);
        return -1;
    }
    if (!a->quiet)
        fprintf(stderr, "wrote %zu samples to %s in %.1f s\n", a->samples, a->output_path,
                seconds);
    if (af_output_print_summary(stdout, &draws, &s->weights, !a->resample))
        return -1;
    if (s->census)
        print_census(s, &draws);
    warn_poor_weights(&s->weights, draws.n);
    return 0;
}

int main(int argc, char **argv)
{
    afrun_args args;
    int rc = parse_args(&args, argc, argv);
    if (rc)
        return rc > 0 ? 0 : 2;

    /* The matrices are small (batch x 32); one BLAS thread is fastest. */
    openblas_set_num_threads(1);

    /* Ctrl-C stops training after the current iteration; the flow file then
     * keeps every finished block. */
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_interrupt;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, NULL);

    afrun_state state;
    memset(&state, 0, sizeof state);
    rc = run(&args, &state);
    state_free(&state);
    if (rc == EXIT_INTERRUPTED)
        return EXIT_INTERRUPTED;
    return rc == 0 ? 0 : 1;
}
