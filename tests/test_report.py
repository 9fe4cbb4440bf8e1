"""The study report's verdicts, on results made to order: families, pairs, flags, scores."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from sb3_entropy.baselines import evaluation_baselines
from sb3_entropy.study import load_experiment
from sb3_entropy.study.analysis import entropy_gap, mean_interval
from sb3_entropy.study.experiments import ExperimentResult
from sb3_entropy.study.report import report_section, verdict_line

FIVE_AGENTS = """
task: Personalization/Behavior-v0
net_arch: [16]
steps: 1000
eval_freq: 500
agents:
  a2c: {learning_rate: 1.0e-3}
  ppo: {learning_rate: 1.0e-3}
  trpo: {learning_rate: 1.0e-3}
  dqn: {learning_rate: 1.0e-3}
  qrdqn: {learning_rate: 1.0e-3}
"""
K = 10
AGENTS = ("a2c", "ppo", "trpo", "dqn", "qrdqn")


def made_result(tmp_path: Path, finals: dict[str, list[tuple[float, float]]], quick: bool = False) -> ExperimentResult:
    """A study whose agents ended at the given (reward, marginal entropy) per seed; random 0.1, oracle 0.9."""
    path = tmp_path / "five.yml"
    path.write_text(FIVE_AGENTS)
    result = ExperimentResult(load_experiment(str(path)), baselines={"random": 0.1, "oracle": 0.9}, quick=quick)
    for agent, values in finals.items():
        for seed, (reward, entropy) in enumerate(values):
            row = {
                "timesteps": 1000, "eval/expected_reward": reward, "entropy/marginal": entropy,
                "entropy/per_state": entropy / 2,
                "actions/effective_number": math.exp(entropy), "p": np.full(K, 1 / K),
                # exposure of a made-up marginal: varies with the seed so that the table shows intervals
                "exposure/gini": 0.1 * (seed + 1), "exposure/long_tail_share": 0.5, "exposure/aggregate_diversity": 3.0,
            }  # fmt: skip
            result.histories[(agent, seed)] = [row]
            result.rows.append(row)
    return result


def spread(center: float, width: float = 0.05) -> list[float]:
    return [center - width, center + width / 2, center + width / 2]


def learned(entropy: float) -> list[tuple[float, float]]:
    return list(zip(spread(0.85, 0.02), spread(entropy), strict=True))


def test_the_families_and_every_pair_are_compared_with_intervals_valid_for_three_seeds(tmp_path: Path) -> None:
    finals = {
        "a2c": learned(1.8),
        "ppo": learned(1.9),
        "trpo": learned(2.6),
        "dqn": learned(3.3),
        "qrdqn": learned(2.9),
    }
    result = made_result(tmp_path, finals)
    line = verdict_line(result)
    assert line.startswith("- **five** (Personalization/Behavior-v0, 3 seeds, 1,000 steps): entropy gap **reproduced**")
    # the family contrast, by hand: equal weight per algorithm, Welch-Satterthwaite degrees of freedom
    entropy = {agent: np.array([e for _, e in values]) for agent, values in finals.items()}
    po, ql = ["a2c", "ppo", "trpo"], ["dqn", "qrdqn"]
    estimate = np.mean([entropy[a].mean() for a in po]) - np.mean([entropy[a].mean() for a in ql])
    terms = [entropy[a].var(ddof=1) / 3 / 9 for a in po] + [entropy[a].var(ddof=1) / 3 / 4 for a in ql]
    dof = sum(terms) ** 2 / sum(t**2 / 2 for t in terms)
    half = stats.t.ppf(0.975, dof) * math.sqrt(sum(terms))
    assert (
        f"{estimate:+.3f} [{estimate - half:+.3f}, {estimate + half:+.3f}] nats (95 % Welch-Satterthwaite interval, 3 seeds)"
        in line
    )
    for p in po:
        for q in ql:
            ci = stats.ttest_ind(entropy[p], entropy[q], equal_var=False).confidence_interval(0.95)
            label = "QR-DQN" if q == "qrdqn" else q.upper()
            difference = entropy[p].mean() - entropy[q].mean()
            assert f"{p.upper()} - {label} {difference:+.3f} [{ci.low:+.3f}, {ci.high:+.3f}]" in line
    assert "TRPO - DQN" in line and "6 pairs below 0" in line
    assert "A2C 0.850 reward (score 0.94), 1.800 nats" in line  # score = (0.85 - 0.1) / (0.9 - 0.1)
    assert "Random policy 0.100, oracle 0.900." in line


def test_an_agent_not_shown_above_random_is_flagged_and_left_out(tmp_path: Path) -> None:
    untrained = list(zip(spread(0.11, 0.04), spread(3.9), strict=True))  # reward interval includes 0.1
    finals = {"a2c": learned(1.8), "ppo": learned(1.9), "trpo": learned(2.0), "dqn": untrained, "qrdqn": learned(3.1)}
    result = made_result(tmp_path, finals)
    line, section = verdict_line(result), report_section(result)
    assert "DQN (not above random) 0.110 reward (score 0.01)" in line
    assert "minus Q-learning (QR-DQN)" in line and "DQN -" not in line.replace("QR-DQN", "")
    assert "Left out, their reward not shown above the random policy's: DQN." in line
    assert "| DQN (not above random) | Q-learning |" in section
    assert "says nothing about learned diversity" in section
    assert "| random policy | - | 0.100 | 0.000 | 2.303 | 2.303 | 10.000 | 0.000 | - | - | - | - |" in section
    assert "| oracle | - | 0.900 | 1.000 | - | - | - | - | - | - | - | - |" in section
    # the exposure columns: Gini 0.1, 0.2, 0.3 over the seeds, long-tail share 0.5, 3 distinct greedy items
    gini = mean_interval(np.array([0.1, 0.2, 0.3])).within(0.0, (K - 1) / K)
    a2c_row = next(row for row in section.splitlines() if row.startswith("| A2C |"))
    assert a2c_row.split(" | ")[7:10] == [str(gini), "0.500 [0.500, 0.500]", "3.000 [3.000, 3.000]"]
    # with no Q-learner shown to learn, the gap cannot be judged at all
    finals["qrdqn"] = untrained
    line = verdict_line(made_result(tmp_path, finals))
    assert "entropy gap **not established**" in line
    assert "no Q-learning agent has been shown to learn" in line
    # a quick run is not judged, whoever learned
    assert "entropy gap **not judged**" in verdict_line(made_result(tmp_path, finals, quick=True))


@pytest.mark.parametrize(
    ("po_entropy", "ql_entropy", "quick", "verdict"),
    [
        (3.3, 1.8, False, "contradicted"),
        (2.50, 2.52, False, "not established with 3 seeds"),
        (1.8, 3.3, True, "not judged"),
    ],
)
def test_verdicts_follow_the_interval(tmp_path: Path, po_entropy, ql_entropy, quick, verdict) -> None:
    finals = {agent: learned(po_entropy) for agent in ("a2c", "ppo", "trpo")}
    finals |= {agent: learned(ql_entropy) for agent in ("dqn", "qrdqn")}
    assert f"entropy gap **{verdict}**" in verdict_line(made_result(tmp_path, finals, quick=quick))


def test_the_oracle_baseline_splits_ties_evenly_and_a_greedy_cover_bounds_the_least_diverse_oracle() -> None:
    # user 0: actions 0 and 1 tie for best; user 1: action 2. The oracle's p(a) is (1/4, 1/4, 1/2).
    baselines = evaluation_baselines(np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]))
    assert baselines["random"] == pytest.approx(0.5)
    assert baselines["oracle"] == pytest.approx(1.0)
    assert baselines["oracle_entropy"] == pytest.approx(1.5 * math.log(2))  # 2 x (1/4) ln 4 + (1/2) ln 2
    assert baselines["oracle_tied"] == pytest.approx(0.5)
    assert baselines["oracle_entropy_cover"] == pytest.approx(math.log(2))  # user 0 -> action 0: p = (1/2, 0, 1/2)
    # best actions {0, 1}, {1, 2}, {0}: split evenly p = (1/2, 1/3, 1/6); the cover gives action 0 (best for users
    # 0 and 2, the first of the two actions best for two users) to users 0 and 2, then action 1 to user 1
    ties = evaluation_baselines(np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0], [1.0, 0.0, 0.0]]))
    assert ties["oracle_entropy"] == pytest.approx(-(0.5 * math.log(0.5) + math.log(1 / 3) / 3 + math.log(1 / 6) / 6))
    assert ties["oracle_entropy_cover"] == pytest.approx(-(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3)))
    assert ties["oracle_tied"] == pytest.approx(2 / 3)
    untied = evaluation_baselines(np.array([[0.2, 0.9], [0.7, 0.1], [0.0, 0.3]]))
    untied_entropy = -(1 / 3) * math.log(1 / 3) - (2 / 3) * math.log(2 / 3)
    assert untied["oracle_entropy"] == pytest.approx(untied_entropy)
    assert untied["oracle_entropy_cover"] == pytest.approx(untied_entropy)  # without ties there is one oracle
    assert untied["oracle_tied"] == 0.0


def test_table_intervals_are_cut_to_the_values_they_can_take(tmp_path: Path) -> None:
    # one seed of PPO stayed diverse, two collapsed: the t-interval of H(p) reaches below 0 and of the reward above
    # the oracle's 0.9; the table cuts both (the verdict's differences are not bounded and stay as they are)
    collapsed = [(0.89, 0.0), (0.89, 0.0), (0.5, 0.65)]
    finals = {"a2c": learned(1.8), "ppo": collapsed, "trpo": learned(2.0), "dqn": learned(3.3), "qrdqn": learned(3.1)}
    section = report_section(made_result(tmp_path, finals))
    rewards, entropies = np.array([r for r, _ in collapsed]), np.array([e for _, e in collapsed])
    half = stats.t.ppf(0.975, 2) / math.sqrt(3)
    reward_low = rewards.mean() - half * rewards.std(ddof=1)
    entropy_high = entropies.mean() + half * entropies.std(ddof=1)
    assert entropies.mean() - half * entropies.std(ddof=1) < 0 and rewards.mean() + half * rewards.std(ddof=1) > 0.9
    score_low = (reward_low - 0.1) / 0.8
    effective = np.exp(entropies)
    effective_high = effective.mean() + half * effective.std(ddof=1)
    assert (
        f"| PPO | policy optimization | {rewards.mean():.3f} [{reward_low:.3f}, 0.900] | "
        f"{(rewards.mean() - 0.1) / 0.8:.3f} [{score_low:.3f}, 1.000] | {entropies.mean():.3f} [0.000, {entropy_high:.3f}] | "
        f"{entropies.mean() / 2:.3f} [0.000, {entropy_high / 2:.3f}] | {effective.mean():.3f} [1.000, {effective_high:.3f}] |"
        in section
    )


def test_the_verdict_gives_the_oracles_marginal_entropy_and_no_negative_zero(tmp_path: Path) -> None:
    finals = {agent: learned(entropy) for agent, entropy in zip(AGENTS, (1.8, 1.9, 2.0, 3.3, 3.1), strict=True)}
    result = made_result(tmp_path, finals)
    result.baselines.update(random=-1e-17, oracle=0.9, oracle_entropy=2.25, oracle_tied=0.0)  # random's mean: 0
    line, section = verdict_line(result), report_section(result)
    assert "Random policy 0.000, oracle 0.900 (its H(p) 2.250 nats)." in line
    assert (
        f"| random policy | - | 0.000 | 0.000 | {math.log(K):.3f} | {math.log(K):.3f} | {K:.3f} | 0.000 | - | - | - | - |"
        in section
    )
    assert f"| oracle | - | 0.900 | 1.000 | 2.250 | - | {math.exp(2.25):.3f} | - | - | - | - | - |" in section
    result.baselines.update(oracle_tied=0.25, oracle_entropy_cover=1.125)
    line, section = verdict_line(result), report_section(result)
    assert (
        "oracle 0.900 (its H(p) 1.125-2.250 nats across tie-breaks; 25.0 % of users have several best actions)" in line
    )
    assert "25.0 % of users have such ties" in section and "the most users still unserved, has 1.125 nats" in section
    assert "-0.000" not in line + section


def test_the_exact_q_baseline_is_the_softmax_of_the_expected_rewards(tmp_path: Path) -> None:
    expected = np.array([[1.0, 0.0], [0.0, 0.5], [0.02, 0.01]])
    baselines = evaluation_baselines(expected, temperature=0.1)
    # by hand: softmax over two actions is a logistic function of the difference over the temperature
    first = 1 / (1 + math.exp(-10)), 1 / (1 + math.exp(-5)), 1 / (1 + math.exp(-0.1))
    policy = np.array([[first[0], 1 - first[0]], [1 - first[1], first[1]], [first[2], 1 - first[2]]])
    assert baselines["exact_q"] == pytest.approx((policy * expected).sum(axis=1).mean(), rel=1e-12)
    assert baselines["exact_q_entropy"] == pytest.approx(stats.entropy(policy.mean(axis=0)), rel=1e-12)
    # rewards of a few hundredths, as Ads-v0's clicks: read at temperature 0.1 the exact Q is nearly uniform
    assert policy[2, 0] == pytest.approx(0.525, abs=1e-3)
    # exposure: the oracle serves actions 0, 1, 0; exact Q's marginal is the mean of its rows
    p_oracle, p_q = np.array([2 / 3, 1 / 3]), policy.mean(axis=0)
    assert baselines["oracle_gini"] == pytest.approx(abs(p_oracle[0] - p_oracle[1]) / 2, abs=1e-15)
    assert baselines["oracle_long_tail_share"] == pytest.approx(1 / 3) and baselines["oracle_aggregate_diversity"] == 2
    assert baselines["exact_q_gini"] == pytest.approx(abs(p_q[0] - p_q[1]) / 2, abs=1e-12)
    assert baselines["exact_q_long_tail_share"] == pytest.approx(p_q.min(), abs=1e-12)
    assert baselines["exact_q_aggregate_diversity"] == 2 and baselines["uniform_long_tail_share"] == 0.5
    cooler = evaluation_baselines(expected, temperature=0.001)
    assert cooler["exact_q"] == pytest.approx((1.0 + 0.5 + 0.02) / 3, abs=1e-4) and cooler["temperature"] == 0.001

    finals = {agent: learned(entropy) for agent, entropy in zip(AGENTS, (1.8, 1.9, 2.0, 3.3, 3.1), strict=True)}
    result = made_result(tmp_path, finals)
    result.baselines.update(exact_q=0.5, exact_q_entropy=2.0, temperature=0.1)
    section = report_section(result)
    assert (
        f"| exact Q, softmax(Q / 0.1) | Q-learning's reference | 0.500 | 0.500 | 2.000 | - | {math.exp(2):.3f} | "
        "- | - | - | - | - |" in section
    )
    result.baselines.update(exact_q_gini=0.25, exact_q_long_tail_share=0.125, exact_q_aggregate_diversity=4.0)
    result.baselines.update(oracle_gini=0.5, oracle_long_tail_share=0.0625, oracle_aggregate_diversity=2.0)
    result.baselines.update(uniform_long_tail_share=0.8)
    section = report_section(result)
    assert "| Q-learning's reference | 0.500 | 0.500 | 2.000 | - | 7.389 | 0.250 | 0.125 | 4.000 | - | - |" in section
    assert "| oracle | - | 0.900 | 1.000 | - | - | - | 0.500 | 0.062 | 2.000 | - | - |" in section
    assert (
        f"| random policy | - | 0.100 | 0.000 | {math.log(K):.3f} | {math.log(K):.3f} | {K:.3f} | 0.000 | 0.800 | - | - | - |"
        in section
    )
    assert "A reference, not a bound" in section


def test_the_rule_alone_judges_from_intervals_without_the_markdown(tmp_path: Path) -> None:
    """sb3_entropy.study.analysis: the families' members, the agents left out, the contrast and the pairs, by hand."""
    finals = {agent: learned(1.8) for agent in ("a2c", "ppo")} | {"trpo": [(0.1, 3.0)] * 3}  # TRPO at random
    finals |= {"dqn": learned(3.3), "qrdqn": learned(3.0)}
    result = made_result(tmp_path, finals)
    gap = entropy_gap(result, {"a2c": True, "ppo": True, "trpo": False, "dqn": True, "qrdqn": True})
    assert gap.members == {"policy optimization": ["a2c", "ppo"], "Q-learning": ["dqn", "qrdqn"]}
    assert gap.everyone == {"policy optimization": ["a2c", "ppo", "trpo"], "Q-learning": ["dqn", "qrdqn"]}
    assert gap.left_out == ["trpo"] and gap.verdict == "reproduced"
    po = [np.array(spread(1.8)), np.array(spread(1.8))]
    ql = [np.array(spread(3.3)), np.array(spread(3.0))]
    # the contrast: mean of the PO means minus mean of the QL means, Welch-Satterthwaite over the four samples
    variance = sum(np.var(x, ddof=1) / 3 / 4 for x in po + ql)
    dof = variance**2 / sum((np.var(x, ddof=1) / 3 / 4) ** 2 / 2 for x in po + ql)
    half = stats.t.ppf(0.975, dof) * math.sqrt(variance)
    assert gap.contrast.estimate == pytest.approx(1.8 - 3.15)
    assert (gap.contrast.low, gap.contrast.high) == pytest.approx((1.8 - 3.15 - half, 1.8 - 3.15 + half))
    assert [(p, q) for p, q, _ in gap.pairs] == [("a2c", "dqn"), ("a2c", "qrdqn"), ("ppo", "dqn"), ("ppo", "qrdqn")]
    failed = entropy_gap(result, {"a2c": None, "ppo": None, "trpo": None, "dqn": True, "qrdqn": True})
    assert failed.contrast is None and failed.outcome.startswith("not applicable: it needs finished runs of a policy")


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 80),
    k=st.integers(2, 12),
    levels=st.integers(2, 6),
    cuts=st.lists(st.integers(1, 79), max_size=5),
    seed=st.integers(0, 2**32 - 1),
)
def test_the_baselines_of_chunks_of_users_are_those_of_the_whole_table(n, k, levels, cuts, seed) -> None:
    """Rewards on a few levels, so that users have tied best actions: every baseline, the greedy cover's included,
    is the same from chunks as from the one table (to 1e-12)."""
    expected = np.random.default_rng(seed).integers(0, levels, (n, k)) / (levels - 1)
    edges = sorted({0, n, *(cut for cut in cuts if cut < n)})
    whole = evaluation_baselines(expected)
    chunked = evaluation_baselines(expected[a:b] for a, b in itertools.pairwise(edges))
    assert set(chunked) == set(whole)
    for key, value in whole.items():
        assert chunked[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key


def test_results_csv_the_final_values_and_the_baselines_rows_by_their_rules(tmp_path: Path) -> None:
    """results.csv holds RESULT_COLUMNS of every row (p(a) and other keys left out) in a file read back as written;
    a stored metric has its interval without baselines, a derived one (the score) none; each summary names its
    agent; the baselines' rows include the exact-Q learner unless told not to."""
    import csv

    from sb3_entropy.metrics import MARGINAL_ENTROPY, SCORE
    from sb3_entropy.study.analysis import (
        RESULT_COLUMNS,
        baseline_values,
        final_interval,
        summarize,
        write_results_csv,
    )  # fmt: skip

    result = made_result(tmp_path, {"a2c": [(0.5, 1.0), (0.6, 1.2)]})
    for row in result.rows:
        row.update(experiment="five", agent="a2c", algo="a2c", seed=0)
    path = write_results_csv(result, tmp_path / "results.csv")
    assert path.read_bytes().count(b"\r\n") == 3  # the csv module's line ends, untranslated
    with open(path, newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert list(rows[0]) == list(RESULT_COLUMNS) and float(rows[1]["entropy/marginal"]) == 1.2
    result.baselines = {}
    assert final_interval(result, "a2c", MARGINAL_ENTROPY).estimate == pytest.approx(1.1)
    assert final_interval(result, "a2c", SCORE) is None
    assert summarize(result, "a2c").agent == "a2c"
    baselines = {"random": 0.1, "oracle": 0.9, "oracle_entropy": 1.0, "oracle_tied": 0.0, "exact_q": 0.5,
                 "exact_q_entropy": 2.0, "temperature": 0.1, "uniform_long_tail_share": 0.8}  # fmt: skip
    baselines |= {f"{who}_{name}": 0.5 for who in ("oracle", "exact_q")
                  for name in ("gini", "long_tail_share", "aggregate_diversity")}  # fmt: skip
    assert list(baseline_values(baselines, K)) == ["random policy", "oracle", "exact Q, softmax(Q / 0.1)"]
    assert list(baseline_values(baselines, K, exact_q=False)) == ["random policy", "oracle"]
