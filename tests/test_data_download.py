"""MNIST download against a local HTTP server: mirror fallback, checksum rejection, atomic files; no internet."""

from __future__ import annotations

import functools
import gzip
import socket
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from gankit.data.download import MIRRORS, download_mnist, fetch_file
from gankit.data.idx import encode_idx, md5_hex, read_idx
from gankit.errors import DataError

NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


class _Handler(SimpleHTTPRequestHandler):
    """Serves files from ``directory``; ``/slow/`` waits before answering; records every path asked for."""

    def __init__(self, *args, log: list, **kwargs):
        self.log = log
        super().__init__(*args, **kwargs)

    def do_GET(self):
        self.log.append(self.path)
        if self.path.startswith("/slow/"):
            time.sleep(1.0)
        super().do_GET()

    def log_message(self, *args):  # keep the test output quiet
        pass


@pytest.fixture
def fake_files() -> dict[str, bytes]:
    rng = np.random.default_rng(1)
    return {name: encode_idx(rng.integers(0, 256, (3, 28, 28) if "images" in name else (3,), dtype=np.uint8))
            for name in NAMES}


@pytest.fixture
def server(tmp_path, fake_files, monkeypatch):
    """A local server with mirrors good/ (right files), broken/ (wrong content, corrupt gzip) and none/ (404)."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    www = tmp_path / "www"
    for sub in ("good", "broken", "slow"):
        (www / sub).mkdir(parents=True)
    for i, (name, raw) in enumerate(fake_files.items()):
        (www / "good" / f"{name}.gz").write_bytes(gzip.compress(raw))
        (www / "slow" / f"{name}.gz").write_bytes(gzip.compress(raw))
        bad = gzip.compress(raw[:-1] + bytes([raw[-1] ^ 1])) if i % 2 == 0 else gzip.compress(raw)[:20]
        (www / "broken" / f"{name}.gz").write_bytes(bad)
    log: list[str] = []
    handler = functools.partial(_Handler, directory=str(www), log=log)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", log
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def sums(fake_files) -> dict[str, str]:
    return {name: md5_hex(raw) for name, raw in fake_files.items()}


def test_default_mirrors_are_https_first():
    assert MIRRORS[0].startswith("https://") and all(m.endswith("/") for m in MIRRORS) and len(MIRRORS) >= 2


def test_falls_back_past_404_and_bad_checksums(tmp_path, server, sums, fake_files):
    url, log = server
    dest = download_mnist(tmp_path / "cache", mirrors=(f"{url}/none/", f"{url}/broken/", f"{url}/good/"),
                          checksums=sums)
    assert dest == tmp_path / "cache"
    assert sorted(p.name for p in dest.iterdir()) == sorted(f"{n}.gz" for n in NAMES)  # no .part left behind
    for name, raw in fake_files.items():
        assert gzip.decompress((dest / f"{name}.gz").read_bytes()) == raw
        read_idx(dest / f"{name}.gz", md5=sums[name])
    assert len(log) == 3 * len(NAMES)
    assert [p.split("/")[1] for p in log[:3]] == ["none", "broken", "good"]


def test_all_mirrors_failing_lists_what_was_tried(tmp_path, server, sums):
    url, _ = server
    dest = tmp_path / "cache"
    dest.mkdir()
    name = "train-images-idx3-ubyte.gz"  # broken/ serves it with one byte changed
    with pytest.raises(DataError) as err:
        fetch_file(name, dest, sums["train-images-idx3-ubyte"], mirrors=(f"{url}/none/", f"{url}/broken/"))
    message = str(err.value)
    assert "\n" not in message and name in message and str(dest) in message
    assert f"{url}/none/{name} (HTTP 404)" in message
    assert f"{url}/broken/{name} (checksum mismatch" in message
    assert list(dest.iterdir()) == []


def test_corrupt_gzip_is_rejected(tmp_path, server, sums):
    url, _ = server
    dest = tmp_path / "cache"
    dest.mkdir()
    name = "train-labels-idx1-ubyte.gz"  # broken/ serves a truncated gzip stream
    with pytest.raises(DataError, match=r"broken/train-labels-idx1-ubyte.gz \(corrupt gzip\)"):
        fetch_file(name, dest, sums["train-labels-idx1-ubyte"], mirrors=(f"{url}/broken/",))
    assert list(dest.iterdir()) == []


def test_unreachable_and_slow_mirrors_are_skipped(tmp_path, server, sums):
    url, _ = server
    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}/"
    name = "t10k-labels-idx1-ubyte"
    start = time.perf_counter()
    dest = tmp_path / "cache"
    dest.mkdir()
    with pytest.raises(DataError, match=r"unreachable.*slow/t10k-labels-idx1-ubyte.gz \(timed out"):
        fetch_file(f"{name}.gz", dest, sums[name], mirrors=(dead, f"{url}/slow/"), timeout=0.2)
    assert time.perf_counter() - start < 0.9  # gave up on the slow mirror before it answered
    assert list(dest.iterdir()) == []
    path = fetch_file(f"{name}.gz", dest, sums[name], mirrors=(dead, f"{url}/good/"), timeout=5)
    assert path == dest / f"{name}.gz" and path.is_file()


def test_existing_files_are_not_fetched_again(tmp_path, server, sums, fake_files):
    url, log = server
    dest = tmp_path / "cache"
    dest.mkdir()
    (dest / "train-images-idx3-ubyte").write_bytes(fake_files["train-images-idx3-ubyte"])  # raw form counts too
    download_mnist(dest, mirrors=(f"{url}/good/",), checksums=sums)
    assert sorted(log) == sorted(f"/good/{n}.gz" for n in NAMES if n != "train-images-idx3-ubyte")
