"""`det serve`: a FastAPI app around a Detector (any backend) with dynamic batching.

POST /v1/detect takes raw image bytes or a multipart upload and answers the `det infer
--format jsonl` record of the image; GET /healthz; GET /v1/model; OpenAPI docs at /docs.
Bad input answers a JSON error: not an image 415, too large 413, unreadable 400.
"""

import asyncio
import json
import os
import signal
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np

from det.core.deploy.batcher import Batcher
from det.core.deploy.extras import require
from det.core.errors import DetError, did_you_mean

CONFIG_ENV = "DET_SERVE_CONFIG"
# leading bytes of the formats OpenCV decodes
MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"BM", b"GIF8", b"II*\x00", b"MM\x00*", b"RIFF", b"P1", b"P2", b"P3", b"P4",
         b"P5", b"P6", b"\x00\x00\x00\x0cjP")


@dataclass
class ServeConfig:
    weights: str
    backend: str = "torch"
    device: str = "auto"
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    max_batch: int = 8
    max_wait_ms: float = 10.0
    max_image_mb: float = 20.0
    score_thr: float = 0.3


class RequestError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def decode_image(data: bytes, content_type: str | None, max_bytes: int) -> np.ndarray:
    """Bytes -> BGR image, or a RequestError with the HTTP status the issue names."""
    if len(data) > max_bytes:
        raise RequestError(413, f"image: {len(data)} bytes, larger than --max-image-mb ({max_bytes} bytes)")
    if not data:
        raise RequestError(400, "image: empty request body")
    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype and not (ctype.startswith("image/") or ctype in ("application/octet-stream", "multipart/form-data")):
        raise RequestError(415, f"content-type: '{ctype}' is not an image (send image/* bytes or multipart)")
    if not data.startswith(MAGIC) and not (data[:4] == b"RIFF" or data[:2] == b"\xff\x4f"):
        raise RequestError(415, "image: not an image format OpenCV decodes (JPEG, PNG, BMP, TIFF, WebP, ...)")
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise RequestError(400, "image: unreadable (corrupt or truncated image data)")
    return img


def filter_prediction(pred: Any, score_thr: float, labels: np.ndarray | None) -> Any:
    """What `Detector._filter` does, with this request's threshold and classes."""
    pred = pred.filter(score_thr, labels)
    return pred[np.argsort(-pred.scores, kind="stable")]


class Service:
    """The loaded detector, its batcher and the request logic (independent of HTTP)."""

    def __init__(self, cfg: ServeConfig) -> None:
        from det.core.apis.backends import load_detector

        self.cfg = cfg
        self.detector = load_detector(cfg.weights, backend=cfg.backend, device=cfg.device, score_thr=0.0,
                                      batch_size=cfg.max_batch)
        self.batcher = Batcher(self.detector.predict_prepared, cfg.max_batch, cfg.max_wait_ms)

    def labels_for(self, classes: str | None) -> np.ndarray | None:
        if not classes:
            return None
        names = [c.strip() for c in classes.split(",") if c.strip()]
        unknown = [n for n in names if n not in self.detector.class_names]
        if unknown:
            raise RequestError(400, f"classes: unknown class '{unknown[0]}'{did_you_mean(unknown[0], self.detector.class_names)}")
        return np.array(sorted(self.detector.class_names.index(n) for n in names), np.int64)

    def prepare(self, data: bytes, content_type: str | None, name: str) -> dict:
        img = decode_image(data, content_type, int(self.cfg.max_image_mb * 1024 * 1024))
        try:
            return self.detector.preprocess(img, name)
        except DetError as exc:
            raise RequestError(400, str(exc)) from None

    def model_info(self) -> dict:
        meta = getattr(self.detector, "meta", None) or {}
        return {"classes": self.detector.class_names, "preset": self.detector.preset, "backend": self.cfg.backend,
                "weights": os.path.basename(self.cfg.weights), "family": meta.get("family", type(self.detector.model).__name__),
                "max_batch": self.cfg.max_batch, "max_wait_ms": self.cfg.max_wait_ms,
                "batches_run": len(self.batcher.batches)}


def create_app(cfg: ServeConfig) -> Any:
    """The FastAPI application; the model loads at startup and the batcher drains at shutdown."""
    fastapi = require("fastapi", "det serve")
    from fastapi.responses import JSONResponse

    state: dict[str, Service] = {}

    @asynccontextmanager
    async def lifespan(app):
        state["svc"] = Service(cfg)
        yield
        state["svc"].batcher.close()

    app = fastapi.FastAPI(title="det serve", lifespan=lifespan,
                          description="Object detection over HTTP: POST an image to /v1/detect.")

    @app.exception_handler(RequestError)
    async def _request_error(request, exc: RequestError):
        return JSONResponse({"error": str(exc), "status": exc.status}, status_code=exc.status)

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/v1/model")
    async def model() -> dict:
        return state["svc"].model_info()

    @app.post("/v1/detect")
    async def detect(request: fastapi.Request, score_thr: float | None = None, classes: str | None = None) -> dict:
        svc = state["svc"]
        data, ctype, name = await _read_image(request, svc.cfg.max_image_mb)
        labels = svc.labels_for(classes)
        prepared = await asyncio.get_running_loop().run_in_executor(None, svc.prepare, data, ctype, name)
        pred = await asyncio.wrap_future(svc.batcher.submit(prepared))
        thr = svc.cfg.score_thr if score_thr is None else float(score_thr)
        return filter_prediction(pred, thr, labels).to_dict()

    return app


async def _read_image(request: Any, max_mb: float) -> tuple[bytes, str | None, str]:
    """The image bytes of a raw or multipart body, refusing oversized bodies before reading them."""
    limit = int(max_mb * 1024 * 1024)
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit + 65536:
        raise RequestError(413, f"request: {length} bytes, larger than --max-image-mb ({limit} bytes)")
    ctype = request.headers.get("content-type")
    if ctype and ctype.lower().startswith("multipart/form-data"):
        form = await request.form()
        files = [v for v in form.values() if hasattr(v, "read")]
        if not files:
            raise RequestError(400, "multipart: no file field in the form")
        upload = files[0]
        return await upload.read(), upload.content_type, upload.filename or ""
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise RequestError(413, f"image: larger than --max-image-mb ({limit} bytes)")
    return bytes(body), ctype, ""


def app_from_env() -> Any:
    """uvicorn factory for --workers > 1: each worker process reads the config from the environment."""
    return create_app(ServeConfig(**json.loads(os.environ[CONFIG_ENV])))


def run_server(cfg: ServeConfig) -> None:
    """Serve until SIGINT/SIGTERM; uvicorn finishes in-flight requests before returning."""
    uvicorn = require("uvicorn", "det serve")
    # uvicorn re-raises the captured SIGTERM after its graceful shutdown; with a Python-level
    # handler in place that re-raise returns instead of killing the process, so it exits 0.
    signal.signal(signal.SIGTERM, lambda *_: None)
    common = {"host": cfg.host, "port": cfg.port, "log_level": "info", "timeout_graceful_shutdown": 30}
    if cfg.workers > 1:
        os.environ[CONFIG_ENV] = json.dumps(asdict(cfg))
        uvicorn.run("det.core.deploy.serve:app_from_env", factory=True, workers=cfg.workers, **common)
    else:
        uvicorn.run(create_app(cfg), **common)
