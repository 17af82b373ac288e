"""D-input augmentation (DiffAugment-style) and the moving average of G: the operations, their
draws, exact resume, what is saved, and the CLI/study options."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from typer.testing import CliRunner

from ganforensics.cli.main import app
from ganforensics.errors import ConfigError, RunExistsError
from ganforensics.gan import augment
from ganforensics.gan.config import GanConfig, preset
from ganforensics.gan.train import ema_decay, train_gan, update_ema


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_parse_policy_orders_and_rejects() -> None:
    assert augment.parse_policy("cutout, color") == ("color", "cutout")
    assert augment.parse_policy(None) == () == augment.parse_policy("")
    with pytest.raises(ConfigError, match="augment: unknown policy flip"):
        augment.parse_policy("color,flip")


def test_translation_moves_content_and_fills_zeros() -> None:
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    shift = torch.tensor([[1, -2], [0, 0]])
    y = augment.apply(x, augment.Draw(shift=shift))
    assert torch.equal(y[1], x[1])  # no shift: unchanged
    assert torch.equal(y[0, :, 1:, :6], x[0, :, :7, 2:])  # content moved down 1, left 2
    assert (y[0, :, 0, :] == 0).all() and (y[0, :, :, 6:] == 0).all()


def test_cutout_zeroes_a_square_of_half_the_size() -> None:
    x = torch.ones(3, 3, 16, 16)
    centre = torch.tensor([[8, 8], [0, 0], [15, 4]])
    y = augment.apply(x, augment.Draw(centre=centre))
    zeros = (y[:, 0] == 0).sum(dim=(1, 2)).tolist()
    assert zeros[0] == 8 * 8  # fully inside
    assert zeros[1] == 4 * 4  # clipped at the corner
    assert zeros[2] == 5 * 8  # rows 11-15: clipped at the bottom edge
    assert (y[:, 0] == y[:, 2]).all()  # the same mask on every channel


def test_colour_brightness_alone_adds_and_saturation_contrast_scale() -> None:
    x = torch.rand(2, 3, 4, 4) * 2 - 1
    one = torch.ones(2)
    d = augment.Draw(brightness=torch.tensor([0.25, -0.5]), saturation=one, contrast=one)
    y = augment.apply(x, d)
    assert torch.allclose(y[0], x[0] + 0.25, atol=1e-6)
    assert torch.allclose(y[1], x[1] - 0.5, atol=1e-6)
    flat = augment.apply(x, augment.Draw(brightness=torch.zeros(2),
                                         saturation=torch.zeros(2), contrast=one))
    assert torch.allclose(flat[:, 0], flat[:, 1]) and torch.allclose(flat[:, 1], flat[:, 2])
    grey = augment.apply(x, augment.Draw(brightness=torch.zeros(2), saturation=one,
                                         contrast=torch.zeros(2)))
    assert torch.allclose(grey, x.mean(dim=(1, 2, 3), keepdim=True).expand_as(x), atol=1e-6)


def test_draws_are_seeded_ranged_and_differentiable() -> None:
    policy = augment.POLICIES
    a, b = augment.draw(policy, 64, 32, _gen(3)), augment.draw(policy, 64, 32, _gen(3))
    assert torch.equal(a.shift, b.shift) and torch.equal(a.brightness, b.brightness)
    assert not torch.equal(a.shift, augment.draw(policy, 64, 32, _gen(4)).shift)
    assert a.shift.abs().max() <= 4 and a.shift.abs().max() >= 1  # 32 / 8
    assert float(a.saturation.min()) >= 0 and float(a.saturation.max()) <= 2
    assert float(a.contrast.min()) >= 0.5 and float(a.contrast.max()) <= 1.5
    assert torch.equal(a.rows(slice(8, 16)).centre, a.centre[8:16])
    x = torch.rand(64, 3, 32, 32, requires_grad=True)
    geometric = augment.draw(("translation", "cutout"), 64, 32, _gen(3))
    augment.apply(x, geometric).sum().backward()
    assert x.grad is not None and (x.grad == 1).any() and (x.grad == 0).any()  # cut out/away
    x.grad = None
    augment.apply(x, a).square().sum().backward()
    assert (x.grad != 0).any()


def test_ema_decay_warms_up_and_update_follows_the_formula() -> None:
    assert ema_decay(0.999, 0) == pytest.approx(0.1)
    assert ema_decay(0.999, 10_000) == 0.999
    ema, net = torch.nn.BatchNorm1d(2), torch.nn.BatchNorm1d(2)
    with torch.no_grad():
        ema.weight.fill_(1.0)
        net.weight.fill_(3.0)
        net.running_mean.fill_(5.0)
    update_ema(ema, net, 0.5, 100)
    assert torch.allclose(ema.weight, torch.full((2,), 2.0))  # 0.5 * 1 + 0.5 * 3
    assert torch.equal(ema.running_mean, net.running_mean)  # buffers copied


def test_config_keys_only_when_on() -> None:
    plain = preset("ttur").to_dict()
    assert "augment" not in plain and "ema" not in plain
    on = preset("ttur", augment="translation,color", ema=0.99)
    assert on.augment == ("color", "translation") and on.to_dict()["augment"] == [
        "color", "translation"]
    assert GanConfig.from_dict(on.to_dict()).augment == on.augment
    with pytest.raises(ConfigError, match="ema"):
        preset("ttur", ema=1.0)


def _patches(n: int = 32) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)


def _tiny(**kw):  # type: ignore[no-untyped-def]
    base = dict(steps=6, batch=8, dim=8, z_dim=16, checkpoint_every=2, sample_every=3,
                augment="color,translation,cutout", ema=0.9)
    base.update(kw)
    return preset("ttur", **base)


def _ckpt(run: Path, name: str) -> dict:
    ck = json.loads((run / "checkpoints" / "latest.json").read_text())["dir"]
    return dict(load_file(str(run / "checkpoints" / ck / f"{name}.safetensors")))


@pytest.mark.slow
def test_augmented_ema_run_resumes_exactly_and_keeps_the_average(tmp_path: Path) -> None:
    straight = train_gan(_tiny(), _patches(), tmp_path / "a", progress=False)
    train_gan(_tiny(), _patches(), tmp_path / "b", progress=False, stop_at_step=3)
    resumed = train_gan(_tiny(), _patches(), tmp_path / "b", progress=False)
    final = load_file(str(straight / "generator.safetensors"))
    for name in ("G", "G_ema", "D"):
        a, b = _ckpt(straight, name), _ckpt(resumed, name)
        assert all(torch.equal(a[k], b[k]) for k in a), name
    ema, raw = _ckpt(straight, "G_ema"), _ckpt(straight, "G")
    assert all(torch.equal(final[k], ema[k]) for k in final)  # the average is what ships
    assert any(not torch.equal(ema[k], raw[k]) for k in raw if raw[k].is_floating_point())
    meta = json.loads((straight / "generator.json").read_text())
    assert "moving average" in meta["weights"]
    assert meta["config"]["augment"] == ["color", "translation", "cutout"]
    plain = train_gan(_tiny(augment="", ema=0.0), _patches(), tmp_path / "c", progress=False)
    la, lc = pd.read_csv(straight / "losses.csv"), pd.read_csv(plain / "losses.csv")
    assert np.isfinite(la[["d_loss", "g_loss"]].to_numpy()).all()
    assert not np.allclose(la["d_loss"], lc["d_loss"])  # D saw other (augmented) inputs
    assert "G_ema" not in [p.stem for p in (plain / "checkpoints").glob("*/*.safetensors")]


@pytest.mark.slow
def test_a_finished_run_extended_to_more_steps_equals_one_longer_run(tmp_path: Path) -> None:
    straight = train_gan(_tiny(), _patches(), tmp_path / "a", progress=False)
    short = train_gan(_tiny(steps=3), _patches(), tmp_path / "b", progress=False)
    assert (short / "generator.safetensors").exists()
    short_cpu = json.loads((short / "generator.json").read_text())["train_cpu_seconds"]
    with pytest.raises(RunExistsError, match="differs in: steps.*pass --extend"):
        train_gan(_tiny(), _patches(), short, progress=False)  # not without extend
    extended = train_gan(_tiny(), _patches(), short, progress=False, extend=True)
    for name in ("G", "G_ema", "D"):
        a, b = _ckpt(straight, name), _ckpt(extended, name)
        assert all(torch.equal(a[k], b[k]) for k in a), name
    final_a = load_file(str(straight / "generator.safetensors"))
    final_b = load_file(str(extended / "generator.safetensors"))
    assert all(torch.equal(final_a[k], final_b[k]) for k in final_a)
    meta = json.loads((extended / "generator.json").read_text())
    assert meta["steps"] == 6 and meta["train_cpu_seconds"] > 0
    assert 0 < short_cpu < meta["train_cpu_seconds"]  # counted across both invocations
    assert json.loads((extended / "env.json").read_text())["extended"] == {"steps": [3, 6]}
    assert pd.read_csv(extended / "losses.csv")["step"].tolist() == list(range(1, 7))
    with pytest.raises(RunExistsError, match="differs in: steps"):  # shorter: refused
        train_gan(_tiny(steps=4), _patches(), extended, progress=False, extend=True)
    with pytest.raises(RunExistsError, match="differs in: ema, steps"):  # other keys: refused
        train_gan(_tiny(steps=8, ema=0.5), _patches(), extended, progress=False, extend=True)


def test_cli_extend_trains_a_finished_run_further(tmp_path: Path) -> None:
    (tmp_path / "imgs").mkdir()
    for i, im in enumerate(_patches(16)):
        Image.fromarray(im).save(tmp_path / "imgs" / f"{i}.png")
    base = ["gan", "train", "--data", str(tmp_path / "imgs"), "--out", str(tmp_path / "run"),
            "--preset", "ttur", "--batch", "8", "--checkpoint-every", "2"]
    res = CliRunner().invoke(app, [*base, "--steps", "2"])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(app, [*base, "--steps", "4"])
    assert res.exit_code == 3 and "pass --extend" in res.output
    res = CliRunner().invoke(app, [*base, "--steps", "4", "--extend"])
    assert res.exit_code == 0, res.output
    meta = json.loads((tmp_path / "run" / "generator.json").read_text())
    assert meta["steps"] == 4 and meta["config"]["steps"] == 4


def test_cli_rejects_an_unknown_policy(tmp_path: Path) -> None:
    np.save(tmp_path / "p.npy", _patches())
    res = CliRunner().invoke(app, ["gan", "train", "--data", str(tmp_path), "--out",
                                   str(tmp_path / "run"), "--augment", "color,flip"])
    assert res.exit_code != 0
    assert "augment: unknown policy flip" in res.output


def test_a_run_trained_elsewhere_continues_on_this_device(tmp_path: Path) -> None:
    """A run whose config says it was trained on a GPU resumes here on the CPU (the draws do
    not depend on the device) and ends as the run that never moved."""
    straight = train_gan(_tiny(), _patches(), tmp_path / "a", progress=False)
    short = train_gan(_tiny(steps=3), _patches(), tmp_path / "b", progress=False)
    cfg_path = short / "config.yaml"
    cfg_path.write_text(cfg_path.read_text().replace("device: cpu", "device: cuda:0"))
    moved = train_gan(_tiny(), _patches(), short, progress=False, extend=True)
    assert json.loads((moved / "env.json").read_text())["moved"] == {"device": ["cuda:0", "cpu"]}
    final_a = load_file(str(straight / "generator.safetensors"))
    final_b = load_file(str(moved / "generator.safetensors"))
    assert all(torch.equal(final_a[k], final_b[k]) for k in final_a)
