"""Data-parallel training under `torchrun` (DDP): the process group, shards, rank-0 work.

A training function opens a `session(device)`. Started by `torchrun` (WORLD_SIZE > 1 in the
environment) it joins the process group (gloo on CPU, NCCL on CUDA, one GPU per process:
`cuda` becomes `cuda:LOCAL_RANK`); started plainly it is a one-process session and every helper
here is a no-op, so the same command line works with and without `torchrun`.

Each process takes the rows `shard(n, ctx)` of every global batch of n, so the processes
together see exactly the batch one process would (DDP averages the gradients). Saving,
logging and evaluation happen on rank 0 (`ctx.main`); what the others need from it (the resume
state, the early-stopping decision, errors) comes through `broadcast` / `on_main`. The result
lines of non-zero ranks are dropped (from joining on, their stdout goes to /dev/null) so a CLI
command prints its result once; their warnings and errors still reach stderr.

SyncBatchNorm is applied only when asked (`sync_bn=True`, or GANFORENSICS_SYNC_BN=1) and only
on CUDA: torch's SyncBatchNorm refuses CPU modules ("SyncBatchNorm layers only work with GPU
modules", checked on torch 2.14).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from ganforensics.errors import ConfigError

if TYPE_CHECKING:  # torch takes seconds to import; the bottom layer imports it lazily
    import torch

T = TypeVar("T")
SYNC_BN_ENV = "GANFORENSICS_SYNC_BN"


@dataclass(frozen=True)
class Dist:
    """Where this process stands: its rank among `world` processes (1: not distributed)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        """True on rank 0, the process that saves, logs and evaluates."""
        return self.rank == 0

    def describe(self) -> dict[str, Any]:
        """What a run records about its processes (model.json / generator.json)."""
        return {"world_size": self.world, "backend": self.backend}


SINGLE = Dist()


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit():
        raise ConfigError(f"${name} must be a non-negative integer, not {raw!r}")
    return int(raw)


def from_env() -> Dist:
    """The rank and world size torchrun put in the environment (1 process without it)."""
    world = _env_int("WORLD_SIZE", 1)
    if world <= 1:
        return SINGLE
    return Dist(_env_int("RANK", 0), world, _env_int("LOCAL_RANK", 0))


def backend_for(device: torch.device) -> str:
    """NCCL for CUDA devices, gloo otherwise."""
    return "nccl" if device.type == "cuda" else "gloo"


def sync_bn_requested(value: bool | None) -> bool:
    """`value`, else $GANFORENSICS_SYNC_BN (1/true/yes)."""
    if value is not None:
        return bool(value)
    return os.environ.get(SYNC_BN_ENV, "").strip().lower() in ("1", "true", "yes")


@contextlib.contextmanager
def session(device: str) -> Iterator[tuple[Dist, torch.device]]:
    """Join torchrun's process group (once per process: it is left at exit, as a second
    rendezvous on the same port can hang) and yield this process's `Dist` and the torch
    device it trains on."""
    import torch
    import torch.distributed as dist

    dev = torch.device(device)
    ctx = from_env()
    if not ctx.enabled:
        yield ctx, dev
        return
    if dev.type == "cuda":
        if dev.index is not None and _env_int("LOCAL_WORLD_SIZE", 1) > 1:
            raise ConfigError(f"--device {device}: under torchrun give --device cuda; each "
                              "process trains on cuda:LOCAL_RANK")
        if dev.index is None:
            dev = torch.device("cuda", ctx.local_rank)
        torch.cuda.set_device(dev)
    ctx = Dist(ctx.rank, ctx.world, ctx.local_rank, backend_for(dev))
    if not dist.is_initialized():
        dist.init_process_group(ctx.backend, rank=ctx.rank, world_size=ctx.world,
                                device_id=dev if dev.type == "cuda" else None)
        atexit.register(_leave)
        if not ctx.main:  # for the process's life: the CLI prints its result after training
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - open until exit
    ctx = Dist(ctx.rank, ctx.world, ctx.local_rank, str(dist.get_backend()))
    _warn_oversubscribed(ctx, torch.get_num_threads())
    yield ctx, dev


def _warn_oversubscribed(ctx: Dist, threads: int) -> None:
    """Say so (on local rank 0) when this machine's processes run more threads than it has
    cores: the toolkit's thread default is every core, per process."""
    local = _env_int("LOCAL_WORLD_SIZE", 1)
    cores = os.cpu_count() or 1
    if ctx.local_rank == 0 and local * threads > cores:
        sys.stderr.write(f"warning: {local} processes x {threads} threads on {cores} cores; "
                         f"pass --threads {max(1, cores // local)} (or set "
                         "GANFORENSICS_THREADS) to avoid oversubscription\n")


def _leave() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def shard(n: int, ctx: Dist) -> slice:
    """The rows of a global batch of `n` this process holds (near-equal, contiguous)."""
    return slice(n * ctx.rank // ctx.world, n * (ctx.rank + 1) // ctx.world)


def check_divisible(batch: int, ctx: Dist, what: str = "batch") -> None:
    """ConfigError unless a global batch of `batch` splits evenly over the processes."""
    if ctx.enabled and batch % ctx.world:
        raise ConfigError(f"{what}: {batch} does not split evenly over {ctx.world} processes; "
                          f"choose a multiple of {ctx.world}")


def _to_cpu(obj: Any) -> Any:
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def broadcast(ctx: Dist, obj: T) -> T:
    """Rank 0's `obj` on every rank (rank 0 keeps its own object; the others get a copy whose
    tensors are on the CPU). Pickled between our own processes only."""
    if not ctx.enabled:
        return obj
    import torch.distributed as dist

    box = [_to_cpu(obj) if ctx.main else None]
    dist.broadcast_object_list(box, src=0)
    return obj if ctx.main else box[0]  # type: ignore[return-value]


def on_main(ctx: Dist, fn: Callable[[], T]) -> T | None:
    """Run `fn` on rank 0 only and return its result there (None elsewhere); an exception it
    raises is raised on every rank, so no process waits for a partner that gave up."""
    if not ctx.enabled:
        return fn()
    result: T | None = None
    error: BaseException | None = None
    if ctx.main:
        try:
            result = fn()
        except Exception as exc:  # re-raised below, on every rank
            error = exc
    shared = broadcast(ctx, None if error is None else _portable(error))
    if error is not None:
        raise error
    if shared is not None:
        raise shared
    return result


def _portable(exc: BaseException) -> BaseException:
    """`exc` if it survives pickling, else a RuntimeError with its message."""
    import pickle

    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        return RuntimeError(f"rank 0 failed: {type(exc).__name__}: {exc}")


def mean(ctx: Dist, values: list[float]) -> list[float]:
    """The mean over the processes of each value (as is in one process)."""
    if not ctx.enabled or not values:
        return values
    import torch
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64)
    if ctx.backend == "nccl":
        t = t.cuda()
    dist.all_reduce(t)
    return (t / ctx.world).cpu().tolist()


def barrier(ctx: Dist) -> None:
    """Wait for every process (nothing in one process)."""
    if ctx.enabled:
        import torch.distributed as dist

        dist.barrier()


def wrap(module: torch.nn.Module, ctx: Dist, device: torch.device, *,
         sync_bn: bool = False) -> torch.nn.Module:
    """`module` in DistributedDataParallel (its weights and buffers broadcast from rank 0);
    with `sync_bn` its BatchNorm layers become SyncBatchNorm (CUDA only). `module` as is in
    one process."""
    if sync_bn and device.type != "cuda":
        raise ConfigError("SyncBatchNorm needs CUDA devices (torch refuses it on CPU); "
                          f"unset {SYNC_BN_ENV} / sync_bn for --device {device}")
    if not ctx.enabled:
        return module
    import torch

    if sync_bn:
        module = torch.nn.SyncBatchNorm.convert_sync_batchnorm(module)
    ids = [device.index] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(module, device_ids=ids)


def unwrap(module: torch.nn.Module) -> torch.nn.Module:
    """The network inside a DDP wrapper (for saving, sampling and evaluation on one rank)."""
    import torch

    if isinstance(module, torch.nn.parallel.DistributedDataParallel):
        return module.module
    return module


def no_sync(module: torch.nn.Module) -> contextlib.AbstractContextManager[Any]:
    """DDP's `no_sync()` (backward without the gradient all-reduce); a no-op otherwise."""
    import torch

    if isinstance(module, torch.nn.parallel.DistributedDataParallel):
        return module.no_sync()
    return contextlib.nullcontext()
