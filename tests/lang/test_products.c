/* Matrix products in models. The MATMUL op that lowering emits when one
 * side is data must give the log-density and score of the same products
 * written as loops, over a chunk of several points. Equal products must
 * share one node, a product of data must fold, and a product of two
 * parameters keeps the column form. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "af_eval.h"
#include "af_graph.h"
#include "score_check.h"

#define MODELS AF_TEST_DIR "/lang/models/"

enum { POINTS = 9, MAX_DIM = 32 };

static af_model *compile(const char *name)
{
    af_model *m = NULL;
    char *message = NULL;
    if (af_model_compile(name, MODELS "products.json", &m, &message) != 0)
        fail_msg("%s", message);
    return m;
}

static size_t count_matmul_nodes(const af_model *m)
{
    const af_graph *g = af_model_graph(m);
    size_t count = 0;
    for (size_t i = 0; i < af_graph_node_count(g); i++)
        count += af_graph_node_op(g, i) == AF_OP_MATMUL;
    return count;
}

/* Evaluates the POINTS points Z in one call, so in one chunk. */
static void evaluate(const af_model *m, const double *z, double *logp, double *score)
{
    af_eval *ev = af_eval_new(m);
    assert_non_null(ev);
    assert_true(af_eval_chunk_size(ev) >= POINTS);
    char message[256];
    assert_int_equal(af_eval_logp(ev, z, POINTS, logp, score, message, sizeof message), 0);
    af_eval_free(ev);
}

static void assert_near(const char *quantity, size_t point, double found, double expected)
{
    if (!(fabs(found - expected) <= 1e-10 * (1.0 + fabs(expected))))
        fail_msg("%s at point %zu: MATMUL gives %.17g, loops give %.17g", quantity, point,
                 found, expected);
}

static void products_match_loops(void **state)
{
    (void)state;
    af_model *product = compile(MODELS "products.afm");
    af_model *loops = compile(MODELS "products_loops.afm");
    size_t d = af_model_dim(product);
    assert_int_equal(d, af_model_dim(loops));
    assert_true(d <= MAX_DIM);
    assert_int_equal(count_matmul_nodes(product), 5);
    assert_int_equal(count_matmul_nodes(loops), 0);

    double z[POINTS * MAX_DIM];
    srand(21);
    for (size_t i = 0; i < POINTS * d; i++)
        z[i] = 2.0 * rand() / RAND_MAX - 1.0;
    double logp[POINTS], score[POINTS * MAX_DIM];
    double logp_loops[POINTS], score_loops[POINTS * MAX_DIM];
    evaluate(product, z, logp, score);
    evaluate(loops, z, logp_loops, score_loops);
    for (size_t p = 0; p < POINTS; p++) {
        assert_true(isfinite(logp[p]));
        assert_near("log-density", p, logp[p], logp_loops[p]);
        for (size_t j = 0; j < d; j++)
            assert_near("score", p, score[p * d + j], score_loops[p * d + j]);
    }

    af_eval *ev = af_eval_new(product);
    for (size_t p = 0; p < POINTS; p++)
        score_check_point("products", (int)p, ev, &z[p * d], d, &score[p * d], logp[p], 1e-6,
                          0.0);
    af_eval_free(ev);
    af_model_free(product);
    af_model_free(loops);
}

static void repeated_product_shares_node(void **state)
{
    (void)state;
    af_model *m = compile(MODELS "products_shared.afm");
    assert_int_equal(count_matmul_nodes(m), 1);
    af_model_free(m);
}

/* sum(X * W) of data folds to one constant, so no node is longer than 1. */
static void data_product_folds(void **state)
{
    (void)state;
    af_model *m = compile(MODELS "products_folded.afm");
    const af_graph *g = af_model_graph(m);
    assert_int_equal(count_matmul_nodes(m), 0);
    for (size_t i = 0; i < af_graph_node_count(g); i++)
        assert_int_equal(af_graph_node_len(g, i), 1);
    af_model_free(m);
}

static void parameter_product_keeps_columns(void **state)
{
    (void)state;
    af_model *m = compile(MODELS "products_parameters.afm");
    assert_int_equal(count_matmul_nodes(m), 0);
    size_t d = af_model_dim(m);
    af_eval *ev = af_eval_new(m);
    double z[MAX_DIM], score[MAX_DIM], lp;
    srand(22);
    for (size_t j = 0; j < d; j++)
        z[j] = 2.0 * rand() / RAND_MAX - 1.0;
    assert_int_equal(af_eval_logp(ev, z, 1, &lp, score, NULL, 0), 0);
    score_check_point("parameters", 0, ev, z, d, score, lp, 1e-6, 0.0);
    af_eval_free(ev);
    af_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(products_match_loops),
        cmocka_unit_test(repeated_product_shares_node),
        cmocka_unit_test(data_product_folds),
        cmocka_unit_test(parameter_product_keeps_columns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
