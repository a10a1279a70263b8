"""The similarity sub-net on a batch of pairs: exactly what inference feeds ColorNet.

Each pair goes through `ColorizationPipeline.prepare` (Lab, working copy, backbone features)
and the pipeline's correspondence settings, then `colornet_inputs`: the same code the
`trained` colorizer runs, so a trained model never sees inputs built another way. It runs
under no_grad in the train step (frozen backbone), on the worker's device.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from chromaref.platform.models.colornet import colornet_inputs, colornet_target
from chromaref.platform.pipeline import ColorizationPipeline
from chromaref.training.pairs import CHROMA, Pair


@dataclass(frozen=True)
class Batch:
    """ColorNet inputs and what the losses compare them with, stacked over the pairs."""

    inputs: Tensor  # (B, C, h, w) colornet_inputs
    truth_ab: Tensor  # (B, 2, h, w) the targets' ab on the grid (colornet_target)
    lab_work: Tensor  # (B, 3, S, S) the targets' Lab at the working size
    chroma: Tensor  # (B,) bool: the pair belongs to the chrominance branch

    def __len__(self) -> int:
        return self.inputs.shape[0]


@torch.no_grad()
def make_batch(pipeline: ColorizationPipeline, pairs: Sequence[Pair]) -> Batch:
    """Prepare both images of every pair, match them, and stack ColorNet's inputs.

    `prepare` runs under inference mode; the stacked tensors are cloned here, outside it, so
    the train step may use them in autograd."""
    inputs, truth, lab = [], [], []
    for pair in pairs:
        target = pipeline.prepare(pair.target, name="target")
        reference = pipeline.prepare(pair.reference, name="reference", full_l=False)
        match = pipeline.correspond(target, reference)
        inputs.append(colornet_inputs(target.l_work, target.grid, match))
        truth.append(colornet_target(target.lab_work, match.grid_size))
        lab.append(target.lab_work)
    device = inputs[0].device
    return Batch(
        inputs=torch.cat(inputs).clone(),
        truth_ab=torch.cat(truth).clone(),
        lab_work=torch.cat(lab).clone(),
        chroma=torch.tensor([p.branch == CHROMA for p in pairs], device=device),
    )
