"""Up-sampling simulators (AutoGAN-style): autoencoders whose decoder ends in a GAN last block.

AutoGAN (Zhang, Karaman and Chang, WIFS 2019) trains an autoencoder whose decoder is a GAN's
up-sampling pipeline; its reconstructions of real photos carry that pipeline's artifacts while
keeping the photo's content. Here the decoder ends in exactly one of the registry's last blocks
(`nets.make_last_block`, the variable of the study), after an encoder that halves the
resolution once, so a reconstruction differs from its source by (the learnt approximation of)
that one x2 up-sampling block and nothing else:

    encoder: conv3x3 3->w, ReLU; conv4x4 stride 2 w->b, ReLU; conv3x3 b->b, ReLU  (size/2)
    decoder: conv3x3 b->w, ReLU; LAST BLOCK (w -> 3 at full size); Tanh

with w = `width` (64) and b = `bottleneck` (64) by default, trained with L1 and Adam at lr 1e-3:
against the probe in `shared/methods/fake-quality-calibration.md` (b = 128, lr 2e-4) the same
1,000 steps cost 0.64x the CPU time and reach 1.07x the FID floor instead of 1.23x (docs/gan.md).
The network is fully convolutional, so any image with even height and width can be
reconstructed, pixel-aligned with its source.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ganforensics.errors import ConfigError
from ganforensics.gan.config import config_kwargs, config_to_dict
from ganforensics.gan.nets import SIZES, make_last_block, parse_last_block
from ganforensics.seeding import DEFAULT_SEED

LOSSES = ("l1", "l2")


@dataclass
class SimulatorConfig:
    """Everything that determines a simulator training run (recorded in its config.yaml)."""

    last_block: str = "BASELINE"
    size: int = 32
    width: int = 64
    bottleneck: int = 64
    loss: str = "l1"
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    batch: int = 64
    steps: int = 1000
    seed: int = DEFAULT_SEED
    checkpoint_every: int = 250
    sample_every: int = 250
    device: str = "cpu"

    @property
    def name(self) -> str:
        """Manifest `generator` value of its reconstructions, e.g. `sim-N.1.5`."""
        return f"sim-{self.last_block}"

    def validate(self) -> SimulatorConfig:
        """Normalise names and check values; raises ConfigError naming the field."""
        spec = parse_last_block(self.last_block)
        self.last_block = "BASELINE" if spec is None else self.last_block.strip().upper()
        if self.loss not in LOSSES:
            raise ConfigError(f"loss: {self.loss!r} is not one of {', '.join(LOSSES)}")
        if self.size not in SIZES:
            raise ConfigError(f"size: {self.size} is not supported; choose 32, 64 or 128")
        for key in ("width", "bottleneck", "batch", "steps", "checkpoint_every", "sample_every"):
            if int(getattr(self, key)) < 1:
                raise ConfigError(f"{key}: must be a positive integer, got {getattr(self, key)}")
        if not float(self.lr) > 0:
            raise ConfigError(f"lr: must be > 0, got {self.lr}")
        self.betas = (float(self.betas[0]), float(self.betas[1]))
        return self

    def to_dict(self) -> dict[str, Any]:
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SimulatorConfig:
        return cls(**config_kwargs(cls, d, "simulator config")).validate()


class Simulator(nn.Module):
    """Image in [-1, 1] (N, 3, H, W), H and W even -> its reconstruction, same shape."""

    def __init__(self, last_block: str = "BASELINE", width: int = 64, bottleneck: int = 64):
        super().__init__()
        spec = parse_last_block(last_block)
        self.last_block_name = "BASELINE" if spec is None else last_block.strip().upper()
        self.encoder = nn.Sequential(
            nn.Conv2d(3, width, 3, 1, 1), nn.ReLU(True),
            nn.Conv2d(width, bottleneck, 4, 2, 1), nn.ReLU(True),
            nn.Conv2d(bottleneck, bottleneck, 3, 1, 1), nn.ReLU(True),
        )
        self.decoder = nn.Sequential(
            nn.Conv2d(bottleneck, width, 3, 1, 1), nn.ReLU(True),
            make_last_block(self.last_block_name, width),
            nn.Tanh(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % 2 or x.shape[-2] % 2:
            raise ValueError(f"simulator input must have even height and width, got "
                             f"{tuple(x.shape[-2:])}")
        return self.decoder(self.encoder(x))


def reconstruction_loss(name: str, recon: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute (`l1`) or squared (`l2`) error."""
    if name == "l1":
        return F.l1_loss(recon, target)
    if name == "l2":
        return F.mse_loss(recon, target)
    raise ConfigError(f"loss: {name!r} is not one of {', '.join(LOSSES)}")
