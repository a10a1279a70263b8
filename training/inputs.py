"""The similarity sub-net on a batch of pairs: exactly what inference feeds ColorNet.

Every pair's images go through `ColorizationPipeline.prepare_many` (Lab, working copy, and
backbone features in one pass for the whole batch: training crops share one shape) and the
pipeline's correspondence settings, then `network_inputs`: the same code the `trained`
colorizer runs, so a trained model never sees inputs built another way. It runs under
no_grad in the train step (frozen backbone), on the worker's device.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from chromaref.platform.colorizers.trained import network_inputs
from chromaref.platform.models.colornet import ColorNetConfig, colornet_target
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
def make_batch(pipeline: ColorizationPipeline, pairs: Sequence[Pair], net: ColorNetConfig) -> Batch:
    """Prepare both images of every pair, match them, and stack `net`'s inputs.

    `prepare_many` runs under inference mode; the stacked tensors are cloned here, outside
    it, so the train step may use them in autograd."""
    prepared = pipeline.prepare_many([p.target for p in pairs] + [p.reference for p in pairs])
    propagation = pipeline.config.propagation
    inputs, truth, lab = [], [], []
    for target, reference in zip(prepared[: len(pairs)], prepared[len(pairs) :], strict=True):
        match = pipeline.correspond(target, reference)
        inputs.append(network_inputs(net, target.l_work, target.grid, match, propagation))
        truth.append(colornet_target(target.lab_work, match.grid_size))
        lab.append(target.lab_work)
    device = inputs[0].device
    return Batch(
        inputs=torch.cat(inputs).clone(),
        truth_ab=torch.cat(truth).clone(),
        lab_work=torch.cat(lab).clone(),
        chroma=torch.tensor([p.branch == CHROMA for p in pairs], device=device),
    )
