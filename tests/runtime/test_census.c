/* Tests of the mode census on exact draws from targets with known modes:
 * circle mixtures, the 1024-mode exponentially weighted Gaussian, one-mode
 * targets of several shapes, and importance weights that move the mass
 * away from the draws' shares. */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "af_census.h"

#define PI 3.14159265358979323846

/* Uniform in (0, 1) from a 64-bit linear congruential stream. */
static double uniform(uint64_t *state)
{
    *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
    return ((double)(*state >> 11) + 0.5) * 0x1.0p-53;
}

/* Standard normal by Box-Muller. */
static double normal(uint64_t *state)
{
    double u = uniform(state), v = uniform(state);
    return sqrt(-2.0 * log(u)) * cos(2.0 * PI * v);
}

static af_census *run_census(const double *x, size_t n, size_t dim, const double *log_weight,
                             const af_census_options *options)
{
    char msg[256];
    af_census *census = NULL;
    int rc = af_census_run(x, n, dim, log_weight, options, &census, msg, sizeof msg);
    assert_int_equal(rc, 0);
    assert_non_null(census);
    return census;
}

/* Draws N points of K unit Gaussians on a circle of radius C into X; mode k
 * is drawn with probability P[k] (NULL: 1 / K) and stored in MODE. */
static void draw_circle(double *x, size_t *mode, size_t n, double c, size_t k, const double *p,
                        uint64_t *rng)
{
    for (size_t i = 0; i < n; i++) {
        double u = uniform(rng), cumulative = 0.0;
        size_t m = 0;
        while (m + 1 < k && u > (cumulative += p ? p[m] : 1.0 / (double)k))
            m++;
        double angle = 2.0 * PI * (double)m / (double)k;
        x[2 * i] = c * cos(angle) + normal(rng);
        x[2 * i + 1] = c * sin(angle) + normal(rng);
        mode[i] = m;
    }
}

static void circle_mixtures_give_their_modes(void **state)
{
    (void)state;
    enum { N = 6000 };
    const double radius[] = {8, 10, 12};
    const size_t modes[] = {6, 8, 10};
    double *x = malloc(2 * N * sizeof *x);
    size_t *mode = malloc(N * sizeof *mode);
    uint64_t rng = 11;

    for (size_t t = 0; t < 3; t++) {
        const size_t k = modes[t];
        draw_circle(x, mode, N, radius[t], k, NULL, &rng);
        af_census *census = run_census(x, N, 2, NULL, NULL);
        assert_int_equal(af_census_cluster_count(census), k);

        size_t matched[10] = {0};
        for (size_t i = 0; i < k; i++) {
            af_census_cluster info = af_census_cluster_info(census, i);
            assert_true(fabs(info.share - 1.0 / (double)k) < 0.02);
            assert_true(fabs(info.mass - info.share) < 1e-12);
            const double *centre = af_census_centre(census, i);
            double angle = atan2(centre[1], centre[0]);
            size_t m = (size_t)lround(angle / (2.0 * PI) * (double)k + (double)k) % k;
            double dx = centre[0] - radius[t] * cos(2.0 * PI * (double)m / (double)k);
            double dy = centre[1] - radius[t] * sin(2.0 * PI * (double)m / (double)k);
            assert_true(hypot(dx, dy) < 0.2);
            matched[m]++;
        }
        for (size_t m = 0; m < k; m++)
            assert_int_equal(matched[m], 1);
        af_census_free(census);
    }
    free(x);
    free(mode);
}

/* log q = 10 sum_{i <= 10} |x_i| - |x|^2 / 2: 1024 modes at (+-10, ..., +-10,
 * 0, ..., 0), each a unit Gaussian up to a negligible mass. */
static void exp_gauss_gives_1024_modes(void **state)
{
    (void)state;
    enum { N = 20000, D = 50 };
    double *x = malloc((size_t)N * D * sizeof *x);
    unsigned char *seen = calloc(1024, 1);
    uint64_t rng = 5;

    for (size_t i = 0; i < N; i++)
        for (size_t j = 0; j < D; j++)
            x[i * D + j] = j < 10 ? (uniform(&rng) < 0.5 ? -10.0 : 10.0) + normal(&rng)
                                  : normal(&rng);
    af_census *census = run_census(x, N, D, NULL, NULL);
    assert_int_equal(af_census_cluster_count(census), 1024);

    for (size_t i = 0; i < 1024; i++) {
        const double *centre = af_census_centre(census, i);
        unsigned code = 0;
        for (size_t j = 0; j < 10; j++) {
            assert_true(fabs(centre[j]) > 7.0);
            code = code << 1 | (centre[j] > 0);
        }
        assert_int_equal(seen[code], 0);
        seen[code] = 1;
    }
    af_census_free(census);
    free(seen);
    free(x);
}

static size_t count_clusters(const double *x, size_t n, size_t dim)
{
    af_census *census = run_census(x, n, dim, NULL, NULL);
    size_t count = af_census_cluster_count(census);
    af_census_free(census);
    return count;
}

static void one_mode_targets_give_one_cluster(void **state)
{
    (void)state;
    enum { N = 8000 };
    double *x = malloc((size_t)N * 50 * sizeof *x);
    uint64_t rng = 3;

    for (size_t i = 0; i < N * 2; i++)
        x[i] = normal(&rng);
    assert_int_equal(count_clusters(x, N, 2), 1);

    for (size_t i = 0; i < (size_t)N * 50; i++)
        x[i] = normal(&rng);
    assert_int_equal(count_clusters(x, N, 50), 1);

    /* Neal's funnel: x1 ~ N(0, 0.81), x2..x5 ~ N(0, exp(x1)). */
    for (size_t i = 0; i < N; i++) {
        x[5 * i] = 0.9 * normal(&rng);
        for (size_t j = 1; j < 5; j++)
            x[5 * i + j] = exp(x[5 * i] / 2.0) * normal(&rng);
    }
    assert_int_equal(count_clusters(x, N, 5), 1);

    /* Student t with 3 degrees of freedom in 2-D: heavy tails. */
    for (size_t i = 0; i < N; i++) {
        double chi2 = 0.0;
        for (size_t t = 0; t < 3; t++) {
            double z = normal(&rng);
            chi2 += z * z;
        }
        x[2 * i] = normal(&rng) / sqrt(chi2 / 3.0);
        x[2 * i + 1] = normal(&rng) / sqrt(chi2 / 3.0);
    }
    assert_int_equal(count_clusters(x, N, 2), 1);

    /* A skewed density on a line. */
    for (size_t i = 0; i < N; i++)
        x[i] = exp(normal(&rng));
    assert_int_equal(count_clusters(x, N, 1), 1);
    free(x);
}

static void line_with_two_modes(void **state)
{
    (void)state;
    enum { N = 4000 };
    double *x = malloc(N * sizeof *x);
    uint64_t rng = 8;

    for (size_t i = 0; i < N; i++)
        x[i] = (uniform(&rng) < 0.3 ? -3.0 : 3.0) + normal(&rng);
    af_census *census = run_census(x, N, 1, NULL, NULL);
    assert_int_equal(af_census_cluster_count(census), 2);
    assert_true(fabs(af_census_cluster_info(census, 0).share - 0.7) < 0.03);
    assert_true(fabs(af_census_centre(census, 0)[0] - 3.0) < 0.2);
    assert_true(fabs(af_census_centre(census, 1)[0] + 3.0) < 0.2);
    af_census_free(census);
    free(x);
}

/* Log density of K unit Gaussians on a circle of radius C with weights P
 * (NULL: equal). */
static double circle_log_density(const double *x, double c, size_t k, const double *p)
{
    double sum = 0.0;
    for (size_t m = 0; m < k; m++) {
        double angle = 2.0 * PI * (double)m / (double)k;
        double dx = x[0] - c * cos(angle), dy = x[1] - c * sin(angle);
        sum += (p ? p[m] : 1.0 / (double)k) * exp(-0.5 * (dx * dx + dy * dy)) / (2.0 * PI);
    }
    return log(sum);
}

/* Draws from a mixture with mode weights m / 21 (m = 1..6), weighted
 * towards the equal-weight mixture: the masses come out equal, and the
 * mode drawn 3.5 times too rarely is flagged. */
static void weights_move_the_mass(void **state)
{
    (void)state;
    enum { N = 6000, K = 6 };
    double p[K], *x = malloc(2 * N * sizeof *x), *lw = malloc(N * sizeof *lw);
    size_t *mode = malloc(N * sizeof *mode);
    uint64_t rng = 21;
    char msg[1024];

    for (size_t m = 0; m < K; m++)
        p[m] = (double)(m + 1) / 21.0;
    draw_circle(x, mode, N, 8.0, K, p, &rng);
    for (size_t i = 0; i < N; i++)
        lw[i] = circle_log_density(x + 2 * i, 8.0, K, NULL) - circle_log_density(x + 2 * i, 8.0, K, p);

    af_census *census = run_census(x, N, 2, lw, NULL);
    assert_int_equal(af_census_cluster_count(census), K);
    size_t flagged = 0;
    for (size_t i = 0; i < K; i++) {
        af_census_cluster info = af_census_cluster_info(census, i);
        assert_true(fabs(info.mass - 1.0 / K) < 0.03);
        assert_true(info.mass_se > 0.0 && info.mass_se < 0.02);
        assert_true(info.ess > 0.0 && info.ess <= (double)info.count + 1e-9);
        if (af_census_flagged(census, i)) {
            flagged++;
            assert_true(fabs(info.share - 1.0 / 21.0) < 0.015);
        }
    }
    assert_int_equal(flagged, 1);
    assert_int_equal(af_census_warning(census, msg, sizeof msg), 1);
    assert_non_null(strstr(msg, "under-samples"));
    af_census_free(census);

    census = run_census(x, N, 2, NULL, NULL);
    for (size_t i = 0; i < K; i++)
        assert_false(af_census_flagged(census, i));
    assert_int_equal(af_census_warning(census, msg, sizeof msg), 0);
    af_census_free(census);
    free(x);
    free(lw);
    free(mode);
}

/* Scaling and shifting every coordinate alike keeps the clusters, and the
 * same input gives the same labels. */
static void clusters_ignore_units(void **state)
{
    (void)state;
    enum { N = 3000 };
    double *x = malloc(2 * N * sizeof *x), *scaled = malloc(2 * N * sizeof *scaled);
    size_t *mode = malloc(N * sizeof *mode);
    uint64_t rng = 4;

    draw_circle(x, mode, N, 8.0, 6, NULL, &rng);
    for (size_t i = 0; i < 2 * N; i++)
        scaled[i] = 1e-3 * x[i] + 100.0;
    af_census *a = run_census(x, N, 2, NULL, NULL);
    af_census *b = run_census(scaled, N, 2, NULL, NULL);
    af_census *again = run_census(x, N, 2, NULL, NULL);

    assert_int_equal(af_census_cluster_count(a), 6);
    assert_int_equal(af_census_cluster_count(b), 6);
    size_t differ = 0;
    for (size_t i = 0; i < N; i++) {
        differ += af_census_label(a, i) != af_census_label(b, i);
        assert_int_equal(af_census_label(a, i), af_census_label(again, i));
    }
    assert_true(differ <= 3);
    af_census_free(a);
    af_census_free(b);
    af_census_free(again);
    free(x);
    free(scaled);
    free(mode);
}

static void subsample_labels_its_rows(void **state)
{
    (void)state;
    enum { N = 5000 };
    double *x = malloc(2 * N * sizeof *x);
    size_t *mode = malloc(N * sizeof *mode);
    uint64_t rng = 6;
    af_census_options options;

    draw_circle(x, mode, N, 10.0, 8, NULL, &rng);
    af_census_options_default(&options);
    options.max_points = 2000;
    af_census *census = run_census(x, N, 2, NULL, &options);
    assert_int_equal(af_census_points(census), 2000);
    assert_int_equal(af_census_cluster_count(census), 8);

    size_t labelled = 0;
    for (size_t i = 0; i < N; i++)
        labelled += af_census_label(census, i) >= 0;
    assert_int_equal(labelled, 2000);
    assert_int_equal(af_census_label(census, N), -1);
    af_census_free(census);

    /* A work budget of 1000^2 pairs in 2-D leaves 1000 points. */
    options.max_points = N;
    options.max_work = 1000.0 * 1000.0 * 2.0;
    census = run_census(x, N, 2, NULL, &options);
    assert_int_equal(af_census_points(census), 1000);
    assert_int_equal(af_census_cluster_count(census), 8);
    af_census_free(census);
    free(x);
    free(mode);
}

static void small_and_bad_inputs(void **state)
{
    (void)state;
    double x[6] = {0.0, 1.0, 2.0, 3.0, 4.0, 5.0};
    double lw[3] = {-INFINITY, -INFINITY, -INFINITY};
    char msg[256];
    af_census *census;

    census = run_census(x, 0, 2, NULL, NULL);
    assert_int_equal(af_census_cluster_count(census), 0);
    af_census_free(census);

    census = run_census(x, 1, 2, NULL, NULL);
    assert_int_equal(af_census_cluster_count(census), 1);
    assert_true(af_census_cluster_info(census, 0).share == 1.0);
    af_census_free(census);

    /* Fewer draws than the smallest cluster: one cluster of all. */
    census = run_census(x, 3, 2, lw, NULL);
    assert_int_equal(af_census_cluster_count(census), 1);
    assert_int_equal(af_census_cluster_info(census, 0).count, 3);
    assert_true(isnan(af_census_cluster_info(census, 0).mass));
    assert_false(af_census_flagged(census, 0));
    af_census_free(census);

    /* A NaN weight counts as zero. */
    lw[0] = NAN;
    lw[1] = 0.0;
    lw[2] = 0.0;
    census = run_census(x, 3, 2, lw, NULL);
    assert_true(fabs(af_census_cluster_info(census, 0).mass - 1.0) < 1e-12);
    assert_true(fabs(af_census_cluster_info(census, 0).ess - 2.0) < 1e-12);
    af_census_free(census);

    af_census_options options;
    af_census_options_default(&options);
    options.dip_ratio = 0.5;
    census = (af_census *)(void *)x; /* must come back NULL */
    assert_int_not_equal(af_census_run(x, 3, 2, NULL, &options, &census, msg, sizeof msg), 0);
    assert_null(census);
    assert_non_null(strstr(msg, "dip ratio 0.5"));

    af_census_options_default(&options);
    options.neighbours = 0;
    assert_int_not_equal(af_census_run(x, 3, 2, NULL, &options, &census, msg, sizeof msg), 0);
    assert_non_null(strstr(msg, "neighbours (0)"));
}

/* Draws with NaN or infinite coordinates join a cluster, leave the others
 * as they are, and stay out of the centres. */
static void non_finite_draws_join_a_cluster(void **state)
{
    (void)state;
    enum { N = 3000 };
    double *x = malloc(2 * N * sizeof *x);
    size_t *mode = malloc(N * sizeof *mode);
    uint64_t rng = 12;

    draw_circle(x, mode, N, 8.0, 6, NULL, &rng);
    x[0] = NAN;
    x[2 * 17 + 1] = INFINITY;
    x[2 * 900] = x[2 * 900 + 1] = NAN;
    af_census *census = run_census(x, N, 2, NULL, NULL);
    assert_int_equal(af_census_cluster_count(census), 6);
    size_t total = 0;
    for (size_t i = 0; i < 6; i++) {
        total += af_census_cluster_info(census, i).count;
        assert_true(isfinite(af_census_centre(census, i)[0]));
        assert_true(isfinite(af_census_centre(census, i)[1]));
    }
    assert_int_equal(total, N);
    assert_true(af_census_label(census, 900) >= 0);
    af_census_free(census);
    free(x);
    free(mode);
}

/* Many clusters: the print shows AF_CENSUS_SHOWN of them and sums the rest. */
static void print_caps_the_list(void **state)
{
    (void)state;
    enum { N = 4000, K = 20 };
    double *x = malloc(N * sizeof *x), centres[AF_CENSUS_SHOWN];
    uint64_t rng = 9;
    const char *names[] = {"x"};
    char *text = NULL;
    size_t size = 0;

    for (size_t i = 0; i < N; i++)
        x[i] = 20.0 * (double)(i % K) + normal(&rng);
    af_census *census = run_census(x, N, 1, NULL, NULL);
    assert_int_equal(af_census_cluster_count(census), K);
    for (size_t i = 0; i < AF_CENSUS_SHOWN; i++)
        centres[i] = af_census_centre(census, i)[0];

    FILE *out = open_memstream(&text, &size);
    assert_non_null(out);
    af_census_print(out, census, names, 1, centres);
    fclose(out);
    assert_non_null(strstr(text, "mode census (unconstrained scale): 20 clusters of the 4000 draws; the 8 with"));
    assert_non_null(strstr(text, "in the other 12 clusters"));
    size_t lines = 0;
    for (const char *c = text; *c; c++)
        lines += *c == '\n';
    assert_int_equal(lines, 1 + 2 + AF_CENSUS_SHOWN + 1);
    free(text);
    af_census_free(census);
    free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(circle_mixtures_give_their_modes),
        cmocka_unit_test(exp_gauss_gives_1024_modes),
        cmocka_unit_test(one_mode_targets_give_one_cluster),
        cmocka_unit_test(line_with_two_modes),
        cmocka_unit_test(weights_move_the_mass),
        cmocka_unit_test(clusters_ignore_units),
        cmocka_unit_test(subsample_labels_its_rows),
        cmocka_unit_test(small_and_bad_inputs),
        cmocka_unit_test(non_finite_draws_join_a_cluster),
        cmocka_unit_test(print_caps_the_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
