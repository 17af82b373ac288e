"""Auxiliary GAN training objectives of the source papers, added to the plain GAN losses.

- `infomax` (Lee, Tran, Cheung, WACV 2021): InfoNCE between D's local feature vectors and its
  global vector of the same image; D on reals (weight `beta`), G on fakes (weight `alpha`).
- `ss` (Chen et al. 2019): a 4-way rotation classifier on D's global features, trained on
  rotated reals (`d`); G is rewarded when its rotated samples are classified (`g`).
- `ms` (Tran et al., NeurIPS 2019): the multi-class minimax version: a 5th class "fake" for D's
  classifier; G matches the rotation cross-entropy of the reals.
- `dag` (Tran et al., IEEE TIP 2021): one extra real/fake head per invertible transform of a
  policy (`rotation`, `fliprot`, `cropping`), each trained on transformed reals and fakes.
- `gn` (Tran, Bui, Cheung, AAAI 2019; re-implemented from the abstract, official code not
  released): a neighbour-embedding regulariser on G (`ne`) and gradient matching of D's scores
  and input gradients between reals and fakes (`gm`).

`DEFAULTS` is the one table of their weights (docs/gan.md, "Training objectives"). Rotations and
flips are exact tensor permutations (`torch.rot90`, `torch.flip`): nothing is resampled, except
the `cropping` policy's corner crops (nearest-neighbour resize, as the DAG code does).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ganforensics.errors import ConfigError
from ganforensics.gan.losses import d_loss, g_loss
from ganforensics.gan.nets import Features

OBJECTIVES = ("infomax", "ss", "ms", "dag", "gn")
DEFAULTS: dict[str, dict[str, Any]] = {
    "infomax": {"alpha": 0.2, "beta": 0.2, "rkhs_dim": 256},
    "ss": {"d": 1.0, "g": 0.2},
    "ms": {"d": 1.0, "g": 0.1},
    "dag": {"weight": 0.2, "policies": "rotation"},
    "gn": {"ne": 1.0, "gm": 1.0},
}
"""Per objective, its parameters and their defaults (the papers' values where published:
InfoMax alpha = beta = 0.2; SSGAN D 1.0 / G 0.2; MS D 1.0 / G 0.1 (DCGAN nets); DAG weight 0.2,
rotation policy; GN-GAN's weights are not published: 1.0 is our choice). `rkhs_dim` is 1024 in
InfoMax-GAN; 256 here for the small CPU nets."""
EXCLUSIVE = (("ss", "ms"),)
"""Pairs that cannot be combined (both own D's rotation classifier)."""
NCE_SELF_SCORE = -10.0
"""InfoMax: score given to the positions of the anchor image itself in the negatives."""
PNORM_EPS = 1e-12


def _rot(x: torch.Tensor, k: int) -> torch.Tensor:
    return torch.rot90(x, k, dims=(2, 3))


def _corner_crop(x: torch.Tensor, corner: int) -> torch.Tensor:
    """A 75 % x 75 % corner crop, resized back to the input size (nearest)."""
    h, w = x.shape[2], x.shape[3]
    ch, cw = (3 * h) // 4, (3 * w) // 4
    y0 = 0 if corner in (0, 1) else h - ch
    x0 = 0 if corner in (0, 2) else w - cw
    crop = x[:, :, y0:y0 + ch, x0:x0 + cw]
    return F.interpolate(crop, size=(h, w), mode="nearest")


def _transform(fn: Callable[..., torch.Tensor], *args: int) -> Callable[[torch.Tensor],
                                                                           torch.Tensor]:
    return lambda x: fn(x, *args)


POLICIES: dict[str, tuple[Callable[[torch.Tensor], torch.Tensor], ...]] = {
    "rotation": tuple(_transform(_rot, k) for k in range(4)),
    "fliprot": (lambda x: x, lambda x: torch.flip(x, dims=(2,)),
                lambda x: torch.flip(x, dims=(3,)), _transform(_rot, 1)),
    "cropping": (lambda x: x, *(_transform(_corner_crop, c) for c in range(4))),
}
"""DAG augmentation policies: the transforms T_k, one extra D head each (the identity of a
policy gets its own head too, distinct from D's original head)."""


# ---------------------------------------------------------------------------- configuration


def resolve(objectives: Sequence[str], params: Mapping[str, Any] | None = None
            ) -> dict[str, dict[str, Any]]:
    """Objective names + overrides (`{"infomax.alpha": 0.1}` or `{"infomax": {"alpha": 0.1}}`)
    -> `{name: {param: value}}` with every default filled in; ConfigError names the bad key."""
    names = [str(o).strip().lower() for o in objectives]
    for n in names:
        if n not in OBJECTIVES:
            raise ConfigError(f"objective: {n!r} is not one of {', '.join(OBJECTIVES)}")
    if len(set(names)) != len(names):
        raise ConfigError(f"objective: repeated in {', '.join(names)}")
    for a, b in EXCLUSIVE:
        if a in names and b in names:
            raise ConfigError(f"objective: {a} and {b} cannot be combined (both own D's "
                              "rotation classifier)")
    out = {n: dict(DEFAULTS[n]) for n in names}
    for key, value in _flat(params or {}).items():
        obj, _, field = key.partition(".")
        if obj not in out:
            raise ConfigError(f"objective_params: {key!r} sets objective {obj!r}, which is not "
                              f"enabled (enabled: {', '.join(names) or 'none'})")
        if field not in DEFAULTS[obj]:
            raise ConfigError(f"objective_params: {key!r}: {obj} has no parameter {field!r} "
                              f"(known: {', '.join(DEFAULTS[obj])})")
        out[obj][field] = value
    for obj, p in out.items():
        for field, value in p.items():
            if field == "policies":
                p[field] = _policies(value)
            elif field == "rkhs_dim":
                p[field] = _positive_int(value, f"{obj}.{field}")
            else:
                p[field] = _weight(value, f"{obj}.{field}")
    return out


def parse_params(items: Sequence[str]) -> dict[str, str]:
    """`["infomax.alpha=0.1", "dag.policies=rotation,cropping"]` -> a dict of overrides for
    `resolve` (values stay strings until then); ConfigError names a malformed item."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or "." not in key or not value.strip():
            raise ConfigError(f"--objective-param {item!r}: expected OBJECTIVE.PARAM=VALUE, e.g. "
                              "infomax.alpha=0.1")
        out[key.strip()] = value.strip()
    return out


def _flat(params: Mapping[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for k, v in params.items():
        if isinstance(v, Mapping):
            flat.update({f"{k}.{kk}": vv for kk, vv in v.items()})
        else:
            flat[str(k)] = v
    return flat


def _weight(value: Any, key: str) -> float:
    try:
        w = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"objective_params: {key} must be a number, got {value!r}") from None
    if not (w >= 0 and math.isfinite(w)):
        raise ConfigError(f"objective_params: {key} must be a finite number >= 0, got {value!r}")
    return w


def _positive_int(value: Any, key: str) -> int:
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"objective_params: {key} must be an integer, got {value!r}") from None
    if n < 1:
        raise ConfigError(f"objective_params: {key} must be >= 1, got {value!r}")
    return n


def _policies(value: Any) -> str:
    items = value.split(",") if isinstance(value, str) else list(value)
    names = [str(p).strip().lower() for p in items if str(p).strip()]
    if not names:
        raise ConfigError("objective_params: dag.policies must name at least one policy")
    for p in names:
        if p not in POLICIES:
            raise ConfigError(f"objective_params: dag.policies: {p!r} is not one of "
                              f"{', '.join(POLICIES)}")
    if len(set(names)) != len(names):
        raise ConfigError(f"objective_params: dag.policies repeats a policy: {value!r}")
    return ",".join(names)


# ---------------------------------------------------------------------------- the losses


def infonce(local: torch.Tensor, global_: torch.Tensor) -> torch.Tensor:
    """InfoMax-GAN's InfoNCE: local (N, R, L) projected local features, global (N, R).

    For image i and position j the positive is <g_i, l_ij>; the negatives are <g_i, l_bk> for
    every other image b and every position k; the anchor's own L positions count with score
    `NCE_SELF_SCORE` each. Returns the mean over i, j of -log softmax(positive). With all
    features zero this is log(1 + (N - 1) L + L e^-10).
    """
    n, _, length = local.shape
    scores = torch.einsum("ir,brk->ibk", global_, local)  # (N, N, L)
    pos = scores.diagonal(dim1=0, dim2=1).transpose(0, 1)  # (N, L): <g_i, l_ij>
    self_mask = torch.eye(n, dtype=torch.bool, device=local.device)[:, :, None]
    masked = scores.masked_fill(self_mask, NCE_SELF_SCORE)
    lse = torch.logsumexp(masked.reshape(n, n * length), dim=1)  # (N,)
    return (torch.logaddexp(pos, lse[:, None]) - pos).mean()


def rotation_batch(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch cut into quarters, quarter q rotated by q x 90 degrees (exact); labels q."""
    n = x.shape[0]
    labels = (torch.arange(n, device=x.device) * 4) // n
    rotated = torch.cat([_rot(x[labels == q], q) for q in range(4)], dim=0)
    return rotated, labels


def ms_d_loss(logits_rot_real: torch.Tensor, labels: torch.Tensor,
              logits_fake: torch.Tensor) -> torch.Tensor:
    """The MS task's D term: 5-way cross-entropy, rotated reals (their rotation) and unrotated
    fakes (class 4) weighted 4/5 and 1/5 (the expected mix of the reference code's random
    subset of n of 4n rotated reals + n fakes). Uniform logits give log 5."""
    fake_labels = torch.full((logits_fake.shape[0],), 4, dtype=torch.long,
                             device=logits_fake.device)
    return 0.8 * F.cross_entropy(logits_rot_real, labels) + 0.2 * F.cross_entropy(
        logits_fake, fake_labels)


def student_t_affinities(x: torch.Tensor) -> torch.Tensor:
    """Joint Student-t affinities of the rows of x (N, D): p_ij proportional to
    1 / (1 + d_ij^2 / mean_{k!=l} d_kl^2), zero diagonal, summing to 1. The mean squared
    distance as the scale makes them invariant to scaling x (our choice; GN-GAN's is not
    published)."""
    n = x.shape[0]
    d2 = torch.cdist(x, x).pow(2)
    off = ~torch.eye(n, dtype=torch.bool, device=x.device)
    scale = d2[off].mean().clamp_min(PNORM_EPS)
    k = (1.0 + d2 / scale).reciprocal() * off
    return k / k.sum()


def neighbour_embedding(z: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """GN-GAN's neighbour-embedding term KL(P || Q): P the latents' affinities (constant), Q
    those of the flattened fakes. >= 0; zero when the fakes keep the latents' neighbourhoods."""
    p = student_t_affinities(z.detach().flatten(1))
    q = student_t_affinities(fake.flatten(1))
    off = ~torch.eye(p.shape[0], dtype=torch.bool, device=p.device)
    p, q = p[off], q[off]
    return (p * (torch.log(p + PNORM_EPS) - torch.log(q + PNORM_EPS))).sum()


# ---------------------------------------------------------------------------- D's extra heads


class _Residual(nn.Module):
    """InfoMax's projection: SN(1x1 conv or linear) -> ReLU -> SN(...) plus an SN shortcut."""

    def __init__(self, c_in: int, c_out: int, conv: bool):
        super().__init__()

        def layer(a: int, b: int) -> nn.Module:
            m = nn.Conv2d(a, b, 1) if conv else nn.Linear(a, b)
            nn.init.xavier_uniform_(m.weight, gain=1.0)
            nn.init.zeros_(m.bias)
            return spectral_norm(m)

        self.block = nn.Sequential(layer(c_in, c_in), nn.ReLU(), layer(c_in, c_out))
        self.shortcut = layer(c_in, c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x) + self.shortcut(x)


class ObjectiveHeads(nn.Module):
    """The extra D heads the objectives need, beside D (trained with D's optimiser; saved as
    `H` in the checkpoints): InfoMax projections, the rotation classifier (4 or 5 classes),
    the DAG real/fake heads (each like D's own last conv)."""

    def __init__(self, disc: nn.Module, params: Mapping[str, Mapping[str, Any]]):
        super().__init__()
        c_local, c_global = disc.local_channels, disc.global_channels
        if "infomax" in params:
            r = int(params["infomax"]["rkhs_dim"])
            self.psi_local = _Residual(c_local, r, conv=True)
            self.psi_global = _Residual(c_global, r, conv=False)
        if "ss" in params or "ms" in params:
            self.classifier = nn.Linear(c_global, 4 if "ss" in params else 5)
        if "dag" in params:
            n = sum(len(POLICIES[p]) for p in params["dag"]["policies"].split(","))
            final = disc.final
            self.dag = nn.ModuleList(
                nn.Conv2d(final.in_channels, 1, final.kernel_size, final.stride, final.padding)
                for _ in range(n))
            for head in self.dag:
                nn.init.normal_(head.weight, 0.0, 0.02)
                nn.init.zeros_(head.bias)


# ---------------------------------------------------------------------------- the objective set


class ObjectiveSet:
    """The enabled objectives of a run: their extra D and G terms (each already weighted)."""

    def __init__(self, params: Mapping[str, Mapping[str, Any]], loss: str):
        self.params = {k: dict(v) for k, v in params.items()}
        self.loss = loss
        self.transforms: list[Callable[[torch.Tensor], torch.Tensor]] = []
        self.policy_sizes: list[int] = []
        if "dag" in self.params:
            for p in self.params["dag"]["policies"].split(","):
                self.transforms += POLICIES[p]
                self.policy_sizes.append(len(POLICIES[p]))

    @property
    def names(self) -> list[str]:
        return list(self.params)

    @property
    def columns(self) -> list[str]:
        """losses.csv columns of the weighted terms: `<objective>_d`, `<objective>_g`."""
        return [f"{n}_{side}" for n in self.params for side in ("d", "g")]

    def _dag_logits(self, disc: nn.Module, heads: ObjectiveHeads, x: torch.Tensor
                    ) -> list[torch.Tensor]:
        """Every DAG head's logits on its own transform of x (one D pass for all)."""
        n = x.shape[0]
        batch = torch.cat([t(x) for t in self.transforms], dim=0)
        final = disc(batch, features=True).final
        return [heads.dag[k](final[k * n:(k + 1) * n]).view(-1)
                for k in range(len(self.transforms))]

    def _dag_mean(self, values: list[torch.Tensor]) -> torch.Tensor:
        total, i = values[0].new_zeros(()), 0
        for size in self.policy_sizes:
            total = total + torch.stack(values[i:i + size]).mean()
            i += size
        return total

    def d_terms(self, disc: nn.Module, heads: ObjectiveHeads, real: torch.Tensor,
                fake: torch.Tensor, f_real: Features, f_fake: Features
                ) -> dict[str, torch.Tensor]:
        """The weighted D-side terms (fake is detached)."""
        out: dict[str, torch.Tensor] = {}
        p = self.params
        if "infomax" in p:
            out["infomax"] = p["infomax"]["beta"] * self._nce(heads, f_real)
        if "ss" in p or "ms" in p:
            rot, labels = rotation_batch(real)
            logits = heads.classifier(disc(rot, features=True).global_)
            if "ss" in p:
                out["ss"] = p["ss"]["d"] * F.cross_entropy(logits, labels)
            else:
                out["ms"] = p["ms"]["d"] * ms_d_loss(logits, labels,
                                                     heads.classifier(f_fake.global_))
        if "dag" in p:
            lr, lf = self._dag_logits(disc, heads, real), self._dag_logits(disc, heads, fake)
            out["dag"] = p["dag"]["weight"] * self._dag_mean(
                [d_loss(self.loss, a, b) for a, b in zip(lr, lf, strict=True)])
        return out  # gn acts on G only: D keeps its own loss (and penalty)

    def g_terms(self, disc: nn.Module, heads: ObjectiveHeads, z: torch.Tensor,
                fake: torch.Tensor, f_fake: Features, real: torch.Tensor
                ) -> dict[str, torch.Tensor]:
        """The weighted G-side terms (gradients flow through D and the heads into G)."""
        out: dict[str, torch.Tensor] = {}
        p = self.params
        if "infomax" in p:
            out["infomax"] = p["infomax"]["alpha"] * self._nce(heads, f_fake)
        if "ss" in p or "ms" in p:
            rot, labels = rotation_batch(fake)
            ce_fake = F.cross_entropy(heads.classifier(disc(rot, features=True).global_),
                                      labels)
            if "ss" in p:
                out["ss"] = p["ss"]["g"] * ce_fake
            else:
                with torch.no_grad():
                    rot_r, labels_r = rotation_batch(real)
                    ce_real = F.cross_entropy(
                        heads.classifier(disc(rot_r, features=True).global_), labels_r)
                out["ms"] = p["ms"]["g"] * (ce_fake - ce_real).abs()
        if "dag" in p:
            out["dag"] = p["dag"]["weight"] * self._dag_mean(
                [g_loss(self.loss, a) for a in self._dag_logits(disc, heads, fake)])
        if "gn" in p:
            out["gn"] = self._gn(disc, z, fake, f_fake, real)
        return out

    def _nce(self, heads: ObjectiveHeads, f: Features) -> torch.Tensor:
        local = heads.psi_local(f.local).flatten(2)  # (N, R, L)
        global_ = heads.psi_global(f.global_)  # (N, R)
        return infonce(local, global_)

    def _gn(self, disc: nn.Module, z: torch.Tensor, fake: torch.Tensor, f_fake: Features,
            real: torch.Tensor) -> torch.Tensor:
        p = self.params["gn"]
        total = fake.new_zeros(())
        if p["ne"] > 0:
            total = total + p["ne"] * neighbour_embedding(z, fake)
        if p["gm"] > 0:
            x_r = real.detach().requires_grad_(True)
            out_r = disc(x_r)
            (g_r,) = torch.autograd.grad(out_r.sum(), x_r)
            (g_f,) = torch.autograd.grad(f_fake.logits.sum(), fake, create_graph=True)
            n = fake.shape[0]
            score_gap = (torch.sigmoid(out_r.detach()).mean()
                         - torch.sigmoid(f_fake.logits).mean()).abs()
            grad_gap = (g_r.detach().sum(0) / n - g_f.sum(0) / n).pow(2).sum()
            total = total + p["gm"] * (score_gap + grad_gap)
        return total


def build(params: Mapping[str, Mapping[str, Any]], loss: str, disc: nn.Module
          ) -> tuple[ObjectiveSet, ObjectiveHeads] | None:
    """The objective set and D's extra heads of resolved `params` (None when empty)."""
    if not params:
        return None
    return ObjectiveSet(params, loss), ObjectiveHeads(disc, params)


