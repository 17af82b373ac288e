"""Layer-wise relevance propagation (LRP) with the beta = 0 rule, via zennit (DESIGN B6).

Rules: the first convolution gets the z^B (ZBox) rule with bounds of the normalised input
(low = (0 - mean) / std, high = (1 - mean) / std per channel); every other convolution gets
ZPlus (= alpha 1, beta 0); linear layers Epsilon(1e-6); residual sums and average pooling the
parameter-free epsilon rule (zennit `Norm`, stabiliser 1e-6); ReLU / BatchNorm pass relevance
through. BatchNorm is folded into the preceding convolution by canonizers (zennit's
`ResNetCanonizer` for torchvision ResNets, `SequentialMergeBatchNorm` otherwise; both leaving an
exact identity in place of the BatchNorm), so "the output of a conv" is the output of conv + BN.
Max pooling passes relevance to the winning input (its gradient).

A parameter-free input residual in front of the first conv (`detectors.cnn.residual_nets.Residual`:
`small_npr` and the NPR-trunk archs) is allowed: the first conv's ZBox bounds become those of the
residual (`first_layer_bounds`), and relevance at conv outputs never passes through it.

Relevance is read at the output of every Conv2d (shortcut 1x1 convs included) as the gradient
arriving there; zennit's hooks make that gradient the relevance, and the explained logit itself is
the relevance put in at the top.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from ganforensics.detectors.cnn.residual_nets import Residual
from ganforensics.errors import UnsupportedModelError
from ganforensics.explain.adapter import Explainable, conv_layers, model_device

EPSILON = 1e-6
"""Epsilon of the linear / sum / pooling rules and stabiliser of the others (DESIGN B6)."""

_SUPPORTED_LEAVES: tuple[type[nn.Module], ...] = (
    nn.Conv2d,
    nn.BatchNorm2d,
    nn.ReLU,
    nn.MaxPool2d,
    nn.AvgPool2d,
    nn.AdaptiveAvgPool2d,
    nn.Linear,
    nn.Flatten,
    nn.Dropout,
    nn.Identity,
)

Reducer = Callable[[torch.Tensor], Any]


def check_lrp_supported(model: nn.Module, name: str = "model") -> None:
    """Raise `UnsupportedModelError` unless every leaf module has an LRP rule here.

    Supported: torchvision ResNets and plain CNNs made of Conv2d / BatchNorm2d / ReLU / pooling /
    Linear / Flatten / Dropout modules (the forward must not add tensors outside modules), each
    optionally behind a parameter-free `Residual` as its first leaf.
    """
    if not conv_layers(model):
        raise UnsupportedModelError(f"{name}: no Conv2d layers, LRP feature relevance undefined")
    lead = leading_residual(model)
    bad = sorted(
        {
            type(m).__name__
            for m in model.modules()
            if not list(m.children()) and not isinstance(m, _SUPPORTED_LEAVES)
            and m is not lead
        }
    )
    if bad:
        raise UnsupportedModelError(
            f"{name}: LRP rules are defined for torchvision ResNets and plain Conv/BN/ReLU/pool/"
            f"Linear networks; this model has unsupported layers: {', '.join(bad)}"
        )
    leaves = [(n, m) for n, m in model.named_modules() if not list(m.children())]
    if lead is not None:
        leaves = leaves[1:]
    for (_, prev), (bn_name, mod) in zip(leaves, leaves[1:], strict=False):
        if isinstance(mod, nn.BatchNorm2d) and not isinstance(prev, nn.Conv2d):
            raise UnsupportedModelError(
                f"{name}: BatchNorm {bn_name!r} does not directly follow a conv, so it cannot be "
                "folded for LRP (pre-activation / DenseNet-style blocks are not supported)"
            )
    if leaves and isinstance(leaves[0][1], nn.BatchNorm2d):
        raise UnsupportedModelError(f"{name}: BatchNorm before the first conv cannot be folded")


def input_bounds(
    mean: Sequence[float], std: Sequence[float]
) -> tuple[torch.Tensor, torch.Tensor]:
    """(low, high) of the normalised input, shape (1, 3, 1, 1): pixel 0 and pixel 1 normalised."""
    m = torch.tensor(list(mean), dtype=torch.float64).view(1, -1, 1, 1)
    s = torch.tensor(list(std), dtype=torch.float64).view(1, -1, 1, 1)
    return (0.0 - m) / s, (1.0 - m) / s


def leading_residual(model: nn.Module) -> Residual | None:
    """The model's `Residual` input transform when it is its first leaf module, else None."""
    first = next((m for m in model.modules() if not list(m.children())), None)
    return first if isinstance(first, Residual) else None


def first_layer_bounds(
    model: nn.Module, mean: Sequence[float], std: Sequence[float]
) -> tuple[torch.Tensor, torch.Tensor]:
    """ZBox bounds of the first conv's input: the normalised input's (`input_bounds`), or for a
    leading residual `scale * (low - high, high - low)`, the range of `scale` times a difference
    of two pixels (NPR and the median residual) or of half of two pairs (Haar HH)."""
    low, high = input_bounds(mean, std)
    residual = leading_residual(model)
    if residual is None:
        return low, high
    return residual.scale * (low - high), residual.scale * (high - low)


def conv_relevance(
    ex: Explainable,
    x: torch.Tensor,
    layers: Sequence[str] | None = None,
    reduce: Reducer | None = None,
    model_copy: nn.Module | None = None,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """LRP relevance of the logit at the output of each conv layer for a preprocessed batch.

    Returns `(logits (N,), {layer: reduce(R)})` where `R` is the (N, C, H, W) relevance at that
    conv's output (detached) and `reduce` defaults to the identity. Pass `model_copy` (a deep
    copy of `ex.model`) to avoid copying the network for every batch.
    """
    model = model_copy if model_copy is not None else copy.deepcopy(ex.model)
    model.eval()
    check_lrp_supported(model, ex.name)
    names = list(layers) if layers is not None else conv_layers(model)
    modules = dict(model.named_modules())
    store: dict[str, Any] = {}
    handles = []

    def _hook_for(layer: str) -> Callable[..., None]:
        def fwd(_mod: nn.Module, _inp: Any, out: torch.Tensor) -> None:
            if out.requires_grad:
                out.register_hook(lambda g: store.__setitem__(
                    layer, (reduce or (lambda r: r))(g.detach())
                ))

        return fwd

    dtype = next(model.parameters()).dtype
    x = x.detach().to(device=model_device(model), dtype=dtype).clone().requires_grad_(True)
    # zennit (and through it torchvision's model zoo) takes ~2.5 s to import: only LRP pays it,
    # not every command that imports the explain package for its defaults
    from ganforensics.explain.zennit_rules import lrp_composite

    composite = lrp_composite(model, ex.norm_mean, ex.norm_std)
    try:
        for layer in names:
            handles.append(modules[layer].register_forward_hook(_hook_for(layer)))
        with composite.context(model) as modified:
            out = modified(x).reshape(x.shape[0], -1)
            if out.shape[1] != 1:
                raise UnsupportedModelError(
                    f"{ex.name}: {out.shape[1]} outputs per image, one logit expected"
                )
            (grad,) = torch.autograd.grad(out, x, grad_outputs=out.detach())
            del grad
    finally:
        for h in handles:
            h.remove()
    missing = [n for n in names if n not in store]
    if missing:
        raise UnsupportedModelError(
            f"{ex.name}: no relevance reached conv layer(s) {', '.join(missing[:5])}"
            " (unused in the forward pass?)"
        )
    return out[:, 0].detach(), {n: store[n] for n in names}
