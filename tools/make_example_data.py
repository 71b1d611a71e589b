#!/usr/bin/env python3
"""Write the made-up data sets of the example models to examples/.

Each data set is simulated from the model it belongs to, with a fixed seed,
so rerunning the script rewrites the same files. The values are rounded to
four decimals to keep the JSON short. Run from anywhere:

    python3 tools/make_example_data.py
"""
import json
import math
import os
import random

EXAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples")


def rounded(values):
    return [round(v, 4) for v in values]


def poisson(rng, rate):
    """Draw from Poisson(rate) by Knuth's product-of-uniforms method (small rates)."""
    limit = math.exp(-rate)
    count, product = 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def linear_regression(rng):
    n, k = 40, 3
    alpha, beta, sigma = 1.5, [0.8, -1.2, 0.3], 0.7
    x = [[rng.gauss(0, 1) for _ in range(k)] for _ in range(n)]
    y = [alpha + sum(b * v for b, v in zip(beta, row)) + rng.gauss(0, sigma) for row in x]
    return {"N": n, "K": k, "x": [rounded(row) for row in x], "y": rounded(y)}


def hierarchical_intercepts(rng):
    groups, per_group = 6, 8
    mu_a, sigma_a, b, sigma_y = 1.0, 0.5, -0.6, 0.8
    a = [rng.gauss(mu_a, sigma_a) for _ in range(groups)]
    group = [j + 1 for j in range(groups) for _ in range(per_group)]
    x = [rng.uniform(0, 2) for _ in group]
    y = [a[g - 1] + b * xi + rng.gauss(0, sigma_y) for g, xi in zip(group, x)]
    return {"N": len(group), "J": groups, "group": group, "x": rounded(x), "y": rounded(y)}


def normal_mixture(rng):
    n, weight = 60, 0.4
    y = [rng.gauss(-2, 0.7) if rng.random() < weight else rng.gauss(1.5, 1.0) for _ in range(n)]
    return {"N": n, "y": rounded(y)}


def poisson_regression(rng):
    n, alpha, beta = 40, 0.3, 0.7
    x = rounded([rng.gauss(0, 1) for _ in range(n)])
    exposure = rounded([rng.uniform(0.5, 2.0) for _ in range(n)])
    y = [poisson(rng, e * math.exp(alpha + beta * xi)) for xi, e in zip(x, exposure)]
    return {"N": n, "x": x, "exposure": exposure, "y": y}


def ar1(rng):
    n, alpha, beta, sigma = 50, 0.2, 0.7, 0.5
    y = [0.0]
    for _ in range(n - 1):
        y.append(alpha + beta * y[-1] + rng.gauss(0, sigma))
    return {"N": n, "y": rounded(y)}


def dirichlet_categorical(rng):
    n, theta = 50, [0.1, 0.2, 0.3, 0.4]
    y = rng.choices(range(1, len(theta) + 1), weights=theta, k=n)
    return {"N": n, "K": len(theta), "alpha": [2.0] * len(theta), "y": y}


def main():
    makers = [linear_regression, hierarchical_intercepts, normal_mixture,
              poisson_regression, ar1, dirichlet_categorical]
    for seed, make in enumerate(makers, start=1):
        data = make(random.Random(seed))
        path = os.path.join(EXAMPLES, make.__name__ + ".data.json")
        with open(path, "w") as out:
            json.dump(data, out)
            out.write("\n")
        print("wrote", os.path.normpath(path))


if __name__ == "__main__":
    main()
