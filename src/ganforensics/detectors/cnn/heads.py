"""What a CNN detector's head predicts and how it is trained: the binary one-logit head (real = 0,
fake = 1) or an attribution head over (real, generator 1, ..., generator K); label smoothing
and the knowledge-distillation loss (Chandrasegaran et al., ICML 2022; Hinton et al. 2015).

Label smoothing, NVIDIA form (the LS-KD code): for K classes
``L = (1 - a) * (-log p_y) + a * mean_k(-log p_k)`` (uniform mass on all classes, the true one
included; the same as torch's ``cross_entropy(label_smoothing=a)``); for the one-logit head
the two-class equivalent, BCE with the target ``y * (1 - a) + a / 2``. ``a = 0`` is the plain
loss, bit for bit.

Distillation (Hinton form, as in LS-KD): ``T^2 * KL(softmax(z_t / T) || softmax(z_s / T))`` per
image; for a one-logit head softmax over ``[0, z]`` is ``sigmoid(z)``, so the KL is between
the Bernoulli distributions ``sigmoid(z_t / T)`` and ``sigmoid(z_s / T)``. The factor ``T^2``
keeps the gradient's size comparable across temperatures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from ganforensics.errors import ConfigError, InputError

TASKS = ("detect", "attribute")
"""`detect`: one logit, P(fake). `attribute`: one logit per class (real + each generator)."""
DEFAULT_TASK = "detect"
REAL = "real"


# ---- losses (per image, no reduction) -------------------------------------------------------
def smoothed_bce(logits: torch.Tensor, labels: torch.Tensor, alpha: float = 0.0) -> torch.Tensor:
    """BCE with logits against the smoothed targets ``y (1 - alpha) + alpha / 2`` (per image)."""
    target = labels.to(logits.dtype)
    if alpha:
        target = target * (1.0 - alpha) + alpha / 2.0
    return F.binary_cross_entropy_with_logits(logits, target, reduction="none")


def smoothed_ce(logits: torch.Tensor, labels: torch.Tensor, alpha: float = 0.0) -> torch.Tensor:
    """``(1 - alpha) * (-log p_y) + alpha * mean_k(-log p_k)`` per image (NVIDIA form)."""
    logp = F.log_softmax(logits, dim=1)
    nll = -logp.gather(1, labels.long().view(-1, 1)).squeeze(1)
    if not alpha:
        return nll
    return (1.0 - alpha) * nll - alpha * logp.mean(dim=1)


def _bernoulli_log_probs(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(log sigmoid(z), log(1 - sigmoid(z))), stable."""
    return F.logsigmoid(z), F.logsigmoid(-z)


def kd_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float = 1.0
            ) -> torch.Tensor:
    """``T^2 * KL(p_teacher^T || p_student^T)`` per image.

    1-D logits (one-logit heads): Bernoulli distributions ``sigmoid(z / T)``; 2-D logits
    (N, C): ``softmax(z / T)`` over the classes.
    """
    if temperature <= 0:
        raise ConfigError(f"temperature must be positive, not {temperature}")
    t = float(temperature)
    zs, zt = student / t, teacher.detach() / t
    if student.ndim == 1:
        ls1, ls0 = _bernoulli_log_probs(zs)
        lt1, lt0 = _bernoulli_log_probs(zt)
        kl = lt1.exp() * (lt1 - ls1) + lt0.exp() * (lt0 - ls0)
    else:
        ls, lt = F.log_softmax(zs, dim=1), F.log_softmax(zt, dim=1)
        kl = (lt.exp() * (lt - ls)).sum(dim=1)
    return kl * (t * t)


# ---- the head -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Head:
    """The prediction target of a CNN detector.

    `classes` is None for the binary head, else ("real", generator, ...) for attribution:
    class 0 is real, the fakes' `generator` values follow in sorted order.
    """

    classes: tuple[str, ...] | None = None
    label_smoothing: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError(f"label smoothing must lie in [0, 1), not {self.label_smoothing}")
        if self.classes is not None and (len(self.classes) < 2 or self.classes[0] != REAL):
            raise ConfigError(f"attribution classes must start with 'real' and hold at least "
                              f"one generator, not {self.classes}")

    @property
    def task(self) -> str:
        return "detect" if self.classes is None else "attribute"

    @property
    def n_outputs(self) -> int:
        return 1 if self.classes is None else len(self.classes)

    def outputs(self, z: torch.Tensor) -> torch.Tensor:
        """The model's raw output as (N,) logits (binary) or (N, C) class logits."""
        return z.reshape(-1) if self.classes is None else z.reshape(len(z), -1)

    def targets(self, labels: np.ndarray, generators: Sequence[str], what: str = "data"
                ) -> np.ndarray:
        """Labels (binary) or class indices (attribution: reals 0, fakes by generator)."""
        labels = np.asarray(labels).astype(int)
        if self.classes is None:
            return labels
        index = {c: i for i, c in enumerate(self.classes)}
        out = np.zeros(len(labels), dtype=int)
        unknown: set[str] = set()
        for i, (lab, gen) in enumerate(zip(labels.tolist(), generators, strict=True)):
            if lab == 0:
                continue
            if gen not in index or gen == REAL:
                unknown.add(str(gen))
            else:
                out[i] = index[gen]
        if unknown:
            raise InputError(f"{what}: fake images of generator(s) {sorted(unknown)} that the "
                             f"attribution head does not know (classes: {list(self.classes)})")
        return out

    def loss(self, z: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The (label-smoothed) training loss per image."""
        if self.classes is None:
            return smoothed_bce(z, targets, self.label_smoothing)
        return smoothed_ce(z, targets, self.label_smoothing)

    def val_scores(self, logits: np.ndarray, targets: np.ndarray) -> tuple[float, float]:
        """(accuracy, unsmoothed loss) of validation logits."""
        z = torch.from_numpy(np.asarray(logits, dtype=np.float64))
        y = torch.from_numpy(np.asarray(targets))
        if self.classes is None:
            acc = float(((logits >= 0) == (targets == 1)).mean())
            return acc, float(smoothed_bce(z, y).mean())
        acc = float((np.argmax(logits, axis=1) == targets).mean())
        return acc, float(smoothed_ce(z, y).mean())


def attribution_classes(labels: np.ndarray, generators: Sequence[str]) -> tuple[str, ...]:
    """("real", the fakes' generators sorted): the classes of an attribution head."""
    gens = {str(g) for g, lab in zip(generators, np.asarray(labels).tolist(), strict=True)
            if int(lab) == 1}
    gens.discard(REAL)
    if not gens:
        raise InputError("attribution needs fake images with a `generator` name")
    return (REAL, *sorted(gens))


def make_head(task: str, label_smoothing: float, labels: np.ndarray,
              generators: Sequence[str]) -> Head:
    """The head for `task` ("detect" or "attribute"; classes from the training data)."""
    if task not in TASKS:
        raise ConfigError(f"task must be one of {', '.join(TASKS)}, not {task!r}")
    classes = attribution_classes(labels, generators) if task == "attribute" else None
    return Head(classes, float(label_smoothing))
