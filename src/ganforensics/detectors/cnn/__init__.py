"""CNN detectors: backbone registry, training recipes (wang2020, khan2019, colour-robust),
CNNDetection checkpoint import, the `CNNDetector` used by predict / evaluate / explain, the
attribution head (`AttributionDetector`) and distillation (`distill_cnn_detector`)."""

from ganforensics.detectors.cnn.archs import (
    ARCHS,
    DEFAULT_ARCH,
    IMAGENET_MEAN,
    IMAGENET_STD,
    ArchSpec,
    SmallCNN,
    build_model,
    normalised_tensor,
)
from ganforensics.detectors.cnn.attribution import AttributionDetector
from ganforensics.detectors.cnn.checkpoint import (
    cnndetection_state_dict,
    load_cnndetection_checkpoint,
)
from ganforensics.detectors.cnn.distill import distill_cnn_detector
from ganforensics.detectors.cnn.model import CNNDetector, load_cnn_detector
from ganforensics.detectors.cnn.recipes import DEFAULT_RECIPE, RECIPES, Recipe, get_recipe
from ganforensics.detectors.cnn.train import train_cnn_detector
from ganforensics.detectors.cnn.weights import read_state_dict, safe_torch_load

__all__ = [
    "ARCHS",
    "AttributionDetector",
    "ArchSpec",
    "DEFAULT_ARCH",
    "DEFAULT_RECIPE",
    "CNNDetector",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "RECIPES",
    "Recipe",
    "SmallCNN",
    "build_model",
    "cnndetection_state_dict",
    "distill_cnn_detector",
    "get_recipe",
    "load_cnn_detector",
    "load_cnndetection_checkpoint",
    "normalised_tensor",
    "read_state_dict",
    "safe_torch_load",
    "train_cnn_detector",
]
