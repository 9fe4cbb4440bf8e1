"""What one gradient step does to a policy's outputs: why policy gradients collapse and Q-learning does not, as
checked code, and the update rules at work on a task.

The paper explains its finding with one step of plain gradient descent (learning rate ``lr``) on a batch
``{(s_n, a_n, r_n)}``, ``n = 1..N``. With a linear network whose bias is a constant input, so that its
outputs are ``f(s) = W s + b`` and the kernel is ``k(s_n, s) = <s_n, s> + 1``:

* policy gradient, logits ``z = f``, loss ``-(1/N) sum_n A_n log pi(a_n|s_n)`` (``A_n`` the reward or the
  advantage)::

      dz_b(s) = (lr/N) sum_n A_n k(s_n, s) (1[b = a_n] - pi(b|s_n))

  Every action's logit moves: an action not taken moves by ``-(lr/N) A_n k(s_n, s) pi(b|s_n)``, in
  proportion to its current probability, so rewarded actions gain at the expense of the likely ones and
  the policy concentrates on what it already prefers, for every state alike.

* Q-learning, ``q = f``, Huber loss with target ``r_n`` (one-step episodes: no bootstrap), as SB3's DQN::

      dq_b(s) = (lr/N) sum_n clip(r_n - q_{a_n}(s_n), -1, 1) k(s_n, s) 1[b = a_n]

  Only the taken action moves.

For any network, the same holds to first order in ``lr`` with ``k(s_n, s) I`` replaced by the network's
tangent kernel ``Theta(s, s_n) = J(s) J(s_n)^T`` (a K x K block per pair of states, ``J`` the Jacobian of the
outputs with respect to the parameters): ``df(s) = -lr sum_n Theta(s, s_n) g_n`` with ``g_n`` the gradient of
the loss with respect to ``f(s_n)``. For a linear network that is exact. ``predicted_change`` computes it
with ``torch.func`` as ``J(s) v``, ``v = -lr J(B)^T g`` (one vector-Jacobian and one Jacobian-vector
product, never the kernel itself); ``tangent_kernel`` gives the kernel, for small networks and checks.

The experiment (:func:`run_update_rule`): plain SGD policy gradient and Q-learning on a task, from the same start.
Each run trains one network on batches of users drawn from a personalization task, with nothing but the
update rule above: a policy gradient (logits ``z``, loss
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

import itertools
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, jacrev, jvp, vjp

from personalization_gym.checks import check_choice, check_integer, check_number
from personalization_gym.core import BanditEnv
from sb3_entropy.metrics import entropy, marginal
from sb3_entropy.study.analysis import mean_interval, t_band
from sb3_entropy.study.plots import _pyplot

__all__ = [
    "RULES",
    "UpdateRuleRun",
    "linear_policy_gradient_change",
    "linear_q_learning_change",
    "logits_network",
    "mlp",
    "policy_gradient_change",
    "policy_gradient_output_grads",
    "predicted_change",
    "q_learning_change",
    "q_learning_output_grads",
    "q_network",
    "run_update_rule",
    "summary_rows",
    "tangent_kernel",
    "update_rule_figure",
]


# ------------------------------------------------------------------------------------------------------------
# One gradient step
def _check_batch(batch_obs: torch.Tensor, actions: torch.Tensor, values: torch.Tensor, name: str) -> None:
    n = len(batch_obs)
    if actions.shape != (n,) or values.shape != (n,):
        raise ValueError(
            f"a batch of {n} states needs actions and {name} of shape ({n},), got {tuple(actions.shape)} and "
            f"{tuple(values.shape)}"
        )


def policy_gradient_output_grads(logits: torch.Tensor, actions: torch.Tensor, advantages: torch.Tensor) -> torch.Tensor:
    """``g_n``, the gradient of ``-(1/N) sum_n A_n log pi(a_n|s_n)`` with respect to the logits ``z(s_n)``."""
    _check_batch(logits, actions, advantages, "advantages")
    probs = torch.softmax(logits, dim=1)
    chosen = nn.functional.one_hot(actions.long(), logits.shape[1]).to(logits.dtype)
    return -(advantages.to(logits.dtype)[:, None] * (chosen - probs)) / len(logits)


def q_learning_output_grads(q: torch.Tensor, actions: torch.Tensor, rewards: torch.Tensor) -> torch.Tensor:
    """``g_n``, the gradient of the mean Huber loss of ``q_{a_n}(s_n)`` against ``r_n`` with respect to ``q(s_n)``."""
    _check_batch(q, actions, rewards, "rewards")
    taken = q.gather(1, actions.long()[:, None])[:, 0]
    error = torch.clamp(taken - rewards.to(q.dtype), -1.0, 1.0)  # smooth_l1_loss's derivative, beta = 1
    return nn.functional.one_hot(actions.long(), q.shape[1]).to(q.dtype) * error[:, None] / len(q)


def predicted_change(
    network: nn.Module, batch_obs: torch.Tensor, output_grads: torch.Tensor, lr: float, states: torch.Tensor
) -> torch.Tensor:
    """First-order change of ``network``'s outputs on ``states`` after one SGD step of learning rate ``lr``.

    ``output_grads`` is ``g``, the loss's gradient with respect to the outputs on ``batch_obs`` (``(N, K)``).
    The step moves the parameters by ``-lr J(B)^T g``; the outputs on ``states`` then move by ``J(s)`` times
    that, ``-lr sum_n Theta(s, s_n) g_n``. Exact when the outputs are linear in the parameters.
    """
    params = {name: p.detach() for name, p in network.named_parameters()}

    def outputs(parameters: dict[str, torch.Tensor], inputs: torch.Tensor) -> torch.Tensor:
        return functional_call(network, parameters, (inputs,))

    _, pullback = vjp(lambda parameters: outputs(parameters, batch_obs), params)
    (gradient,) = pullback(output_grads.to(next(iter(params.values())).dtype))
    step = {name: -lr * value for name, value in gradient.items()}
    with warnings.catch_warnings():
        # torch's forward-mode AD loads its decompositions with torch.jit.script on first use, which torch itself
        # deprecates; nothing a caller can act on
        warnings.filterwarnings("ignore", message=r"`torch.jit.script` is deprecated", category=FutureWarning)
        _, change = jvp(lambda parameters: outputs(parameters, states), (params,), (step,))
    return change.detach()


def policy_gradient_change(
    network: nn.Module,
    batch_obs: torch.Tensor,
    actions: torch.Tensor,
    advantages: torch.Tensor,
    lr: float,
    states: torch.Tensor,
) -> torch.Tensor:
    """Predicted change of the logits on ``states`` after one policy-gradient SGD step on the batch."""
    with torch.no_grad():
        grads = policy_gradient_output_grads(network(batch_obs), actions, advantages)
    return predicted_change(network, batch_obs, grads, lr, states)


def q_learning_change(
    network: nn.Module,
    batch_obs: torch.Tensor,
    actions: torch.Tensor,
    rewards: torch.Tensor,
    lr: float,
    states: torch.Tensor,
) -> torch.Tensor:
    """Predicted change of the Q-values on ``states`` after one Huber-loss SGD step towards the rewards."""
    with torch.no_grad():
        grads = q_learning_output_grads(network(batch_obs), actions, rewards)
    return predicted_change(network, batch_obs, grads, lr, states)


def tangent_kernel(network: nn.Module, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """The neural tangent kernel ``Theta(s, s') = J(s) J(s')^T``: ``(len(first), len(second), K, K)``.

    Memory grows with (number of states) x K x (number of parameters): for small networks and checks.
    """
    params = {name: p.detach() for name, p in network.named_parameters()}

    def jacobian(inputs: torch.Tensor) -> torch.Tensor:
        per_parameter = jacrev(lambda parameters: functional_call(network, parameters, (inputs,)))(params)
        return torch.cat([j.reshape(*j.shape[:2], -1) for j in per_parameter.values()], dim=2)  # (n, K, P)

    return torch.einsum("mkp,nlp->mnkl", jacobian(first), jacobian(second))


def _linear_kernel(batch_obs: torch.Tensor, states: torch.Tensor, bias: bool) -> torch.Tensor:
    """``k(s_n, s) = <s_n, s> (+ 1 for the bias, a constant input)``: ``(len(states), N)``."""
    return states @ batch_obs.T + (1.0 if bias else 0.0)


def linear_policy_gradient_change(
    probs: torch.Tensor,
    batch_obs: torch.Tensor,
    actions: torch.Tensor,
    advantages: torch.Tensor,
    lr: float,
    states: torch.Tensor,
    bias: bool = True,
) -> torch.Tensor:
    """The closed form for a linear softmax policy:
    ``dz_b(s) = (lr/N) sum_n A_n k(s_n, s) (1[b=a_n] - pi(b|s_n))``.

    ``probs`` are ``pi(.|s_n)`` before the step, ``(N, K)``.
    """
    _check_batch(batch_obs, actions, advantages, "advantages")
    chosen = nn.functional.one_hot(actions.long(), probs.shape[1]).to(probs.dtype)
    direction = advantages.to(probs.dtype)[:, None] * (chosen - probs)  # (N, K)
    return lr / len(batch_obs) * _linear_kernel(batch_obs, states, bias) @ direction


def linear_q_learning_change(
    q: torch.Tensor,
    batch_obs: torch.Tensor,
    actions: torch.Tensor,
    rewards: torch.Tensor,
    lr: float,
    states: torch.Tensor,
    bias: bool = True,
) -> torch.Tensor:
    """The closed form for a linear Q-network:
    ``dq_b(s) = (lr/N) sum_n clip(r_n - q_{a_n}(s_n), -1, 1) k(s_n, s) 1[b=a_n]``.

    ``q`` are the Q-values ``q(s_n)`` before the step, ``(N, K)``.
    """
    _check_batch(batch_obs, actions, rewards, "rewards")
    taken = q.gather(1, actions.long()[:, None])[:, 0]
    error = torch.clamp(rewards.to(q.dtype) - taken, -1.0, 1.0)
    direction = nn.functional.one_hot(actions.long(), q.shape[1]).to(q.dtype) * error[:, None]
    return lr / len(batch_obs) * _linear_kernel(batch_obs, states, bias) @ direction


def mlp(
    n_inputs: int, hidden: list[int], n_outputs: int, generator: torch.Generator, dtype: torch.dtype = torch.float64
) -> nn.Sequential:
    """A tanh MLP (``hidden=[]``: a linear map with bias) initialised as torch's ``nn.Linear`` from ``generator``.

    Every weight and bias is ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``, torch's default, drawn from the given
    generator rather than the global one, so the same generator state gives the same network.
    """
    layers: list[nn.Module] = []
    sizes = [n_inputs, *hidden, n_outputs]
    for index, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        layer = nn.Linear(fan_in, fan_out, dtype=dtype)
        bound = fan_in**-0.5
        with torch.no_grad():
            layer.weight.uniform_(-bound, bound, generator=generator)
            layer.bias.uniform_(-bound, bound, generator=generator)
        layers.append(layer)
        if index < len(hidden):
            layers.append(nn.Tanh())
    return nn.Sequential(*layers)


class _Outputs(nn.Module):
    """A module from observations to one output head of an SB3 policy, sharing its parameters."""

    def __init__(self, layers: list[nn.Module]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            obs = layer(obs)
        return obs


class _ActorLatent(nn.Module):
    def __init__(self, mlp_extractor: nn.Module) -> None:
        super().__init__()
        self.mlp_extractor = mlp_extractor

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.mlp_extractor.forward_actor(features)


def logits_network(model: Any) -> nn.Module:
    """The action logits of an SB3 actor-critic model (A2C, PPO, ...) as a module of the observations.

    Its parameters are the policy's own (features extractor, actor layers, ``action_net``): the value head's
    parameters, which a policy-gradient step also moves, do not touch the logits.
    """
    policy = model.policy
    if not hasattr(policy, "action_net") or not hasattr(policy, "mlp_extractor"):
        raise TypeError(f"{type(model).__name__} has no actor-critic policy (action_net and mlp_extractor)")
    return _Outputs([policy.pi_features_extractor, _ActorLatent(policy.mlp_extractor), policy.action_net])


def q_network(model: Any) -> nn.Module:
    """The Q-values of an SB3 DQN as a module of the observations (its ``q_net``, features extractor included)."""
    if not hasattr(model, "q_net"):
        raise TypeError(f"{type(model).__name__} has no Q-network (q_net)")
    return model.q_net


# ------------------------------------------------------------------------------------------------------------
# The experiment
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
