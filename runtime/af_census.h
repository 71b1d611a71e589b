/* af_census: a census of the modes of a sample. Clusters the draws by a
 * single-linkage tree over their nearest-neighbour graph, then gives each
 * cluster its share of the draws and its importance-weighted mass, and
 * flags clusters where the two disagree (the flow over- or under-samples a
 * mode). A mode that the flow never visited has no draws, so no census can
 * show it. */
#ifndef AF_CENSUS_H
#define AF_CENSUS_H

#include <stddef.h>
#include <stdio.h>

/* How draws are clustered. Draws i and j are linked when one is among the
 * other's nearest neighbours and they are no farther apart than
 * link_factor times the larger of their core distances; the links are
 * added densest first (by the larger core distance of the pair), and two
 * growing sets that meet become two clusters when both are large and they
 * meet at a level well above where each grew large. link_factor and
 * dip_ratio hold in one dimension; in DIM dimensions each excess over 1 is
 * divided by sqrt(DIM), as distances between neighbours spread less there. */
typedef struct af_census_options {
    size_t max_points;   /* draws clustered, evenly spaced; the rest are skipped */
    double max_work;     /* fewer draws are clustered when points^2 x dim, the
                            products of the pairwise distances, would exceed this */
    size_t neighbours;   /* neighbours per draw (twice as many in one dimension) */
    size_t min_cluster;  /* smallest cluster; the core distance of a draw is its
                            distance to its (min_cluster - 1)-th neighbour (in one
                            dimension to its neighbours-th) */
    double split_share;  /* meeting sets are two clusters only when each holds at
                            least this share of the draws, and 2 x neighbours */
    double dip_ratio;    /* and they meet at this many times the level at which the
                            later of the two reached that size */
    double link_factor;  /* longest link over the larger core distance */
} af_census_options;

/* Fills OPTIONS with the defaults: 20000 points, work 2e10 (all 20000
 * points up to 50 dimensions), 10 neighbours, clusters of at least 5
 * points, split share 0.005, dip ratio 2.5, link factor 5. */
void af_census_options_default(af_census_options *options);

/* One cluster of a census. */
typedef struct af_census_cluster {
    size_t count;    /* clustered draws in it */
    double share;    /* count over the clustered draws */
    double mass;     /* its share of the self-normalised importance weights; NAN
                        when every weight is zero or not finite */
    double mass_se;  /* delta-method standard error of MASS */
    double ess;      /* importance-weight ESS of its own draws */
} af_census_cluster;

/* The clusters of one sample, largest mass first (largest count first when
 * the masses are NAN). */
typedef struct af_census af_census;

/* Clusters the N draws X (row-major, N x DIM) that carry the log importance
 * weights LOG_WEIGHT (NULL: equal weights). OPTIONS may be NULL for the
 * defaults. Deterministic: the same input gives the same census. Returns 0
 * and *OUT, or non-zero with a message (invalid options, out of memory). */
int af_census_run(const double *x, size_t n, size_t dim, const double *log_weight,
                  const af_census_options *options, af_census **out, char *message,
                  size_t message_len);

void af_census_free(af_census *census);

/* Number of draws clustered: min(N, max_points), or fewer to keep within
 * max_work (but at least 2 when N allows). */
size_t af_census_points(const af_census *census);

size_t af_census_cluster_count(const af_census *census);

/* Cluster I (0-based, in census order). */
af_census_cluster af_census_cluster_info(const af_census *census, size_t i);

/* Mean of cluster I's draws (DIM values, in the coordinates of X). */
const double *af_census_centre(const af_census *census, size_t i);

/* Cluster of draw ROW of X, or -1 when the row was not clustered. */
long af_census_label(const af_census *census, size_t row);

/* A cluster is flagged when its mass and its share differ by more than
 * this factor either way, by more than 3 standard errors, and one of the
 * two is at least AF_CENSUS_FLAG_MIN_SHARE. */
#define AF_CENSUS_FLAG_RATIO 2.0
#define AF_CENSUS_FLAG_MIN_SHARE 0.01

/* Tells whether cluster I is flagged. */
int af_census_flagged(const af_census *census, size_t i);

/* Clusters printed by af_census_print; the rest are summed in one line. */
#define AF_CENSUS_SHOWN 8

/* Prints the census to OUT: one line per cluster for the first
 * min(count, AF_CENSUS_SHOWN), with its share, mass and centre. CENTRES
 * holds those clusters' centres as COLUMNS values each, named NAMES (for
 * example af_census_centre mapped to the constrained scale); at most the
 * first three columns are shown. */
void af_census_print(FILE *out, const af_census *census, const char *const *names,
                     size_t columns, const double *centres);

/* Writes a warning about the flagged clusters to MESSAGE. Returns 1 when
 * one was written, 0 when no cluster is flagged. */
int af_census_warning(const af_census *census, char *message, size_t message_len);

#endif
