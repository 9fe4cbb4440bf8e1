"""The action-distribution picture that EntropyCallback logs to TensorBoard.

Left panel: the paper's sorted stacked bars, one bar per evaluation over training so far; each bar stacks the
marginal probabilities p(a) from the largest (bottom) to the smallest, each action in its own colour, so a
bar of a few tall blocks is a policy that recommends a few items to everyone. Right panel: the current p(a)
as a bar chart in action order. The bars are drawn straight into RGB arrays (numpy: thousands of bars cost
nothing); matplotlib only puts them on labelled axes.
"""

from __future__ import annotations

import os

import numpy as np

from sb3_entropy.metrics import entropy

__all__ = [
    "DistributionFigure",
    "DownsampledHistory",
    "action_colors",
    "bar_chart",
    "distribution_image",
    "save_marginal_figure",
    "stacked_bars",
]

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
    """p(a) as bars in action order, each at least a pixel wide with a pixel's gap; with more actions than pixel
    columns, each column shows the tallest bar among its actions, in that action's colour."""
    if len(p) > width:
        return _binned_bar_chart(p, colors, height, width)
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[:] = BACKGROUND
    edges = np.linspace(0, width, len(p) + 1).round().astype(int)
    heights = (p / max(p.max(), 1e-300) * height).round().astype(int)
    for action, bar in enumerate(heights):
        left, right = edges[action], max(edges[action + 1] - 1, edges[action] + 1)
        if bar:
            image[height - bar :, left:right] = colors[action]
    return image


def _binned_bar_chart(p: np.ndarray, colors: np.ndarray, height: int, width: int) -> np.ndarray:
    column = np.arange(len(p)) * width // len(p)  # each action's pixel column, in action order
    first = np.searchsorted(column, np.arange(width))  # each column's first action
    tallest = np.lexsort((-p, column))[first]  # each column's action of the largest p
    bars = (p[tallest] / max(p.max(), 1e-300) * height).round().astype(int)
    filled = np.arange(height)[:, None] >= height - bars[None, :]
    return np.where(filled[:, :, None], colors[tallest][None, :, :], BACKGROUND).astype(np.uint8)


class DistributionFigure:
    """The labelled action-distribution picture, drawn again and again on one matplotlib figure.

    With ``total_steps`` (the step training ends at) the frame never changes: the time axis spans the whole run
    from the start and the right panel shows p(a) over its largest value, so axes, ticks and labels are drawn once
    and each picture redraws only the bars and one title (about 0.02 s, against 0.2 s for a whole figure, most of
    it text). Without it, or past it, the whole figure is drawn each time.
    """

    def __init__(self, n_actions: int, total_steps: int | None = None, width: int = 960, height: int = 400) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator

        self.n_actions, self.colors, self.total_steps = n_actions, action_colors(n_actions), total_steps
        self.figure = Figure(figsize=(width / 100, height / 100), dpi=100)
        self.canvas = FigureCanvasAgg(self.figure)
        self.over_training, self.now = self.figure.subplots(
            1, 2,
            gridspec_kw={"width_ratios": [3, 2], "left": 0.07, "right": 0.985, "bottom": 0.13, "top": 0.86,
                         "wspace": 0.24},
        )  # fmt: skip
        blank = np.full((2, 2, 3), 255, dtype=np.uint8)
        self.stacked = self.over_training.imshow(blank, aspect="auto", interpolation="nearest", extent=(0, 1, 0, 1))
        self.bars = self.now.imshow(
            blank, aspect="auto", interpolation="nearest", extent=(-0.5, n_actions - 0.5, 0, 1)
        )  # p(a) / max p(a): a fixed axis
        self.over_training.set_title(
            "p(a) over training, sorted: one bar per evaluation,\neach colour one item (largest share at the bottom)",
            fontsize=9,
        )
        self.over_training.set_xlabel("timesteps", fontsize=9)
        self.over_training.set_ylabel("share of recommendations", fontsize=9)
        self.now.set_xlabel(f"item (action 0 to {n_actions - 1:,})", fontsize=9)
        self.now.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))  # labels of 5-digit items must not meet
        self.now.set_ylabel("p(a) / largest p(a)", fontsize=9)
        # the right panel's title changes with every picture: a figure text at a fixed place (an axes title is
        # moved by matplotlib at each whole draw, which a redraw of the bars alone does not do)
        box = self.now.get_position()
        self.now_title = self.figure.text(
            (box.x0 + box.x1) / 2, box.y1 + 0.02, "", ha="center", va="bottom", fontsize=9
        )
        for axes in (self.over_training, self.now):
            axes.tick_params(labelsize=8)
            axes.set_autoscale_on(False)
        self._frame = None  # the figure without its bars and the right title, once drawn with a fixed time axis
        # Two columns an action while they fit in the panel's pixels; past that, one column a pixel, showing its
        # tallest bar (a wider image would be thinned to the panel by dropping columns, and with them bars).
        panel = int(self.now.get_window_extent().width)
        self.bar_columns = max(2 * n_actions, 256) if 2 * n_actions <= panel else panel

    def render(self, history: DownsampledHistory, current: np.ndarray, step: int | None = None) -> np.ndarray:
        """``(height, width, 3)`` uint8: p(a) over training (left), the current p(a) in item order (right)."""
        current = np.asarray(current, dtype=np.float64)
        if current.shape != (self.n_actions,):
            raise ValueError(f"current must be p(a) over {self.n_actions} actions, got shape {current.shape}")
        marginals = history.marginals or [current]
        steps = history.steps or [0 if step is None else step]
        spacing = (steps[-1] - steps[0]) / (len(steps) - 1) if len(steps) > 1 else 1.0
        self.stacked.set_data(stacked_bars(marginals, self.colors, 200, max(2 * len(marginals), 256)))
        self.stacked.set_extent((steps[0] - spacing / 2, steps[-1] + spacing / 2, 0, 1))
        largest = float(current.max())
        self.bars.set_data(bar_chart(current, self.colors, 200, self.bar_columns))
        h = float(entropy(current))
        when = "now" if step is None else f"at step {step}"
        self.now_title.set_text(
            f"p(a) {when}, in item order (largest {largest:.3f}):\n"
            f"H(p) = {h:.3f} nats of at most log K = {np.log(self.n_actions):.3f}"
        )
        if self.total_steps is None or steps[-1] > self.total_steps:  # the time axis follows the bars
            self.over_training.set_xlim(steps[0] - spacing / 2, steps[-1] + spacing / 2)
            self._frame = None
            self.canvas.draw()
        else:
            self._draw_on_frame()
        return np.asarray(self.canvas.buffer_rgba())[..., :3].copy()

    def _draw_on_frame(self) -> None:
        spines = [spine for axes in (self.over_training, self.now) for spine in axes.spines.values()]
        changing = (self.stacked, self.bars, self.now_title, *spines)  # spines: drawn once, over the bars
        if self._frame is None:
            self.over_training.set_xlim(0, self.total_steps)
            for artist in changing:
                artist.set_visible(False)
            self.canvas.draw()
            self._frame = self.canvas.copy_from_bbox(self.figure.bbox)
            for artist in changing:
                artist.set_visible(True)
        self.canvas.restore_region(self._frame)
        for axes, image in ((self.over_training, self.stacked), (self.now, self.bars)):
            axes.draw_artist(image)
            for spine in axes.spines.values():
                axes.draw_artist(spine)
        self.figure.draw_artist(self.now_title)


def distribution_image(
    history: DownsampledHistory, current: np.ndarray, step: int | None = None, total_steps: int | None = None
) -> np.ndarray:
    """``(400, 960, 3)`` uint8: :class:`DistributionFigure` drawn once."""
    return DistributionFigure(len(current), total_steps).render(history, current, step)


def save_marginal_figure(p: np.ndarray, title: str, path: str | os.PathLike[str], width: int = 960,
                         height: int = 400) -> None:  # fmt: skip
    """A report card's picture of p(a), as PNG: left, p(a) in item order, each item in the callback's colour for
    it; right, the items sorted by share on a log scale beside the uniform policy's 1/K (a long tail falls away)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    p = np.asarray(p, dtype=np.float64)
    n_actions = len(p)
    figure = Figure(figsize=(width / 100, height / 100), dpi=100)
    in_order, by_share = figure.subplots(1, 2, gridspec_kw={"left": 0.07, "right": 0.985, "bottom": 0.13,
                                                            "top": 0.8, "wspace": 0.22})  # fmt: skip
    columns = max(2 * n_actions, 256) if 2 * n_actions <= 420 else 420
    in_order.imshow(bar_chart(p, action_colors(n_actions), 200, columns), aspect="auto", interpolation="nearest",
                    extent=(-0.5, n_actions - 0.5, 0, float(p.max())))  # fmt: skip
    in_order.set_ylim(0, 1.08 * float(p.max()))  # the tallest bar below the frame
    in_order.set_xlabel(f"item (action 0 to {n_actions - 1:,})", fontsize=9)
    in_order.set_ylabel("p(a): share of recommendations", fontsize=9)
    in_order.set_title("p(a) in item order", fontsize=9)
    shares = np.sort(p)[::-1]
    by_share.plot(np.arange(1, n_actions + 1), np.where(shares > 0, shares, np.nan), color="black", linewidth=1.2,
                  label="this policy")  # fmt: skip
    by_share.axhline(1 / n_actions, color="grey", linestyle="--", linewidth=1, label=f"uniform, 1/K = 1/{n_actions:,}")
    by_share.set_yscale("log")
    by_share.set_xlabel("items ranked by share", fontsize=9)
    by_share.set_ylabel("p(a), log scale", fontsize=9)
    by_share.set_title("items by share (a steep fall: a few items for everyone)", fontsize=9)
    by_share.legend(fontsize=8, loc="upper right")
    for axes in (in_order, by_share):
        axes.tick_params(labelsize=8)
    h = float(entropy(p))
    figure.suptitle(f"{title}\nH(p) = {h:.3f} nats of at most log K = {np.log(n_actions):.3f} (as many as "
                    f"{np.exp(h):,.1f} equally shared items, of {n_actions:,})", fontsize=10)  # fmt: skip
    FigureCanvasAgg(figure).print_png(str(path))
