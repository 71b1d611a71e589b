#!/usr/bin/env python3
"""Compare an afrun sample file with the exact facts of a reference target.

usage: bench/check.py gmm_circle|funnel|exp_gauss FILE.csv

Prints each metric with its exact value and tolerance, and exits non-zero
when one misses. Only the standard library is used, so it runs wherever
afrun builds.
"""
import csv
import math
import sys


def read_draws(path):
    """Return the parameter columns of a CmdStan-style CSV as lists."""
    with open(path, newline="") as f:
        rows = csv.reader(line for line in f if not line.startswith("#"))
        header = next(rows)
        first = header.index("log_weight") + 1
        columns = [[] for _ in header[first:]]
        for row in rows:
            for j, value in enumerate(row[first:]):
                columns[j].append(float(value))
    return columns


def variance(values):
    mean = sum(values) / len(values)
    return sum((v - mean) ** 2 for v in values) / (len(values) - 1)


def check_gmm_circle(x, report):
    k, radius = 6, 8.0
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
        report(f"weight of mode {i + 1}", c / n, 1 / k, 0.02, absolute=True)
    report("fraction farther than 4 from every mean", far / n, 0.0, 0.01, absolute=True)
    report("mean distance to the nearest mean", total_distance / n,
           math.sqrt(math.pi / 2), 0.10)


def check_funnel(x, report):
    report("Var(x1)", variance(x[0]), 0.81, 0.15)
    mean_var = sum(variance(c) for c in x[1:5]) / 4
    report("mean Var(x2..x5)", mean_var, math.exp(0.405), 0.20)


def check_exp_gauss(x, report):
    n = len(x[0])
    codes = set()
    for p in range(n):
        codes.add(tuple(x[j][p] > 0 for j in range(10)))
    print(f"modes hit: {len(codes)} of 1024")
    mse = sum((variance([abs(v) for v in x[j]]) - 1.0) ** 2 for j in range(10)) / 10
    print(f"variance MSE of |x_i|, i <= 10: {mse:.4f}")


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[2])
    target, path = sys.argv[1], sys.argv[2]
    checks = {"gmm_circle": check_gmm_circle, "funnel": check_funnel,
              "exp_gauss": check_exp_gauss}
    if target not in checks:
        sys.exit(f"unknown target '{target}': expected one of {', '.join(checks)}")

    failures = []

    def report(name, value, exact, tolerance, absolute=False):
        error = abs(value - exact) if absolute else abs(value - exact) / abs(exact)
        ok = error <= tolerance
        bound = f"+- {tolerance}" if absolute else f"within {100 * tolerance:.0f}%"
        print(f"{'pass' if ok else 'FAIL'}  {name}: {value:.4f} (exact {exact:.4f}, {bound})")
        if not ok:
            failures.append(name)

    checks[target](read_draws(path), report)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
