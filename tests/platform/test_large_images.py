"""Memory is bounded in the pixels: `chromaref colorize` on a 24 MP photo, end to end (load,
colorize, save the result and the grid), peaks under 1 GB + 30 bytes per input pixel.

The command runs in its own process, which reports its own peak RSS (VmHWM) at exit.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from benchmarks.speed import colorize_command, large_photo, measure_command, rss_budget_mb
from chromaref.platform.color import mean_chroma
from chromaref.platform.grid import MAX_CELL_HEIGHT


@pytest.mark.slow
@pytest.mark.integration
def test_a_24_megapixel_photo_stays_within_the_memory_budget(tmp_path):
    target = large_photo(tmp_path, 24)
    with Image.open(target) as image:
        size = image.size
    out = tmp_path / "out"
    _, peak_mb = measure_command(colorize_command(target, out))
    assert peak_mb <= rss_budget_mb(size[0] * size[1]), f"peak RSS {peak_mb:.0f} MB"
    [result] = out.glob("*__ref-*.png")
    with Image.open(result) as image:
        assert image.size == size  # full resolution kept
    grid = np.asarray(Image.open(next(out.glob("*__grid.png"))).convert("RGB"))
    assert grid.shape[0] <= MAX_CELL_HEIGHT + 32  # a preview, not a 24 MP picture
    cells = grid[grid.shape[0] // 4 :]  # below the captions
    assert mean_chroma(np.ascontiguousarray(cells[:, :100])) < 1.0  # the gray input
    assert mean_chroma(np.ascontiguousarray(cells[:, -100:])) > 5.0  # the colorized result
