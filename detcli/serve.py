"""`det serve`: detection over HTTP (FastAPI + uvicorn) with dynamic batching."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from det.cli.common import ModelOption, err


def serve(
    source: Optional[str] = typer.Argument(None, metavar="CKPT|FILE.onnx", help="Checkpoint (.pt) or a file written by det export (.onnx, .xml, .torchscript)."),
    backend: Optional[str] = typer.Option(None, "--backend", help="torch, onnxruntime or openvino (default: from the file's suffix)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; 127.0.0.1 keeps the server local."),
    port: int = typer.Option(8000, "--port", help="TCP port."),
    workers: int = typer.Option(1, "--workers", help="Server processes, each with its own model and batcher."),
    max_batch: int = typer.Option(8, "--max-batch", help="Most images per forward pass."),
    max_wait_ms: float = typer.Option(10.0, "--max-wait-ms", help="How long the first waiting request waits for others to batch with."),
    max_image_mb: float = typer.Option(20.0, "--max-image-mb", help="Larger uploads answer 413."),
    score_thr: float = typer.Option(0.3, "--score-thr", help="Default score threshold (the score_thr query overrides it)."),
    device: str = typer.Option("auto", "--device", "-d", help="cpu, cuda, cuda:N or auto (torch backend)."),
    model: Optional[str] = ModelOption,
) -> None:
    """Serve a detector: POST /v1/detect (raw image bytes or multipart; query score_thr, classes)
    answers the `det infer --format jsonl` record; GET /healthz; GET /v1/model; docs at /docs.
    SIGTERM finishes in-flight requests, then exits 0.

    Example: det serve rtmdet.onnx --port 8000 & curl --data-binary @street.jpg localhost:8000/v1/detect

    Example: det serve --model rtmdet_tiny_8xb32-300e_coco
    """
    from det.core.deploy.serve import ServeConfig, run_server
    from det.core.deploy.source import source_or_model
    from det.core.errors import DetError
    from det.core.apis.backends import BACKENDS, EXPORTED_SUFFIXES

    path = source_or_model(source, model)
    backend = backend or EXPORTED_SUFFIXES.get(Path(path).suffix, "torch")
    if backend not in BACKENDS:
        raise DetError(f"--backend: unknown backend '{backend}' (one of: {', '.join(BACKENDS)})")
    for name, value in (("--workers", workers), ("--max-batch", max_batch)):
        if value < 1:
            raise DetError(f"{name}: must be >= 1, got {value}")
    if max_wait_ms < 0 or max_image_mb <= 0 or not 0 <= port <= 65535:
        raise DetError("--max-wait-ms, --max-image-mb, --port: must be >= 0, > 0 and a TCP port")
    if host not in ("127.0.0.1", "localhost", "::1"):
        err.print(f"warning: binding {host}: the server is reachable from other machines", markup=False)
    run_server(ServeConfig(weights=str(path), backend=backend, device=device, host=host, port=port, workers=workers,
                           max_batch=max_batch, max_wait_ms=max_wait_ms, max_image_mb=max_image_mb, score_thr=score_thr))


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
