"""MNIST's four published files: their names' checksums and sizes, and the default download cache.

A module of its own so that :mod:`gankit.data.mnist` (which reads the files) and :mod:`gankit.data.download` (which
fetches them) can both use the table without importing each other.
"""

from __future__ import annotations

DEFAULT_CACHE = "~/.cache/gankit/mnist"
SIDE = 28
# MD5 of the *uncompressed* content of each file, as published with the dataset
MNIST_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
# bytes of the uncompressed content of each file: a header claiming more is refused before anything is allocated,
# and decompression stops just past it (a gzip bomb costs no more than the real file)
MNIST_SIZES = {
    "train-images-idx3-ubyte": 16 + 60_000 * SIDE * SIDE,
    "train-labels-idx1-ubyte": 8 + 60_000,
    "t10k-images-idx3-ubyte": 16 + 10_000 * SIDE * SIDE,
    "t10k-labels-idx1-ubyte": 8 + 10_000,
}


def known_size(name: str, md5: str | None) -> int | None:
    """The uncompressed size of MNIST's file ``name`` when it is checked against MNIST's own ``md5``, else None."""
    return MNIST_SIZES.get(name) if md5 is not None and md5.lower() == MNIST_MD5.get(name) else None
