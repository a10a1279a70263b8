"""Branch losses on real pairs: they fall when ColorNet overfits one batch; the ab terms' forms."""

from __future__ import annotations

import pytest
import torch

from chromaref.training.checkpoint import new_colornet
from chromaref.training.config import resolve_config
from chromaref.training.inputs import Batch, make_batch
from chromaref.training.losses import PerceptualLoss, compute_losses, smoothness
from chromaref.training.pairs import (
    CHROMA,
    PERCEPTUAL,
    PairMaker,
    drop_duplicates,
    sample_rng,
    scan_items,
)


@pytest.mark.slow
def test_losses_of_both_branches_fall_on_an_overfit_of_one_batch(pipeline, train_corpus, tiny):
    from chromaref.retrieval.corpus import list_corpus

    config = resolve_config(tiny, {"matching.working_size": 64})
    photos, _ = drop_duplicates(scan_items(list_corpus(train_corpus)[:4], min_chroma=2.0))
    maker = PairMaker(photos, photos, {}, config.data, 64)
    pairs = [maker.pair(i, sample_rng(0, i), (CHROMA, PERCEPTUAL)[i % 2]) for i in range(4)]
    plain = config.model_copy(update={"model_options": {"residual": False}})
    model = new_colornet(plain, pipeline.backbone)
    batch = make_batch(pipeline, pairs, model.config)
    assert batch.chroma.tolist() == [True, False, True, False]
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    perceptual = PerceptualLoss(pipeline.backbone, config.loss.perceptual_levels)
    history = []
    for _ in range(25):
        losses = compute_losses(model(batch.inputs), batch, perceptual, config.loss)
        history.append({k: float(s) / n for k, (s, n) in losses.terms.items()})
        history[-1]["total"] = float(losses.total.detach())
        optimizer.zero_grad()
        losses.total.backward()
        optimizer.step()
    first, last = history[0], history[-1]
    assert last["total"] < 0.6 * first["total"]
    assert last["chroma"] < first["chroma"] and last["perceptual"] < first["perceptual"]
    # the default, residual net starts from the training-free ab: on a warped view of the
    # target itself that is already far closer to the truth than a plain net's gray start
    residual = new_colornet(config, pipeline.backbone)
    start = compute_losses(
        residual(make_batch(pipeline, pairs, residual.config).inputs),
        batch,
        perceptual,
        config.loss,
    )
    chroma, count = start.terms["chroma"]
    assert float(chroma) / count < 0.5 * first["chroma"]


def test_smoothness_is_cheap_at_luminance_edges_and_dear_in_flat_regions():
    ab = torch.zeros(1, 2, 8, 8)
    ab[..., 4:] = 40.0  # a chroma step between columns 3 and 4
    flat = torch.full((1, 1, 8, 8), 50.0)
    edge = flat.clone()
    edge[..., 4:] = 80.0  # the same step in L
    assert float(smoothness(torch.zeros_like(ab), flat, 5.0)) == 0.0
    assert float(smoothness(ab, edge, 5.0)) < 0.01 * float(smoothness(ab, flat, 5.0))


# smooth-L1's best is the median, 0, moved by its quadratic zone (beta = 0.05 * 128) to beta / 3
@pytest.mark.parametrize(("form", "best"), [("smooth_l1", 0.05 * 128 / 3), ("l2", 15.0)])
def test_the_perceptual_ab_form_picks_the_median_or_the_mean_color(form, best):
    """Truth: a quarter of the cells at a = 60, the rest gray. The best constant prediction is
    near their median (0) under smooth-L1 and is their mean (15) under l2."""
    truth = torch.zeros(1, 2, 4, 4)
    truth[0, 0, :1] = 60.0
    batch = Batch(
        inputs=torch.zeros(1, 1, 4, 4),
        truth_ab=truth,
        lab_work=torch.full((1, 3, 16, 16), 50.0),
        chroma=torch.tensor([False]),
    )
    loss = resolve_config(
        overrides={
            "loss": {"perceptual_weight": 0, "perceptual_ab_weight": 1, "perceptual_ab_loss": form}
        }
    ).loss
    a = torch.full((1, 1, 1, 1), 30.0, requires_grad=True)
    optimizer = torch.optim.Adam([a], lr=0.5)
    for _ in range(300):
        pred = torch.cat([a.expand(1, 1, 4, 4), torch.zeros(1, 1, 4, 4)], dim=1)
        losses = compute_losses(pred, batch, None, loss)
        optimizer.zero_grad()
        losses.total.backward()
        optimizer.step()
    assert float(a) == pytest.approx(best, abs=0.5)
    assert losses.terms["perceptual_ab"][1] == 1 and losses.terms["chroma"][1] == 0
