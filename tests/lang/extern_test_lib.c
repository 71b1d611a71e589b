/* A shared library of extern functions for the tests, written against the
 * C interface of runtime/af_ffi.h. A real argument is a double and a vector
 * argument is (const double *x, size_t n). A derivative function takes the
 * same arguments and then writes one partial derivative per argument
 * element into grad. */
#include <math.h>
#include <stddef.h>

#define LOG_SQRT_2PI 0.91893853320467274178

/* Rosenbrock's function: (1 - x)^2 + 100 (y - x^2)^2. */
double ext_rosen(double x, double y)
{
    return (1 - x) * (1 - x) + 100 * (y - x * x) * (y - x * x);
}

void ext_rosen_grad(double x, double y, double *grad)
{
    grad[0] = -2 * (1 - x) - 400 * x * (y - x * x);
    grad[1] = 200 * (y - x * x);
}

/* The same function for the finite-difference variant, which needs a
 * symbol of its own because the symbol is the function's name in the model. */
double ext_rosen_fd(double x, double y)
{
    return ext_rosen(x, y);
}

/* Sum of the normal log-densities of x[0..n) with location mu and scale
 * sigma, as normal_lpdf(x | mu, sigma) in the language. */
double ext_normal_sum(const double *x, size_t n, double mu, double sigma)
{
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        double u = (x[i] - mu) / sigma;
        sum += -0.5 * u * u - log(sigma) - LOG_SQRT_2PI;
    }
    return sum;
}

/* Partials: n for x, then mu, then sigma. */
void ext_normal_sum_grad(const double *x, size_t n, double mu, double sigma, double *grad)
{
    double dmu = 0, dsigma = 0;
    for (size_t i = 0; i < n; i++) {
        double u = (x[i] - mu) / sigma;
        grad[i] = -u / sigma;
        dmu += u / sigma;
        dsigma += (u * u - 1) / sigma;
    }
    grad[n] = dmu;
    grad[n + 1] = dsigma;
}

/* log(x): NaN below zero, for the tests of runtime errors. */
double ext_log(double x)
{
    return log(x);
}

void ext_log_grad(double x, double *grad)
{
    grad[0] = 1 / x;
}

/* x * y with a derivative function that forgets the partial for y. */
double ext_product(double x, double y)
{
    return x * y;
}

void ext_product_grad(double x, double y, double *grad)
{
    (void)x;
    grad[0] = y;
}
