"""A loopback HTTP server for the model-zoo tests (standard library, 127.0.0.1, ephemeral port):
serves in-memory files with Range support, can cut a transfer halfway, answers 404 otherwise,
and records every request. Also builds random-weight checkpoints in MMDetection's key layout
and an index file pointing at the server."""
from __future__ import annotations

import hashlib
import io
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml


class ZooServer:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.cut: set[str] = set()  # paths whose next transfer stops halfway
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                server.requests.append((self.path, self.headers.get("Range")))
                data = server.files.get(self.path)
                if data is None:
                    self.send_error(404, "Not Found")
                    return
                start = int(self.headers["Range"].split("=")[1].split("-")[0]) if self.headers.get("Range") else 0
                body = data[start:]
                self.send_response(206 if start else 200)
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.path in server.cut:
                    server.cut.discard(self.path)
                    body = body[: len(body) // 2]
                    self.close_connection = True
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def add(self, stem: str, data: bytes, suffix: str = ".pth") -> tuple[str, str]:
        """Serve `data` as STEM-<sha256[:8]>.pth -> (url, hash prefix)."""
        digest = hashlib.sha256(data).hexdigest()[:8]
        name = f"{stem}-{digest}{suffix}"
        self.files[f"/{name}"] = data
        return self.url(name), digest

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def zoo_server():
    server = ZooServer()
    yield server
    server.close()


def mmdet_checkpoint(preset: str, seed: int = 0, classes: int = 80, names: tuple[str, ...] | None = None) -> bytes:
    """Random weights of det's model for `preset` saved as MMDetection saves a checkpoint
    (same module names; `meta.dataset_meta.classes`, an EMA copy that the conversion drops)."""
    from det.core.config import load_preset
    from det.core.models import build_detector

    torch.manual_seed(seed)
    model = build_detector(load_preset(preset)["model"])
    state = {k: v for k, v in model.state_dict().items()}
    state["ema_backbone.stem.0.conv.weight"] = torch.zeros(1)
    names = names or tuple(f"class{i}" for i in range(classes))
    ckpt = {"meta": {"dataset_meta": {"classes": names}}, "state_dict": state}
    buffer = io.BytesIO()
    torch.save(ckpt, buffer)
    return buffer.getvalue()


def write_index(path: Path, entries: list[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump({"source": "test", "models": entries}, sort_keys=False))
    return path


def entry(name: str, preset: str, url: str, digest: str, family: str = "RTMDet", **extra: Any) -> dict[str, Any]:
    return {"name": name, "family": family, "preset": preset, "weights": url, "hash": digest, "tasks": ["detect"],
            "box_ap": 40.9, "mask_ap": None, "params_m": 4.87, **extra}
