"""CLI manners: one-line errors (even for messages with brackets), option bounds, no silent
overwrites, meaningful exit codes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from ganforensics.cli.main import app
from ganforensics.detectors.cnn import CNNDetector, build_model
from ganforensics.gan.config import preset
from ganforensics.gan.train import train_gan


def _invoke(*args: object):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    return CNNDetector(build_model("small"), "small", input_size=32).save(tmp_path / "model")


def _png(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(path)
    return path


def test_error_text_with_brackets_is_printed_verbatim_on_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    res = _invoke("data", "scan", tmp_path / "empty", "--out", tmp_path / "m.csv")
    assert res.exit_code == 2, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
    assert "error:" in res.output and "[/<class>]" in res.output  # the layout hint survives
    assert "Traceback" not in res.output


def test_bad_batch_size_is_rejected_before_any_work(tmp_path, model_dir):
    img = _png(tmp_path / "a.png")
    for bad in ("0", "-1"):
        res = _invoke("predict", "--model", model_dir, img, "--batch-size", bad)
        assert res.exit_code == 2 and "batch-size" in res.output


def test_predict_out_file_is_not_overwritten_without_force(tmp_path, model_dir):
    img = _png(tmp_path / "a.png")
    out = tmp_path / "scores.csv"
    out.write_text("keep me\n")
    res = _invoke("predict", "--model", model_dir, img, "--out", out)
    assert res.exit_code == 3 and out.read_text() == "keep me\n"
    res = _invoke("predict", "--model", model_dir, img, "--out", out, "--force")
    assert res.exit_code == 0, res.output
    assert list(pd.read_csv(out)["path"]) == [str(img)]


def test_text_file_posing_as_safetensors_is_a_one_line_error(tmp_path, model_dir):
    (model_dir / "model.safetensors").write_text("not tensors")
    res = _invoke("predict", "--model", model_dir, _png(tmp_path / "a.png"))
    assert res.exit_code == 2 and "not a readable safetensors file" in res.output
    assert "model.safetensors" in res.output


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_cuda_device_without_gpu_is_a_one_line_error(tmp_path, model_dir):
    res = _invoke("predict", "--model", model_dir, _png(tmp_path / "a.png"), "--device",
                  "cuda")
    assert res.exit_code == 2 and "no CUDA GPU" in res.output
    res = _invoke("predict", "--model", model_dir, _png(tmp_path / "a.png"), "--device",
                  "gpu0")
    assert res.exit_code == 2 and "not a torch device" in res.output


def test_out_path_that_is_a_file_is_a_one_line_error(tmp_path):
    rows = [{"path": _png(tmp_path / f"{i}.png", i).name, "label": i % 2, "source": f"s{i}"}
            for i in range(8)]
    pd.DataFrame(rows).to_csv(tmp_path / "train.csv", index=False)
    afile = tmp_path / "afile"
    afile.write_text("x")
    res = _invoke("detector", "train", "--arch", "small", "--train", tmp_path / "train.csv",
                  "--out", afile, "--epochs", "1")
    # an --out that exists (as a file) is an occupied output, not a bad option: exit 3
    assert res.exit_code == 3, res.output
    assert "afile: exists and is not a folder" in res.output and "Traceback" not in res.output
    assert afile.read_text() == "x"


def test_ttur_with_explicit_learning_rate_is_refused(tmp_path):
    res = _invoke("gan", "train", "--data", tmp_path, "--out", tmp_path / "run", "--ttur",
                  "--lr-g", "0.1")
    assert res.exit_code == 2 and "--ttur" in res.output
    assert not (tmp_path / "run").exists()


def test_gan_train_names_its_preset_preset_and_arch_still_works_with_a_warning(tmp_path):
    data = tmp_path / "photos"
    for i in range(8):
        _png(data / f"{i}.png", i)
    common = ["gan", "train", "--data", data, "--steps", "1", "--batch", "4", "--size", "32",
              "--checkpoint-every", "1", "--sample-every", "1"]
    res = _invoke(*common, "--preset", "lsgan", "--out", tmp_path / "new")
    assert res.exit_code == 0, res.output
    assert "deprecated" not in res.output
    res = _invoke(*common, "--arch", "lsgan", "--out", tmp_path / "old")
    assert res.exit_code == 0, res.output
    assert "warning: gan train --arch is deprecated, use --preset" in res.stderr
    new, old = ((tmp_path / d / "config.yaml").read_text() for d in ("new", "old"))
    assert "arch: lsgan" in new and new == old  # the same run either way
    res = _invoke(*common, "--preset", "dcgan", "--arch", "lsgan", "--out", tmp_path / "both")
    assert res.exit_code == 2 and "disagree" in res.output
    assert "--preset" in _invoke("gan", "train", "--help").output


def test_gan_generate_refuses_to_mix_outputs_and_force_replaces_them(tmp_path):
    rng = np.random.default_rng(0)
    patches = rng.integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    cfg = preset("dcgan", steps=1, batch=8, dim=8, z_dim=16, checkpoint_every=1,
                 sample_every=1)
    run = train_gan(cfg, patches, tmp_path / "run", progress=False)
    out = tmp_path / "fakes"
    assert _invoke("gan", "generate", run, "--n", "12", "--out", out).exit_code == 0
    res = _invoke("gan", "generate", run, "--n", "4", "--out", out)
    assert res.exit_code == 3 and len(list(out.glob("*.png"))) == 12
    res = _invoke("gan", "generate", run, "--n", "4", "--out", out, "--force")
    assert res.exit_code == 0, res.output
    man = pd.read_csv(out / "manifest.csv")
    assert len(man) == 4 and sorted(man["path"]) == sorted(p.name for p in out.glob("*.png"))
    assert man["sha256"].str.len().eq(64).all()
    (out / "manifest.csv").unlink()  # as if a run was killed before writing its manifest
    res = _invoke("gan", "generate", run, "--n", "3", "--out", out, "--force")
    assert res.exit_code == 0 and len(list(out.glob("*.png"))) == 3
    unrelated = tmp_path / "unrelated"
    _png(unrelated / "mine.png")
    res = _invoke("gan", "generate", run, "--n", "2", "--out", unrelated, "--force")
    assert res.exit_code == 3 and (unrelated / "mine.png").exists()
    assert _invoke("gan", "generate", run, "--n", "2", "--out", tmp_path / "x", "--split",
                   "bogus").exit_code == 2


def test_evaluate_and_audit_exit_1_when_some_inputs_are_bad(tmp_path, model_dir):
    rows = []
    for i in range(4):
        rows.append({"path": _png(tmp_path / f"r{i}.png", i).name, "label": 0,
                     "generator": "real"})
        rows.append({"path": _png(tmp_path / f"f{i}.png", 10 + i).name, "label": 1,
                     "generator": "toy"})
    (tmp_path / "broken.png").write_bytes(b"not a png")
    rows.append({"path": "broken.png", "label": 1, "generator": "toy"})
    pd.DataFrame(rows).to_csv(tmp_path / "test.csv", index=False)
    res = _invoke("evaluate", "--model", model_dir, "--test", tmp_path / "test.csv")
    assert res.exit_code == 1, res.output
    assert "broken.png" in res.output and "ap" in res.stdout
    res = _invoke("data", "audit", tmp_path / "test.csv")
    assert res.exit_code == 1 and "1 row(s) have errors" in res.output


def test_fid_reports_a_missing_input_before_choosing_an_extractor(tmp_path):
    res = _invoke("fid", tmp_path / "nope", tmp_path)
    assert res.exit_code == 2 and "nope: not found" in res.output
    assert "NON-STANDARD" not in res.output
