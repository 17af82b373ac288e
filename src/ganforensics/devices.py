"""Checks a `--device` value once, so a missing GPU is a one-line error, not a traceback."""

from __future__ import annotations

from ganforensics.errors import InputError


def check_device(name: str, option: str = "--device") -> str:
    """Return `name` if torch can run on it here; else raise InputError saying why."""
    # imported here, not at the top: torch takes seconds to import, and importing this module
    # (for the CLI's option checks) must not pay for it
    import torch

    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError) as exc:
        raise InputError(
            f"{option} {name!r}: not a torch device ({str(exc).splitlines()[0]})"
        ) from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"{option} {name!r}: no CUDA GPU is usable here "
                             "(torch.cuda.is_available() is False); use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise InputError(f"{option} {name!r}: only {torch.cuda.device_count()} CUDA "
                             "device(s) present")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"{option} {name!r}: MPS is not available here; use --device cpu")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise InputError(f"{option} {name!r}: only cpu, cuda[:N] and mps are supported")
    return name


def cpu_runs_bfloat16_natively() -> bool:
    """True when this CPU has bfloat16 instructions (AVX512-BF16 or AMX) that oneDNN uses;
    without them PyTorch emulates bfloat16 convolutions, which on an AVX2 AMD EPYC measured
    24x slower than float32 (docs/benchmarks.md, "bfloat16 on an AVX2 CPU")."""
    import torch

    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    try:
        return any(bool(getattr(torch.cpu, name)()) for name in checks
                   if hasattr(torch.cpu, name))
    except RuntimeError:  # an unusual build: say nothing rather than warn wrongly
        return True
