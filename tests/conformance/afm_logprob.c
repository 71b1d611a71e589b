/* Prints a model's log-density and gradient at given unconstrained points,
 * for comparison with other implementations (tests/conformance/run.sh).
 *
 *   afm_logprob MODEL.afm [DATA.json] --dim
 *       prints the dimension d of the unconstrained parameter vector.
 *   afm_logprob MODEL.afm [DATA.json] < POINTS
 *       reads points, d whitespace-separated numbers each, and prints one
 *       line per point: log q(z), then the d components of its gradient.
 *
 * Numbers are printed with 17 significant digits, so they round-trip. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "af_eval.h"

static int usage(void)
{
    fprintf(stderr, "usage: afm_logprob MODEL.afm [DATA.json] [--dim] < POINTS\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *model_path = NULL, *data_path = NULL;
    int print_dim = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dim") == 0)
            print_dim = 1;
        else if (model_path == NULL)
            model_path = argv[i];
        else if (data_path == NULL)
            data_path = argv[i];
        else
            return usage();
    }
    if (model_path == NULL)
        return usage();

    af_model *model = NULL;
    char *message = NULL;
    if (af_model_compile(model_path, data_path, &model, &message) != 0) {
        fprintf(stderr, "%s", message);
        free(message);
        return 1;
    }
    size_t d = af_model_dim(model);
    if (print_dim) {
        printf("%zu\n", d);
        af_model_free(model);
        return 0;
    }

    af_eval *eval = af_eval_new(model);
    double *z = malloc(d * sizeof *z);
    double *score = malloc(d * sizeof *score);
    if (eval == NULL || z == NULL || score == NULL) {
        fprintf(stderr, "afm_logprob: out of memory\n");
        return 1;
    }

    int status = 0;
    for (size_t point = 1;; point++) {
        size_t read = 0;
        while (read < d && scanf("%lf", &z[read]) == 1)
            read++;
        if (read == 0 && (feof(stdin) || d == 0))
            break;
        if (read < d) {
            fprintf(stderr, "afm_logprob: point %zu: expected %zu numbers, read %zu\n", point,
                    d, read);
            status = 1;
            break;
        }
        double lp;
        char eval_message[256];
        if (af_eval_logp(eval, z, 1, &lp, score, eval_message, sizeof eval_message) != 0) {
            fprintf(stderr, "afm_logprob: point %zu: evaluation failed: %s\n", point,
                    eval_message);
            status = 1;
            break;
        }
        printf("%.17g", lp);
        for (size_t j = 0; j < d; j++)
            printf(" %.17g", score[j]);
        printf("\n");
    }
    free(score);
    free(z);
    af_eval_free(eval);
    af_model_free(model);
    return status;
}
