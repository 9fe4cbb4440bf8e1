"""A study's figures: learning curves, action distributions over training, the diversity-reward frontier and tuning's
rewards per trial."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from sb3_entropy.atomic import atomic_path
from sb3_entropy.figures import DownsampledHistory, action_colors, stacked_bars
from sb3_entropy.metrics import EXPECTED_REWARD, MARGINAL_ENTROPY, PER_STATE_ENTROPY, Metric
from sb3_entropy.study.analysis import FrontierPoint, agent_label, curves, t_band, three_decimals
from sb3_entropy.study.experiments import ExperimentResult, TrialRecord, TunedAgent

__all__ = [
    "curves_figure",
    "distribution_figure",
    "frontier_figure",
    "overview_figure",
    "tuning_figure",
]


def _pyplot():
    """matplotlib's pyplot on the file-only Agg backend (no display needed), imported on first use."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def step_label(steps: float) -> str:
    """An environment-step count as a short tick label: 0, 500, 25k, 1.5M (long counts overlap on a shared axis)."""
    for scale, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(steps) >= scale:
            return f"{steps / scale:g}{suffix}"
    return f"{steps:g}"


def _step_axis(axes) -> None:
    from matplotlib.ticker import FuncFormatter

    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _position: step_label(value)))
    axes.set_xlabel("environment steps")


def curves_figure(result: ExperimentResult, metric: Metric, path: Path, agents: list[str]) -> None:
    """Mean over seeds of a stored ``metric`` against environment steps, one line per agent, with a 95 % Student-t
    band."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(7, 4.5))
    _draw_curves(axes, result, metric, agents)
    axes.set_ylabel(metric.label)
    seeds = len({seed for _, seed in result.histories})
    axes.set_title(f"{result.experiment.name}: {metric.label}\nmean and 95 % t-band over {seeds} seed(s)", fontsize=10)
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=100)
    plt.close(figure)


def _draw_curves(axes, result: ExperimentResult, metric: Metric, agents: list[str]) -> None:
    n_actions = len(next(iter(result.histories.values()))[0]["p"])
    for agent in agents:
        runs = [result.histories[(name, seed)] for (name, seed) in sorted(result.histories) if name == agent]
        if not runs:
            continue
        length = min(len(run) for run in runs)  # the same schedule for every seed
        steps = [row["timesteps"] for row in runs[0][:length]]
        mean, low, high = t_band(np.array([[row[metric.tag] for row in run[:length]] for run in runs]))
        # the mean cannot leave the values the metric can take (an entropy's [0, log K]): neither does its band
        lower, upper = metric.bounds(n_actions, result.baselines)
        low, high = np.clip(low, lower, upper), np.clip(high, lower, upper)
        axes.plot(steps, mean, label=agent_label(agent), color=result.color(agent))
        if len(runs) > 1:
            axes.fill_between(steps, low, high, alpha=0.25, color=result.color(agent))
    if metric is MARGINAL_ENTROPY:
        axes.axhline(math.log(n_actions), color="grey", linestyle=":", label=f"max log K = {math.log(n_actions):.3f}")
        oracle_entropy = result.baselines.get("oracle_entropy")
        if oracle_entropy is not None and result.baselines.get("oracle_tied") == 0:
            axes.axhline(
                oracle_entropy,
                color="black",
                linestyle="--",
                linewidth=1,
                label=f"oracle's H(p) = {oracle_entropy:.3f}",
            )
        elif oracle_entropy is not None:  # ties: oracles of the same reward span a range of H(p)
            cover = result.baselines["oracle_entropy_cover"]
            axes.axhspan(cover, oracle_entropy, color="grey", alpha=0.12, linewidth=0,
                         label=f"oracles' H(p): {cover:.2f}-{oracle_entropy:.2f} (tie-breaks)")  # fmt: skip
    _step_axis(axes)
    axes.legend(fontsize=8)


def overview_figure(result: ExperimentResult, path: Path, agents: list[str]) -> None:
    """One picture of the finding: marginal-entropy curves of every agent, and each agent's p(a) over training.

    Left: the mean and 95 % Student-t band over seeds of H(p), with the paper's final values as crosses. Right:
    for each agent, the paper's sorted stacked bars of p(a) over training (first seed): one bar per evaluation,
    every action a colour, the most likely action at the bottom.
    """
    plt = _pyplot()
    agents = [agent for agent in agents if any(name == agent for name, _ in result.histories)]
    figure = plt.figure(figsize=(13, max(5.2, 1.3 * len(agents) + 1.2)))
    grid = figure.add_gridspec(len(agents), 2, width_ratios=(1.1, 1), hspace=0.15, wspace=0.18)
    curve_axes = figure.add_subplot(grid[:, 0])
    _draw_curves(curve_axes, result, MARGINAL_ENTROPY, agents)
    last_step = max(row["timesteps"] for history in result.histories.values() for row in history)
    paper_entropies = {a: result.experiment.paper.get(a, {}).get("entropy") for a in agents}
    for agent, entropy in paper_entropies.items():
        if entropy is not None:
            curve_axes.plot(last_step, entropy, marker="x", markersize=9, color=result.color(agent))
    if any(entropy is not None for entropy in paper_entropies.values()):
        curve_axes.plot([], [], marker="x", linestyle="", color="black", label="paper's final value")
    # Below the axes: the curves fill both the top (Q-learning, near log K) and the bottom (collapsed policies).
    entries = len(curve_axes.get_legend_handles_labels()[1])
    below_label = -0.5 / (curve_axes.get_position().height * figure.get_figheight())  # 0.5 inch, in axes units
    curve_axes.legend(
        fontsize=8, loc="upper center", bbox_to_anchor=(0.5, below_label), ncol=math.ceil(entries / 2), frameon=False
    )
    curve_axes.set_ylabel("marginal entropy H(p) [nats]")
    seeds = len({seed for _, seed in result.histories})
    seed_words = f"{seeds} seed{'s' if seeds != 1 else ''}"
    curve_axes.set_title(f"diversity across users: mean and 95 % t-band over {seed_words}", fontsize=10)
    for row, agent in enumerate(agents):
        axes = figure.add_subplot(grid[row, 1])
        history = DownsampledHistory(capacity=64)
        seed = min(seed for name, seed in result.histories if name == agent)
        for entry in result.histories[(agent, seed)]:
            history.append(entry["timesteps"], entry["p"])
        image = stacked_bars(history.marginals, action_colors(len(history.marginals[0])), 160, 640)
        axes.imshow(image, aspect="auto", extent=(history.steps[0], history.steps[-1], 0, 1))
        axes.set_ylabel(agent_label(agent), fontsize=9, color=result.color(agent), fontweight="bold")
        axes.set_yticks([0, 1])
        if row == 0:
            axes.set_title(f"p(a) over training, sorted (seed {seed}): each colour an item", fontsize=10)
        _step_axis(axes)
        if row < len(agents) - 1:
            axes.tick_params(labelbottom=False)
            axes.set_xlabel("")
    figure.suptitle(f"{result.experiment.name} ({result.experiment.task})", fontsize=11)
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=100, bbox_inches="tight")
    plt.close(figure)


def distribution_figure(result: ExperimentResult, agent: str, path: Path) -> None:
    """The paper's sorted stacked bars of p(a) over training (first seed), one bar per evaluation (at most 64)."""
    plt = _pyplot()

    history = DownsampledHistory(capacity=64)
    seed = min(seed for name, seed in result.histories if name == agent)
    for row in result.histories[(agent, seed)]:
        history.append(row["timesteps"], row["p"])
    image = stacked_bars(history.marginals, action_colors(len(history.marginals[0])), 300, 640)
    figure, axes = plt.subplots(figsize=(7, 3.6))
    axes.imshow(image, aspect="auto", extent=(history.steps[0], history.steps[-1], 0, 1))
    _step_axis(axes)
    axes.set_ylabel("p(a), sorted")
    axes.set_title(f"{result.experiment.name}: {agent_label(agent)} action distribution over training (seed {seed})")
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=100)
    plt.close(figure)


REGULARIZER_COLORS = {"per_state": "tab:orange", "marginal": "tab:blue", "l2": "tab:green", "mutual_info": "tab:purple"}


def frontier_figure(
    result: ExperimentResult, points: list[FrontierPoint], baselines: dict[str, float], path: Path
) -> None:
    """Reward and per-state entropy against marginal entropy: a row per regularised agent, every regulariser.

    Every point is an agent's mean over seeds with its 95 % Student-t interval on both axes; the lines join a
    regulariser's coefficients in increasing order, starting at the unregularised agent (black square). The
    reference agent is the black star in every panel; the dotted line is the oracle's reward.
    """
    plt = _pyplot()

    experiment = result.experiment
    reference = next((p for p in points if p.agent == experiment.frontier.reference), None)
    by_curve = curves(points)
    bases = [name for name in experiment.frontier.agents if any(base == name for base, _ in by_curve)]
    n_actions = len(next(iter(result.histories.values()))[0]["p"])
    seeds = len({seed for _, seed in result.histories})
    figure, axes = plt.subplots(len(bases), 2, figsize=(13, 4.6 * len(bases)), squeeze=False, sharex=True)
    panel = _FrontierPanel(_reward_floor(points, reference, baselines))
    for row, base in enumerate(bases):
        reward_ax, per_state_ax = axes[row]
        for (curve_base, regularizer), curve in by_curve.items():
            if curve_base == base:
                panel.curve(reward_ax, per_state_ax, regularizer, curve)
        unregularised = next((p for p in points if p.agent == base), None)
        panel.references(reward_ax, per_state_ax, base, unregularised, reference, baselines, n_actions)
    for ax in axes[-1]:
        ax.set_xlabel(f"final marginal entropy H(p) [nats] (dotted: log K = {math.log(n_actions):.2f})")
    random_text = f"random policy {baselines['random']:.3f}, " if "random" in baselines else ""
    oracle_text = f"oracle {baselines['oracle']:.3f}" if "oracle" in baselines else ""
    figure.suptitle(
        f"{experiment.name} ({experiment.task}): the diversity-reward frontier\nmean and 95 % t-interval over "
        f"{seeds} seed(s); reward of the {random_text}{oracle_text} on the same evaluation set",
        fontsize=11,
    )
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=100)
    plt.close(figure)


class _FrontierPanel:
    """Draws one row of the frontier figure (reward, and per-state entropy, against H(p)), with rewards below
    ``floor`` marked at the edge of the zoomed scale."""

    def __init__(self, floor: float) -> None:
        self.floor = floor
        self.off_scale: dict = {}  # axes -> how many off-scale labels it has, to stack them

    def draw(self, ax, point: FrontierPoint, y: Metric, **style) -> bool:
        """Draw a point with its intervals; False when it is off the zoomed reward scale (marked at the edge)."""
        value = point.summary[y]
        if (
            y is EXPECTED_REWARD and value.estimate < self.floor
        ):  # off the zoomed scale: a mark at the edge with its value
            self.off_scale[ax] = self.off_scale.get(ax, 0) + 1
            ax.plot(point.marginal.estimate, self.floor, marker="v", color=style.get("color"), clip_on=False)
            ax.annotate(
                f"{value.estimate:.2f} (off scale)", (point.marginal.estimate, self.floor), textcoords="offset points",
                xytext=(-6, 8 * self.off_scale[ax]), fontsize=6, color=style.get("color"), ha="right",
            )  # fmt: skip
            return False
        ax.errorbar(
            point.marginal.estimate, value.estimate,
            xerr=_half_widths(point.marginal), yerr=_half_widths(value), capsize=2, linewidth=1, **style,
        )  # fmt: skip
        return True

    def curve(self, reward_ax, per_state_ax, regularizer: str, curve: list[FrontierPoint]) -> None:
        """One regulariser's coefficients, joined in increasing order, each point labelled with its coefficient."""
        color = REGULARIZER_COLORS.get(regularizer, "tab:gray")
        for ax, y in ((reward_ax, EXPECTED_REWARD), (per_state_ax, PER_STATE_ENTROPY)):
            ax.plot(
                [p.marginal.estimate for p in curve], [p.summary[y].estimate for p in curve],
                color=color, linewidth=1, alpha=0.6,
            )  # fmt: skip
            for point in curve:
                if point.regularizer is None:
                    continue
                if not self.draw(ax, point, y, fmt="o", color=color, markersize=4):
                    continue
                ax.annotate(
                    f"{point.coefficient:g}", (point.marginal.estimate, point.summary[y].estimate),
                    textcoords="offset points", xytext=(3, 3), fontsize=6, color=color,
                )  # fmt: skip
        reward_ax.plot([], [], color=color, marker="o", markersize=4, label=regularizer)

    def references(
        self, reward_ax, per_state_ax, base: str, unregularised, reference, baselines: dict[str, float], n_actions: int
    ) -> None:
        """The unregularised agent, the reference, log K, the oracle's reward, the axes' labels and legends."""
        for ax, y in ((reward_ax, EXPECTED_REWARD), (per_state_ax, PER_STATE_ENTROPY)):
            if unregularised is not None:
                self.draw(
                    ax, unregularised, y, fmt="s", color="black", markersize=7, label=f"{base.upper()}, no regularizer"
                )
            if reference is not None:
                self.draw(ax, reference, y, fmt="*", color="black", markersize=12, label=agent_label(reference.agent))
            ax.axvline(math.log(n_actions), color="grey", linestyle=":", linewidth=1)
            ax.grid(alpha=0.3)
        if "oracle" in baselines:
            reward_ax.axhline(baselines["oracle"], color="grey", linestyle="--", linewidth=1, label="oracle")
        if math.isfinite(self.floor):
            reward_ax.set_ylim(bottom=self.floor)
        low, high = per_state_ax.get_xlim()
        per_state_ax.plot(
            [0, high], [0, high], color="grey", linewidth=0.8, linestyle="--", label="per-state = marginal"
        )
        per_state_ax.set_xlim(low, high)
        per_state_ax.set_ylim(bottom=0)
        reward_ax.set_ylabel("final expected reward")
        per_state_ax.set_ylabel("final mean per-state entropy H(pi(.|s)) [nats]")
        reward_ax.set_title(f"{base.upper()}: reward against diversity across users", fontsize=10)
        per_state_ax.set_title(f"{base.upper()}: how random each user's recommendation is", fontsize=10)
        reward_ax.legend(fontsize=7, loc="lower left", title="regularizer (point labels: ent_coef)", title_fontsize=7)
        per_state_ax.legend(fontsize=7, loc="upper left", handles=per_state_ax.get_legend_handles_labels()[0][-3:])


def _reward_floor(points: list[FrontierPoint], reference: FrontierPoint | None, baselines: dict[str, float]) -> float:
    """The reward axis starts here: three times the reference's distance to the oracle below the reference's
    reward (rewards far below it are marked at the edge), or at the lowest point if all are above that."""
    if reference is None or "oracle" not in baselines:
        return -math.inf
    gap = max(baselines["oracle"] - reference.reward.estimate, 0.01)
    lowest = min(min(p.reward.estimate, p.reward.low if not math.isnan(p.reward.low) else math.inf) for p in points)
    floor = max(reference.reward.estimate - 3 * gap, baselines.get("random", -math.inf))
    return floor if lowest < floor else -math.inf


def _half_widths(interval) -> list[list[float]] | None:
    if math.isnan(interval.low):
        return None
    return [[interval.estimate - interval.low], [interval.high - interval.estimate]]


def _tuning_panel(axes: Any, agent: str, tuned: TunedAgent, baselines: dict[str, float], color: str) -> None:
    """One agent's panel of :func:`tuning_figure`."""
    states: dict[str, list[TrialRecord]] = {"COMPLETE": [], "PRUNED": [], "FAIL": []}
    for record in tuned.history:
        states[record.state].append(record)
    values = [r.reward for r in states["COMPLETE"] + states["PRUNED"] if r.reward is not None]
    low = min([baselines.get("random", 0.0), *values]) if values or baselines else 0.0
    high = max([baselines.get("oracle", 1.0), *values]) if values or baselines else 1.0
    margin = 0.05 * (high - low or 1.0)
    axes.scatter([r.number for r in states["COMPLETE"]], [r.reward for r in states["COMPLETE"]], color=color,
                 zorder=3, label="complete: mean final reward")  # fmt: skip
    pruned = [r for r in states["PRUNED"] if r.reward is not None]
    axes.scatter([r.number for r in pruned], [r.reward for r in pruned], facecolors="none", edgecolors=color,
                 zorder=3, label="pruned: reward when stopped")  # fmt: skip
    if states["FAIL"]:
        axes.scatter([r.number for r in states["FAIL"]], [low - margin / 2] * len(states["FAIL"]), marker="x",
                     color="black", zorder=3, label="failed")  # fmt: skip
    complete = sorted(states["COMPLETE"], key=lambda r: r.number)
    if complete:
        best_so_far = np.maximum.accumulate([r.reward for r in complete])
        axes.step([r.number for r in complete], best_so_far, where="post", color=color, alpha=0.6,
                  label="best so far")  # fmt: skip
    if tuned.trial is not None:
        axes.scatter([tuned.trial], [tuned.reward], marker="*", s=220, color="gold", edgecolors="black", zorder=4,
                     label="the trial chosen")  # fmt: skip
    for key, style, name in (("oracle", "--", "oracle"), ("random", ":", "random policy")):
        if key in baselines:
            axes.axhline(
                baselines[key], color="grey", linestyle=style, label=f"{name} {three_decimals(baselines[key])}"
            )
    axes.set_ylim(low - margin, high + margin)
    chosen = f", chose trial {tuned.trial}" if tuned.trial is not None else ", none complete"
    axes.set_title(
        f"{agent_label(agent)}: {tuned.trials} trials of {step_label(tuned.steps)} steps\n"
        f"on {len(tuned.seeds)} seed(s), {tuned.pruned} pruned{chosen}",
        fontsize=10,
    )
    axes.set_xlabel("trial")
    axes.set_ylabel("expected reward")
    axes.xaxis.get_major_locator().set_params(integer=True)


def tuning_figure(
    experiment: str,
    tuned: dict[str, TunedAgent],
    baselines: dict[str, float],
    path: Path,
    colors: dict[str, str],
) -> None:
    """Reward per trial, one panel per tuned agent: what the tuner saw, with the best so far and the baselines,
    drawn from the record a tuned file keeps (each agent's ``history``).

    Complete trials are dots (the mean final expected reward over the tuning seeds), pruned ones open circles
    (the first seed's reward when it was stopped), failed ones crosses on the lower edge; the star is the trial
    chosen, the line the best reward so far, and the dashed lines the random policy's and the oracle's reward.
    Each agent wears its colour of ``colors``, the study's.
    """
    missing = [agent for agent, record in tuned.items() if not record.history]
    if missing:
        raise ValueError(f"tuned agents {missing} carry no history of trials to draw; tuned.yml files that "
                         "personalization-gym tune writes have one")  # fmt: skip
    plt = _pyplot()
    columns = min(len(tuned), 3)
    rows = -(-len(tuned) // columns)
    figure, grid = plt.subplots(rows, columns, figsize=(4.6 * columns, 3.6 * rows + 0.5), squeeze=False)
    for axes in grid.flat[len(tuned) :]:
        axes.set_visible(False)
    for axes, (agent, record) in zip(grid.flat[: len(tuned)], tuned.items(), strict=True):
        _tuning_panel(axes, agent, record, baselines, colors[agent])
    legend = {}  # one legend for every panel, below them
    for axes in grid.flat[: len(tuned)]:
        for handle, label in zip(*axes.get_legend_handles_labels(), strict=True):
            legend.setdefault(label, handle)
    figure.suptitle(f"{experiment}: reward per trial (the tuner saw reward only)", fontsize=11)
    figure.tight_layout(rect=(0, 0.1 / rows, 1, 1))
    figure.legend(legend.values(), legend.keys(), loc="lower center", ncol=4, fontsize=8, frameon=False)
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=100)
    plt.close(figure)
