"""NPR and kin (detectors/cnn/residual_nets.py): the input transforms' formulas, shapes and
parameter counts, ONNX export, and NPR's published property at small scale."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter
from sklearn.metrics import average_precision_score

from ganforensics.detectors.cnn import build_model, get_recipe, train_cnn_detector
from ganforensics.detectors.cnn.residual_nets import (
    NPR_SCALE,
    TRUNK_PARAMETERS,
    haar_hh,
    median_residual,
    npr_residual,
)

RESIDUAL_ARCHS = ("npr", "npr_small", "ferretnet", "ferretnet_small", "safe", "safe_small")


def test_npr_residual_is_zero_on_each_blocks_top_left_pixel():
    g = torch.Generator().manual_seed(0)
    low = torch.randn(2, 3, 8, 8, generator=g)
    up = low.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)  # nearest x2
    r = npr_residual(up)
    assert r.shape == up.shape
    assert torch.equal(r[..., 0::2, 0::2], torch.zeros_like(r[..., 0::2, 0::2]))
    assert torch.equal(r, torch.zeros_like(r))  # aligned nearest up-sampling: zero throughout
    # any image: zero on the top-left pixels, x minus that pixel elsewhere
    x = torch.randn(1, 3, 16, 16, generator=g)
    r = npr_residual(x)
    assert torch.equal(r[..., 0::2, 0::2], torch.zeros(1, 3, 8, 8))
    assert torch.equal(r[..., 1::2, 1::2], x[..., 1::2, 1::2] - x[..., 0::2, 0::2])
    assert torch.equal(r[..., 0::2, 1::2], x[..., 0::2, 1::2] - x[..., 0::2, 0::2])
    assert (r[..., 1::2, 0::2].abs() > 0).all()
    # shifted by one pixel, a nearest-up-sampled image is no longer residual-free
    assert npr_residual(up[..., 1:, 1:]).abs().max() > 0


def test_npr_scales_the_residual_by_two_thirds():
    model = build_model("npr_small").eval()
    x = torch.randn(1, 3, 12, 12)
    assert model.residual.scale == pytest.approx(NPR_SCALE)
    assert torch.allclose(model.residual(x), npr_residual(x) * 2 / 3)


def test_small_npr_is_the_small_cnn_on_the_unscaled_residual():
    small, model = build_model("small"), build_model("small_npr").eval()
    count = sum(p.numel() for p in small.parameters())
    assert sum(p.numel() for p in model.parameters()) == count
    assert {n for n, _ in model.named_parameters()} == {n for n, _ in small.named_parameters()}
    x = torch.randn(1, 3, 12, 12)
    assert torch.equal(model.residual(x), npr_residual(x))
    # content suppressed: every image nearest-up-sampled on the 2x2 grid has residual 0, so the
    # same logit whatever its content
    g = torch.Generator().manual_seed(1)
    ups = [torch.randn(1, 3, 16, 16, generator=g).repeat_interleave(2, 2).repeat_interleave(2, 3)
           for _ in range(2)]
    with torch.no_grad():
        a, b = model(ups[0]), model(ups[1])
        assert torch.equal(a, b)
        shifted = torch.roll(ups[0], shifts=(1, 1), dims=(2, 3))  # off the grid: it reads
        assert model.residual(shifted).abs().max() > 0 and not torch.equal(model(shifted), a)


def test_odd_sizes_are_cropped_to_even():
    x = torch.randn(1, 3, 9, 7)
    assert npr_residual(x).shape == (1, 3, 8, 6)
    assert torch.equal(npr_residual(x), npr_residual(x[..., :8, :6]))
    assert haar_hh(x).shape == (1, 3, 4, 3)
    assert median_residual(x).shape == x.shape


def test_median_residual_matches_a_direct_loop():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1, 1, 6, 7)).astype(np.float32)
    pad = np.pad(x[0, 0], 1, mode="reflect")
    want = np.empty_like(x)
    for i in range(6):
        for j in range(7):
            win = pad[i : i + 3, j : j + 3].copy()
            win[1, 1] = 0.0
            want[0, 0, i, j] = x[0, 0, i, j] - np.sort(win.ravel())[4]
    np.testing.assert_allclose(median_residual(torch.from_numpy(x)).numpy(), want, atol=1e-6)


def test_haar_hh_band():
    ones = torch.ones(1, 3, 8, 8)
    assert torch.equal(haar_hh(ones), torch.zeros(1, 3, 4, 4))  # smooth: no HH energy
    checker = torch.tensor([[1.0, -1.0], [-1.0, 1.0]]).repeat(4, 4).expand(1, 3, 8, 8)
    assert torch.allclose(haar_hh(checker), torch.full((1, 3, 4, 4), 2.0))
    # orthonormal: an HH-only image keeps its energy in the band
    assert haar_hh(checker).pow(2).sum() == pytest.approx(checker.pow(2).sum().item())


@pytest.mark.parametrize("arch", RESIDUAL_ARCHS)
def test_shapes_and_parameter_count(arch):
    model = build_model(arch).eval()
    assert sum(p.numel() for p in model.parameters()) == TRUNK_PARAMETERS == 1_437_761
    sizes = (32, 64) if arch.endswith("_small") else (32, 224)
    with torch.no_grad():
        for s in sizes:
            assert model(torch.randn(1, 3, s, s)).shape == (1, 1)
        feats = {}
        model.layer2.register_forward_hook(lambda m, i, o: feats.setdefault("f", o))
        model(torch.randn(1, 3, 32, 32))
    # layer2 (Grad-CAM's feature layer): 512 maps; the small variant keeps 8x8 at 32 px (4x4
    # for safe, whose HH band has half the input's resolution), the full one 4x4 (2x2)
    side = (8 if arch.endswith("_small") else 4) // (2 if arch.startswith("safe") else 1)
    assert feats["f"].shape == (1, 512, side, side)


def test_onnx_export_matches_torch(tmp_path):
    from ganforensics.detectors.cnn import CNNDetector
    from ganforensics.detectors.onnx import export_detector, load_onnx_detector

    rng = np.random.default_rng(2)
    images = [rng.integers(0, 256, (s, s, 3), dtype=np.uint8) for s in (32, 32, 33)]
    for arch in ("npr_small", "safe_small", "small_npr"):  # all six at 96 px: test_onnx_export.py
        det = CNNDetector(build_model(arch), arch, input_size=64)
        folder = export_detector(det, tmp_path / arch)
        meta = json.loads((folder / "model.json").read_text())
        onnx_det = load_onnx_detector(folder, meta)
        np.testing.assert_allclose(onnx_det.logits(images), det.logits(images), atol=1e-4)


def _smooth_images(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Smooth random colour images plus a little sensor-like noise, float in [0, 255]."""
    base = rng.normal(size=(n, size, size, 3))
    smooth = np.stack([gaussian_filter(b, sigma=(2.0, 2.0, 0)) for b in base])
    smooth = (smooth - smooth.mean()) / smooth.std()
    return np.clip(128 + 45 * smooth + rng.normal(0, 3, smooth.shape), 0, 255)


def _transposed_conv_fakes(real: np.ndarray, seed: int) -> np.ndarray:
    """The same images halved (2x2 mean) and brought back by a random ConvTranspose2d
    (k 4, stride 2, padding 1), matched to the reals' mean and spread."""
    torch.manual_seed(seed)
    up = torch.nn.ConvTranspose2d(3, 3, kernel_size=4, stride=2, padding=1)
    x = torch.from_numpy(real).permute(0, 3, 1, 2).float() / 255.0
    with torch.no_grad():
        y = up(torch.nn.functional.avg_pool2d(x, 2))
    y = (y - y.mean()) / y.std() * x.std() + x.mean()
    return np.clip(y.permute(0, 2, 3, 1).numpy() * 255.0, 0, 255)


def test_npr_separates_transposed_conv_fakes_held_out():
    """NPR's published property at small scale: trained on real vs transposed-conv up-sampled
    fakes (32 px, 64 + 64 training images of which 30 % validate, 3 epochs) it separates
    64 + 64 held-out ones."""
    torch.set_num_threads(1)
    rng = np.random.default_rng(2024)
    real = _smooth_images(128, 32, rng)
    fake = _transposed_conv_fakes(_smooth_images(128, 32, rng), seed=7)
    real_u8, fake_u8 = real.round().astype(np.uint8), fake.round().astype(np.uint8)
    n_tr = 64
    train_x = list(real_u8[:n_tr]) + list(fake_u8[:n_tr])
    train_y = [0] * n_tr + [1] * n_tr
    test_x = list(real_u8[n_tr:]) + list(fake_u8[n_tr:])
    test_y = np.array([0] * (128 - n_tr) + [1] * (128 - n_tr))
    rec = get_recipe("npr_native", max_epochs=3)
    det = train_cnn_detector("npr_small", rec, (train_x, train_y), seed=3, progress=False)
    ap = average_precision_score(test_y, det.probs(test_x))
    assert ap >= 0.95, ap
