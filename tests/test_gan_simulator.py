"""Up-sampling simulators: every last block at every size, exact resume, paired fakes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from skimage import data
from typer.testing import CliRunner

from ganforensics.cli.main import app
from ganforensics.data.manifest import error_mask, new_manifest, write_manifest
from ganforensics.errors import ConfigError, InputError, RunExistsError
from ganforensics.gan.nets import LAST_BLOCKS, SIZES
from ganforensics.gan.reconstruct import load_simulator, reconstruct
from ganforensics.gan.simulate import psnr, train_simulator
from ganforensics.gan.simulator import Simulator, SimulatorConfig, reconstruction_loss
from ganforensics.io.atomic import save_png_atomic


def _patches(n: int = 24, size: int = 32, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    photos = [data.astronaut(), data.chelsea()]
    out = []
    for i in range(n):
        img = photos[i % 2]
        y, x = rng.integers(0, img.shape[0] - size), rng.integers(0, img.shape[1] - size)
        out.append(img[y:y + size, x:x + size])
    return np.stack(out)


def _tiny(**kw) -> SimulatorConfig:  # type: ignore[no-untyped-def]
    base = dict(steps=6, batch=8, width=8, bottleneck=8, checkpoint_every=2, sample_every=3)
    base.update(kw)
    return SimulatorConfig(**base).validate()


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("block", LAST_BLOCKS)
def test_every_block_builds_and_trains_a_step(block: str, size: int) -> None:
    torch.manual_seed(0)
    net = Simulator(block, width=4, bottleneck=4)
    x = torch.rand(2, 3, size, size) * 2 - 1
    y = net(x)
    assert y.shape == x.shape and float(y.detach().abs().max()) <= 1.0
    before = [p.detach().clone() for p in net.decoder.parameters()]
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    reconstruction_loss("l1", y, x).backward()
    opt.step()
    # the last block is in the decoder and trains (zero insertion's kernel is a fixed buffer)
    assert any(not torch.equal(a, b) for a, b in zip(before, net.decoder.parameters(),
                                                      strict=True))


def test_config_and_input_checks() -> None:
    with pytest.raises(ConfigError, match="last_block"):
        SimulatorConfig(last_block="X.9.9").validate()
    with pytest.raises(ConfigError, match="loss"):
        SimulatorConfig(loss="l3").validate()
    with pytest.raises(ConfigError, match="size"):
        SimulatorConfig(size=48).validate()
    with pytest.raises(ConfigError, match="unknown key"):
        SimulatorConfig.from_dict({"steps": 3, "colour": 1})
    assert SimulatorConfig(last_block="n.1.5").validate().name == "sim-N.1.5"
    with pytest.raises(ValueError, match="even"):
        Simulator("N.1.5", 4, 4)(torch.zeros(1, 3, 33, 32))


def test_psnr() -> None:
    a = np.zeros((2, 4, 4, 3), np.uint8)
    b = a.copy()
    b[1] = 255
    out = psnr(a, b)
    assert np.isinf(out[0]) and out[1] == pytest.approx(0.0)


def _weights(run: Path) -> dict[str, np.ndarray]:
    return {k: v.numpy() for k, v in load_file(str(run / "simulator.safetensors")).items()}


@pytest.mark.slow
def test_resume_equals_uninterrupted(tmp_path: Path) -> None:
    stack = _patches()
    straight = train_simulator(_tiny(), stack, tmp_path / "a", progress=False)
    part = train_simulator(_tiny(), stack, tmp_path / "b", progress=False, stop_at_step=3)
    assert not (part / "simulator.safetensors").exists()
    resumed = train_simulator(_tiny(), stack, tmp_path / "b", progress=False)
    wa, wb = _weights(straight), _weights(resumed)
    assert wa.keys() == wb.keys() and all(np.array_equal(wa[k], wb[k]) for k in wa)
    la, lb = pd.read_csv(straight / "losses.csv"), pd.read_csv(resumed / "losses.csv")
    assert np.array_equal(la["loss"].to_numpy(), lb["loss"].to_numpy())
    assert list(la["step"]) == [1, 2, 3, 4, 5, 6]
    assert (straight / "samples" / "step-0000006.png").exists()
    other = train_simulator(_tiny(seed=5), stack, tmp_path / "c", progress=False)
    assert any(not np.array_equal(wa[k], _weights(other)[k]) for k in wa)
    with pytest.raises(RunExistsError):
        train_simulator(_tiny(steps=7), stack, straight, progress=False)


def _real_folder(tmp_path: Path) -> Path:
    """A manifest of 12 real patches in three splits, one 30x34 image, one broken file."""
    folder = tmp_path / "reals"
    rows = []
    for i, img in enumerate(_patches(12)):
        p = folder / f"r{i:02d}.png"
        save_png_atomic(p, img)
        rows.append({"abspath": str(p), "label": 0, "split": ("train", "val", "test")[i % 3]})
    odd = folder / "odd.png"
    save_png_atomic(odd, _patches(1)[0][:31, :30])
    broken = folder / "broken.png"
    broken.write_bytes(b"not an image")
    rows += [{"abspath": str(odd), "label": 0, "split": "test"},
             {"abspath": str(broken), "label": 0, "split": "train"},
             {"abspath": str(folder / "r00.png"), "label": 1, "split": "train"}]  # a fake: skip
    write_manifest(new_manifest(rows), folder / "manifest.csv")
    return folder / "manifest.csv"


@pytest.mark.slow
def test_reconstruct_pairs_keep_splits_and_report_bad_inputs(tmp_path: Path) -> None:
    run = train_simulator(_tiny(), _patches(), tmp_path / "sim", progress=False)
    manifest = _real_folder(tmp_path)
    df = reconstruct(run, manifest, tmp_path / "rec", progress=False)
    assert len(df) == 14  # 12 patches + odd + broken; the label-1 row is not a source
    bad = error_mask(df)
    assert bad.sum() == 2
    assert df.loc[bad, "error"].str.contains("odd size").sum() == 1
    ok = df.loc[~bad]
    assert (ok["label"] == 1).all() and (ok["generator"] == "sim-BASELINE").all()
    src = pd.read_csv(manifest)
    split_of = {str(Path(tmp_path / "reals" / p).resolve()): s
                for p, s in zip(src["path"], src["split"], strict=True)}
    assert all(split_of[str(Path(s).resolve())] == sp
               for s, sp in zip(ok["source_path"], ok["split"], strict=True))
    net, _ = load_simulator(run)
    for _, row in ok.head(3).iterrows():  # each file is the simulator's output for its source
        real = np.asarray(Image.open(row["source_path"]))
        with torch.no_grad():
            x = torch.from_numpy(real.copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
            want = ((net(x)[0] * 0.5 + 0.5) * 255).clamp(0, 255).to(torch.uint8)
        got = np.asarray(Image.open(row["abspath"]))
        assert np.array_equal(got, want.permute(1, 2, 0).numpy())
        assert row["psnr_db"] == pytest.approx(float(psnr(real[None], got[None])[0]))
    with pytest.raises(RunExistsError):
        reconstruct(run, manifest, tmp_path / "rec", progress=False)
    again = reconstruct(run, manifest, tmp_path / "rec", progress=False, force=True)
    assert len(list((tmp_path / "rec").glob("*.png"))) == (~error_mask(again)).sum()
    with pytest.raises(InputError, match="simulator.safetensors"):
        reconstruct(tmp_path / "reals", manifest, tmp_path / "rec2", progress=False)


@pytest.mark.slow
def test_cli_simulate_and_reconstruct(tmp_path: Path) -> None:
    manifest = _real_folder(tmp_path)
    runner = CliRunner()
    res = runner.invoke(app, ["gan", "simulate", "--data", str(manifest), "--steps", "2",
                              "--width", "4", "--bottleneck", "4", "--batch", "4",
                              "--out", str(tmp_path / "sim")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "sim" / "simulator.json").exists()
    res = runner.invoke(app, ["gan", "reconstruct", str(tmp_path / "sim"), "--data",
                              str(manifest), "--out", str(tmp_path / "rec"), "--json"])
    assert res.exit_code == 1, res.output  # two bad inputs: finished, with error rows
    assert '"errors": 2' in res.output and '"count": 12' in res.output
    res = runner.invoke(app, ["gan", "simulate", "--data", str(manifest), "--last-block",
                              "Q.1.1", "--out", str(tmp_path / "bad")])
    assert res.exit_code == 2 and "last_block" in res.output
