"""Run folders never overwrite silently; manifests round-trip with relative paths; atomic
writes leave no partial file; threshold calibration uses only the data it is given."""

from __future__ import annotations

import json
import stat

import numpy as np
import pandas as pd
import pytest
import yaml

from ganforensics.data.manifest import new_manifest, read_manifest, write_manifest
from ganforensics.errors import InputError, RunExistsError
from ganforensics.io import atomic
from ganforensics.io.atomic import atomic_path, write_json_atomic, write_text_atomic
from ganforensics.io.runs import RunFolder
from ganforensics.metrics.threshold import calibrate_threshold


def test_run_folder_writes_config_env_and_refuses_overwrite(tmp_path):
    run = RunFolder.create(tmp_path / "r", {"a": 1, "b": [1, 2]}, seed=7)
    assert yaml.safe_load((run.path / "config.yaml").read_text()) == {"a": 1, "b": [1, 2]}
    env = json.loads((run.path / "env.json").read_text())
    assert env["seed"] == 7 and "torch" in env["versions"]
    run.write_json("results.json", {"ap": 0.9})
    with pytest.raises(RunExistsError, match="--force"):
        RunFolder.create(tmp_path / "r", {"a": 1, "b": [1, 2]})
    # same config may resume; a different one may not
    assert RunFolder.create(tmp_path / "r", {"a": 1, "b": [1, 2]}, resume=True).path == run.path
    with pytest.raises(RunExistsError, match="differs in: a"):
        RunFolder.create(tmp_path / "r", {"a": 2, "b": [1, 2]}, resume=True)
    RunFolder.create(tmp_path / "r", {"a": 2}, force=True)
    assert yaml.safe_load((run.path / "config.yaml").read_text()) == {"a": 2}


def test_a_resumed_run_may_grow_only_the_keys_the_caller_names(tmp_path):
    RunFolder.create(tmp_path / "r", {"steps": 10, "lr": 0.1, "ema": True}).write_json("x", {})
    grow = {"extendable": ("steps",), "resume": True}
    for bad, keys in (({"steps": 5, "lr": 0.1, "ema": True}, "steps"),  # shrinks
                      ({"steps": 20, "lr": 0.2, "ema": True}, "lr, steps"),  # lr not named
                      ({"steps": "20", "lr": 0.1, "ema": True}, "steps")):  # not a number
        with pytest.raises(RunExistsError, match=f"differs in: {keys}"):
            RunFolder.create(tmp_path / "r", bad, **grow)
    run = RunFolder.create(tmp_path / "r", {"steps": 20, "lr": 0.1, "ema": True}, **grow)
    assert run.extended == {"steps": (10, 20)}
    assert yaml.safe_load((run.path / "config.yaml").read_text())["steps"] == 20
    assert json.loads((run.path / "env.json").read_text())["extended"] == {"steps": [10, 20]}
    same = RunFolder.create(tmp_path / "r", {"steps": 20, "lr": 0.1, "ema": True}, **grow)
    assert same.extended == {}


def test_a_resumed_run_may_move_to_another_device_and_says_so(tmp_path):
    RunFolder.create(tmp_path / "r", {"device": "cuda", "lr": 0.1}).write_json("x", {})
    with pytest.raises(RunExistsError, match="differs in: device"):  # not a movable key
        RunFolder.create(tmp_path / "r", {"device": "cpu", "lr": 0.1}, resume=True)
    move = {"movable": ("device",), "resume": True}
    with pytest.raises(RunExistsError, match="differs in: device, lr"):  # lr still may not
        RunFolder.create(tmp_path / "r", {"device": "cpu", "lr": 0.2}, **move)
    run = RunFolder.create(tmp_path / "r", {"device": "cpu", "lr": 0.1}, **move)
    assert run.moved == {"device": ("cuda", "cpu")} and run.extended == {}
    assert yaml.safe_load((run.path / "config.yaml").read_text())["device"] == "cpu"
    assert json.loads((run.path / "env.json").read_text())["moved"] == {"device": ["cuda", "cpu"]}


def test_moves_are_kept_over_resumes_and_an_unreadable_record_is_named(tmp_path):
    run = RunFolder.create(tmp_path / "r", {"precision": "bfloat16"})
    assert run.moves() == []
    run.record_moves(27000, {})  # nothing moved: nothing written
    assert not (run.path / "moves.json").exists()
    run.record_moves(27000, {"precision": ("bfloat16", "float32")})
    run.record_moves(29000, {"precision": ("float32", "bfloat16"), "device": ("cuda", "cpu")})
    again = RunFolder(run.path)
    assert [(m["step"], m["moved"]) for m in again.moves()] == [
        (27000, {"precision": ["bfloat16", "float32"]}),
        (29000, {"precision": ["float32", "bfloat16"], "device": ["cuda", "cpu"]})]
    (run.path / "moves.json").write_text("{not json")
    with pytest.raises(InputError, match="moves.json: unreadable"):
        again.moves()


def test_a_run_that_failed_before_any_result_can_be_restarted_without_force(tmp_path):
    RunFolder.create(tmp_path / "r", {"weights": "bad.pth"}, seed=1)  # then the run failed
    run = RunFolder.create(tmp_path / "r", {"weights": None}, seed=2)
    assert yaml.safe_load((run.path / "config.yaml").read_text()) == {"weights": None}
    assert json.loads((run.path / "env.json").read_text())["seed"] == 2
    (run.path / "stages").mkdir()  # anything beyond the header counts as a result
    with pytest.raises(RunExistsError):
        RunFolder.create(tmp_path / "r", {"weights": "other.pth"})


def test_atomic_writes_get_the_usual_file_mode(tmp_path):
    path = write_text_atomic(tmp_path / "a.txt", "x")  # mkstemp alone would give 0600
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~atomic._UMASK


def test_stage_markers(tmp_path):
    run = RunFolder.create(tmp_path / "r", {})
    assert not run.stage_done("gan")
    run.mark_stage_done("gan", {"steps": 3})
    assert run.stage_done("gan")


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "x.json"
    write_json_atomic(target, {"v": 1})
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("partial")
        raise RuntimeError("boom")
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_manifest_roundtrip_relative_paths(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "a.png").write_bytes(b"x")
    df = new_manifest([{"abspath": str(tmp_path / "img" / "a.png"), "label": 1,
                        "generator": "g", "split": "train"}])
    write_manifest(df, tmp_path / "sub" / "m.csv")
    raw = pd.read_csv(tmp_path / "sub" / "m.csv")
    assert raw["path"].tolist() == ["../img/a.png"]
    assert "abspath" not in raw.columns
    back = read_manifest(tmp_path / "sub" / "m.csv")
    assert back["abspath"].tolist() == [str((tmp_path / "img" / "a.png").resolve())]
    assert back["label"].tolist() == [1]


def test_manifest_errors_name_file_and_field(tmp_path):
    p = tmp_path / "m.csv"
    p.write_text("path,generator\na.png,x\n")
    with pytest.raises(InputError, match="m.csv.*label"):
        read_manifest(p)
    p.write_text("path,label\na.png,2\n")
    with pytest.raises(InputError, match="row 2"):
        read_manifest(p)
    with pytest.raises(InputError, match="not found"):
        read_manifest(tmp_path / "none.csv")


def test_calibrated_threshold_maximises_balanced_accuracy():
    probs = np.array([0.1, 0.2, 0.3, 0.35, 0.6, 0.7])
    labels = np.array([0, 0, 0, 1, 1, 1])
    t = calibrate_threshold(probs, labels)
    assert 0.3 < t <= 0.35
    assert calibrate_threshold(np.array([0.2, 0.9]), np.array([1, 1])) == 0.5
