"""`AttributionDetector`: a CNN with one logit per class (real, generator 1, ..., K) that answers
"which generator made this image?" and still acts as a binary detector.

Calibration (fitted on the validation split only, `fit_class_calibration`): vector scaling
without the per-class weights, i.e. calibrated logits ``z' = s * z + b`` with one temperature
``1 / s`` shared by all classes and one bias per class, chosen to minimise the validation NLL
(a convex problem; a small ridge keeps ``b`` finite when a class is missing from validation).
The binary score is ``P(fake) = 1 - P(real)`` of the calibrated classes (logit
``logsumexp(z'_fakes) - z'_real``), with its decision threshold calibrated on validation too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ganforensics.detectors.cnn.model import CNNDetector

CALIBRATION_METHOD = "temperature + per-class bias (vector scaling, shared scale)"
RIDGE = 1e-3


def fit_class_calibration(logits: np.ndarray, targets: np.ndarray, ridge: float = RIDGE
                          ) -> tuple[float, np.ndarray]:
    """(scale, bias) minimising the mean NLL of ``softmax(scale * z + bias)`` on the given
    (validation) logits (N, C) and class indices, plus ``ridge * |bias|^2``."""
    z = torch.as_tensor(np.asarray(logits, dtype=np.float64))
    y = torch.as_tensor(np.asarray(targets, dtype=np.int64))
    log_s = torch.zeros((), dtype=torch.float64, requires_grad=True)
    b = torch.zeros(z.shape[1], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_s, b], lr=0.5, max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = nn.functional.cross_entropy(log_s.exp() * z + b, y) + ridge * (b * b).sum()
        loss.backward()
        return loss

    opt.step(closure)
    b_out = b.detach().numpy()
    return float(log_s.detach().exp()), b_out - b_out.mean()  # softmax ignores a common shift


def binary_logit(class_logits: torch.Tensor) -> torch.Tensor:
    """log(P(fake) / P(real)) = logsumexp(fake classes) - real class, per row."""
    return torch.logsumexp(class_logits[:, 1:], dim=1) - class_logits[:, 0]


def softmax_np(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class AttributionDetector(CNNDetector):
    """A CNN detector with an attribution head; `logits`/`probs` give the binary P(fake), and
    `class_logits`/`class_probs`/`top_classes` the calibrated attribution."""

    def __init__(
        self, model: nn.Module, arch: str, *, classes: Sequence[str] | None = None,
        scale: float | None = None, bias: Sequence[float] | None = None, **kwargs: Any,
    ) -> None:
        meta = kwargs.get("meta") or {}
        self.classes = tuple(str(c) for c in (classes if classes is not None
                                              else meta.get("classes") or ()))
        cal = meta.get("calibration") or {}
        self.scale = float(scale if scale is not None else cal.get("scale", 1.0))
        self.bias = np.asarray(bias if bias is not None else
                               cal.get("bias", [0.0] * len(self.classes)), dtype=np.float64)
        super().__init__(model, arch, **kwargs)

    def _refresh_meta(self) -> None:
        super()._refresh_meta()
        self.meta.update(task="attribute", classes=list(self.classes), calibration={
            "method": CALIBRATION_METHOD, "scale": self.scale, "bias": self.bias.tolist(),
            "fitted_on": self.meta.get("calibration", {}).get("fitted_on", "not fitted"),
        })

    def set_calibration(self, scale: float, bias: np.ndarray, fitted_on: str) -> None:
        self.scale, self.bias = float(scale), np.asarray(bias, dtype=np.float64)
        self.meta["calibration"] = {"fitted_on": fitted_on}
        self._refresh_meta()

    def _calibrated(self, x: torch.Tensor) -> torch.Tensor:
        z = self.network_outputs(x).double()
        return z * self.scale + torch.as_tensor(self.bias, device=z.device)

    @torch.inference_mode()
    def forward_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """The binary logit log(P(fake) / P(real)) of the calibrated classes, (N,)."""
        return binary_logit(self._calibrated(x)).float()

    def class_logits(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Calibrated class logits (N, C) for RGB uint8 images."""
        return self.map_batches(images, self._calibrated, (len(self.classes),))

    def class_probs(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Calibrated class probabilities (N, C)."""
        return softmax_np(self.class_logits(images))

    def top_classes(self, images: Sequence[np.ndarray]) -> list[str]:
        return [self.classes[i] for i in np.argmax(self.class_logits(images), axis=1)]

    def __repr__(self) -> str:
        return "Attribution" + super().__repr__()[:-1] + f", classes={list(self.classes)})"
