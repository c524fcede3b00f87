"""Dynamic batching and request decoding of `det serve`, without a model or a socket."""
from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest

from det.core.deploy.batcher import Batcher


def test_batcher_groups_concurrent_requests_and_keeps_each_answer():
    seen: list[list[int]] = []

    def run(items):
        seen.append(list(items))
        time.sleep(0.01)
        return [i * 10 for i in items]

    b = Batcher(run, max_batch=4, max_wait_ms=50)
    futures = {}
    barrier = threading.Barrier(10)

    def submit(i):
        barrier.wait()
        futures[i] = b.submit(i)

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {i: f.result(10) for i, f in futures.items()} == {i: i * 10 for i in range(10)}
    b.close()
    assert sorted(i for batch in seen for i in batch) == list(range(10))
    assert max(len(batch) for batch in seen) == 4 and len(seen) < 10


def test_batcher_hands_errors_to_the_batch_and_keeps_running():
    def run(items):
        if "bad" in items:
            raise ValueError("boom")
        return list(items)

    b = Batcher(run, max_batch=2, max_wait_ms=0)
    with pytest.raises(ValueError, match="boom"):
        b.submit("bad").result(10)
    assert b.submit("ok").result(10) == "ok"
    b.close()


def test_decode_image_statuses():
    from det.core.deploy.serve import RequestError, decode_image

    ok, png = cv2.imencode(".png", np.full((8, 9, 3), 7, np.uint8))
    assert decode_image(png.tobytes(), "image/png", 10_000).shape == (8, 9, 3)
    for data, ctype, limit, status in [(png.tobytes(), "text/plain", 10_000, 415), (b"GIF-less text", None, 10_000, 415),
                                       (png.tobytes()[:20], "image/png", 10_000, 400), (b"", None, 10, 400),
                                       (png.tobytes(), "image/png", 10, 413)]:
        with pytest.raises(RequestError) as exc:
            decode_image(data, ctype, limit)
        assert exc.value.status == status
