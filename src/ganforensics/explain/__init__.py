"""Explain CNN detectors: FF-RS relevance (LRP), feature-map masking, colour ablation, Grad-CAM.

Every function takes a CNN detector (`ganforensics.detectors.cnn.CNNDetector`) or an
`Explainable` wrapping any one-logit torch CNN with its preprocessing.
"""

from ganforensics.explain.adapter import Explainable, as_explainable, imagenet_preprocess
from ganforensics.explain.cam import gradcam, overlay
from ganforensics.explain.color import ColorResult, color_report
from ganforensics.explain.ffrs import (
    FFRSResult,
    compute_ffrs,
    default_k,
    keys_to_maps,
    map_key,
    parse_key,
    read_ranking,
)
from ganforensics.explain.lrp import check_lrp_supported, conv_relevance
from ganforensics.explain.masking import mask_channels, masked_probs, masking_report
from ganforensics.explain.scores import per_generator_metrics

__all__ = [
    "ColorResult",
    "Explainable",
    "FFRSResult",
    "as_explainable",
    "check_lrp_supported",
    "color_report",
    "compute_ffrs",
    "conv_relevance",
    "default_k",
    "gradcam",
    "imagenet_preprocess",
    "keys_to_maps",
    "map_key",
    "mask_channels",
    "masked_probs",
    "masking_report",
    "overlay",
    "parse_key",
    "per_generator_metrics",
    "read_ranking",
]
