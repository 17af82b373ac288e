"""The zoo's tools: bench/sample_grid.py, bench/float16_check.py, bench/zoo/save_resume.py,
bench/zoo/draws.py, bench/zoo/precision_grads.py."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import save_file

from ganforensics.gan.config import preset
from ganforensics.gan.nets import Discriminator, Generator


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
    assert not (dest / "run" / "moves.json").exists()  # the run never moved
    _fake_run(tmp_path / "W2", (1500,))  # a later state replaces the copy, leaving nothing stale
    (tmp_path / "W2" / "run" / "moves.json").write_text("[]")  # W2 moved: its record travels
    assert resume_mod.save_resume(tmp_path / "W2", dest) == 1500
    assert (dest / "run" / "moves.json").read_text() == "[]"
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


@pytest.fixture(scope="module")
def draws_mod(load_bench) -> ModuleType:  # type: ignore[no-untyped-def]
    return load_bench("zoo/draws")


def _gen_run(run: Path, seed: int, steps: int = 100, dim: int = 8) -> Path:
    """A run folder with config.yaml and one checkpoint holding a tiny G_ema; the checkpoint."""
    torch.manual_seed(seed)
    gen = Generator(32, "BASELINE", 16, dim)
    with torch.no_grad():  # an initialised G draws one flat grey: give it varied weights
        for param in gen.parameters():
            param.add_(0.3 * torch.randn_like(param))
    ckpt = run / "checkpoints" / f"step-{steps:07d}"
    ckpt.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in gen.state_dict().items()},
              str(ckpt / "G_ema.safetensors"))
    (ckpt / "state.json").write_text(json.dumps({"step": steps}))
    (run / "config.yaml").write_text(
        f"size: 32\nlast_block: BASELINE\nz_dim: 16\ndim: {dim}\nema: 0.999\n")
    return ckpt


def test_draws_first_draw_is_the_protocols_and_average_is_the_mean_network(
        draws_mod, tmp_path) -> None:
    from ganforensics.gan.generate import sample_images
    from ganforensics.metrics.features import compute_features, get_extractor
    from ganforensics.metrics.fid import frechet_distance

    ext = get_extractor("fallback")
    rng = np.random.default_rng(0)
    reals = rng.integers(0, 256, (24, 32, 32, 3), dtype=np.uint8)
    f = compute_features(reals, ext)
    mu_a, s_a = f.mean(0), np.cov(f, rowvar=False)
    a = _gen_run(tmp_path / "A", seed=1)
    b = _gen_run(tmp_path / "B", seed=2)
    # a run folder resolves to its newest complete checkpoint
    assert draws_mod.checkpoint_dir(tmp_path / "A") == a
    cfg = draws_mod.net_config(a)
    gen_a = draws_mod.generator(cfg, draws_mod.load_weights(a, "G_ema"))
    fids = draws_mod.fid_draws(gen_a, ext, mu_a, s_a, draws=2, n=12)
    own = compute_features(sample_images(gen_a, 12, seed=7), ext)  # gan_quality.py's one draw
    assert fids[0] == pytest.approx(frechet_distance(mu_a, s_a, own.mean(0),
                                                     np.cov(own, rowvar=False)))
    assert fids[0] != pytest.approx(fids[1])  # the second draw is other samples
    sa, sb = draws_mod.load_weights(a, "G_ema"), draws_mod.load_weights(b, "G_ema")
    mean = draws_mod.average_weights([sa, sb])
    key = next(k for k, v in sa.items() if v.is_floating_point() and v.numel() > 1)
    assert torch.allclose(mean[key], (sa[key] + sb[key]) / 2)
    assert not torch.allclose(mean[key], sa[key])
    assert draws_mod.average_weights([sa, sa])[key].equal(sa[key])
    s = draws_mod.summary([100.0, 110.0], floor=50.0)
    assert s["mean"] == 105.0 and s["ratio_mean"] == 2.1 and s["sd"] == pytest.approx(7.07)


def test_draws_names_the_bad_checkpoint_reference_or_config(draws_mod, tmp_path) -> None:
    a = _gen_run(tmp_path / "A", seed=1)
    _gen_run(tmp_path / "B", seed=2, dim=4)
    ref = tmp_path / "ref.npz"
    np.savez(ref, mu_a=np.zeros(224), s_a=np.eye(224), floor=50.0)
    with pytest.raises(draws_mod.DrawsError, match=r"G\.safetensors: missing"):
        draws_mod.load_weights(a, "G")
    with pytest.raises(draws_mod.DrawsError, match="not a checkpoint folder"):
        draws_mod.checkpoint_dir(tmp_path / "nowhere")
    with pytest.raises(draws_mod.DrawsError, match="networks differ"):
        draws_mod.main([str(tmp_path / "A"), str(tmp_path / "B"), "--average",
                        "--reference", str(ref), "--extractor", "fallback"])
    np.savez(tmp_path / "bad.npz", mu_a=np.zeros(3))
    with pytest.raises(draws_mod.DrawsError, match="no s_a, floor"):
        draws_mod.main([str(a), "--reference", str(tmp_path / "bad.npz")])
    (tmp_path / "A" / "config.yaml").write_text("size: 32\n")
    with pytest.raises(draws_mod.DrawsError, match="config.yaml: no last_block"):
        draws_mod.main([str(a), "--reference", str(ref), "--extractor", "fallback"])


def test_draws_main_prints_one_row_per_checkpoint(draws_mod, tmp_path, capsys) -> None:
    from ganforensics.metrics.features import compute_features, get_extractor

    _gen_run(tmp_path / "A", seed=1)
    _gen_run(tmp_path / "B", seed=2)
    reals = np.random.default_rng(0).integers(0, 256, (24, 32, 32, 3), dtype=np.uint8)
    f = compute_features(reals, get_extractor("fallback"))
    ref = tmp_path / "ref.npz"
    np.savez(ref, mu_a=f.mean(0), s_a=np.cov(f, rowvar=False), floor=10.0)
    common = ["--reference", str(ref), "--extractor", "fallback", "--draws", "2", "--n", "10"]
    draws_mod.main([str(tmp_path / "A"), str(tmp_path / "B"), *common])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [len(r["checkpoints"]) for r in rows] == [1, 1] and rows[0]["seeds"] == [7, 8]
    assert rows[0]["mean"] != rows[1]["mean"]
    assert rows[0]["ratio_mean"] == pytest.approx(rows[0]["mean"] / 10.0, abs=1e-3)
    draws_mod.main([str(tmp_path / "A"), str(tmp_path / "B"), "--average", *common])
    (avg,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(avg["checkpoints"]) == 2 and avg["mean"] not in (rows[0]["mean"], rows[1]["mean"])


@pytest.fixture(scope="module")
def grads_mod(load_bench) -> ModuleType:  # type: ignore[no-untyped-def]
    return load_bench("zoo/precision_grads")


def test_precision_grads_compares_every_g_parameter_in_bfloat16(grads_mod, tmp_path) -> None:
    """A run folder's checkpoint: one row per G parameter, close but not equal in bfloat16, and
    D (with its spectral-norm state) left as it was."""
    cfg = preset("sngan", last_block="N.1.5", dim=8, z_dim=16, d_depth=2)
    run = tmp_path / "run"
    ckpt = run / "checkpoints" / "step-0000010"
    ckpt.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump({**cfg.to_dict(), "data": {"n": 1}}))
    torch.manual_seed(0)
    gen = Generator(cfg.size, cfg.last_block, cfg.z_dim, cfg.dim)
    disc = Discriminator(cfg.size, cfg.d_norm, cfg.dim, cfg.d_depth)
    save_file(gen.state_dict(), str(ckpt / "G.safetensors"))
    save_file(disc.state_dict(), str(ckpt / "D.safetensors"))
    rows = grads_mod.compare(ckpt, batch=8)
    assert [r["param"] for r in rows] == [n for n, _ in gen.named_parameters()]
    assert all(0.9 < r["cos"] <= 1.0 + 1e-6 for r in rows)
    assert max(r["rel_err"] for r in rows) > 1e-4  # the second pass did run in bfloat16
    _, g2, d2 = grads_mod.load_pair(ckpt)
    before = {k: v.clone() for k, v in d2.state_dict().items()}
    grads_mod.g_gradients(cfg, g2, d2, torch.randn(4, 16), bfloat16=True)
    assert all(torch.equal(before[k], v) for k, v in d2.state_dict().items())
