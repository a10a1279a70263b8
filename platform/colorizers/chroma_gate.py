"""The chroma gate: how much of a trained net's chroma to keep, by how much the reference matches.

Where the reference matches almost nowhere, ColorNet's colors are guesses from content alone,
and a wrong vivid guess costs more than a muted one: under a squared error (PSNR) the best
answer to an uncertain guess lies between it and gray. The gate keeps `floor` of the chroma
when nothing matches, rising linearly to all of it once the mean match confidence over the
target reaches `knee`. Both are fitted on held-out pairs after training
(`chromaref.training.calibration`) and stored in the model file; a file without them keeps all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor

from chromaref.platform.colorizers.training_free import match_confidence
from chromaref.platform.config import PropagationConfig


@dataclass(frozen=True)
class ChromaGate:
    """Chroma kept: `floor` where nothing matches, all from match strength `knee` on."""

    floor: float = 1.0
    knee: float = 0.0

    def __post_init__(self) -> None:
        if not (0.0 <= self.floor <= 1.0 and self.knee >= 0.0):
            raise ValueError(f"chroma gate needs 0 <= floor <= 1 and knee >= 0, got {self}")

    @classmethod
    def from_calibration(cls, calibration: dict[str, Any]) -> ChromaGate:
        """The gate a model file's `calibration` holds (none: keep all the chroma)."""
        return cls(**calibration.get("chroma_gate", {}))

    def as_calibration(self) -> dict[str, Any]:
        return {"chroma_gate": {"floor": self.floor, "knee": self.knee}}

    def scale(self, strength: Tensor) -> Tensor:
        """(B,) share of the chroma kept for (B,) match strengths."""
        if self.knee <= 0.0:
            return strength.new_ones(strength.shape)
        return self.floor + (1.0 - self.floor) * (strength / self.knee).clamp(max=1.0)

    def __call__(self, ab_grid: Tensor, strength: Tensor) -> Tensor:
        return ab_grid * self.scale(strength).view(-1, 1, 1, 1)


def match_strength(similarity: Tensor, propagation: PropagationConfig) -> Tensor:
    """(B,) mean match confidence over each target's grid: how much of it the reference matches."""
    return match_confidence(similarity, propagation).flatten(1).mean(dim=1)
