"""Shared test settings: no progress bars, few threads, a deterministic seed."""

from __future__ import annotations

import os

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
