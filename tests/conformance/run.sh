#!/bin/sh
# Compares afm's log-density and gradient with rstan's at 100 random
# unconstrained points for each example model ported from Stan, and prints
# a Markdown table (see compare.py for the measures). Not part of CTest:
# it needs R with rstan (Debian: apt-get install r-cran-rstan), and
# compiling the eight Stan models takes several minutes the first time.
#
#   tests/conformance/run.sh BUILD_DIR [WORK_DIR]
#
# BUILD_DIR is a build folder of afm that contains tests/afm_logprob. WORK_DIR
# (default /tmp/afm-conformance) keeps the points, both outputs and the
# compiled Stan models, which later runs reuse.
set -eu

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 BUILD_DIR [WORK_DIR]" >&2
  exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
logprob="$1/tests/afm_logprob"
work=${2:-/tmp/afm-conformance}
if [ ! -x "$logprob" ]; then
  echo "$0: $logprob not found: build afm first (cmake --build $1)" >&2
  exit 1
fi
mkdir -p "$work"

models="eight_schools_noncentered german linear_regression hierarchical_intercepts
normal_mixture poisson_regression ar1 dirichlet_categorical"

echo "| model | points | max gradient error | lp difference (median) | spread | spread / median abs(lp) | verdict |"
echo "|---|---|---|---|---|---|---|"
seed=0
for name in $models; do
  seed=$((seed + 1))
  model="$root/examples/$name.afm"
  data="$root/examples/$name.data.json"
  dim=$("$logprob" "$model" "$data" --dim)
  # 100 points with standard normal coordinates, seeded per model.
  python3 -c "
import random, sys
rng = random.Random($seed)
for _ in range(100):
    print(' '.join(repr(rng.gauss(0, 1)) for _ in range($dim)))
" > "$work/$name.points"
  "$logprob" "$model" "$data" < "$work/$name.points" > "$work/$name.afm.out"
  Rscript "$here/stan_logprob.R" "$here/stan/$name.stan" "$data" "$work/$name.points" \
    "$work/$name.stan.out" "$work" > "$work/$name.R.log" 2>&1 ||
    { echo "$0: rstan failed on $name, see $work/$name.R.log" >&2; exit 1; }
  python3 "$here/compare.py" "$name" "$work/$name.afm.out" "$work/$name.stan.out"
done
