"""Fixtures of the platform tests."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data


@pytest.fixture(scope="module")
def chelsea() -> np.ndarray:
    """A real color photo (451x300), bundled with scikit-image."""
    return data.chelsea()
