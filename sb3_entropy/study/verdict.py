"""The entropy-gap rule: does policy optimization end with lower marginal entropy H(p) than Q-learning?

Fixed before any tuned run was seen, and kept apart from how the report words it (:mod:`report`). Agents that have
not been shown to learn (their reward interval reaches down to the random policy's) are left out: their entropy
is that of an untrained policy. The family contrast is the mean over policy-optimization algorithms of their mean
final H(p) minus the same over Q-learning algorithms, with a Welch-Satterthwaite interval: the paper's finding is
*reproduced* when it lies below 0, *contradicted* when above, and otherwise *not established* with the seeds at
hand. A quick run is not judged. Each pair of algorithms gets a Welch interval too.
"""

from __future__ import annotations

from dataclasses import dataclass

from sb3_entropy.agents import ON_POLICY, Q_LEARNING
from sb3_entropy.study.results import final_values, seed_words
from sb3_entropy.study.runner import ExperimentResult
from sb3_entropy.study.stats import Interval, contrast_interval, welch_interval

__all__ = ["FAMILIES", "EntropyGap", "entropy_gap"]

FAMILIES = {"policy optimization": ON_POLICY, "Q-learning": Q_LEARNING}
QUICK = "not judged: a quick run's agents are far from converged (run without --quick)"


@dataclass(frozen=True)
class EntropyGap:
    """The rule's outcome for one experiment: ``outcome`` is the verdict and why (``"reproduced: the interval lies
    below 0"``), ``verdict`` its first words."""

    outcome: str
    members: dict[str, list[str]]  # family -> the agents judged
    everyone: dict[str, list[str]]  # family -> every unregularised agent, learned or not
    left_out: list[str]  # agents not shown to learn
    contrast: Interval | None = None
    pairs: tuple[tuple[str, str, Interval], ...] = ()

    @property
    def verdict(self) -> str:
        return self.outcome.split(":")[0]


def entropy_gap(result: ExperimentResult, learned: dict[str, bool | None]) -> EntropyGap:
    """The rule applied to ``result``; ``learned[agent]`` is whether the agent's reward was shown above the random
    policy's (None when every run of it failed)."""
    members, everyone, left_out = _families(result, learned)
    po, ql = members["policy optimization"], members["Q-learning"]
    if not po or not ql:
        missing = "Q-learning" if po else ("policy-optimization" if ql else "policy-optimization or Q-learning")
        if result.quick:
            outcome = QUICK
        elif left_out:
            outcome = f"not established: no {missing} agent has been shown to learn"
        else:
            outcome = f"not applicable: it needs finished runs of a {missing} agent"
        return EntropyGap(outcome, members, everyone, left_out)
    entropy = {agent: final_values(result, agent, "entropy/marginal") for agent in po + ql}
    contrast = contrast_interval([entropy[a] for a in po], [entropy[a] for a in ql])
    if result.quick:
        outcome = QUICK
    elif contrast.n < 2:
        outcome = "not established with 1 seed: one seed gives no interval (run more seeds)"
    elif contrast.high < 0:
        outcome = "reproduced: the interval lies below 0"
    elif contrast.low > 0:
        outcome = "contradicted: the interval lies above 0, the opposite of the paper's finding"
    else:
        outcome = f"not established with {seed_words(contrast.n)}: the interval includes 0"
    pairs = tuple((p, q, welch_interval(entropy[p], entropy[q])) for p in po for q in ql)
    return EntropyGap(outcome, members, everyone, left_out, contrast, pairs)


def _families(
    result: ExperimentResult, learned: dict[str, bool | None]
) -> tuple[dict[str, list[str]], dict[str, list[str]], list[str]]:
    """Each family's judged agents and all its unregularised agents, and the agents left out as not learned."""
    members: dict[str, list[str]] = {}
    everyone: dict[str, list[str]] = {}
    left_out = []
    for family, algos in FAMILIES.items():
        stock = [a for a, settings in result.experiment.agents.items() if settings.algo in algos
                 and settings.regularizer is None]  # fmt: skip
        everyone[family], members[family] = stock, []
        for agent in stock:
            if learned.get(agent) is None:
                continue
            (members[family] if learned[agent] else left_out).append(agent)
    return members, everyone, left_out
