#!/usr/bin/env python3
"""Convert a LIBSVM classification file to CmdStan JSON data for afm.

The output contains N (rows), D (features), X (an N x D matrix, one list per
row, with the indices the file omits as zeros) and y (labels mapped to 0/1:
the larger of the two labels becomes 1, so -1/+1 and 2/4 both work).
Features are written as stored, without standardisation.

With --split FILE --set NAME --part train|test only the rows that FILE (an
af_dataset_splits.json-style file of 0-based row indices per set) lists
under NAME's train_idx or test_idx are kept, in that order.

    python3 tools/libsvm_to_json.py german.txt examples/german.data.json \
        --split af_dataset_splits.json --set german --part train
"""
import argparse
import json
import sys


def read_libsvm(path):
    labels, rows = [], []
    with open(path) as src:
        for line_number, line in enumerate(src, start=1):
            fields = line.split()
            if not fields:
                continue
            try:
                labels.append(float(fields[0]))
                row = {}
                for field in fields[1:]:
                    index, value = field.split(":")
                    row[int(index)] = float(value)
            except ValueError:
                sys.exit(f"{path}:{line_number}: invalid LIBSVM line: {line.strip()!r}")
            rows.append(row)
    return labels, rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("input", help="LIBSVM file")
    parser.add_argument("output", help="JSON file to write")
    parser.add_argument("--split", help="JSON file of 0-based row indices per data set")
    parser.add_argument("--set", help="data set name in the split file, e.g. german")
    parser.add_argument("--part", choices=["train", "test"], default="train",
                        help="rows to keep from the split (default train)")
    args = parser.parse_args()

    labels, rows = read_libsvm(args.input)
    classes = sorted(set(labels))
    if len(classes) != 2:
        sys.exit(f"{args.input}: expected two distinct labels, found {classes}")
    features = max((max(row) for row in rows if row), default=0)

    keep = range(len(rows))
    if args.split:
        if not args.set:
            sys.exit("--split needs --set to name the data set")
        with open(args.split) as src:
            keep = json.load(src)[args.set][args.part + "_idx"]

    X = [[rows[i].get(j, 0.0) for j in range(1, features + 1)] for i in keep]
    y = [1 if labels[i] == classes[1] else 0 for i in keep]
    with open(args.output, "w") as out:
        json.dump({"N": len(X), "D": features, "X": X, "y": y}, out)
        out.write("\n")


if __name__ == "__main__":
    main()
