"""CNN detectors: backbone registry, training recipes (wang2020, khan2019, colour-robust),
CNNDetection checkpoint import, and the `CNNDetector` used by predict / evaluate / explain."""

from ganforensics.detectors.cnn.archs import ARCHS, ArchSpec, SmallCNN, build_model
from ganforensics.detectors.cnn.checkpoint import (
    cnndetection_state_dict,
    load_cnndetection_checkpoint,
    safe_torch_load,
)
from ganforensics.detectors.cnn.model import CNNDetector, load_cnn_detector
from ganforensics.detectors.cnn.train import RECIPES, Recipe, get_recipe, train_cnn_detector

__all__ = [
    "ARCHS",
    "ArchSpec",
    "CNNDetector",
    "RECIPES",
    "Recipe",
    "SmallCNN",
    "build_model",
    "cnndetection_state_dict",
    "get_recipe",
    "load_cnn_detector",
    "load_cnndetection_checkpoint",
    "safe_torch_load",
    "train_cnn_detector",
]
