"""ColorNet: shapes, sizes, its input layout on real photos, the model file, and that it learns."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from chromaref.platform import files
from chromaref.platform.config import MatchingConfig, PipelineConfig
from chromaref.platform.errors import ConfigError, WeightsError
from chromaref.platform.models import (
    ColorNet,
    colornet_base,
    colornet_inputs,
    colornet_small,
    colornet_target,
)
from chromaref.platform.models._weights_io import FORMAT_VERSION
from chromaref.platform.pipeline import ColorizationPipeline
from chromaref.platform.similarity import correspond


def _prepared_pair(pipeline, photo_rgb, name: str, *, working_size: int | None = None):
    """A real photo as both target and reference (self-reference), prepared by the pipeline
    (or by one matching at `working_size`: a smaller grid, a faster test)."""
    if working_size:
        config = PipelineConfig(matching=MatchingConfig(working_size=working_size))
        pipeline = ColorizationPipeline(config, device="cpu")
    prepared = pipeline.prepare(photo_rgb(name), name=name)
    correspondence = correspond(prepared.grid, prepared.grid, prepared.lab_work[:, 1:])
    return prepared, correspondence


def _saved(tmp_path, model: ColorNet, name: str = "net.pt", **kwargs) -> str:
    return str(model.save(tmp_path / name, **kwargs))


@pytest.mark.parametrize("size", [(64, 96), (22, 32), (5, 7)], ids=["256px", "odd", "tiny"])
def test_small_net_keeps_the_grid_size_for_any_shape(size):
    net = colornet_small().eval()
    with torch.inference_mode():
        out = net(torch.randn(2, net.config.in_channels, *size))
    assert out.shape == (2, 2, *size)


def test_parameter_counts_small_trains_on_cpu_base_is_paper_sized():
    small, base = colornet_small(), colornet_base()
    assert 0.3e6 < small.num_parameters() <= 2e6
    assert base.num_parameters() > 10 * small.num_parameters()
    assert base.config.widths == (64, 128, 256, 512)  # the paper's widths
    # L, warped ab, the training-free ab it corrects, 6 similarities, efficientnet_lite0 grid
    assert small.config.residual and small.config.in_channels == 3 + 2 + 6 + 496


def test_output_is_ab_bounded_by_the_configured_scale():
    for scale in (128.0, 100.0):
        net = colornet_small(ab_scale=scale).eval()
        x = torch.randn(1, net.config.in_channels, 16, 24)
        with torch.inference_mode():
            net.head[-1].weight.mul_(1e4)  # drive tanh to saturation
            ab = net(x)
        assert float(ab.abs().max()) <= scale
        assert float(ab.abs().max()) > 0.5 * scale


def test_a_residual_net_adds_a_bounded_correction_to_its_base_ab():
    net = colornet_small().eval()
    x = torch.randn(1, net.config.in_channels, 16, 24)
    x[:, 3:5] = torch.linspace(-1.2, 1.2, 16 * 24).view(1, 1, 16, 24)  # base ab / 128
    with torch.inference_mode():
        untrained = net(x)
        net.head[-1].bias.fill_(0.5)  # a correction of tanh(0.5) * 128 ~ 59 everywhere
        corrected = net(x)
    base = x[:, 3:5] * 128
    inside = base.abs() < 128
    torch.testing.assert_close(untrained[inside], base[inside], atol=1.0, rtol=0)
    assert float(corrected.max()) <= 128 and float(corrected.min()) >= -128
    shift = (corrected - base)[inside & (base < 0)]  # room for +59 below the bound
    torch.testing.assert_close(shift.mean(), torch.tensor(59.2), atol=2.0, rtol=0)


def test_bad_configs_and_inputs_are_clear_value_errors():
    with pytest.raises(ConfigError, match="not divisible by groups=8") as err:
        colornet_small(width=12)
    assert isinstance(err.value, ValueError)
    with pytest.raises(ConfigError, match="at least one conv"):
        colornet_small(depths=(2, 0, 2, 2))
    with pytest.raises(ConfigError, match="depht"):
        colornet_small(depht=3)
    with pytest.raises(ConfigError, match="other features"):
        colornet_small()(torch.zeros(1, 7, 16, 16))
    colornet_small(width=12, norm="instance")  # InstanceNorm has no group constraint


def test_inputs_layout_on_a_real_photo(pipeline, photo_rgb):
    prepared, corr = _prepared_pair(pipeline, photo_rgb, "flower")
    x = colornet_inputs(prepared.l_work, prepared.grid, corr)
    levels = corr.level_similarity.shape[1]
    assert x.shape == (1, 5 + levels + 496, *corr.grid_size) and levels == 4
    l_grid = F.adaptive_avg_pool2d(prepared.l_work, corr.grid_size)
    torch.testing.assert_close(x[:, :1] * 50 + 50, l_grid)
    torch.testing.assert_close(x[:, 1:3] * 128, corr.warped_ab)
    torch.testing.assert_close(x[:, 3:4], corr.similarity)
    rms = x[:, 5 + levels :].pow(2).mean(dim=1).sqrt()
    torch.testing.assert_close(rms, torch.ones_like(rms), atol=1e-3, rtol=0)
    base = torch.randn(1, 2, *corr.grid_size) * 20
    residual = colornet_inputs(prepared.l_work, prepared.grid, corr, base)
    assert residual.shape[1] == x.shape[1] + 2
    torch.testing.assert_close(residual[:, 3:5] * 128, base)  # the ab a residual net corrects
    torch.testing.assert_close(residual[:, 5:], x[:, 3:])
    target = colornet_target(prepared.lab_work, corr.grid_size)
    assert target.shape == (1, 2, *corr.grid_size) and float(target.abs().mean()) > 5
    flower = photo_rgb("flower")
    square = pipeline.prepare(flower[:, : min(flower.shape[:2])])  # another shape, another grid
    other = correspond(square.grid, square.grid, square.lab_work[:, 1:])
    assert other.grid_size != corr.grid_size
    with pytest.raises(ConfigError, match="grid"):
        colornet_inputs(prepared.l_work, prepared.grid, other)


@pytest.mark.parametrize("half", [False, True], ids=["fp32", "fp16"])
def test_save_then_load_gives_the_same_outputs_and_provenance(tmp_path, half):
    net = colornet_small().eval()
    path = _saved(
        tmp_path,
        net,
        half=half,
        run_id="run-123",
        metrics={"val_l1": 4.2},
        dataset={"name": "bundled", "split": "train"},
        matching={"backbone": "efficientnet_lite0"},
    )
    loaded = ColorNet.from_file(path)
    x = torch.randn(1, net.config.in_channels, 20, 28)
    with torch.inference_mode():
        expected, got = net(x), loaded(x)
    if half:
        torch.testing.assert_close(got, expected, atol=0.5, rtol=0)
    else:
        assert torch.equal(got, expected)
    meta = loaded.meta
    assert loaded.config == net.config and not loaded.training
    assert meta.sha256 == files.sha256_file(path) and meta.format_version == FORMAT_VERSION
    assert (meta.run_id, meta.metrics, meta.dataset) == (
        "run-123",
        {"val_l1": 4.2},
        {"name": "bundled", "split": "train"},
    )
    assert meta.dtype == ("float16" if half else "float32")
    assert meta.matching == {"backbone": "efficientnet_lite0"}
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic save left no temp file


def test_builders_load_a_file_only_when_it_holds_their_variant(tmp_path):
    path = _saved(tmp_path, colornet_small())
    assert colornet_small(weights=path).meta.path == path
    with pytest.raises(
        ConfigError, match=r"net\.pt does not hold a colornet_base: .*width=16 \(asked 64\)"
    ):
        colornet_base(weights=path)


def _rewrite(source: str, target, **changes) -> str:
    payload = torch.load(source, weights_only=True)
    payload.update(changes)
    torch.save(payload, target)
    return str(target)


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("missing", "not found"),
        ("corrupt", "not a readable model file: not a PyTorch weights file"),
        ("empty", "not a readable model file: the file is empty"),
        ("truncated", "not a readable model file: truncated or corrupt"),
        ("pickled_object", "holds Python objects besides tensors, which are not loaded"),
        ("plain_state_dict", "not a chromaref-colornet file"),
        ("other_architecture", "holds a 'unet' model"),
        ("other_version", f"format version 99, this chromaref reads {FORMAT_VERSION}"),
        ("bad_config", "invalid ColorNet config"),
        ("bad_matching", "matching is not a mapping"),
        ("bad_run_id", "run_id is not text"),
    ],
)
def test_unusable_model_files_are_refused_in_one_line_naming_the_file(tmp_path, case, reason):
    good = _saved(tmp_path, colornet_small(width=8))
    bad = tmp_path / f"{case}.pt"
    if case == "corrupt":
        bad.write_bytes(b"\x00garbage" * 100)
    elif case == "empty":
        bad.write_bytes(b"")
    elif case == "pickled_object":
        torch.save({"state_dict": colornet_small(width=8)}, bad)  # a whole module: code
    elif case == "truncated":
        data = Path(good).read_bytes()
        bad.write_bytes(data[: len(data) // 2])
    elif case == "plain_state_dict":
        torch.save(colornet_small().state_dict(), bad)
    elif case == "other_architecture":
        _rewrite(good, bad, architecture="unet")
    elif case == "other_version":
        _rewrite(good, bad, format_version=99)
    elif case == "bad_config":
        _rewrite(good, bad, config={"width": -1})
    elif case == "bad_matching":
        _rewrite(good, bad, matching=["efficientnet_lite0"])
    elif case == "bad_run_id":
        _rewrite(good, bad, run_id=42)
    with pytest.raises(WeightsError) as err:
        ColorNet.from_file(bad)
    message = str(err.value)
    assert str(bad) in message and reason in message, message
    assert "chromaref train" in message and "\n" not in message


@pytest.mark.slow
def test_small_net_overfits_one_real_pair_through_every_input(pipeline, photo_rgb):
    """A few hundred Adam steps on one self-reference pair: the ab L1 loss falls far below
    both its start and the gray guess, and every input channel receives gradient."""
    prepared, corr = _prepared_pair(pipeline, photo_rgb, "flower", working_size=128)
    x = colornet_inputs(prepared.l_work, prepared.grid, corr).requires_grad_(True)
    y = colornet_target(prepared.lab_work, corr.grid_size)
    net = colornet_small(residual=False)
    optimizer = torch.optim.Adam(net.parameters(), lr=2e-3)
    losses = []
    for _ in range(150):
        loss = F.l1_loss(net(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    gray_l1 = float(y.abs().mean())
    assert losses[0] == pytest.approx(gray_l1, rel=0.05)  # an untrained net predicts ~gray
    assert losses[-1] < 0.2 * losses[0], losses[::20]
    assert losses[-1] < 0.2 * gray_l1, (losses[-1], gray_l1)
    per_channel = x.grad.abs().sum(dim=(0, 2, 3))
    dead = torch.nonzero(per_channel == 0).flatten().tolist()
    assert not dead, f"input channels without gradient: {dead}"
