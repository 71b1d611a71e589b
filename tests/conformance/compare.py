#!/usr/bin/env python3
"""Compare afm's and rstan's log-densities and gradients at the same points.

    compare.py NAME AFM_OUTPUT STAN_OUTPUT

Each output has one line per point: the log-density, then the gradient.
Prints one Markdown table row:

    | NAME | points | max gradient error | log-density difference (median) |
      spread | spread / median |log q| | verdict |

The gradient error of a component is |a - b| / max(|a|, |b|, 1), so it is
relative for components of magnitude above 1 and absolute below. The
log-densities differ by the constants that Stan's ~ drops, so the check is
on the spread (max - min) of lp_afm - lp_stan over the points, relative to
the median |lp_afm|. Both checks pass at 1e-8.
"""
import math
import statistics
import sys

TOLERANCE = 1e-8


def read_rows(path):
    with open(path) as src:
        return [[float(v) for v in line.split()] for line in src if line.strip()]


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: compare.py NAME AFM_OUTPUT STAN_OUTPUT")
    name, afm_path, stan_path = sys.argv[1:]
    afm_rows, stan_rows = read_rows(afm_path), read_rows(stan_path)
    if len(afm_rows) != len(stan_rows) or not afm_rows:
        sys.exit(f"{name}: {len(afm_rows)} afm rows but {len(stan_rows)} rstan rows")

    gradient_error = 0.0
    differences = []
    for afm, stan in zip(afm_rows, stan_rows):
        if len(afm) != len(stan):
            sys.exit(f"{name}: afm gives {len(afm) - 1} gradient components, "
                     f"rstan {len(stan) - 1}")
        differences.append(afm[0] - stan[0])
        for a, b in zip(afm[1:], stan[1:]):
            gradient_error = max(gradient_error, abs(a - b) / max(abs(a), abs(b), 1.0))

    spread = max(differences) - min(differences)
    scale = statistics.median(abs(row[0]) for row in afm_rows)
    relative_spread = spread / max(scale, 1.0)
    ok = gradient_error <= TOLERANCE and relative_spread <= TOLERANCE and all(
        math.isfinite(d) for d in differences)
    print(f"| {name} | {len(afm_rows)} | {gradient_error:.2e} | "
          f"{statistics.median(differences):.10g} | {spread:.2e} | "
          f"{relative_spread:.2e} | {'pass' if ok else 'FAIL'} |")


if __name__ == "__main__":
    main()
