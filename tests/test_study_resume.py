"""Resumable stages: finished stages are skipped on rerun; failures skip dependents only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import ganforensics
from ganforensics.errors import RunExistsError, RunInUseError
from ganforensics.study.config import load_config
from ganforensics.study.pipeline import run_study
from ganforensics.study.stages import Stage

_SRC = str(Path(ganforensics.__file__).resolve().parents[1])
_HOLD = """
import sys
from ganforensics.io import lock
lock.acquire(sys.argv[1])
print("locked", flush=True)
sys.stdin.readline()  # hold the folder until the test closes our stdin
"""


def _cfg(**gan):
    return load_config({"gan": gan} if gan else None, preset="quick")


class Counter:
    """Stages that count their runs and can be told to be interrupted or to fail."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self.interrupt: set[str] = set()
        self.fail: set[str] = set()

    def stage(self, name: str, needs: tuple[str, ...] = ()) -> Stage:
        def _run(ctx):
            if name in self.interrupt:
                raise KeyboardInterrupt
            self.calls[name] = self.calls.get(name, 0) + 1
            if name in self.fail:
                raise ValueError(f"{name} broke")
            ctx.run.write_text(f"tables/{name}.txt", str(self.calls[name]))
            return {"value": self.calls[name]}

        return Stage(name, _run, needs=needs)

    def stages(self) -> list[Stage]:
        return [self.stage("a"), self.stage("b", ("a",)), self.stage("c", ("b",)),
                self.stage("d")]


def test_interrupted_run_resumes_and_skips_finished_stages(tmp_path) -> None:
    cnt = Counter()
    cnt.interrupt = {"c"}
    cfg = _cfg()
    with pytest.raises(KeyboardInterrupt):
        run_study(cfg, tmp_path / "run", stages=cnt.stages())
    assert cnt.calls == {"a": 1, "b": 1}
    assert (tmp_path / "run" / "stages" / "b.done").exists()
    assert not (tmp_path / "run" / "stages" / "c.done").exists()
    cnt.interrupt = set()
    report, results = run_study(cfg, tmp_path / "run", stages=cnt.stages())
    assert cnt.calls == {"a": 1, "b": 1, "c": 1, "d": 1}
    assert [r.status for r in results] == ["cached", "cached", "done", "done"]
    assert results[0].info["value"] == 1  # the marker's info survives
    assert report.is_file()
    # a third run does nothing but rebuild the report
    _, results = run_study(cfg, tmp_path / "run", stages=cnt.stages())
    assert {r.status for r in results} == {"cached"}
    assert cnt.calls == {"a": 1, "b": 1, "c": 1, "d": 1}


def test_failed_stage_skips_dependents_and_is_retried(tmp_path) -> None:
    cnt = Counter()
    cnt.fail = {"b"}
    cfg = _cfg()
    _, results = run_study(cfg, tmp_path / "run", stages=cnt.stages())
    status = {r.name: r.status for r in results}
    assert status == {"a": "done", "b": "failed", "c": "skipped", "d": "done"}
    assert "b broke" in next(r.error for r in results if r.name == "b")
    assert "ValueError" in (tmp_path / "run" / "logs" / "b.log").read_text()
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert {s["stage"]: s["status"] for s in saved["stages"]}["c"] == "skipped"
    assert "did not complete" in (tmp_path / "run" / "report.html").read_text()
    cnt.fail = set()
    _, results = run_study(cfg, tmp_path / "run", stages=cnt.stages())
    assert {r.name: r.status for r in results} == {
        "a": "cached", "b": "done", "c": "done", "d": "cached"}


def test_stop_after_then_rerun(tmp_path) -> None:
    cnt = Counter()
    cfg = _cfg()
    run_study(cfg, tmp_path / "run", stages=cnt.stages(), stop_after="a")
    assert cnt.calls == {"a": 1}
    run_study(cfg, tmp_path / "run", stages=cnt.stages())
    assert cnt.calls == {"a": 1, "b": 1, "c": 1, "d": 1}


def test_different_config_refused_unless_force(tmp_path) -> None:
    cnt = Counter()
    run_study(_cfg(), tmp_path / "run", stages=cnt.stages())
    (tmp_path / "run" / "mine.txt").write_text("user file")
    with pytest.raises(RunExistsError, match="different config"):
        run_study(_cfg(steps=7), tmp_path / "run", stages=cnt.stages())
    assert cnt.calls["a"] == 1
    _, results = run_study(_cfg(steps=7), tmp_path / "run", stages=cnt.stages(), force=True)
    # --force cleared the old markers: everything ran again with the new config
    assert cnt.calls["a"] == 2
    assert {r.status for r in results} == {"done"}
    assert (tmp_path / "run" / "mine.txt").read_text() == "user file"
    assert "steps: 7" in (tmp_path / "run" / "config.yaml").read_text()


def test_force_refuses_a_folder_that_is_not_a_study_run(tmp_path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "precious.txt").write_text("keep")
    with pytest.raises(RunExistsError, match="not a study run"):
        run_study(_cfg(), tmp_path, stages=Counter().stages(), force=True)
    assert (tmp_path / "data" / "precious.txt").read_text() == "keep"


def test_force_never_clears_a_study_another_process_is_running(tmp_path) -> None:
    cnt = Counter()
    run_study(_cfg(), tmp_path / "run", stages=cnt.stages())
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(tmp_path / "run")], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": _SRC + os.pathsep + os.environ.get("PYTHONPATH", "")},
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunInUseError, match=f"PID {holder.pid}"):
            run_study(_cfg(steps=7), tmp_path / "run", stages=cnt.stages(), force=True)
        # refused before clearing: the other run's results are all still there
        assert (tmp_path / "run" / "tables" / "a.txt").read_text() == "1"
        assert (tmp_path / "run" / "stages" / "a.done").exists()
    finally:
        holder.communicate("", timeout=30)
    _, results = run_study(_cfg(steps=7), tmp_path / "run", stages=cnt.stages(), force=True)
    assert {r.status for r in results} == {"done"}


def test_cli_reports_an_incomplete_run_with_exit_1(tmp_path, monkeypatch) -> None:
    from typer.testing import CliRunner

    import ganforensics.study.pipeline as pipeline
    from ganforensics.cli.main import app

    cnt = Counter()
    cnt.fail = {"b"}
    monkeypatch.setattr(pipeline, "build_stages", lambda cfg: cnt.stages())
    (tmp_path / "c.yaml").write_text("gan:\n  steps: 9\n")
    out = tmp_path / "run"
    res = CliRunner().invoke(app, ["study", str(tmp_path / "c.yaml"), "--out", str(out)])
    assert res.exit_code == 1
    line = res.stdout.strip().splitlines()[-1]
    assert line.startswith("report (incomplete: failed b; 1 stage(s) skipped")
    assert line.endswith(str((out / "report.html").resolve()))
    cnt.fail = set()
    res = CliRunner().invoke(app, ["study", str(tmp_path / "c.yaml"), "--out", str(out)])
    assert res.exit_code == 0
    assert res.stdout.strip().splitlines()[-1] == f"report: {(out / 'report.html').resolve()}"
