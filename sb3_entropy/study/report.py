"""The study's report: Markdown tables of final values, the entropy-gap verdict and the frontier."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from sb3_entropy.study.frontier import Reach, frontier_points, reaching
from sb3_entropy.study.results import final_values, finished_seeds
from sb3_entropy.study.runner import ExperimentResult
from sb3_entropy.study.stats import Interval, mean_interval, welch_interval

__all__ = ["frontier_section", "report_section", "verdict_line", "write_report"]

PO_AGENTS = ("a2c", "ppo")


def report_section(result: ExperimentResult) -> str:
    """The Markdown section of one experiment: a table of final values and the entropy-gap sentence."""
    experiment = result.experiment
    title = f"## {experiment.name} ({experiment.task})\n"
    if result.missing_data is not None:
        return title + f"\nNot run: its data is missing.\n\n```\n{result.missing_data}\n```\n"
    if experiment.frontier is not None:
        return frontier_section(result)
    seeds, steps, n_actions = _scale(result)
    lines = [
        title,
        f"{_seed_words(seeds)}, {steps:,} steps, marginal entropy in nats of at most log K = "
        f"{math.log(n_actions):.3f}; mean [95 % Student-t interval over seeds] of the final evaluation; run time "
        f"{result.seconds:.0f} s. {_baselines_sentence(result)}\n",
        "| agent | reward (expected) | marginal entropy | effective actions | paper reward | paper entropy |",
        "|---|---|---|---|---|---|",
    ]
    for agent in experiment.agents:
        if not finished_seeds(result, agent):
            lines.append(f"| {agent.upper()} | every run failed | | | | |")
            continue
        cells = [
            str(mean_interval(final_values(result, agent, key)))
            for key in ("eval/expected_reward", "entropy/marginal", "actions/effective_number")
        ]
        paper = experiment.paper.get(agent, {})
        cells += [
            f"{paper['reward']:.3f}" if "reward" in paper else "-",
            f"{paper['entropy']:.3f}" if "entropy" in paper else "-",
        ]
        lines.append(f"| {agent.upper()} | " + " | ".join(cells) + " |")
    for (agent, seed), error in sorted(result.failures.items()):
        lines.append(f"\nRun {agent} seed {seed} failed: `{error}`")
    lines += ["", f"Entropy gap: {_gap(result).text}", ""]
    return "\n".join(lines)


@dataclass(frozen=True)
class Gap:
    """The entropy-gap finding of one experiment: a verdict word and the sentence with its numbers."""

    verdict: str
    text: str


def _gap(result: ExperimentResult) -> Gap:
    """Each policy-optimization agent's final H(p) minus DQN's, with Welch intervals, and what they show.

    The paper's finding is reproduced when every interval lies below 0, contradicted when every one lies
    above 0, and otherwise not established with the seeds at hand.
    """
    po = [agent for agent in PO_AGENTS if finished_seeds(result, agent)]
    if not finished_seeds(result, "dqn") or not po:
        return Gap("not applicable", "not applicable (it needs finished runs of DQN and of A2C or PPO).")
    dqn = final_values(result, "dqn", "entropy/marginal")
    differences = {agent: welch_interval(final_values(result, agent, "entropy/marginal"), dqn) for agent in po}
    numbers = ", ".join(f"{agent.upper()} {difference.signed}" for agent, difference in differences.items())
    seeds = min(difference.n for difference in differences.values())
    seed_words = _seed_words(seeds)
    if result.quick:
        verdict = "not judged: a quick run's agents are far from converged (run without --quick)"
    elif seeds < 2:
        verdict = "not established with 1 seed: one seed gives no interval (run more seeds)"
    elif all(difference.high < 0 for difference in differences.values()):
        verdict = "reproduced: every interval lies below 0"
    elif all(difference.low > 0 for difference in differences.values()):
        verdict = "contradicted: every interval lies above 0, the opposite of the paper's finding"
    else:
        verdict = f"not established with {seed_words}: some interval includes 0 or they disagree"
    return Gap(
        verdict.split(":")[0],
        f"final marginal entropy minus DQN's, {numbers} nats (95 % Welch intervals, {seed_words}); the paper's "
        f"finding that policy optimization ends with lower marginal entropy than Q-learning is {verdict}.",
    )


def verdict_line(result: ExperimentResult) -> str:
    """One line for the top of the report: the verdict, then every agent's final values beside the paper's."""
    experiment = result.experiment
    name = f"**{experiment.name}** ({experiment.task}"
    if result.missing_data is not None:
        return f"- {name}): not run, its data is missing."
    seeds, steps, _ = _scale(result)
    if experiment.frontier is not None:
        return f"- {name}, {_seed_words(seeds)}, {steps:,} steps): a frontier study, see its section."
    gap = _gap(result)
    agents = []
    for agent in experiment.agents:
        if not finished_seeds(result, agent):
            agents.append(f"{agent.upper()} every run failed")
            continue
        reward = final_values(result, agent, "eval/expected_reward").mean()
        entropy = final_values(result, agent, "entropy/marginal").mean()
        paper = experiment.paper.get(agent, {})
        paper_text = (
            f" (paper {paper['reward']:.3f}, {paper['entropy']:.3f})" if {"reward", "entropy"} <= set(paper) else ""
        )
        agents.append(f"{agent.upper()} {reward:.3f} reward, {entropy:.3f} nats{paper_text}")
    baselines = ""
    if result.baselines:
        baselines = f" Random policy {result.baselines['random']:.3f}, oracle {result.baselines['oracle']:.3f}."
    return (
        f"- {name}, {_seed_words(seeds)}, {steps:,} steps): entropy gap **{gap.verdict}**. Final means: "
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
    path.write_text(header + verdicts + "\n".join(report_section(result) for result in results))
    return path


def _seed_words(seeds: int) -> str:
    return f"{seeds} seed{'s' if seeds != 1 else ''}"


def _scale(result: ExperimentResult) -> tuple[int, int, int]:
    """Seeds, steps at the last evaluation, and number of actions K of an experiment's runs."""
    seeds = len({seed for _, seed in result.histories})
    if not result.rows:
        return seeds, 0, 0
    return seeds, result.rows[-1]["timesteps"], len(result.rows[-1]["p"])


def _baselines_sentence(result: ExperimentResult) -> str:
    if not result.baselines:
        return ""
    return (
        f"On the same evaluation set a uniformly random policy scores {result.baselines['random']:.3f} and the "
        f"oracle (the best action for every user) {result.baselines['oracle']:.3f}."
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
        f"every value is the mean [95 % Student-t interval over seeds] of the final evaluation; run time "
        f"{result.seconds:.0f} s. {_baselines_sentence(result)} The regularizers' coefficient is SB3's ent_coef; "
        f"per-state entropy is the mean over users of H(pi(.|s)) ({reference}: of softmax(Q / 0.1)). Figure: "
        "frontier.png.\n",
        "| agent | regularizer | coefficient | reward (expected) | marginal entropy H(p) | per-state entropy |",
        "|---|---|---|---|---|---|",
    ]
    for point in points:
        lines.append(
            f"| {point.base.upper()} | {point.regularizer or '-'} | {point.coefficient:g} | {point.reward} | "
            f"{point.marginal} | {point.per_state} |"
        )
    for (agent, seed), error in sorted(result.failures.items()):
        lines.append(f"\nRun {agent} seed {seed} failed: `{error}`")
    reference_point = next((p for p in points if p.agent == frontier.reference), None)
    lines += ["", f"### Reaching {reference}'s marginal entropy", ""]
    if reference_point is None:
        return "\n".join([*lines, f"Not computed: every run of {reference} failed.", ""])
    if result.quick:
        lines += [
            "Quick run: the agents are far from converged, so no verdict is drawn; run without --quick.",
            "",
        ]
    lines += [
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
    return "\n".join([*lines, ""])


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
