"""What one gradient step does to a policy's outputs: why policy gradients collapse and Q-learning does not.

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
"""

from __future__ import annotations

import itertools
import warnings
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, jacrev, jvp, vjp

__all__ = [
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
    "tangent_kernel",
]


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
