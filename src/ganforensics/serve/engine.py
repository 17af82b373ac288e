"""Scoring one micro-batch of decoded images with every served detector.

Each detector scores the whole batch in one call (`probs` groups same-size images into forward
passes). If that call fails, the detector scores the images one by one, so one odd image gets an
error on its own entry and the rest of the batch is still scored. With `explain`, an image also
gets its durall azimuthal profile (against its run's real-image profile) and, for each CNN
detector, a Grad-CAM overlay computed on the torch model.
"""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from ganforensics.explain.cam import gradcam, overlay
from ganforensics.serve.models import ServedDetector, ensemble_score
from ganforensics.spectral.spectra import durall_plan, durall_profiles

OVERLAY_MAX_SIDE = 384
"""Grad-CAM overlays are drawn on the image shrunk to at most this side (keeps responses small)."""

Observer = Callable[[str, float], None]
"""Called with (detector name, seconds) after each detector's batch call."""


@dataclass
class Job:
    """One decoded image to score."""

    image: np.ndarray
    explain: bool = False


def _one_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _probs(sd: ServedDetector, images: list[np.ndarray]) -> tuple[np.ndarray, list[str | None]]:
    """P(fake) of every image (NaN where it failed) and the per-image error messages."""
    try:
        return np.asarray(sd.scorer.probs(images), dtype=np.float64), [None] * len(images)
    except Exception:  # noqa: BLE001 - retried image by image below to isolate the bad one
        pass
    probs = np.full(len(images), np.nan)
    errors: list[str | None] = [None] * len(images)
    for i, im in enumerate(images):
        try:
            probs[i] = float(np.asarray(sd.scorer.probs([im]))[0])
        except Exception as exc:  # noqa: BLE001 - reported on this image's entry
            errors[i] = f"{sd.name} could not score this image ({_one_line(exc)})"
    return probs, errors


def png_base64(array: np.ndarray) -> str:
    """An RGB uint8 array as a base64 PNG string."""
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _shrunk(image: np.ndarray, side: int = OVERLAY_MAX_SIDE) -> np.ndarray:
    h, w = image.shape[:2]
    if max(h, w) <= side:
        return image
    s = side / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR))


def spectrum_of(image: np.ndarray, detectors: Sequence[ServedDetector]) -> dict[str, Any]:
    """The image's durall profile (20 ln|F|, DESIGN B1) and the first run reference found."""
    h, w = image.shape[:2]
    profile = np.asarray(durall_profiles(image[None]), dtype=np.float64)[0]
    ref = next((d.reference for d in detectors if d.reference is not None), None)
    return {
        "variant": "durall",
        "freq": [float(f) for f in durall_plan(h, w).freq],
        "profile": [float(v) for v in profile],
        "reference": None if ref is None else {
            "label": "real images of the detectors' run", "source": ref.source,
            "freq": ref.freq, "mean": ref.mean, "std": ref.std},
    }


def gradcam_png(sd: ServedDetector, image: np.ndarray) -> str:
    """A base64 PNG of the Grad-CAM heatmap of `sd` over the image (the torch model)."""
    with sd.lock:  # forward hooks on a shared module: one Grad-CAM at a time per detector
        heatmaps, _ = gradcam(sd.detector, [image])
    return png_base64(overlay(_shrunk(image), heatmaps[0]))


def score_batch(
    detectors: Sequence[ServedDetector], jobs: Sequence[Job], observe: Observer | None = None
) -> list[dict[str, Any]]:
    """Per job: `detectors` (one verdict each), `ensemble` (None for a single detector) and,
    when the job asks to explain, `spectrum` and per-CNN `gradcam_png`."""
    images = [j.image for j in jobs]
    n = len(images)
    verdicts: list[list[dict[str, Any]]] = [[] for _ in range(n)]
    for sd in detectors:
        t0 = time.perf_counter()
        probs, errors = _probs(sd, images)
        seconds = time.perf_counter() - t0
        if observe is not None:
            observe(sd.name, seconds)
        for i in range(n):
            ok = errors[i] is None and np.isfinite(probs[i])
            p = float(probs[i]) if ok else None
            verdicts[i].append({
                "name": sd.name, "kind": sd.kind, "p_fake": p, "threshold": sd.threshold,
                "label": None if p is None else ("fake" if p >= sd.threshold else "real"),
                "latency_ms": round(seconds * 1000.0, 3), "batch_size": n,
                "error": None if ok else (errors[i] or "no finite score"),
            })
    results = []
    for i, job in enumerate(jobs):
        scored = [v for v in verdicts[i] if v["p_fake"] is not None]
        ensemble = None
        if len(detectors) > 1 and scored:
            p = ensemble_score([v["p_fake"] for v in scored], [v["threshold"] for v in scored])
            ensemble = {"p_fake": p, "threshold": 0.5, "label": "fake" if p >= 0.5 else "real",
                        "n_detectors": len(scored), "method": "mean threshold-centred logit"}
        res: dict[str, Any] = {"detectors": verdicts[i], "ensemble": ensemble}
        if job.explain:
            res["spectrum"] = spectrum_of(job.image, detectors)
            for sd, v in zip(detectors, verdicts[i], strict=True):
                if sd.explainable and v["p_fake"] is not None:
                    try:
                        v["gradcam_png"] = gradcam_png(sd, job.image)
                    except Exception as exc:  # noqa: BLE001 - the verdict stands without it
                        v["gradcam_error"] = _one_line(exc)
        results.append(res)
    return results
