#!/bin/sh
# Installs the Debian 12 packages that afm needs to build and test.
# Uses sudo when not run as root. PyTorch (python3-torch) is needed only by
# bench/vs-pytorch and is not installed here; see bench/README.md.
set -eu

packages="build-essential cmake pkg-config flex bison libopenblas-dev libffi-dev \
libcmocka-dev libcjson-dev libsleef-dev liblbfgs-dev python3 clang"

if [ "$(id -u)" -eq 0 ]; then
    run=""
else
    run="sudo"
fi

$run apt-get update -qq
DEBIAN_FRONTEND=noninteractive $run apt-get install -y -qq $packages
