"""The service's defaults table: every limit and knob lives here once (CLI and app read it)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any

from ganforensics.errors import ConfigError

MIB = 1 << 20


@dataclass(frozen=True)
class ServeSettings:
    """Limits and knobs of one service instance (the defaults are the `serve` command's)."""

    host: str = "127.0.0.1"
    """Address to bind; 127.0.0.1 keeps the service on this machine (see docs/serve.md)."""
    port: int = 8000
    workers: int = 1
    """Inference worker threads (each runs whole micro-batches; torch threads: --threads)."""
    max_request_bytes: int = 64 * MIB
    """Cap on one request body (413 above it)."""
    max_file_bytes: int = 16 * MIB
    """Cap on one uploaded file (413 for that file)."""
    max_files: int = 32
    """Most files in one request (413 above it)."""
    max_pixels: int = 4096 * 4096
    """Cap on width x height of one image, read from its header before decoding (422)."""
    min_side: int = 8
    """Smallest width or height scored (422 below it: too small for a spectrum or a CNN)."""
    queue_size: int = 128
    """Most images waiting for inference; a request that does not fit gets 503 + Retry-After."""
    max_batch: int = 16
    """Most images in one forward pass (1 = no micro-batching)."""
    max_wait_ms: float = 10.0
    """How long a worker waits for more images after the first before it runs the batch."""
    retry_after_s: int = 1
    """Retry-After of a 503 (queue full or models still loading)."""
    api_key: str | None = field(default=None, repr=False)
    """When set, /v1/* requires the header X-API-Key with this value (never logged)."""

    def with_(self, **changes: Any) -> ServeSettings:
        """A copy with `changes` applied (None values are ignored, so CLI options can pass)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


DEFAULTS = ServeSettings()
"""The defaults of `ganforensics serve` and of `create_app`."""

API_KEY_HEADER = "X-API-Key"


def api_key_from_env(var: str | None) -> str | None:
    """The API key held by environment variable `var` (None when `var` is None); ConfigError
    when the variable is unset or empty, so a typo never leaves the API open."""
    if var is None:
        return None
    value = os.environ.get(var, "")
    if not value.strip():
        raise ConfigError(f"--api-key-env {var}: the environment variable is not set or empty")
    return value


def is_loopback(host: str) -> bool:
    """True for addresses that only this machine can reach."""
    return host in ("127.0.0.1", "::1", "localhost") or host.startswith("127.")
