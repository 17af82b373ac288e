"""bench/sample_grid.py, bench/float16_check.py, bench/zoo/save_resume.py: the zoo's tools."""

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


@pytest.fixture(scope="module")
def resume_mod(load_bench) -> ModuleType:  # type: ignore[no-untyped-def]
    return load_bench("zoo/save_resume")


def _fake_run(work: Path, steps: tuple[int, ...]) -> None:
    """A gan_quality.py work folder with checkpoints at `steps`, the last one latest."""
    run = work / "run"
    for s in steps:
        (run / "checkpoints" / f"step-{s:07d}").mkdir(parents=True)
        (run / "checkpoints" / f"step-{s:07d}" / "G.safetensors").write_text(f"weights {s}")
        (run / "checkpoints" / f"step-{s:07d}" / "state.json").write_text(json.dumps({"step": s}))
    (run / "checkpoints" / "latest.json").write_text(
        json.dumps({"step": steps[-1], "dir": f"step-{steps[-1]:07d}"}))
    for name in ("config.yaml", "env.json", "losses.csv"):
        (run / name).write_text(name)
    (run / "samples").mkdir()
    (work / "quality.jsonl").write_text("{}\n")


def test_save_resume_copies_the_latest_checkpoint_only_and_replaces_a_copy(
        resume_mod, tmp_path) -> None:
    dest = tmp_path / "resume" / "X-long"
    _fake_run(tmp_path / "W1", (500, 1000))
    assert resume_mod.save_resume(tmp_path / "W1", dest) == 1000
    ckpts = sorted(p.name for p in (dest / "run" / "checkpoints").iterdir())
    assert ckpts == ["latest.json", "step-0001000"]
    assert (dest / "run" / "checkpoints" / "step-0001000" / "G.safetensors").read_text() \
        == "weights 1000"
    assert not (dest / "run" / "samples").exists() and (dest / "quality.jsonl").is_file()
    _fake_run(tmp_path / "W2", (1500,))  # a later state replaces the copy, leaving nothing stale
    assert resume_mod.save_resume(tmp_path / "W2", dest) == 1500
    assert sorted(p.name for p in (dest / "run" / "checkpoints").iterdir()) \
        == ["latest.json", "step-0001500"]
    assert sorted(p.name for p in dest.parent.iterdir()) == ["X-long"]


def test_save_resume_names_what_is_missing_and_keeps_the_old_copy(resume_mod, tmp_path) -> None:
    dest = tmp_path / "X-long"
    _fake_run(tmp_path / "W1", (500,))
    resume_mod.save_resume(tmp_path / "W1", dest)
    with pytest.raises(SystemExit, match="no checkpoint"):
        resume_mod.save_resume(tmp_path / "empty", dest)
    _fake_run(tmp_path / "W2", (1000,))
    (tmp_path / "W2" / "run" / "losses.csv").unlink()
    with pytest.raises(SystemExit, match="losses.csv"):
        resume_mod.save_resume(tmp_path / "W2", dest)
    assert (dest / "run" / "checkpoints" / "step-0000500").is_dir()
