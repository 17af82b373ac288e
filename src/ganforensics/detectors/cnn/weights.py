"""Reading weights files without executing code: the leaf that `archs` and `checkpoint` share.

`.pth` / `.pt` files are read with `torch.load(..., weights_only=True)`: a file whose unpickling
would run code or build objects other than plain tensors is refused. `.safetensors` files are
read with safetensors.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from ganforensics.errors import InputError, UnsupportedModelError


def safe_torch_load(path: str | os.PathLike[str]) -> object:
    """`torch.load(path, weights_only=True)` with one-line errors; never runs pickled code.

    The result is tensors in plain containers (dicts, lists, numbers); callers check its shape.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: file not found")
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        detail = str(exc).splitlines()
        hint = next((ln.strip() for ln in detail if "GLOBAL" in ln or "global" in ln), "")
        raise UnsupportedModelError(
            f"{p}: refused to load: unpickling this file would execute code or build objects "
            f"that are not plain tensors (loaded with weights_only=True for safety)"
            + (f"; {hint}" if hint else "")
        ) from None
    except (RuntimeError, EOFError, ValueError, OSError) as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{p}: not a readable PyTorch checkpoint ({msg})") from None


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Tensors from a safetensors file or a `.pth` (weights_only) file; unwraps `model` /
    `state_dict` keys and a `module.` prefix."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: weights file not found")
    if p.suffix.lower() == ".safetensors":
        try:
            return load_file(str(p))
        except SafetensorError as exc:
            raise InputError(f"{p}: not a readable safetensors file ({exc})") from None
    obj = safe_torch_load(p)
    for key in ("model", "state_dict"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise InputError(f"{p}: does not hold a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in obj.items()}
