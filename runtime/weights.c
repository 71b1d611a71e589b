/* Importance-weight diagnostics and resampling. The Pareto k estimate
 * follows Zhang and Stephens (2009), "A new and efficient estimation method
 * for the generalized Pareto distribution", Technometrics 51, with the
 * tail size and prior of Pareto smoothed importance sampling (Vehtari,
 * Simpson, Gelman, Yao and Gabry, JMLR 2024). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "af_weights.h"

static double max_finite(const double *v, size_t n)
{
    double max = -INFINITY;
    for (size_t i = 0; i < n; i++)
        if (v[i] > max)
            max = v[i];
    return max;
}

/* The weight exp(LOG_WEIGHT - MAX): 0 at a log weight of -inf or NaN. */
static double weight_of(double log_weight, double max)
{
    return isnan(log_weight) ? 0.0 : exp(log_weight - max);
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Profile log-likelihood per point of the GPD at the Zhang-Stephens
 * parameter B (theta in their paper) for exceedances X. */
static double profile_loglik(double b, const double *x, size_t n)
{
    double k = 0.0;
    for (size_t i = 0; i < n; i++)
        k += log1p(-b * x[i]);
    k /= (double)n;
    return log(-b / k) - k - 1.0;
}

double af_weights_pareto_k(double *x, size_t n)
{
    if (n < 5)
        return NAN;
    qsort(x, n, sizeof *x, compare_doubles);

    /* A grid of M values of b around 1 / max x, weighted by their profile
     * likelihood; the estimate is the posterior mean of b. */
    const size_t m = 30 + (size_t)floor(sqrt((double)n));
    const double quartile = x[(size_t)floor((double)n / 4.0 + 0.5) - 1];
    double *b = malloc(m * sizeof *b), *l = malloc(m * sizeof *l);
    if (!b || !l || !(quartile > 0) || !(x[n - 1] > 0)) {
        free(b);
        free(l);
        return NAN;
    }

    for (size_t j = 0; j < m; j++) {
        b[j] = 1.0 / x[n - 1] + (1.0 - sqrt((double)m / ((double)j + 0.5))) / 3.0 / quartile;
        l[j] = (double)n * profile_loglik(b[j], x, n);
    }
    double l_max = max_finite(l, m), norm = 0.0, b_hat = 0.0;
    for (size_t j = 0; j < m; j++)
        norm += exp(l[j] - l_max);
    for (size_t j = 0; j < m; j++)
        b_hat += b[j] * exp(l[j] - l_max) / norm;

    double k = 0.0;
    for (size_t i = 0; i < n; i++)
        k += log1p(-b_hat * x[i]);
    k /= (double)n;
    free(b);
    free(l);

    /* Shrink towards 0.5 as a prior worth 10 observations would. */
    return (k * (double)n + 10.0 * 0.5) / ((double)n + 10.0);
}

/* Pareto k of the largest weights: the M = min(n / 5, 3 sqrt(n)) largest,
 * as exceedances over the next largest. */
static double tail_pareto_k(const double *log_weight, size_t n, double max)
{
    size_t m = (size_t)fmin((double)n / 5.0, 3.0 * sqrt((double)n));
    if (m < 5)
        return NAN;

    double *w = malloc(n * sizeof *w);
    if (!w)
        return NAN;
    for (size_t i = 0; i < n; i++)
        w[i] = weight_of(log_weight[i], max);
    qsort(w, n, sizeof *w, compare_doubles);

    double threshold = w[n - m - 1];
    double *tail = w + (n - m);
    for (size_t i = 0; i < m; i++)
        tail[i] -= threshold;
    double k = af_weights_pareto_k(tail, m);
    free(w);
    return k;
}

void af_weights_summarise(const double *log_weight, size_t n, af_weights_summary *out)
{
    double max = max_finite(log_weight, n);
    double sum = 0.0, sum_sq = 0.0;

    memset(out, 0, sizeof *out);
    out->pareto_k = NAN;
    for (size_t p = 0; p < n; p++)
        out->zero_weights += !(log_weight[p] > -INFINITY);
    if (n == 0 || !isfinite(max)) {
        out->log_z = -INFINITY;
        out->log_z_se = NAN;
        return;
    }
    for (size_t p = 0; p < n; p++) {
        double w = weight_of(log_weight[p], max);
        sum += w;
        sum_sq += w * w;
    }
    double mean = sum / (double)n, var = sum_sq / (double)n - mean * mean;

    out->ess = sum * sum / sum_sq;
    out->max_ratio = 1.0 / mean;  /* the largest weight is exp(0) = 1 here */
    out->log_z = max + log(mean);
    /* sd of the mean weight over the mean weight, to first order. */
    out->log_z_se = n > 1 ? sqrt(fmax(var, 0.0) / (double)(n - 1)) / mean : NAN;
    out->pareto_k = tail_pareto_k(log_weight, n, max);
}

int af_weights_resample(const double *log_weight, size_t n, uint64_t seed, size_t *index)
{
    double max = max_finite(log_weight, n), total = 0.0;
    if (n == 0 || !isfinite(max))
        return -1;
    for (size_t i = 0; i < n; i++)
        total += weight_of(log_weight[i], max);

    /* One uniform in [0, 1) from SEED (splitmix64), then N evenly spaced
     * points through the cumulative weights. */
    uint64_t z = seed + 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    double u = (double)(z >> 11) * 0x1.0p-53;

    double step = total / (double)n, next = u * step, cumulative = 0.0;
    size_t i = 0;
    for (size_t p = 0; p < n; p++) {
        while (i + 1 < n && cumulative + weight_of(log_weight[i], max) <= next) {
            cumulative += weight_of(log_weight[i], max);
            i++;
        }
        index[p] = i;
        next += step;
    }
    return 0;
}
