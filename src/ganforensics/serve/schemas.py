"""The API's response shapes (they document `/docs` and check what the app returns)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Verdict(BaseModel):
    """One detector on one image."""

    name: str
    kind: str
    p_fake: float | None = Field(description="P(fake); null when this detector failed")
    threshold: float = Field(description="the detector's calibrated threshold on P(fake)")
    label: str | None = Field(description='"fake" when p_fake >= threshold, else "real"')
    latency_ms: float = Field(description="time of this detector's forward pass over the batch")
    batch_size: int = Field(description="images in that micro-batch")
    error: str | None = None
    gradcam_png: str | None = Field(None, description="base64 PNG overlay (explain=true, CNN)")
    gradcam_error: str | None = None


class Ensemble(BaseModel):
    """All detectors together (only when more than one is served)."""

    p_fake: float
    threshold: float
    label: str
    n_detectors: int
    method: str


class Reference(BaseModel):
    label: str
    source: str
    freq: list[float]
    mean: list[float]
    std: list[float]


class Spectrum(BaseModel):
    """The image's azimuthal profile (durall: 20 ln|F|) against the run's real images."""

    variant: str
    freq: list[float] = Field(description="bin position as a fraction of Nyquist")
    profile: list[float]
    reference: Reference | None


class ItemError(BaseModel):
    """Why one file of a batch was not scored (a problem object, RFC 9457)."""

    type: str
    title: str
    status: int
    detail: str


class ImageResult(BaseModel):
    """One uploaded file: scored (`detectors`) or rejected (`error`)."""

    id: str
    filename: str
    sha256: str | None = None
    width: int | None = None
    height: int | None = None
    detectors: list[Verdict] | None = None
    ensemble: Ensemble | None = None
    spectrum: Spectrum | None = None
    error: ItemError | None = None


class DetectResponse(BaseModel):
    results: list[ImageResult]
    n_scored: int
    n_rejected: int
    elapsed_ms: float


class ModelInfo(BaseModel):
    name: str
    kind: str
    threshold: float
    explainable: bool
    path: str
    provenance: dict[str, Any]


class Limits(BaseModel):
    max_request_bytes: int
    max_file_bytes: int
    max_files: int
    max_pixels: int
    min_side: int
    queue_size: int
    max_batch: int
    max_wait_ms: float


class ModelsResponse(BaseModel):
    models: list[ModelInfo]
    limits: Limits
    auth: bool = Field(description="true when /v1 needs the X-API-Key header")


class Health(BaseModel):
    status: str
    models: int | None = None
