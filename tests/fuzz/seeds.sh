#!/bin/sh
# Collects the seed corpora into OUT/model and OUT/data: the example, test
# and error models, each ```stan block of docs/language.md, and every JSON
# data file under tests/.
# Usage: tests/fuzz/seeds.sh OUT
set -eu
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="$1"
mkdir -p "$out/model" "$out/data"

for f in "$root"/examples/*.afm "$root"/tests/errors/*.afm "$root"/tests/lang/models/*.afm \
         "$root"/tests/cli/*.afm "$root"/tests/fuzz/data_model.afm; do
    cp "$f" "$out/model/$(basename "$(dirname "$f")")_$(basename "$f")"
done
awk -v dir="$out/model" '
    /^```stan/ { n++; file = sprintf("%s/docs_%03d.afm", dir, n); next }
    /^```/ { file = ""; next }
    file != "" { print > file }
' "$root/docs/language.md"

find "$root/tests" -name '*.json' | while read -r f; do
    cp "$f" "$out/data/$(basename "$(dirname "$f")")_$(basename "$f")"
done
