"""Action probabilities pi(a|s) of any Stable-Baselines3 model with a discrete action space."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy

from personalization_gym.checks import check_choice, check_number

__all__ = ["Q_POLICIES", "action_probs", "distinct_rows", "q_values", "softmax_policy"]

Q_POLICIES = ("softmax", "epsilon_greedy")
DEFAULT_CHUNK = 2048

ProbsFn = Callable[[Any, np.ndarray], np.ndarray]


def _is_q_model(model: Any) -> bool:
    return hasattr(model, "q_net") or hasattr(model, "quantile_net")


def _check_discrete(model: Any) -> int:
    action_space = getattr(model, "action_space", None)
    if not isinstance(action_space, spaces.Discrete):
        raise TypeError(
            f"action probabilities need a Discrete action space, got {action_space!r} "
            f"(from {type(model).__name__}); supported: actor-critic models (A2C, PPO, TRPO, MaskablePPO, "
            "RecurrentPPO), ARS, DQN and QR-DQN, each with a Discrete action space; for anything else pass "
            "probs_fn(model, obs)"
        )
    return int(action_space.n)


def _forward_in_chunks(model: Any, obs: np.ndarray, forward: Callable[[Any], torch.Tensor], chunk: int) -> np.ndarray:
    """Run ``forward`` on the policy's tensors of ``obs`` in chunks, without gradients, on the model's device;
    the outputs as one float64 array (written in place, chunk by chunk: float32 to float64 is exact)."""
    output = np.empty((0,))
    with torch.no_grad():
        for start in range(0, len(obs), chunk):
            batch = obs[start : start + chunk]
            # torch warns on read-only arrays (eval sets are read-only): hand it a writable copy of the chunk
            tensor, _ = model.policy.obs_to_tensor(batch if batch.flags.writeable else batch.copy())
            values = forward(tensor)
            if start == 0:
                output = np.empty((len(obs), *values.shape[1:]), dtype=np.float64)
            torch.from_numpy(output[start : start + len(values)]).copy_(values)  # from the device, on every core
    return output


def _mean_over_quantiles(network: Any, obs: torch.Tensor) -> torch.Tensor:
    """A QR-DQN's Q-values, the mean over its quantiles, through one averaged output layer.

    The mean is linear, so averaging the last layer's rows of each action over the quantiles gives the same
    values as averaging the ``n_quantiles x K`` outputs, with a K-wide layer instead (200 times less work at
    sb3-contrib's default of 200 quantiles). Networks whose last layer is not a Linear are averaged as they are.
    """
    layers = list(network.quantile_net)
    n_quantiles, n_actions = network.n_quantiles, int(network.action_space.n)
    last = layers[-1]
    if not isinstance(last, torch.nn.Linear):
        return network(obs).double().mean(dim=1)
    hidden = network.extract_features(obs, network.features_extractor)
    for layer in layers[:-1]:
        hidden = layer(hidden)
    weight = last.weight.view(n_quantiles, n_actions, -1).mean(dim=0)
    bias = last.bias.view(n_quantiles, n_actions).mean(dim=0) if last.bias is not None else None
    return torch.nn.functional.linear(hidden, weight, bias).double()


def q_values(model: Any, obs: np.ndarray, chunk: int = DEFAULT_CHUNK) -> np.ndarray:
    """``(n, K)`` Q-values of a DQN (its q_net) or the mean over quantiles of a QR-DQN."""
    if hasattr(model, "quantile_net"):
        return _forward_in_chunks(model, obs, lambda t: _mean_over_quantiles(model.quantile_net, t), chunk)
    if hasattr(model, "q_net"):
        return _forward_in_chunks(model, obs, model.q_net, chunk)
    raise TypeError(f"{type(model).__name__} has no Q-network (q_net or quantile_net)")


def distinct_rows(obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct states of ``obs`` in the order they first appear, and for each state the row it is in them.

    ``distinct[index]`` equals ``obs`` exactly: states are compared byte for byte (so ``0.0`` and ``-0.0``, or
    two NaNs of different payloads, stay apart), and a policy computed on the distinct states and expanded with
    ``index`` is the one computed on every state, since each state's outputs depend on that state alone. An
    evaluation set with repeated users (Music-v0's 10,000 hold 3,193 distinct contexts) costs a third of the work.
    """
    obs = np.asarray(obs)
    if obs.ndim < 1:
        raise ValueError(f"obs must be a batch of states of shape (n, ...), got a scalar {obs!r}")
    rows = np.ascontiguousarray(obs.reshape(len(obs), -1))
    keys = rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel()
    _, first, sorted_index = np.unique(keys, return_index=True, return_inverse=True)
    by_appearance = np.argsort(first, kind="stable")  # distinct rows in order of first appearance
    rank = np.empty_like(by_appearance)
    rank[by_appearance] = np.arange(len(by_appearance))
    return obs[first[by_appearance]], rank[sorted_index.ravel()]


def softmax_policy(values: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(values / temperature)`` of each row: how a Q-learner's policy is read (the paper's, at 0.1)."""
    scaled = values / temperature
    scaled -= scaled.max(axis=1, keepdims=True)
    np.exp(scaled, out=scaled)
    scaled /= scaled.sum(axis=1, keepdims=True)
    return scaled


def action_probs(
    model: Any,
    obs: np.ndarray,
    temperature: float = 0.1,
    q_policy: str = "softmax",
    probs_fn: ProbsFn | None = None,
    chunk: int = DEFAULT_CHUNK,
) -> np.ndarray:
    """``(n, K)`` probabilities ``pi(a|s)`` of ``model`` on a batch of observations ``obs`` (float64 rows summing to 1).

    - Actor-critic models (A2C, PPO, sb3-contrib's TRPO, MaskablePPO without masks, ...): the probabilities of
      the policy's Categorical distribution.
    - DQN and sb3-contrib's QR-DQN (mean over quantiles): ``q_policy="softmax"`` (default) gives
      ``softmax(Q / temperature)``, temperature 0.1 as in the paper; ``q_policy="epsilon_greedy"`` gives the
      behaviour policy ``(1 - eps) greedy + eps uniform`` with the model's current ``exploration_rate``
      (greedy: the first action of largest Q, as ``model.predict``).
    - sb3-contrib's RecurrentPPO: every state starts a fresh episode (zero LSTM state), as every state of a
      personalization task does, since each episode is one step.
    - sb3-contrib's ARS: its policy is deterministic, so all the probability is on the action it takes.
    - Anything else: pass ``probs_fn(model, obs) -> (n, K)``.

    Work is done under ``torch.no_grad()``, on the model's device, ``chunk`` observations at a time.
    """
    if probs_fn is not None:
        return _checked(np.asarray(probs_fn(model, obs), dtype=np.float64), len(obs), None, "probs_fn")
    n_actions = _check_discrete(model)
    if not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk must be an integer >= 1, got {chunk!r}")
    obs = np.asarray(obs)
    expected_shape = model.observation_space.shape
    if obs.shape[1:] != expected_shape:
        raise ValueError(
            f"obs must be a batch of observations of shape (n, {', '.join(map(str, expected_shape))}) to match the "
            f"model's observation space, got an array of shape {obs.shape}"
        )
    if _is_q_model(model):
        check_choice("q_policy", q_policy, Q_POLICIES)
        values = q_values(model, obs, chunk)
        if q_policy == "softmax":
            probs = softmax_policy(values, check_number("temperature", temperature, above=0))
        else:
            epsilon = float(model.exploration_rate)
            probs = np.full(values.shape, epsilon / n_actions)
            probs[np.arange(len(values)), values.argmax(axis=1)] += 1.0 - epsilon
        return _checked(probs, len(obs), n_actions, type(model).__name__)
    policy = model.policy
    if hasattr(policy, "lstm_hidden_state_shape"):  # RecurrentPPO
        probs = _forward_in_chunks(model, obs, lambda t: _fresh_episode_probs(policy, t), chunk)
    elif _is_ars_policy(policy):
        probs = _forward_in_chunks(model, obs, lambda t: _one_hot(policy(t), n_actions), chunk)
    elif _builds_categorical_from_logits(policy):
        probs = _forward_in_chunks(model, obs, lambda t: _probs_from_logits(policy, t), chunk)
    elif hasattr(policy, "get_distribution"):
        probs = _forward_in_chunks(model, obs, lambda t: policy.get_distribution(t).distribution.probs, chunk)
    else:
        raise TypeError(
            f"cannot read action probabilities from {type(model).__name__}: supported are actor-critic models "
            "(A2C, PPO, TRPO, MaskablePPO, RecurrentPPO), ARS and Q-learning models (DQN, QR-DQN); pass "
            "probs_fn(model, obs) otherwise"
        )
    return _checked(probs, len(obs), n_actions, type(model).__name__)


def _builds_categorical_from_logits(policy: Any) -> bool:
    """Whether ``policy`` makes its distribution as SB3's ActorCriticPolicy does (A2C, PPO, TRPO, and with
    sb3_entropy's regularisers): a Categorical over ``action_net``'s logits of the actor's features."""
    from stable_baselines3.common.distributions import CategoricalDistribution
    from stable_baselines3.common.policies import ActorCriticPolicy

    from sb3_entropy.policies import MarginalEntropyMixin  # its override returns SB3's distribution unchanged

    return (
        isinstance(policy, ActorCriticPolicy)
        and type(policy.action_dist) is CategoricalDistribution
        and type(policy).get_distribution is ActorCriticPolicy.get_distribution
        and type(policy)._get_action_dist_from_latent
        in (ActorCriticPolicy._get_action_dist_from_latent, MarginalEntropyMixin._get_action_dist_from_latent)
    )


def _probs_from_logits(policy: Any, obs: torch.Tensor) -> torch.Tensor:
    """The probabilities ``policy.get_distribution(obs).distribution.probs`` holds, bit for bit, computed as torch's
    Categorical computes them (the logits less their logsumexp, then a softmax) without building the distribution
    and checking its arguments: a sixth of an evaluation's forward pass (docs/performance.md)."""
    features = BasePolicy.extract_features(policy, obs, policy.pi_features_extractor)  # as get_distribution's super()
    logits = policy.action_net(policy.mlp_extractor.forward_actor(features))
    return torch.softmax(logits.sub_(logits.logsumexp(dim=-1, keepdim=True)), dim=-1)  # in place: one table less


def _fresh_episode_probs(policy: Any, obs: torch.Tensor) -> torch.Tensor:
    """A recurrent policy's probabilities with every state the start of a fresh episode (zero LSTM state), as
    every state of a personalization task is: each episode is one step."""
    layers, _, size = policy.lstm_hidden_state_shape
    zeros = torch.zeros(layers, len(obs), size, device=obs.device)
    starts = torch.ones(len(obs), device=obs.device)
    distribution, _ = policy.get_distribution(obs, (zeros, zeros), starts)
    return distribution.distribution.probs


def _is_ars_policy(policy: Any) -> bool:
    try:
        from sb3_contrib.ars.policies import ARSPolicy
    except ImportError:  # sb3-contrib is optional
        return False
    return isinstance(policy, ARSPolicy)


def _one_hot(actions: torch.Tensor, n_actions: int) -> torch.Tensor:
    """ARS's policy is deterministic: all the probability on the action it takes."""
    return torch.nn.functional.one_hot(actions.long().reshape(-1), n_actions)


def _checked(probs: np.ndarray, n: int, n_actions: int | None, source: str) -> np.ndarray:
    if probs.ndim != 2 or len(probs) != n or (n_actions is not None and probs.shape[1] != n_actions):
        raise ValueError(f"{source} gave probabilities of shape {probs.shape}, expected ({n}, {n_actions or 'K'})")
    sums = probs.sum(axis=1)  # a NaN or an infinity anywhere in a row makes its sum one too
    not_finite = int((~np.isfinite(sums)).sum())
    if not_finite:
        why = (
            "probs_fn must return finite numbers"
            if source == "probs_fn"
            else "the network's outputs are no longer finite numbers, so its training most likely diverged (a "
            "smaller learning_rate, or a max_grad_norm, usually helps)"
        )
        raise ValueError(
            f"{source} gave action probabilities that are NaN or infinite in {not_finite} of {n} states: {why}"
        )
    # float32 probabilities: a softmax's sum of K terms may be off by up to K rounding steps (2.8e-5 at K = 59,047)
    tolerance = 2e-5 + probs.shape[1] * float(np.finfo(np.float32).eps)
    if source == "probs_fn" and n and probs.min() < 0:  # a model's softmax cannot be negative; a function's can
        row = int(np.flatnonzero((probs < 0).any(axis=1))[0])
        raise ValueError(f"probs_fn gave negative probabilities, first in row {row}: {probs[row].min()}")
    if n and not np.allclose(sums, 1.0, rtol=0, atol=tolerance):
        raise ValueError(f"{source} gave rows that do not sum to 1 (sums from {sums.min()} to {sums.max()}, allowed "
                         f"1 +- {tolerance:.2g} for {probs.shape[1]} actions)")  # fmt: skip
    return probs
