"""sb3_entropy.metrics and figures against direct computations on hand-made probability tables."""

from __future__ import annotations

import functools
import itertools
import math
import operator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sb3_entropy.figures import DownsampledHistory
from sb3_entropy.metrics import (
    aggregate_diversity,
    all_metrics,
    entropy,
    evaluation_metrics,
    gini,
    head_size,
    long_tail_share,
    metrics_of,
    totals,
)

TABLES = {
    # two states, three actions, a zero and a tie in the greedy choice of state 1
    "zeros-and-ties": np.array([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]]),
    "K=2": np.array([[1.0, 0.0], [0.25, 0.75], [0.5, 0.5]]),
    "single-state": np.array([[0.1, 0.2, 0.3, 0.4]]),
    "deterministic": np.array([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]]),
}


def h(p) -> float:
    """Entropy by hand, in nats, skipping zeros."""
    return -sum(x * math.log(x) for x in p if x > 0)


@pytest.mark.parametrize("name", TABLES)
def test_entropy_and_action_metrics(name: str) -> None:
    probs = TABLES[name]
    n, k = probs.shape
    p = [sum(probs[s, a] for s in range(n)) / n for a in range(k)]
    greedy = [max(range(k), key=lambda a, s=s: (probs[s, a], -a)) for s in range(n)]  # first maximum
    greedy_histogram = [greedy.count(a) / n for a in range(k)]
    metrics = all_metrics(probs)
    assert metrics["entropy/marginal"] == pytest.approx(h(p), abs=1e-15)
    assert metrics["entropy/marginal_normalized"] == pytest.approx(h(p) / math.log(k), abs=1e-15)
    assert metrics["entropy/per_state"] == pytest.approx(sum(h(row) for row in probs) / n, abs=1e-15)
    assert metrics["entropy/greedy_marginal"] == pytest.approx(h(greedy_histogram), abs=1e-15)
    assert metrics["actions/effective_number"] == pytest.approx(math.exp(h(p)), rel=1e-15)
    assert metrics["actions/coverage"] == sum(x >= 1 / (10 * k) for x in p) / k
    assert metrics["actions/top1_share"] == max(p)
    assert set(metrics) == {
        "entropy/marginal",
        "entropy/marginal_normalized",
        "entropy/per_state",
        "entropy/greedy_marginal",
        "actions/effective_number",
        "actions/coverage",
        "actions/top1_share",
        "exposure/gini",
        "exposure/long_tail_share",
        "exposure/aggregate_diversity",
    }
    assert metrics["exposure/gini"] == pytest.approx(gini_by_pairs(p), abs=1e-15)
    assert metrics["exposure/long_tail_share"] == pytest.approx(tail_by_hand(p), abs=1e-15)
    assert metrics["exposure/aggregate_diversity"] == len(set(greedy))


def gini_by_pairs(x) -> float:
    """Gini as the mean absolute difference over all ordered pairs, over twice the mean (no sorting)."""
    k = len(x)
    return sum(abs(a - b) for a in x for b in x) / (2 * k * sum(x))


def tail_by_hand(x) -> float:
    """Exposure outside the ceil(K / 5) most-exposed items, over the total."""
    head = math.ceil(len(x) / 5)
    return sum(sorted(x, reverse=True)[head:]) / sum(x)


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 6, 10, 15, 49, 50, 51, 100])
def test_head_size_is_a_fifth_rounded_up(k: int) -> None:
    assert head_size(k) == math.ceil(k / 5) == max(1, -(-k // 5))


@pytest.mark.parametrize("k", [1, 2, 3, 10, 50])
def test_exposure_edge_cases(k: int) -> None:
    uniform = np.full(k, 1 / k)
    assert gini(uniform) == pytest.approx(0.0, abs=1e-15)
    assert long_tail_share(uniform) == pytest.approx((k - math.ceil(k / 5)) / k, abs=1e-15)
    one_item = np.zeros(k)
    one_item[k // 2] = 1.0  # one item for everyone
    assert gini(one_item) == pytest.approx((k - 1) / k, abs=1e-15) == pytest.approx(gini_by_pairs(one_item))
    assert long_tail_share(one_item) == 0.0
    # everyone is served item k // 2 greedily, whatever the other items' shares
    probs = np.tile(np.linspace(1, 2, k) / np.linspace(1, 2, k).sum(), (7, 1))
    probs[:, k // 2] += 1.0
    assert aggregate_diversity(probs) == 1
    assert aggregate_diversity(np.eye(k)) == k  # each of k users gets their own item


def test_exposure_known_values() -> None:
    # K = 2: p = (0.25, 0.75): Gini = (|0.25-0.75| * 2) / (2 * 2 * 1) = 0.25; the head is one item, the tail 0.25
    assert gini(np.array([0.25, 0.75])) == pytest.approx(0.25)
    assert long_tail_share(np.array([0.25, 0.75])) == pytest.approx(0.25)
    # K = 10: two head items hold 0.5 and 0.3; counts work as well as shares
    counts = np.array([0, 50, 0, 30, 5, 5, 5, 5, 0, 0])
    assert long_tail_share(counts) == pytest.approx(0.2)
    assert gini(counts) == pytest.approx(gini_by_pairs(counts.tolist()))
    rng = np.random.default_rng(7)
    for _ in range(20):
        x = rng.dirichlet(np.full(int(rng.integers(1, 30)), 0.3))
        assert gini(x) == pytest.approx(gini_by_pairs(x.tolist()), abs=1e-12)
        assert long_tail_share(x) == pytest.approx(tail_by_hand(x.tolist()), abs=1e-12)


@pytest.mark.parametrize("bad", [np.array([]), np.array([0.0, 0.0]), np.array([0.5, -0.1]), np.ones((2, 2))])
def test_exposure_refuses_what_is_not_an_exposure(bad: np.ndarray) -> None:
    for function in (gini, long_tail_share):
        with pytest.raises(ValueError, match="exposures >= 0 with a positive sum"):
            function(bad)


def test_all_metrics_needs_two_actions() -> None:
    with pytest.raises(ValueError, match=r"K >= 2 actions, got \(3, 1\)"):
        all_metrics(np.ones((3, 1)))


def test_known_values() -> None:
    metrics = all_metrics(TABLES["zeros-and-ties"])
    # p = (0.35, 0.4, 0.25); greedy actions 0 (first of the tie) and 2
    assert metrics["entropy/marginal"] == pytest.approx(
        -(0.35 * math.log(0.35) + 0.4 * math.log(0.4) + 0.25 * math.log(0.25))
    )
    assert metrics["entropy/greedy_marginal"] == pytest.approx(math.log(2))
    deterministic = all_metrics(TABLES["deterministic"])
    assert deterministic["entropy/marginal"] == 0.0 and deterministic["actions/effective_number"] == 1.0
    assert deterministic["actions/coverage"] == pytest.approx(1 / 3)
    uniform = all_metrics(np.full((5, 8), 1 / 8))
    assert uniform["entropy/marginal_normalized"] == pytest.approx(1.0) and uniform[
        "actions/effective_number"
    ] == pytest.approx(8)


def test_reward_metrics() -> None:
    probs = np.array([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5], [0.0, 0.0, 1.0]])
    expected = np.array([[1.0, 0.0, -1.0], [0.0, 1.0, 1.0], [0.3, 0.2, 0.1]])
    metrics = all_metrics(probs, expected, np.random.default_rng(0))
    values = [sum(probs[s, a] * expected[s, a] for a in range(3)) for s in range(3)]
    assert metrics["eval/expected_reward"] == pytest.approx(sum(values) / 3, abs=1e-15)
    assert metrics["eval/regret"] == pytest.approx(sum(max(expected[s]) - values[s] for s in range(3)) / 3, abs=1e-15)
    # greedy actions 0, 2, 2: rewards 1, 1, 0.1; optimal in states 0 and 1 only (state 1 ties 1 and 2)
    assert metrics["eval/reward_greedy"] == pytest.approx((1.0 + 1.0 + 0.1) / 3)
    assert metrics["eval/optimal_action_rate"] == pytest.approx(2 / 3)
    # sampled actions: state 2 always takes action 2; over many seeds the mean approaches the expected reward
    sampled = [
        all_metrics(probs, expected, np.random.default_rng(seed))["eval/reward_stochastic"] for seed in range(4000)
    ]
    assert abs(np.mean(sampled) - metrics["eval/expected_reward"]) < 0.01
    possible = {(a + b + 0.1) / 3 for a in (1.0, 0.0) for b in (0.0, 1.0)}
    assert set(np.round(sampled, 12)) <= {round(x, 12) for x in possible}


@pytest.mark.parametrize(
    ("probs", "expected", "message"),
    [
        (np.ones((0, 3)), None, r"n >= 1 states and K >= 2 actions, got \(0, 3\)"),
        (np.ones((2, 1)), None, r"K >= 2 actions, got \(2, 1\)"),
        (np.full((2, 2), 0.5), np.zeros((2, 3)), r"expected must have the shape of probs, \(2, 2\), got \(2, 3\)"),
    ],
)
def test_bad_tables(probs, expected, message) -> None:
    with pytest.raises(ValueError, match=message):
        all_metrics(probs, expected, np.random.default_rng(0))


def test_entropy_function_handles_zeros() -> None:
    assert entropy(np.array([0.0, 1.0])) == 0.0
    np.testing.assert_allclose(entropy(np.array([[0.5, 0.5], [1.0, 0.0]])), [math.log(2), 0.0])


def test_downsampled_history_stays_bounded_and_even() -> None:
    history = DownsampledHistory(capacity=8)
    for step in range(1000):
        history.append(step, np.array([step, 1.0]))
    assert len(history) <= 8
    gaps = np.diff(history.steps)
    assert len(set(gaps)) == 1 and history.steps[0] == 0  # evenly spread from the start
    assert history.stride == gaps[0] and history.steps[-1] >= 1000 - 2 * history.stride


def _straightforward_metrics(probs: np.ndarray, expected: np.ndarray, rng: np.random.Generator) -> dict[str, float]:
    """The per-state entropy and reward metrics as the plain numpy formulas give them, one temporary per step
    (the code before the one-pass evaluation: its results are what the study's results.csv holds)."""
    logs = np.log(probs, out=np.zeros_like(probs), where=probs > 0)
    rows = np.arange(len(probs))
    cumulative = np.cumsum(probs, axis=1)
    uniform = rng.random(len(probs))[:, None] * cumulative[:, -1:]
    sampled = np.minimum((cumulative <= uniform).sum(axis=1), probs.shape[1] - 1)
    greedy, best = probs.argmax(axis=1), expected.max(axis=1)
    value = (probs * expected).sum(axis=1)
    return {
        "entropy/per_state": float((0.0 - (probs * logs).sum(axis=-1)).mean()),
        "eval/reward_stochastic": float(expected[rows, sampled].mean()),
        "eval/reward_greedy": float(expected[rows, greedy].mean()),
        "eval/expected_reward": float(value.mean()),
        "eval/regret": float((best - value).mean()),
        "eval/optimal_action_rate": float((expected[rows, greedy] == best).mean()),
    }


@pytest.mark.parametrize("zeros", [False, True])
def test_one_pass_evaluation_equals_the_straightforward_formulas_bit_for_bit(zeros: bool) -> None:
    rng = np.random.default_rng(7)
    logits = rng.normal(size=(3000, 40)) * 4
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    if zeros:  # rows with zeros (a collapsed float32 softmax) and one-hot rows
        probs[:, :9] = 0.0
        probs[::5] = np.eye(40)[rng.integers(9, 40, size=len(probs[::5]))]
    probs /= probs.sum(axis=1, keepdims=True)
    expected = rng.random((3000, 40))
    expected[:, 20] = expected[:, 21]  # ties in the best action
    straightforward = _straightforward_metrics(probs, expected, np.random.default_rng(3))
    for best in (None, expected.max(axis=1)):
        metrics, p = evaluation_metrics(probs, expected, np.random.default_rng(3), best)
        assert {key: metrics[key] for key in straightforward} == straightforward  # equal, not approximately
        assert np.array_equal(p, probs.mean(axis=0))
        assert metrics == all_metrics(probs, expected, np.random.default_rng(3))


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 300),
    k=st.integers(2, 40),
    cuts=st.lists(st.integers(1, 299), max_size=6),
    seed=st.integers(0, 2**32 - 1),
    rewards=st.booleans(),
)
def test_every_metric_reduces_over_chunks_of_users_to_the_whole_tables_value(n, k, cuts, seed, rewards) -> None:
    """The totals of chunks of users, added, give every metric the whole table gives (to 1e-12), and one generator
    drawn chunk after chunk samples the same actions as one draw for the whole table (the same sampled reward)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, k)) * rng.uniform(0.1, 8)
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs[rng.random((n, k)) < 0.2] = 0.0  # zeros, as a collapsed float32 softmax has
    probs[np.arange(n), rng.integers(k, size=n)] += 0.1
    probs /= probs.sum(axis=1, keepdims=True)
    expected = rng.normal(size=(n, k)) if rewards else None
    edges = sorted({0, n, *(cut for cut in cuts if cut < n)})
    whole, _ = evaluation_metrics(probs, expected, np.random.default_rng(5) if rewards else None)
    chunk_rng = np.random.default_rng(5) if rewards else None
    parts = [
        totals(probs[a:b], None if expected is None else expected[a:b], chunk_rng) for a, b in itertools.pairwise(edges)
    ]
    summed = functools.reduce(operator.add, parts)
    assert summed.n == n and np.array_equal(summed.greedy, np.bincount(probs.argmax(axis=1), minlength=k))
    chunked = metrics_of(summed)
    assert set(chunked) == set(whole)
    for tag, value in whole.items():
        assert chunked[tag] == pytest.approx(value, rel=1e-12, abs=1e-12), tag


def test_totals_with_and_without_rewards_do_not_add_up() -> None:
    probs = np.full((2, 3), 1 / 3)
    with pytest.raises(ValueError, match="totals with rewards and totals without them do not add up"):
        totals(probs) + totals(probs, np.zeros((2, 3)), np.random.default_rng(0))


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 30), st.integers(1025, 3000), st.integers(0, 2**32 - 1), st.floats(0.0, 0.2))
def test_sampled_actions_of_a_catalogue_are_found_by_binary_search_as_by_comparison(n, k, seed, zeros) -> None:
    """Past SEARCH_FROM_ACTIONS actions each row is searched instead of compared: the same counts, ties and zero
    probabilities (flat runs of the cumulative row) included."""
    from sb3_entropy.metrics import SEARCH_FROM_ACTIONS, _entries_at_most

    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.full(k, 0.3), size=n) * (rng.random((n, k)) >= zeros)
    cumulative = np.cumsum(probs, axis=1)
    bound = rng.random(n) * cumulative[:, -1]
    bound[0] = cumulative[0, rng.integers(k)]  # a bound equal to an entry: counted
    assert k > SEARCH_FROM_ACTIONS
    np.testing.assert_array_equal(_entries_at_most(cumulative, bound), (cumulative <= bound[:, None]).sum(axis=1))


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 12), st.integers(4097, 6000), st.integers(0, 2**32 - 1))
def test_a_catalogues_totals_by_torch_are_numpys_to_1e12(n, k, seed) -> None:
    """Past CATALOGUE_ACTIONS actions torch computes the totals on every core: the sums of numpy's pass, to 1e-12
    (summed in another order), the same sampled and greedy actions. Zero probabilities and tied rewards included."""
    import sb3_entropy.metrics as metrics

    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.full(k, 0.2), size=n)
    probs[:, rng.integers(k, size=5)] = 0.0
    probs /= probs.sum(axis=1, keepdims=True)
    expected = rng.integers(0, 4, size=(n, k)) / 2  # ties everywhere
    by_torch = totals(probs, expected, np.random.default_rng(7))
    original = metrics.CATALOGUE_ACTIONS
    try:
        metrics.CATALOGUE_ACTIONS = k
        by_numpy = totals(probs, expected, np.random.default_rng(7))
    finally:
        metrics.CATALOGUE_ACTIONS = original
    np.testing.assert_array_equal(by_torch.greedy, by_numpy.greedy)
    np.testing.assert_allclose(by_torch.probs, by_numpy.probs, rtol=1e-12, atol=1e-15)
    assert by_torch.per_state_entropy == pytest.approx(by_numpy.per_state_entropy, rel=1e-12)
    for name, value in vars(by_numpy.rewards).items():
        assert getattr(by_torch.rewards, name) == pytest.approx(value, rel=1e-12, abs=1e-12), name


def test_totals_of_chunks_of_users_add_up_to_the_whole_and_refuse_a_mix() -> None:
    """An evaluation in chunks adds each chunk's totals: the same metrics as one table (the sampled actions drawn in
    the same order); totals with rewards and totals without them are not of one evaluation."""
    from sb3_entropy.metrics import metrics_of, totals

    rng = np.random.default_rng(0)
    probs, expected = rng.dirichlet(np.ones(4), size=6), rng.normal(size=(6, 4))
    whole = metrics_of(totals(probs, expected, np.random.default_rng(1)))
    draws = np.random.default_rng(1)
    chunked = metrics_of(totals(probs[:2], expected[:2], draws) + totals(probs[2:], expected[2:], draws))
    assert chunked.keys() == whole.keys()
    assert all(chunked[key] == pytest.approx(whole[key], rel=1e-12, abs=1e-12) for key in whole)
    with pytest.raises(ValueError) as error:
        totals(probs[:2], expected[:2], draws) + totals(probs[2:])
    assert str(error.value) == "totals with rewards and totals without them do not add up"


def test_a_catalogues_totals_equal_an_independent_numpy_computation() -> None:
    """Past CATALOGUE_ACTIONS the totals are torch's: each equals numpy's own sums, the sampled actions included
    (the same uniforms, inverse-CDF by binary search); rows whose mass sits on the last item sample the last item."""
    from sb3_entropy.metrics import CATALOGUE_ACTIONS, totals

    rng = np.random.default_rng(3)
    n, k = 40, CATALOGUE_ACTIONS + 7
    probs = rng.dirichlet(np.full(k, 0.05), size=n)
    probs[:5] = 0.0
    probs[:5, -1] = 1.0  # the last item for sure
    expected = rng.normal(size=(n, k))
    best = expected.max(axis=1)
    for given_best in (None, best):
        total = totals(probs, expected, np.random.default_rng(9), given_best)
        uniform = np.random.default_rng(9).random(n) * np.cumsum(probs, axis=1)[:, -1]
        cumulative = np.cumsum(probs, axis=1)
        sampled = np.array(
            [min(np.searchsorted(row, u, side="right"), k - 1) for row, u in zip(cumulative, uniform, strict=True)]
        )
        assert np.all(sampled[:5] == k - 1)
        greedy = probs.argmax(axis=1)
        rewards = total.rewards
        assert rewards.sampled == pytest.approx(expected[np.arange(n), sampled].sum(), rel=1e-12)
        assert rewards.expected == pytest.approx((probs * expected).sum(), rel=1e-12)
        assert rewards.regret == pytest.approx((best - (probs * expected).sum(axis=1)).sum(), rel=1e-12)
        assert rewards.optimal == int((expected[np.arange(n), greedy] == best).sum())
        assert rewards.best == pytest.approx(best.sum(), rel=1e-12)
        assert np.array_equal(total.greedy, np.bincount(greedy, minlength=k)) and total.n == n
        logs = np.where(probs > 0, probs * np.log(np.where(probs > 0, probs, 1.0)), 0.0)
        assert total.per_state_entropy == pytest.approx(-logs.sum(), rel=1e-12)
    without = totals(probs, None, None)
    assert without.rewards is None and without.n == n


def test_the_values_each_metric_can_take() -> None:
    """Shares lie in [0, 1]; no reward beats the oracle, and without baselines a reward is unbounded."""
    from sb3_entropy.metrics import COVERAGE, EXPECTED_REWARD, NORMALIZED_MARGINAL_ENTROPY

    assert COVERAGE.bounds(50, {}) == NORMALIZED_MARGINAL_ENTROPY.bounds(50, {}) == (0.0, 1.0)
    assert EXPECTED_REWARD.bounds(50, {"oracle": 0.9}) == (-math.inf, 0.9)
    assert EXPECTED_REWARD.bounds(50, {}) == (-math.inf, math.inf)


@pytest.mark.parametrize("k", [6, 1500])  # a comparison table; a binary search per row (past SEARCH_FROM_ACTIONS)
def test_float32_inputs_are_computed_in_float64_and_actions_sampled_by_inverse_cdf(k: int) -> None:
    """Every metric of float32 tables equals that of the same numbers in float64; the sampled actions are each
    row's inverse CDF at a uniform draw times the row's sum; the baselines are the mean and best rewards."""
    from sb3_entropy.metrics import SEARCH_FROM_ACTIONS, entropy, gini, long_tail_share, marginal, score, totals

    assert (k > SEARCH_FROM_ACTIONS) is (k == 1500)
    rng = np.random.default_rng(5)
    probs = rng.dirichlet(np.full(k, 0.3), size=30).astype(np.float32)
    expected = rng.normal(size=(30, k)).astype(np.float32)
    wide, wide_expected = probs.astype(np.float64), expected.astype(np.float64)
    total = totals(probs, expected, np.random.default_rng(2))
    same = totals(wide, wide_expected, np.random.default_rng(2))
    assert (total.n, total.per_state_entropy, total.rewards) == (same.n, same.per_state_entropy, same.rewards)
    assert np.array_equal(total.probs, same.probs) and np.array_equal(total.greedy, same.greedy)
    cumulative = np.cumsum(wide, axis=1)
    uniform = np.random.default_rng(2).random(30) * cumulative[:, -1]
    sampled = [
        min(int(np.searchsorted(row, u, side="right")), k - 1) for row, u in zip(cumulative, uniform, strict=True)
    ]
    assert total.rewards.sampled == pytest.approx(wide_expected[np.arange(30), sampled].sum(), rel=1e-12)
    assert total.baselines() == pytest.approx(
        {"random": wide_expected.mean(), "oracle": wide_expected.max(axis=1).mean()}, rel=1e-12
    )
    p32 = probs[0]
    assert entropy(p32) == entropy(p32.astype(np.float64)) and gini(p32) == gini(p32.astype(np.float64))
    assert long_tail_share(p32) == long_tail_share(p32.astype(np.float64))
    assert np.array_equal(marginal(probs), wide.mean(axis=0))
    assert score(np.float32(0.3), 0.1, 0.9) == (float(np.float32(0.3)) - 0.1) / 0.8
    assert math.isnan(score(0.3, 0.5, 0.5))  # no room between the random policy and the oracle


def test_the_metrics_name_themselves_when_refusing() -> None:
    from sb3_entropy.metrics import gini, long_tail_share, totals

    for function, bad in ((gini, np.array([])), (long_tail_share, np.array([-1.0, 2.0]))):
        with pytest.raises(ValueError) as error:
            function(bad)
        assert str(error.value) == (
            f"{function.__name__} needs a 1-d array of K >= 1 exposures >= 0 with a positive sum, got {bad!r}"
        )
    with pytest.raises(ValueError) as error:
        totals(np.full((2, 3), 1 / 3), np.zeros((2, 3)))
    assert str(error.value) == "reward metrics sample actions: pass rng, a np.random.Generator"


def test_the_head_is_the_ceiling_of_a_fifth_of_the_items() -> None:
    """head_size(K) = ceil(0.2 K) in integers: exact at multiples of 5, where a float product can round up."""
    from sb3_entropy.metrics import head_size

    for k in (1, 4, 5, 6, 49, 50, 505, 87_585, 10**9 + 5):
        assert head_size(k) == (20 * k + 99) // 100
    assert head_size(505) == 101 and head_size(5) == 1 and head_size(6) == 2
