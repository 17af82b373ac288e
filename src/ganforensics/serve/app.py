"""The FastAPI application: `/v1/detect`, `/v1/models`, `/healthz`, `/readyz`, `/metrics`, and
the page at `/` (plain HTML/CSS/JS from `serve/static/`, no CDN).

Models load once, in a thread started by the app's lifespan, so `/healthz` answers at once and
`/readyz` (and `/v1/detect`) answer 503 + Retry-After until they are loaded. Uploads are decoded
in a small thread pool; scoring runs on the `MicroBatcher`'s worker threads, never on the event
loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import secrets
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from importlib.resources import files
from typing import Any

import anyio
from fastapi import APIRouter, FastAPI, Query, Request, Security
from fastapi.responses import FileResponse, Response
from fastapi.security import APIKeyHeader
from fastapi.staticfiles import StaticFiles
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ganforensics import __version__
from ganforensics.errors import InputError
from ganforensics.serve.batching import MicroBatcher, QueueClosed, QueueFull
from ganforensics.serve.engine import Job, score_batch
from ganforensics.serve.models import ModelSpec, ServedDetector, load_served
from ganforensics.serve.problems import (
    INVALID_REQUEST,
    MEDIA_TYPE,
    Problem,
    install_handlers,
    problem_body,
)
from ganforensics.serve.schemas import DetectResponse, Health, ModelsResponse
from ganforensics.serve.settings import API_KEY_HEADER, DEFAULTS, ServeSettings
from ganforensics.serve.uploads import decode_upload

log = logging.getLogger("ganforensics.serve")

FILE_FIELDS = ("files[]", "files")
"""Multipart field names that carry images (`files[]` as documented; `files` also accepted)."""
DECODE_THREADS = 2
"""Uploads decoded at once (Pillow releases the GIL while decoding)."""
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
LOAD_JOIN_TIMEOUT_S = 120.0
"""How long a shutdown waits for the detectors still loading."""
ROUTES = ("/", "/healthz", "/readyz", "/metrics", "/v1/detect", "/v1/models")
STATIC = files("ganforensics.serve") / "static"

_PROBLEM = {"content": {MEDIA_TYPE: {"schema": {"type": "object"}}}}
_DETECT_BODY = {
    "requestBody": {
        "required": True,
        "content": {"multipart/form-data": {"schema": {
            "type": "object", "required": ["files[]"],
            "properties": {"files[]": {"type": "array",
                                       "items": {"type": "string", "format": "binary"}}},
        }}},
    },
}


class Metrics:
    """Prometheus metrics of one app (own registry, so several apps can live in a process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("ganforensics_http_requests", "HTTP requests answered",
                                ["route", "method", "status"], registry=r)
        self.request_seconds = Histogram("ganforensics_http_request_seconds",
                                         "Time to answer a request", ["route"],
                                         buckets=LATENCY_BUCKETS, registry=r)
        self.detector_seconds = Histogram("ganforensics_detector_batch_seconds",
                                          "Forward-pass time of one detector over one batch",
                                          ["detector"], buckets=LATENCY_BUCKETS, registry=r)
        self.batch_size = Histogram("ganforensics_batch_size", "Images per micro-batch",
                                    buckets=(1, 2, 4, 8, 16, 32, 64), registry=r)
        self.images = Counter("ganforensics_images", "Uploaded files by outcome",
                              ["outcome"], registry=r)
        self.queue_depth = Gauge("ganforensics_queue_depth", "Images waiting for inference",
                                 registry=r)


class Service:
    """What the routes share: settings, the loaded detectors, the batcher, the metrics."""

    def __init__(self, settings: ServeSettings, load: Callable[[], list[ServedDetector]],
                 on_load_error: Callable[[str], None] | None = None) -> None:
        self.settings = settings
        self._load = load
        self._on_load_error = on_load_error
        self.detectors: list[ServedDetector] = []
        self.batcher: MicroBatcher[Job] | None = None
        self.load_error: str | None = None
        self.ready = threading.Event()
        self.metrics = Metrics()
        self.decode_limiter: anyio.CapacityLimiter | None = None

    def load(self) -> None:
        """Load the detectors and start the workers (runs in a thread of the lifespan)."""
        try:
            t0 = time.perf_counter()
            detectors = self._load()
            if not detectors:
                raise ValueError("no detectors to serve")
            s = self.settings
            self.batcher = MicroBatcher(self._run_batch, max_batch=s.max_batch,
                                        max_wait_ms=s.max_wait_ms, queue_size=s.queue_size,
                                        workers=s.workers,
                                        on_batch=self.metrics.batch_size.observe)
            self.detectors = detectors
            self.metrics.queue_depth.set_function(lambda: self.batcher.depth if self.batcher
                                                  else 0)
            self.ready.set()
            log.info("ready: %d detector(s) loaded in %.1f s (%s)", len(detectors),
                     time.perf_counter() - t0, ", ".join(d.name for d in detectors))
        except Exception as exc:  # noqa: BLE001 - reported by /readyz, the process stays up
            self.load_error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            log.error("loading the detectors failed: %s", self.load_error)
            if self._on_load_error is not None:
                self._on_load_error(self.load_error)

    def _run_batch(self, jobs: list[Job]) -> list[dict[str, Any]]:
        return score_batch(self.detectors, jobs,
                           lambda name, sec: self.metrics.detector_seconds.labels(name)
                           .observe(sec))

    def require_ready(self) -> MicroBatcher[Job]:
        """The batcher, or a 503 problem while the models load (or after loading failed)."""
        if self.ready.is_set() and self.batcher is not None:
            return self.batcher
        if self.load_error:
            raise Problem(503, f"loading the detectors failed: {self.load_error}")
        raise Problem(503, "the detectors are still loading",
                      headers={"Retry-After": str(self.settings.retry_after_s)})

    def close(self) -> None:
        if self.batcher is not None:
            self.batcher.close()


class _BodyLimitMiddleware:
    """413 problem+json for a request body over `limit` bytes: at once when Content-Length
    says so, else as soon as the streamed bytes pass it (a `Problem` raised while reading)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = int(limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        detail = f"request body over the cap of {self.limit:,} bytes"
        length = dict(scope.get("headers", ())).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.limit:
            await Problem(413, detail).response()(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise Problem(413, detail)
            return message

        await self.app(scope, counted, send)


class _MetricsMiddleware:
    """Counts and times every HTTP request by route template, method and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = [500]
        t0 = time.perf_counter()

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            path = scope.get("path", "")
            route = path if path in ROUTES else ("/static" if path.startswith("/static/")
                                                 else "other")
            self.metrics.requests.labels(route, scope.get("method", ""), str(status[0])).inc()
            self.metrics.request_seconds.labels(route).observe(time.perf_counter() - t0)


async def _read_uploads(request: Request, s: ServeSettings) -> list[tuple[str, bytes | Problem]]:
    """(filename, bytes or the Problem of a file over the cap) per uploaded file."""
    ctype = request.headers.get("content-type", "")
    if not ctype.lower().startswith("multipart/form-data"):
        raise Problem(415, "send the images as multipart/form-data in the field files[] "
                           f"(got content-type {ctype or 'none'!r})", slug=INVALID_REQUEST)
    try:
        form = await request.form(max_files=s.max_files, max_fields=s.max_files + 16)
    except StarletteHTTPException as exc:
        if exc.status_code == 413:
            raise
        if "too many files" in str(exc.detail).lower():
            raise Problem(413, f"more than {s.max_files} files in one request") from None
        raise Problem(400, f"malformed multipart body ({exc.detail})",
                      slug=INVALID_REQUEST) from None
    try:
        ups = [v for k, v in form.multi_items() if k in FILE_FIELDS and isinstance(v, UploadFile)]
        out: list[tuple[str, bytes | Problem]] = []
        for up in ups:
            name = up.filename or "upload"
            if up.size is not None and up.size > s.max_file_bytes:
                out.append((name, Problem(413, f"{name}: {up.size:,} bytes exceeds the "
                                               f"per-file cap of {s.max_file_bytes:,} bytes")))
            else:
                out.append((name, await up.read(s.max_file_bytes + 1)))
        return out
    finally:
        await form.close()


def _error_entry(name: str, problem: Problem) -> dict[str, Any]:
    return {"id": uuid.uuid4().hex, "filename": name,
            "error": problem_body(problem.status, problem.detail, title=problem.title)}


def create_app(
    models: Sequence[ModelSpec] | Callable[[], list[ServedDetector]],
    settings: ServeSettings = DEFAULTS,
    on_load_error: Callable[[str], None] | None = None,
) -> FastAPI:
    """The service over `models` (specs to load, or a function returning loaded detectors).

    If loading fails, `/readyz` stays 503 with the reason and `on_load_error(reason)` is called
    (the command uses it to stop the server and exit 2)."""
    load = models if callable(models) else (lambda: load_served(list(models)))
    svc = Service(settings, load, on_load_error)
    s = settings

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        svc.decode_limiter = anyio.CapacityLimiter(DECODE_THREADS)
        loader = threading.Thread(target=svc.load, name="gf-load-models", daemon=True)
        loader.start()
        yield
        # a shutdown during loading waits for it: torch must not be torn down mid-load
        await anyio.to_thread.run_sync(loader.join, LOAD_JOIN_TIMEOUT_S)
        await anyio.to_thread.run_sync(svc.close)

    app = FastAPI(
        title="ganforensics",
        version=__version__,
        summary="Is this image GAN-made? Each detector's verdict, the spectrum, a heat-map.",
        lifespan=lifespan,
        responses={413: _PROBLEM, 503: _PROBLEM},
    )
    app.state.service = svc
    install_handlers(app)
    app.add_middleware(_BodyLimitMiddleware, limit=s.max_request_bytes)
    app.add_middleware(_MetricsMiddleware, metrics=svc.metrics)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")

    key_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False,
                              description="Required when the server runs with --api-key-env.")

    async def check_key(key: str | None = Security(key_header)) -> None:
        if s.api_key is None:
            return
        if key is None or not secrets.compare_digest(key.encode(), s.api_key.encode()):
            raise Problem(401, f"missing or wrong {API_KEY_HEADER} header",
                          headers={"WWW-Authenticate": f'ApiKey header="{API_KEY_HEADER}"'})

    v1 = APIRouter(prefix="/v1", dependencies=[Security(check_key)],
                   responses={401: _PROBLEM, 415: _PROBLEM, 422: _PROBLEM})

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(str(STATIC / "index.html"), media_type="text/html")

    @app.get("/healthz", response_model=Health, response_model_exclude_none=True,
             summary="Liveness: the process answers")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok"}

    @app.get("/readyz", response_model=Health, response_model_exclude_none=True,
             summary="Readiness: 200 once the detectors are loaded, else 503")
    async def readyz() -> dict[str, Any]:
        svc.require_ready()
        return {"status": "ready", "models": len(svc.detectors)}

    @app.get("/metrics", summary="Prometheus metrics (text format)",
             response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
    async def metrics() -> Response:
        return Response(generate_latest(svc.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @v1.get("/models", response_model=ModelsResponse,
            summary="The served detectors: names, kinds, thresholds, provenance; the limits")
    async def list_models() -> dict[str, Any]:
        svc.require_ready()
        return {
            "models": [{"name": d.name, "kind": d.kind, "threshold": d.threshold,
                        "explainable": d.explainable, "path": str(d.spec.path),
                        "provenance": d.provenance()} for d in svc.detectors],
            "limits": {k: getattr(s, k) for k in (
                "max_request_bytes", "max_file_bytes", "max_files", "max_pixels", "min_side",
                "queue_size", "max_batch", "max_wait_ms")},
            "auth": s.api_key is not None,
        }

    @v1.post("/detect", response_model=DetectResponse, response_model_exclude_none=True,
             openapi_extra=_DETECT_BODY,
             summary="Score one or many images (multipart field files[])")
    async def detect(
        request: Request,
        explain: bool = Query(False, description="Add the spectrum and Grad-CAM overlays."),
    ) -> dict[str, Any]:
        t0 = time.perf_counter()
        batcher = svc.require_ready()
        uploads = await _read_uploads(request, s)
        if not uploads:
            raise Problem(422, "no files: send one or more images as file parts (with a "
                               "filename) in the multipart field files[]",
                          title="Invalid request", slug=INVALID_REQUEST)
        entries: list[dict[str, Any]] = []
        jobs: list[Job] = []
        where: list[int] = []
        for name, data in uploads:
            try:
                if isinstance(data, Problem):
                    raise data
                dec = await anyio.to_thread.run_sync(decode_upload, data, name, s,
                                                     limiter=svc.decode_limiter)
            except Problem as p:
                entries.append(_error_entry(name, p))
                svc.metrics.images.labels(f"rejected_{p.status}").inc()
                continue
            h, w = dec.image.shape[:2]
            entries.append({"id": uuid.uuid4().hex, "filename": name, "sha256": dec.sha256,
                            "width": w, "height": h})
            jobs.append(Job(dec.image, explain))
            where.append(len(entries) - 1)
        if not jobs:
            errs = [e["error"] for e in entries]
            first = errs[0]
            detail = first["detail"] if len(errs) == 1 else (
                f"all {len(errs)} files were rejected; first: {first['detail']}")
            raise Problem(first["status"], detail, title=first["title"], errors=errs)
        try:
            futures = batcher.submit(jobs)
        except (QueueFull, QueueClosed) as exc:
            svc.metrics.images.labels("refused_busy").inc(len(jobs))
            raise Problem(503, f"busy: {exc}; retry later",
                          headers={"Retry-After": str(s.retry_after_s)}) from None
        results = await asyncio.gather(*(asyncio.wrap_future(f) for f in futures))
        for i, res in zip(where, results, strict=True):
            entries[i].update(res)
        svc.metrics.images.labels("scored").inc(len(jobs))
        return {"results": entries, "n_scored": len(jobs), "n_rejected": len(entries) - len(jobs),
                "elapsed_ms": round((time.perf_counter() - t0) * 1000.0, 3)}

    app.include_router(v1)
    return app


def run_server(models: Sequence[ModelSpec], settings: ServeSettings = DEFAULTS) -> None:
    """Serve `models` with uvicorn until interrupted (logs on stderr); `InputError` after a
    clean stop when the detectors could not be loaded."""
    import uvicorn  # the serve extra; imported when a server actually starts

    if not log.handlers:  # our lines (ready, load failures) beside uvicorn's, on stderr
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
    log_config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    for handler_cfg in log_config["handlers"].values():
        handler_cfg["stream"] = "ext://sys.stderr"  # access lines too: stdout has only the URL
    failed: list[str] = []
    server: uvicorn.Server | None = None

    def stop(reason: str) -> None:
        failed.append(reason)
        if server is not None:
            server.should_exit = True

    app = create_app(models, settings, on_load_error=stop)
    server = uvicorn.Server(uvicorn.Config(app, host=settings.host, port=settings.port,
                                           log_level="info", log_config=log_config,
                                           timeout_graceful_shutdown=5))
    started = True
    try:
        with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises the Ctrl-C it got
            server.run()
    except SystemExit:  # uvicorn exits when it cannot bind (port in use, bad address)
        started = False
    if failed:
        raise InputError(f"could not load the detectors: {failed[0]}")
    if not (started and server.started):
        raise InputError(f"could not serve on {settings.host}:{settings.port} (the log above "
                         "says why; is the port in use?)")
