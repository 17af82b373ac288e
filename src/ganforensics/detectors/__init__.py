"""Detectors: spectral (classical) and CNN. See `base` for the common interface."""

from ganforensics.detectors.base import Detector, load_detector, register_kind

__all__ = ["Detector", "load_detector", "register_kind"]
