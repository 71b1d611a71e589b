/* Mode census. Each draw is linked to those of its nearest neighbours that
 * are not across a gap, and the links are added densest first. Two sets of
 * draws that grew apart and meet only at a much lower density are two
 * modes (runt pruning of the single-linkage tree, like the leaf clusters of
 * HDBSCAN). Each cluster is then weighed with the importance weights.
 * The only length scale is each draw's distance to its own neighbours, so
 * the clusters do not change when every coordinate is scaled or shifted by
 * the same amount. Costs O(n^2 dim) for n clustered draws, in BLAS tiles. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "af_census.h"

/* Rows and columns of one tile of the pairwise distance matrix. */
#define TILE 256

struct af_census {
    size_t n, dim, points, clusters;
    af_census_cluster *info;  /* clusters */
    double *centre;           /* clusters x dim */
    long *label;              /* n: cluster of each row, -1 when not clustered */
};

void af_census_options_default(af_census_options *o)
{
    o->max_points = 20000;
    o->max_work = 2e10;
    o->neighbours = 10;
    o->min_cluster = 5;
    o->split_share = 0.005;
    o->link_factor = 5.0;
    o->dip_ratio = 2.5;
}

/* The k nearest neighbours of each of M points, nearest first: row i of
 * INDEX and DIST2 (squared distances) is point i's list. */
typedef struct {
    size_t m, k;
    size_t *index;
    double *dist2;
} neighbour_lists;

/* Inserts neighbour J at squared distance VALUE into one sorted list of K
 * when it is nearer than the list's last entry. Equal distances keep the
 * earlier entry first, so the lists do not depend on rounding ties. */
static void offer(double *dist2, size_t *index, size_t k, double value, size_t j)
{
    if (!(value < dist2[k - 1]))
        return;
    size_t pos = k - 1;
    while (pos > 0 && dist2[pos - 1] > value) {
        dist2[pos] = dist2[pos - 1];
        index[pos] = index[pos - 1];
        pos--;
    }
    dist2[pos] = value;
    index[pos] = j;
}

/* Turns the Gram tile TILE (rows A0.., columns B0..) into squared
 * distances with the squared norms NORM2 and offers each pair to both
 * points' lists; a diagonal tile (A0 == B0) offers each pair once. The
 * current last entries of the lists are kept in locals, so most pairs cost
 * two comparisons. */
static void offer_tile(neighbour_lists *nb, const double *tile, const double *norm2, size_t a0,
                       size_t rows, size_t b0, size_t cols)
{
    const size_t k = nb->k;
    double column_worst[TILE];
    for (size_t c = 0; c < cols; c++)
        column_worst[c] = nb->dist2[(b0 + c) * k + k - 1];

    for (size_t r = 0; r < rows; r++) {
        const size_t i = a0 + r;
        double row_worst = nb->dist2[i * k + k - 1];
        for (size_t c = a0 == b0 ? r + 1 : 0; c < cols; c++) {
            double d2 = norm2[i] + norm2[b0 + c] - 2.0 * tile[r * cols + c];
            d2 = d2 < 0.0 ? 0.0 : d2; /* rounding below 0; NaN stays NaN and is never offered */
            if (d2 < row_worst) {
                offer(nb->dist2 + i * k, nb->index + i * k, k, d2, b0 + c);
                row_worst = nb->dist2[i * k + k - 1];
            }
            if (d2 < column_worst[c]) {
                const size_t j = b0 + c;
                offer(nb->dist2 + j * k, nb->index + j * k, k, d2, i);
                column_worst[c] = nb->dist2[j * k + k - 1];
            }
        }
    }
}

/* Finds the exact k nearest neighbours of the M points P (M x DIM, centred
 * so that the Gram-matrix form of the distance keeps its precision). Uses
 * one tile of TILE x TILE doubles in GRAM. */
static void find_neighbours(neighbour_lists *nb, const double *p, size_t dim, double *norm2,
                            double *gram)
{
    const size_t m = nb->m;
    for (size_t i = 0; i < m; i++)
        norm2[i] = cblas_ddot((int)dim, p + i * dim, 1, p + i * dim, 1);
    for (size_t i = 0; i < m * nb->k; i++) {
        nb->dist2[i] = INFINITY;
        nb->index[i] = SIZE_MAX;
    }

    for (size_t a0 = 0; a0 < m; a0 += TILE) {
        size_t rows = m - a0 < TILE ? m - a0 : TILE;
        for (size_t b0 = a0; b0 < m; b0 += TILE) {
            size_t cols = m - b0 < TILE ? m - b0 : TILE;
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)cols,
                        (int)dim, 1.0, p + a0 * dim, (int)dim, p + b0 * dim, (int)dim, 0.0,
                        gram, (int)cols);
            offer_tile(nb, gram, norm2, a0, rows, b0, cols);
        }
    }
}

/* An edge of the neighbour graph and the density level at which it joins
 * its ends: the larger of their core distances. A gap between two modes
 * shows in the sparse draws that bridge it, not in the edge lengths, which
 * on a line are as noisy as the largest spacing. */
typedef struct {
    double level;
    size_t i, j;
} graph_edge;

static int compare_edges(const void *a, const void *b)
{
    const graph_edge *x = a, *y = b;
    if (x->level != y->level)
        return x->level < y->level ? -1 : 1;
    if (x->i != y->i)
        return x->i < y->i ? -1 : 1;
    return (x->j > y->j) - (x->j < y->j);
}

/* Stores in EDGE the pairs of neighbours no farther apart than
 * LINK_FACTOR times the larger of their core distances (the distance to
 * their CORE-th neighbour, 1-based, stored in CORE_DISTANCE), sorted by
 * level. A pair farther apart than that is a gap in the draws, not a thin
 * part of one mode. Returns the number of edges. */
static size_t collect_edges(const neighbour_lists *nb, size_t core, double link_factor,
                            graph_edge *edge, double *core_distance)
{
    const size_t k = nb->k;
    size_t count = 0;
    for (size_t i = 0; i < nb->m; i++)
        core_distance[i] = sqrt(nb->dist2[i * k + core - 1]);
    for (size_t i = 0; i < nb->m; i++) {
        double core_i = core_distance[i];
        for (size_t t = 0; t < k; t++) {
            size_t j = nb->index[i * k + t];
            if (j == SIZE_MAX)
                break;
            double core_j = core_distance[j];
            double distance = sqrt(nb->dist2[i * k + t]);
            if (distance > link_factor * fmax(core_i, core_j))
                continue;
            edge[count].level = fmax(core_i, core_j);
            edge[count].i = i < j ? i : j;
            edge[count].j = i < j ? j : i;
            count++;
        }
    }
    qsort(edge, count, sizeof *edge, compare_edges);
    return count;
}

/* Union-find over the points with a member list per set, for the single
 * linkage tree. */
typedef struct {
    size_t *parent, *size, *head, *tail, *next;
    double *reached;             /* per root: the level at which the set reached the
                                    split size; infinite before */
    unsigned char *has_cluster;  /* per root: the set contains a cluster already */
} forest;

static size_t find_root(size_t *parent, size_t i)
{
    while (parent[i] != i) {
        parent[i] = parent[parent[i]];
        i = parent[i];
    }
    return i;
}

/* Labels the members of the set ROOT that have no label yet as cluster
 * ID. */
static void found_cluster(forest *f, size_t root, long id, long *label)
{
    for (size_t x = f->head[root]; x != SIZE_MAX; x = f->next[x])
        if (label[x] < 0)
            label[x] = id;
    f->has_cluster[root] = 1;
}

/* Joins the sets A and B (roots) under the smaller root, so the result does
 * not depend on the order of the joins. */
static void join(forest *f, size_t a, size_t b)
{
    size_t keep = a < b ? a : b, gone = a < b ? b : a;
    f->parent[gone] = keep;
    f->size[keep] += f->size[gone];
    f->next[f->tail[keep]] = f->head[gone];
    f->tail[keep] = f->tail[gone];
    f->has_cluster[keep] |= f->has_cluster[gone];
    f->reached[keep] = fmin(f->reached[keep], f->reached[gone]);
}

/* The rules of label_clusters. */
typedef struct {
    size_t split, min_size;
    double dip_ratio;
} split_rule;

/* Tells whether the sets A and B (roots) that meet at LEVEL are two modes:
 * both are large, and the level where they meet is well above the levels
 * at which each grew large, so the density dips between them. Noise in the
 * density estimate makes small, shallow dips inside one mode. */
static int separate_modes(const forest *f, size_t a, size_t b, double level,
                          const split_rule *rule)
{
    return f->size[a] >= rule->split && f->size[b] >= rule->split &&
           level >= rule->dip_ratio * fmax(f->reached[a], f->reached[b]);
}

/* Builds the single linkage tree of the EDGES (sorted by level) and labels
 * its clusters in LABEL: when two sets meet that separate_modes finds
 * apart, each is a mode of its own, and a set that never meets another is a
 * cluster when it has RULE->min_size points. Points added to a set after it
 * became a cluster, and smaller sets, stay unlabelled (-1). CORE holds the
 * points' core distances. Returns the number of clusters. */
static size_t label_clusters(forest *f, size_t m, const double *core, const graph_edge *edge,
                             size_t edges, const split_rule *rule, long *label)
{
    long clusters = 0;
    for (size_t i = 0; i < m; i++) {
        f->reached[i] = rule->split <= 1 ? core[i] : INFINITY;
        f->parent[i] = f->head[i] = f->tail[i] = i;
        f->size[i] = 1;
        f->next[i] = SIZE_MAX;
        f->has_cluster[i] = 0;
        label[i] = -1;
    }
    for (size_t e = 0; e < edges; e++) {
        size_t a = find_root(f->parent, edge[e].i), b = find_root(f->parent, edge[e].j);
        if (a == b)
            continue;
        if (separate_modes(f, a, b, edge[e].level, rule)) {
            size_t first = a < b ? a : b, second = a < b ? b : a;
            if (!f->has_cluster[first])
                found_cluster(f, first, clusters++, label);
            if (!f->has_cluster[second])
                found_cluster(f, second, clusters++, label);
        }
        join(f, a, b);
        size_t root = a < b ? a : b;
        if (f->size[root] >= rule->split)
            f->reached[root] = fmin(f->reached[root], edge[e].level);
    }
    for (size_t i = 0; i < m; i++)
        if (f->parent[i] == i && !f->has_cluster[i] && f->size[i] >= rule->min_size)
            found_cluster(f, i, clusters++, label);
    return (size_t)clusters;
}

/* Gives each unlabelled point the label of its nearest labelled neighbour,
 * repeating while that labels more points. Returns the number of points
 * still unlabelled (their neighbours are all unlabelled too). */
static size_t attach_strays(const neighbour_lists *nb, long *label)
{
    size_t left = 0, before;
    do {
        before = left;
        left = 0;
        for (size_t i = 0; i < nb->m; i++) {
            for (size_t t = 0; t < nb->k && label[i] < 0; t++)
                if (nb->index[i * nb->k + t] != SIZE_MAX)
                    label[i] = label[nb->index[i * nb->k + t]];
            left += label[i] < 0;
        }
    } while (left > 0 && left != before);
    return left;
}

static double squared_distance(const double *a, const double *b, size_t dim)
{
    double sum = 0.0;
    for (size_t j = 0; j < dim; j++)
        sum += (a[j] - b[j]) * (a[j] - b[j]);
    return sum;
}

/* Gives each point still unlabelled the label of the nearest of the
 * CLUSTERS (at least one) centres. */
static void attach_to_centres(const double *p, size_t m, size_t dim, long *label,
                              size_t clusters, const double *centre)
{
    for (size_t i = 0; i < m; i++) {
        if (label[i] >= 0)
            continue;
        double best = INFINITY;
        for (size_t c = 0; c < clusters; c++) {
            double d2 = squared_distance(p + i * dim, centre + c * dim, dim);
            if (d2 < best || label[i] < 0) {
                best = d2;
                label[i] = (long)c;
            }
        }
    }
}

static int all_finite(const double *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return 0;
    return 1;
}

/* Means of the labelled points of each cluster into CENTRE (CLUSTERS x
 * DIM), with their counts in COUNT. Points with a coordinate that is not
 * finite are left out. */
static void find_centres(const double *p, size_t m, size_t dim, const long *label,
                         size_t clusters, double *centre, size_t *count)
{
    memset(centre, 0, clusters * dim * sizeof *centre);
    memset(count, 0, clusters * sizeof *count);
    for (size_t i = 0; i < m; i++) {
        if (label[i] < 0 || !all_finite(p + i * dim, dim))
            continue;
        size_t c = (size_t)label[i];
        count[c]++;
        for (size_t j = 0; j < dim; j++)
            centre[c * dim + j] += p[i * dim + j];
    }
    for (size_t c = 0; c < clusters; c++)
        for (size_t j = 0; j < dim; j++)
            centre[c * dim + j] /= (double)(count[c] ? count[c] : 1);
}

/* Squared weights of each cluster's draws, for the mass statistics. */
typedef struct {
    double sum, sum_sq;
    size_t count, id;
} cluster_tally;

/* Largest mass first, then the most draws, then the first found. */
static int compare_tallies(const void *a, const void *b)
{
    const cluster_tally *x = a, *y = b;
    if (x->sum != y->sum)
        return x->sum > y->sum ? -1 : 1;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* Weight of each of the M points relative to the largest finite one; zero
 * for weights that are not finite. LOG_WEIGHT NULL gives equal weights. */
static void relative_weights(const double *log_weight, const size_t *row, size_t m,
                             double *weight)
{
    double max = -INFINITY;
    for (size_t i = 0; i < m; i++) {
        double lw = log_weight ? log_weight[row[i]] : 0.0;
        if (isfinite(lw) && lw > max)
            max = lw;
    }
    for (size_t i = 0; i < m; i++) {
        double lw = log_weight ? log_weight[row[i]] : 0.0;
        weight[i] = isfinite(lw) ? exp(lw - max) : 0.0;
    }
}

/* Stores the clusters of the points (labels LABEL, relative weights
 * WEIGHT) in C, largest mass first. Their centres are the CENTRE of each
 * label plus the OFFSET that was subtracted from the draws. Also labels the
 * rows ROW of the draws. Uses TALLY and RANK (C->clusters entries each). */
static void store_clusters(af_census *c, const long *label, const size_t *row,
                           const double *weight, const double *centre, const double *offset,
                           cluster_tally *tally, size_t *rank)
{
    const size_t m = c->points, k = c->clusters;
    double total = 0.0, total_sq = 0.0;

    memset(tally, 0, k * sizeof *tally);
    for (size_t t = 0; t < k; t++)
        tally[t].id = t;
    for (size_t i = 0; i < m; i++) {
        cluster_tally *t = &tally[label[i]];
        t->sum += weight[i];
        t->sum_sq += weight[i] * weight[i];
        t->count++;
        total += weight[i];
        total_sq += weight[i] * weight[i];
    }
    qsort(tally, k, sizeof *tally, compare_tallies);

    for (size_t r = 0; r < k; r++) {
        const cluster_tally *t = &tally[r];
        af_census_cluster *info = &c->info[r];
        double mass = total > 0 ? t->sum / total : NAN;
        double own_sq = total > 0 ? t->sum_sq / (total * total) : NAN;
        double all_sq = total > 0 ? total_sq / (total * total) : NAN;

        info->count = t->count;
        info->share = (double)t->count / (double)m;
        info->mass = mass;
        /* Self-normalised estimate: var = sum_i wbar_i^2 (1[i in cluster] - mass)^2. */
        info->mass_se = sqrt((1 - mass) * (1 - mass) * own_sq + mass * mass * (all_sq - own_sq));
        info->ess = t->sum_sq > 0 ? t->sum * t->sum / t->sum_sq : 0.0;
        for (size_t j = 0; j < c->dim; j++)
            c->centre[r * c->dim + j] = centre[t->id * c->dim + j] + offset[j];
        rank[t->id] = r;
    }
    for (size_t i = 0; i < m; i++)
        c->label[row[i]] = (long)rank[label[i]];
}

/* Work arrays of one census run, freed in one place. */
typedef struct {
    size_t *row;              /* points: row of the draws */
    double *p, *offset;       /* points x dim, centred by OFFSET (dim) */
    double *norm2, *gram, *weight;
    size_t *count, *rank;
    long *label;
    double *centre;           /* clusters x dim */
    cluster_tally *tally;
    neighbour_lists nb;
    graph_edge *edge;         /* points x k */
    forest tree;
} census_work;

static void work_free(census_work *w)
{
    free(w->row);
    free(w->p);
    free(w->offset);
    free(w->norm2);
    free(w->gram);
    free(w->weight);
    free(w->edge);
    free(w->tree.parent);
    free(w->tree.size);
    free(w->tree.head);
    free(w->tree.tail);
    free(w->tree.next);
    free(w->tree.has_cluster);
    free(w->tree.reached);
    free(w->count);
    free(w->rank);
    free(w->label);
    free(w->centre);
    free(w->tally);
    free(w->nb.index);
    free(w->nb.dist2);
}

/* Copies M evenly spaced rows of the N draws X into W->p, minus the mean
 * of their finite values. A draw with a coordinate that is not finite has
 * no neighbours, so it joins the cluster of the nearest centre, which is
 * the first cluster when every distance is NaN. */
static void select_points(census_work *w, const double *x, size_t n, size_t m, size_t dim)
{
    memset(w->offset, 0, dim * sizeof *w->offset);
    for (size_t i = 0; i < m; i++)
        w->row[i] = (size_t)((uint64_t)i * n / m);
    for (size_t j = 0; j < dim; j++) {
        size_t finite = 0;
        for (size_t i = 0; i < m; i++) {
            double v = x[w->row[i] * dim + j];
            if (isfinite(v)) {
                w->offset[j] += v;
                finite++;
            }
        }
        w->offset[j] /= (double)(finite ? finite : 1);
    }
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < dim; j++)
            w->p[i * dim + j] = x[w->row[i] * dim + j] - w->offset[j];
}

/* The thresholds for M points in DIM dimensions with K neighbours each.
 * Distances between neighbours vary less in more dimensions (their
 * relative spread falls like 1 / sqrt(dim)), so a smaller excess over the
 * core distance is already a gap or a dip there. */
static split_rule make_rule(const af_census_options *o, size_t m, size_t dim, size_t k,
                            double *link)
{
    double shrink = 1.0 / sqrt(dim > 0 ? (double)dim : 1.0);
    double split = fmax(ceil(o->split_share * (double)m), (double)(2 * k));
    split_rule rule;

    rule.split = split > (double)o->min_cluster ? (size_t)split : o->min_cluster;
    rule.min_size = o->min_cluster;
    rule.dip_ratio = 1.0 + (o->dip_ratio - 1.0) * shrink;
    *link = 1.0 + (o->link_factor - 1.0) * shrink;
    return rule;
}

/* Labels the M points of W 0 .. clusters - 1. Returns the number of
 * clusters, or 0 when out of memory (M > 0 always gives a cluster). */
static size_t cluster_points(census_work *w, size_t m, size_t dim, const af_census_options *o)
{
    size_t clusters = 0;
    if (m > 1) {
        /* The density at a point is measured by the distance to its
         * (min_cluster - 1)-th neighbour, so a mode of min_cluster draws
         * has its own density; on a line, where that distance is noisy,
         * by the distance to the neighbours-th neighbour. */
        size_t core = o->min_cluster > 1 ? o->min_cluster - 1 : 1;
        if (dim == 1 && core < o->neighbours)
            core = o->neighbours;
        double link;
        split_rule rule = make_rule(o, m, dim, w->nb.k, &link);

        find_neighbours(&w->nb, w->p, dim, w->norm2, w->gram);
        size_t edges = collect_edges(&w->nb, core < w->nb.k ? core : w->nb.k, link, w->edge,
                                     w->norm2);
        clusters = label_clusters(&w->tree, m, w->norm2, w->edge, edges, &rule, w->label);
    }
    if (m <= 1 || clusters == 0) {
        for (size_t i = 0; i < m; i++)
            w->label[i] = 0;
        return m > 0;
    }

    w->centre = malloc(clusters * dim * sizeof *w->centre + 1);
    w->count = malloc(clusters * sizeof *w->count);
    if (!w->centre || !w->count)
        return 0;
    if (attach_strays(&w->nb, w->label) > 0) {
        find_centres(w->p, m, dim, w->label, clusters, w->centre, w->count);
        attach_to_centres(w->p, m, dim, w->label, clusters, w->centre);
    }
    return clusters;
}

static int check_options(const af_census_options *o, char *msg, size_t len)
{
    if (o->max_points < 1 || o->neighbours < 1 || o->min_cluster < 1) {
        snprintf(msg, len, "invalid census options: max_points (%zu), neighbours (%zu) and "
                 "min_cluster (%zu) must be at least 1", o->max_points, o->neighbours,
                 o->min_cluster);
        return -1;
    }
    if (!(o->max_work >= 1) || !isfinite(o->max_work)) {
        snprintf(msg, len, "invalid census max_work %g: expected a number >= 1", o->max_work);
        return -1;
    }
    if (!(o->split_share >= 0 && o->split_share <= 1)) {
        snprintf(msg, len, "invalid census split share %g: expected a number in [0, 1]",
                 o->split_share);
        return -1;
    }
    if (!(o->dip_ratio >= 1) || !isfinite(o->dip_ratio)) {
        snprintf(msg, len, "invalid census dip ratio %g: expected a number >= 1", o->dip_ratio);
        return -1;
    }
    if (!(o->link_factor >= 1) || !isfinite(o->link_factor)) {
        snprintf(msg, len, "invalid census link factor %g: expected a number >= 1",
                 o->link_factor);
        return -1;
    }
    return 0;
}

/* Fills C for the draws. Returns 0, or -1 when out of memory. */
static int build_census(af_census *c, census_work *w, const double *x, const double *log_weight,
                        const af_census_options *o)
{
    const size_t n = c->n, dim = c->dim, m = c->points;
    w->nb.m = m;
    /* On a line the largest of m gaps between neighbours is about ln m times
     * the mean gap, so one dimension needs more neighbours to stay connected. */
    const size_t k = dim == 1 ? 2 * o->neighbours : o->neighbours;
    w->nb.k = m > 1 ? (k < m - 1 ? k : m - 1) : 1;

    c->label = malloc((n ? n : 1) * sizeof *c->label);
    w->row = malloc((m ? m : 1) * sizeof *w->row);
    w->p = malloc((m * dim > 0 ? m * dim : 1) * sizeof *w->p);
    w->offset = malloc((dim ? dim : 1) * sizeof *w->offset);
    w->norm2 = malloc((m ? m : 1) * sizeof *w->norm2);
    w->gram = malloc(TILE * TILE * sizeof *w->gram);
    w->weight = malloc((m ? m : 1) * sizeof *w->weight);
    w->edge = malloc((m ? m : 1) * w->nb.k * sizeof *w->edge);
    w->tree.parent = malloc((m ? m : 1) * sizeof *w->tree.parent);
    w->tree.size = malloc((m ? m : 1) * sizeof *w->tree.size);
    w->tree.head = malloc((m ? m : 1) * sizeof *w->tree.head);
    w->tree.tail = malloc((m ? m : 1) * sizeof *w->tree.tail);
    w->tree.next = malloc((m ? m : 1) * sizeof *w->tree.next);
    w->tree.has_cluster = malloc(m ? m : 1);
    w->tree.reached = malloc((m ? m : 1) * sizeof *w->tree.reached);
    w->label = malloc((m ? m : 1) * sizeof *w->label);
    w->nb.index = malloc((m ? m : 1) * w->nb.k * sizeof *w->nb.index);
    w->nb.dist2 = malloc((m ? m : 1) * w->nb.k * sizeof *w->nb.dist2);
    if (!c->label || !w->row || !w->p || !w->offset || !w->norm2 || !w->gram || !w->weight ||
        !w->edge || !w->tree.parent || !w->tree.size || !w->tree.head || !w->tree.tail ||
        !w->tree.next || !w->tree.has_cluster || !w->tree.reached || !w->label || !w->nb.index || !w->nb.dist2)
        return -1;
    for (size_t i = 0; i < n; i++)
        c->label[i] = -1;
    if (m == 0)
        return 0;

    select_points(w, x, n, m, dim);
    c->clusters = cluster_points(w, m, dim, o);
    if (c->clusters == 0)
        return -1;

    free(w->centre);
    free(w->count);
    w->centre = malloc(c->clusters * dim * sizeof *w->centre + 1);
    w->count = malloc(c->clusters * sizeof *w->count);
    w->tally = malloc(c->clusters * sizeof *w->tally);
    w->rank = malloc(c->clusters * sizeof *w->rank);
    c->info = malloc(c->clusters * sizeof *c->info);
    c->centre = malloc(c->clusters * dim * sizeof *c->centre + 1);
    if (!w->centre || !w->count || !w->tally || !w->rank || !c->info || !c->centre)
        return -1;

    find_centres(w->p, m, dim, w->label, c->clusters, w->centre, w->count);
    relative_weights(log_weight, w->row, m, w->weight);
    store_clusters(c, w->label, w->row, w->weight, w->centre, w->offset, w->tally, w->rank);
    return 0;
}

/* The number of the N draws to cluster: at most max_points, and few enough
 * that the pairwise distances cost at most max_work products. */
static size_t clustered_points(const af_census_options *o, size_t n, size_t dim)
{
    double by_work = floor(sqrt(o->max_work / (double)(dim > 0 ? dim : 1)));
    size_t m = n < o->max_points ? n : o->max_points;
    if (by_work < (double)m)
        m = by_work >= 2.0 ? (size_t)by_work : (m < 2 ? m : 2);
    return m;
}

int af_census_run(const double *x, size_t n, size_t dim, const double *log_weight,
                  const af_census_options *options, af_census **out, char *msg, size_t len)
{
    af_census_options o;
    if (options)
        o = *options;
    else
        af_census_options_default(&o);
    *out = NULL;
    if (check_options(&o, msg, len))
        return -1;

    census_work w;
    memset(&w, 0, sizeof w);
    af_census *c = calloc(1, sizeof *c);
    int rc = -1;
    if (c) {
        c->n = n;
        c->dim = dim;
        c->points = clustered_points(&o, n, dim);
        rc = build_census(c, &w, x, log_weight, &o);
    }
    work_free(&w);
    if (rc) {
        af_census_free(c);
        snprintf(msg, len, "out of memory for the mode census of %zu draws of dimension %zu",
                 n, dim);
        return -1;
    }
    *out = c;
    return 0;
}

void af_census_free(af_census *c)
{
    if (!c)
        return;
    free(c->info);
    free(c->centre);
    free(c->label);
    free(c);
}

size_t af_census_points(const af_census *c) { return c->points; }

size_t af_census_cluster_count(const af_census *c) { return c->clusters; }

af_census_cluster af_census_cluster_info(const af_census *c, size_t i) { return c->info[i]; }

const double *af_census_centre(const af_census *c, size_t i) { return c->centre + i * c->dim; }

long af_census_label(const af_census *c, size_t row) { return row < c->n ? c->label[row] : -1; }

int af_census_flagged(const af_census *c, size_t i)
{
    const af_census_cluster k = c->info[i];
    if (!isfinite(k.mass))
        return 0;
    int apart = k.mass > AF_CENSUS_FLAG_RATIO * k.share || k.share > AF_CENSUS_FLAG_RATIO * k.mass;
    return apart && fabs(k.mass - k.share) > 3.0 * k.mass_se &&
           fmax(k.mass, k.share) >= AF_CENSUS_FLAG_MIN_SHARE;
}

/* Prints the first three of the COLUMNS values CENTRE, named NAMES. */
static void print_centre(FILE *out, const char *const *names, size_t columns,
                         const double *centre)
{
    for (size_t j = 0; j < columns && j < 3; j++)
        fprintf(out, "%s%s %.4g", j ? ", " : "", names[j], centre[j]);
    if (columns > 3)
        fputs(", ...", out);
}

void af_census_print(FILE *out, const af_census *c, const char *const *names, size_t columns,
                     const double *centres)
{
    const size_t shown = c->clusters < AF_CENSUS_SHOWN ? c->clusters : AF_CENSUS_SHOWN;

    fprintf(out, "\nmode census (unconstrained scale): %zu cluster%s of ", c->clusters,
            c->clusters == 1 ? "" : "s");
    if (c->points < c->n)
        fprintf(out, "%zu evenly spaced of the %zu draws", c->points, c->n);
    else
        fprintf(out, "the %zu draws", c->n);
    if (shown < c->clusters)
        fprintf(out, "; the %zu with the largest mass", shown);
    fprintf(out, "\n%8s %9s %9s %9s   %s\n", "cluster", "draws", "mass", "(se)",
            "centre (output values)");

    double other_share = 1.0, other_mass = 1.0;
    for (size_t i = 0; i < shown; i++) {
        const af_census_cluster k = c->info[i];
        fprintf(out, "%8zu %8.2f%% %8.2f%% %8.2f%%   ", i + 1, 100 * k.share, 100 * k.mass,
                100 * k.mass_se);
        print_centre(out, names, columns, centres + i * columns);
        if (af_census_flagged(c, i))
            fputs(k.mass > k.share ? "  (under-sampled)" : "  (over-sampled)", out);
        fputc('\n', out);
        other_share -= k.share;
        other_mass -= k.mass;
    }
    if (shown < c->clusters)
        fprintf(out, "%8s %8.2f%% %8.2f%%   in the other %zu clusters\n", "rest",
                100 * fmax(other_share, 0.0), 100 * fmax(other_mass, 0.0), c->clusters - shown);
}

int af_census_warning(const af_census *c, char *msg, size_t len)
{
    size_t flagged = 0, first = 0;
    for (size_t i = c->clusters; i-- > 0;)
        if (af_census_flagged(c, i)) {
            flagged++;
            first = i;
        }
    if (flagged == 0)
        return 0;

    const af_census_cluster k = c->info[first];
    snprintf(msg, len,
             "the importance weights disagree with the draws in %zu of the %zu clusters: "
             "cluster %zu holds %.1f%% of the draws but %.1f%% (se %.1f%%) of the weighted "
             "mass, so the flow %s it. Estimates from the draws with equal weights misstate "
             "the weights of the modes; train longer (--iterations, --blocks), or write draws "
             "resampled by weight with --resample.",
             flagged, c->clusters, first + 1, 100 * k.share, 100 * k.mass, 100 * k.mass_se,
             k.mass > k.share ? "under-samples" : "over-samples");
    return 1;
}
