"""CPU threads: how many torch and the BLAS/OpenMP pools use, set once per process.

The count comes from `--threads` (the CLI's root option), else the environment variable
`GANFORENSICS_THREADS`, else the cores this process may run on (`os.sched_getaffinity`). It is
recorded in every run folder's `env.json`. On a shared machine, fewer threads than cores can be
faster: torch's threads spin-wait for each other, and a busy neighbour stalls them all
(docs/benchmarks.md, "Threads under load").
"""

from __future__ import annotations

import os
import sys

from ganforensics.errors import InputError

THREADS_ENV = "GANFORENSICS_THREADS"

_applied: int | None = None


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - no affinity on macOS / Windows
        return max(1, os.cpu_count() or 1)


def resolve_threads(value: int | None = None) -> int:
    """`value`, else `$GANFORENSICS_THREADS`, else `available_cores()`; a positive integer."""
    if value is not None:
        if int(value) < 1:
            raise InputError(f"--threads must be a positive integer, not {value}")
        return int(value)
    raw = os.environ.get(THREADS_ENV, "").strip()
    if not raw:
        return available_cores()
    if not raw.isdigit() or int(raw) < 1:
        raise InputError(f"{THREADS_ENV} must be a positive integer, not {raw!r}")
    return int(raw)


def apply_threads(n: int) -> int:
    """Use `n` threads in torch (intra-op) and in the BLAS / OpenMP pools of NumPy and SciPy."""
    global _applied
    # imported here, not at the top: torch takes seconds to import, and the bottom layer (which
    # the data commands import) must not pay for it
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(int(n))
    threadpool_limits(limits=int(n))  # stays in force for the process (not used as a context)
    _applied = int(n)
    return _applied


def current_threads() -> int | None:
    """The count `apply_threads` set, else torch's own if torch is loaded, else None."""
    if _applied is not None:
        return _applied
    torch = sys.modules.get("torch")
    return int(torch.get_num_threads()) if torch is not None else None
