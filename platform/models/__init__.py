"""Pretrained feature extractors, resolved by name (`get_backbone("efficientnet_lite0")`), and
the learned colorization sub-net (`colornet_small()`, `ColorNet.from_file(path)`)."""

from chromaref.platform.models import efficientnet_lite as _efficientnet_lite  # registers
from chromaref.platform.models import vgg as _vgg  # registers
from chromaref.platform.models._api import (
    Backbone,
    BackboneMeta,
    get_backbone,
    list_backbones,
    register_backbone,
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
    "colornet_base",
    "colornet_inputs",
    "colornet_small",
    "colornet_target",
    "get_backbone",
    "list_backbones",
    "register_backbone",
]
del _efficientnet_lite, _vgg
