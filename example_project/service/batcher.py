"""A dynamic batcher: many request threads, one model call per batch.

ONNX Runtime runs a batch of eight 8x8 crops in about the time it runs one, so a
service that answers each request with its own model call leaves most of the
throughput unused once requests overlap.  The batcher trades a bounded wait for that
throughput: request threads put ``(image, future)`` on a queue; one batcher thread
takes the first item, then collects more until it has ``max_batch`` of them or
``max_wait_s`` has passed since the first, runs the model once on the stacked batch,
and resolves each future with its own row.  A lone request waits the whole window, so
``max_wait_s`` is the most latency batching adds to a request that finds the model idle.

The batcher knows nothing about HTTP or the model: ``run_batch`` is any callable from
a stacked array to one result per row, which keeps it testable with a fake model.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np

ResultT = TypeVar("ResultT")

#: The model behind the batcher: a stacked batch in, one result per row out.
RunBatch = Callable[[np.ndarray], Sequence[Any]]


class BatcherStopped(RuntimeError):
    """Raised for a request submitted after (or still queued at) ``stop()``."""


@dataclass
class _Request(Generic[ResultT]):
    """One queued request: its input row and the future its handler waits on."""

    image: np.ndarray
    future: Future[ResultT] = field(default_factory=Future)


_STOP = object()  # queue sentinel: the batcher thread exits when it takes this


class Batcher(Generic[ResultT]):
    """Groups concurrent requests into model batches of at most ``max_batch`` rows."""

    def __init__(
        self,
        run_batch: Callable[[np.ndarray], Sequence[ResultT]],
        *,
        max_batch: int = 8,
        max_wait_s: float = 0.002,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        if max_batch < 1 or max_wait_s < 0:
            raise ValueError(
                f"max_batch must be >= 1 and max_wait_s >= 0, got {max_batch}, {max_wait_s}"
            )
        self._run_batch = run_batch
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._on_batch = on_batch
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._accepting = False
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        """True while the batcher thread runs and accepts requests (what /health reports)."""
        return self._accepting and self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the batcher thread; a daemon, so a crashed server cannot hang the exit."""
        with self._lock:
            if self._thread is not None:
                raise RuntimeError("the batcher was already started")
            self._thread = threading.Thread(target=self._loop, name="batcher", daemon=True)
            self._accepting = True
            self._thread.start()

    def submit(self, image: np.ndarray) -> Future[ResultT]:
        """Queue one input row; the future resolves to its result or the model's error."""
        request: _Request[ResultT] = _Request(image)
        with self._lock:  # so no request slips in behind the stop sentinel
            if not self._accepting:
                request.future.set_exception(BatcherStopped("the batcher is not running"))
                return request.future
            self._queue.put(request)
        return request.future

    def stop(self, timeout_s: float = 5.0) -> None:
        """Serve what is already queued, then end the thread (waits at most ``timeout_s``)."""
        with self._lock:
            if not self._accepting:
                return
            self._accepting = False
            self._queue.put(_STOP)
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _loop(self) -> None:
        """Take a first request, collect its batch, run it; until the stop sentinel."""
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                return
            batch, stopping = self._collect(first)
            self._run(batch)

    def _collect(self, first: _Request[ResultT]) -> tuple[list[_Request[ResultT]], bool]:
        """Up to ``max_batch`` requests, waiting at most ``max_wait_s`` after the first."""
        batch = [first]
        deadline = time.monotonic() + self.max_wait_s
        while len(batch) < self.max_batch:
            item = self._next_before(deadline)
            if item is None:
                return batch, False
            if item is _STOP:
                return batch, True
            batch.append(item)
        return batch, False

    def _next_before(self, deadline: float) -> Any:
        """The next queued item, or None once ``deadline`` passes with the queue empty."""
        try:
            return self._queue.get_nowait()
        except queue.Empty:
            pass
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        try:
            return self._queue.get(timeout=remaining)
        except queue.Empty:
            return None

    def _run(self, batch: list[_Request[ResultT]]) -> None:
        """One model call; each future gets its row, or every future gets the error."""
        if self._on_batch is not None:
            self._on_batch(len(batch))
        try:
            results = self._run_batch(np.stack([request.image for request in batch]))
            if len(results) != len(batch):
                raise RuntimeError(
                    f"the model returned {len(results)} results for {len(batch)} inputs"
                )
        except Exception as error:  # the service must answer, not lose the batcher thread
            for request in batch:
                request.future.set_exception(error)
            return
        for request, result in zip(batch, results, strict=True):
            request.future.set_result(result)
