"""`det serve` on an ephemeral loopback port: 16 concurrent clients x 30 requests with no errors
and answers equal to `det infer --format jsonl`; bad input statuses; SIGTERM drains in-flight
requests and exits 0."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core" / "deploy"))
from deployfixtures import agree, make_checkpoint, shapes_image  # noqa: E402

pytestmark = pytest.mark.slow
httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    ckpt = make_checkpoint("demo/rtmdet_tiny", root / "rtm.pt")
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "det.cli", "serve", str(ckpt), "--port", str(port), "--max-batch", "8",
                             "--max-wait-ms", "300", "--max-image-mb", "0.05"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            if proc.poll() is not None:
                pytest.fail(f"server exited: {proc.stdout.read()}")
            time.sleep(1)
    yield {"url": url, "proc": proc, "ckpt": ckpt, "root": root}
    if proc.poll() is None:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def images(server) -> dict[str, bytes]:
    folder = server["root"] / "imgs"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"{i}.png"), shapes_image(i, 96))
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_concurrent_clients_match_det_infer(server, images, det_inproc):
    r = det_inproc("infer", server["root"] / "imgs", "--weights", server["ckpt"], "--format", "jsonl", "--no-vis",
                   "--out-dir", server["root"] / "infer")
    assert r.returncode == 0, r.stderr
    expected = {Path(rec["img_path"]).name: rec for rec in map(json.loads, r.stdout.splitlines())}
    assert sum(len(rec["scores"]) for rec in expected.values()) >= 5
    names = sorted(images)

    def client(k: int) -> list[tuple[str, int, dict]]:
        with httpx.Client(base_url=server["url"], timeout=120) as c:
            out = []
            for j in range(30):
                name = names[(k + j) % len(names)]
                resp = c.post("/v1/detect", content=images[name], headers={"content-type": "image/png"})
                out.append((name, resp.status_code, resp.json()))
            return out

    with ThreadPoolExecutor(16) as pool:
        results = [res for part in pool.map(client, range(16)) for res in part]
    assert len(results) == 480 and all(code == 200 for _, code, _ in results)
    for name, _, rec in results:
        assert rec["height"] == 96 and rec["width"] == 96
        agree(expected[name], rec, 0.3)
    info = httpx.get(f"{server['url']}/v1/model").json()
    assert info["classes"][0] == "circle" and info["backend"] == "torch" and info["preset"]["model"]["type"] == "RTMDet"
    assert info["batches_run"] < 480  # requests were batched


def test_multipart_query_and_bad_inputs(server, images):
    url = f"{server['url']}/v1/detect"
    r = httpx.post(url, files={"file": ("0.png", images["0.png"], "image/png")}, params={"score_thr": 0.0})
    assert r.status_code == 200 and r.json()["img_path"] == "0.png" and len(r.json()["scores"]) > 0
    r = httpx.post(url, content=images["0.png"], params={"classes": "square"}, headers={"content-type": "image/png"})
    assert r.status_code == 200 and set(r.json()["class_names"]) <= {"square"}
    cases = [(b"hello", "text/plain", 415), (b"plain bytes, no image", "application/octet-stream", 415),
             (images["0.png"][:100], "image/png", 400), (b"\x89PNG" + os.urandom(80_000), "image/png", 413)]
    for body, ctype, status in cases:
        r = httpx.post(url, content=body, headers={"content-type": ctype})
        assert r.status_code == status and "error" in r.json(), (ctype, r.text)
    r = httpx.post(url, content=images["0.png"], params={"classes": "dog"}, headers={"content-type": "image/png"})
    assert r.status_code == 400 and "dog" in r.json()["error"]
    assert httpx.get(f"{server['url']}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{server['url']}/docs").status_code == 200


def test_sigterm_finishes_in_flight_requests(server, images):
    """Each request sends half its body, SIGTERM arrives, then the rest: all three answer 200."""
    codes: list[int] = []
    started = [threading.Event() for _ in range(3)]
    resume = threading.Event()
    data = images["1.png"]

    def one(k: int) -> None:
        def body():
            yield data[: len(data) // 2]
            started[k].set()
            resume.wait(60)
            yield data[len(data) // 2:]
        try:
            r = httpx.post(f"{server['url']}/v1/detect", content=body(), headers={"content-type": "image/png"},
                           timeout=120)
            codes.append(r.status_code)
        except httpx.HTTPError as exc:
            codes.append(repr(exc))

    threads = [threading.Thread(target=one, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    assert all(e.wait(60) for e in started)
    time.sleep(0.5)
    server["proc"].send_signal(signal.SIGTERM)
    time.sleep(0.5)
    resume.set()
    for t in threads:
        t.join(timeout=120)
    assert server["proc"].wait(timeout=120) == 0
    assert codes == [200, 200, 200]
