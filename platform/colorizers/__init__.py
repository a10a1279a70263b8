"""Colorizers: the training-free default, the trained sub-net and classical baselines, by name."""

from chromaref.platform.colorizers import baselines as _baselines  # registers
from chromaref.platform.colorizers import trained as _trained  # registers
from chromaref.platform.colorizers import training_free as _training_free  # registers
from chromaref.platform.colorizers._base import COLORIZERS, Colorizer, PreparedImage
from chromaref.platform.colorizers.trained import TrainedColorizer
from chromaref.platform.colorizers.training_free import TrainingFreeColorizer
from chromaref.platform.config import PipelineConfig

DEFAULT_COLORIZER = PipelineConfig().colorizer  # one default, set in the config
get_colorizer = COLORIZERS.build
list_colorizers = COLORIZERS.names

__all__ = [
    "DEFAULT_COLORIZER",
    "Colorizer",
    "PreparedImage",
    "TrainedColorizer",
    "TrainingFreeColorizer",
    "get_colorizer",
    "list_colorizers",
]
del _baselines, _trained, _training_free
