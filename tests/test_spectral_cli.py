"""CLI: spectrum compute / plot, evaluate bypass."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata
from typer.testing import CliRunner

from ganforensics.cli.main import app
from ganforensics.spectral.collection import collect_named, load_spectra
from ganforensics.spectral.spectra import durall_profiles

runner = CliRunner()


def _patches(n: int, rng: np.random.Generator, size: int = 32) -> np.ndarray:
    img = skdata.astronaut()
    ys, xs = rng.integers(0, 512 - size, n), rng.integers(0, 512 - size, n)
    return np.stack([img[y : y + size, x : x + size] for y, x in zip(ys, xs, strict=True)])


def _checker(p: np.ndarray, amp: float) -> np.ndarray:
    """Nearest up-sampling of the half-size image, plus a checkerboard of amplitude `amp`."""
    small = p.reshape(p.shape[0], 16, 2, 16, 2, 3).mean(axis=(2, 4))
    up = small.repeat(2, axis=1).repeat(2, axis=2)
    cb = np.indices((32, 32)).sum(0) % 2 * 2 - 1
    return np.clip(up + amp * cb[None, :, :, None], 0, 255).round().astype(np.uint8)


def _write(folder: Path, arr: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(arr):
        Image.fromarray(img).save(folder / f"{i:03d}.png")


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("spec")
    rng = np.random.default_rng(5)
    _write(root / "train" / "real", _patches(40, rng))
    _write(root / "train" / "fake", _checker(_patches(40, rng), 12.0))
    _write(root / "gens" / "loud", _checker(_patches(20, rng), 12.0))
    _write(root / "gens" / "quiet", _patches(20, rng))  # a generator as good as real photos
    (root / "gens" / "quiet" / "bad.png").write_bytes(b"nope")
    return root


def test_compute_and_plot(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "s.npz"
    res = runner.invoke(app, ["spectrum", "compute", str(tree / "train"), str(tree / "gens"
                                                                             / "loud"),
                              "--out", str(out), "--variant", "both", "--decay", "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert {g["group"] for g in summary["groups"]} == {"real", "fake", "loud"}
    s = load_spectra(out)
    assert s.meta["variants"] == ["durall", "clean"] and s.meta["dtype"] == "float64"
    real = s.group("real")
    assert real.profiles["durall"].shape == (40, 20)
    assert real.profiles["clean"].shape == (40, 17)
    assert real.mean2d.shape == (32, 32) and real.decay.shape == (40, 3)
    imgs = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in real.paths])
    np.testing.assert_allclose(real.profiles["durall"], durall_profiles(imgs), rtol=1e-12)
    # the checkerboard lives at the (Nyquist, Nyquist) corner of the 2-D spectrum
    assert s.group("loud").mean2d[0, 0] > real.mean2d[0, 0] + 20.0
    # refuses to overwrite
    res = runner.invoke(app, ["spectrum", "compute", str(tree / "train"), "--out", str(out)])
    assert res.exit_code == 3 and "--force" in res.output
    png = tmp_path / "fig.png"
    res = runner.invoke(app, ["spectrum", "plot", str(out), "--out", str(png), "--variant",
                              "clean"])
    assert res.exit_code == 0, res.output
    with Image.open(png) as im:
        assert im.format == "PNG" and im.size[0] > 600 and im.size[1] > 400
        assert len(np.unique(np.asarray(im.convert("L")))) > 50  # not blank


def test_compute_skips_bad_files_and_exits_1(tree: Path, tmp_path: Path) -> None:
    res = runner.invoke(app, ["spectrum", "compute", str(tree / "gens" / "quiet"), "--out",
                              str(tmp_path / "q.npz"), "--dtype", "float32"])
    assert res.exit_code == 1
    assert "bad.png" in res.output and "quiet" in res.stdout
    assert load_spectra(tmp_path / "q.npz").group("quiet").profiles["durall"].shape[0] == 20
    res = runner.invoke(app, ["spectrum", "compute", str(tmp_path / "missing"), "--out",
                              str(tmp_path / "m.npz")])
    assert res.exit_code == 2 and "missing" in res.output


def test_bypass_cli(tree: Path, tmp_path: Path) -> None:
    csv = tmp_path / "b.csv"
    args = ["evaluate", "bypass", "--train", str(tree / "train"), "--fakes",
            str(tree / "gens" / "loud"), "--fakes", str(tree / "gens" / "quiet"),
            "--kind", "spectral-profile", "--n", "30", "--draws", "3", "--out", str(csv)]
    res = runner.invoke(app, [*args, "--json"])
    assert res.exit_code == 1  # bad.png was skipped (reported) but results were written
    rows = {r["generator"]: r for r in json.loads(res.stdout)}
    assert rows["loud"]["rate_mean"] > 0.8  # the checkerboard is detected
    assert rows["quiet"]["rate_mean"] < 0.3  # it bypasses the detector
    assert rows["quiet"]["n_images"] == 20 and len(rows["loud"]["rates"]) == 3
    assert csv.is_file() and "rate_mean" in csv.read_text()
    res = runner.invoke(app, [*args[:-2], "--n", "500"])
    assert res.exit_code == 2 and "lower --n" in res.output


def test_detector_train_predict_and_bypass_with_model(tree: Path, tmp_path: Path) -> None:
    import pandas as pd

    from ganforensics.data.manifest import write_manifest

    rows = [{"abspath": str(p), "label": lab, "generator": gen}
            for lab, gen, folder in ((0, "real", "real"), (1, "checker", "fake"))
            for p in sorted((tree / "train" / folder).glob("*.png"))]
    manifest = tmp_path / "train.csv"
    write_manifest(pd.DataFrame(rows), manifest)
    model = tmp_path / "model"
    res = runner.invoke(app, ["detector", "train", "--kind", "spectral-profile", "--train",
                              str(manifest), "--out", str(model), "--classifier", "svm"])
    assert res.exit_code == 0, res.output
    meta = json.loads((model / "model.json").read_text())
    assert meta["kind"] == "spectral-profile" and meta["classifier"]["name"] == "linear-svm"
    res = runner.invoke(app, ["predict", "--model", str(model), str(tree / "gens" / "loud")])
    assert res.exit_code == 0, res.output
    assert res.stdout.count(",fake,") >= 16  # most checkerboard images are called fake
    res = runner.invoke(app, ["evaluate", "bypass", "--train", str(manifest), "--fakes",
                              str(tree / "gens" / "loud"), "--model", str(model), "--n", "30",
                              "--draws", "2"])
    assert res.exit_code == 0, res.output
    assert "spectral-profile / linear-svm" in res.stdout and "loud" in res.stdout


def test_collect_named_names_unlabelled_inputs_after_themselves(tree: Path) -> None:
    df = collect_named([tree / "gens" / "loud", tree / "train"])
    loud = df[df["abspath"].str.contains("/loud/")]
    assert len(loud) == 20 and set(loud["generator"]) == {"loud"}
    train = df[df["abspath"].str.contains("/train/")]
    assert len(train) == 80 and "train" not in set(train["generator"])  # labelled: kept as is
    assert set(train["label"].astype(int)) == {0, 1}
