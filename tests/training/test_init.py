"""`init` (`chromaref train --init`): the weights a fine-tuning run starts from, checked on the
driver before any worker starts (the run itself is in test_train_ray.py)."""

from __future__ import annotations

import pytest
import torch

from chromaref.platform.errors import WeightsError
from chromaref.platform.models.colornet import SHIPPED_MODEL, ColorNet
from chromaref.training.checkpoint import model_from_state
from chromaref.training.config import resolve_config
from chromaref.training.trainer import _initial_weights


def test_shipped_names_the_shipped_model_and_gives_its_network():
    state = _initial_weights(resolve_config(overrides={"init": "shipped"}))
    shipped = ColorNet.from_file(SHIPPED_MODEL)
    rebuilt = model_from_state(state)
    assert rebuilt.config == shipped.config
    assert all(torch.equal(v, shipped.state_dict()[k]) for k, v in rebuilt.state_dict().items())


def test_no_init_means_new_weights():
    assert _initial_weights(resolve_config()) is None


def test_a_model_of_another_backbone_is_refused_in_one_line():
    config = resolve_config(overrides={"init": "shipped", "matching.backbone": "vgg16_hed"})
    with pytest.raises(WeightsError, match="trained on efficientnet_lite0 features"):
        _initial_weights(config)


def test_a_foreign_file_is_refused_naming_it(tmp_path):
    foreign = tmp_path / "weights.pt"
    torch.save({"conv.weight": torch.zeros(1)}, foreign)
    with pytest.raises(WeightsError, match=r"weights\.pt"):
        _initial_weights(resolve_config(overrides={"init": str(foreign)}))
