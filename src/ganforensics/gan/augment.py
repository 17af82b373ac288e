"""Differentiable augmentation of D's inputs (DiffAugment-style; Zhao et al., NeurIPS 2020).

With a small training set the discriminator memorises the reals and wins within a few hundred
steps (docs/gan.md, "Fake quality"). Augmenting *every* image D sees, reals and fakes alike, in
D's step and in G's step, with operations that are differentiable with respect to the image,
keeps D from memorising without the augmentation leaking into G's samples: G is rewarded only
for fakes whose augmented copies look like augmented reals.

Policies and the paper's constants (images in [-1, 1]):

- `color`: brightness + U(-0.5, 0.5); saturation: the deviation from the per-pixel channel mean
  scaled by U(0, 2); contrast: the deviation from the per-image mean scaled by U(0.5, 1.5).
- `translation`: an integer shift of up to 1/8 of the size in each direction, zero filled.
- `cutout`: a square of half the size, centred at a random pixel, set to 0.

Every draw comes from a seeded `torch.Generator` and is made for the whole global batch
(`draw`), so an interrupted run resumes exactly and a data-parallel process takes its rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ganforensics.errors import ConfigError

POLICIES: tuple[str, ...] = ("color", "translation", "cutout")
DEFAULT_POLICY: tuple[str, ...] = POLICIES
"""What `--augment` alone turns on: all three, as the paper's low-data CIFAR runs use."""
TRANSLATION_RATIO = 1 / 8
CUTOUT_RATIO = 1 / 2


def parse_policy(policy: str | tuple[str, ...] | list[str] | None) -> tuple[str, ...]:
    """`"color,translation"` or a sequence of names -> the names in `POLICIES` order;
    ConfigError naming `augment` on an unknown one. Empty/None: no augmentation."""
    if policy is None:
        return ()
    names = policy.split(",") if isinstance(policy, str) else list(policy)
    names = [n.strip().lower() for n in names if n.strip()]
    unknown = sorted(set(names) - set(POLICIES))
    if unknown:
        raise ConfigError(f"augment: unknown policy {', '.join(unknown)}; choose from "
                          f"{', '.join(POLICIES)}")
    return tuple(p for p in POLICIES if p in names)


@dataclass
class Draw:
    """The random parameters of one augmentation of a batch (one row per image)."""

    brightness: torch.Tensor | None = None
    saturation: torch.Tensor | None = None
    contrast: torch.Tensor | None = None
    shift: torch.Tensor | None = None
    """(N, 2) integer shifts (rows, columns)."""
    centre: torch.Tensor | None = None
    """(N, 2) integer cutout centres (row, column)."""

    def rows(self, rows: slice) -> Draw:
        """The draws of a slice of the batch (a data-parallel process's rows)."""
        return Draw(*(None if t is None else t[rows] for t in (
            self.brightness, self.saturation, self.contrast, self.shift, self.centre)))


def draw(policy: tuple[str, ...], batch: int, size: int, gen: torch.Generator) -> Draw:
    """The random parameters of `policy` for `batch` images of `size` px, in a fixed order."""
    d = Draw()
    if "color" in policy:
        d.brightness = torch.rand(batch, generator=gen) - 0.5
        d.saturation = torch.rand(batch, generator=gen) * 2.0
        d.contrast = torch.rand(batch, generator=gen) + 0.5
    if "translation" in policy:
        m = int(size * TRANSLATION_RATIO + 0.5)
        d.shift = torch.randint(-m, m + 1, (batch, 2), generator=gen)
    if "cutout" in policy:
        d.centre = torch.randint(0, size, (batch, 2), generator=gen)
    return d


def apply(x: torch.Tensor, d: Draw) -> torch.Tensor:
    """Augment a batch (N, C, H, W) with the draws `d` (rows matching `x`); differentiable in x."""
    if d.brightness is not None:
        assert d.saturation is not None and d.contrast is not None
        x = x + d.brightness.to(x)[:, None, None, None]
        mean_c = x.mean(dim=1, keepdim=True)
        x = (x - mean_c) * d.saturation.to(x)[:, None, None, None] + mean_c
        mean_all = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean_all) * d.contrast.to(x)[:, None, None, None] + mean_all
    if d.shift is not None:
        x = _translate(x, d.shift.to(x.device))
    if d.centre is not None:
        x = x * _cutout_mask(x, d.centre.to(x.device))
    return x


def _translate(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Shift each image by its (rows, columns) offset, filling with zeros (a gather from the
    zero-padded batch, so gradients flow to the pixels that stay)."""
    n, _, h, w = x.shape
    m = int(shift.abs().max().item()) if shift.numel() else 0
    if m == 0:
        return x
    padded = F.pad(x, (m, m, m, m))
    rows = torch.arange(h, device=x.device)[None, :] - shift[:, :1] + m  # (N, H)
    cols = torch.arange(w, device=x.device)[None, :] - shift[:, 1:] + m  # (N, W)
    idx_r = rows[:, None, :, None].expand(n, x.shape[1], h, padded.shape[3])
    out = padded.gather(2, idx_r)
    idx_c = cols[:, None, None, :].expand(n, x.shape[1], h, w)
    return out.gather(3, idx_c)


def _cutout_mask(x: torch.Tensor, centre: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) mask: 0 inside each image's square of side size * CUTOUT_RATIO."""
    _, _, h, w = x.shape
    half_h, half_w = int(h * CUTOUT_RATIO + 0.5) // 2, int(w * CUTOUT_RATIO + 0.5) // 2
    r = torch.arange(h, device=x.device)[None, :]
    c = torch.arange(w, device=x.device)[None, :]
    in_r = (r >= centre[:, :1] - half_h) & (r < centre[:, :1] + half_h)  # (N, H)
    in_c = (c >= centre[:, 1:] - half_w) & (c < centre[:, 1:] + half_w)  # (N, W)
    inside = in_r[:, :, None] & in_c[:, None, :]
    return (~inside).to(x.dtype)[:, None]
