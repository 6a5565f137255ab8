"""Pictures of trained generative models, as PNG files written atomically."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np

from infer.io import save_png


def image_grid(images: np.ndarray, path, title: str, columns: int | None = None) -> Path:
    """``images`` (num, height, width) in [0, 1] as a grid of grey pictures (dark = 1)."""
    import matplotlib.pyplot as plt

    images = np.asarray(images)
    num = images.shape[0]
    columns = columns or math.ceil(math.sqrt(num))
    rows = math.ceil(num / columns)
    height, width = images.shape[1:]
    canvas = np.full((rows * (height + 1) - 1, columns * (width + 1) - 1), 0.15)  # light lines
    for index, image in enumerate(images):
        r, c = divmod(index, columns)
        top, left = r * (height + 1), c * (width + 1)
        canvas[top : top + height, left : left + width] = image
    width_inches = max(4.0, 0.45 * columns * max(1.0, width / 14))
    title = textwrap.fill(title, int(11 * width_inches))  # about 11 characters an inch at 10pt
    lines = title.count("\n") + 1
    height_inches = width_inches * canvas.shape[0] / canvas.shape[1] + 0.3 + 0.2 * lines
    figure, axis = plt.subplots(figsize=(width_inches, height_inches), layout="constrained")
    axis.imshow(canvas, cmap="gray_r", vmin=0.0, vmax=1.0, interpolation="nearest")
    axis.set_axis_off()
    axis.set_title(title, fontsize=10)
    return save_png(figure, path)


def reconstruction_grid(
    originals: np.ndarray, reconstructions: np.ndarray, path, title: str
) -> Path:
    """Originals and their reconstructions, in pairs of rows (original above)."""
    originals, reconstructions = np.asarray(originals), np.asarray(reconstructions)
    columns = originals.shape[0] if originals.shape[0] <= 12 else 12
    rows = []
    for start in range(0, originals.shape[0], columns):
        rows += [originals[start : start + columns], reconstructions[start : start + columns]]
    return image_grid(np.concatenate(rows), path, title, columns=columns)


def loss_curves(
    metrics: dict, path, title: str, labels: dict | None = None, ylabel: str = "loss"
) -> Path:
    """Per-epoch curves of every series in ``metrics`` (``{"epoch": [...], name: [...]}``):
    the training losses, the validation and the test loss in one plot, with the epoch of the
    kept model (``metrics["best_epoch"]``) marked when there is one. ``labels``: the legend's
    text for a series (what it measures), else its name; ``ylabel``: what the losses are."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    labels = labels or {}

    figure, axis = plt.subplots(figsize=(7, 4), layout="constrained")
    epochs = metrics["epoch"]
    series = {
        name: values
        for name, values in metrics.items()
        if name not in ("epoch", "seconds", "loop_seconds")
        and isinstance(values, list)
        and len(values) == len(epochs)
    }
    for name, values in series.items():
        marker = "." if len(epochs) < 40 else None
        axis.plot(epochs, values, marker=marker, label=labels.get(name, name))
    if len(epochs) >= 40:  # the first epochs' losses would squash the rest: leave them above
        later = np.concatenate([np.asarray(v, float)[len(epochs) // 20 :] for v in series.values()])
        later = later[np.isfinite(later)]
        if later.size:
            low, high = later.min(), later.max()
            top = high + 0.05 * (high - low)
            axis.set_ylim(low - 0.05 * (high - low), top)
            first = np.concatenate(
                [np.asarray(v, float)[: len(epochs) // 20] for v in series.values()]
            )
            if np.any(first > top):
                title += "\n(the first epochs' higher losses run off the top)"
    if len(epochs) == 1:  # one epoch: whole-epoch ticks around it, not fractions of one
        axis.set_xlim(epochs[0] - 1, epochs[0] + 1)
    if metrics.get("best_epoch") is not None:
        axis.axvline(metrics["best_epoch"], color="0.4", ls=":", label="kept (best validation)")
    axis.set_xlabel("epoch")
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.set_ylabel(ylabel)
    axis.set_title(title, fontsize=10)
    axis.legend(loc="center right" if len(epochs) == 1 else "best")  # not over the points
    axis.grid(alpha=0.3)
    return save_png(figure, path)
