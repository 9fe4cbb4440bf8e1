"""The study's report and files: the Markdown report (the verdict first, then per experiment a table of final values,
the entropy-gap sentence or the frontier), and what a study writes for each experiment: results.csv,
environment.json, its figures and, for a frontier, frontier.csv."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sb3_entropy.agents import Q_LEARNING
from sb3_entropy.atomic import atomic_path, write_text_atomically
from sb3_entropy.metrics import EXPECTED_REWARD, MARGINAL_ENTROPY, SCORE, SUMMARY
from sb3_entropy.study.analysis import (
    FAMILIES,
    Interval,
    Reach,
    Summary,
    baseline_values,
    entropy_gap,
    frontier_points,
    reaching,
    summarize,
    write_results_csv,
)
from sb3_entropy.study.analysis import agent_label as _label
from sb3_entropy.study.analysis import seed_words as _seed_words
from sb3_entropy.study.analysis import three_decimals as _fixed
from sb3_entropy.study.dashboard import write_overview_image
from sb3_entropy.study.experiments import EXPERIMENTS_DIR, Experiment, ExperimentResult
from sb3_entropy.study.plots import (
    curves_figure,
    distribution_figure,
    frontier_figure,
    overview_figure,
    tuning_figure,
)
from sb3_entropy.study.runs import summarize_environments

__all__ = [
    "FRONTIER_COLUMNS",
    "frontier_section",
    "report_section",
    "tuning_paragraph",
    "verdict_line",
    "write_outputs",
    "write_report",
]


# ------------------------------------------------------------------------------------------------------------
# The report
FLAG = "(not above random)"


def _flag(experiment: Experiment, agent: str, summary: Summary) -> str:
    """The flag of an agent not shown to learn; for a tuned agent, with the tuning it had."""
    if not summary.near_random:
        return ""
    tuned = experiment.tuning.agents.get(agent) if experiment.tuning is not None else None
    if tuned is None:
        return f" {FLAG}"
    return f" {FLAG[:-1]}: did not learn with {tuned.trials} trials of tuning)"


def tuning_paragraph(experiment: Experiment) -> str:
    """Which agents' hyperparameters were tuned, how, with what budget and on which seeds; empty if none were."""
    tuning = experiment.tuning
    if tuning is None:
        return ""
    parts = []
    for agent, tuned in tuning.agents.items():
        if agent not in experiment.agents:
            continue
        chosen = ", ".join(f"{name}={_value(value)}" for name, value in tuned.chosen.items()) or "no trial finished"
        reward = f"; the chosen trial's reward {tuned.reward:.3f}" if tuned.reward is not None else ""
        seconds = f", {tuned.seconds:,.0f} s of training" if tuned.seconds is not None else ""
        parts.append(
            f"{_label(agent)}: {chosen} ({tuned.trials} trials of {tuned.steps:,} steps on seed"
            f"{'s' if len(tuned.seeds) > 1 else ''} {', '.join(map(str, tuned.seeds))}; {tuned.pruned} pruned, "
            f"{tuned.failed} failed{seconds}{reward})"
        )
    untuned = [_label(agent) for agent in experiment.agents if agent not in tuning.agents]
    untuned_text = f" Not tuned (the experiment file's settings): {', '.join(untuned)}." if untuned else ""
    return (
        "Hyperparameters tuned for reward alone by personalization-gym tune (Optuna: TPE sampler, median pruner), "
        f"from {_shown_path(tuning.path)}. Each trial's value was the mean final exact expected reward over the tuning "
        f"seeds, and the pruner saw only the first seed's expected reward: no entropy reached the tuner. "
        f"{'; '.join(parts)}."
        f"{untuned_text} The study's seeds are disjoint from the tuning seeds ({', '.join(map(str, tuning.seeds))}).\n"
    )


def _shown_path(path: str) -> str:
    """A packaged file as the package names it (not where it is installed); any other file as given."""
    packaged = Path(path).resolve()
    if packaged.is_relative_to(EXPERIMENTS_DIR):
        return str(packaged.relative_to(EXPERIMENTS_DIR.parent.parent))
    return path


def _value(value: object) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _paper(values: dict[str, float], key: str) -> str:
    return f"{values[key]:.3f}" if key in values else "-"


def _cells(values: dict[str, Interval | float | None]) -> str:
    """The table's cells of the final values: each metric of :data:`SUMMARY` in its format, ``-`` where it has none."""
    cells = []
    for metric in SUMMARY:
        value = values.get(metric.tag)
        cells.append("-" if value is None else value.format(metric.fmt) if isinstance(value, Interval) else
                     metric.format(value))  # fmt: skip
    return " | ".join(cells)


COLUMNS = " | ".join(metric.column for metric in SUMMARY)


def report_section(result: ExperimentResult) -> str:
    """The Markdown section of one experiment: a table of final values and the entropy-gap sentence."""
    experiment = result.experiment
    title = f"## {experiment.name} ({experiment.task})\n"
    if result.missing_data is not None:
        return title + f"\nNot run: its data is missing.\n\n```\n{result.missing_data}\n```\n"
    if not result.histories:
        return title + _every_run_failed(result)
    if experiment.frontier is not None:
        return frontier_section(result)
    seeds, steps, n_actions = _scale(result)
    lines = [
        title,
        f"{_seed_words(seeds)}, {steps:,} steps, marginal entropy in nats of at most log K = "
        f"{math.log(n_actions):.3f}; mean [95 % Student-t interval over seeds, cut to the values it can take: "
        f"H(p) in [0, log K], reward at most the oracle's] of the final evaluation; score = (reward - random) / "
        f"(oracle - random), on the same evaluation set; {_times(result)}.\n",
        *([tuning_paragraph(experiment)] if experiment.tuning is not None else []),
        *([f"Task: {result.task_note}.\n"] if result.task_note else []),
        environment_paragraph(result),
        f"| agent | family | {COLUMNS} | paper reward | paper entropy |",
        "|---|---|" + "---|" * (len(SUMMARY) + 2),
    ]
    summaries = {agent: summarize(result, agent) for agent in experiment.agents}
    for agent, settings in experiment.agents.items():
        family = next((name for name, algos in FAMILIES.items() if settings.algo in algos), "-")
        summary = summaries[agent]
        if summary is None:
            lines.append(f"| {_label(agent)} | {family} | every run failed |" + " |" * (len(SUMMARY) + 1))
            continue
        paper = experiment.paper.get(agent, {})
        flag = _flag(experiment, agent, summary)
        lines.append(
            f"| {_label(agent)}{flag} | {family} | {_cells(summary.values)} | {_paper(paper, 'reward')} | "
            f"{_paper(paper, 'entropy')} |"
        )
    if result.baselines:
        lines += _baseline_rows(result, n_actions, leading=1, trailing=2)
    if any(summary is not None and summary.near_random for summary in summaries.values()):
        lines.append(
            f"\n{FLAG}: the agent's reward interval reaches down to the random policy's reward, so it has not been "
            "shown to learn anything, and its marginal entropy says nothing about learned diversity."
        )
    for (agent, seed), error in sorted(result.failures.items()):
        lines.append(f"\nRun {agent} seed {seed} failed: `{error}` (traceback: {_error_file(result, agent, seed)})")
    lines += ["", f"Entropy gap: {_gap(result, summaries).text}", ""]
    return "\n".join(lines)


def environment_paragraph(result: ExperimentResult) -> str:
    """Where the runs trained: one environment, or each with its number of runs and a word on what that means."""
    groups = summarize_environments(list(result.environments.values()))
    if len(groups) == 1:
        return f"Trained on: {groups[0][0]}.\n"
    lines = [f"Trained in {len(groups)} environments (runs stored by earlier calls, or Ray workers on other "
             "machines); the same seed gives the same numbers only in the same environment:\n"]  # fmt: skip
    lines += [f"- {count} run{'s' if count > 1 else ''}: {line}" for line, count in groups]
    return "\n".join(lines) + "\n"


def _baseline_rows(result: ExperimentResult, n_actions: int, leading: int, trailing: int) -> list[str]:
    """The table's rows of the random policy, the oracle and (with Q-learners) the exact-Q learner, with
    ``leading`` cells between a row's name and its values and ``trailing`` after them, and the notes that explain
    the last two."""
    q_learners = any(agent.algo in Q_LEARNING for agent in result.experiment.agents.values())
    lines = []
    for name, values in baseline_values(result.baselines, n_actions, exact_q=q_learners).items():
        first = ["Q-learning's reference" if name.startswith("exact Q") else "-"] + ["-"] * (leading - 1)
        lines.append(f"| {' | '.join([name, *first[:leading]])} | {_cells(values)} |" + " - |" * trailing)
    if "oracle_entropy" in result.baselines:
        lines.append(f"\n{_oracle_note(result.baselines)}")
    if q_learners and "exact_q" in result.baselines:
        lines.append(
            f"\nexact Q: a Q-learner whose Q-values are the expected rewards themselves, read as DQN and QR-DQN "
            f"are, softmax(Q / {result.baselines['temperature']:g}). A reference, not a bound: a learned Q with wider "
            "gaps between actions than the true ones is read more greedily and can score more."
        )
    return lines


@dataclass(frozen=True)
class Gap:
    """The entropy-gap finding of one experiment: a verdict word and the sentence with its numbers."""

    verdict: str
    text: str


def _compared_to_zero(interval: Interval) -> str:
    if math.isnan(interval.low):
        return "no interval"
    if interval.high < 0:
        return "below 0"
    if interval.low > 0:
        return "above 0"
    return "includes 0"


def _gap(result: ExperimentResult, summaries: dict[str, Summary | None]) -> Gap:
    """The entropy-gap rule's outcome (:mod:`sb3_entropy.study.analysis`) in words: the family contrast, then each
    pair of algorithms, the agents left out and any family that one algorithm stands for."""
    learned = {agent: None if summary is None else not summary.near_random for agent, summary in summaries.items()}
    gap = entropy_gap(result, learned)
    left_text = ""
    if gap.left_out:
        names = ", ".join(map(_label, gap.left_out))
        left_text = f" Left out, their reward not shown above the random policy's: {names}."
    left_text += _lone_members(gap.everyone["policy optimization"], gap.everyone["Q-learning"])
    if gap.contrast is None:
        return Gap(gap.verdict, f"the paper's finding is {gap.outcome}.{left_text}")
    po, ql = gap.members["policy optimization"], gap.members["Q-learning"]
    pair_text = "; ".join(f"{_label(p)} - {_label(q)} {d.signed} ({_compared_to_zero(d)})" for p, q, d in gap.pairs)
    below = sum(d.high < 0 for _, _, d in gap.pairs)
    text = (
        f"policy optimization ({', '.join(map(_label, po))}) minus Q-learning ({', '.join(map(_label, ql))}), the "
        f"mean over each family's algorithms of their final marginal entropy: {gap.contrast.signed} nats (95 % "
        f"Welch-Satterthwaite interval, {_seed_words(gap.contrast.n)}); the paper's finding that policy optimization "
        f"ends with lower marginal entropy than Q-learning is {gap.outcome}. Per pair of algorithms (Welch): "
        f"{pair_text}; {below} of {len(gap.pairs)} pairs below 0.{left_text}"
    )
    return Gap(gap.verdict, text)


def _lone_members(po: list[str], ql: list[str]) -> str:
    """Says so when one algorithm stands for a whole family: the verdict then speaks for that algorithm."""
    lone = [(family, members[0]) for family, members in (("policy optimization", po), ("Q-learning", ql))
            if len(members) == 1]  # fmt: skip
    return "".join(
        f" {family.capitalize()} is represented by {_label(agent)} alone: the family's mean is that one algorithm's, "
        f"so the verdict speaks for {_label(agent)}, not for {family} at large."
        for family, agent in lone
    )


def verdict_line(result: ExperimentResult) -> str:
    """One line for the top of the report: the verdict, then every agent's final values beside the paper's."""
    experiment = result.experiment
    name = f"**{experiment.name}** ({experiment.task}"
    if result.missing_data is not None:
        return f"- {name}): not run, its data is missing."
    if not result.histories:
        return f"- {name}): **every run failed** ({len(result.failures)} runs), nothing to judge; see its section."
    seeds, steps, _ = _scale(result)
    if experiment.frontier is not None:
        return f"- {name}, {_seed_words(seeds)}, {steps:,} steps): a frontier study, see its section."
    summaries = {agent: summarize(result, agent) for agent in experiment.agents}
    gap = _gap(result, summaries)
    agents = []
    for agent, summary in summaries.items():
        if summary is None:
            agents.append(f"{_label(agent)} every run failed")
            continue
        paper = experiment.paper.get(agent, {})
        paper_text = (
            f" (paper {paper['reward']:.3f}, {paper['entropy']:.3f})" if {"reward", "entropy"} <= set(paper) else ""
        )
        score = f" (score {summary[SCORE].estimate:.2f})" if summary[SCORE] is not None else ""
        flag = _flag(experiment, agent, summary)
        agents.append(
            f"{_label(agent)}{flag} {summary[EXPECTED_REWARD].estimate:.3f} reward{score}, "
            f"{summary[MARGINAL_ENTROPY].estimate:.3f} "
            f"nats{paper_text}"
        )
    baselines = ""
    if result.baselines:
        baselines = (
            f" Random policy {_fixed(result.baselines['random'])}, oracle {_fixed(result.baselines['oracle'])}"
            f"{_oracle_entropy_words(result.baselines)}."
        )
    tuned = ""
    if experiment.tuning is not None:
        labels = [_label(agent) for agent in experiment.agents if agent in experiment.tuning.agents]
        tuned = f"; {', '.join(labels)} tuned for reward alone, on seeds {', '.join(map(str, experiment.tuning.seeds))}"
    return (
        f"- {name}, {_seed_words(seeds)}, {steps:,} steps{tuned}): entropy gap **{gap.verdict}**. Final means: "
        f"{'; '.join(agents)}.{baselines} Gap: {gap.text}"
    )


def write_report(results: list[ExperimentResult], path: Path, quick: bool = False) -> Path:
    header = (
        "# Reproduction report\n\n"
        "Final evaluation of every agent, as in 'Examining Policy Entropy of Reinforcement Learning Agents for "
        "Personalization Tasks' (arXiv 2211.11869). Reward: the exact expected reward of the policy on the "
        "evaluation set; marginal entropy H(p) in nats. Figures and per-evaluation results (results.csv) are in "
        "each experiment's folder.\n\n"
    )
    if quick:
        header += (
            "**Quick run**: far fewer steps and smaller evaluation sets than the paper's, to check the pipeline; "
            "the agents have not converged, so the entropy gap is not expected yet.\n\n"
        )
    verdicts = "## Verdict\n\n" + "\n".join(verdict_line(result) for result in results) + "\n\n"
    write_text_atomically(path, header + verdicts + "\n".join(report_section(result) for result in results))
    return path


def _error_file(result: ExperimentResult, agent: str, seed: int) -> str:
    return f"{result.experiment.name}/runs/{agent}_seed{seed}.error.txt"


def _every_run_failed(result: ExperimentResult) -> str:
    """The section of an experiment none of whose runs finished: what each run failed with."""
    errors: dict[str, list[str]] = {}
    for (agent, seed), error in sorted(result.failures.items()):
        errors.setdefault(error, []).append(f"{agent} seed {seed}")
    lines = [
        f"\nEvery run failed ({len(result.failures)} runs, {_times(result)}): no value to report. Each run's "
        f"traceback is in {result.experiment.name}/runs/<agent>_seed<seed>.error.txt.\n"
    ]
    lines += [f"- {', '.join(runs)}: `{error}`" for error, runs in errors.items()]
    return "\n".join(lines) + "\n"


def _times(result: ExperimentResult) -> str:
    kept = f" ({result.resumed_runs} of them kept from an earlier call)" if result.resumed_runs else ""
    return f"wall time {result.seconds:.0f} s, training {result.run_seconds:.0f} s summed over the runs{kept}"


def _scale(result: ExperimentResult) -> tuple[int, int, int]:
    """Seeds, steps at the last evaluation, and number of actions K of an experiment's runs."""
    seeds = len({seed for _, seed in result.histories})
    if not result.rows:
        return seeds, 0, 0
    return seeds, result.rows[-1]["timesteps"], len(result.rows[-1]["p"])


def _oracle_entropy_words(baselines: dict[str, float]) -> str:
    """The oracle's H(p) for the verdict line: the diversity the task asks for (a range when users have ties)."""
    if "oracle_entropy" not in baselines:
        return ""
    if baselines.get("oracle_tied", 0.0) > 0:
        return (
            f" (its H(p) {baselines['oracle_entropy_cover']:.3f}-{baselines['oracle_entropy']:.3f} nats across "
            f"tie-breaks; {100 * baselines['oracle_tied']:.1f} % of users have several best actions)"
        )
    return f" (its H(p) {baselines['oracle_entropy']:.3f} nats)"


def _oracle_note(baselines: dict[str, float]) -> str:
    """What the oracle row's entropy means: the diversity the task asks for, unique only without ties."""
    tied = baselines.get("oracle_tied", 0.0)
    if tied == 0:
        return "oracle: the best action for every user; its H(p) is the diversity across users that the task asks for."
    return (
        "oracle: the best action for every user, split evenly where several actions tie for best. "
        f"{100 * tied:.1f} % of users have such ties, and an oracle that breaks them otherwise reaches the same "
        f"reward with a different H(p): one that serves users in rounds, each round giving the best action shared by "
        f"the most users still unserved, has {baselines['oracle_entropy_cover']:.3f} nats. The reward alone does not "
        "fix the diversity across users."
    )


def _baselines_sentence(result: ExperimentResult) -> str:
    if not result.baselines:
        return ""
    return (
        f"On the same evaluation set a uniformly random policy scores {_fixed(result.baselines['random'])} and the "
        f"oracle (the best action for every user) {_fixed(result.baselines['oracle'])}."
    )


def _compared(difference: Interval, seeds: str, higher: str, lower: str) -> str:
    """What a Welch interval of a difference shows, in words."""
    if math.isnan(difference.low):
        return "not judged (one seed gives no interval)"
    if difference.low > 0:
        return f"{higher} (interval above 0)"
    if difference.high < 0:
        return f"{lower} (interval below 0)"
    return f"not distinguishable with {seeds} (interval includes 0)"


def frontier_section(result: ExperimentResult) -> str:
    """The frontier of one experiment: every point's final values, and what reaching the reference costs."""
    experiment = result.experiment
    frontier = experiment.frontier
    points = frontier_points(result)
    seeds, steps, n_actions = _scale(result)
    seed_words = _seed_words(seeds)
    reference = frontier.reference.upper()
    lines = [
        f"## {experiment.name} ({experiment.task}): the diversity-reward frontier\n",
        f"{seed_words}, {steps:,} steps, marginal entropy H(p) in nats of at most log K = {math.log(n_actions):.3f}; "
        f"every value is the mean [95 % Student-t interval over seeds, cut to the values it can take] of the final "
        f"evaluation; {_times(result)}. "
        f"{_baselines_sentence(result)} The regularizers' coefficient is SB3's ent_coef; "
        f"per-state entropy is the mean over users of H(pi(.|s)) ({reference}: of softmax(Q / 0.1)). Figure: "
        "frontier.png.\n",
        environment_paragraph(result),
        f"| agent | regularizer | coefficient | {COLUMNS} |",
        "|---|---|---|" + "---|" * len(SUMMARY),
    ]
    for point in points:
        lines.append(f"| {point.base.upper()} | {point.regularizer or '-'} | {point.coefficient:g} | "
                     f"{_cells(point.summary.values)} |")  # fmt: skip
    if result.baselines:
        lines += _baseline_rows(result, n_actions, leading=2, trailing=0)
    for (agent, seed), error in sorted(result.failures.items()):
        lines.append(f"\nRun {agent} seed {seed} failed: `{error}` (traceback: {_error_file(result, agent, seed)})")
    reference_point = next((p for p in points if p.agent == frontier.reference), None)
    lines += ["", f"### Reaching {reference}'s marginal entropy", ""]
    if reference_point is None:
        return "\n".join([*lines, f"Not computed: every run of {reference} failed.", ""])
    if result.quick:
        lines += [
            "Quick run: the agents are far from converged, so no verdict is drawn; run without --quick.",
            "",
        ]
    lines += _reach_table(result, points, reference_point, reference, seed_words)
    return "\n".join([*lines, ""])


def _reach_table(
    result: ExperimentResult, points: list, reference_point: Any, reference: str, seed_words: str
) -> list[str]:
    """For each regularised agent, the smallest coefficient that reaches the reference's H(p), what it costs in
    reward, and one sentence each (none for a quick run)."""
    lines = [
        f"{reference} ends at H(p) = {reference_point.marginal} nats with reward {reference_point.reward}. For each "
        f"regularized agent, the smallest coefficient whose mean H(p) is at least {reference}'s; differences are "
        "Welch 95 % intervals.\n",
        f"| agent | regularizer | smallest coefficient | H(p) | H(p) minus {reference}'s | reward | "
        f"reward minus {reference}'s | reward minus unregularized |",
        "|---|---|---|---|---|---|---|---|",
    ]
    reaches = reaching(result, points)
    already = {reach.base: reach for reach in reaches if reach.point is not None and reach.point.regularizer is None}
    for reach in already.values():
        lines.append(
            f"| {reach.base.upper()} | any | 0 (unregularized) | {reach.point.marginal} | "
            f"{reach.entropy_vs_reference.signed} | {reach.point.reward} | {reach.reward_vs_reference.signed} | - |"
        )
    reaches = [reach for reach in reaches if reach.base not in already]
    for reach in reaches:
        if reach.point is None:
            lines.append(
                f"| {reach.base.upper()} | {reach.regularizer} | not reached (highest H(p): "
                f"{reach.highest.marginal.estimate:.3f} at {reach.highest.coefficient:g}) | | | | | |"
            )
            continue
        unregularised = reach.reward_vs_unregularised.signed if reach.reward_vs_unregularised else "-"
        lines.append(
            f"| {reach.base.upper()} | {reach.regularizer} | {reach.point.coefficient:g} | {reach.point.marginal} | "
            f"{reach.entropy_vs_reference.signed} | {reach.point.reward} | {reach.reward_vs_reference.signed} | "
            f"{unregularised} |"
        )
    if not result.quick:
        lines += [""]
        lines += [
            f"- {base.upper()} already reaches {reference}'s mean marginal entropy without a regularizer."
            for base in already
        ]
        lines += [f"- {_reach_sentence(reach, reference, seed_words)}" for reach in reaches]
    return lines


def _reach_sentence(reach: Reach, reference: str, seeds: str) -> str:
    who = f"{reach.base.upper()} with {reach.regularizer}"
    if reach.point is None:
        return (
            f"{who} does not reach {reference}'s marginal entropy at any coefficient of the grid (highest mean "
            f"H(p) {reach.highest.marginal.estimate:.3f} nats, at {reach.highest.coefficient:g})."
        )
    entropy = _compared(reach.entropy_vs_reference, seeds, f"above {reference}'s", f"below {reference}'s")
    reward = _compared(reach.reward_vs_reference, seeds, f"higher than {reference}'s", f"lower than {reference}'s")
    return (
        f"{who} reaches {reference}'s mean marginal entropy at coefficient {reach.point.coefficient:g}: H(p) "
        f"{reach.point.marginal.estimate:.3f} nats, {entropy}; reward {reach.point.reward.estimate:.3f}, {reward}."
    )


# ------------------------------------------------------------------------------------------------------------
# What a study writes per experiment
FRONTIER_COLUMNS = (
    "agent", "base", "regularizer", "coefficient", "seeds",
    *(f"{metric.tag}_{part}" for metric in SUMMARY for part in ("mean", "low", "high")),
)  # fmt: skip


def write_outputs(result: ExperimentResult, out_dir: Path) -> Path:
    """``results.csv``, ``environment.json`` (where each run trained) and the PNG figures of one experiment in
    ``out_dir/<name>/``.

    ``overview.png`` is the finding in one picture (entropy curves and every agent's p(a) over training), also
    written to the study's TensorBoard root as the image ``study/overview`` of the run ``<name>/mean``;
    ``reward.png`` and ``entropy.png`` the learning curves; ``distribution_<agent>.png`` p(a) over training;
    and, for a study of tuned agents, ``tuning.png``, the reward per trial their tuned file records.

    Curves and action distributions are drawn for the agents the experiment file lists; a frontier's variants
    are drawn in ``frontier.png`` (with ``frontier.csv``, one row per point), and the action distributions of
    the variants that first reach the reference's marginal entropy.
    """
    folder = out_dir / result.experiment.name
    folder.mkdir(parents=True, exist_ok=True)
    write_results_csv(result, folder / "results.csv")
    if not result.histories:
        return folder
    _write_environments(result, folder / "environment.json")
    frontier = result.experiment.frontier
    variants = frontier.variants() if frontier is not None else {}
    listed = [name for name in result.experiment.agents if name not in variants]
    drawn = set(listed)
    curves_figure(result, EXPECTED_REWARD, folder / "reward.png", listed)
    curves_figure(result, MARGINAL_ENTROPY, folder / "entropy.png", listed)
    if frontier is None:
        overview_figure(result, folder / "overview.png", listed)
        last_step = max(history[-1]["timesteps"] for history in result.histories.values())
        write_overview_image(out_dir / "tb", result.experiment.name, folder / "overview.png", last_step)
    if frontier is not None:
        points = frontier_points(result)
        frontier_figure(result, points, result.baselines, folder / "frontier.png")
        _write_frontier_csv(points, folder / "frontier.csv")
        drawn |= {reach.point.agent for reach in reaching(result, points) if reach.point is not None}
    for agent in sorted({name for name, _ in result.histories} & drawn):
        distribution_figure(result, agent, folder / f"distribution_{agent}.png")
    tuning = result.experiment.tuning
    tuned = {agent: record for agent, record in (tuning.agents if tuning else {}).items() if agent in listed}
    if tuned and all(record.history for record in tuned.values()):
        colors = {agent: result.color(agent) for agent in tuned}
        tuning_figure(tuning.experiment, tuned, result.baselines, folder / "tuning.png", colors)
    return folder


def _write_environments(result: ExperimentResult, path: Path) -> None:
    """``environment.json``: each environment the runs trained in, with the runs that trained there."""
    groups: list[dict[str, Any]] = []
    for (agent, seed), environment in sorted(result.environments.items()):
        group = next((g for g in groups if g["environment"] == environment), None)
        if group is None:
            group = {"environment": environment, "runs": []}
            groups.append(group)
        group["runs"].append(f"{agent}_seed{seed}")
    write_text_atomically(path, json.dumps({"environments": groups}, indent=1) + "\n")


def _write_frontier_csv(points: list, path: Path) -> None:
    with atomic_path(path) as temporary, open(temporary, "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(FRONTIER_COLUMNS)
        for point in points:
            numbers = [_numbers(point.summary[metric]) for metric in SUMMARY]
            writer.writerow([point.agent, point.base, point.regularizer or "", f"{point.coefficient:g}",
                             point.reward.n, *(number for triple in numbers for number in triple)])  # fmt: skip


def _numbers(interval: Interval | None) -> tuple[str, str, str]:
    """An interval's mean, low and high as frontier.csv writes them (empty where the metric has no value)."""
    if interval is None:
        return "", "", ""
    return repr(interval.estimate), repr(interval.low), repr(interval.high)
