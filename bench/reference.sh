#!/bin/bash
# Runs afrun on the reference examples with 20000 samples and seed 1,
# prints wall time and peak memory of each run and checks the samples
# against the exact answers (bench/check.py). Run from the repository root
# after building: bash bench/reference.sh [BUILD_DIR]
set -u
build=${1:-build}
out=$(mktemp -d)
status=0

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
for target in gmm_circle gmm_circle_10_8 gmm_circle_12_10 funnel exp_gauss trunc_normal_2d \
    trunc_normal_5d; do
    command="$build/afrun examples/$target.afm --samples 20000 --seed 1 -o $out/$target.csv"
    echo
    echo "== $command"
    /usr/bin/time -f "wall %e s, cpu %U s user + %S s system, peak memory %M KiB" -o "$out/$target.time" \
        $command >"$out/$target.summary" 2>"$out/$target.log" || status=1
    cat "$out/$target.time"
    grep -E "importance-weight ESS|^mode census" "$out/$target.summary"
    python3 bench/check.py "$target" "$out/$target.csv" || status=1
done
rm -rf "$out"
exit $status
