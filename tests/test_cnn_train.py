"""Training recipes: the small CNN learns to spot transposed-conv up-sampling; checkpoints
resume to the same weights; recipe constants; augmentations."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from skimage import data as skdata
from typer.testing import CliRunner

from ganforensics.cli.main import app
from ganforensics.detectors.cnn import RECIPES, build_model, load_cnn_detector, train_cnn_detector
from ganforensics.detectors.cnn import train as train_mod
from ganforensics.detectors.cnn.augment import augment_train, augment_val
from ganforensics.detectors.cnn.data import ImageSet, as_image_set, split_train_val
from ganforensics.detectors.cnn.recipes import get_recipe, make_optimizer
from ganforensics.metrics.detection import detection_metrics

PHOTOS = ("astronaut", "coffee", "rocket", "chelsea", "immunohistochemistry")


def _upsampler() -> torch.nn.ConvTranspose2d:
    g = torch.Generator().manual_seed(0)
    up = torch.nn.ConvTranspose2d(3, 3, kernel_size=4, stride=2, padding=1, bias=False)
    with torch.no_grad():  # mean 1/12 keeps brightness; the spread makes a checkerboard
        up.weight.copy_(1 / 12 + 0.3 / 12 * torch.randn(up.weight.shape, generator=g))
    return up


def _patches(img: np.ndarray, size: int, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    h, w = img.shape[:2]
    out = []
    for _ in range(n):
        t, left = rng.integers(0, h - size + 1), rng.integers(0, w - size + 1)
        out.append(img[t : t + size, left : left + size].copy())
    return out


def make_split(names, n_per: int, seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Real 32x32 patches, and fakes: 16x16 patches up-sampled by a fixed random ConvT."""
    rng = np.random.default_rng(seed)
    up = _upsampler()
    images, labels = [], []
    for name in names:
        photo = getattr(skdata, name)()[..., :3]
        images += _patches(photo, 32, n_per, rng)
        labels += [0] * n_per
        for p in _patches(photo, 16, n_per, rng):
            x = torch.from_numpy(p).permute(2, 0, 1)[None].float()
            with torch.no_grad():
                y = up(x)[0].permute(1, 2, 0).numpy()
            images.append(np.clip(np.rint(y), 0, 255).astype(np.uint8))
            labels.append(1)
    return images, np.array(labels)


@pytest.mark.slow
def test_small_cnn_wang2020_separates_transposed_conv_patches(tmp_path):
    train = make_split(PHOTOS[:3], 50, 0)
    val = make_split(PHOTOS[3:4], 40, 1)
    test = make_split(PHOTOS[4:], 60, 2)  # a photo never seen in training
    det = train_cnn_detector("small", "wang2020", train, val, tmp_path / "m", epochs=6,
                             aug_prob=0.1, progress=False)
    m = detection_metrics(test[1], det.probs(test[0]), det.threshold)
    assert m["ap"] >= 0.95, m
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    assert meta["recipe"] == "wang2020" and meta["seed"] == 2021
    assert meta["recipe_params"]["aug_prob"] == 0.1 and meta["recipe_params"]["lr"] == 1e-4
    assert len(meta["train_data_sha256"]) == 64 and meta["metrics"]["val"]["n"] == 80
    assert 0 < meta["threshold"] < 1 and len(meta["history"]) == meta["epochs"]
    assert (tmp_path / "m" / "checkpoint.pt").is_file()
    assert (tmp_path / "m" / "history.csv").is_file()


def _tiny(seed: int = 0, n: int = 24):
    rng = np.random.default_rng(seed)
    imgs = [rng.integers(0, 256, (36, 36, 3), dtype=np.uint8) for _ in range(n)]
    labels = np.arange(n) % 2
    for im, lab in zip(imgs, labels, strict=True):  # learnable: fakes brighter
        if lab:
            im[:] = np.clip(im.astype(int) + 40, 0, 255)
    return imgs, labels


@pytest.mark.slow
def test_interrupted_training_resumes_to_the_same_weights(tmp_path, monkeypatch):
    kwargs = dict(epochs=3, batch_size=8, progress=False, crop_size=32)
    ref = train_cnn_detector("small", "wang2020", _tiny(), _tiny(1, 12), tmp_path / "ref",
                             **kwargs)
    original = train_mod._save_checkpoint

    def crash_after_two(path, state):
        original(path, state)
        if state["state"]["epoch"] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(train_mod, "_save_checkpoint", crash_after_two)
    with pytest.raises(KeyboardInterrupt):
        train_cnn_detector("small", "wang2020", _tiny(), _tiny(1, 12), tmp_path / "run",
                           **kwargs)
    assert not (tmp_path / "run" / "model.json").exists()
    monkeypatch.setattr(train_mod, "_save_checkpoint", original)
    resumed = train_cnn_detector("small", "wang2020", _tiny(), _tiny(1, 12), tmp_path / "run",
                                 **kwargs)
    assert [h["epoch"] for h in resumed.meta["history"]] == [1, 2, 3]
    for (k, a), b in zip(ref.model.state_dict().items(), resumed.model.state_dict().values(),
                         strict=True):
        assert torch.equal(a, b), k
    # a different config in the same folder is refused; the finished run is just loaded
    from ganforensics.errors import RunExistsError

    with pytest.raises(RunExistsError, match="different config"):
        train_cnn_detector("small", "wang2020", _tiny(), _tiny(1, 12), tmp_path / "run",
                           seed=5, **kwargs)
    again = train_cnn_detector("small", "wang2020", _tiny(), _tiny(1, 12), tmp_path / "run",
                               **kwargs)
    assert again.meta["history"] == resumed.meta["history"]


def test_recipe_constants_and_khan_layer_groups():
    w, k = RECIPES["wang2020"], RECIPES["khan2019"]
    assert (w.optimizer, w.lr, w.betas, w.batch_size, w.aug_prob) == ("adam", 1e-4,
                                                                        (0.9, 0.999), 64, 0.5)
    assert (w.val_blur_sigma, w.val_jpeg_quality, w.patience, w.min_delta, w.min_lr) == (
        1.5, 65, 5, 0.001, 1e-6)
    model = build_model("resnet18")
    opt = make_optimizer(model, "resnet18", k)
    assert isinstance(opt, torch.optim.SGD)
    body, head = opt.param_groups
    assert body["lr"] == 1e-3 and body["weight_decay"] == pytest.approx(2e-3)
    assert head["lr"] == 5e-5 and head["weight_decay"] == pytest.approx(2e-5)
    assert body["momentum"] == 0.9 and head["momentum"] == 0.9
    assert {id(p) for p in head["params"]} == {id(p) for p in model.fc.parameters()}
    assert len(body["params"]) + len(head["params"]) == len(list(model.parameters()))


@pytest.mark.slow
def test_lr_drops_then_stops_below_min_lr(monkeypatch):
    """Constant validation accuracy: after `patience` epochs lr/10 twice (1e-5, 1e-6), then
    stop because 1e-7 < 1e-6. (Patience 2 here to keep it short; the recipe's is 5.)"""
    monkeypatch.setattr(train_mod, "_val_logits", lambda model, views, *a: np.zeros(len(views)))
    recipe = get_recipe("wang2020", patience=2)
    det = train_cnn_detector("small", recipe, _tiny(0, 8), _tiny(1, 4), None, epochs=40,
                             batch_size=8, progress=False, crop_size=16)
    lrs = [h["lr"] for h in det.meta["history"]]
    assert len(lrs) == 7 and det.meta["stopped_early"]
    assert lrs[:3] == [1e-4] * 3 and lrs[3:5] == pytest.approx([1e-5] * 2)
    assert lrs[5:] == pytest.approx([1e-6] * 2)


def test_augmentations_grayscale_crop_and_deterministic_val(rng):
    img = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
    rec = RECIPES["wang2020"]
    views = [augment_train(img, np.random.default_rng(i), rec, 32, True)
             for i in range(60)]
    assert all(v.shape == (32, 32, 3) for v in views)
    gray = sum(bool((v[..., 0] == v[..., 1]).all() and (v[..., 1] == v[..., 2]).all())
               for v in views)
    assert 15 <= gray <= 45  # RandomGrayscale p = 0.5
    plain = [augment_train(img, np.random.default_rng(i), rec, 32, False)
             for i in range(30)]
    assert not any((v[..., 0] == v[..., 2]).all() for v in plain)
    a = [augment_val(img, i, rec, 32, 2021) for i in range(20)]
    b = [augment_val(img, i, rec, 32, 2021) for i in range(20)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert sum(not np.array_equal(x, img[4:36, 8:40]) for x in a) >= 5  # some got blur/JPEG


def test_cli_train_from_manifests(tmp_path):
    rows = []
    for split, (imgs, labels) in (("train", _tiny(0, 16)), ("val", _tiny(1, 8))):
        for i, (im, lab) in enumerate(zip(imgs, labels, strict=True)):
            p = tmp_path / split / f"{i}.png"
            p.parent.mkdir(exist_ok=True)
            Image.fromarray(im).save(p)
            rows.append({"path": f"{split}/{i}.png", "label": int(lab), "split": split,
                         "generator": "real" if lab == 0 else "toy"})
    df = pd.DataFrame(rows)
    df[df.split == "train"].to_csv(tmp_path / "train.csv", index=False)
    df[df.split == "val"].to_csv(tmp_path / "val.csv", index=False)
    args = ["detector", "train", "--arch", "small", "--train", str(tmp_path / "train.csv"),
            "--val", str(tmp_path / "val.csv"), "--out", str(tmp_path / "m"), "--epochs", "1",
            "--batch-size", "8", "--json"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout.strip().splitlines()[-1])["kind"] == "cnn"
    det = load_cnn_detector(tmp_path / "m")
    assert det.meta["train_manifest_sha256"] and det.input_size == 36
    res = CliRunner().invoke(app, ["detector", "train", "--arch", "small"])
    assert res.exit_code == 2 and "--train" in res.output


def test_khan2019_without_val_holds_out_30_percent_of_sources(tmp_path):
    rng = np.random.default_rng(3)
    rows = []
    for s in range(10):  # 10 source photos, 4 patches each
        for j in range(4):
            lab = j % 2
            im = np.clip(rng.normal(100 + 40 * lab, 20, (20, 20, 3)), 0, 255).astype(np.uint8)
            p = tmp_path / f"s{s}_{j}.png"
            Image.fromarray(im).save(p)
            rows.append({"path": p.name, "abspath": str(p), "label": lab, "source": f"photo{s}",
                         "generator": "real" if lab == 0 else "toy"})
    df = pd.DataFrame(rows)
    det = train_cnn_detector("small", "khan2019", df, None, None, epochs=1, batch_size=8,
                             progress=False)
    assert det.meta["n_val"] == 12 and det.meta["n_train"] == 28  # 3 of 10 sources
    assert det.meta["recipe"] == "khan2019" and "held out 30%" in det.meta["validation"]
    split_tr, split_va = split_train_val(as_image_set(df), 0.3, 2021)
    assert not set(split_tr.sources) & set(split_va.sources)


def test_hold_out_works_when_all_fakes_share_one_source():
    rng = np.random.default_rng(0)
    n_real, n_fake = 24, 20
    images = [rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for _ in range(n_real + n_fake)]
    sources = [f"photo{i % 6}" for i in range(n_real)] + ["gan-run-1"] * n_fake
    labels = np.array([0] * n_real + [1] * n_fake)
    data = ImageSet(images, labels, ["real"] * n_real + ["toy"] * n_fake, sources)
    tr, va = split_train_val(data, 0.3, 2021)
    assert set(tr.labels.tolist()) == {0, 1} and set(va.labels.tolist()) == {0, 1}
    real_tr = {s for s, y in zip(tr.sources, tr.labels, strict=True) if y == 0}
    real_va = {s for s, y in zip(va.sources, va.labels, strict=True) if y == 0}
    assert real_tr and real_va and not real_tr & real_va  # photos still never straddle
    assert len(va) + len(tr) == len(data) and (va.labels == 1).sum() == 6  # 30 % of 20 fakes


def test_manifest_rows_decode_once_with_error_rows_and_one_warning(tmp_path, capsys):
    imgs, labels = _tiny(0, 4)
    rows = []
    for i, (im, lab) in enumerate(zip(imgs, labels, strict=True)):
        Image.fromarray(im).save(tmp_path / f"{i}.png")
        rows.append({"abspath": str(tmp_path / f"{i}.png"), "label": int(lab), "error": ""})
    for name in ("bad1.png", "bad2.png"):
        (tmp_path / name).write_bytes(b"not a png")
        rows.append({"abspath": str(tmp_path / name), "label": 1, "error": ""})
    rows.append({"abspath": str(tmp_path / "gone.png"), "label": 0, "error": "file not found"})
    data = as_image_set(pd.DataFrame(rows), "toy set")
    assert len(data) == 4 and data.labels.tolist() == labels.tolist()
    assert [p for p, _ in data.errors] == [str(tmp_path / "bad1.png"), str(tmp_path / "bad2.png")]
    err = capsys.readouterr().err
    assert err.count("toy set: 2 unreadable image(s) skipped") == 1 and "gone.png" not in err
