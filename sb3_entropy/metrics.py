"""The metrics of a policy on a fixed set of users: one table, :data:`METRICS`, and the sums they reduce from.

``probs`` is an ``(n, K)`` table of ``pi(a|s)`` over n evaluation states; ``expected`` the ``(n, K)`` expected
reward of every action in every state, when the task provides it. Entropies are in nats (max ``log K``);
``0 log 0 = 0``. Greedy actions are ``argmax`` of a row, the first one on ties.

Each metric is one row of the table (:class:`Metric`): its tag (the TensorBoard tag, the key of each evaluation
in EntropyCallback's history and the column of results.csv), what charts and tables call it, what its values can
be and what a higher one means, and its computation. The callback's charts, the HParams metrics, the study's
results.csv, report and frontier tables and ``personalization-gym train``'s printout are all built from the
table, so a new metric is one row and its computation.

Every computation reads :class:`Totals`: sums over the users (of ``pi(a|s)``, of each user's entropy, of the
greedy actions, of rewards), which a chunk of users contributes and chunks add up (``+``), so no metric needs
the ``(n, K)`` table whole. The exposure metrics are the recommender field's words for the marginal
distribution (docs/callback.md): the Gini coefficient of p(a), its long-tail share (exposure outside the
most-exposed 20 % of items) and the aggregate diversity (distinct greedy recommendations).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "AGGREGATE_DIVERSITY",
    "EFFECTIVE_ACTIONS",
    "EXPECTED_REWARD",
    "EXPOSURE",
    "GINI",
    "HEAD_PERCENT",
    "LONG_TAIL_SHARE",
    "MARGINAL_ENTROPY",
    "METRICS",
    "NORMALIZED_MARGINAL_ENTROPY",
    "PER_STATE_ENTROPY",
    "SCORE",
    "STORED",
    "SUMMARY",
    "Metric",
    "RewardTotals",
    "Totals",
    "aggregate_diversity",
    "all_metrics",
    "entropy",
    "evaluation_metrics",
    "gini",
    "head_size",
    "long_tail_share",
    "marginal",
    "metric",
    "metrics_of",
    "score",
    "totals",
]

HEAD_PERCENT = 20  # the short head: the most-exposed 20 % of items (rounded up); the rest is the long tail
SEARCH_FROM_ACTIONS = 1024  # past this many actions, a sampled action is found by binary search in its row
CATALOGUE_ACTIONS = 4096  # past this many actions, totals are torch's, on every core (the same sums to 1e-12)


def entropy(p: np.ndarray, axis: int = -1) -> np.ndarray:
    """Shannon entropy in nats along ``axis``, with ``0 log 0 = 0``."""
    p = np.asarray(p, dtype=np.float64)
    logs = np.log(p, out=np.zeros_like(p), where=p > 0)
    return 0.0 - (p * logs).sum(axis=axis)  # not -(...): a certain choice has entropy 0.0, not -0.0


def marginal(probs: np.ndarray) -> np.ndarray:
    """The marginal action distribution ``p(a)``: the mean over states of ``pi(a|s)``."""
    return np.asarray(probs, dtype=np.float64).mean(axis=0)


def _exposures(p: np.ndarray, who: str) -> np.ndarray:
    x = np.sort(np.asarray(p, dtype=np.float64))
    if x.ndim != 1 or len(x) == 0 or x[0] < 0 or not x.sum() > 0:
        raise ValueError(f"{who} needs a 1-d array of K >= 1 exposures >= 0 with a positive sum, got {p!r}")
    return x


def gini(p: np.ndarray) -> float:
    """Gini coefficient of an exposure distribution over K items: 0 when equal, (K - 1) / K when one item has all.

    ``sum_i (2 i - K - 1) x_(i) / (K sum x)`` over the values sorted ascending, ``i = 1..K`` (as RecBole's
    GiniIndex); the scale of ``p`` does not matter (counts or shares).
    """
    x = _exposures(p, "gini")
    rank = np.arange(1, len(x) + 1)
    return float(((2 * rank - len(x) - 1) * x).sum() / (len(x) * x.sum()))


def head_size(n_items: int) -> int:
    """How many items make the short head: ``HEAD_PERCENT`` % of ``n_items`` rounded up, so at least one."""
    return -(-HEAD_PERCENT * n_items // 100)  # integer ceiling: no float rounding at multiples of 5


def long_tail_share(p: np.ndarray) -> float:
    """Share of the exposure that goes to the long tail: every item outside the most-exposed ``head_size(K)``."""
    x = _exposures(p, "long_tail_share")
    # Summing the tail itself (not 1 - head) keeps a tail of zeros exactly 0.
    return float(x[: len(x) - head_size(len(x))].sum() / x.sum())


def aggregate_diversity(probs: np.ndarray) -> int:
    """How many distinct items the greedy policy (argmax of each row) recommends over the states."""
    return int(np.unique(np.asarray(probs).argmax(axis=1)).size)


def score(reward: float | np.ndarray, random: float, oracle: float) -> float | np.ndarray:
    """``(reward - random) / (oracle - random)``: 0 is a uniformly random policy, 1 the oracle (NaN when every
    action is as good as any other, so that there is nothing to learn)."""
    if oracle == random:
        return np.full_like(np.asarray(reward, dtype=np.float64), np.nan)[()]
    return (np.asarray(reward, dtype=np.float64) - random) / (oracle - random)


# ------------------------------------------------------------------------------------------------------------
# The sums every metric reduces from


@dataclass(frozen=True)
class RewardTotals:
    """Sums over users of the rewards the policy earns, and of what a random policy and the oracle earn."""

    expected: float  # sum_s sum_a pi(a|s) r(s, a): the policy's exact expected reward
    sampled: float  # r(s, a_s) of one action a_s drawn from each pi(.|s)
    greedy: float  # r(s, argmax pi(.|s))
    regret: float  # max_a r(s, a) - sum_a pi(a|s) r(s, a)
    optimal: int  # users whose greedy action is a best one
    every_action: float  # sum_s sum_a r(s, a): K times a uniformly random policy's reward
    best: float  # sum_s max_a r(s, a): the oracle's

    def __add__(self, other: RewardTotals) -> RewardTotals:
        return RewardTotals(
            *(mine + theirs for mine, theirs in zip(vars(self).values(), vars(other).values(), strict=True))
        )


@dataclass(frozen=True)
class Totals:
    """What a set of users contributes to every metric: sums over the users, so that chunks of users add up.

    ``probs`` and ``greedy`` are ``(K,)``: the sum of ``pi(a|s)`` and how many users' greedy action is ``a``;
    ``per_state_entropy`` the sum of each user's ``H(pi(.|s))``; ``rewards`` the reward sums, when the expected
    rewards are known. Divided by ``n`` they are the means the metrics read.
    """

    n: int
    probs: np.ndarray
    greedy: np.ndarray
    per_state_entropy: float
    rewards: RewardTotals | None = None

    def __add__(self, other: Totals) -> Totals:
        if (self.rewards is None) != (other.rewards is None):
            raise ValueError("totals with rewards and totals without them do not add up")
        rewards = None if self.rewards is None else self.rewards + other.rewards
        return Totals(self.n + other.n, self.probs + other.probs, self.greedy + other.greedy,
                      self.per_state_entropy + other.per_state_entropy, rewards)  # fmt: skip

    @property
    def n_actions(self) -> int:
        return len(self.probs)

    @property
    def p(self) -> np.ndarray:
        """The marginal action distribution ``p(a)``: the mean over users of ``pi(a|s)``."""
        return self.probs / self.n

    @property
    def greedy_share(self) -> np.ndarray:
        """The share of the users whose greedy action is each action."""
        return self.greedy / self.n

    def baselines(self) -> dict[str, float]:
        """The random policy's and the oracle's expected reward on these users (what the score reads)."""
        return {"random": self.rewards.every_action / (self.n * self.n_actions), "oracle": self.rewards.best / self.n}


def totals(
    probs: np.ndarray,
    expected: np.ndarray | None = None,
    rng: np.random.Generator | None = None,
    best: np.ndarray | None = None,
) -> Totals:
    """The totals of one chunk of users, in one pass over its ``(n, K)`` table (an evaluation's hot path).

    One ``(n, K)`` scratch table holds pi log pi, then pi * expected, then the cumulative pi; ``best``, each
    state's largest expected reward, can be given by a caller that evaluates on the same states again and again.
    With ``expected``, one action per state is drawn from its row with ``rng`` (for the sampled reward): chunks
    drawn one after the other with one generator draw what one table drawn at once draws.
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or len(probs) == 0 or probs.shape[1] < 2:
        raise ValueError(f"probs must be an (n, K) table with n >= 1 states and K >= 2 actions, got {probs.shape}")
    if expected is not None:
        expected = np.asarray(expected, dtype=np.float64)
        if expected.shape != probs.shape:
            raise ValueError(f"expected must have the shape of probs, {probs.shape}, got {expected.shape}")
        if rng is None:
            raise ValueError("reward metrics sample actions: pass rng, a np.random.Generator")
    if probs.shape[1] > CATALOGUE_ACTIONS:
        return _catalogue_totals(probs, expected, rng, best)
    greedy = probs.argmax(axis=1)
    # pi log pi with 0 log 0 = 0 (log 1 = 0 where pi = 0), as entropy() computes it, in the scratch table
    scratch = np.where(probs > 0, probs, 1.0)
    np.log(scratch, out=scratch)
    scratch *= probs
    per_state = 0.0 - scratch.sum(axis=1)
    rewards = None
    if expected is not None:
        best = expected.max(axis=1) if best is None else best
        rewards = _reward_totals(probs, expected, rng, greedy, best, scratch)
    return Totals(len(probs), probs.sum(axis=0), np.bincount(greedy, minlength=probs.shape[1]), per_state.sum(),
                  rewards)  # fmt: skip


def _reward_totals(
    probs: np.ndarray, expected: np.ndarray, rng: np.random.Generator, greedy: np.ndarray, best: np.ndarray,
    scratch: np.ndarray,
) -> RewardTotals:  # fmt: skip
    rows = np.arange(len(probs))
    policy_value = np.multiply(probs, expected, out=scratch).sum(axis=1)
    # One action per state drawn from its row, by inverting the row's cumulative distribution.
    cumulative = np.cumsum(probs, axis=1, out=scratch)
    uniform = rng.random(len(probs)) * cumulative[:, -1]
    sampled = np.minimum(_entries_at_most(cumulative, uniform), probs.shape[1] - 1)
    greedy_rewards = expected[rows, greedy]
    return RewardTotals(
        expected=policy_value.sum(),
        sampled=expected[rows, sampled].sum(),
        greedy=greedy_rewards.sum(),
        regret=(best - policy_value).sum(),
        optimal=int(np.count_nonzero(greedy_rewards == best)),
        every_action=expected.sum(),
        best=best.sum(),
    )


_SMALLEST_DOUBLE = np.nextafter(0.0, 1.0)  # the smallest positive float64


def _catalogue_totals(
    probs: np.ndarray, expected: np.ndarray | None, rng: np.random.Generator | None, best: np.ndarray | None
) -> Totals:
    """:func:`totals` of a catalogue's table by torch's multithreaded float64 kernels: a dot product per row
    instead of a product table, the sampled actions by a batched binary search. The same quantities as numpy's
    pass, summed in torch's order."""
    import torch

    table = torch.from_numpy(probs)
    greedy = table.argmax(dim=1)
    # pi log pi, 0 where pi = 0 (log of the smallest double is finite, times 0 is 0): numpy's vectorised log is
    # several times faster than torch's float64 log or xlogy on one core
    log_p = np.maximum(probs, _SMALLEST_DOUBLE)
    np.log(log_p, out=log_p)
    log_p *= probs
    scratch = torch.from_numpy(log_p)
    per_state = float(-scratch.sum(dim=1).sum())
    rewards = None
    if expected is not None:
        values = torch.from_numpy(expected)
        policy_value = torch.bmm(table.unsqueeze(1), values.unsqueeze(2)).view(-1)
        best_value = values.amax(dim=1) if best is None else torch.from_numpy(np.asarray(best, dtype=np.float64))
        cumulative = torch.cumsum(table, dim=1, out=scratch)
        uniform = torch.from_numpy(rng.random(len(probs))) * cumulative[:, -1]
        sampled = torch.searchsorted(cumulative, uniform[:, None], right=True).view(-1).clamp_(max=probs.shape[1] - 1)
        greedy_rewards = values.gather(1, greedy[:, None]).view(-1)
        rewards = RewardTotals(
            expected=float(policy_value.sum()),
            sampled=float(values.gather(1, sampled[:, None]).sum()),
            greedy=float(greedy_rewards.sum()),
            regret=float((best_value - policy_value).sum()),
            optimal=int((greedy_rewards == best_value).sum()),
            every_action=float(values.sum()),
            best=float(best_value.sum()),
        )
    greedy_counts = torch.bincount(greedy, minlength=probs.shape[1]).numpy()
    return Totals(len(probs), table.sum(dim=0).numpy(), greedy_counts, per_state, rewards)


def _entries_at_most(cumulative: np.ndarray, bound: np.ndarray) -> np.ndarray:
    """How many entries of each (non-decreasing) row of ``cumulative`` are at most its ``bound``: a comparison table
    for rows of a few actions, a binary search per row for catalogues (where a table would cost a pass over n x K)."""
    if cumulative.shape[1] <= SEARCH_FROM_ACTIONS:
        return (cumulative <= bound[:, None]).sum(axis=1)
    found = [np.searchsorted(row, value, side="right") for row, value in zip(cumulative, bound, strict=True)]
    return np.array(found, dtype=np.int64)


# ------------------------------------------------------------------------------------------------------------
# The table

Bounds = Callable[[int, Mapping[str, float]], tuple[float, float]]  # (K, baselines) -> the values it can take


@dataclass(frozen=True)
class Metric:
    """One metric: where it is logged, what it is called, what its values can be, and how it is computed.

    A stored metric is computed from the :class:`Totals` of an evaluation (``compute``) and kept in the callback's
    history, results.csv and a study's stored runs; a derived one (``derive``) is computed from the stored values
    of the same evaluation and the evaluation set's ``baselines`` (random and oracle rewards), wherever it is
    shown: the TensorBoard scalars, the HParams table and the report.
    """

    tag: str  # the TensorBoard tag, the history's key and results.csv's column
    label: str  # the chart's title and the axis label
    description: str  # one sentence: the HParams dashboard and the docs
    higher: str  # what a higher value means
    bounds: Bounds  # the values it can take: intervals over seeds are cut to them
    column: str | None = None  # its heading among the final values of a run (report, HParams, train); None: not one
    chart: tuple[str, str] | None = None  # (Custom Scalars category, chart title): metrics of one title share a chart
    fmt: str = ".3f"  # how a value is printed
    rewards: bool = False  # needs the task's expected rewards
    compute: Callable[[Totals], float] | None = None
    derive: Callable[[Mapping[str, Any], Mapping[str, float]], Any] | None = None

    @property
    def stored(self) -> bool:
        return self.derive is None

    def value(self, values: Mapping[str, Any], baselines: Mapping[str, float] | None = None) -> Any:
        """This metric in one evaluation's ``values`` (a history row, or arrays of rows): stored, or derived."""
        return values[self.tag] if self.derive is None else self.derive(values, baselines)

    def format(self, value: float) -> str:
        """``value`` in this metric's format, without the minus of a value that is zero up to round-off."""
        text = format(value, self.fmt)
        return text[1:] if text.startswith("-") and not text.strip("-0.") else text


def _log_k(k: int, _: Mapping[str, float]) -> tuple[float, float]:
    return 0.0, math.log(k)


def _share(_: int, __: Mapping[str, float]) -> tuple[float, float]:
    return 0.0, 1.0


def _reward(_: int, baselines: Mapping[str, float]) -> tuple[float, float]:
    return -math.inf, baselines.get("oracle", math.inf)  # no policy beats the oracle


def _entropy_of_p(t: Totals) -> float:
    return float(entropy(t.p))


ENTROPY, EXPOSURE_CHARTS, REWARD = "Policy entropy", "Exposure", "Reward"

MARGINAL_ENTROPY = Metric(
    "entropy/marginal", "marginal entropy H(p) [nats]",
    "entropy of p(a), the mean over users of pi(a|s): the paper's measure of diversity across users",
    "more diverse recommendations across users", _log_k, column="marginal entropy H(p)",
    chart=(ENTROPY, "marginal entropy H(p) [nats]"), compute=_entropy_of_p,
)  # fmt: skip
NORMALIZED_MARGINAL_ENTROPY = Metric(
    "entropy/marginal_normalized", "normalized marginal entropy H(p) / log K",
    "H(p) over its largest value, log K: 1 is every item equally often", "more diverse across users", _share,
    chart=(ENTROPY, "normalized marginal entropy H(p) / log K"),
    compute=lambda t: float(entropy(t.p)) / float(np.log(t.n_actions)),
)  # fmt: skip
PER_STATE_ENTROPY = Metric(
    "entropy/per_state", "mean per-state entropy H(pi(.|s)) [nats]",
    "the mean over users of each user's entropy H(pi(.|s)), what SB3's ent_coef rewards: how random each user's "
    "recommendation is", "each user served less decisively", _log_k, column="per-state entropy",
    chart=(ENTROPY, "mean per-state entropy H(pi(.|s)) [nats]"), compute=lambda t: float(t.per_state_entropy / t.n),
)  # fmt: skip
GREEDY_MARGINAL_ENTROPY = Metric(
    "entropy/greedy_marginal", "entropy of the greedy recommendations [nats]",
    "entropy of the histogram of each user's most likely item", "more diverse greedy recommendations", _log_k,
    compute=lambda t: float(entropy(t.greedy_share)),
)  # fmt: skip
EFFECTIVE_ACTIONS = Metric(
    "actions/effective_number", "effective number of actions exp H(p)",
    "exp H(p): how many equally likely items would give the same marginal entropy", "more items recommended",
    lambda k, _: (1.0, float(k)), column="effective actions",
    chart=(ENTROPY, "effective number of actions exp H(p)"), compute=lambda t: float(np.exp(entropy(t.p))),
)  # fmt: skip
COVERAGE = Metric(
    "actions/coverage", "coverage: share of items with p(a) >= 1 / (10 K)",
    "the share of items recommended at least a tenth as often as under a uniform policy", "more items in use",
    _share, compute=lambda t: float((t.p >= 1.0 / (10 * t.n_actions)).mean()),
)  # fmt: skip
TOP1_SHARE = Metric(
    "actions/top1_share", "share of the most recommended item, max p(a)",
    "the largest p(a): the share of all recommendations that go to the most recommended item",
    "more concentrated on one item", lambda k, _: (1.0 / k, 1.0), compute=lambda t: float(t.p.max()),
)  # fmt: skip
GINI = Metric(
    "exposure/gini", "Gini coefficient of p(a)",
    "the Gini coefficient of the items' exposure p(a): 0 when every item is recommended equally often, (K - 1) / K "
    "when one item gets every recommendation", "more unequal exposure", lambda k, _: (0.0, (k - 1) / k),
    column="Gini", chart=(EXPOSURE_CHARTS, "Gini coefficient of p(a)"), compute=lambda t: gini(t.p),
)  # fmt: skip
LONG_TAIL_SHARE = Metric(
    "exposure/long_tail_share", "long-tail share of p(a) (outside the most-exposed 20 % of items)",
    f"the share of exposure that goes to the long tail, every item outside the most-exposed {HEAD_PERCENT} %",
    "more exposure for the long tail", _share, column="long-tail share",
    chart=(EXPOSURE_CHARTS, "long-tail share of p(a) (outside the most-exposed 20 % of items)"),
    compute=lambda t: long_tail_share(t.p),
)  # fmt: skip
AGGREGATE_DIVERSITY = Metric(
    "exposure/aggregate_diversity", "aggregate diversity (distinct greedy recommendations)",
    "aggregate diversity: how many distinct items are some user's most likely recommendation",
    "more items recommended to someone", lambda k, _: (1.0, float(k)), column="distinct greedy items",
    chart=(EXPOSURE_CHARTS, "aggregate diversity (distinct greedy recommendations)"),
    compute=lambda t: float(np.count_nonzero(t.greedy)),
)  # fmt: skip
SAMPLED_REWARD = Metric(
    "eval/reward_stochastic", "reward of sampled actions",
    "the mean reward of one action drawn from each user's pi(.|s)", "better", _reward, rewards=True,
    chart=(REWARD, "reward, sampled and greedy actions"), compute=lambda t: float(t.rewards.sampled / t.n),
)  # fmt: skip
GREEDY_REWARD = Metric(
    "eval/reward_greedy", "reward of greedy actions", "the mean reward of each user's most likely action",
    "better", _reward, rewards=True, chart=(REWARD, "reward, sampled and greedy actions"),
    compute=lambda t: float(t.rewards.greedy / t.n),
)  # fmt: skip
EXPECTED_REWARD = Metric(
    "eval/expected_reward", "expected reward",
    "the policy's exact expected reward on the evaluation users, sum_a pi(a|s) r(s, a) averaged over users",
    "better", _reward, column="reward (expected)", rewards=True, chart=(REWARD, "expected reward"),
    compute=lambda t: float(t.rewards.expected / t.n),
)  # fmt: skip
REGRET = Metric(
    "eval/regret", "regret", "the oracle's expected reward minus the policy's, averaged over users", "worse",
    lambda _, __: (0.0, math.inf), rewards=True, chart=(REWARD, "regret"),
    compute=lambda t: float(t.rewards.regret / t.n),
)  # fmt: skip
OPTIMAL_ACTION_RATE = Metric(
    "eval/optimal_action_rate", "share of users whose greedy action is a best one",
    "the share of users whose most likely item is one of their best", "better", _share, rewards=True,
    compute=lambda t: t.rewards.optimal / t.n,
)  # fmt: skip
SCORE = Metric(
    "eval/score", "score (reward - random) / (oracle - random)",
    "(reward - random) / (oracle - random) on the same evaluation users: 0 is a uniformly random policy, 1 the oracle",
    "better", lambda _, __: (-math.inf, 1.0), column="score", rewards=True,
    chart=(REWARD, "score (reward - random) / (oracle - random)"),
    derive=lambda values, baselines: score(values[EXPECTED_REWARD.tag], baselines["random"], baselines["oracle"]),
)  # fmt: skip

# In the order of results.csv's columns: entropy, actions, exposure, reward.
METRICS: tuple[Metric, ...] = (
    MARGINAL_ENTROPY, NORMALIZED_MARGINAL_ENTROPY, PER_STATE_ENTROPY, GREEDY_MARGINAL_ENTROPY,
    EFFECTIVE_ACTIONS, COVERAGE, TOP1_SHARE,
    GINI, LONG_TAIL_SHARE, AGGREGATE_DIVERSITY,
    SAMPLED_REWARD, GREEDY_REWARD, EXPECTED_REWARD, REGRET, OPTIMAL_ACTION_RATE, SCORE,
)  # fmt: skip
STORED = tuple(m for m in METRICS if m.stored)  # each evaluation's history, results.csv, a study's stored runs
# The final values of a run, in the report's tables, the HParams table and train's printout: how well the policy
# does first, then how diverse it is.
SUMMARY = tuple(sorted((m for m in METRICS if m.column is not None), key=lambda m: not m.rewards))
EXPOSURE = tuple(m for m in METRICS if m.chart is not None and m.chart[0] == EXPOSURE_CHARTS)
_BY_TAG = {m.tag: m for m in METRICS}


def metric(tag: str) -> Metric:
    """The metric of a tag; a ValueError naming the valid tags for any other."""
    if tag not in _BY_TAG:
        raise ValueError(f"unknown metric {tag!r}; valid: {list(_BY_TAG)}")
    return _BY_TAG[tag]


def metrics_of(total: Totals) -> dict[str, float]:
    """Every metric of an evaluation's totals: the stored ones (those of rewards only with them), then the derived."""
    values = {m.tag: m.compute(total) for m in STORED if total.rewards is not None or not m.rewards}
    if total.rewards is not None:
        baselines = total.baselines()
        values |= {m.tag: float(m.derive(values, baselines)) for m in METRICS if not m.stored}
    return values


def evaluation_metrics(
    probs: np.ndarray,
    expected: np.ndarray | None = None,
    rng: np.random.Generator | None = None,
    best: np.ndarray | None = None,
) -> tuple[dict[str, float], np.ndarray]:
    """Every metric of one ``(n, K)`` table and the marginal ``p(a)`` (see :func:`totals`)."""
    total = totals(probs, expected, rng, best)
    return metrics_of(total), total.p


def all_metrics(
    probs: np.ndarray, expected: np.ndarray | None = None, rng: np.random.Generator | None = None
) -> dict[str, float]:
    """Every metric of :data:`METRICS` on a table of probabilities: those of rewards when ``expected`` is given."""
    return evaluation_metrics(probs, expected, rng)[0]
