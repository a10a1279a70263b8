"""Pretrained feature extractors, resolved by name (`get_backbone("efficientnet_lite0")`), and
the learned colorization sub-net (`colornet_small()`, `ColorNet.from_file(path)`)."""

from chromaref.platform.models import efficientnet_lite as _efficientnet_lite  # registers
from chromaref.platform.models import vgg as _vgg  # registers
from chromaref.platform.models._api import (
    Backbone,
    BackboneMeta,
    backbone_loads,
    get_backbone,
    list_backbones,
    register_backbone,
    shared_backbones,
)
from chromaref.platform.models._weights_io import ModelFileMeta
from chromaref.platform.models.colornet import (
    ColorNet,
    ColorNetConfig,
    colornet_base,
    colornet_inputs,
    colornet_small,
    colornet_target,
)

DEFAULT_BACKBONE = "efficientnet_lite0"

__all__ = [
    "DEFAULT_BACKBONE",
    "Backbone",
    "BackboneMeta",
    "ColorNet",
    "ColorNetConfig",
    "ModelFileMeta",
    "backbone_loads",
    "colornet_base",
    "colornet_inputs",
    "colornet_small",
    "colornet_target",
    "get_backbone",
    "list_backbones",
    "register_backbone",
    "shared_backbones",
]
del _efficientnet_lite, _vgg
