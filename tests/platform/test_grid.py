"""Result grids are previews: bounded in size whatever the inputs, and faithful to them."""

from __future__ import annotations

import numpy as np
from PIL import Image

from chromaref.platform.grid import MAX_CELL_HEIGHT, MAX_CELL_WIDTH, make_grid
from chromaref.platform.metrics import psnr


def _resized(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    return np.asarray(Image.fromarray(rgb).resize((width, height), Image.Resampling.BICUBIC))


def test_a_large_image_gives_a_small_faithful_cell(photo_rgb):
    """A 12 MP image of real detail (a photo tiled 8 x 8, cropped to ragged sides) becomes a
    cell equal to Pillow's own box-reduce + Lanczos resize of it, made without Pillow's
    full-size copy; the grid is the cell's size, not the photo's."""
    small = photo_rgb("leuven_a")
    large = np.ascontiguousarray(np.tile(small, (8, 8, 1))[:3001, :4003])
    grid = make_grid([[large, small]], cell_height=200)
    pillow = Image.fromarray(large).resize((267, 200), Image.Resampling.LANCZOS, reducing_gap=2)
    assert grid.shape[0] == 200
    assert psnr(grid[:, :267], np.asarray(pillow)) > 45.0


def test_cells_are_capped_whatever_the_caller_asks(photo_rgb):
    photo = photo_rgb("china")
    tall = make_grid([[photo]], cell_height=10 * MAX_CELL_HEIGHT)
    assert tall.shape[0] == MAX_CELL_HEIGHT
    panorama = _resized(photo, 9000, 300)  # 30:1
    wide = make_grid([[panorama]], cell_height=256)
    assert wide.shape[1] == MAX_CELL_WIDTH and wide.shape[0] == 256
    assert wide[: round(256 * MAX_CELL_WIDTH / 9000)].std() > 10  # the photo, shorter, at the top


def test_labels_and_layout():
    red = np.zeros((50, 100, 3), np.uint8)
    red[..., 0] = 255
    grid = make_grid([[red, red], [red]], labels=[["a", "b"], ["c"]], cell_height=40)
    assert grid.shape == (2 * (40 + 18) + 4, 80 + 4 + 80, 3)
    assert (grid[18 + 20, 40] == (255, 0, 0)).all()  # inside the first cell, under its label
