"""Audit: JPEG quality estimate, per-class stats and the imbalance warnings."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from ganforensics.data.audit import audit, estimate_jpeg_quality
from ganforensics.data.importers import scan_folder


def _qtables(quality: int, **kw) -> dict[int, list[int]]:
    buf = io.BytesIO()
    arr = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    Image.fromarray(arr).save(buf, format="JPEG", quality=quality, **kw)
    buf.seek(0)
    return {k: list(v) for k, v in Image.open(buf).quantization.items()}


@pytest.mark.parametrize("q", [5, 30, 50, 65, 75, 90, 95, 100])
def test_estimate_jpeg_quality_exact_for_ijg(q):
    assert estimate_jpeg_quality(_qtables(q)) == q


def test_estimate_jpeg_quality_grayscale_and_none():
    buf = io.BytesIO()
    Image.fromarray(np.zeros((16, 16), np.uint8), "L").save(buf, format="JPEG", quality=60)
    buf.seek(0)
    assert estimate_jpeg_quality(dict(Image.open(buf).quantization)) == 60
    assert estimate_jpeg_quality(None) is None
    assert estimate_jpeg_quality({}) is None


def _dataset(tmp_path, real_fmt="JPEG", fake_fmt="PNG", real_size=32, fake_size=32,
             real_q=90, fake_q=90, real_exif=False, n=6):
    rng = np.random.default_rng(0)
    for cls, fmt, size, q, exif in (
        ("real", real_fmt, real_size, real_q, real_exif),
        ("fake", fake_fmt, fake_size, fake_q, False),
    ):
        (tmp_path / cls).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            im = Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
            kw = {}
            if fmt == "JPEG":
                kw["quality"] = q
                if exif:
                    ex = im.getexif()
                    ex[0x010F] = "SomeCamera"
                    kw["exif"] = ex.tobytes()
            ext = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}[fmt]
            im.save(tmp_path / cls / f"{i}.{ext}", format=fmt, **kw)
    return scan_folder(tmp_path)


def test_audit_warns_real_jpeg_fake_png(tmp_path):
    rep = audit(_dataset(tmp_path))
    assert rep["classes"]["real"]["formats"] == {"JPEG": 6}
    assert rep["classes"]["fake"]["formats"] == {"PNG": 6}
    assert rep["classes"]["real"]["jpeg_quality"]["median"] == 90
    assert rep["classes"]["fake"]["jpeg_quality"] is None
    assert any(w.startswith("format differs") and "JPEG" in w and "PNG" in w
               for w in rep["warnings"])
    assert not any("sizes differ" in w for w in rep["warnings"])


def test_audit_balanced_dataset_has_no_warnings(tmp_path):
    rep = audit(_dataset(tmp_path, real_fmt="PNG"))
    assert rep["warnings"] == []


def test_audit_size_quality_exif_warnings(tmp_path):
    rep = audit(_dataset(tmp_path / "a", real_fmt="PNG", real_size=48, fake_size=32))
    assert [w for w in rep["warnings"] if "sizes differ" in w]
    assert "48x48" in rep["classes"]["real"]["sizes"]["most_common"][0][0]
    rep = audit(_dataset(tmp_path / "b", fake_fmt="JPEG", real_q=95, fake_q=75))
    assert [w for w in rep["warnings"] if "JPEG quality differs" in w]
    assert not [w for w in rep["warnings"] if "format differs" in w]
    rep = audit(_dataset(tmp_path / "c", fake_fmt="JPEG", real_exif=True))
    assert [w for w in rep["warnings"] if "EXIF" in w]
    assert rep["classes"]["real"]["exif"]["share"] == 1.0


def test_audit_reads_missing_facts_and_skips_errors(tmp_path):
    df = _dataset(tmp_path)
    slim = df[["path", "abspath", "label", "generator"]].copy()
    slim.loc[len(slim)] = ["x.png", str(tmp_path / "missing.png"), 1, "fake"]
    rep = audit(slim)
    assert rep["errors"] == 1 and rep["usable"] == 12
    assert rep["classes"]["real"]["formats"] == {"JPEG": 6}
    assert any("format differs" in w for w in rep["warnings"])
    assert any("errors" in w for w in rep["warnings"])


def test_audit_per_generator_and_class_imbalance(tmp_path):
    df = _dataset(tmp_path, real_fmt="PNG", n=10)
    extra = df[df["label"] == 1].head(2).copy()
    extra["generator"] = "other"
    mixed = pd.concat([df[df["label"] == 0], extra], ignore_index=True)
    rep = audit(mixed)
    assert set(rep["generators"]) == {"real", "other"}
    assert any("imbalanced" in w for w in rep["warnings"])
