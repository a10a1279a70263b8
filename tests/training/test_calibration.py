"""Fitting the chroma gate on real held-out pairs: a net that paints wrong vivid colors gets
gated towards gray, and the fit says how much it gained."""

from __future__ import annotations

import pytest
import torch

from chromaref.platform.colorizers.chroma_gate import ChromaGate
from chromaref.platform.models import colornet_small
from chromaref.training.calibration import FLOORS, calibration_pairs, fit_chroma_gate
from chromaref.training.config import resolve_config
from chromaref.training.pairs import CHROMA, PairMaker, drop_duplicates, scan_items

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pairs(train_corpus):
    from chromaref.retrieval.corpus import list_corpus

    photos, _ = drop_duplicates(scan_items(list_corpus(train_corpus), min_chroma=2.0))
    maker = PairMaker(photos[:2], photos[2:], {}, resolve_config().data, 96)
    return calibration_pairs(maker, seed=0, limit=2, others=2)


def test_pairs_are_each_photos_self_then_its_others(pairs):
    assert [p.branch == CHROMA for p in pairs] == [True, False, False] * 2
    assert all(p.reference_kind == "random" for p in pairs if p.branch != CHROMA)


def test_a_net_painting_one_vivid_color_everywhere_is_gated_towards_gray(pipeline, pairs):
    net = colornet_small(residual=False).eval()
    with torch.no_grad():  # a = 70, b = -70 in every cell, whatever the photo
        net.head[-1].bias.copy_(torch.atanh(torch.tensor([70.0, -70.0]) / net.config.ab_scale))
    fit = fit_chroma_gate(net, pipeline, pairs)
    assert fit.pairs == len(pairs)
    assert fit.gate != ChromaGate() and fit.gate.floor == min(FLOORS)
    assert fit.psnr > fit.ungated_psnr + 1.0
    assert set(fit.metrics()) >= {"calibration/floor", "calibration/knee", "calibration/psnr"}
