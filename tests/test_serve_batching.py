"""The micro-batching queue and the batch scorer: batches form under concurrency, the queue is
bounded, a failure reaches every waiting request, one odd image does not sink its batch."""

from __future__ import annotations

import threading
import time
from concurrent.futures import wait
from pathlib import Path

import numpy as np
import pytest

from ganforensics.serve.batching import MicroBatcher, QueueClosed, QueueFull
from ganforensics.serve.engine import Job, score_batch
from ganforensics.serve.models import ModelSpec, ServedDetector


class _Recorder:
    def __init__(self, delay: float = 0.0, gate: threading.Event | None = None) -> None:
        self.sizes: list[int] = []
        self.delay = delay
        self.gate = gate

    def __call__(self, items: list[int]) -> list[int]:
        if self.gate is not None:
            self.gate.wait(5)
        self.sizes.append(len(items))
        time.sleep(self.delay)
        return [2 * x for x in items]


def test_concurrent_items_share_batches_and_results_keep_their_owner():
    rec = _Recorder(delay=0.02)
    b = MicroBatcher(rec, max_batch=8, max_wait_ms=50, queue_size=64)
    futures = []
    threads = [threading.Thread(target=lambda i=i: futures.extend(b.submit([i])))
               for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wait(futures, timeout=10)
    assert sorted(f.result() for f in futures) == [2 * i for i in range(16)]
    assert sum(rec.sizes) == 16 and max(rec.sizes) > 1 and max(rec.sizes) <= 8
    b.close()


def test_max_batch_one_runs_every_item_alone():
    rec = _Recorder()
    b = MicroBatcher(rec, max_batch=1, max_wait_ms=50, queue_size=64)
    fs = b.submit(list(range(5)))
    assert [f.result(timeout=5) for f in fs] == [0, 2, 4, 6, 8]
    assert rec.sizes == [1] * 5
    b.close()


def test_a_lone_item_waits_about_max_wait_not_longer():
    rec = _Recorder()
    b = MicroBatcher(rec, max_batch=8, max_wait_ms=30, queue_size=8)
    t0 = time.monotonic()
    assert b.submit([3])[0].result(timeout=5) == 6
    assert 0.025 <= time.monotonic() - t0 < 1.0
    b.close()


def test_the_queue_is_bounded_all_or_nothing():
    gate = threading.Event()
    rec = _Recorder(gate=gate)
    b = MicroBatcher(rec, max_batch=1, max_wait_ms=0, queue_size=3)
    first = b.submit([0])  # taken by the worker, which blocks on the gate
    time.sleep(0.05)
    held = b.submit([1, 2, 3])
    assert b.depth == 3
    with pytest.raises(QueueFull):
        b.submit([4])
    assert b.depth == 3  # nothing of the refused request was queued
    gate.set()
    assert [f.result(timeout=5) for f in first + held] == [0, 2, 4, 6]
    b.close()


def test_an_exception_reaches_every_item_of_the_batch_and_close_fails_the_rest():
    def boom(items):
        raise RuntimeError("model exploded")

    b = MicroBatcher(boom, max_batch=4, max_wait_ms=20, queue_size=8)
    fs = b.submit([1, 2])
    for f in fs:
        with pytest.raises(RuntimeError, match="exploded"):
            f.result(timeout=5)
    b.close()
    with pytest.raises(QueueClosed):
        b.submit([1])


class _PickyDetector:
    """Fails on any image whose first pixel is 0; P(fake) = mean / 255 otherwise."""

    kind = "picky"
    threshold = 0.5
    meta: dict = {}

    def probs(self, images):
        if any(int(np.asarray(im)[0, 0, 0]) == 0 for im in images):
            raise ValueError("cannot handle this one")
        return np.array([float(np.mean(im)) / 255.0 for im in images])


def _served(name: str) -> ServedDetector:
    det = _PickyDetector()
    return ServedDetector(ModelSpec(name, Path(name)), det, det)


def test_one_odd_image_gets_its_own_detector_error_and_the_batch_is_scored():
    good = [np.full((16, 16, 3), v, np.uint8) for v in (50, 200)]
    odd = np.zeros((16, 16, 3), np.uint8)
    calls = []
    out = score_batch([_served("a"), _served("b")],
                      [Job(good[0]), Job(odd), Job(good[1])],
                      observe=lambda name, sec: calls.append((name, sec)))
    assert [c[0] for c in calls] == ["a", "b"]
    for res, im in ((out[0], good[0]), (out[2], good[1])):
        assert [v["p_fake"] for v in res["detectors"]] == [pytest.approx(im.mean() / 255)] * 2
        assert res["ensemble"]["n_detectors"] == 2
    bad = out[1]
    assert all(v["p_fake"] is None and "cannot handle" in v["error"] for v in bad["detectors"])
    assert bad["ensemble"] is None
    assert out[0]["detectors"][0]["label"] == "real" and out[2]["detectors"][0]["label"] == "fake"
