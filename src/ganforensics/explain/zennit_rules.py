"""The zennit side of LRP (DESIGN B6): the exact BatchNorm merge, canonizers and the composite.

Imported only when relevance is computed (`lrp.conv_relevance`): zennit pulls in torchvision's
model zoo, which takes seconds to import.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck
from zennit.canonizers import CompositeCanonizer, SequentialMergeBatchNorm
from zennit.composites import SpecialFirstLayerMapComposite, layer_map_base
from zennit.rules import Epsilon, ZBox, ZPlus
from zennit.torchvision import ResNetBasicBlockCanonizer, ResNetBottleneckCanonizer
from zennit.types import Convolution

from ganforensics.explain.lrp import EPSILON, first_layer_bounds


class ExactMergeBatchNorm(SequentialMergeBatchNorm):
    """zennit's `SequentialMergeBatchNorm` whose left-over identity BatchNorm is exact.

    zennit turns a merged BatchNorm into mean 0, var 1, weight 1, bias 0 but keeps its `eps`, so
    it still divides by sqrt(1 + eps) (a 5e-6 relative shrink per BatchNorm). Here `eps` is set
    to 0 while merged (and restored with the parameters), so the canonized network computes the
    same logit as the original.
    """

    def register(self, linears: Any, batch_norm: nn.Module) -> None:
        self._eps = batch_norm.eps
        super().register(linears, batch_norm)
        batch_norm.eps = 0.0

    def remove(self) -> None:
        super().remove()
        self.batch_norm.eps = self._eps


def resnet_canonizer() -> CompositeCanonizer:
    """zennit's ResNetCanonizer with the exact BatchNorm merge."""
    return CompositeCanonizer(
        (ExactMergeBatchNorm(), ResNetBottleneckCanonizer(), ResNetBasicBlockCanonizer())
    )


def _is_torchvision_resnet(model: nn.Module) -> bool:
    return any(isinstance(m, (BasicBlock, Bottleneck)) for m in model.modules())


def lrp_composite(
    model: nn.Module, mean: Sequence[float], std: Sequence[float]
) -> SpecialFirstLayerMapComposite:
    """The zennit composite of DESIGN B6 for `model` (canonizers chosen by architecture)."""
    low, high = first_layer_bounds(model, mean, std)
    dtype = next(model.parameters()).dtype
    low, high = low.to(dtype), high.to(dtype)
    layer_map = layer_map_base(EPSILON) + [
        (Convolution, ZPlus(stabilizer=EPSILON)),
        (nn.Linear, Epsilon(epsilon=EPSILON)),
    ]
    first_map = [(Convolution, ZBox(low=low, high=high, stabilizer=EPSILON))]
    canon = [resnet_canonizer()] if _is_torchvision_resnet(model) else [ExactMergeBatchNorm()]
    return SpecialFirstLayerMapComposite(
        layer_map=layer_map, first_map=first_map, canonizers=canon
    )
