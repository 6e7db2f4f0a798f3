#!/usr/bin/env bash
# The latent-space and class grids shown in README.md and docs/*.md (saved in docs/images/), drawn from trained runs
# with fixed seeds.
#   usage: scripts/readme_images.sh [DCGAN_RUN] [CGAN_RUN] [VAE_RUN] [VAE2D_RUN] [TRANSLATION_RUNS]  (STYLE=...)
#   (defaults: the runs benchmarks/gan_quality.py and benchmarks/vae.py make, and runs/vae2d)
set -euo pipefail
cd "$(dirname "$0")/.."
DCGAN=${1:-runs/bench/dcgan_mnist}
CGAN=${2:-runs/bench/cgan_mnist}
OUT=docs/images
GANKIT=${GANKIT:-.venv/bin/gankit}
mkdir -p "$OUT"
MNIST_DIR=${MNIST_DIR:-../shared/data/mnist}
PY=${PY:-.venv/bin/python}
stylegan_images() {
    # StyleGAN (#9, #19): the 45-minute benchmark run's last weights (docs/stylegan.md): style mixing, the truncation
    # sweep, W interpolation, and four MNIST test digits (28x28 PNG files, as a user's own) projected into W, each
    # with six edits that keep its coarse styles
    STYLE=${STYLE:-runs/tq45/stylegan_mnist}
    "$GANKIT" latent mix "$STYLE" --cols 8 --seed 0 -o "$OUT/stylegan_mixing.png"
    "$GANKIT" latent truncation "$STYLE" --psi 1,0.8,0.6,0.4,0.2,0 --cols 8 --seed 0 -o "$OUT/stylegan_truncation.png"
    "$GANKIT" latent interpolate "$STYLE" --space w --rows 4 --steps 10 --seed 0 -o "$OUT/stylegan_interpolate_w.png"
    TMP=$(mktemp -d)
    "$PY" - "$MNIST_DIR" "$TMP" <<'PYEOF'
import sys
from PIL import Image
from gankit.config import DataConfig
from gankit.data import load_dataset
from gankit.images import to_uint8
root, tmp = sys.argv[1], sys.argv[2]
x = load_dataset(DataConfig(name="mnist", root=root), "test").x[:4]
for i, arr in enumerate(to_uint8(x)):
    Image.fromarray(arr[..., 0]).save(f"{tmp}/digit{i}.png")
PYEOF
    "$GANKIT" project "$STYLE" "$TMP"/digit0.png "$TMP"/digit1.png "$TMP"/digit2.png "$TMP"/digit3.png --steps 300 \
        --edits 6 --keep coarse --seed 0 -o "$OUT/stylegan_projection.png"
    rm -r "$TMP"
}
if [ "${PART:-all}" = stylegan ]; then  # PART=stylegan scripts/readme_images.sh: the StyleGAN images alone
    stylegan_images
    exit 0
fi
"$GANKIT" latent interpolate "$DCGAN" --rows 6 --steps 10 --seed 0 -o "$OUT/dcgan_interpolate.png"
"$GANKIT" latent traverse "$DCGAN" --dims 0,1,2,3,4,5 --steps 9 --seed 0 -o "$OUT/dcgan_traverse.png"
"$GANKIT" latent arithmetic "$DCGAN" "7 thick - 7 thin + 3 thin" --seed 0 -o "$OUT/dcgan_arithmetic.png"
"$GANKIT" sample "$CGAN" --by-class -n 10 --seed 0 -o "$OUT/cgan_by_class.png"
# the README's class grid: rpgan_cgan_mnist's 10-minute benchmark run (benchmarks/gan_quality.py --suite cgan)
RPCGAN=${RPCGAN:-runs/bench/rpgan_cgan_mnist_seed0}
"$GANKIT" sample "$RPCGAN/checkpoints/best.safetensors" --by-class -n 10 --seed 0 -o "$OUT/rpgan_cgan_by_class.png"
# autoencoders and VAEs (#5): the example VAE's prior samples and reconstructions, a 2-D VAE's whole latent space
VAE=${3:-runs/bench_vae/vae_mnist}
VAE2D=${4:-runs/vae2d}  # gankit train configs/vae_mnist.yaml --set model.latent_dim=2 --out runs/vae2d
"$GANKIT" sample "$VAE" -n 64 --seed 0 -o "$OUT/vae_samples.png"
cp "$(ls "$VAE"/samples/recon_step_*.png | tail -1)" "$OUT/vae_reconstructions.png"
"$GANKIT" latent manifold "$VAE2D" --steps 20 -o "$OUT/vae2d_manifold.png"
cp "$(dirname "$VAE")/vae_vs_gan.png" "$OUT/vae_vs_gan.png"  # written by benchmarks/vae.py --suite vs_gan
# image-to-image translation (#8): the first 10 test inputs of each task, translated by the benchmark's runs
TR=${5:-runs/bench_translation}
# docs/translation.md uses the 25-minute runs: COLOUR=runs/bench_translation25/colour_seed0 (the paper's losses) and
# COLOUR_SEMANTIC=runs/bench_translation/colour_sem25_seed0 (configs/cyclegan_semantic_mnist_colour.yaml)
COLOUR=${COLOUR:-$TR/colour_seed0}
COLOUR_SEMANTIC=${COLOUR_SEMANTIC:-$TR/colour_sem25_seed0}
TMP=$(mktemp -d)
"$PY" - "$MNIST_DIR" "$TMP" <<'PYEOF'
import sys
import numpy as np
from gankit.config import DataConfig
from gankit.data import load_dataset
from gankit.images import to_uint8
root, tmp = sys.argv[1], sys.argv[2]
for name, domain in (("mnist_edges", "A"), ("mnist_colour", "A"), ("mnist_colour", "B")):
    x = load_dataset(DataConfig(name=name, root=root, domain=domain), "test").x[:10]
    np.savez(f"{tmp}/{name}_{domain}.npz", arr_0=to_uint8(x))
PYEOF
"$GANKIT" translate "$TR/edges_pix2pix" "$TMP/mnist_edges_A.npz" -o "$TMP/p.npz" --samples 3 --grid "$OUT/pix2pix_edges.png"
"$GANKIT" translate "$TR/edges_l1_only" "$TMP/mnist_edges_A.npz" -o "$TMP/l.npz" --grid "$OUT/l1_only_edges.png"
"$GANKIT" translate "$COLOUR" "$TMP/mnist_colour_A.npz" -o "$TMP/ab.npz" --grid "$OUT/cyclegan_ab.png"
"$GANKIT" translate "$COLOUR" "$TMP/mnist_colour_B.npz" -o "$TMP/ba.npz" --direction BA --grid "$OUT/cyclegan_ba.png"
"$GANKIT" translate "$COLOUR_SEMANTIC" "$TMP/mnist_colour_A.npz" -o "$TMP/sab.npz" \
    --grid "$OUT/cyclegan_semantic_ab.png"
"$GANKIT" translate "$COLOUR_SEMANTIC" "$TMP/mnist_colour_B.npz" -o "$TMP/sba.npz" --direction BA \
    --grid "$OUT/cyclegan_semantic_ba.png"
rm -r "$TMP"
stylegan_images
