"""Run folders hold a lock: a second live writer is refused (exit 3, naming the owner's PID);
a lock left by a dead process never blocks a retry; the lock goes at the end of a run."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import ganforensics
from ganforensics.errors import RunExistsError, RunInUseError
from ganforensics.io import lock
from ganforensics.io.atomic import save_png_atomic
from ganforensics.io.runs import RunFolder

_SRC = str(Path(ganforensics.__file__).resolve().parents[1])
_HOLD = """
import sys
from ganforensics.io.runs import RunFolder
run = RunFolder.create(sys.argv[1], {"holder": True}, force="--force" in sys.argv)
print("locked", flush=True)
sys.stdin.readline()  # hold the folder until the test closes our stdin
"""


def _env() -> dict[str, str]:
    path = os.pathsep.join(p for p in (_SRC, os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "GANFORENSICS_PROGRESS": "0"}


def _holder(folder: Path, *args: str) -> subprocess.Popen:
    """Another process that creates the run folder and holds it until its stdin closes."""
    proc = subprocess.Popen([sys.executable, "-c", _HOLD, str(folder), *args], env=_env(),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def _photos_cli(photos: Path, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ganforensics", "data", "photos", str(photos), "--out", str(out),
         "--size", "16"], env=_env(), capture_output=True, text=True, timeout=120,
    )


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    save_png_atomic(tmp_path / "photos" / "a.png", rng.integers(0, 256, (48, 48, 3), np.uint8))
    return tmp_path / "photos"


def test_second_writer_gets_exit_3_naming_the_owner_then_a_retry_works(tmp_path, photos):
    out = tmp_path / "run"
    holder = _holder(out)
    try:
        res = _photos_cli(photos, out)
        assert res.returncode == 3, res.stderr
        assert f"{out}: in use by PID {holder.pid} on {socket.gethostname()}" in res.stderr
        assert not (out / "patches").exists() and not (out / "manifest.csv").exists()
        with pytest.raises(RunInUseError, match=f"PID {holder.pid}"):
            RunFolder.create(out, {"holder": True}, resume=True)
    finally:
        holder.communicate("", timeout=60)
    assert holder.returncode == 0
    assert not lock.lock_path(out).exists()  # the holder's exit released it
    res = _photos_cli(photos, out)  # the holder wrote only the header: reusable
    assert res.returncode == 0, res.stderr
    assert (out / "manifest.csv").is_file() and not lock.lock_path(out).exists()


def test_lock_of_a_killed_process_does_not_block(tmp_path):
    out = tmp_path / "run"
    holder = _holder(out)
    holder.send_signal(signal.SIGKILL)
    holder.communicate(timeout=60)
    assert lock.lock_path(out).read_text().split()[0] == str(holder.pid)  # left behind
    with RunFolder.create(out, {"holder": True}, resume=True) as run:
        assert lock.lock_path(out).read_text().split()[0] == str(os.getpid())
        assert lock.holds(run.path)
    assert not lock.lock_path(out).exists() and not lock.holds(out)


def test_stale_lock_file_with_a_dead_pid_does_not_block(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    out = tmp_path / "run"
    out.mkdir()
    lock.lock_path(out).write_text(f"{dead.stdout.strip()} {socket.gethostname()}\n")
    run = RunFolder.create(out, {"a": 1})  # a header and a stale lock: a failed start
    assert lock.holds(out)
    run.release()
    run.release()  # a second release does nothing
    assert not lock.holds(out)


def test_lock_is_released_on_exceptions_and_failed_creates(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(ValueError), RunFolder.create(out, {"a": 1}) as run:
        run.write_json("result.json", {"x": 1})
        raise ValueError("the run failed")
    assert not lock.holds(out)
    with pytest.raises(RunExistsError):  # holds a result: refused, and not left locked
        RunFolder.create(out, {"a": 1})
    assert not lock.holds(out) and not lock.lock_path(out).exists()
    holder = _holder(out, "--force")  # another process can take the folder we released
    holder.communicate("", timeout=60)
    assert holder.returncode == 0


def test_reentrant_within_one_process(tmp_path):
    out = tmp_path / "run"
    outer = RunFolder.create(out, {"a": 1})
    inner = RunFolder.create(out, {"a": 1}, resume=True)  # a library call inside a command
    inner.release()
    assert lock.holds(out)  # the outer hold is still there
    outer.release()
    assert not lock.holds(out)


def test_lock_file_is_not_a_result(tmp_path):
    out = tmp_path / "run"
    holder = _holder(out)
    holder.send_signal(signal.SIGKILL)
    holder.communicate(timeout=60)
    # config.yaml, env.json and a stale lock only: a failed start, reusable without --force
    run = RunFolder.create(out, {"other": 2})
    assert (out / "config.yaml").read_text().strip() == "other: 2"
    run.release()
