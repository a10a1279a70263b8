"""Make the similarity sub-net inspectable: its maps and the warped reference as images."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from chromaref.platform.color import lab_to_image_keep_l, tensor_to_image
from chromaref.platform.colorizers import PreparedImage
from chromaref.platform.similarity import Correspondence


def _upsample(x: Tensor, size: tuple[int, int], mode: str) -> Tensor:
    return F.interpolate(x, size=size, mode=mode)


def _similarity_image(similarity: Tensor, size: tuple[int, int]) -> np.ndarray:
    """Cosine -> gray: black at or below 0, white at 1 (nearest upsampling keeps cells visible)."""
    gray = _upsample(similarity.clamp(0, 1), size, "nearest")
    return tensor_to_image(gray.expand(-1, 3, -1, -1).cpu())


@torch.inference_mode()
def correspondence_images(
    target: PreparedImage, correspondence: Correspondence
) -> dict[str, np.ndarray]:
    """Named RGB images at the target's working size: the warped reference under the target's
    L, the combined forward and cycle similarity, and one similarity map per feature level."""
    size = tuple(target.l_work.shape[-2:])
    warped_ab = _upsample(correspondence.warped_ab, size, "bilinear")
    images = {
        "warped_reference": lab_to_image_keep_l(target.l_work, warped_ab),
        "similarity": _similarity_image(correspondence.similarity, size),
        "cycle_similarity": _similarity_image(correspondence.cycle_similarity, size),
    }
    for level in range(correspondence.level_similarity.shape[1]):
        level_map = correspondence.level_similarity[:, level : level + 1]
        images[f"similarity_level{level + 1}"] = _similarity_image(level_map, size)
    return images
