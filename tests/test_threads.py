"""Thread count: one option / env var, validated, applied to torch and BLAS, recorded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from threadpoolctl import threadpool_info

import ganforensics
from ganforensics.errors import InputError
from ganforensics.threads import (
    THREADS_ENV,
    apply_threads,
    available_cores,
    current_threads,
    resolve_threads,
)

_SRC = str(Path(ganforensics.__file__).resolve().parents[1])


def test_resolve_prefers_the_option_then_the_env_then_the_affinity(monkeypatch):
    monkeypatch.delenv(THREADS_ENV, raising=False)
    assert resolve_threads() == available_cores() == len(os.sched_getaffinity(0))
    monkeypatch.setenv(THREADS_ENV, "3")
    assert resolve_threads() == 3
    assert resolve_threads(1) == 1


@pytest.mark.parametrize("raw", ["0", "-2", "two", "1.5"])
def test_a_bad_env_value_is_an_error_naming_the_variable(monkeypatch, raw):
    monkeypatch.setenv(THREADS_ENV, raw)
    with pytest.raises(InputError, match=THREADS_ENV):
        resolve_threads()


def test_apply_sets_torch_and_blas_pools():
    before = torch.get_num_threads()
    try:
        apply_threads(1)
        assert torch.get_num_threads() == 1 and current_threads() == 1
        blas = [p for p in threadpool_info() if p["user_api"] == "blas"]
        assert blas and all(p["num_threads"] == 1 for p in blas)
    finally:
        apply_threads(before)
    assert torch.get_num_threads() == before


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONPATH": _SRC, "GANFORENSICS_PROGRESS": "0", **(env or {})}
    return subprocess.run([sys.executable, "-m", "ganforensics", *args], env=full_env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def photo_dir(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (40, 40, 3), np.uint8)).save(tmp_path / "a.png")
    return tmp_path


@pytest.mark.slow
def test_cli_threads_option_and_env_are_recorded_in_env_json(photo_dir, tmp_path):
    res = _cli("--threads", "1", "data", "photos", str(photo_dir), "--out",
               str(tmp_path / "o1"), "--size", "16")
    assert res.returncode == 0, res.stderr
    assert json.loads((tmp_path / "o1" / "env.json").read_text())["threads"] == 1
    res = _cli("data", "photos", str(photo_dir), "--out", str(tmp_path / "o2"), "--size", "16",
               env={THREADS_ENV: "2"})
    assert res.returncode == 0, res.stderr
    assert json.loads((tmp_path / "o2" / "env.json").read_text())["threads"] == 2


def test_cli_refuses_a_bad_thread_count(photo_dir, tmp_path):
    res = _cli("--threads", "0", "data", "photos", str(photo_dir), "--out", str(tmp_path / "o"))
    assert res.returncode == 2 and "--threads" in res.stderr
    res = _cli("data", "photos", str(photo_dir), "--out", str(tmp_path / "o"),
               env={THREADS_ENV: "lots"})
    assert res.returncode == 2 and THREADS_ENV in res.stderr and "Traceback" not in res.stderr
    assert not (tmp_path / "o").exists()
