"""One writer per run folder: an advisory lock on `<folder>/.run.lock`.

The lock is `fcntl.flock` on the open lock file, which holds the owner's PID and host. The
kernel drops it when the owning process ends, however it ends (a SIGKILL included), so a lock
file left behind by a dead process never blocks a retry: only a live owner does. Within one
process the lock is re-entrant (counted), so library code that opens a run folder its caller
already holds works unchanged. Releasing the last hold, or the normal end of the process,
removes the lock file.

A file system without `flock` support (and Windows, which has no `fcntl`) gives no lock; the run
goes on, with one warning.
"""

from __future__ import annotations

import atexit
import errno
import os
import socket
import threading
import time
from pathlib import Path

from ganforensics.console import warn
from ganforensics.errors import RunInUseError

try:  # POSIX only; without it run folders are not locked (see the module docstring)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".run.lock"
_HOLDER_WAIT_S = 0.5
"""How long to wait for a new owner to write its PID into the lock file (for the message)."""

_held: dict[Path, tuple[int, int, int]] = {}
"""Locks held: resolved folder -> (file descriptor, hold count, PID of the process that took
it; a forked child inherits this table but must not remove its parent's lock files)."""
_guard = threading.Lock()


def lock_path(folder: str | os.PathLike[str]) -> Path:
    return Path(folder) / LOCK_NAME


def _owner_text(fd: int) -> str:
    """"PID N on HOST" from a held lock file (waits briefly for a new owner to write it)."""
    deadline = time.monotonic() + _HOLDER_WAIT_S
    while True:
        fields = os.pread(fd, 256, 0).decode("utf-8", "replace").split()
        if len(fields) >= 2 and fields[0].isdigit():
            return f"PID {fields[0]} on {fields[1]}"
        if time.monotonic() >= deadline:
            return "another process"
        time.sleep(0.02)


def _same_file(fd: int, path: Path) -> bool:
    """True while `path` still names the open file `fd` (a releasing owner unlinks it)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    own = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


def _lock_fd(folder: Path) -> int | None:
    """Open and lock `folder/.run.lock`; None where locking is not supported."""
    path = lock_path(folder)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                owner = _owner_text(fd)
                os.close(fd)
                raise RunInUseError(
                    f"{folder}: in use by {owner} (a run is writing there; lock file "
                    f"{LOCK_NAME}); wait for it to finish, or choose another --out"
                ) from None
            os.close(fd)
            warn(f"{folder}: cannot lock the run folder ({exc.strerror or exc}); going on "
                 "without a lock")
            return None
        if _same_file(fd, path):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
            return fd
        os.close(fd)  # the previous owner released (and removed) it meanwhile: try again


def acquire(folder: str | os.PathLike[str]) -> None:
    """Hold the lock of the existing `folder`, or raise `RunInUseError` naming its owner."""
    if fcntl is None:  # pragma: no cover - Windows
        return
    key = Path(folder).resolve()
    with _guard:
        if key in _held:
            fd, count, pid = _held[key]
            if _same_file(fd, lock_path(key)):
                _held[key] = (fd, count + 1, pid)
                return
            del _held[key]  # the folder (or its lock file) was removed meanwhile: lock anew
            os.close(fd)
        fd = _lock_fd(Path(folder))
        if fd is not None:
            _held[key] = (fd, 1, os.getpid())


def release(folder: str | os.PathLike[str]) -> None:
    """Drop one hold; the last one removes the lock file and unlocks it."""
    key = Path(folder).resolve()
    with _guard:
        if key not in _held:
            return
        fd, count, pid = _held[key]
        if count > 1:
            _held[key] = (fd, count - 1, pid)
            return
        del _held[key]
        _unlock(key, fd)


def _unlock(key: Path, fd: int) -> None:
    try:
        if _same_file(fd, lock_path(key)):
            os.unlink(lock_path(key))  # unlink while locked: no second owner can slip in
    except OSError:
        pass  # the folder is gone or read-only: closing the file still unlocks it
    finally:
        os.close(fd)


@atexit.register
def _release_all() -> None:
    """At the normal end of the process remove the lock files it still holds."""
    with _guard:
        for key, (fd, _, pid) in list(_held.items()):
            if pid == os.getpid():
                del _held[key]
                _unlock(key, fd)


def holds(folder: str | os.PathLike[str]) -> bool:
    """True when this process holds the lock of `folder`."""
    return Path(folder).resolve() in _held
