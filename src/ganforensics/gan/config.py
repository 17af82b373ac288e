"""GAN training configuration and presets: the one source of defaults (library and CLI).

Presets (DESIGN B3):

- `dcgan`: loss `gan`, no penalty, lr_g = lr_d = 1e-4, Adam betas (0.5, 0.999), 1 D step.
- `lsgan`: as `dcgan` with the least-squares loss.
- `wgan-gp`: loss `wgan`, zero-centred penalty `0-gp` (what the paper's "WGAN-GP" used),
  lr 2e-4 for both nets, 5 critic steps per G step, GroupNorm in the critic.
- `ttur`: the two time-scale update rule with the DCGAN loss: lr_d = 4e-4, lr_g = 1e-4 (the
  pair SAGAN made common), betas (0.5, 0.999).
- `ttur-wgan-gp`: the TTUR authors' WGAN-GP setting: `1-gp`, lr_d = 3e-4, lr_g = 1e-4,
  betas (0, 0.9), one critic step.
- `sngan`: SN-GAN (Miyato et al. 2018) on the same nets: hinge loss, spectral normalisation of
  D's convs (no BatchNorm in D), lr 2e-4 for both, betas (0.5, 0.999), one D step (the paper's
  setting "C" for its standard CNN).

`DEFAULT_STEPS` (1200) is the default training budget: at 32x32, batch 64, on photo patches it
gives samples with photo-like colour regions, gradients and textures (not noise) in about
70 s (BASELINE) to 100 s (N.1.5) on an idle 2-core CPU; see docs/gan.md.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ganforensics.errors import ConfigError
from ganforensics.gan import objectives
from ganforensics.gan.augment import parse_policy
from ganforensics.gan.losses import check_loss
from ganforensics.gan.nets import parse_last_block
from ganforensics.seeding import DEFAULT_SEED

DEFAULT_STEPS = 1200
DEFAULT_BATCH = 64
PRECISIONS = ("float32", "bfloat16")


@dataclass
class GanConfig:
    """Everything that determines a GAN training run (recorded in the run's config.yaml)."""

    arch: str = "dcgan"
    last_block: str = "BASELINE"
    loss: str = "gan"
    gp: str = "none"
    gp_weight: float = 10.0
    n_d: int = 1
    lr_g: float = 1e-4
    lr_d: float = 1e-4
    betas: tuple[float, float] = (0.5, 0.999)
    batch: int = DEFAULT_BATCH
    steps: int = DEFAULT_STEPS
    size: int = 32
    z_dim: int = 128
    dim: int = 32
    seed: int = DEFAULT_SEED
    checkpoint_every: int = 250
    sample_every: int = 250
    device: str = "cpu"
    objectives: tuple[str, ...] = ()
    """Auxiliary objectives added to the loss (`gan.objectives.OBJECTIVES`)."""
    objective_params: dict[str, Any] = field(default_factory=dict)
    """Their parameters: overrides (`{"infomax.alpha": 0.1}`) before `validate`, every
    parameter of every enabled objective after it (`gan.objectives.DEFAULTS`)."""
    augment: tuple[str, ...] = ()
    """Differentiable augmentations of every image D sees (`gan.augment.POLICIES`)."""
    spectral_norm: bool = False
    """Spectral normalisation of D's convs instead of its Batch/GroupNorm (SN-GAN)."""
    d_depth: int = 1
    """Convs per resolution in D: 1 is the published net; each more adds a 3x3 conv of the
    same width after the strided one (`gan.nets.Discriminator`)."""
    ema: float = 0.0
    """Decay of an exponential moving average of G's weights, sampled from instead of G
    (0: off). The decay warms up as min(ema, (1 + t) / (10 + t)) at step t."""
    precision: str = "float32"
    """Arithmetic of the training step: "float32", or "bfloat16" (the forward and backward
    passes under torch autocast: convolutions in bfloat16, weights, Adam and the moving
    average in float32; about 2x faster on CPUs with AMX, docs/gan.md)."""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def d_norm(self) -> str:
        """D's normalisation: spectral norm when asked, else BatchNorm without a gradient
        penalty and GroupNorm(1, C) with one."""
        if self.spectral_norm:
            return "spectral"
        return "batch" if self.gp == "none" else "group"

    @property
    def generator_name(self) -> str:
        """Manifest `generator` value, e.g. `dcgan-N.1.5`."""
        return f"{self.arch}-{self.last_block}"

    def validate(self) -> GanConfig:
        """Normalise names and check values; raises ConfigError naming the field."""
        spec = parse_last_block(self.last_block)
        self.last_block = "BASELINE" if spec is None else self.last_block.strip().upper()
        check_loss(self.loss, self.gp)
        self.betas = (float(self.betas[0]), float(self.betas[1]))
        if not all(0.0 <= b < 1.0 for b in self.betas):
            raise ConfigError(f"betas: Adam's betas must lie in [0, 1), got {list(self.betas)}")
        for name in ("n_d", "batch", "steps", "z_dim", "dim", "d_depth", "checkpoint_every",
                     "sample_every"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name}: must be a positive integer, got {getattr(self, name)}")
        if self.size not in (32, 64, 128):
            raise ConfigError(f"size: {self.size} is not supported; choose 32, 64 or 128")
        for name in ("lr_g", "lr_d"):
            if not float(getattr(self, name)) > 0:
                raise ConfigError(f"{name}: must be > 0")
        self.objective_params = objectives.resolve(self.objectives, self.objective_params)
        self.objectives = tuple(self.objective_params)
        self.augment = parse_policy(self.augment)
        self.ema = float(self.ema)
        self.d_depth = int(self.d_depth)
        self.spectral_norm = bool(self.spectral_norm)
        if not 0.0 <= self.ema < 1.0:
            raise ConfigError(f"ema: the decay must be in [0, 1), got {self.ema}")
        self.precision = str(self.precision).strip().lower()
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision: {self.precision!r} is not one of "
                              f"{', '.join(PRECISIONS)}")
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain data; without the objective, augmentation, EMA, D-depth and precision keys when
        they are off (so a plain run's record and run id are what they were before these options
        existed)."""
        d = config_to_dict(self)
        d["objectives"] = list(self.objectives)
        d["augment"] = list(self.augment)
        if not self.objectives:
            del d["objectives"], d["objective_params"]
        if not self.augment:
            del d["augment"]
        if not self.ema:
            del d["ema"]
        if not self.spectral_norm:
            del d["spectral_norm"]
        if self.d_depth == 1:
            del d["d_depth"]
        if self.precision == "float32":
            del d["precision"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GanConfig:
        return cls(**config_kwargs(cls, d, "GAN config")).validate()


def config_to_dict(config: Any) -> dict[str, Any]:
    """A training-config dataclass as plain YAML/JSON data (`betas` as a list)."""
    d = dataclasses.asdict(config)
    d["betas"] = list(config.betas)
    return d


def config_kwargs(cls: type, d: dict[str, Any], what: str) -> dict[str, Any]:
    """Constructor arguments of the dataclass `cls` from saved data; unknown keys are a
    ConfigError naming `what`."""
    unknown = sorted(set(d) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        raise ConfigError(f"{what}: unknown key(s) {', '.join(unknown)}")
    kw = dict(d)
    for key in ("betas", "objectives", "augment"):
        if key in kw:
            kw[key] = tuple(kw[key])
    return kw


PRESETS: dict[str, dict[str, Any]] = {
    "dcgan": dict(loss="gan", gp="none", n_d=1, lr_g=1e-4, lr_d=1e-4, betas=(0.5, 0.999)),
    "lsgan": dict(loss="lsgan", gp="none", n_d=1, lr_g=1e-4, lr_d=1e-4, betas=(0.5, 0.999)),
    "wgan-gp": dict(loss="wgan", gp="0-gp", n_d=5, lr_g=2e-4, lr_d=2e-4, betas=(0.5, 0.999)),
    "ttur": dict(loss="gan", gp="none", n_d=1, lr_g=1e-4, lr_d=4e-4, betas=(0.5, 0.999)),
    "ttur-wgan-gp": dict(loss="wgan", gp="1-gp", n_d=1, lr_g=1e-4, lr_d=3e-4, betas=(0.0, 0.9)),
    "sngan": dict(loss="hinge", gp="none", n_d=1, lr_g=2e-4, lr_d=2e-4, betas=(0.5, 0.999),
                  spectral_norm=True),
}
TTUR_PAIR = (1e-4, 4e-4)  # (lr_g, lr_d) applied by `--ttur`


def preset(name: str, **overrides: Any) -> GanConfig:
    """The GanConfig of a named preset, with keyword overrides (None values are ignored)."""
    if name not in PRESETS:
        raise ConfigError(f"arch: unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    kw: dict[str, Any] = {"arch": name, **PRESETS[name]}
    kw.update({k: v for k, v in overrides.items() if v is not None})
    return GanConfig(**kw).validate()
