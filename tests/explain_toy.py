"""Tiny data and detectors for the explain tests (built in memory, seconds on CPU).

Reals are random crops of scikit-image's bundled colour photos; fakes are crops down-sampled x2
and up-sampled again by a fixed transposed convolution (k4, s2, p1) whose four output phases have
different kernels, which leaves a periodic (checkerboard) trace as GAN up-sampling does.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganforensics.explain import Explainable, imagenet_preprocess


def photos() -> list[np.ndarray]:
    import skimage.data as d

    return [d.astronaut(), d.chelsea(), d.coffee(), d.rocket()]


def real_crops(n: int, size: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    srcs = photos()
    out = []
    for _ in range(n):
        p = srcs[rng.integers(len(srcs))]
        y = rng.integers(0, p.shape[0] - size)
        x = rng.integers(0, p.shape[1] - size)
        out.append(np.ascontiguousarray(p[y : y + size, x : x + size]))
    return out


def upsample_fakes(reals: list[np.ndarray], seed: int = 7) -> list[np.ndarray]:
    """Down-sample x2 (box) then up-sample with a fixed depthwise transposed conv."""
    g = torch.Generator().manual_seed(seed)
    k = torch.rand(4, 4, generator=g) + 0.2
    # each output phase (parity of row, column) sums its own 2x2 taps: normalise per phase
    for py in range(2):
        for px in range(2):
            k[py::2, px::2] /= k[py::2, px::2].sum()
    weight = k.expand(3, 1, 4, 4).contiguous()
    x = torch.from_numpy(np.stack(reals)).permute(0, 3, 1, 2).double() / 255
    low = F.avg_pool2d(x, 2)
    up = F.conv_transpose2d(low, weight.double(), stride=2, padding=1, groups=3)
    arr = (up.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()
    return [np.ascontiguousarray(a) for a in arr]


def toy_dataset(n: int, size: int = 16, seed: int = 0) -> tuple[list[np.ndarray], np.ndarray]:
    """n reals and n fakes (fakes made from other crops than the reals)."""
    reals = real_crops(n, size, seed)
    fakes = upsample_fakes(real_crops(n, size, seed + 1000))
    return reals + fakes, np.array([0] * n + [1] * n)


def small_cnn(
    widths: tuple[int, ...] = (8, 16, 16), bias: bool = True, bn: bool = True
) -> nn.Module:
    """A plain Conv/BN/ReLU/MaxPool/AvgPool/Linear one-logit CNN."""
    layers: list[nn.Module] = []
    c_in = 3
    for i, w in enumerate(widths):
        layers.append(nn.Conv2d(c_in, w, 3, padding=1, bias=bias))
        if bn:
            layers.append(nn.BatchNorm2d(w))
        layers.append(nn.ReLU(inplace=True))
        if i == 1:
            layers.append(nn.MaxPool2d(2))
        c_in = w
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, 1, bias=bias)]
    return nn.Sequential(*layers)


def train_toy_detector(
    n: int = 256, size: int = 16, steps: int = 200, seed: int = 0
) -> Explainable:
    """A small CNN trained to tell reals from up-sampled fakes (a few seconds on CPU)."""
    torch.manual_seed(seed)
    images, labels = toy_dataset(n, size, seed)
    x = imagenet_preprocess(images)
    y = torch.tensor(labels, dtype=torch.float32)
    model = small_cnn()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, len(y), (64,), generator=g)
        loss = F.binary_cross_entropy_with_logits(model(x[idx])[:, 0], y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    return Explainable(model=model, feature_layer="6", name="toy-cnn")
