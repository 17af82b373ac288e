"""Bulk scoring on Ray Data (`predict --engine ray`) on a local 2-CPU cluster: same rows as
local `predict`, hostile files as error rows, reruns skip finished partitions."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganforensics.detectors.cnn.archs import build_model
from ganforensics.detectors.cnn.model import CNNDetector
from ganforensics.errors import ConfigError
from ganforensics.evaluate.bulk import _actor_count, part_name, predict_ray, read_bulk
from ganforensics.evaluate.predict import predict_inputs
from hostile import write_hostile

ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install "
                          "'ganforensics[ray]' (the dev extra includes it)")


@pytest.fixture(scope="session")
def ray_cluster():
    """One local 2-CPU cluster for the session (starting one costs seconds)."""
    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=200 * 1024**2,
             log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """A small saved CNN and a folder of 14 PNGs (two sizes) plus the hostile files."""
    root = tmp_path_factory.mktemp("bulk")
    torch.manual_seed(0)
    det = CNNDetector(build_model("small"), "small", input_size=32, crop="center")
    det.save(root / "model")
    rng = np.random.default_rng(0)
    imgs = root / "imgs"
    imgs.mkdir()
    for i in range(14):
        side = 32 if i % 3 else 40
        arr = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
        Image.fromarray(arr).save(imgs / f"img_{i:02d}.png")
    hostile = write_hostile(imgs)
    return root, det, hostile


def _local(det, imgs):
    return predict_inputs(det, [imgs], batch_size=4, progress=False)


def test_actors_never_hold_every_cpu():
    assert _actor_count(2, 1.0, None) == 1
    assert _actor_count(2, 1.0, 2) == 1  # clipped, with a warning
    assert _actor_count(2, 0.5, None) == 2
    assert _actor_count(8, 2.0, 3) == 3
    with pytest.raises(ConfigError):
        _actor_count(2, 2.0, None)


@pytest.mark.slow
def test_ray_matches_local_predict_and_rerun_recomputes_one_partition(ray_cluster, scored,
                                                                      tmp_path):
    root, det, hostile = scored
    imgs = root / "imgs"
    local = _local(det, imgs)
    out = tmp_path / "bulk"
    res = predict_ray(root / "model", [imgs], out, batch_size=4, partition_rows=6)
    n_parts = -(-len(local) // 6)
    assert sorted(res.computed) == list(range(n_parts)) and res.skipped == []
    got = read_bulk(out)
    assert list(got.columns) == list(local.columns)
    assert got["path"].tolist() == local["path"].tolist()
    assert got["error"].tolist() == local["error"].tolist()
    assert got["decision"].tolist() == local["decision"].tolist()
    ok = local["error"] == ""
    assert ok.sum() == 14
    np.testing.assert_allclose(got.loc[ok, "prob_fake"], local.loc[ok, "prob_fake"], atol=1e-5)
    bad = got.loc[~ok]
    names = {Path(p).name for p in bad["path"]}
    scanned_bad = {n for n in hostile if (imgs / n).suffix.lower() != ".txt"}
    assert scanned_bad <= names  # one error row per bad image file, as locally
    for name in scanned_bad:
        row = bad[bad["path"].map(lambda p, n=name: Path(p).name == n)]
        assert len(row) == 1 and hostile[name] in row["error"].iat[0]
    assert res.n_rows == len(local) and res.n_errors == int((~ok).sum())

    # delete one partition: a rerun computes that one only and leaves the others untouched
    stamps = {k: (out / part_name(k)).stat().st_mtime_ns for k in range(n_parts)}
    (out / part_name(1)).unlink()
    again = predict_ray(root / "model", [imgs], out, batch_size=4, partition_rows=6)
    assert again.computed == [1]
    assert sorted(again.skipped) == [k for k in range(n_parts) if k != 1]
    for k in range(n_parts):
        if k != 1:
            assert (out / part_name(k)).stat().st_mtime_ns == stamps[k]
    assert read_bulk(out).equals(got)
    # a third run has nothing to do
    assert predict_ray(root / "model", [imgs], out, partition_rows=6).computed == []


@pytest.mark.slow
def test_ray_with_onnxruntime_backend_matches_local(ray_cluster, scored, tmp_path):
    root, det, _ = scored
    local = _local(det, root / "imgs")
    out = tmp_path / "bulk-onnx"
    predict_ray(root / "model", [root / "imgs"], out, backend="onnxruntime", batch_size=4,
                partition_rows=100)
    got = read_bulk(out)
    ok = local["error"] == ""
    np.testing.assert_allclose(got.loc[ok, "logit"], local.loc[ok, "logit"], atol=1e-4)
    assert got["error"].tolist() == local["error"].tolist()


def test_local_predict_does_not_import_ray(scored, tmp_path):
    root, _, _ = scored
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from ganforensics.cli.main import app\n"
        f"r = CliRunner().invoke(app, ['predict', '--model', r'{root / 'model'}', "
        f"r'{root / 'imgs' / 'img_01.png'}'])\n"
        "assert r.exit_code == 0, r.output\n"
        "assert 'ray' not in sys.modules, 'ray was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.slow
def test_cli_engine_ray_writes_partitions_and_exits_1_on_bad_files(ray_cluster, scored,
                                                                  tmp_path):
    from typer.testing import CliRunner

    from ganforensics.cli.main import app

    root, _, _ = scored
    out = tmp_path / "cli"
    args = ["predict", "--model", str(root / "model"), str(root / "imgs"), "--engine", "ray",
            "--out", str(out), "--partition-rows", "10", "--cpus-per-actor", "0.5"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 1, r.output  # the hostile files are error rows
    assert "partition(s) scored" in r.output
    assert len(list(out.glob("part-*.parquet"))) == 2
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 1 and "0 partition(s) scored, 2 already done" in r.output
    r = CliRunner().invoke(app, [*args[:-4], "--partition-rows", "7"])
    assert r.exit_code == 3  # another plan in the same folder needs --force


@pytest.mark.slow
def test_uri_list_is_read_by_the_actors_with_error_rows(ray_cluster, scored, tmp_path):
    root, det, _ = scored
    imgs = root / "imgs"
    good = [imgs / f"img_{i:02d}.png" for i in (1, 2, 3)]
    uris = [p.as_uri() for p in good]
    uris += [(imgs / "missing.png").as_uri(), (imgs / "truncated.jpg").as_uri()]
    (tmp_path / "uris.txt").write_text("# one URI a line\n" + "\n".join(uris) + "\n")
    predict_ray(root / "model", [tmp_path / "uris.txt"], tmp_path / "out", batch_size=2)
    got = read_bulk(tmp_path / "out")
    assert got["path"].tolist() == uris  # rows keep the URIs as given
    local = predict_inputs(det, good, progress=False)
    np.testing.assert_allclose(got["prob_fake"][:3], local["prob_fake"], atol=1e-5)
    assert got["error"][:3].tolist() == ["", "", ""]
    assert got["error"][3].startswith("cannot read") and "truncated" in got["error"][4]
