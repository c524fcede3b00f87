"""Dynamic batching: requests arriving within `max_wait_ms` of the first waiting one run as one
forward pass of up to `max_batch` images, on one model thread."""
from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

_STOP = object()


class Batcher:
    """`submit(item) -> Future`; `run_batch(items) -> results` runs on the batching thread."""

    def __init__(self, run_batch: Callable[[Sequence[Any]], list[Any]], max_batch: int = 8,
                 max_wait_ms: float = 10.0) -> None:
        self.run_batch, self.max_batch, self.max_wait = run_batch, max(1, int(max_batch)), max(0.0, max_wait_ms) / 1000
        self.queue: queue.Queue = queue.Queue()
        self.batches: list[int] = []  # sizes of the batches run, for /v1/model and the tests
        self.thread = threading.Thread(target=self._loop, name="det-batcher", daemon=True)
        self.thread.start()

    def submit(self, item: Any) -> Future:
        fut: Future = Future()
        self.queue.put((item, fut))
        return fut

    def close(self) -> None:
        """Finish what is queued, then stop the thread."""
        self.queue.put(_STOP)
        self.thread.join()

    def _collect(self, first: tuple) -> tuple[list[tuple], bool]:
        batch, deadline = [first], time.monotonic() + self.max_wait
        while len(batch) < self.max_batch:
            try:
                nxt = self.queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if nxt is _STOP:
                return batch, True
            batch.append(nxt)
        return batch, False

    def _loop(self) -> None:
        stop = False
        while not stop:
            first = self.queue.get()
            if first is _STOP:
                break
            batch, stop = self._collect(first)
            self.batches.append(len(batch))
            try:
                results = self.run_batch([item for item, _ in batch])
            except Exception as exc:  # noqa: BLE001 - handed to every waiting request
                for _, fut in batch:
                    fut.set_exception(exc)
                continue
            for (_, fut), res in zip(batch, results):
                fut.set_result(res)
