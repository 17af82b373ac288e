"""Typed errors. The CLI turns each into a one-line message and a documented exit code."""

from __future__ import annotations


class GanForensicsError(Exception):
    """Base class for errors a user can fix (bad input, bad config, existing run)."""

    exit_code = 2


class InputError(GanForensicsError):
    """A file, folder or field given by the user is unusable."""


class ImageDecodeError(InputError):
    """An image file could not be decoded; `reason` is one line."""

    def __init__(self, path: object, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class ConfigError(GanForensicsError):
    """A configuration key or value is invalid."""


class RunExistsError(GanForensicsError):
    """The output folder already holds a run and --force was not given."""

    exit_code = 3


class RunInUseError(RunExistsError):
    """The output folder is locked by a run that is still going (another process)."""


class UnsupportedModelError(GanForensicsError):
    """A model file or kind cannot be used for the requested operation."""
