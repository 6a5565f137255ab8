"""What the tests read off a PNG: whether data were drawn on it."""

from pathlib import Path

import matplotlib.image
import numpy as np

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def coloured_share(png) -> float:
    """Share of a PNG's pixels in colour: the data drawn (axes and text are grey)."""
    rgb = matplotlib.image.imread(png)[..., :3]
    return float(np.mean(rgb.max(axis=-1) - rgb.min(axis=-1) > 0.2))


def assert_drawn(png, least: float = 0.005) -> None:
    """A PNG file with data drawn on it: at least ``least`` of its pixels in colour (a
    figure with empty axes has none)."""
    assert Path(png).read_bytes()[:8] == PNG_MAGIC, png
    assert coloured_share(png) > least, png
