"""The colorizer contract: given the target's luminance and a reference, predict chroma.

The training-free propagation, the classical baselines and the trained colorization
sub-net all implement `Colorizer`, so the pipeline, the CLI and the evaluation treat them alike.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

from torch import Tensor

from chromaref.platform.config import PipelineConfig
from chromaref.platform.registry import Registry
from chromaref.platform.similarity import Correspondence, FeatureGrid


@dataclass(frozen=True)
class PreparedImage:
    """An image brought to the pipeline's working form once, reusable across many pairs."""

    name: str
    l_full: Tensor  # (1, 1, H, W) CIELAB L at the input resolution
    lab_work: Tensor  # (1, 3, h, w) CIELAB at the working resolution
    grid: FeatureGrid | None  # matching features, when the colorizer needs them

    @property
    def l_work(self) -> Tensor:
        return self.lab_work[:, :1]


class Colorizer(ABC):
    """Predicts the target's ab at full resolution; the pipeline keeps the target's own L."""

    name: ClassVar[str]
    needs_correspondence: ClassVar[bool] = True

    def __init__(self, config: PipelineConfig) -> None:
        self.pipeline_config = config

    @abstractmethod
    def predict_ab(
        self,
        target: PreparedImage,
        reference: PreparedImage,
        correspondence: Correspondence | None,
    ) -> Tensor:
        """(1, 2, H, W) chroma for the target at its full resolution."""


COLORIZERS: Registry[Colorizer] = Registry("colorizer")
