"""Fourier spectra of image stacks: durall / clean profiles, mean 2-D log spectra, decay features.

Plots (`spectral.plots`) and spectra files (`spectral.collection`) are imported on demand.
"""

from ganforensics.spectral.decay import decay_features
from ganforensics.spectral.spectra import (
    clean_profiles,
    durall_length,
    durall_profiles,
    mean_log_spectrum,
    profiles,
    resample_profiles,
    to_gray,
)

__all__ = [
    "clean_profiles",
    "decay_features",
    "durall_length",
    "durall_profiles",
    "mean_log_spectrum",
    "profiles",
    "resample_profiles",
    "to_gray",
]
