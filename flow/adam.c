/* Adam with global gradient-norm clipping, on a flat parameter array. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "flow_internal.h"

int adam_init(adam_state *a, size_t n)
{
    a->n = n;
    a->t = 0;
    a->m = calloc(n, sizeof *a->m);
    a->v = calloc(n, sizeof *a->v);
    return a->m && a->v ? 0 : -1;
}

void adam_free(adam_state *a)
{
    free(a->m);
    free(a->v);
    a->m = a->v = NULL;
}

void adam_reset(adam_state *a)
{
    memset(a->m, 0, a->n * sizeof *a->m);
    memset(a->v, 0, a->n * sizeof *a->v);
    a->t = 0;
}

void adam_step(adam_state *a, double *theta, double *grad, double lr, double clip)
{
    const double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
    double norm2 = 0.0;

    for (size_t i = 0; i < a->n; i++)
        norm2 += grad[i] * grad[i];
    double scale = norm2 > clip * clip ? clip / sqrt(norm2) : 1.0;

    a->t++;
    double c1 = 1.0 - pow(beta1, (double)a->t), c2 = 1.0 - pow(beta2, (double)a->t);
    for (size_t i = 0; i < a->n; i++) {
        double g = grad[i] * scale;
        a->m[i] = beta1 * a->m[i] + (1.0 - beta1) * g;
        a->v[i] = beta2 * a->v[i] + (1.0 - beta2) * g * g;
        theta[i] -= lr * (a->m[i] / c1) / (sqrt(a->v[i] / c2) + eps);
    }
}
