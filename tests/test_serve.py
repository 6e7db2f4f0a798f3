"""`gankit serve`: the routes and their limits over real HTTP (a uvicorn server on a free local port), and the page
as a person uses it in headless Chromium (tests/browser.py): moving the seed changes the image, a class and psi
apply, a bad upload shows its message; the server survives 200 requests in a loop and refuses 10^6 images."""

from __future__ import annotations

import io
import json
import socket
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

import gankit

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")

from gankit.web.app import Limits, create_app  # noqa: E402

from browser import chromium  # noqa: E402

STYLEGAN = ["train.progress=false", "train.eval_every=0", "model.name=stylegan", "recipe.name=stylegan",
            "data.size=16", "model.latent_dim=16", "model.w_dim=16", "model.mapping_layers=2", "model.width=16",
            "model.min_width=8", "train.batch_size=8", "recipe.start_size=8", "recipe.phase_steps=2",
            "recipe.penalty_every=2", "train.steps=4"]
CGAN = ["model.g_hidden=[32]", "model.d_hidden=[32]", "model.latent_dim=8", "model.conditioning=concat",
        "train.batch_size=16", "train.progress=false", "train.eval_every=0", "train.steps=20"]


class Server:
    """A run served by uvicorn on a free port of 127.0.0.1, in a thread, for the length of a test."""

    def __init__(self, run, limits: Limits = Limits()) -> None:
        app = create_app(gankit.load(run, device="cpu"), run.name, limits)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "Server":
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str, data: bytes | None = None, headers: dict | None = None) -> tuple[int, bytes, str]:
        request = urllib.request.Request(self.url + path, data=data, headers=headers or {},
                                         method="POST" if data is not None else "GET")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, response.read(), response.headers.get("content-type", "")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(), exc.headers.get("content-type", "")


def _error(status_body) -> str:
    return json.loads(status_body[1])["error"]


@pytest.fixture(scope="module")
def served_runs(tmp_path_factory, looked_at_runs):
    root = tmp_path_factory.mktemp("served")
    return {"cgan": gankit.train(None, overrides=CGAN, out=root / "cgan"),
            "stylegan": gankit.train(None, overrides=STYLEGAN, out=root / "stylegan"),
            "pix2pix": looked_at_runs["translation"]}


def _png(size=(16, 16), noise: bool = True) -> bytes:
    pixels = np.random.default_rng(0).integers(0, 255, size[::-1], np.uint8) if noise else np.zeros(size[::-1],
                                                                                                   np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_routes_answer_pngs_that_follow_the_seed_the_class_and_psi(served_runs):
    with Server(served_runs["cgan"]) as server:
        info = json.loads(server.get("/api/info")[1])
        assert (info["kind"], info["classes"], info["shape"]) == ("generator", 10, [1, 8, 8])
        status, first, kind = server.get("/api/sample?seed=3&n=4&label=7")
        assert status == 200 and kind == "image/png" and Image.open(io.BytesIO(first)).size[0] >= 2 * 64
        assert server.get("/api/sample?seed=3&n=4&label=7")[1] == first  # a seed is a seed
        assert server.get("/api/sample?seed=4&n=4&label=7")[1] != first
        assert server.get("/api/sample?seed=3&n=4&label=2")[1] != first
        loaded = gankit.load(served_runs["cgan"], device="cpu")  # the page shows what the API draws
        import torch
        expected = loaded.sample(4, seed=3, labels=torch.full((4,), 7))
        from gankit.images import grid_image
        buffer = io.BytesIO()
        grid_image(expected, nrow=2, min_cell=64).save(buffer, format="PNG")
        assert np.array_equal(np.asarray(Image.open(buffer)), np.asarray(Image.open(io.BytesIO(first))))
        assert server.get("/api/walk?seed_a=1&seed_b=2&steps=5")[0] == 200
        assert "not a class" in _error(server.get("/api/sample?label=10"))
        assert "StyleGAN" in _error(server.get("/api/mix"))
    with Server(served_runs["stylegan"]) as server:
        assert json.loads(server.get("/api/info")[1])["kind"] == "stylegan"
        assert server.get("/api/sample?seed=1&n=4&psi=0")[1] != server.get("/api/sample?seed=1&n=4&psi=1")[1]
        status, mixed, _ = server.get("/api/mix?seed_a=0&seed_b=1")
        assert status == 200 and Image.open(io.BytesIO(mixed)).size[0] >= 5 * 64  # A, B and 3 mixes
        assert "use psi" in _error(server.get("/api/sample?truncation=0.5"))


def test_what_a_request_may_ask_is_bounded(served_runs):
    with Server(served_runs["pix2pix"], Limits(max_upload_bytes=20_000, max_upload_pixels=512 * 512)) as server:
        status, body, _ = server.get("/api/translate?samples=2", data=_png(), headers={"Content-Type": "image/png"})
        assert status == 200 and Image.open(io.BytesIO(body)).size[0] >= 3 * 64  # input, then 2 outputs
        for path, data, status, words in [
            ("/api/translate", b"hello, not an image", 400, "not an image"),
            ("/api/translate", b"", 400, "empty"),
            ("/api/translate", _png((600, 600), noise=False), 413, "pixels"),  # from its header, before decoding
            ("/api/translate", b"\x89PNG" + bytes(30_000), 413, "larger than"),
            ("/api/translate?direction=BA", _png(), 400, "direction must be one of AB"),
            ("/api/translate?direction=../../etc", _png(), 400, "direction"),
            ("/api/translate?samples=1000000", _png(), 400, "outside what this server allows"),
            ("/api/sample", None, 400, "draws no samples"),
        ]:
            got = server.get(path, data=data)
            assert got[0] == status and words in _error(got), (path, got)
    with Server(served_runs["cgan"]) as server:
        got = server.get("/api/sample?n=1000000")
        assert got[0] == 400 and "n=1000000 is outside what this server allows: 1..64" == _error(got)
        assert server.get("/api/sample?seed=-1")[0] == 400 and server.get("/api/sample?seed=x")[0] == 400
        assert server.get("/api/sample?psi=0.5")[0] == 400 and server.get("/api/sample?truncation=0")[0] == 400
        for path in ("/../config.yaml", "/%2e%2e/config.yaml", "/api/..%2f..%2fconfig.yaml", "/config.yaml",
                     "/checkpoints/latest.json", "//etc/passwd", "/docs", "/openapi.json"):
            got = server.get(path)
            assert got[0] == 404 and b"step" not in got[1] and b"root:" not in got[1], path
    # 200 requests in a loop: answered or refused for rate, never dropped, and the server still serves after (a
    # rate of 5 a second, so that even a slow machine's loop outruns it)
    with Server(served_runs["cgan"], Limits(rate=5.0, burst=40)) as server:
        started, answers = time.monotonic(), []
        for i in range(200):
            answers.append(server.get(f"/api/sample?seed={i}&n=1"))
        assert time.monotonic() - started < 60
        statuses = [a[0] for a in answers]
        assert set(statuses) <= {200, 429} and statuses[:40] == [200] * 40 and statuses.count(429) >= 1
        refused = next(a for a in answers if a[0] == 429)
        assert _error(refused) == "too many requests: at most 5 a second on average"
        time.sleep(0.5)
        assert server.get("/api/sample?seed=1&n=1")[0] == 200


def test_the_page_in_a_browser_follows_the_seed_and_shows_a_bad_upload(served_runs, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    with chromium(tmp_path) as browser:
        def wait(condition, what):
            WebDriverWait(browser, 30).until(lambda d: condition(), message=what)

        with Server(served_runs["cgan"]) as server:
            browser.get(server.url)
            image = browser.find_element(By.ID, "sample-image")
            wait(lambda: image.get_attribute("data-state") == "shown", "the first grid")
            first = image.get_attribute("data-digest")
            assert browser.execute_script("return arguments[0].naturalWidth", image) > 0
            seed = browser.find_element(By.ID, "seed-slider")
            browser.execute_script("arguments[0].value = 42; arguments[0].dispatchEvent(new Event('input'))", seed)
            wait(lambda: image.get_attribute("data-digest") not in (None, first) and
                 image.get_attribute("data-state") == "shown", "a new grid for seed 42")
            assert browser.find_element(By.ID, "seed").get_attribute("value") == "42"
            second = image.get_attribute("data-digest")
            Select(browser.find_element(By.ID, "label")).select_by_visible_text("3")
            wait(lambda: image.get_attribute("data-digest") not in (first, second), "a grid of class 3")
            link = browser.find_element(By.ID, "sample-download")
            assert link.get_attribute("download") == "samples_seed42.png" and link.get_attribute("href").startswith(
                "blob:")
            walk = browser.find_element(By.ID, "walk-image")
            wait(lambda: walk.get_attribute("data-state") == "shown", "the walk between two seeds")
            browser.save_screenshot(str(tmp_path / "serve.png"))
            pixels = np.asarray(Image.open(tmp_path / "serve.png").convert("L"), dtype=np.float32)
            assert pixels.std() > 20
            assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []

        with Server(served_runs["pix2pix"]) as server:
            browser.get(server.url)
            upload = browser.find_element(By.ID, "upload")
            wait(lambda: browser.find_element(By.ID, "translate-section").is_displayed(), "the upload box")
            text = tmp_path / "notes.txt"
            text.write_text("not an image")
            upload.send_keys(str(text))
            error = browser.find_element(By.ID, "error")
            wait(lambda: error.is_displayed() and "not an image" in error.text, "the bad upload's message")
            picture = tmp_path / "digit.png"
            picture.write_bytes(_png())
            upload.send_keys(str(picture))
            out = browser.find_element(By.ID, "translate-image")
            wait(lambda: out.get_attribute("data-state") == "shown", "the translation")
            assert not error.is_displayed()
