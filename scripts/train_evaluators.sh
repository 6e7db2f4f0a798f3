#!/usr/bin/env bash
# Retrain the built-in evaluators (the feature networks of gankit's metrics) with their fixed seeds and write them to
# src/gankit/metrics/evaluators/, each with a NAME.json card holding its test accuracy and SHA-256.
# After retraining, copy the printed hashes into BUILTIN in src/gankit/metrics/evaluator.py.
#   usage: scripts/train_evaluators.sh [MNIST_DIR]     (default ../shared/data/mnist)
# Takes about 6 minutes on 2 CPU cores (MNIST: 4 epochs, 99.4% test accuracy; digits: 30 epochs, < 10 s;
# mnist_colour's B domain: 4 epochs, 97.9%).
set -euo pipefail
cd "$(dirname "$0")/.."
MNIST_DIR=${1:-../shared/data/mnist}
OUT=src/gankit/metrics/evaluators
GANKIT=${GANKIT:-.venv/bin/gankit}
"$GANKIT" evaluator train --data digits --epochs 30 --seed 0 -o "$OUT/digits.safetensors"
"$GANKIT" evaluator train --data mnist --set "data.root=$MNIST_DIR" --epochs 4 --seed 0 -o "$OUT/mnist.safetensors"
# the colour-digit domain (B) of mnist_colour: 30,000 images, 4 epochs, 97.9% test accuracy, about 80 s
"$GANKIT" evaluator train --data mnist_colour --set "data.root=$MNIST_DIR" --set data.domain=B --epochs 4 --seed 0 \
    -o "$OUT/mnist_colour.safetensors"
