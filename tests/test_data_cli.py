"""`ganforensics data ...` through the real Typer app: exit codes, outputs, no tracebacks."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from ganforensics.cli.main import app
from ganforensics.data.manifest import read_manifest
from ganforensics.io.loading import NAMED_BAD_FILES
from hostile import write_hostile

runner = CliRunner()


def _img(path, fmt="PNG", size=16, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path, format=fmt)


def _invoke(*args):
    res = runner.invoke(app, [str(a) for a in args])
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    assert "Traceback" not in res.output
    return res


def test_scan_hostile_folder_exit_1_one_row_per_file(tmp_path):
    root = tmp_path / "data"
    _img(root / "real" / "r1.png")
    _img(root / "real" / "r2.jpg", "JPEG")
    _img(root / "fake" / "f1.png")
    expected = write_hostile(root / "fake")
    out = tmp_path / "m" / "manifest.csv"
    res = _invoke("data", "scan", root, "--out", out)
    assert res.exit_code == 1
    df = read_manifest(out)
    assert len(df) == 3 + len(expected)
    errs = dict(zip(df["path"].str.rsplit("/", n=1).str[-1], df["error"], strict=True))
    for name, fragment in expected.items():
        assert fragment in errs[name]
    # one summary warning (io.loading's policy): the count, the first few bad files by name
    summary = [ln for ln in res.output.splitlines() if "unreadable image(s)" in ln]
    assert len(summary) == 1 and "data scan: 6 unreadable image(s) skipped" in summary[0]
    bad_rows = df[df["error"].notna()]
    for path, reason in list(zip(bad_rows["abspath"], bad_rows["error"], strict=True))[
        :NAMED_BAD_FILES
    ]:
        assert f"{path}: {reason}" in summary[0]
    assert f"and {6 - NAMED_BAD_FILES} more" in summary[0]
    assert "scanned 9 files" in res.output and "3 usable, 6 bad" in res.output
    # paths are relative to the manifest and resolve to the files
    assert all(p.startswith("../data/") for p in df["path"])
    # refusing to overwrite, then --force
    assert _invoke("data", "scan", root, "--out", out).exit_code == 3
    assert _invoke("data", "scan", root, "--out", out, "--force").exit_code == 1


def test_scan_clean_folder_exit_0_and_json(tmp_path):
    root = tmp_path / "d"
    _img(root / "biggan" / "0_real" / "a.png")
    _img(root / "biggan" / "1_fake" / "b.png")
    res = _invoke("data", "scan", root, "--out", tmp_path / "m.csv", "--json")
    assert res.exit_code == 0
    start = res.stdout.index("{")
    summ = json.loads(res.stdout[start:])
    assert summ["files"] == 2 and summ["errors"] == 0
    assert summ["by_generator"] == {"biggan": 1, "real": 1}


def test_scan_missing_root_exit_2(tmp_path):
    res = _invoke("data", "scan", tmp_path / "nope", "--out", tmp_path / "m.csv")
    assert res.exit_code == 2 and "not found" in res.output


def test_audit_warns_real_jpeg_fake_png(tmp_path):
    for i in range(4):
        _img(tmp_path / "d" / "real" / f"{i}.jpg", "JPEG", seed=i)
        _img(tmp_path / "d" / "fake" / f"{i}.png", seed=10 + i)
    assert _invoke("data", "scan", tmp_path / "d", "--out", tmp_path / "m.csv").exit_code == 0
    res = _invoke("data", "audit", tmp_path / "m.csv")
    assert res.exit_code == 0
    assert "format differs" in res.stdout and "class real" in res.stdout
    res = _invoke("data", "audit", tmp_path / "m.csv", "--json")
    rep = json.loads(res.stdout)
    assert rep["classes"]["real"]["formats"] == {"JPEG": 4}
    assert any("format differs" in w for w in rep["warnings"])


def test_photos_cli_user_folder(tmp_path):
    src = tmp_path / "ph"
    for i in range(4):
        _img(src / f"p{i}.png", size=64, seed=i)
    out = tmp_path / "out"
    res = _invoke("data", "photos", src, "--size", "16", "--out", out, "--scales", "1")
    assert res.exit_code == 0, res.output
    assert "per split: train" in res.stdout and "total 64 patches" in res.stdout
    df = read_manifest(out / "manifest.csv")
    assert len(df) == 64 and (df.groupby("source")["split"].nunique() == 1).all()
    assert _invoke("data", "photos", src, "--out", out).exit_code == 3
    assert _invoke("data", "photos", src, "--out", out, "--force", "--size", "32",
                   "--scales", "1").exit_code == 0
    assert len(read_manifest(out / "manifest.csv")) == 16
    assert len(list((out / "patches").iterdir())) == 16  # old patches cleared by --force
    bad = _invoke("data", "photos", src, "--out", tmp_path / "o2", "--scales", "a,b")
    assert bad.exit_code == 2 and "--scales" in bad.output


def test_perturb_cli(tmp_path):
    for i in range(3):
        _img(tmp_path / "d" / "real" / f"{i}.png", size=24, seed=i)
    (tmp_path / "d" / "fake").mkdir()
    (tmp_path / "d" / "fake" / "broken.png").write_bytes(b"xx")
    assert _invoke("data", "scan", tmp_path / "d", "--out", tmp_path / "m.csv").exit_code == 1
    out = tmp_path / "pert"
    res = _invoke("data", "perturb", tmp_path / "m.csv", "--op", "jpeg:75", "--op", "blur:1.5",
                  "--op", "crop:16", "--out", out)
    assert res.exit_code == 1  # the broken input stays an error row
    df = read_manifest(out / "manifest.csv")
    assert len(df) == 4 and (df["ops"] == "jpeg:75,blur:1.5,crop:16").all()
    ok = df[df["error"].isna()]
    assert len(ok) == 3 and (ok["width"] == 16).all()
    assert (out / "config.yaml").is_file() and "blur:1.5" in (out / "config.yaml").read_text()
    res = _invoke("data", "perturb", tmp_path / "m.csv", "--op", "jpeg:200", "--out",
                  tmp_path / "p2")
    assert res.exit_code == 2 and "jpeg:200" in res.output
    assert not (tmp_path / "p2").exists()


def test_help_texts():
    for cmd in ("scan", "audit", "photos", "perturb"):
        res = _invoke("data", cmd, "--help")
        assert res.exit_code == 0 and "Example" in res.output
