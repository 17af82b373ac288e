"""Training in bfloat16 (`GanConfig.precision`, `gan train --precision`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from typer.testing import CliRunner

from ganforensics.cli.main import app
from ganforensics.errors import ConfigError
from ganforensics.gan import train as gan_train
from ganforensics.gan.config import preset
from ganforensics.gan.shipped import generator_recipe
from ganforensics.gan.train import run_id_for, train_gan

TINY = dict(steps=4, batch=8, dim=8, z_dim=16, checkpoint_every=2, sample_every=2,
            augment="translation", ema=0.9)


def _images() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (24, 32, 32, 3), dtype=np.uint8)


def test_precision_is_checked_and_recorded_only_when_not_float32(tmp_path: Path) -> None:
    plain = preset("sngan", **TINY)
    assert plain.precision == "float32" and "precision" not in plain.to_dict()
    bf16 = preset("sngan", precision=" BFloat16 ", **TINY)
    assert bf16.to_dict()["precision"] == "bfloat16"
    # an old float32 run keeps its id; a bfloat16 run is another run
    assert run_id_for(tmp_path, plain.to_dict()) != run_id_for(tmp_path, bf16.to_dict())
    with pytest.raises(ConfigError, match="precision: 'float16' is not one of float32, bfloat16"):
        preset("sngan", precision="float16")


@pytest.mark.slow
def test_bfloat16_run_differs_from_float32_keeps_float32_weights_and_resumes_exactly(
        tmp_path: Path) -> None:
    imgs = _images()
    f32 = train_gan(preset("sngan", **TINY), imgs, tmp_path / "f32", progress=False)
    a = train_gan(preset("sngan", precision="bfloat16", **TINY), imgs, tmp_path / "a",
                  progress=False)
    train_gan(preset("sngan", precision="bfloat16", **TINY), imgs, tmp_path / "b",
              progress=False, stop_at_step=2)
    b = train_gan(preset("sngan", precision="bfloat16", **TINY), imgs, tmp_path / "b",
                  progress=False)
    g32, ga, gb = (load_file(str(r / "generator.safetensors")) for r in (f32, a, b))
    assert {v.dtype for v in ga.values() if v.is_floating_point()} == {torch.float32}
    assert all(torch.equal(ga[k], gb[k]) for k in ga)  # resumed == uninterrupted
    # the convolutions really ran in bfloat16: the weights moved elsewhere than in float32
    diff = max(float((ga[k] - g32[k]).abs().max()) for k in ga if ga[k].is_floating_point())
    assert diff > 1e-4
    assert "precision: bfloat16" in (a / "config.yaml").read_text()
    # D's outputs enter the losses in float32: the logged losses are not rounded to bfloat16
    d_loss = torch.tensor(np.loadtxt(a / "losses.csv", delimiter=",", skiprows=1)[:, 1])
    assert bool((d_loss.bfloat16().double() != d_loss).any())


@pytest.mark.slow
def test_a_bfloat16_run_goes_on_in_float32_and_its_generator_says_from_which_step(
        tmp_path: Path) -> None:
    imgs, run = _images(), tmp_path / "run"
    train_gan(preset("sngan", precision="bfloat16", **TINY), imgs, run, progress=False,
              stop_at_step=2)
    train_gan(preset("sngan", **TINY), imgs, run, progress=False, stop_at_step=3)  # moves
    # env.json has the configs' values (float32, the default, is left out of a config)
    assert json.loads((run / "env.json").read_text())["moved"] == {"precision": ["bfloat16", None]}
    train_gan(preset("sngan", **TINY), imgs, run, progress=False)  # no move: kept all the same
    assert "moved" not in json.loads((run / "env.json").read_text())
    meta = json.loads((run / "generator.json").read_text())
    assert [(m["step"], m["moved"]) for m in meta["moves"]] == [
        (2, {"precision": ["bfloat16", "float32"]})]
    assert "precision" not in meta["config"]  # float32 now, the default
    assert "trained in bfloat16 to step 2, then float32, " in generator_recipe(meta)
    # steps 3 and 4 really ran in float32: not the weights of the run that stayed bfloat16
    bf16 = train_gan(preset("sngan", precision="bfloat16", **TINY), imgs, tmp_path / "bf16",
                     progress=False)
    ga, gb = (load_file(str(r / "generator.safetensors")) for r in (run, bf16))
    assert max(float((ga[k] - gb[k]).abs().max()) for k in ga if ga[k].is_floating_point()) > 0


def test_bfloat16_on_a_cpu_without_bfloat16_instructions_is_warned_about(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    cpu = torch.device("cpu")
    for native in (True, False):
        monkeypatch.setattr(gan_train, "cpu_runs_bfloat16_natively", lambda n=native: n)
        gan_train._warn_if_bfloat16_is_emulated(preset("sngan", precision="bfloat16"), cpu)
        assert ("no bfloat16 instructions" in capsys.readouterr().err) is not native
        gan_train._warn_if_bfloat16_is_emulated(preset("sngan"), cpu)  # float32: nothing
        assert capsys.readouterr().err == ""


def test_gan_train_takes_precision_and_names_a_bad_value(tmp_path: Path) -> None:
    data = tmp_path / "photos"
    data.mkdir()
    for i, img in enumerate(_images()[:8]):
        Image.fromarray(img).save(data / f"{i}.png")
    common = ["gan", "train", "--data", str(data), "--steps", "1", "--batch", "4", "--size",
              "32", "--dim", "8", "--checkpoint-every", "1", "--sample-every", "1"]
    run = CliRunner().invoke(app, [*common, "--precision", "bfloat16", "--out",
                                   str(tmp_path / "run")])
    assert run.exit_code == 0, run.output
    recorded = (tmp_path / "run" / "config.yaml").read_text()
    assert "precision: bfloat16" in recorded and "dim: 8" in recorded
    bad = CliRunner().invoke(app, [*common, "--precision", "half", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "precision" in bad.output and "Traceback" not in bad.output
    assert "--precision" in CliRunner().invoke(app, ["gan", "train", "--help"]).output


def _training(precision: str) -> gan_train._Training:
    tr, _ = gan_train._start(preset("sngan", precision=precision, **TINY), None, _images(),
                             resume=False)
    return tr


def test_an_update_inside_the_steps_autocast_is_seen_by_the_next_forward() -> None:
    # the step's D updates happen inside its autocast: a cached bfloat16 copy of a parameter
    # would make the second D step and G's step score with D's biases of before the update
    tr = _training("bfloat16")
    x = torch.randn(4, 3, 32, 32)
    biases = [m.bias for m in tr.disc.modules() if getattr(m, "bias", None) is not None]
    assert biases
    tr.disc.eval()  # no power iteration: the biases are all that changes
    with gan_train._autocast(tr):
        before = tr.disc(x).float()
        with torch.no_grad():
            for b in biases:
                b.add_(0.5)
        after = tr.disc(x).float()
    assert not torch.equal(before, after)


def test_g_step_computes_no_gradients_for_d_and_leaves_it_trainable() -> None:
    tr = _training("float32")
    z = torch.randn(4, tr.config.z_dim)
    with gan_train._frozen(tr.disc, None):
        tr.disc(tr.gen(z)).mean().backward()
    assert all(p.grad is None for p in tr.disc.parameters())
    assert all(p.grad is not None for p in tr.gen.parameters() if p.requires_grad)
    assert all(p.requires_grad for p in tr.disc.parameters())
    with pytest.raises(RuntimeError), gan_train._frozen(tr.disc):
        raise RuntimeError("restored on the way out too")
    assert all(p.requires_grad for p in tr.disc.parameters())
