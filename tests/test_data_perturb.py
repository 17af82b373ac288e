"""Perturbations: parameter effects, determinism per image id, op strings, manifests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from ganforensics.data.manifest import read_manifest
from ganforensics.data.perturb import (
    Chain,
    Op,
    apply_ops,
    blur,
    crop,
    grayscale,
    jpeg,
    noise,
    parse_op,
    resize,
    webp,
)
from ganforensics.data.perturb_dataset import perturb_manifest
from ganforensics.errors import ConfigError, InputError


def _smooth_texture(rng: np.random.Generator, h: int = 48, w: int = 64) -> np.ndarray:
    """A natural-ish image: smooth gradients plus some fine texture."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    base = np.stack([xx / w * 200, yy / h * 180, (xx + yy) / (h + w) * 160], axis=2) + 30
    tex = rng.normal(0, 20, (h, w, 3))
    return np.clip(base + tex, 0, 255).astype(np.uint8)


def _mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))


def _high_freq_energy(img: np.ndarray) -> float:
    g = img.astype(np.float64).mean(axis=2)
    f = np.abs(np.fft.fftshift(np.fft.fft2(g - g.mean())))
    h, w = g.shape
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.hypot(yy - h // 2, xx - w // 2)
    return float(f[r > min(h, w) / 4].sum())


def test_jpeg_lower_quality_larger_error(rng):
    img = _smooth_texture(rng)
    errs = [_mse(jpeg(img, q), img) for q in (95, 75, 30, 10)]
    assert errs == sorted(errs) and errs[0] < 0.6 * errs[-1]
    out = jpeg(img, 75)
    assert out.shape == img.shape and out.dtype == np.uint8


def test_webp_quality_effect(rng):
    img = _smooth_texture(rng)
    assert _mse(webp(img, 90), img) < _mse(webp(img, 10), img)


def test_jpeg_opencv_codec_is_clear_error_when_missing(rng):
    try:
        import cv2  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match="opencv"):
            jpeg(_smooth_texture(rng), 75, codec="opencv")


def test_blur_removes_high_frequencies(rng):
    img = _smooth_texture(rng)
    np.testing.assert_array_equal(blur(img, 0), img)
    e0 = _high_freq_energy(img)
    e1 = _high_freq_energy(blur(img, 0.7))
    e2 = _high_freq_energy(blur(img, 1.5))
    assert e2 < e1 < e0 and e2 < 0.2 * e0
    # a float sigma between two integers lands between them
    e_mid = _high_freq_energy(blur(img, 1.25))
    assert _high_freq_energy(blur(img, 1.5)) < e_mid < _high_freq_energy(blur(img, 1.0))
    # the mean colour is preserved
    assert abs(blur(img, 2.0).mean() - img.mean()) < 1.0


def test_resize_sizes_and_antialiasing():
    # a one-pixel checkerboard: an antialiased 2x downscale averages it to mid-grey
    board = ((np.indices((40, 60)).sum(axis=0) % 2) * 255).astype(np.uint8)
    img = np.repeat(board[..., None], 3, axis=2)
    half = resize(img, 0.5)
    assert half.shape == (20, 30, 3)
    assert abs(float(half.mean()) - 127.5) < 3 and half.std() < 5
    nearest = resize(img, 0.5, "nearest")
    assert abs(float(nearest.mean()) - 127.5) > 100  # nearest aliases to one phase
    assert resize(img, 1.5, "bicubic").shape == (60, 90, 3)
    with pytest.raises(ConfigError, match="filter"):
        resize(img, 0.5, "cubic-ish")


def test_crop_centre_and_random(rng):
    img = _smooth_texture(rng, 40, 50)
    c = crop(img, 20)
    np.testing.assert_array_equal(c, img[10:30, 15:35])
    assert crop(img, (10, 30)).shape == (10, 30, 3)
    r1 = crop(img, 20, np.random.default_rng(1))
    r2 = crop(img, 20, np.random.default_rng(1))
    np.testing.assert_array_equal(r1, r2)
    with pytest.raises(InputError, match="smaller than the crop"):
        crop(img, 64)


def test_noise_std_and_clip(rng):
    img = np.full((64, 64, 3), 128, np.uint8)
    out = noise(img, 10, np.random.default_rng(0))
    assert 9.0 < (out.astype(float) - 128).std() < 11.0
    np.testing.assert_array_equal(noise(img, 0, np.random.default_rng(0)), img)


def test_grayscale_weights():
    img = np.zeros((2, 3, 3), np.uint8)
    img[0, 0] = (255, 0, 0)
    img[0, 1] = (0, 255, 0)
    img[0, 2] = (0, 0, 255)
    img[1, :] = (10, 200, 40)
    g = grayscale(img)
    assert g.dtype == np.uint8 and g.shape == (2, 3, 3)
    assert (g[..., 0] == g[..., 1]).all() and (g[..., 1] == g[..., 2]).all()
    assert list(g[0, :, 0]) == [76, 150, 29]  # round(255 * 0.299 / 0.587 / 0.114)
    assert g[1, 0, 0] == round(0.299 * 10 + 0.587 * 200 + 0.114 * 40)


@pytest.mark.parametrize(
    "text,name,params,canon",
    [
        ("jpeg:75", "jpeg", {"quality": 75, "codec": "pil"}, "jpeg:75"),
        ("JPEG:75:pil", "jpeg", {"quality": 75, "codec": "pil"}, "jpeg:75"),
        ("webp:80", "webp", {"quality": 80}, "webp:80"),
        ("blur:1.5", "blur", {"sigma": 1.5}, "blur:1.5"),
        ("blur:2", "blur", {"sigma": 2.0}, "blur:2"),
        ("resize:0.5", "resize", {"scale": 0.5, "filter": "bilinear"}, "resize:0.5"),
        ("resize:0.5:bicubic", "resize", {"scale": 0.5, "filter": "bicubic"},
         "resize:0.5:bicubic"),
        ("crop:224", "crop", {"size": "224"}, "crop:224"),
        ("crop:224x192", "crop", {"size": "224x192"}, "crop:224x192"),
        ("noise:5", "noise", {"std": 5.0}, "noise:5"),
        ("grayscale", "grayscale", {}, "grayscale"),
    ],
)
def test_parse_op_and_round_trip(text, name, params, canon):
    op = parse_op(text)
    assert op.name == name and op.params == params
    assert str(op) == canon
    assert parse_op(str(op)) == op


@pytest.mark.parametrize(
    "text,needle",
    [
        ("jpg:75", "unknown perturbation"),
        ("jpeg", "missing quality"),
        ("jpeg:abc", "integer"),
        ("jpeg:0", "1..100"),
        ("jpeg:101", "1..100"),
        ("blur:-1", ">= 0"),
        ("blur:nan", "finite"),
        ("resize:0", "> 0"),
        ("resize:0.5:fancy", "filter"),
        ("crop:0", "positive"),
        ("crop:ax3", "integer"),
        ("noise:5:6", "too many"),
        ("grayscale:1", "too many"),
    ],
)
def test_parse_op_errors_name_the_op(text, needle):
    with pytest.raises(ConfigError) as ei:
        parse_op(text)
    assert needle in str(ei.value)
    assert repr(text) in str(ei.value) or text in str(ei.value)


def test_determinism_per_image_id(rng):
    img = _smooth_texture(rng, 64, 64)
    n = parse_op("noise:5")
    np.testing.assert_array_equal(n(img, "a.png"), n(img, "a.png"))
    assert not np.array_equal(n(img, "a.png"), n(img, "b.png"))
    c = parse_op("crop:16")
    crops_a = [c(img, f"img{i}") for i in range(8)]
    np.testing.assert_array_equal(c(img, "img3"), crops_a[3])
    assert len({a.tobytes() for a in crops_a}) > 1  # different ids -> different positions
    # deterministic ops ignore the id
    j = parse_op("jpeg:50")
    np.testing.assert_array_equal(j(img, "x"), j(img, "y"))


def test_chain_order_and_str(rng):
    img = _smooth_texture(rng, 64, 64)
    chain = Chain(["blur:1.5", "jpeg:75", "crop:32", "noise:2"])
    assert str(chain) == "blur:1.5,jpeg:75,crop:32,noise:2"
    out = chain(img, "id1")
    assert out.shape == (32, 32, 3)
    np.testing.assert_array_equal(out, apply_ops(img, "blur:1.5,jpeg:75,crop:32,noise:2", "id1"))
    np.testing.assert_array_equal(out, apply_ops(img, [parse_op("blur:1.5"), "jpeg:75",
                                                       "crop:32", "noise:2"], "id1"))
    manual = jpeg(blur(img, 1.5), 75)
    assert _mse(crop(manual, 32, None), manual[16:48, 16:48]) == 0  # centre crop sanity
    # order matters: jpeg then blur differs from blur then jpeg
    assert not np.array_equal(apply_ops(img, "blur:1.5,jpeg:75", "i"),
                              apply_ops(img, "jpeg:75,blur:1.5", "i"))
    # a repeated noise op draws fresh noise at each step
    twice = apply_ops(np.full((32, 32, 3), 128, np.uint8), "noise:4,noise:4", "i")
    assert 5.0 < (twice.astype(float) - 128).std() < 6.5  # ~ 4 * sqrt(2)
    assert isinstance(chain.ops[0], Op)


def test_primitives_reject_non_rgb():
    with pytest.raises(InputError, match="RGB uint8"):
        blur(np.zeros((4, 4), np.uint8), 1.0)
    with pytest.raises(InputError, match="RGB uint8"):
        jpeg(np.zeros((4, 4, 3), np.float32), 50)


def _png(path, arr):
    Image.fromarray(arr).save(path, format="PNG")
    return str(path.resolve())


def test_perturb_manifest_writes_pngs_and_error_rows(tmp_path, rng):
    src = tmp_path / "src"
    src.mkdir()
    a = _png(src / "a.png", _smooth_texture(rng, 40, 40))
    b = _png(src / "b.png", _smooth_texture(rng, 40, 40))
    small = _png(src / "small.png", _smooth_texture(rng, 10, 10))
    bad = src / "bad.png"
    bad.write_bytes(b"not an image")
    df = pd.DataFrame(
        {
            "path": ["a.png", "b.png", "small.png", "bad.png", "gone.png"],
            "abspath": [a, b, small, str(bad.resolve()), str((src / "gone.png").resolve())],
            "label": [0, 1, 1, 0, 0],
            "generator": ["real", "ganX", "ganX", "real", "real"],
            "source": ["p1", "run1", "run1", "p2", "p3"],
            "split": ["test"] * 5,
            "sha256": [None, None, None, None, "abc"],
            "error": [None, None, None, None, "file not found"],
        }
    )
    out = tmp_path / "out"
    res = perturb_manifest(df, ["jpeg:50", "crop:32"], out)
    assert len(res) == 5
    assert list(res["generator"]) == ["real", "ganX", "ganX", "real", "real"]
    assert list(res["source"]) == ["p1", "run1", "run1", "p2", "p3"]
    assert (res["ops"] == "jpeg:50,crop:32").all()
    ok = res[res["error"].isna()]
    assert len(ok) == 2 and (ok["format"] == "PNG").all()
    assert (ok["width"] == 32).all()
    assert "smaller than the crop" in res.loc[2, "error"]
    assert "not a recognised image" in res.loc[3, "error"]
    assert res.loc[4, "error"] == "file not found"
    # the written PNG holds exactly the perturbed pixels (no second compression)
    first = np.asarray(Image.open(ok.iloc[0]["abspath"]).convert("RGB"))
    expect = apply_ops(np.asarray(Image.open(a).convert("RGB")), "jpeg:50,crop:32", "a.png")
    np.testing.assert_array_equal(first, expect)
    back = read_manifest(out / "manifest.csv")
    assert len(back) == 5 and back["ops"].iloc[0] == "jpeg:50,crop:32"
    assert back.loc[0, "abspath"] == ok.iloc[0]["abspath"]
    # the same call again gives identical files (deterministic)
    res2 = perturb_manifest(df, ["jpeg:50", "crop:32"], tmp_path / "out2")
    assert list(res2["sha256"].dropna()) == list(res["sha256"].dropna())


def test_perturb_manifest_needs_ops(tmp_path):
    df = pd.DataFrame({"path": [], "abspath": [], "label": []})
    with pytest.raises(ConfigError, match="at least one op"):
        perturb_manifest(df, [], tmp_path / "o")
    empty = perturb_manifest(df, ["jpeg:50"], tmp_path / "o")
    assert len(empty) == 0 and {"ops", "orig_path", "error", "label"} <= set(empty.columns)
