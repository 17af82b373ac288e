"""Shared test settings: no progress bars, few threads, a deterministic seed."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

os.environ.setdefault("GANFORENSICS_PROGRESS", "0")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(2)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def one_thread():
    """Run a test with one torch thread (LRP and explain tests are faster and reproducible)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _load_bench_script(name: str) -> ModuleType:
    """A script of `bench/` (e.g. "gan_quality") imported as a module, for its tests."""
    path = Path(__file__).resolve().parents[1] / "bench" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def load_bench():
    """`load_bench("gan_quality")`: a script of `bench/` as a module."""
    return _load_bench_script
