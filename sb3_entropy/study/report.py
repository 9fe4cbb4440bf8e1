"""The study's report: Markdown tables of final values, the entropy-gap verdict and the frontier."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sb3_entropy.agents import Q_LEARNING
from sb3_entropy.atomic import write_text_atomically
from sb3_entropy.study.experiments import EXPERIMENTS_DIR, Experiment
from sb3_entropy.study.frontier import Reach, frontier_points, reaching
from sb3_entropy.study.provenance import summarize_environments
from sb3_entropy.study.results import agent_label as _label
from sb3_entropy.study.results import final_interval, finished_seeds
from sb3_entropy.study.results import seed_words as _seed_words
from sb3_entropy.study.results import three_decimals as _fixed
from sb3_entropy.study.runner import ExperimentResult
from sb3_entropy.study.stats import Interval
from sb3_entropy.study.verdict import FAMILIES, entropy_gap

__all__ = [
    "AgentSummary",
    "frontier_section",
    "normalized_score",
    "report_section",
    "summarize",
    "tuning_paragraph",
    "verdict_line",
    "write_report",
]

FLAG = "(not above random)"


def _flag(experiment: Experiment, agent: str, summary: AgentSummary) -> str:
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


@dataclass(frozen=True)
class AgentSummary:
    """An agent's final values over its seeds: reward, normalised score and marginal entropy, with intervals."""

    agent: str
    reward: Interval
    score: Interval | None  # (reward - random) / (oracle - random); None without baselines
    entropy: Interval
    effective: Interval
    gini: Interval
    long_tail_share: Interval
    aggregate_diversity: Interval  # distinct greedy recommendations
    near_random: bool  # the reward interval reaches down to the random policy's reward: nothing shown learned


def normalized_score(reward: Interval, baselines: dict[str, float]) -> Interval | None:
    """``(reward - random) / (oracle - random)`` with its interval: 0 is the random policy, 1 the oracle."""
    if not baselines or not baselines["oracle"] > baselines["random"]:
        return None
    random, scale = baselines["random"], baselines["oracle"] - baselines["random"]
    return Interval(
        (reward.estimate - random) / scale, (reward.low - random) / scale, (reward.high - random) / scale, reward.n
    )


def summarize(result: ExperimentResult, agent: str) -> AgentSummary | None:
    """``agent``'s final values, or None when every run of it failed."""
    if not finished_seeds(result, agent):
        return None
    # Each interval is cut to what the quantity can be: no policy beats the oracle, H(p) lies in [0, log K].
    reward = final_interval(result, agent, "eval/expected_reward")
    score = normalized_score(reward, result.baselines)
    near_random = bool(result.baselines) and not math.isnan(reward.low) and reward.low <= result.baselines["random"]
    return AgentSummary(
        agent,
        reward,
        score,
        final_interval(result, agent, "entropy/marginal"),
        final_interval(result, agent, "actions/effective_number"),
        final_interval(result, agent, "exposure/gini"),
        final_interval(result, agent, "exposure/long_tail_share"),
        final_interval(result, agent, "exposure/aggregate_diversity"),
        near_random,
    )


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
        "| agent | family | reward (expected) | score | marginal entropy H(p) | effective actions | Gini | "
        "long-tail share | distinct greedy items | paper reward | paper entropy |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    summaries = {agent: summarize(result, agent) for agent in experiment.agents}
    for agent, settings in experiment.agents.items():
        family = next((name for name, algos in FAMILIES.items() if settings.algo in algos), "-")
        summary = summaries[agent]
        if summary is None:
            lines.append(f"| {_label(agent)} | {family} | every run failed | | | | | | | | |")
            continue
        paper = experiment.paper.get(agent, {})
        flag = _flag(experiment, agent, summary)
        lines.append(
            f"| {_label(agent)}{flag} | {family} | {summary.reward} | {summary.score or '-'} | {summary.entropy} | "
            f"{summary.effective} | {summary.gini} | {summary.long_tail_share} | {summary.aggregate_diversity} | "
            f"{_paper(paper, 'reward')} | {_paper(paper, 'entropy')} |"
        )
    if result.baselines:
        lines += _baseline_rows(result, n_actions)
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


def _baseline_rows(result: ExperimentResult, n_actions: int) -> list[str]:
    """The table's rows of the random policy, the oracle and (with Q-learners) the exact-Q learner, and the notes
    that explain the last two."""
    lines = [
        f"| random policy | - | {_fixed(result.baselines['random'])} | 0 | {math.log(n_actions):.3f} | "
        f"{n_actions} | 0.000 | {_exposure(result.baselines, 'uniform_long_tail_share')} | - | - | - |",
        f"| oracle | - | {_fixed(result.baselines['oracle'])} | 1 | "
        f"{' | '.join(_oracle_diversity(result.baselines))} | {_exposure_columns(result.baselines, 'oracle')} | "
        "- | - |",
    ]
    q_learners = any(agent.algo in Q_LEARNING for agent in result.experiment.agents.values())
    exact_q = result.baselines.get("exact_q")
    if q_learners and exact_q is not None:
        temperature = f"{result.baselines['temperature']:g}"
        exact = Interval(exact_q, math.nan, math.nan, 1)
        lines.append(
            f"| exact Q, softmax(Q / {temperature}) | Q-learning's reference | {_fixed(exact_q)} | "
            f"{normalized_score(exact, result.baselines) or '-'} | {result.baselines['exact_q_entropy']:.3f} | "
            f"{math.exp(result.baselines['exact_q_entropy']):.3f} | "
            f"{_exposure_columns(result.baselines, 'exact_q')} | - | - |"
        )
    if "oracle_entropy" in result.baselines:
        lines.append(f"\n{_oracle_note(result.baselines)}")
    if q_learners and exact_q is not None:
        lines.append(
            f"\nexact Q: a Q-learner whose Q-values are the expected rewards themselves, read as DQN and QR-DQN "
            f"are, softmax(Q / {temperature}). A reference, not a bound: a learned Q with wider gaps between "
            f"actions than the true ones is read more greedily and can score more."
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


def _gap(result: ExperimentResult, summaries: dict[str, AgentSummary | None]) -> Gap:
    """The entropy-gap rule's outcome (:mod:`sb3_entropy.study.verdict`) in words: the family contrast, then each
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
        score = f" (score {summary.score.estimate:.2f})" if summary.score is not None else ""
        flag = _flag(experiment, agent, summary)
        agents.append(
            f"{_label(agent)}{flag} {summary.reward.estimate:.3f} reward{score}, {summary.entropy.estimate:.3f} "
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


def _oracle_diversity(baselines: dict[str, float]) -> tuple[str, str]:
    """The oracle row's marginal entropy and effective actions, or dashes for baselines without them."""
    if "oracle_entropy" not in baselines:
        return "-", "-"
    return f"{baselines['oracle_entropy']:.3f}", f"{math.exp(baselines['oracle_entropy']):.3f}"


def _exposure(baselines: dict[str, float], key: str) -> str:
    return f"{baselines[key]:.3f}" if key in baselines else "-"


def _exposure_columns(baselines: dict[str, float], policy: str) -> str:
    """A baseline policy's Gini, long-tail share and distinct greedy items (dashes for baselines without them)."""
    diversity = baselines.get(f"{policy}_aggregate_diversity")
    return " | ".join((
        _exposure(baselines, f"{policy}_gini"),
        _exposure(baselines, f"{policy}_long_tail_share"),
        "-" if diversity is None else f"{diversity:.0f}",
    ))  # fmt: skip


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
        "| agent | regularizer | coefficient | reward (expected) | score | marginal entropy H(p) | per-state entropy | "
        "Gini | long-tail share | distinct greedy items |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for point in points:
        lines.append(
            f"| {point.base.upper()} | {point.regularizer or '-'} | {point.coefficient:g} | {point.reward} | "
            f"{normalized_score(point.reward, result.baselines) or '-'} | {point.marginal} | {point.per_state} | "
            f"{point.gini} | {point.long_tail_share} | {point.aggregate_diversity} |"
        )
    if result.baselines:
        lines += [
            f"| random policy | - | - | {_fixed(result.baselines['random'])} | 0 | {math.log(n_actions):.3f} | "
            f"{math.log(n_actions):.3f} | 0.000 | {_exposure(result.baselines, 'uniform_long_tail_share')} | - |",
            f"| oracle | - | - | {_fixed(result.baselines['oracle'])} | 1 | "
            f"{_oracle_diversity(result.baselines)[0]} | - | {_exposure_columns(result.baselines, 'oracle')} |",
        ]
        if "oracle_entropy" in result.baselines:
            lines.append(f"\n{_oracle_note(result.baselines)}")
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
