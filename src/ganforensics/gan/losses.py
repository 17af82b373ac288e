"""GAN losses (`gan`, `lsgan`, `wgan`, `hinge`) and gradient penalties (`0-gp`, `1-gp`), DESIGN B3.

`hinge` (SN-GAN, Miyato et al. 2018): D minimises mean(relu(1 - D(x))) + mean(relu(1 + D(G(z)))),
G minimises -mean(D(G(z))).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ganforensics.errors import ConfigError

LOSSES = ("gan", "lsgan", "wgan", "hinge")
PENALTIES = ("none", "0-gp", "1-gp")
GP_WEIGHT = 10.0


def check_loss(loss: str, gp: str) -> None:
    """Raise ConfigError for unknown names."""
    if loss not in LOSSES:
        raise ConfigError(f"loss: {loss!r} is not one of {', '.join(LOSSES)}")
    if gp not in PENALTIES:
        raise ConfigError(f"gp: {gp!r} is not one of {', '.join(PENALTIES)}")


def d_loss(loss: str, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator (critic) loss, to be minimised."""
    if loss == "gan":
        return F.binary_cross_entropy_with_logits(
            real_logits, torch.ones_like(real_logits)
        ) + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    if loss == "lsgan":
        return F.mse_loss(real_logits, torch.ones_like(real_logits)) + F.mse_loss(
            fake_logits, torch.zeros_like(fake_logits)
        )
    if loss == "wgan":
        return fake_logits.mean() - real_logits.mean()
    if loss == "hinge":
        return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()
    raise ConfigError(f"loss: {loss!r} is not one of {', '.join(LOSSES)}")


def g_loss(loss: str, fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator loss (non-saturating for `gan`), to be minimised."""
    if loss == "gan":
        return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
    if loss == "lsgan":
        return F.mse_loss(fake_logits, torch.ones_like(fake_logits))
    if loss in ("wgan", "hinge"):
        return -fake_logits.mean()
    raise ConfigError(f"loss: {loss!r} is not one of {', '.join(LOSSES)}")


def gradient_penalty(
    disc: nn.Module,
    real: torch.Tensor,
    fake: torch.Tensor,
    kind: str,
    generator: torch.Generator,
    weight: float = GP_WEIGHT,
    *,
    batch: int | None = None,
    rows: slice = slice(None),
) -> torch.Tensor:
    """Penalty on interpolates a*real + (1-a)*fake, a ~ U(0, 1) per sample (any input rank).

    `1-gp`: weight * (|g| - 1)^2; `0-gp`: weight * |g|^2 (zero-centred). `none`: 0.
    In data-parallel training `real` / `fake` are the `rows` of a global batch of `batch`: the
    weights a are drawn for the whole batch and these rows kept, as one process would.
    """
    if kind == "none":
        return real.new_zeros(())
    n = real.shape[0] if batch is None else batch
    # one weight per sample, broadcast over the other dims (images (n, C, H, W); text (n, L, V))
    shape = (n,) + (1,) * (real.dim() - 1)
    a = torch.rand(shape, generator=generator, device="cpu")[rows].to(real.device)
    x = (a * real + (1 - a) * fake.detach()).requires_grad_(True)
    out = disc(x)
    (g,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    norm = g.flatten(1).norm(2, dim=1)
    if kind == "1-gp":
        return weight * ((norm - 1) ** 2).mean()
    if kind == "0-gp":
        return weight * (norm**2).mean()
    raise ConfigError(f"gp: {kind!r} is not one of {', '.join(PENALTIES)}")
