#!/usr/bin/env python3
"""Compare an afrun sample file with the exact facts of a reference target.

usage: bench/check.py TARGET FILE.csv   (TARGET: a name in TARGETS below)

Prints each metric with its exact value and tolerance, and exits non-zero
when one misses. The tolerances are the acceptance bars of the flow's
quality. The logistic regression targets read their reference posteriors
from ../shared/data beside the repository. Only the standard library is
used, so it runs wherever afrun builds.
"""
import csv
import math
import sys


def read_draws(path):
    """Return the log_weight column and the parameter columns after it of a
    CmdStan-style CSV as lists."""
    with open(path, newline="") as f:
        rows = csv.reader(line for line in f if not line.startswith("#"))
        header = next(rows)
        first = header.index("log_weight")
        columns = [[] for _ in header[first:]]
        for row in rows:
            for j, value in enumerate(row[first:]):
                columns[j].append(float(value))
    return columns[0], columns[1:]


def variance(values):
    mean = sum(values) / len(values)
    return sum((v - mean) ** 2 for v in values) / (len(values) - 1)


# Circle mixtures: K unit Gaussians of equal weight on a circle of radius c,
# normalised, so log Z = 0.
CIRCLES = {"gmm_circle": (8.0, 6), "gmm_circle_10_8": (10.0, 8), "gmm_circle_12_10": (12.0, 10)}


def check_gmm_circle(x, log_weight, report, radius, k):
    """Mode weights by nearest mean (each 1/K +- 0.01), the mean distance to
    the nearest mean (the Rayleigh mean sqrt(pi / 2), within 5%), and log Z
    (0 within 0.05, and within two of its standard errors)."""
    means = [(radius * math.cos(2 * math.pi * i / k), radius * math.sin(2 * math.pi * i / k))
             for i in range(k)]
    counts = [0] * k
    far = 0
    total_distance = 0.0
    n = len(x[0])
    for a, b in zip(x[0], x[1]):
        distances = [math.hypot(a - m[0], b - m[1]) for m in means]
        nearest = min(range(k), key=distances.__getitem__)
        counts[nearest] += 1
        total_distance += distances[nearest]
        far += distances[nearest] > 4.0
    for i, c in enumerate(counts):
        report(f"weight of mode {i + 1}", c / n, 1 / k, 0.01, absolute=True)
    report("fraction farther than 4 from every mean", far / n, 0.0, 0.01, absolute=True)
    report("mean distance to the nearest mean", total_distance / n,
           math.sqrt(math.pi / 2), 0.05)
    log_z, se = log_mean_exp(log_weight)
    report("log Z", log_z, 0.0, 0.05, absolute=True)
    report(f"|log Z| in units of 2 se (se {se:.4f})", abs(log_z) / (2 * se), 0.0, 1.0,
           absolute=True)


def check_funnel(x, report):
    """Var(x1) within 10% of 0.81 and the mean of Var(x2..x5) within 10% of
    E exp(x1) = exp(0.405)."""
    report("Var(x1)", variance(x[0]), 0.81, 0.10)
    mean_var = sum(variance(c) for c in x[1:5]) / 4
    report("mean Var(x2..x5)", mean_var, math.exp(0.405), 0.10)


# Exact Var|x_i| of the first ten coordinates of the exp-weighted Gaussians.
ABS_VARIANCES = {"exp_gauss": [1.0] * 10, "exp_gauss_unequal": [0.5] * 5 + [1.0] * 5}


def weighted_variance(values, weights):
    """Variance of VALUES under normalised WEIGHTS, with the 1 - sum w^2
    correction that afrun's summary uses."""
    mean = math.fsum(w * v for v, w in zip(values, weights))
    spread = math.fsum(w * (v - mean) ** 2 for v, w in zip(values, weights))
    return spread / (1.0 - math.fsum(w * w for w in weights))


def check_exp_gauss(x, log_weight, report, abs_variances):
    """Check that every one of the 1024 modes is hit (the sign pattern of the first ten
    coordinates, counting a coordinate only beyond 7 in absolute value, as
    the paper's code does) and that the mean squared error of Var|x_i| over
    those coordinates is below 0.01, for the importance-weighted estimate
    that afrun's summary prints. The MSE of the draws taken with equal
    weights is printed beside it, without a bar."""
    n = len(x[0])
    codes = set()
    for p in range(n):
        if all(abs(x[j][p]) > 7.0 for j in range(10)):
            codes.add(tuple(x[j][p] > 0 for j in range(10)))
    report("modes hit", len(codes), 1024, 0, absolute=True)
    top = max(log_weight)
    weights = [math.exp(v - top) for v in log_weight]
    total = math.fsum(weights)
    weights = [w / total for w in weights]
    mse = sum((weighted_variance([abs(v) for v in x[j]], weights) - abs_variances[j]) ** 2
              for j in range(10)) / 10
    report("variance MSE of |x_i|, i <= 10, weighted", mse, 0.0, 0.01, absolute=True)
    raw = sum((variance([abs(v) for v in x[j]]) - abs_variances[j]) ** 2 for j in range(10)) / 10
    print(f"info  variance MSE of |x_i|, i <= 10, draws with equal weights: {raw:.4f} (no bar)")


# P(|X| > 6) for X ~ N(0, I_d): the chi-square survival function at 36.
# For d = 2 it is exp(-18). For d = 5 (odd), integrating by parts gives
# P(chi2_5 > x) = 2 Phi(-sqrt x) + 2 phi(sqrt x) (sqrt x + sqrt(x)^3 / 3),
# here 2 Phi(-6) + 156 phi(6) = 9.4981e-07 (also checked by quadrature).
TAIL_PROBABILITY = {
    2: math.exp(-18.0),
    5: math.erfc(6.0 / math.sqrt(2.0)) + 156.0 * math.exp(-18.0) / math.sqrt(2.0 * math.pi),
}


def log_mean_exp(values):
    top = max(values)
    if top == -math.inf:
        return -math.inf, math.nan
    weights = [math.exp(v - top) for v in values]
    n = len(weights)
    mean = sum(weights) / n
    var = sum((w - mean) ** 2 for w in weights) / (n - 1)
    return top + math.log(mean), math.sqrt(var / n) / mean


def check_trunc_normal(x, log_weight, report):
    """N(0, I) restricted to |x| > 6, not renormalised: no draw inside, and
    Z, the mean importance weight, is the tail probability."""
    n = len(x[0])
    inside = sum(1 for p in range(n) if math.fsum(c[p] ** 2 for c in x) <= 36.0)
    report("fraction inside radius 6", inside / n, 0.0, 0.005, absolute=True)
    log_z, se = log_mean_exp(log_weight)
    exact = TAIL_PROBABILITY[len(x)]
    print(f"log Z {log_z:.4f} (se {se:.4f}); exact {math.log(exact):.4f}")
    if len(x) == 2:
        report("tail probability P(|X| > 6)", math.exp(log_z), exact, 0.10)
    else:
        # The acceptance bar on the estimate is for 2-D only.
        print(f"info  tail probability P(|X| > 6): {math.exp(log_z):.4e} (exact {exact:.4e}, "
              f"error {100 * (math.exp(log_z) / exact - 1):+.1f}%, no bar)")


def check_blr(path, reference_path, report):
    """Posterior means and sds of the hierarchical logistic regression
    against the long-run reference: each mean within 0.1 reference sd, each
    sd within 10%. Column beta.k is the reference's beta[k], the intercept
    beta.(D+1) its beta_bias."""
    import json
    with open(reference_path) as f:
        reference = json.load(f)["params"]
    with open(path, newline="") as f:
        rows = csv.reader(line for line in f if not line.startswith("#"))
        header = next(rows)
        data = [[float(v) for v in row] for row in rows]
    d = len(reference) - 1
    names = {f"beta[{k}]": f"beta.{k}" for k in range(1, d)}
    names["beta_bias"] = f"beta.{d}"
    names["alpha"] = "alpha"
    worst_mean = worst_sd = 0.0
    for ref_name, column in names.items():
        values = [row[header.index(column)] for row in data]
        mean = sum(values) / len(values)
        sd = math.sqrt(variance(values))
        exact = reference[ref_name]
        worst_mean = max(worst_mean, abs(mean - exact["mean"]) / exact["sd"])
        worst_sd = max(worst_sd, abs(sd / exact["sd"] - 1.0))
    report("largest |mean - reference| / reference sd", worst_mean, 0.0, 0.1, absolute=True)
    report("largest |sd / reference sd - 1|", worst_sd, 0.0, 0.1, absolute=True)


TARGETS = [*CIRCLES, "funnel", *ABS_VARIANCES, "trunc_normal_2d", "trunc_normal_5d",
           "blr_german", "blr_australian"]


def run_check(target, path, report):
    """Run the checks of TARGET on the afrun CSV at PATH, calling
    report(name, value, exact, tolerance, absolute=False) for each."""
    if target.startswith("blr_"):
        bench_dir = __file__.rsplit("/", 1)[0]
        check_blr(path, f"{bench_dir}/../../shared/data/af_{target}.ref.json", report)
        return
    log_weight, x = read_draws(path)
    if target.startswith("trunc_normal"):
        check_trunc_normal(x, log_weight, report)
    elif target in CIRCLES:
        check_gmm_circle(x, log_weight, report, *CIRCLES[target])
    elif target in ABS_VARIANCES:
        check_exp_gauss(x, log_weight, report, ABS_VARIANCES[target])
    else:
        check_funnel(x, report)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[2])
    target, path = sys.argv[1], sys.argv[2]
    if target not in TARGETS:
        sys.exit(f"unknown target '{target}': expected one of {', '.join(TARGETS)}")

    failures = []

    def report(name, value, exact, tolerance, absolute=False):
        error = abs(value - exact) if absolute else abs(value - exact) / abs(exact)
        ok = error <= tolerance
        bound = f"+- {tolerance}" if absolute else f"within {100 * tolerance:.0f}%"
        form = ".4e" if 0 < abs(exact) < 1e-3 else ".4f"
        print(f"{'pass' if ok else 'FAIL'}  {name}: {value:{form}} (exact {exact:{form}}, {bound})")
        if not ok:
            failures.append(name)

    run_check(target, path, report)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
