"""A bounded work queue feeding inference worker threads, with micro-batching.

Requests put their images on one queue (all or none: a request that does not fit raises
`QueueFull`, which the app answers with 503 + Retry-After). Each worker takes the oldest item,
then keeps collecting until it holds `max_batch` items or `max_wait_ms` have passed since that
item arrived, and runs the whole batch in one call; so concurrent requests share forward passes
and throughput rises with concurrency. Results come back through `concurrent.futures.Future`s
(await them with `asyncio.wrap_future`). Inference never runs on the event loop.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class QueueFull(Exception):
    """The queue has no room for all the items of a request."""


class QueueClosed(Exception):
    """The batcher is shutting down."""


@dataclass
class Item(Generic[T]):
    """One unit of work and the future its result goes to."""

    payload: T
    future: Future = field(default_factory=Future)
    arrived: float = field(default_factory=time.monotonic)


class MicroBatcher(Generic[T]):
    """Worker threads running `run_batch(payloads) -> results` (one result per payload, in
    order) over micro-batches taken from a bounded queue."""

    def __init__(
        self,
        run_batch: Callable[[list[T]], Sequence[Any]],
        *,
        max_batch: int,
        max_wait_ms: float,
        queue_size: int,
        workers: int = 1,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        if max_batch < 1 or queue_size < 1 or workers < 1 or max_wait_ms < 0:
            raise ValueError("max_batch, queue_size and workers must be >= 1, max_wait_ms >= 0")
        self._run = run_batch
        self.max_batch = int(max_batch)
        self.max_wait = float(max_wait_ms) / 1000.0
        self.queue_size = int(queue_size)
        self._on_batch = on_batch
        self._items: deque[Item[T]] = deque()
        self._cv = threading.Condition()
        self._closed = False
        self._threads = [threading.Thread(target=self._loop, name=f"gf-infer-{i}", daemon=True)
                         for i in range(int(workers))]
        for t in self._threads:
            t.start()

    @property
    def depth(self) -> int:
        """Items waiting (not yet taken by a worker)."""
        return len(self._items)

    def submit(self, payloads: Sequence[T]) -> list[Future]:
        """Queue every payload or none; `QueueFull` when they do not all fit."""
        items = [Item(p) for p in payloads]
        with self._cv:
            if self._closed:
                raise QueueClosed("the service is shutting down")
            if len(self._items) + len(items) > self.queue_size:
                raise QueueFull(f"{len(self._items)} images waiting; this request adds "
                                f"{len(items)} (queue size {self.queue_size})")
            self._items.extend(items)
            self._cv.notify_all()
        return [it.future for it in items]

    def _take(self) -> list[Item[T]] | None:
        with self._cv:
            while not self._items and not self._closed:
                self._cv.wait()
            if not self._items:
                return None
            batch = [self._items.popleft()]
            deadline = batch[0].arrived + self.max_wait
            while len(batch) < self.max_batch:
                if self._items:
                    batch.append(self._items.popleft())
                    continue
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    break
                self._cv.wait(left)
            return batch

    def _loop(self) -> None:
        while (batch := self._take()) is not None:
            live = [it for it in batch if it.future.set_running_or_notify_cancel()]
            if not live:
                continue
            if self._on_batch is not None:
                self._on_batch(len(live))
            try:
                results = self._run([it.payload for it in live])
                if len(results) != len(live):
                    raise RuntimeError(f"run_batch returned {len(results)} results for "
                                       f"{len(live)} items")
            except BaseException as exc:  # noqa: BLE001 - handed to every waiting request
                for it in live:
                    it.future.set_exception(exc)
                continue
            for it, res in zip(live, results, strict=True):
                it.future.set_result(res)

    def close(self, timeout: float = 10.0) -> None:
        """Stop taking work, finish the batches in flight, fail what is still queued."""
        with self._cv:
            self._closed = True
            left = list(self._items)
            self._items.clear()
            self._cv.notify_all()
        for it in left:
            if it.future.set_running_or_notify_cancel():
                it.future.set_exception(QueueClosed("the service is shutting down"))
        for t in self._threads:
            t.join(timeout)
