"""DOPING: oversampling the tail of an adversarial autoencoder's latent space (Lim et al.,
ICDM 2018), and the baselines it is compared with.

The recipe (``docs/detectors.md``, "One-class detectors"; the paper itself, arXiv 1808.07632,
could not be read here, so the details below are this module's documented choices):

1. An MLP adversarial autoencoder (Makhzani et al. 2016) on standardised feature vectors:
   encoder ``F -> h -> h -> d`` (ReLU), decoder ``d -> h -> h -> F`` (linear output), latent
   discriminator ``d -> h -> h -> 1``; prior ``N(0, I)``. Each minibatch step runs the
   reconstruction phase (encoder + decoder on the mean squared error), then the regularisation
   phase (discriminator on prior samples vs codes, then the encoder to fool it). Adam, a fixed
   number of steps (not epochs), so the cost does not grow with N.
2. Edge codes: the ``ceil(q * N)`` codes with the largest Euclidean norm (the Mahalanobis
   distance under the prior), ties broken by row order (`edge_indices`).
3. New codes: a random edge code, one of its ``k`` nearest edge neighbours, a uniform
   interpolation weight, plus Gaussian jitter; a code that falls inside the tail radius (the
   smallest edge norm) is pushed out radially onto it, so every new code is in the tail and
   the count is exactly ``round(ratio * N)``.
4. Decoded, un-standardised, and returned for the caller to add to the training set. No
   reconstruction-error filter (the recipe marks it optional).

Baselines (`METHODS`): ``none`` (the training set as is, the same array object), ``prior``
(codes drawn from the whole prior ``N(0, I)``, decoded by the same AAE) and ``smote``
(input-space SMOTE over all training vectors: a random vector, one of its ``k`` nearest
neighbours, a uniform interpolation weight; a small hand implementation, because
imbalanced-learn's SMOTE balances two classes, while this oversamples one class by a ratio).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ganforensics.errors import ConfigError, InputError
from ganforensics.seeding import DEFAULT_SEED, derive_seed

METHODS = ("none", "doping", "prior", "smote")
"""Training-set augmentations: none, DOPING (latent tail), whole-prior sampling, input SMOTE."""
DEFAULT_RATIO = 0.5
DEFAULT_EDGE_QUANTILE = 0.1


@dataclass(frozen=True)
class AAEConfig:
    """The adversarial autoencoder and the edge sampler (defaults: this module's choices)."""

    latent_dim: int = 4
    """Latent size d (capped at the feature count)."""
    hidden: int = 64
    """Units of each of the two hidden layers of encoder, decoder and discriminator."""
    steps: int = 600
    """Minibatch steps (each: one reconstruction and one regularisation phase)."""
    batch_size: int = 64
    lr: float = 1e-3
    """Adam learning rate of all three nets (betas 0.5, 0.9)."""
    k: int = 5
    """Nearest edge neighbours an interpolation partner is drawn from (SMOTE: neighbours)."""
    jitter: float = 0.05
    """Standard deviation of the Gaussian noise added to each new code."""

    def check(self) -> AAEConfig:
        for name in ("latent_dim", "hidden", "steps", "batch_size", "k"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"AAE {name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0 or self.jitter < 0:
            raise ConfigError(f"AAE lr must be > 0 and jitter >= 0 (got {self.lr}, {self.jitter})")
        return self


def check_options(method: str, ratio: float, edge_quantile: float) -> None:
    """`ConfigError` for an unknown method or a ratio / quantile out of range."""
    if method not in METHODS:
        raise ConfigError(f"unknown oversampling {method!r} (choose from {', '.join(METHODS)})")
    if not (ratio >= 0 and math.isfinite(ratio)):
        raise ConfigError(f"--doping ratio must be >= 0, got {ratio}")
    if not 0.0 < edge_quantile <= 1.0:
        raise ConfigError(f"--edge-quantile must be in (0, 1], got {edge_quantile}")


def n_generated(ratio: float, n: int) -> int:
    """How many vectors an augmentation adds to N training vectors: ``round(ratio * N)``."""
    return int(round(float(ratio) * int(n)))


def edge_indices(codes: np.ndarray, quantile: float) -> np.ndarray:
    """Rows of the ``ceil(quantile * N)`` codes with the largest Euclidean norm, largest
    first (ties by row order)."""
    codes = np.asarray(codes, dtype=np.float64)
    if codes.ndim != 2 or len(codes) == 0:
        raise InputError(f"codes must be a non-empty (N, d) array, got {codes.shape}")
    if not 0.0 < quantile <= 1.0:
        raise ConfigError(f"edge quantile must be in (0, 1], got {quantile}")
    n_edge = min(len(codes), max(1, math.ceil(quantile * len(codes) - 1e-9)))
    order = np.argsort(-np.linalg.norm(codes, axis=1), kind="stable")
    return order[:n_edge]


def _neighbour_pairs(points: np.ndarray, n_new: int, k: int, rng: np.random.Generator
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For `n_new` draws: a random row, one of its k nearest other rows (itself when there is
    none) and an interpolation weight in [0, 1) (drawn in that order)."""
    n = len(points)
    base = rng.integers(0, n, size=n_new)
    k_eff = min(int(k), n - 1)
    if k_eff > 0:
        dist = np.linalg.norm(points[:, None, :] - points[None, :, :], axis=2)
        np.fill_diagonal(dist, np.inf)
        neigh = np.argsort(dist, axis=1, kind="stable")[:, :k_eff]
        partner = neigh[base, rng.integers(0, k_eff, size=n_new)]
    else:
        partner = base
    return base, partner, rng.uniform(0.0, 1.0, size=(n_new, 1))


def edge_codes(edge: np.ndarray, n_new: int, *, k: int, jitter: float,
               rng: np.random.Generator) -> np.ndarray:
    """`n_new` codes among the edge codes: interpolation towards one of the k nearest edge
    neighbours, plus jitter, pushed out radially to the tail radius when inside it."""
    edge = np.asarray(edge, dtype=np.float64)
    m, d = edge.shape
    radius = float(np.linalg.norm(edge, axis=1).min())
    base, partner, lam = _neighbour_pairs(edge, n_new, k, rng)
    z = edge[base] + lam * (edge[partner] - edge[base]) + rng.normal(0.0, jitter, (n_new, d))
    norm = np.linalg.norm(z, axis=1, keepdims=True)
    inside = norm[:, 0] < radius
    if inside.any():
        safe = np.where(norm[inside] > 0, norm[inside], 1.0)
        z[inside] = np.where(norm[inside] > 0, z[inside] * (radius / safe), radius / math.sqrt(d))
    return z


def smote(x: np.ndarray, n_new: int, *, k: int, rng: np.random.Generator) -> np.ndarray:
    """Input-space SMOTE over all rows of `x` (standardised distances)."""
    x = np.asarray(x, dtype=np.float64)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    z = (x - mean) / np.where(scale > 0, scale, 1.0)
    base, partner, lam = _neighbour_pairs(z, n_new, k, rng)
    return x[base] + lam * (x[partner] - x[base])


class AAE:
    """A fitted MLP adversarial autoencoder on standardised features (`fit_aae`)."""

    def __init__(self, encoder: Any, decoder: Any, mean: np.ndarray, scale: np.ndarray,
                 losses: dict[str, float]) -> None:
        self.encoder, self.decoder = encoder, decoder
        self.mean, self.scale = mean, scale
        self.losses = losses

    def encode(self, x: np.ndarray) -> np.ndarray:
        import torch

        z = (np.asarray(x, dtype=np.float64) - self.mean) / self.scale
        with torch.no_grad():
            return self.encoder(torch.as_tensor(z, dtype=torch.float32)).double().numpy()

    def decode(self, codes: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            out = self.decoder(torch.as_tensor(np.asarray(codes), dtype=torch.float32))
        return out.double().numpy() * self.scale + self.mean


def _mlp(sizes: list[int]) -> Any:
    from torch import nn

    layers: list[Any] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def fit_aae(x: np.ndarray, cfg: AAEConfig | None = None, *, seed: int = DEFAULT_SEED) -> AAE:
    """Train the AAE on feature vectors `x` (N, F): alternating reconstruction and
    regularisation phases per minibatch; reproducible for a seed (one CPU thread)."""
    import torch
    from torch import nn

    cfg = (cfg or AAEConfig()).check()
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2 or not np.isfinite(x).all():
        raise InputError(f"AAE needs at least 2 finite feature vectors (N, F), got {x.shape}")
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    data = torch.as_tensor((x - mean) / scale, dtype=torch.float32)
    n, f = data.shape
    d = max(1, min(int(cfg.latent_dim), f))
    h = int(cfg.hidden)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "aae") % 2**63)
        gen = torch.Generator().manual_seed(derive_seed(seed, "aae-batches") % 2**63)
        enc, dec, disc = _mlp([f, h, h, d]), _mlp([d, h, h, f]), _mlp([d, h, h, 1])
        betas = (0.5, 0.9)
        opt_ae = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=cfg.lr, betas=betas)
        opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.lr, betas=betas)
        opt_g = torch.optim.Adam(enc.parameters(), lr=cfg.lr, betas=betas)
        bce = nn.BCEWithLogitsLoss()
        bs = min(int(cfg.batch_size), n)
        ones, zeros = torch.ones(bs, 1), torch.zeros(bs, 1)
        rec = d_loss = g_loss = torch.zeros(())
        for _ in range(int(cfg.steps)):
            xb = data[torch.randperm(n, generator=gen)[:bs]]
            # reconstruction phase
            rec = ((dec(enc(xb)) - xb) ** 2).mean()
            opt_ae.zero_grad()
            rec.backward()
            opt_ae.step()
            # regularisation phase: the discriminator, then the encoder as its generator
            prior = torch.randn(bs, d, generator=gen)
            d_loss = bce(disc(prior), ones) + bce(disc(enc(xb).detach()), zeros)
            opt_d.zero_grad()
            d_loss.backward()
            opt_d.step()
            g_loss = bce(disc(enc(xb)), ones)
            opt_g.zero_grad()
            g_loss.backward()
            opt_g.step()
    enc.eval()
    dec.eval()
    losses = {"reconstruction": rec.item(), "discriminator": d_loss.item(),
              "encoder_adversarial": g_loss.item()}
    return AAE(enc, dec, mean, scale, losses)


def augment(x: np.ndarray, method: str = "doping", ratio: float = DEFAULT_RATIO, *,
            edge_quantile: float = DEFAULT_EDGE_QUANTILE, cfg: AAEConfig | None = None,
            seed: int = DEFAULT_SEED, fitted: AAE | None = None,
            ) -> tuple[np.ndarray, dict[str, Any]]:
    """The training vectors `x` plus ``round(ratio * N)`` synthetic ones from `method`.

    ``none`` or a ratio giving 0 new vectors returns `x` itself (the baseline, untouched) and
    an info dict saying so. Otherwise returns ``concatenate([x, new])`` and what was done
    (counts, edge radius, AAE losses, the settings). `fitted`: an AAE already fitted on `x`
    with `cfg` and `seed` (`fit_aae`), reused instead of training another.
    """
    check_options(method, ratio, edge_quantile)
    cfg = (cfg or AAEConfig()).check()
    x = np.asarray(x, dtype=np.float64)
    n_new = n_generated(ratio, len(x)) if method != "none" else 0
    info: dict[str, Any] = {"method": method, "ratio": float(ratio), "n_original": len(x),
                            "n_generated": n_new}
    if n_new == 0:
        return x, info
    rng = np.random.default_rng(derive_seed(seed, "oversample", method))
    if method == "smote":
        new = smote(x, n_new, k=cfg.k, rng=rng)
        info |= {"k": cfg.k}
    else:
        aae = fitted if fitted is not None else fit_aae(x, cfg, seed=seed)
        codes = aae.encode(x)
        if method == "doping":
            edge = edge_indices(codes, edge_quantile)
            z = edge_codes(codes[edge], n_new, k=cfg.k, jitter=cfg.jitter, rng=rng)
            info |= {"edge_quantile": float(edge_quantile), "n_edge": len(edge),
                     "tail_radius": float(np.linalg.norm(codes[edge], axis=1).min())}
        else:  # prior
            z = rng.standard_normal((n_new, codes.shape[1]))
        new = aae.decode(z)
        info |= {"aae": asdict(cfg) | {"latent_dim": int(codes.shape[1])},
                 "aae_final_losses": aae.losses}
    if not np.isfinite(new).all():
        raise InputError(f"{method}: generated vectors are not finite")
    return np.concatenate([x, new], axis=0), info
