"""Detectors: spectral (classical) and CNN. See `base` for the common interface and `loading`
for loading a saved one."""

from ganforensics.detectors.base import Detector
from ganforensics.detectors.loading import load_detector

__all__ = ["Detector", "load_detector"]
