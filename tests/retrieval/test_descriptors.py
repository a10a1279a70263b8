"""Retrieval descriptors: shapes, luminance-only invariance, and retrieval on real photos."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from chromaref.platform.assets import photo, photos, same_scene_pairs
from chromaref.platform.color import gray_from_l, image_to_tensor, rgb_to_lab
from chromaref.platform.errors import ConfigError
from chromaref.platform.images import load_image
from chromaref.retrieval.descriptors import (
    DescriptorConfig,
    DescriptorExtractor,
    Descriptors,
    histogram_distance,
    local_match_distance,
    luminance_thumbnail,
    resolve_precision,
)

NAMES = [p.name for p in photos()]


def _load(name: str) -> np.ndarray:
    return load_image(photo(name).path).rgb


def _gray_version(rgb: np.ndarray) -> np.ndarray:
    """The (H, W) uint8 gray image closest to the photo's own CIELAB L."""
    gray = gray_from_l(rgb_to_lab(image_to_tensor(rgb))[:, :1])
    return (gray[0, 0] * 255).round().to(torch.uint8).numpy()


def _rank(scores: np.ndarray, target: int, exclude: int) -> int:
    """1-based rank of `target` when higher scores come first, ignoring `exclude`."""
    others = np.delete(np.arange(len(scores)), exclude)
    return 1 + int((scores[others] > scores[target]).sum())


@pytest.fixture(scope="module")
def extractor(lite0) -> DescriptorExtractor:
    return DescriptorExtractor(device="cpu", backbone=lite0)


@pytest.fixture(scope="module")
def images() -> list[np.ndarray]:
    return [_load(name) for name in NAMES]


@pytest.fixture(scope="module")
def described(extractor, images) -> Descriptors:
    return extractor.describe_images(images)


def test_shapes_dtypes_and_normalisation(extractor, described):
    n = len(NAMES)
    dims = extractor.dims()
    assert dims == {"semantic": (1280,), "luminance": (50, 10), "local": (49, 64)}
    assert len(described) == n
    assert described.semantic.shape == (n, *dims["semantic"])
    assert described.luminance.shape == (n, *dims["luminance"])
    assert described.local.shape == (n, *dims["local"])
    assert described.semantic.dtype == np.float32
    assert described.luminance.dtype == described.local.dtype == np.float16
    np.testing.assert_allclose(np.linalg.norm(described.semantic, axis=1), 1.0, atol=1e-5)
    local_norms = np.linalg.norm(described.local.astype(np.float32), axis=-1)
    np.testing.assert_allclose(local_norms, 1.0, atol=2e-3)
    np.testing.assert_allclose(described.luminance.astype(np.float32).sum(-1), 1.0, atol=5e-3)


def test_global_histogram_is_the_sum_of_the_cells(described):
    hist = described.luminance.astype(np.float32)
    # 224 px over 7 cells: every cell holds 32 x 32 pixels, so cells weigh equally.
    np.testing.assert_allclose(hist[:, 0], hist[:, 1:].mean(axis=1), atol=5e-3)


def test_black_image_puts_all_mass_in_the_first_bin(extractor):
    d = extractor.describe_images([np.zeros((48, 64, 3), np.uint8)])
    expected = np.zeros((50, 10), np.float32)
    expected[:, 0] = 1.0
    np.testing.assert_array_equal(d.luminance[0].astype(np.float32), expected)


def test_thumbnail_is_exact_l_at_equal_size():
    rgb = _load("chelsea")[:96, :96]
    expected = rgb_to_lab(image_to_tensor(rgb))[0, 0].numpy()
    thumbnail = luminance_thumbnail(rgb, 96)
    assert thumbnail.dtype == np.float32 and thumbnail.shape == (96, 96)
    np.testing.assert_allclose(thumbnail, expected, atol=1e-3)


def test_thumbnail_rejects_other_arrays():
    with pytest.raises(ConfigError, match="uint8"):
        luminance_thumbnail(np.zeros((8, 8, 3), np.float32), 32)
    with pytest.raises(ConfigError, match=r"\(H, W, 3\)"):
        luminance_thumbnail(np.zeros((8, 8, 4), np.uint8), 32)


@pytest.mark.slow
def test_projection_is_deterministic_and_orthonormal(extractor, lite0, described):
    again = DescriptorExtractor(device="cpu", backbone=lite0)
    projection = again._projection.numpy()
    np.testing.assert_array_equal(projection, extractor._projection.numpy())
    np.testing.assert_allclose(projection.T @ projection, np.eye(64), atol=1e-5)
    # Batch size may change conv kernels' float rounding; float16 storage bounds the rest.
    np.testing.assert_allclose(
        again.describe_images([_load("coffee")]).local[0].astype(np.float32),
        described.local[NAMES.index("coffee")].astype(np.float32),
        atol=2e-3,
    )
    # Pinned: numpy's PCG64 normal stream and QR with fixed signs give these on any machine.
    np.testing.assert_allclose(projection[0, :3], [0.0069187, -0.0070377, 0.0349504], atol=1e-5)
    other = DescriptorExtractor(DescriptorConfig(seed=1), device="cpu", backbone=lite0)
    assert not np.allclose(other._projection.numpy(), projection)


@pytest.mark.slow
def test_color_and_gray_versions_give_the_same_descriptors(extractor, images, described):
    gray = extractor.describe_images([_gray_version(rgb) for rgb in images])
    semantic_cosine = (gray.semantic * described.semantic).sum(axis=1)
    # Measured: median 0.9999, worst 0.9975 (garden); the gap is the 8-bit rounding of L.
    assert np.median(semantic_cosine) > 0.999
    assert semantic_cosine.min() > 0.995
    distances = [
        histogram_distance(described.luminance[i], gray.luminance[i : i + 1])[0]
        for i in range(len(gray))
    ]
    assert max(distances) < 1e-3  # measured <= 1.5e-4
    global_gap = np.abs(gray.luminance[:, 0].astype(np.float32) - described.luminance[:, 0])
    assert global_gap.max() < 5e-3
    local_cosine = (gray.local.astype(np.float32) * described.local).sum(axis=-1)
    assert local_cosine.min() > 0.98


@pytest.mark.parametrize("pair", same_scene_pairs(), ids=lambda p: f"{p[0].name}-{p[1].name}")
def test_same_scene_partner_ranks_first_on_semantics(described, pair):
    # Measured on the 35 bundled photos: the partner is rank 1 both ways for all 5 pairs,
    # its cosine 0.70-0.99 against at most 0.47 for any other photo.
    a, b = NAMES.index(pair[0].name), NAMES.index(pair[1].name)
    for query, partner in ((a, b), (b, a)):
        scores = described.semantic @ described.semantic[query]
        assert _rank(scores, partner, exclude=query) == 1


def test_local_match_ranks_a_crop_flip_before_unrelated_photos(extractor, images, described):
    scenes = [p.scene for p in photos()]
    for name in ("astronaut", "coffee", "leuven_a", "orange", "starry_night", "yellow_flower"):
        index = NAMES.index(name)
        rgb = images[index]
        h, w = rgb.shape[:2]
        view = np.ascontiguousarray(rgb[h // 10 : -h // 10, w // 10 : -w // 10][:, ::-1])
        query = extractor.describe_images([view]).local[0]
        distance = local_match_distance(query, described.local)
        unrelated = [i for i, scene in enumerate(scenes) if scene != scenes[index]]
        assert distance[index] < distance[unrelated].min(), name


def test_local_match_distance_of_identical_cells_is_zero(described):
    distance = local_match_distance(described.local[0], described.local[:3])
    assert distance.shape == (3,) and distance.dtype == np.float32
    assert distance[0] == pytest.approx(0.0, abs=1e-3)
    assert (distance[1:] > 0.2).all()


def test_histogram_distance_identical_and_dark_vs_bright(extractor, described):
    assert histogram_distance(described.luminance[0], described.luminance[:1])[0] == pytest.approx(
        0.0, abs=1e-6
    )
    rgb = _load("fruits")
    dark = (rgb // 4).astype(np.uint8)
    bright = (191 + rgb // 4).astype(np.uint8)
    d = extractor.describe_images([dark, bright])
    distance = histogram_distance(d.luminance[0], d.luminance)
    assert distance[0] == pytest.approx(0.0, abs=1e-6)
    assert distance[1] > 0.5


def test_histogram_distance_handles_flat_histograms():
    flat = np.full((2, 4), 0.25, np.float32)
    peaked = np.array([[1.0, 0, 0, 0], [0, 0, 0, 1.0]], np.float32)
    distance = histogram_distance(flat, np.stack([flat, peaked, peaked[::-1]]))
    np.testing.assert_allclose(distance, [0.0, 0.5, 0.5], atol=1e-6)
    opposite = histogram_distance(peaked, np.stack([peaked, peaked[::-1]]))
    np.testing.assert_allclose(opposite, [0.0, 0.5 * (1 + 1 / 3)], atol=1e-6)


@pytest.mark.slow
def test_model_id_follows_config_and_weights(extractor, lite0):
    name, rest = extractor.model_id.split("@")
    assert name == "efficientnet_lite0"
    assert rest.startswith(lite0.meta.weights_sha256[:16])
    assert DescriptorExtractor(device="cpu", backbone=lite0).model_id == extractor.model_id
    for change in ({"local_dim": 32}, {"hist_bins": 16}, {"image_size": 256}, {"seed": 1}):
        other = DescriptorExtractor(DescriptorConfig(**change), device="cpu", backbone=lite0)
        assert other.model_id != extractor.model_id, change


def test_config_is_frozen_and_strict(lite0):
    with pytest.raises(ValueError, match="extra"):
        DescriptorConfig(hist_bin=10)
    with pytest.raises(ValueError, match="frozen"):
        DescriptorConfig().seed = 3  # type: ignore[misc]
    with pytest.raises(ConfigError, match="vgg19"):
        DescriptorExtractor(DescriptorConfig(backbone="vgg19"), device="cpu", backbone=lite0)


def test_describe_images_mixed_sizes_gray_and_batches(extractor):
    rgb = _load("rocket")
    gray = _gray_version(_load("china"))
    images = [rgb, gray, np.ascontiguousarray(rgb[50:130, 200:264]), np.stack([gray] * 3, -1)]
    batched = extractor.describe_images(images, batch_size=3)
    single = Descriptors.concat([extractor.describe_images([image]) for image in images])
    assert len(batched) == 4
    np.testing.assert_allclose(batched.semantic, single.semantic, atol=1e-4)
    np.testing.assert_array_equal(batched.luminance, single.luminance)
    np.testing.assert_allclose(batched.local.astype(np.float32), single.local, atol=2e-3)
    # (H, W) gray and the same gray as (H, W, 3) are the same image.
    np.testing.assert_array_equal(batched.luminance[1], batched.luminance[3])
    np.testing.assert_allclose(batched.semantic[1], batched.semantic[3], atol=1e-6)


def test_empty_input_and_bad_thumbnails(extractor):
    empty = extractor.describe_images([])
    assert len(empty) == 0 and empty.local.shape == (0, 49, 64)
    with pytest.raises(ConfigError, match="224"):
        extractor(np.zeros((2, 100, 100), np.float32))


def test_take_and_concat(described):
    part = described.take([3, 1])
    np.testing.assert_array_equal(part.semantic, described.semantic[[3, 1]])
    joined = Descriptors.concat([part, described.take(np.array([0]))])
    assert len(joined) == 3
    np.testing.assert_array_equal(joined.local[2], described.local[0])
    with pytest.raises(ConfigError):
        Descriptors.concat([])


def test_default_backbone_is_the_matching_default():
    from chromaref.platform.config import MatchingConfig

    assert DescriptorConfig().backbone == MatchingConfig().backbone


@pytest.mark.slow
def test_precision_is_resolved_and_recorded_in_the_model_id(extractor, lite0):
    native = torch.ops.mkldnn._is_mkldnn_bf16_supported()
    assert resolve_precision("auto", torch.device("cpu")) == ("bf16" if native else "fp32")
    assert resolve_precision("fp32", torch.device("cuda")) == "fp32"
    assert extractor.config.precision in ("fp32", "bf16")  # never "auto" past the extractor
    ids = {
        precision: DescriptorExtractor(
            DescriptorConfig(precision=precision), device="cpu", backbone=lite0
        ).model_id
        for precision in ("fp32", "bf16")
    }
    assert ids["fp32"].endswith("/fp32") and ids["bf16"].endswith("/bf16")
    assert ids["fp32"] != ids["bf16"]
    assert extractor.model_id == ids[extractor.config.precision]


def test_the_given_backbone_keeps_its_memory_format(extractor, lite0):
    stem = "net._conv_stem.weight"
    assert lite0.state_dict()[stem].is_contiguous()
    own = extractor.backbone.state_dict()[stem]
    assert own.is_contiguous(memory_format=torch.channels_last) and not own.is_contiguous()


@pytest.mark.slow
def test_bf16_semantic_vectors_stay_within_cosine_0_99_of_fp32(lite0, images):
    # bf16 is emulated (slow) on CPUs without AVX-512: six photos, varied scenes.
    sample = images[::6]
    fp32, bf16 = (
        DescriptorExtractor(DescriptorConfig(precision=p), device="cpu", backbone=lite0)
        for p in ("fp32", "bf16")
    )
    exact, reduced = fp32.describe_images(sample), bf16.describe_images(sample)
    # Measured on these 6 photos: semantic cosine >= 0.9978, local cells >= 0.986 (median 0.9986).
    assert (exact.semantic * reduced.semantic).sum(axis=1).min() > 0.99
    local = (exact.local.astype(np.float32) * reduced.local).sum(axis=-1)
    assert np.median(local) > 0.99
    np.testing.assert_array_equal(exact.luminance, reduced.luminance)  # no network involved
