"""Image quality metrics used by benchmarks and evaluation; scikit-image does the heavy lifting."""

from __future__ import annotations

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity


def psnr(result: np.ndarray, truth: np.ndarray) -> float:
    """PSNR in dB between two (H, W, 3) uint8 RGB images."""
    return float(peak_signal_noise_ratio(truth, result, data_range=255))


def ssim(result: np.ndarray, truth: np.ndarray) -> float:
    """Mean SSIM over the RGB channels of two (H, W, 3) uint8 images."""
    return float(structural_similarity(truth, result, channel_axis=2, data_range=255))


def ab_ssim(result_lab: np.ndarray, truth_lab: np.ndarray) -> float:
    """Mean SSIM over the a, b channels of two (H, W, 3) CIELAB arrays (ab range taken as 256):
    the chroma structure alone, which RGB SSIM mostly hides behind the shared luminance."""
    return float(
        structural_similarity(
            truth_lab[..., 1:], result_lab[..., 1:], channel_axis=2, data_range=256
        )
    )


def colorfulness(rgb: np.ndarray) -> float:
    """Hasler and Suesstrunk (2003) colorfulness: 0 for gray, ~40-60 for typical photos."""
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    rg, yb = r - g, 0.5 * (r + g) - b
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def ab_psnr(result_lab: np.ndarray, truth_lab: np.ndarray) -> float:
    """PSNR in dB on the a, b channels only ((H, W, 3) CIELAB arrays; ab range taken as 256)."""
    return float(peak_signal_noise_ratio(truth_lab[..., 1:], result_lab[..., 1:], data_range=256))


def ab_histogram_distance(first_lab: np.ndarray, second_lab: np.ndarray, bins: int = 16) -> float:
    """Total-variation distance in [0, 1] between the 2-D ab histograms of two images: 0 when
    they use the same colors in the same proportions (reference faithfulness)."""
    edges = np.linspace(-128, 128, bins + 1)

    def histogram(lab: np.ndarray) -> np.ndarray:
        counts, _, _ = np.histogram2d(lab[..., 1].ravel(), lab[..., 2].ravel(), bins=(edges, edges))
        return counts / max(counts.sum(), 1)

    return float(0.5 * np.abs(histogram(first_lab) - histogram(second_lab)).sum())
