"""LRP (beta = 0 composite): relevance conservation at conv outputs, support checks.

Conservation the rule implies: with ZPlus / pass-through ReLU / winner-take-all max pooling /
Norm (epsilon) pooling / Epsilon linear, the relevance summed over a layer that every path
crosses equals the explained logit. Biases break this: ZPlus puts the positive part of a bias in
its denominator (a bias "absorbs" relevance). The test networks are therefore bias-free and their
BatchNorms have zero running mean and zero shift (so the folded conv biases are zero too); the only
remaining loss comes from the 1e-6 epsilon / stabilisers (each epsilon stage shifts the sum by about
1e-6 x sum |weights| absolute), hence rtol = atol = 1e-5 in float64 with logits of order 1.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torchvision.models import resnet18, resnet50

from explain_toy import small_cnn
from ganforensics.detectors.cnn.residual_nets import Residual
from ganforensics.errors import UnsupportedModelError
from ganforensics.explain import Explainable, as_explainable, conv_relevance, default_k
from ganforensics.explain.adapter import conv_layers
from ganforensics.explain.lrp import check_lrp_supported, first_layer_bounds, input_bounds

RTOL = 1e-5
ATOL = 1e-5


pytestmark = pytest.mark.usefixtures("one_thread")


def _zero_shift_bn(model: nn.Module, seed: int = 0) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.zero_()
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.zero_()
    return model


def test_conservation_plain_cnn_every_conv():
    torch.manual_seed(0)
    model = _zero_shift_bn(small_cnn(widths=(6, 8, 10), bias=False)).double().eval()
    model[-1].weight.data *= 30  # logits of order 1, as for confidently detected fakes
    ex = Explainable(model=model)
    x = torch.randn(5, 3, 12, 12, dtype=torch.float64)
    logits, rel = conv_relevance(ex, x)
    # the canonized network (BatchNorm folded) computes the original logit
    torch.testing.assert_close(logits, model(x)[:, 0].detach(), rtol=1e-12, atol=1e-12)
    assert logits.abs().min() > 0.1
    assert set(rel) == set(conv_layers(model)) and len(rel) == 3
    for layer, r in rel.items():
        sums = r.sum(dim=(1, 2, 3))
        np.testing.assert_allclose(sums, logits, rtol=RTOL, atol=ATOL, err_msg=layer)


def test_conservation_behind_a_leading_residual():
    """A parameter-free residual before the first conv (small_npr, the NPR trunks) is accepted;
    relevance at every conv output still sums to the logit; the first conv's ZBox bounds are
    the residual's range."""
    torch.manual_seed(1)
    body = _zero_shift_bn(small_cnn(widths=(6, 8, 10), bias=False)).double()
    model = nn.Sequential(Residual("npr", 0.5), *body).eval()
    model[-1].weight.data *= 30
    x = torch.randn(4, 3, 12, 12, dtype=torch.float64)
    logits, rel = conv_relevance(Explainable(model=model), x)
    torch.testing.assert_close(logits, model(x)[:, 0].detach(), rtol=1e-12, atol=1e-12)
    assert logits.abs().min() > 0.1 and len(rel) == 3
    for layer, r in rel.items():
        np.testing.assert_allclose(r.sum(dim=(1, 2, 3)), logits, rtol=RTOL, atol=ATOL,
                                   err_msg=layer)
    low, high = first_layer_bounds(model, (0.5, 0.25, 0.0), (0.5, 0.25, 1.0))
    np.testing.assert_allclose(low.flatten(), [-1.0, -2.0, -0.5])
    np.testing.assert_allclose(high.flatten(), [1.0, 2.0, 0.5])
    # anywhere but in front it is an unsupported layer
    late = nn.Sequential(nn.Conv2d(3, 4, 3), Residual("npr"), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(4, 1))
    with pytest.raises(UnsupportedModelError, match="Residual"):
        check_lrp_supported(late)


def test_positive_biases_absorb_relevance():
    """The counter-case: with positive conv biases ZPlus loses relevance (sums < logit)."""
    torch.manual_seed(0)
    model = _zero_shift_bn(small_cnn(widths=(6, 8, 10), bias=True)).double().eval()
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            m.bias.data.fill_(0.5)
    model[-1].bias.data.zero_()
    # make the logit positive for every sample so "smaller" is unambiguous
    model[-1].weight.data.abs_()
    ex = Explainable(model=model)
    x = torch.randn(4, 3, 12, 12, dtype=torch.float64)
    logits, rel = conv_relevance(ex, x)
    first = rel[conv_layers(model)[0]].sum(dim=(1, 2, 3))
    assert torch.all(logits > 0)
    assert torch.all(first < logits * (1 - 1e-3))


def test_conservation_resnet_cuts_and_shortcuts():
    """ResNet-18: the stem conv and each down-sampling block (main conv + 1x1 shortcut conv)
    are cuts; their relevance sums equal the logit."""
    torch.manual_seed(1)
    model = _zero_shift_bn(resnet18(num_classes=1))
    model.fc.bias.data.zero_()
    model.fc.weight.data *= 30
    model = model.double().eval()
    ex = Explainable(model=model)
    x = torch.randn(3, 3, 32, 32, dtype=torch.float64)
    logits, rel = conv_relevance(ex, x)
    torch.testing.assert_close(logits, model(x)[:, 0].detach(), rtol=1e-12, atol=1e-12)
    assert len(rel) == 20  # 17 convs + 3 shortcut convs
    s = {k: v.sum(dim=(1, 2, 3)) for k, v in rel.items()}
    np.testing.assert_allclose(s["conv1"], logits, rtol=RTOL, atol=ATOL)
    for stage in ("layer2", "layer3", "layer4"):
        total = s[f"{stage}.0.conv2"] + s[f"{stage}.0.downsample.0"]
        np.testing.assert_allclose(total, logits, rtol=RTOL, atol=ATOL, err_msg=stage)
    # the original model is untouched (BatchNorm folding happens on a copy)
    assert model.conv1.bias is None and model.bn1.running_var.min() >= 0.5


def test_resnet50_map_count_and_default_k():
    model = resnet50(num_classes=1)
    n_maps = sum(model.get_submodule(n).out_channels for n in conv_layers(model))
    assert n_maps == 26560  # DESIGN B6: all conv maps incl. shortcut convs
    assert default_k(n_maps) == 114
    assert default_k(40) == 1 and default_k(480) == 2


def test_input_bounds_are_normalised_pixel_range():
    low, high = input_bounds((0.5, 0.25, 0.0), (0.5, 0.25, 1.0))
    np.testing.assert_allclose(low.flatten(), [-1.0, -1.0, 0.0])
    np.testing.assert_allclose(high.flatten(), [1.0, 3.0, 1.0])


def test_unsupported_models():
    class Spectral:
        kind = "spectral-profile"

    with pytest.raises(UnsupportedModelError, match="spectral-profile"):
        as_explainable(Spectral())
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(12, 1))
    with pytest.raises(UnsupportedModelError, match="no Conv2d"):
        as_explainable(Explainable(model=mlp))
    odd = nn.Sequential(nn.Conv2d(3, 4, 3), nn.GELU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(4, 1))
    with pytest.raises(UnsupportedModelError, match="GELU"):
        check_lrp_supported(odd)
    pre_act = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.BatchNorm2d(4), nn.Conv2d(4, 4, 3),
                            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 1))
    with pytest.raises(UnsupportedModelError, match="does not directly follow a conv"):
        check_lrp_supported(pre_act)
