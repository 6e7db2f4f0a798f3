"""``gankit serve``: a local web page to play with a trained model, on FastAPI and uvicorn (the ``serve`` extra).

The page (``page.html``, one file, no network) asks the server what the model can do (``/api/info``) and shows the
matching controls: a seed and a batch for every generator, the truncation (psi in W for StyleGAN, a threshold on z
for the others), the class of a conditional model, a walk between two seeds, style mixing for StyleGAN, and an
upload box for translation models. Every answer is a PNG the page offers for download.

What a request may ask is bounded (:class:`Limits`): images per request, interpolation steps, upload bytes and
pixels, requests per second per client. A bad request gets HTTP 400 (413 for an upload too large, 429 for too many
requests) with ``{"error": "one line"}``. The server reads no file after start-up: the model is loaded once, and no
route maps a URL to a path, so ``/../config.yaml`` and its encodings are a 404.
"""

from __future__ import annotations

import io
import math
import threading
import time
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import torch

from ..errors import GankitError
from ..images import grid_image, scatter_image, to_channels

try:  # the serve extra; at module level, since FastAPI reads the routes' annotations (Request) from here
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from starlette.exceptions import HTTPException
except ImportError:  # pragma: no cover - serve() says how to install it
    FastAPI = None

MAX_SEED = 2 ** 31 - 1
UPLOAD_TYPES = {"PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF"}


@dataclass(frozen=True)
class Limits:
    """What one request may ask, and how often a client may ask."""

    max_images: int = 64  # images per request (batch, interpolation steps, translation samples x inputs)
    max_upload_bytes: int = 4 * 2 ** 20  # an uploaded image file
    max_upload_pixels: int = 4096 * 4096  # its width x height, checked from its header before it is decoded
    rate: float = 20.0  # requests per second per client, on average
    burst: int = 40  # requests a client may make at once


class RequestError(Exception):
    """A bad request: its HTTP status and one line for the page."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class RateLimiter:
    """A token bucket per client: ``rate`` tokens a second, at most ``burst`` saved."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, time)
        self.lock = threading.Lock()

    def allow(self, client: str) -> bool:
        now = time.monotonic()
        with self.lock:
            tokens, since = self.buckets.get(client, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - since) * self.rate)
            allowed = tokens >= 1.0
            self.buckets[client] = (tokens - 1.0 if allowed else tokens, now)
            if len(self.buckets) > 10_000:  # forget idle clients rather than grow without bound
                self.buckets = {k: v for k, v in self.buckets.items() if now - v[1] < 60}
            return allowed


class Model:
    """A loaded run and what the page may ask of it; one request computes at a time (the lock)."""

    def __init__(self, run, name: str, limits: Limits) -> None:
        self.run, self.name, self.limits = run, name, limits
        self.lock = threading.Lock()
        modules = run.modules
        if "generator" not in modules:
            raise GankitError(f"gankit serve shows images; this run's model ({run.config.model.name}) draws none"
                              + (": a regressor predicts (gankit predict RUN features.csv)"
                                 if "regressor" in modules else ""))
        self.translates = bool(run.data_info.get("channels_a"))
        G = run.generator
        self.stylegan = hasattr(G, "truncate")
        self.classes = int(getattr(G, "num_classes", 0) or 0)
        self.latent_dim = int(getattr(G, "latent_dim", 0) or 0)
        self.shape = tuple(run.data_info["sample_shape"])
        self.points = len(self.shape) == 1  # a 2-D mixture: a scatter plot instead of a grid
        self.directions = (["AB", "BA"] if "generator_ba" in modules else ["AB"]) if self.translates else []

    def info(self) -> dict:
        kind = "translator" if self.translates else "stylegan" if self.stylegan else "generator"
        shape = list(self.shape)
        if self.translates:
            c_in, c_out = self.run.domain_channels("AB")
            shape = [c_in, *self.shape[1:]]
        return {"run": self.name, "model": self.run.config.model.name, "kind": kind, "step": self.run.step,
                "classes": self.classes, "class_names": self._class_names(), "latent_dim": self.latent_dim,
                "shape": shape, "points": self.points, "directions": self.directions,
                "walk": not self.translates and self.latent_dim > 0, "limits": asdict(self.limits)}

    def _class_names(self) -> list[str]:
        names = list(self.run.data_info.get("classes") or [])
        return [str(n) for n in names] if len(names) == self.classes else [str(i) for i in range(self.classes)]

    # -- what the page asks -------------------------------------------------------------------------------------

    def sample(self, seed: int, n: int, label: int | None, psi: float | None, truncation: float | None) -> bytes:
        self._generator_only("samples")
        self._count(n, "n")
        labels = self._labels(label, n)
        if psi is not None and not self.stylegan:
            raise RequestError("psi truncates a StyleGAN's styles; this model has none: use truncation")
        if truncation is not None and self.stylegan:
            raise RequestError("this StyleGAN truncates in W: use psi")
        with self.lock, torch.no_grad():
            images = self.run.sample(n, seed=seed, labels=labels, psi=psi, truncation=truncation, progress=False)
        return self._png(images, nrow=math.ceil(math.sqrt(n)))

    def walk(self, seed_a: int, seed_b: int, steps: int, label: int | None) -> bytes:
        from ..latent import walk_between

        self._generator_only("a walk between seeds")
        self._count(steps, "steps", low=2)
        self._labels(label, 1)
        G = self.run.generator
        with self.lock, torch.no_grad():
            z_a = G.sample_latent(1, generator=self.run.rng(seed_a))[0]
            z_b = G.sample_latent(1, generator=self.run.rng(seed_b))[0]
            images = walk_between(G, z_a, z_b, steps, label=label)
        return self._png(images, nrow=steps)

    def mix(self, seed_a: int, seed_b: int, psi: float | None) -> bytes:
        from ..latent.style import mix_pair

        if not self.stylegan:
            raise RequestError("style mixing needs a StyleGAN run")
        G = self.run.generator
        with self.lock, torch.no_grad():
            rng_a, rng_b = self.run.rng(seed_a), self.run.rng(seed_b)  # a code, then its label (conditional G)
            z_a, z_b = G.sample_latent(1, generator=rng_a), G.sample_latent(1, generator=rng_b)
            labels = (G.sample_labels(1, generator=rng_a), G.sample_labels(1, generator=rng_b))
            images, _ = mix_pair(G, z_a, z_b, psi, labels=labels)
        return self._png(images, nrow=len(images))

    def translate(self, data: bytes, direction: str, samples: int, seed: int) -> bytes:
        if not self.translates:
            raise RequestError("this model does not translate images: it draws them from a seed")
        if direction not in self.directions:
            raise RequestError(f"direction must be one of {', '.join(self.directions)}")
        self._count(samples, "samples")
        c_in, _ = self.run.domain_channels(direction)
        x = self._decode(data, c_in)
        with self.lock, torch.no_grad():
            out = self.run.translate(x, direction=direction, samples=samples, seed=seed)
        out = out.reshape(-1, *out.shape[-3:])
        channels = max(x.shape[1], out.shape[1])
        return self._png(torch.cat([to_channels(x, channels), to_channels(out, channels)]), nrow=1 + samples)

    # -- helpers --------------------------------------------------------------------------------------------------

    def _generator_only(self, what: str) -> None:
        if self.translates:
            raise RequestError(f"a translation model draws no {what}: upload an image to translate")

    def _count(self, value: int, name: str, low: int = 1) -> None:
        if not low <= value <= self.limits.max_images:
            raise RequestError(f"{name}={value} is outside what this server allows: {low}..{self.limits.max_images}")

    def _labels(self, label: int | None, n: int) -> torch.Tensor | None:
        if label is None:
            return None
        if not self.classes:
            raise RequestError("label: this model is not class-conditional")
        if not 0 <= label < self.classes:
            raise RequestError(f"label={label} is not a class of this model: 0..{self.classes - 1}")
        return torch.full((n,), label, dtype=torch.long, device=self.run.device)

    def _decode(self, data: bytes, channels: int) -> torch.Tensor:
        """An uploaded image as (1, channels, H, W) in [-1, 1] at the model's size; its header is checked (type,
        pixels) before anything is decoded."""
        from PIL import Image, UnidentifiedImageError

        if not data:
            raise RequestError("the upload is empty: choose an image file")
        try:
            image = Image.open(io.BytesIO(data))
        except (UnidentifiedImageError, OSError, ValueError):
            raise RequestError("the upload is not an image (PNG, JPEG, BMP, GIF, WebP or TIFF)") from None
        if image.format not in UPLOAD_TYPES:
            raise RequestError(f"{image.format} images are not accepted: PNG, JPEG, BMP, GIF, WebP or TIFF")
        width, height = image.size
        if width * height > self.limits.max_upload_pixels or not width or not height:
            raise RequestError(f"the image is {width} x {height} pixels: at most "
                               f"{self.limits.max_upload_pixels:,} pixels are accepted", status=413)
        try:
            image = image.convert("L" if channels == 1 else "RGB")
        except (OSError, ValueError, Image.DecompressionBombError):
            raise RequestError("the image could not be decoded (a truncated or corrupt file)") from None
        h, w = self.shape[1:]
        image = image.resize((w, h), Image.BILINEAR)
        x = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8).float()
        x = x.reshape(h, w, channels).permute(2, 0, 1)[None] / 127.5 - 1
        return x.to(self.run.device)

    def _png(self, images: torch.Tensor, nrow: int) -> bytes:
        picture = scatter_image(None, images) if self.points else grid_image(images, nrow=nrow, min_cell=64)
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
        return buffer.getvalue()


def create_app(run, name: str, limits: Limits = Limits()):
    """The FastAPI application serving ``run`` (a :class:`gankit.api.LoadedRun`) under the page's ``name``."""
    if FastAPI is None:
        raise GankitError("gankit serve needs FastAPI and uvicorn, an optional extra: pip install 'gankit[serve]'")
    model = Model(run, name, limits)
    page = resources.files("gankit.web").joinpath("page.html").read_text(encoding="utf-8")
    limiter = RateLimiter(limits.rate, limits.burst)
    app = FastAPI(title="gankit serve", docs_url=None, redoc_url=None, openapi_url=None)
    png = {"Cache-Control": "no-store"}

    def error(message: str, status: int = 400) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    @app.middleware("http")
    async def bounded(request: Request, call_next):
        client = request.client.host if request.client else "?"
        if request.url.path.startswith("/api/") and not limiter.allow(client):
            return error(f"too many requests: at most {limits.rate:g} a second on average", 429)
        try:
            return await call_next(request)
        except RequestError as exc:
            return error(str(exc), exc.status)

    @app.exception_handler(RequestError)
    async def bad_request(request: Request, exc: RequestError):
        return error(str(exc), exc.status)

    @app.exception_handler(GankitError)
    async def refused(request: Request, exc: GankitError):  # what the model itself refuses, in its own words
        return error(str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ())[1:]) or "request"
        return error(f"{where}: {first.get('msg', 'invalid value')}")

    @app.exception_handler(HTTPException)
    async def not_found(request: Request, exc: HTTPException):
        return error("not found" if exc.status_code == 404 else str(exc.detail), exc.status_code)

    @app.get("/", response_class=HTMLResponse)
    def index() -> HTMLResponse:
        return HTMLResponse(page, headers={"Content-Security-Policy": "default-src 'self'; img-src 'self' blob: "
                                                                      "data:; style-src 'unsafe-inline'; "
                                                                      "script-src 'unsafe-inline'"})

    @app.get("/api/info")
    def info() -> dict:
        return model.info()

    @app.get("/api/sample")
    def sample(seed: int = 0, n: int = 16, label: int | None = None, psi: float | None = None,
               truncation: float | None = None) -> Response:
        _seed(seed)
        if psi is not None and not 0.0 <= psi <= 2.0:
            raise RequestError(f"psi={psi:g}: expected 0..2 (1 = no truncation)")
        if truncation is not None and not 0.0 < truncation <= 10.0:
            raise RequestError(f"truncation={truncation:g}: expected a threshold in (0, 10]")
        return Response(model.sample(seed, n, label, psi, truncation), media_type="image/png", headers=png)

    @app.get("/api/walk")
    def walk(seed_a: int = 0, seed_b: int = 1, steps: int = 8, label: int | None = None) -> Response:
        _seed(seed_a)
        _seed(seed_b)
        return Response(model.walk(seed_a, seed_b, steps, label), media_type="image/png", headers=png)

    @app.get("/api/mix")
    def mix(seed_a: int = 0, seed_b: int = 1, psi: float | None = None) -> Response:
        _seed(seed_a)
        _seed(seed_b)
        if psi is not None and not 0.0 <= psi <= 2.0:
            raise RequestError(f"psi={psi:g}: expected 0..2 (1 = no truncation)")
        return Response(model.mix(seed_a, seed_b, psi), media_type="image/png", headers=png)

    @app.post("/api/translate")
    async def translate(request: Request, direction: str = "AB", samples: int = 1, seed: int = 0) -> Response:
        _seed(seed)
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limits.max_upload_bytes):
            raise RequestError(f"the upload is larger than {_mib(limits.max_upload_bytes)}", 413)
        body = bytearray()
        async for chunk in request.stream():  # counted as it arrives: a missing or false length is no way round
            body += chunk
            if len(body) > limits.max_upload_bytes:
                raise RequestError(f"the upload is larger than {_mib(limits.max_upload_bytes)}", 413)
        out = await _in_thread(model.translate, bytes(body), direction, samples, seed)
        return Response(out, media_type="image/png", headers=png)

    return app


async def _in_thread(fn, *args):
    from starlette.concurrency import run_in_threadpool
    return await run_in_threadpool(fn, *args)


def _seed(seed: int) -> None:
    if not 0 <= seed <= MAX_SEED:
        raise RequestError(f"seed={seed}: expected 0..{MAX_SEED}")


def _mib(n: int) -> str:
    return f"{n / 2 ** 20:.3g} MiB" if n >= 2 ** 20 else f"{n / 2 ** 10:.3g} KiB"


def serve(run, name: str, host: str = "127.0.0.1", port: int = 8000, limits: Limits = Limits(),
          announce=print) -> None:
    """Serve the page of ``run`` (a loaded run, shown under ``name``) until Ctrl-C."""
    try:
        import uvicorn
    except ImportError:
        uvicorn = None
    if FastAPI is None or uvicorn is None:
        raise GankitError("gankit serve needs FastAPI and uvicorn, an optional extra: pip install 'gankit[serve]'")
    app = create_app(run, name, limits)
    shown = f"[{host}]" if ":" in host else host
    announce(f"serving {name} at http://{shown}:{port} (Ctrl-C stops)")
    if host not in ("127.0.0.1", "localhost", "::1"):
        announce(f"note: --host {host} lets other machines reach this page; it has no password")
    uvicorn.run(app, host=host, port=port, log_level="warning")
