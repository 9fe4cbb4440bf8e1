"""The update rules at work: plain SGD policy gradient and Q-learning on a task, from the same start.

Each run trains one network on batches of users drawn from a personalization task, with nothing but the
update rule of ``sb3_entropy.update_rule``: a policy gradient (logits ``z``, loss
``-(1/N) sum_n A_n log pi(a_n|s_n)`` with ``A_n`` the reward) or Q-learning (Q-values ``q``, mean Huber loss
against the reward: one-step episodes, no bootstrap). Both act with the policy they are judged by, the
policy-gradient agent with ``softmax(z)``, the Q-learner with ``softmax(q / temperature)`` (the paper's
convention, temperature 0.1). Every ``log_every`` updates, and after the last, a run records on the task's
evaluation set:

* ``untaken_share``: the share of the update's change of the outputs, summed in absolute value over the
  evaluation states and actions, that landed on actions nobody in the batch took. A linear Q-network moves
  only the taken actions (share 0); a policy gradient moves every action, in proportion to its probability.
* ``marginal_entropy``: H(p) in nats of p(a), the mean over evaluation users of the policy.
* ``expected_reward``: the policy's exact expected reward on the evaluation set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from personalization_gym.checks import check_choice, check_integer, check_number
from personalization_gym.core import BanditEnv
from sb3_entropy.metrics import entropy, marginal
from sb3_entropy.study.plots import _pyplot
from sb3_entropy.study.stats import mean_interval, t_band
from sb3_entropy.update_rule import mlp

__all__ = ["RULES", "UpdateRuleRun", "run_update_rule", "summary_rows", "update_rule_figure"]

RULES = ("policy_gradient", "q_learning")


@dataclass
class UpdateRuleRun:
    """What one run recorded: a row per logged update (``updates[i]`` updates done before row ``i``)."""

    rule: str
    hidden: list[int]
    lr: float
    seed: int
    updates: list[int]
    untaken_share: list[float]
    marginal_entropy: list[float]
    expected_reward: list[float]


def _policy(outputs: torch.Tensor, rule: str, temperature: float) -> torch.Tensor:
    return torch.softmax(outputs if rule == "policy_gradient" else outputs / temperature, dim=1)


def _loss(outputs: torch.Tensor, actions: torch.Tensor, rewards: torch.Tensor, rule: str) -> torch.Tensor:
    if rule == "policy_gradient":
        return -(rewards * torch.log_softmax(outputs, dim=1).gather(1, actions[:, None])[:, 0]).mean()
    return torch.nn.functional.smooth_l1_loss(outputs.gather(1, actions[:, None])[:, 0], rewards)


def run_update_rule(
    task: BanditEnv,
    rule: str,
    hidden: list[int],
    lr: float,
    updates: int,
    seed: int,
    batch_size: int = 32,
    log_every: int = 10,
    temperature: float = 0.1,
) -> UpdateRuleRun:
    """Train a fresh network with ``rule`` for ``updates`` SGD steps of ``batch_size`` users.

    ``seed`` fixes the initial network (the same for both rules and a given ``hidden``) and the users and
    actions drawn, each from its own generator.
    """
    check_choice("rule", rule, RULES)
    for name, value in (("updates", updates), ("batch_size", batch_size), ("log_every", log_every)):
        check_integer(name, value, 1)
    check_number("lr", lr, above=0)
    n_inputs, n_actions = int(np.prod(task.observation_space.shape)), int(task.action_space.n)
    network = mlp(n_inputs, list(hidden), n_actions, torch.Generator().manual_seed(seed))
    optimizer = torch.optim.SGD(network.parameters(), lr=lr)
    users = np.random.default_rng([seed, 1])  # the stream of users and actions, apart from the initialisation
    eval_set = task.eval_set()
    eval_states = torch.tensor(eval_set.obs.reshape(len(eval_set.obs), -1), dtype=torch.float64)
    eval_rewards = np.asarray(eval_set.expected)
    run = UpdateRuleRun(rule, list(hidden), lr, seed, [], [], [], [])

    def logged(done: int) -> bool:
        return done % log_every == 0 or done == updates

    with torch.no_grad():
        before = network(eval_states)
    _record(run, 0, before, eval_rewards, temperature)
    for done in range(1, updates + 1):
        batch = task.sample(batch_size, users)
        states = torch.tensor(batch.obs.reshape(batch_size, -1), dtype=torch.float64)
        outputs = network(states)
        actions = _draw_actions(_policy(outputs.detach(), rule, temperature).numpy(), users)
        rewards = torch.tensor(batch.expected[np.arange(batch_size), actions])
        optimizer.zero_grad()
        _loss(outputs, torch.tensor(actions), rewards, rule).backward()
        optimizer.step()
        if logged(done):
            with torch.no_grad():
                after = network(eval_states)
            _record(run, done, after, eval_rewards, temperature, after - before, actions)
            before = after
        elif logged(done + 1):
            with torch.no_grad():
                before = network(eval_states)  # the outputs just before the next logged update
    return run


def _draw_actions(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One action per row of ``probs``, drawn by inverting each row's cumulative sum with one uniform draw."""
    cumulative = probs.cumsum(axis=1)
    drawn = (cumulative < rng.random(len(probs))[:, None] * cumulative[:, -1:]).sum(axis=1)
    return np.minimum(drawn, probs.shape[1] - 1)


def _record(
    run: UpdateRuleRun,
    done: int,
    outputs: torch.Tensor,
    eval_rewards: np.ndarray,
    temperature: float,
    change: torch.Tensor | None = None,
    taken: np.ndarray | None = None,
) -> None:
    """Append the evaluation after ``done`` updates to ``run``: H(p), the expected reward and, from the change of
    the outputs since the last record, the share of it that fell on actions the batch did not take."""
    probs = _policy(outputs, run.rule, temperature).numpy()
    run.updates.append(done)
    run.marginal_entropy.append(float(entropy(marginal(probs))))
    run.expected_reward.append(float((probs * eval_rewards).sum(axis=1).mean()))
    if change is None:
        run.untaken_share.append(float("nan"))
        return
    magnitude = change.abs().sum(dim=0).numpy()  # per action, over the evaluation states
    untaken = np.ones(len(magnitude), dtype=bool)
    untaken[taken] = False
    run.untaken_share.append(float(magnitude[untaken].sum() / magnitude.sum()))


# --------------------------------------------------------------------------------------------------
# Summaries of many runs: a table and a figure

RULE_LABELS = {"policy_gradient": "policy gradient", "q_learning": "Q-learning"}
RULE_COLORS = {"policy_gradient": "tab:blue", "q_learning": "tab:green"}


def _runs_of(runs: list[UpdateRuleRun], rule: str, hidden: list[int]) -> list[UpdateRuleRun]:
    return [run for run in runs if run.rule == rule and run.hidden == list(hidden)]


def summary_rows(runs: list[UpdateRuleRun], networks: dict[str, list[int]]) -> list[dict[str, object]]:
    """Per network and rule, over seeds (mean and 95 % Student-t interval): the share of the change on untaken
    actions (mean over the logged updates of a run), and the final marginal entropy and expected reward."""

    rows = []
    for name, hidden in networks.items():
        for rule in RULES:
            chosen = _runs_of(runs, rule, hidden)
            if not chosen:
                continue
            rows.append({
                "network": name, "rule": rule, "lr": chosen[0].lr, "seeds": len(chosen),
                "untaken_share": mean_interval(np.array([np.mean(run.untaken_share[1:]) for run in chosen])),
                "marginal_entropy": mean_interval(np.array([run.marginal_entropy[-1] for run in chosen])),
                "expected_reward": mean_interval(np.array([run.expected_reward[-1] for run in chosen])),
            })  # fmt: skip
    return rows


def update_rule_figure(
    runs: list[UpdateRuleRun], networks: dict[str, list[int]], baselines: dict[str, float], title: str, path
) -> None:
    """A row per network: the share of each update's change on untaken actions, H(p), and the reward, against
    updates; one line per rule (mean over seeds, 95 % t-band)."""

    plt = _pyplot()

    figure, axes = plt.subplots(len(networks), 3, figsize=(15, 3.8 * len(networks)), squeeze=False, sharex=True)
    for row, (name, hidden) in enumerate(networks.items()):
        for rule in RULES:
            chosen = _runs_of(runs, rule, hidden)
            if not chosen:
                continue
            steps = chosen[0].updates
            for column, key in enumerate(("untaken_share", "marginal_entropy", "expected_reward")):
                values = np.array([getattr(run, key) for run in chosen])
                if key == "untaken_share":
                    values = 100 * values[:, 1:]  # no change before the first update
                    x = steps[1:]
                else:
                    x = steps
                mean, low, high = t_band(values)
                if key == "untaken_share":  # a share cannot leave [0, 100] %: neither does its band
                    low, high = np.clip(low, 0, 100), np.clip(high, 0, 100)
                ax = axes[row, column]
                ax.plot(x, mean, color=RULE_COLORS[rule], label=f"{RULE_LABELS[rule]} (lr {chosen[0].lr:g})")
                if len(chosen) > 1:
                    ax.fill_between(x, low, high, color=RULE_COLORS[rule], alpha=0.2)
        share_ax, entropy_ax, reward_ax = axes[row]
        share_ax.set_ylabel(f"{name}\nchange on untaken actions [%]")
        share_ax.set_ylim(bottom=0)
        entropy_ax.set_ylabel("marginal entropy H(p) [nats]")
        reward_ax.set_ylabel("expected reward")
        if "oracle" in baselines:
            reward_ax.axhline(baselines["oracle"], color="grey", linestyle="--", linewidth=1, label="oracle")
        if "random" in baselines:
            reward_ax.axhline(baselines["random"], color="grey", linestyle=":", linewidth=1, label="random policy")
        if "log_k" in baselines:
            entropy_ax.axhline(baselines["log_k"], color="grey", linestyle=":", linewidth=1, label="log K")
        for ax in axes[row]:
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    for ax in axes[-1]:
        ax.set_xlabel("SGD updates (batches of 32 users)")
    axes[0, 0].set_title(
        "share of each update's change of the outputs\nthat lands on actions nobody in the batch took", fontsize=10
    )
    axes[0, 1].set_title("diversity across users", fontsize=10)
    axes[0, 2].set_title("reward on the evaluation users", fontsize=10)
    seeds = len({run.seed for run in runs})
    figure.suptitle(f"{title}: mean and 95 % t-band over {seeds} seed{'s' if seeds != 1 else ''}", fontsize=11)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
