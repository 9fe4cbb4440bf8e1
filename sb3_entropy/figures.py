"""The action-distribution picture, drawn straight into an RGB array (no plotting library needed).

Left panel: the paper's sorted stacked bars, one bar per evaluation over training so far; each bar stacks the
marginal probabilities p(a) from the largest (bottom) to the smallest, each action in its own colour, so a
bar of a few tall blocks is a policy that recommends a few items to everyone. Right panel: the current p(a)
as a bar chart in action order, scaled to its largest bar.
"""

from __future__ import annotations

import numpy as np

__all__ = ["DownsampledHistory", "action_colors", "bar_chart", "distribution_image", "stacked_bars"]

BACKGROUND = np.array([255, 255, 255], dtype=np.uint8)


def action_colors(n_actions: int) -> np.ndarray:
    """``(n_actions, 3)`` uint8 colours, well spread in hue (golden-ratio steps), stable for a given action."""
    hue = (np.arange(n_actions) * 0.618033988749895) % 1.0
    # HSV -> RGB with saturation 0.65 and value 0.9
    sector = hue * 6.0
    i = np.floor(sector).astype(int) % 6
    f = sector - np.floor(sector)
    v, s = 0.9, 0.65
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    table = np.stack(
        [
            np.choose(i, [v, q, p, p, t, v]),
            np.choose(i, [t, v, v, q, p, p]),
            np.choose(i, [p, p, t, v, v, q]),
        ],
        axis=1,
    )
    return (table * 255).round().astype(np.uint8)


class DownsampledHistory:
    """At most ``capacity`` (step, p) pairs spread evenly over all that was appended: memory stays flat.

    When full it keeps every other stored pair and from then on stores every other new one (its stride doubles).
    """

    def __init__(self, capacity: int = 64) -> None:
        if capacity < 2:
            raise ValueError(f"capacity must be at least 2, got {capacity}")
        self.capacity = capacity
        self.stride = 1
        self._seen = 0
        self.steps: list[int] = []
        self.marginals: list[np.ndarray] = []

    def append(self, step: int, p: np.ndarray) -> None:
        if self._seen % self.stride == 0:
            if len(self.steps) == self.capacity:
                self.steps, self.marginals = self.steps[::2], self.marginals[::2]
                self.stride *= 2
            if self._seen % self.stride == 0:
                self.steps.append(step)
                self.marginals.append(np.asarray(p, dtype=np.float64))
        self._seen += 1

    def __len__(self) -> int:
        return len(self.steps)


def stacked_bars(marginals: list[np.ndarray], colors: np.ndarray, height: int, width: int) -> np.ndarray:
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[:] = BACKGROUND
    edges = np.linspace(0, width, len(marginals) + 1).round().astype(int)
    rows = np.arange(height)[::-1] + 0.5  # row 0 is the top of the picture
    for column, p in enumerate(marginals):
        order = np.argsort(-p, kind="stable")
        tops = np.cumsum(p[order]) / max(p.sum(), 1e-300) * height
        segment = np.minimum(np.searchsorted(tops, rows), len(order) - 1)  # which action each row shows
        left, right = edges[column], max(edges[column + 1] - 1, edges[column] + 1)  # a 1-px gap between bars
        image[:, left:right] = colors[order[segment]][:, None, :]
    return image


def bar_chart(p: np.ndarray, colors: np.ndarray, height: int, width: int) -> np.ndarray:
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[:] = BACKGROUND
    edges = np.linspace(0, width, len(p) + 1).round().astype(int)
    heights = (p / max(p.max(), 1e-300) * height).round().astype(int)
    for action, bar in enumerate(heights):
        left, right = edges[action], max(edges[action + 1] - 1, edges[action] + 1)
        if bar:
            image[height - bar :, left:right] = colors[action]
    return image


def distribution_image(history: DownsampledHistory, current: np.ndarray, height: int = 160) -> np.ndarray:
    """``(height, width, 3)`` uint8: stacked bars over training (left), current p(a) bars (right)."""
    colors = action_colors(len(current))
    panel_width = max(2 * len(current), 2 * history.capacity, 128)
    gap = np.empty((height, 8, 3), dtype=np.uint8)
    gap[:] = BACKGROUND
    left = stacked_bars(history.marginals or [current], colors, height, panel_width)
    right = bar_chart(np.asarray(current, dtype=np.float64), colors, height, panel_width)
    return np.concatenate([left, gap, right], axis=1)
