/* CmdStan-style CSV output, written atomically, and the summary table of
 * the draws with their importance-weight diagnostics. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "af_output.h"
#include "af_weights.h"

/* Ten significant digits: importance weights come from differences of
 * log-densities, so they need more than CmdStan's default of six. */
#define NUMBER_FORMAT "%.10g"
enum { CSV_DIGITS = 10 };

/* Returns the significant digits that show a value as large as LARGEST
 * with EXTRA digits of a spread SD, and at least LEAST (at most 17, which
 * round-trips a double). */
static int digits_for_spread(double largest, double sd, int extra, int least)
{
    if (!(sd > 0.0) || !isfinite(sd) || !(largest > 0.0) || !isfinite(largest))
        return least;
    int digits = (int)floor(log10(largest)) - (int)floor(log10(sd)) + extra;
    if (digits < least)
        return least;
    if (digits > 17)
        return 17;
    return digits;
}

/* Returns the digits for column J of DRAWS: 10, or more when its values
 * are close together next to their size, so that the file keeps 6 digits
 * of their spread (a sd of 1e-6 around 1000 needs 15). */
static int column_digits(const af_output_draws *draws, size_t j)
{
    double sum = 0.0, largest = 0.0;
    size_t n = 0;
    for (size_t p = 0; p < draws->n; p++) {
        double v = draws->values[p * draws->columns + j];
        if (!isfinite(v))
            continue;
        n++;
        sum += v;
        largest = fmax(largest, fabs(v));
    }
    if (n < 2)
        return CSV_DIGITS;
    double mean = sum / (double)n;
    double spread = 0.0;
    for (size_t p = 0; p < draws->n; p++) {
        double v = draws->values[p * draws->columns + j];
        if (isfinite(v))
            spread += (v - mean) * (v - mean);
    }
    return digits_for_spread(largest, sqrt(spread / (double)(n - 1)), 6, CSV_DIGITS);
}

static void write_header(FILE *f, const af_output_setting *settings, size_t n_settings,
                         const af_output_draws *draws)
{
    for (size_t i = 0; i < n_settings; i++)
        fprintf(f, "# %s = %s\n", settings[i].key, settings[i].value);

    fputs("lp__,lp_approx__,log_weight", f);
    for (size_t j = 0; j < draws->columns; j++)
        fprintf(f, ",%s", draws->names[j]);
    fputc('\n', f);
}

static void write_rows(FILE *f, const af_output_draws *draws)
{
    int *digits = malloc((draws->columns ? draws->columns : 1) * sizeof *digits);
    for (size_t j = 0; j < draws->columns; j++)
        digits[j] = digits ? column_digits(draws, j) : CSV_DIGITS;

    for (size_t p = 0; p < draws->n; p++) {
        fprintf(f, NUMBER_FORMAT "," NUMBER_FORMAT "," NUMBER_FORMAT, draws->lp[p],
                draws->lp_approx[p], draws->log_weight[p]);
        for (size_t j = 0; j < draws->columns; j++)
            fprintf(f, ",%.*g", digits ? digits[j] : CSV_DIGITS,
                    draws->values[p * draws->columns + j]);
        fputc('\n', f);
    }
    free(digits);
}

/* Opens a new temporary file next to PATH, readable as the umask allows
 * (mkstemp would make it private to the user). Stores its name in TMP. */
static FILE *open_temporary(const char *path, char *tmp, size_t tmp_len)
{
    for (unsigned attempt = 0; attempt < 100; attempt++) {
        snprintf(tmp, tmp_len, "%s.tmp.%ld.%u", path, (long)getpid(), attempt);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0666);
        if (fd >= 0) {
            FILE *f = fdopen(fd, "w");
            if (!f) {
                close(fd);
                unlink(tmp);
            }
            return f;
        }
        if (errno != EEXIST)
            return NULL;
    }
    return NULL;
}

int af_output_check_writable(const char *path, char *msg, size_t len)
{
    char tmp[4096];
    FILE *f = strlen(path) + 48 <= sizeof tmp ? open_temporary(path, tmp, sizeof tmp) : NULL;
    if (!f) {
        snprintf(msg, len, "cannot write next to %s: %s; choose another path", path,
                 strerror(errno));
        return -1;
    }
    fclose(f);
    unlink(tmp);
    return 0;
}

/* Writes PATH atomically: WRITE fills a temporary file next to it, which
 * then replaces PATH by rename, so PATH is either the old or the whole new
 * file. Returns 0, or non-zero with a message. */
static int write_atomically(const char *path, void (*write)(FILE *, const void *),
                            const void *context, char *msg, size_t len)
{
    size_t tmp_len = strlen(path) + 48;
    char *tmp = malloc(tmp_len);
    if (!tmp) {
        snprintf(msg, len, "out of memory while writing %s", path);
        return -1;
    }

    FILE *f = open_temporary(path, tmp, tmp_len);
    if (!f) {
        snprintf(msg, len, "cannot create a temporary file next to %s: %s", path,
                 strerror(errno));
        free(tmp);
        return -1;
    }

    write(f, context);
    int failed = ferror(f) || fflush(f) || fsync(fileno(f));
    int saved = errno;
    failed |= fclose(f) != 0;
    if (!failed && rename(tmp, path) != 0) {
        failed = 1;
        saved = errno;
    }
    if (failed) {
        snprintf(msg, len, "cannot write %s: %s", path, strerror(saved));
        unlink(tmp);
    }
    free(tmp);
    return failed ? -1 : 0;
}

typedef struct {
    const af_output_setting *settings;
    size_t n_settings;
    const af_output_draws *draws;
} csv_content;

/* Value of the setting KEY as a number, or 0 when it is absent. */
static double setting_seconds(const csv_content *c, const char *key)
{
    for (size_t i = 0; i < c->n_settings; i++)
        if (strcmp(c->settings[i].key, key) == 0)
            return strtod(c->settings[i].value, NULL);
    return 0.0;
}

static void write_csv(FILE *f, const void *context)
{
    const csv_content *c = context;
    write_header(f, c->settings, c->n_settings, c->draws);
    write_rows(f, c->draws);

    /* CmdStan's closing lines, which rstan's read_stan_csv requires;
     * training takes the place of the warm-up. */
    double train = setting_seconds(c, "train_seconds");
    double sample = setting_seconds(c, "sample_seconds");
    fprintf(f, "# \n#  Elapsed Time: %.3f seconds (Warm-up)\n", train);
    fprintf(f, "#                %.3f seconds (Sampling)\n", sample);
    fprintf(f, "#                %.3f seconds (Total)\n# \n", train + sample);
}

int af_output_write_csv(const char *path, const af_output_setting *settings,
                        size_t n_settings, const af_output_draws *draws, char *msg, size_t len)
{
    csv_content content = {settings, n_settings, draws};
    return write_atomically(path, write_csv, &content, msg, len);
}

typedef struct {
    const void *bytes;
    size_t size;
} byte_content;

static void write_bytes(FILE *f, const void *context)
{
    const byte_content *c = context;
    fwrite(c->bytes, 1, c->size, f);
}

int af_output_write_bytes(const char *path, const void *bytes, size_t size, char *msg,
                          size_t len)
{
    byte_content content = {bytes, size};
    return write_atomically(path, write_bytes, &content, msg, len);
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* A draw's value and its normalised weight, for weighted quantiles. */
typedef struct {
    double value, weight;
} weighted_value;

static int compare_weighted(const void *a, const void *b)
{
    return compare_doubles(&((const weighted_value *)a)->value,
                           &((const weighted_value *)b)->value);
}

/* Returns quantile Q of N values sorted with weights summing to 1. Each draw
 * is placed at the middle of its share of the cumulative weight, and Q is
 * interpolated linearly between those places (with equal weights, type 5
 * of Hyndman and Fan). */
static double weighted_quantile(const weighted_value *v, size_t n, double q)
{
    double below = 0.0, prev_pos = 0.0, prev_value = v[0].value;

    for (size_t p = 0; p < n; p++) {
        double pos = below + 0.5 * v[p].weight;
        if (pos >= q) {
            if (p == 0 || pos <= prev_pos)
                return v[p].value;
            double frac = (q - prev_pos) / (pos - prev_pos);
            return prev_value + frac * (v[p].value - prev_value);
        }
        below += v[p].weight;
        prev_pos = pos;
        prev_value = v[p].value;
    }
    return v[n - 1].value;
}

/* Normalised importance weights of the draws into W, or equal weights when
 * WEIGHTED is 0 or no weight is positive. Returns 1 when weighted. */
static int normalised_weights(const af_output_draws *draws, int weighted, double *w)
{
    const size_t n = draws->n;
    double max = -INFINITY, sum = 0.0;

    for (size_t p = 0; weighted && p < n; p++)
        if (draws->log_weight[p] > max)
            max = draws->log_weight[p];
    weighted = weighted && isfinite(max);
    for (size_t p = 0; p < n; p++) {
        w[p] = weighted ? exp(draws->log_weight[p] - max) : 1.0;  /* NaN weighs 0 below */
        if (!(w[p] >= 0.0))
            w[p] = 0.0;
        sum += w[p];
    }
    for (size_t p = 0; p < n; p++)
        w[p] /= sum;
    return weighted;
}

/* Returns the significant digits for a row's mean and quantiles. It is 5,
 * or more when the sd is small next to the values, so that they show about
 * two digits of the spread: at 5 digits N(1000, 1e-3) prints as 1000. */
static int summary_digits(double sd, const double *values, size_t n)
{
    double largest = 0.0;
    for (size_t k = 0; k < n; k++)
        if (isfinite(values[k]) && fabs(values[k]) > largest)
            largest = fabs(values[k]);
    return digits_for_spread(largest, sd, 2, 5);
}

int af_output_print_summary(FILE *out, const af_output_draws *draws,
                            const af_weights_summary *w, int weighted)
{
    const size_t n = draws->n;
    weighted_value *col = malloc((n ? n : 1) * sizeof *col);
    double *weight = malloc((n ? n : 1) * sizeof *weight);
    if (!col || !weight) {
        free(col);
        free(weight);
        return -1;
    }

    weighted = n > 0 && normalised_weights(draws, weighted, weight);
    double sum_sq_weight = 0.0;
    for (size_t p = 0; p < n; p++)
        sum_sq_weight += weight[p] * weight[p];

    fprintf(out, "%s\n", weighted ? "estimates weighted by the importance weights (the draws "
                                     "themselves come from the flow)"
                                   : "estimates from the draws with equal weights");
    fprintf(out, "%-16s %12s %12s %12s %12s %12s\n", "parameter", "mean", "sd", "5%", "50%",
            "95%");
    for (size_t j = 0; j < draws->columns && n > 0; j++) {
        double mean = 0.0, spread = 0.0;
        for (size_t p = 0; p < n; p++) {
            col[p].value = draws->values[p * draws->columns + j];
            col[p].weight = weight[p];
            mean += weight[p] * col[p].value;
        }
        for (size_t p = 0; p < n; p++)
            spread += weight[p] * (col[p].value - mean) * (col[p].value - mean);

        /* With weights summing to 1, dividing by 1 - sum w^2 removes the
         * bias of the weighted variance, as n - 1 does for equal weights. */
        double sd = sum_sq_weight < 1.0 ? sqrt(spread / (1.0 - sum_sq_weight)) : NAN;
        qsort(col, n, sizeof *col, compare_weighted);
        const double row[4] = {mean, weighted_quantile(col, n, 0.05),
                               weighted_quantile(col, n, 0.5), weighted_quantile(col, n, 0.95)};
        int digits = summary_digits(sd, row, 4);
        fprintf(out, "%-16s %12.*g %12.5g %12.*g %12.*g %12.*g\n", draws->names[j], digits,
                row[0], sd, digits, row[1], digits, row[2], digits, row[3]);
    }
    free(col);
    free(weight);

    fprintf(out, "\n%zu draws; importance-weight ESS %.1f (%.1f%%); ", n, w->ess,
            n ? 100.0 * w->ess / (double)n : 0.0);
    /* With the largest weight near the mean, the fit to the largest weights
     * has nothing to describe and its k can be any value. */
    if (w->max_ratio > AF_WEIGHTS_FLAT_RATIO)
        fprintf(out, "Pareto k %.2f", w->pareto_k);
    else
        fprintf(out, "Pareto k not needed (largest weight %.2f times the mean)", w->max_ratio);
    fprintf(out, "; log Z %.4f (se %.4f)", w->log_z, w->log_z_se);
    if (w->zero_weights > 0)
        fprintf(out, "; %zu draw%s outside the support (weight 0)", w->zero_weights,
                w->zero_weights == 1 ? "" : "s");
    fputc('\n', out);
    return 0;
}
