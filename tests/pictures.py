"""What the tests read off a PNG: whether data were drawn on it."""

import matplotlib.image
import numpy as np

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def coloured_share(png) -> float:
    """Share of a PNG's pixels in colour: the data drawn (axes and text are grey)."""
    rgb = matplotlib.image.imread(png)[..., :3]
    return float(np.mean(rgb.max(axis=-1) - rgb.min(axis=-1) > 0.2))
