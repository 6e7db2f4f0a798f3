"""Fuzzing the readers of files a user hands gankit (#24, "Done when"): IDX, .npy/.npz, images and checkpoints.

Random bytes, and random mutations of a valid file of each kind (bytes overwritten, cut, inserted, removed; the
headers, where the claims are, hit more often), go to each reader. Every outcome must be a valid result or a
:class:`~gankit.errors.GankitError`: never another exception (a traceback for the user) and never a hang (each
example runs under an alarm). Bounded for ``make test``: a fixed number of examples per reader, derandomized so
that CI sees the same inputs every run, with no example database written.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import math
import os
import signal
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save as serialize

from gankit.data.folder import open_image
from gankit.data.idx import encode_idx, file_md5, read_idx
from gankit.data.npyfile import load_npy, load_npz
from gankit.errors import GankitError
from gankit.train import checkpoint as ckpt

# GANKIT_FUZZ_EXAMPLES=5000 (and GANKIT_FUZZ_RANDOM=1 for fresh inputs rather than CI's) searches deeper by hand
EXAMPLES = int(os.environ.get("GANKIT_FUZZ_EXAMPLES", "300"))
FUZZ = settings(max_examples=EXAMPLES, deadline=2000, derandomize="GANKIT_FUZZ_RANDOM" not in os.environ,
                database=None, print_blob=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
HANG_SECONDS = 10  # far above any one read of these small files: past it, the reader is taken to hang


@pytest.fixture(scope="module", autouse=True)
def _small_limit():
    """A low memory limit, so a claim the checks let through cannot make a test allocate much."""
    old = os.environ.get("GANKIT_MAX_BYTES")
    os.environ["GANKIT_MAX_BYTES"] = "64M"
    yield
    if old is None:
        del os.environ["GANKIT_MAX_BYTES"]
    else:
        os.environ["GANKIT_MAX_BYTES"] = old


class Hang(BaseException):
    """Raised by the alarm: no handler in gankit may swallow it."""


@contextlib.contextmanager
def no_hang():
    def alarm(signum, frame):
        raise Hang(f"a reader ran for more than {HANG_SECONDS} s")
    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(HANG_SECONDS)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def outcome(read, path: Path):
    """``read(path)``'s result, or the GankitError it raised; any other exception fails the test."""
    with no_hang():
        try:
            return read(path)
        except GankitError as exc:
            assert "\n" not in str(exc), str(exc)  # the CLI prints it as one line
            return exc


# A mutation: (kind, position, bytes); positions fall in the first 64 bytes (the headers) half of the time
MUTATION = st.tuples(st.sampled_from(["set", "cut", "insert", "delete"]),
                     st.one_of(st.integers(0, 63), st.integers(0, 1 << 20)),
                     st.binary(min_size=1, max_size=16))


def mutate(data: bytes, mutations: list[tuple[str, int, bytes]]) -> bytes:
    for kind, at, chunk in mutations:
        at = at % (len(data) + 1)
        if kind == "set":
            data = data[:at] + chunk + data[at + len(chunk):]
        elif kind == "cut":
            data = data[:at]
        elif kind == "insert":
            data = data[:at] + chunk + data[at:]
        else:
            data = data[:at] + data[at + len(chunk):]
    return data


def fuzzed(seeds: dict[str, bytes]):
    """Random bytes, or one of ``seeds`` mutated one to four times."""
    return st.one_of(st.binary(max_size=4096),
                     st.builds(mutate, st.sampled_from(sorted(seeds.values())), st.lists(MUTATION, min_size=1,
                                                                                      max_size=4)))


# ---------------------------------------------------------------------------------------------------------------
# IDX (MNIST's format), raw and gzipped

_IMAGES = np.arange(3 * 5 * 4, dtype=np.uint8).reshape(3, 5, 4)
IDX_SEEDS = {"images": encode_idx(_IMAGES), "labels": encode_idx(np.arange(7, dtype=np.uint8)),
             "images.gz": gzip.compress(encode_idx(_IMAGES), mtime=0)}


def read_idx_every_way(path: Path):
    plain = read_idx(path)
    assert plain.dtype == np.uint8 and plain.ndim >= 1
    read_idx(path, ndim=3, md5="0" * 32, max_size=1 << 16)  # the MNIST path: dimensions, size and checksum
    return plain, file_md5(path)


@FUZZ
@given(data=fuzzed(IDX_SEEDS))
def test_idx_reader_gives_arrays_or_one_line_errors(tmp_path, data):
    path = tmp_path / "fuzz-idx3-ubyte"
    path.write_bytes(data)
    outcome(read_idx_every_way, path)


# ---------------------------------------------------------------------------------------------------------------
# .npy and .npz


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _npz(compressed: bool, **arrays) -> bytes:
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, **arrays)
    return buffer.getvalue()


NPY_SEEDS = {"u8": _npy(np.arange(24, dtype=np.uint8).reshape(2, 3, 4)), "f4": _npy(np.ones((3, 2), np.float32)),
             "fortran": _npy(np.asfortranarray(np.arange(6.0).reshape(2, 3)))}
NPZ_SEEDS = {"plain": _npz(False, x=np.arange(12, dtype=np.float32).reshape(3, 4), y=np.arange(3)),
             "compressed": _npz(True, arr_0=np.zeros((2, 4, 4, 1), np.uint8))}


def read_npz_members(path: Path):
    with load_npz(path) as npz:
        return {key: npz[key] for key in npz.files}


@FUZZ
@given(data=fuzzed(NPY_SEEDS))
def test_npy_reader_gives_arrays_or_one_line_errors(tmp_path, data):
    path = tmp_path / "fuzz.npy"
    path.write_bytes(data)
    outcome(load_npy, path)


@FUZZ
@given(data=fuzzed(NPZ_SEEDS))
def test_npz_reader_gives_arrays_or_one_line_errors(tmp_path, data):
    path = tmp_path / "fuzz.npz"
    path.write_bytes(data)
    outcome(read_npz_members, path)


# ---------------------------------------------------------------------------------------------------------------
# Images, in every format the folder reader takes


def _image(fmt: str, mode: str, exif: bool = False) -> bytes:
    pixels = np.arange(8 * 8 * 3, dtype=np.uint8).reshape(8, 8, 3)
    im = Image.fromarray(pixels).convert(mode)
    buffer = io.BytesIO()
    if exif:  # an orientation and a camera name: the EXIF parser runs on every read (exif_transpose)
        tags = Image.Exif()
        tags[0x0112], tags[0x010F] = 6, "camera"
        im.save(buffer, format=fmt, exif=tags.tobytes())
    else:
        im.save(buffer, format=fmt)
    return buffer.getvalue()


IMAGE_SEEDS = {f"{fmt}-{mode}{'-exif' if exif else ''}": _image(fmt, mode, exif) for fmt, mode, exif in
               [("PNG", "L", False), ("PNG", "RGB", False), ("PNG", "P", False), ("JPEG", "RGB", False),
                ("GIF", "P", False), ("BMP", "RGB", False), ("TIFF", "RGB", False), ("TIFF", "I;16", False),
                ("WEBP", "RGB", False), ("JPEG", "RGB", True), ("PNG", "RGB", True), ("WEBP", "RGB", True)]}


def _damaged_exif(value: int) -> bytes:
    """The EXIF JPEG seed with the first tag's number changed (the high byte of tag 0x010F): Pillow's EXIF parser
    then raised struct.error (``value`` 0) or TypeError (26) through gankit; found by this test."""
    data = IMAGE_SEEDS["JPEG-RGB-exif"]
    return mutate(data, [("set", data.index(b"Exif") + 17, bytes([value]))])


@FUZZ
@given(data=fuzzed(IMAGE_SEEDS), suffix=st.sampled_from([".png", ".jpg", ".gif", ".bmp", ".tif", ".webp"]))
@example(data=_damaged_exif(0), suffix=".jpg")
@example(data=_damaged_exif(26), suffix=".jpg")
def test_image_reader_gives_images_or_one_line_errors(tmp_path, data, suffix):
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(data)
    try:
        result = outcome(open_image, path)
    finally:
        path.unlink()
    if not isinstance(result, GankitError):
        assert result.mode in ("L", "RGB")


# ---------------------------------------------------------------------------------------------------------------
# Checkpoints, with checksums and as written before checksums existed

_TENSORS = {"model.generator.w": torch.arange(12, dtype=torch.float32).reshape(3, 4),
            "model.generator.b": torch.zeros(3), "sampler.perm": torch.arange(5),
            "rng.noise": torch.ones(4, dtype=torch.uint8)}
_META = {"step": 3, "config": {"model": {"name": "mlp_gan"}}, "data": {"sample_shape": [1, 8, 8], "num_classes": 10},
         "optim": {}, "recipe": {}, "health": {"retries": 0}, "best": None}


def _written(tensors: dict[str, torch.Tensor], meta: dict) -> tuple[bytes, dict[str, str]]:
    """The bytes :func:`gankit.train.checkpoint.save_checkpoint` writes, and the header metadata among them."""
    with tempfile.TemporaryDirectory() as folder:
        path = ckpt.save_checkpoint(Path(folder) / "seed.safetensors", tensors, meta)
        with safe_open(str(path), framework="pt") as fh:
            return path.read_bytes(), fh.metadata()


def _with_metadata(text: bytes, checksums: str | None) -> bytes:
    """A checkpoint whose metadata JSON is ``text`` (in a valid header), with the seed's checksums or none (as
    written before checksums existed)."""
    header = {"format": ckpt.FORMAT, "gankit": text.decode("utf-8", errors="replace")}
    return serialize(_TENSORS, metadata={**header, **({"sha256": checksums} if checksums else {})})


SEED_BYTES, SEED_HEADER = _written(_TENSORS, _META)
CHECKPOINT_SEEDS = {"checksums": SEED_BYTES, "before checksums": _with_metadata(json.dumps(_META).encode(), None)}


@FUZZ
@given(data=fuzzed(CHECKPOINT_SEEDS))
def test_checkpoint_reader_gives_checkpoints_or_one_line_errors(tmp_path, data):
    path = tmp_path / "step_0000003.safetensors"
    path.write_bytes(data)
    result = outcome(ckpt.load_checkpoint, path)
    if not isinstance(result, GankitError):
        tensors, meta = result
        assert isinstance(meta, dict) and type(meta["step"]) is int and meta["step"] >= 0


@FUZZ
@given(text=st.builds(mutate, st.just(json.dumps(_META).encode()), st.lists(MUTATION, min_size=1, max_size=4)),
       checksums=st.sampled_from([None, SEED_HEADER["sha256"]]))
def test_checkpoint_with_altered_metadata_text_is_a_checkpoint_or_one_line(tmp_path, text, checksums):
    path = tmp_path / "step_0000003.safetensors"
    path.write_bytes(_with_metadata(text, checksums))
    result = outcome(ckpt.load_checkpoint, path)
    if checksums is not None:  # any change to the metadata fails its checksum
        assert isinstance(result, GankitError) or json.loads(text) == _META


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                max_size=4), max_leaves=12)


@FUZZ
@given(step=JSON | st.integers(-5, 10**12), shape=JSON | st.lists(st.integers(-2, 10**6), max_size=5),
       classes=JSON | st.integers(-2, 10**13), config=JSON, drop=st.sets(st.sampled_from(sorted(_META))))
def test_checkpoint_metadata_of_any_shape_is_a_checkpoint_or_one_line(tmp_path, step, shape, classes, config, drop):
    meta = {**_META, "step": step, "config": config, "data": {"sample_shape": shape, "num_classes": classes}}
    for key in drop:
        meta.pop(key, None)
    path = tmp_path / "step_0000003.safetensors"
    ckpt.save_checkpoint(path, _TENSORS, meta)  # valid checksums: only the metadata's content is wrong
    result = outcome(ckpt.load_checkpoint, path)
    if not isinstance(result, GankitError):
        shape = result[1]["data"]["sample_shape"]
        assert all(type(n) is int and n > 0 for n in shape) and math.prod(shape) <= ckpt.MAX_SAMPLE_VALUES
