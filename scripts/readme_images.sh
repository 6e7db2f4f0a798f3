#!/usr/bin/env bash
# The latent-space and class grids shown in the README, drawn from trained runs with fixed seeds.
#   usage: scripts/readme_images.sh [DCGAN_RUN] [CGAN_RUN]   (defaults: the runs benchmarks/gan_quality.py makes)
set -euo pipefail
cd "$(dirname "$0")/.."
DCGAN=${1:-runs/bench/dcgan_mnist}
CGAN=${2:-runs/bench/cgan_mnist}
OUT=docs/images
GANKIT=${GANKIT:-.venv/bin/gankit}
mkdir -p "$OUT"
"$GANKIT" latent interpolate "$DCGAN" --rows 6 --steps 10 --seed 0 -o "$OUT/dcgan_interpolate.png"
"$GANKIT" latent traverse "$DCGAN" --dims 0,1,2,3,4,5 --steps 9 --seed 0 -o "$OUT/dcgan_traverse.png"
"$GANKIT" latent arithmetic "$DCGAN" "7 thick - 7 thin + 3 thin" --seed 0 -o "$OUT/dcgan_arithmetic.png"
"$GANKIT" sample "$CGAN" --by-class -n 10 --seed 0 -o "$OUT/cgan_by_class.png"
