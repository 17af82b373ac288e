"""bench/sample_grid.py and bench/float16_check.py: the zoo's grid and float16 check."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from ganforensics.gan.nets import Generator


@pytest.fixture(scope="module")
def grid_mod(load_bench) -> ModuleType:  # type: ignore[no-untyped-def]
    return load_bench("sample_grid")


@pytest.fixture(scope="module")
def f16_mod(load_bench) -> ModuleType:  # type: ignore[no-untyped-def]
    return load_bench("float16_check")


def test_grid_places_cells_in_rows_with_white_gaps_and_scales(grid_mod) -> None:
    rows = [np.full((3, 4, 4, 3), v, np.uint8) for v in (10, 200)]
    img = np.asarray(grid_mod.grid(rows, scale=2))
    gap = grid_mod.GAP
    assert img.shape == (2 * (2 * 4 + gap), 2 * (3 * 4 + 2 * gap), 3)
    assert (img[:8, :8] == 10).all()  # first cell of row 1, scaled to 8 x 8
    assert (img[8:8 + 2 * gap] == 255).all()  # the white gap between the rows
    assert (img[-8:, -8:] == 200).all()  # last cell of row 2


def _shipped_pair(folder: Path, noise: float) -> tuple[Path, Path]:
    """A gen-BASELINE-32 folder with float16 weights and the float32 file (plus `noise`)."""
    torch.manual_seed(0)
    gen = Generator(32, "BASELINE", 16, 8)
    sd = {k: v.detach().clone() for k, v in gen.state_dict().items()}
    out = folder / "gen-BASELINE-32"
    out.mkdir(parents=True)
    save_file({k: v.half() if v.is_floating_point() else v for k, v in sd.items()},
              str(out / "generator.safetensors"))
    (out / "generator.json").write_text(json.dumps(
        {"last_block": "BASELINE", "size": 32, "z_dim": 16, "dim": 8}))
    full = {k: v + noise * torch.randn_like(v) if v.is_floating_point() and "weight" in k
            else v for k, v in sd.items()}
    save_file(full, str(folder / "G_ema.safetensors"))
    return out, folder / "G_ema.safetensors"


def test_float16_check_sees_rounding_only_and_catches_other_weights(f16_mod, tmp_path) -> None:
    same = f16_mod.compare(*_shipped_pair(tmp_path / "same", 0.0), n=16, seed=3)
    assert same["n"] == 16 and same["last_block"] == "BASELINE"
    assert same["max_grey_levels"] <= 2 and same["share_differing"] < 0.2
    other = f16_mod.compare(*_shipped_pair(tmp_path / "other", 0.5), n=16, seed=3)
    assert other["max_grey_levels"] > 20 and other["share_differing"] > 0.5
