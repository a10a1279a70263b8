"""Side-by-side result grids (input | reference | result), where people would rather look.

A grid is a preview: cells are capped in size (`MAX_CELL_HEIGHT`, `MAX_CELL_WIDTH`) whatever
the caller asks for, and a large image is box-reduced band by band before its final resize,
so a 100 MP input gives a grid of a few megapixels at most, and no full-size copy is made.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

logger = logging.getLogger(__name__)

_LABEL_HEIGHT = 18
_GAP = 4
MAX_CELL_HEIGHT = 1024
MAX_CELL_WIDTH = 4096  # very wide images (panoramas) get a shorter cell instead
# Box-reduce until the image is at most this many times the cell before resampling (as
# Pillow's `reducing_gap`): the final Lanczos step then still sees 2x the cell's detail.
_REDUCING_GAP = 2
_BAND_PIXELS = 1 << 22  # input pixels box-reduced at once


def _box_reduce(rgb: np.ndarray, fy: int, fx: int) -> np.ndarray:
    """Mean of each `fy` x `fx` block of an (H, W, 3) uint8 image (partial blocks at the
    bottom and right edges averaged over what they hold, as Pillow's `reduce`), computed in
    bands of rows so no full-size copy is made."""
    height, width = rgb.shape[:2]
    out = np.empty((-(-height // fy), -(-width // fx), 3), dtype=np.uint8)
    columns = np.arange(0, width, fx)
    column_sizes = np.diff(columns, append=width)
    rows = max(1, _BAND_PIXELS // (width * fy)) * fy
    for top in range(0, height, rows):
        band = rgb[top : top + rows].astype(np.float32)
        starts = np.arange(0, band.shape[0], fy)
        sums = np.add.reduceat(np.add.reduceat(band, starts, axis=0), columns, axis=1)
        counts = np.outer(np.diff(starts, append=band.shape[0]), column_sizes)
        out[top // fy : top // fy + len(starts)] = np.rint(sums / counts[..., None])
    return out


def _fit(rgb: np.ndarray, height: int) -> Image.Image:
    """`rgb` resized to `height` rows, or fewer if it would be wider than `MAX_CELL_WIDTH`;
    large images are box-reduced first (what Pillow's `reducing_gap` does, without its
    full-size copy)."""
    scale = min(height / rgb.shape[0], MAX_CELL_WIDTH / rgb.shape[1])
    size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
    fy = max(1, rgb.shape[0] // (size[1] * _REDUCING_GAP))
    fx = max(1, rgb.shape[1] // (size[0] * _REDUCING_GAP))
    box = (0.0, 0.0, rgb.shape[1] / fx, rgb.shape[0] / fy)  # the source, in reduced pixels
    if fy > 1 or fx > 1:
        rgb = _box_reduce(rgb, fy, fx)
    return Image.fromarray(rgb).resize(size, Image.Resampling.LANCZOS, box=box)


def make_grid(
    rows: Sequence[Sequence[np.ndarray]],
    *,
    labels: Sequence[Sequence[str]] | None = None,
    cell_height: int = 256,
) -> np.ndarray:
    """Lay out rows of RGB images, each scaled to `cell_height` (at most `MAX_CELL_HEIGHT`)
    and at most `MAX_CELL_WIDTH` wide, with optional captions.

    Returns an (H, W, 3) uint8 image on a white background.
    """
    if not rows or not all(rows):
        raise ValueError("make_grid needs at least one non-empty row")
    if cell_height > MAX_CELL_HEIGHT:
        logger.debug("grid cells capped at %d px (asked for %d)", MAX_CELL_HEIGHT, cell_height)
        cell_height = MAX_CELL_HEIGHT
    cells = [[_fit(image, cell_height) for image in row] for row in rows]
    label_h = _LABEL_HEIGHT if labels else 0
    width = max(sum(c.width for c in row) + _GAP * (len(row) - 1) for row in cells)
    height = len(cells) * (cell_height + label_h) + _GAP * (len(cells) - 1)
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    y = 0
    for r, row in enumerate(cells):
        x = 0
        for c, cell in enumerate(row):
            if labels:
                draw.text((x + 2, y + 2), labels[r][c][:60], fill="black", font=font)
            canvas.paste(cell, (x, y + label_h))
            x += cell.width + _GAP
        y += cell_height + label_h + _GAP
    return np.asarray(canvas)
