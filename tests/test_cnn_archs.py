"""Every registry backbone builds offline with a one-logit head, and its declared feature layer
and head exist; the one uint8 -> normalised tensor."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ganforensics.detectors.cnn import ARCHS, CNNDetector, build_model
from ganforensics.detectors.cnn.archs import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    head_module,
    init_head_wang2020,
    normalised_tensor,
)
from ganforensics.errors import ConfigError, InputError
from ganforensics.explain import imagenet_preprocess

FAST = ["small", "small_npr", "resnet18", "resnet50", "densenet121", "efficientnet_b0", "npr",
        "npr_small", "ferretnet", "ferretnet_small", "safe", "safe_small"]
SLOW = {"xception": 71, "inception_resnet_v2": 75, "nasnet": 64}


def _check(arch: str, size: int) -> None:
    torch.manual_seed(0)
    model = build_model(arch).eval()
    feats = {}
    layer = model.get_submodule(ARCHS[arch].feature_layer)
    layer.register_forward_hook(lambda m, i, o: feats.setdefault("f", o))
    with torch.no_grad():
        y = model(torch.randn(2, 3, size, size))
    assert y.shape == (2, 1)
    assert torch.isfinite(y).all()
    assert feats["f"].ndim == 4 and feats["f"].shape[0] == 2  # a conv map for Grad-CAM
    assert head_module(model, arch).out_features == 1


def test_registry_lists_the_required_backbones():
    assert set(FAST) | set(SLOW) == set(ARCHS)


@pytest.mark.parametrize("arch", FAST)
def test_fast_archs_build_and_give_one_logit(arch):
    _check(arch, 64)


@pytest.mark.slow
@pytest.mark.parametrize("arch,size", sorted(SLOW.items()))
def test_big_timm_archs_build_and_give_one_logit(arch, size):
    _check(arch, size)


def test_small_cnn_uses_only_plain_modules():
    allowed = (nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.MaxPool2d, nn.AdaptiveAvgPool2d, nn.Linear,
               nn.Sequential)
    model = build_model("small")
    leaf_types = {type(m) for m in model.modules() if m is not model}
    assert all(issubclass(t, allowed) for t in leaf_types), leaf_types
    # works at 32 and 64 px
    assert model.eval()(torch.zeros(1, 3, 32, 32)).shape == (1, 1)


def test_wang_head_init_is_normal_002():
    model = build_model("resnet50")
    torch.manual_seed(3)
    init_head_wang2020(model, "resnet50")
    w = model.fc.weight.detach()
    assert w.shape == (1, 2048)
    assert abs(float(w.std()) - 0.02) < 0.002 and float(model.fc.bias.detach().abs().max()) == 0.0


def test_weights_file_roundtrip_and_mismatch(tmp_path):
    from safetensors.torch import save_file

    a = build_model("small")
    p = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in a.state_dict().items()}, str(p))
    b = build_model("small", p)
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(a.eval()(x), b.eval()(x))
    with pytest.raises(InputError, match="do not fit"):
        build_model("resnet18", p)
    with pytest.raises(ConfigError, match="unknown architecture"):
        build_model("vgg99")



def test_one_normalisation_matches_the_float32_formula_for_every_pixel_value():
    v = np.arange(256, dtype=np.uint8)
    stack = np.stack([np.stack([v, v[::-1], v], -1)[None]] * 2)  # (2, 1, 256, 3)
    ref = (stack.astype(np.float32) / np.float32(255) - np.float32(IMAGENET_MEAN)) / np.float32(
        IMAGENET_STD)
    x = normalised_tensor(stack)
    assert x.dtype == torch.float32 and x.shape == (2, 3, 1, 256)
    assert x.is_contiguous(memory_format=torch.channels_last)
    np.testing.assert_array_equal(x.permute(0, 2, 3, 1).numpy(), ref)
    det = CNNDetector(build_model("small"), "small", input_size=256, crop="none")
    np.testing.assert_array_equal(det.preprocess(list(stack)).numpy(), x.numpy())
    np.testing.assert_array_equal(imagenet_preprocess(list(stack)).numpy(), x.numpy())
