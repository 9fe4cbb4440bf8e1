"""sb3_entropy.study.update_rule against real gradient steps: torch SGD, and stock SB3 A2C and DQN updates."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from stable_baselines3 import A2C, DQN
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.callbacks import BaseCallback
from torch import nn

from personalization_gym import MusicEnv
from sb3_entropy.study.update_rule import (
    linear_policy_gradient_change,
    linear_q_learning_change,
    logits_network,
    mlp,
    policy_gradient_change,
    policy_gradient_output_grads,
    q_learning_change,
    q_learning_output_grads,
    q_network,
    tangent_kernel,
)


@pytest.fixture(scope="module")
def music() -> MusicEnv:
    return MusicEnv(n_eval=500)


def network(hidden: list[int], seed: int = 0) -> nn.Module:
    return mlp(20, hidden, 50, torch.Generator().manual_seed(seed))


def music_batch(music: MusicEnv, net: nn.Module, seed: int = 0):
    """32 users, actions sampled from softmax(net), their rewards: as a policy-gradient agent collects them."""
    rng = np.random.default_rng(seed)
    batch = music.sample(32, rng)
    states = torch.tensor(batch.obs, dtype=torch.float64)
    with torch.no_grad():
        probs = torch.softmax(net(states), dim=1).numpy()
    actions = np.array([rng.choice(50, p=p / p.sum()) for p in probs])
    rewards = torch.tensor(batch.expected[np.arange(32), actions])
    return states, torch.tensor(actions), rewards


def sgd_step(net: nn.Module, loss_fn, lr: float, states: torch.Tensor) -> torch.Tensor:
    """The actual change of ``net``'s outputs on ``states`` after one torch.optim.SGD step (on a copy)."""
    stepped = copy.deepcopy(net)
    optimizer = torch.optim.SGD(stepped.parameters(), lr=lr)
    optimizer.zero_grad()
    loss_fn(stepped).backward()
    optimizer.step()
    with torch.no_grad():
        return stepped(states) - net(states)


def pg_loss(states, actions, advantages):
    return lambda net: -(advantages * torch.log_softmax(net(states), 1).gather(1, actions[:, None])[:, 0]).mean()


def q_loss(states, actions, rewards):
    return lambda net: nn.functional.smooth_l1_loss(net(states).gather(1, actions[:, None])[:, 0], rewards)


# --------------------------------------------------------------------------------------------------
# (1) A linear network and one SGD step: the formulas are exact


def test_linear_policy_gradient_step_matches_the_formula(music: MusicEnv) -> None:
    net = network([])
    states, actions, rewards = music_batch(music, net)
    evaluation = torch.tensor(music.eval_set().obs, dtype=torch.float64)
    lr = 0.5
    actual = sgd_step(net, pg_loss(states, actions, rewards), lr, evaluation)
    with torch.no_grad():
        probs = torch.softmax(net(states), dim=1)
    closed_form = linear_policy_gradient_change(probs, states, actions, rewards, lr, evaluation)
    through_the_network = policy_gradient_change(net, states, actions, rewards, lr, evaluation)
    scale = actual.abs().max().item()
    assert scale > 1e-3  # a real change, so that the comparisons below mean something
    torch.testing.assert_close(closed_form, actual, rtol=0, atol=1e-13 * max(scale, 1))
    torch.testing.assert_close(through_the_network, actual, rtol=0, atol=1e-13 * max(scale, 1))
    # every action's logit moved, the ones not taken by -(lr/N) A_n k pi(b|s_n): down for a rewarded sample
    untaken = sorted(set(range(50)) - set(actions.tolist()))
    assert (actual[:, untaken].abs() > 0).all()


def test_linear_q_learning_step_moves_only_the_taken_actions(music: MusicEnv) -> None:
    net = network([])
    states, actions, rewards = music_batch(music, net)
    evaluation = torch.tensor(music.eval_set().obs, dtype=torch.float64)
    lr = 0.5
    actual = sgd_step(net, q_loss(states, actions, rewards), lr, evaluation)
    with torch.no_grad():
        q = net(states)
    closed_form = linear_q_learning_change(q, states, actions, rewards, lr, evaluation)
    through_the_network = q_learning_change(net, states, actions, rewards, lr, evaluation)
    scale = actual.abs().max().item()
    assert scale > 1e-3
    torch.testing.assert_close(closed_form, actual, rtol=0, atol=1e-13 * max(scale, 1))
    torch.testing.assert_close(through_the_network, actual, rtol=0, atol=1e-13 * max(scale, 1))
    untaken = sorted(set(range(50)) - set(actions.tolist()))
    assert untaken and (actual[:, untaken] == 0).all()


def test_huber_gradient_is_clipped_beyond_one(music: MusicEnv) -> None:
    # targets 5 units away: the Huber loss's gradient saturates at 1, and the formula's clip says so
    net = network([])
    states, actions, rewards = music_batch(music, net)
    far = rewards + 5.0
    evaluation = states[:4]
    actual = sgd_step(net, q_loss(states, actions, far), 0.1, evaluation)
    with torch.no_grad():
        q = net(states)
    torch.testing.assert_close(linear_q_learning_change(q, states, actions, far, 0.1, evaluation), actual)
    grads = q_learning_output_grads(q, actions, far)
    assert torch.allclose(grads.sum(dim=1), torch.full((32,), -1.0 / 32, dtype=torch.float64))


def test_output_gradients_are_autograd_gradients(music: MusicEnv) -> None:
    net = network([16])
    states, actions, rewards = music_batch(music, net)
    outputs = net(states).detach().requires_grad_(True)
    (pg_grad,) = torch.autograd.grad(
        -(rewards * torch.log_softmax(outputs, 1).gather(1, actions[:, None])[:, 0]).mean(), outputs
    )
    torch.testing.assert_close(policy_gradient_output_grads(outputs.detach(), actions, rewards), pg_grad)
    (q_grad,) = torch.autograd.grad(
        nn.functional.smooth_l1_loss(outputs.gather(1, actions[:, None])[:, 0], rewards), outputs
    )
    torch.testing.assert_close(q_learning_output_grads(outputs.detach(), actions, rewards), q_grad)


# --------------------------------------------------------------------------------------------------
# (3) Any network: the tangent kernel, and a first-order prediction whose error is O(lr^2)


def test_tangent_kernel_of_a_linear_network_is_the_input_kernel(music: MusicEnv) -> None:
    net = network([])
    states, _, _ = music_batch(music, net)
    kernel = tangent_kernel(net, states[:5], states[:7])
    expected = (states[:5] @ states[:7].T + 1)[:, :, None, None] * torch.eye(50, dtype=torch.float64)
    torch.testing.assert_close(kernel, expected, rtol=0, atol=1e-12)


def test_prediction_is_minus_lr_times_the_kernel_applied_to_the_output_gradients(music: MusicEnv) -> None:
    net = network([8, 8])
    states, actions, rewards = music_batch(music, net)
    evaluation = states[:6]
    with torch.no_grad():
        grads = policy_gradient_output_grads(net(states), actions, rewards)
    kernel = tangent_kernel(net, evaluation, states)  # (6, 32, 50, 50)
    from_kernel = -0.3 * torch.einsum("mnkl,nl->mk", kernel, grads)
    torch.testing.assert_close(policy_gradient_change(net, states, actions, rewards, 0.3, evaluation), from_kernel)
    # and the kernel is not diagonal: shared layers move every output, taken action or not
    off_diagonal = kernel[:, :, ~torch.eye(50, dtype=torch.bool)].abs().max()
    assert off_diagonal > 1e-3


@pytest.mark.parametrize("rule", ["policy_gradient", "q_learning"])
def test_first_order_error_shrinks_fourfold_when_lr_halves(rule: str, music: MusicEnv) -> None:
    net = network([64, 64])
    states, actions, rewards = music_batch(music, net)
    evaluation = torch.tensor(music.eval_set().obs[:200], dtype=torch.float64)
    predict, loss = (policy_gradient_change, pg_loss) if rule == "policy_gradient" else (q_learning_change, q_loss)
    errors = []
    for lr in (0.4, 0.2, 0.1):
        actual = sgd_step(net, loss(states, actions, rewards), lr, evaluation)
        predicted = predict(net, states, actions, rewards, lr, evaluation)
        errors.append((actual - predicted).norm().item())
        assert errors[-1] < 0.1 * actual.norm().item()  # first order captures most of the change
    ratios = [errors[0] / errors[1], errors[1] / errors[2]]
    print(f"{rule}: errors {errors}, ratios {ratios}")
    assert all(3.5 < ratio < 4.5 for ratio in ratios), ratios


# --------------------------------------------------------------------------------------------------
# (2) Stock SB3 with a linear head (net_arch=[]) and SGD: one A2C update and one DQN update


class RecordingReplayBuffer(ReplayBuffer):
    """SB3's replay buffer, keeping the last batch it handed to the algorithm."""

    def sample(self, batch_size, env=None):
        self.last_batch = super().sample(batch_size, env)
        return self.last_batch


class BeforeTheUpdate(BaseCallback):
    """At the end of the rollout (after advantages, before the gradient step): copies of the policy and buffer."""

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        self.policy = copy.deepcopy(self.model.policy)
        buffer = getattr(self.model, "rollout_buffer", None)
        if buffer is not None:
            self.obs = torch.tensor(buffer.observations.reshape(-1, 20))
            self.actions = torch.tensor(buffer.actions.reshape(-1)).long()
            self.advantages = torch.tensor(buffer.advantages.reshape(-1))


def test_one_sb3_a2c_update_matches_the_policy_gradient_formula(music: MusicEnv) -> None:
    lr = 0.05
    model = A2C(
        "MlpPolicy", music, n_steps=32, learning_rate=lr, ent_coef=0.0, max_grad_norm=1e9, seed=0, device="cpu",
        policy_kwargs={"net_arch": [], "optimizer_class": torch.optim.SGD},
    )  # fmt: skip
    before = BeforeTheUpdate()
    model.learn(32, callback=before)  # one rollout of 32 steps, then one gradient step
    assert model._n_updates == 1
    evaluation = torch.tensor(music.eval_set().obs)
    with torch.no_grad():
        actual = logits_network(model)(evaluation) - logits_network(before)(evaluation)
        probs = torch.softmax(logits_network(before)(before.obs), dim=1)
    # A2C's advantages as SB3 computed them: one-step episodes give A_n = r_n - V(s_n)
    assert before.advantages.abs().min() > 0
    predicted = linear_policy_gradient_change(
        probs.double(), before.obs.double(), before.actions, before.advantages.double(), lr, evaluation.double()
    )
    scale = actual.abs().max().item()
    assert scale > 1e-3
    # SB3 works in float32: outputs of order 1 carry round-off of about 1e-7; the change is 1,000x the tolerance
    torch.testing.assert_close(actual.double(), predicted, rtol=0, atol=1e-6)


def test_one_sb3_dqn_update_matches_the_q_learning_formula(music: MusicEnv) -> None:
    lr = 0.05
    model = DQN(
        "MlpPolicy", music, batch_size=32, train_freq=32, gradient_steps=1, learning_starts=0, learning_rate=lr,
        max_grad_norm=1e9, replay_buffer_class=RecordingReplayBuffer, seed=0, device="cpu",
        policy_kwargs={"net_arch": [], "optimizer_class": torch.optim.SGD},
    )  # fmt: skip
    before = BeforeTheUpdate()
    model.learn(32, callback=before)
    assert model._n_updates == 1
    batch = model.replay_buffer.last_batch
    assert (batch.dones == 1).all()  # one-step episodes: the target is the reward, no bootstrap
    evaluation = torch.tensor(music.eval_set().obs)
    with torch.no_grad():
        actual = q_network(model)(evaluation) - before.policy.q_net(evaluation)
        q = before.policy.q_net(batch.observations)
    actions, rewards = batch.actions[:, 0].long(), batch.rewards[:, 0]
    predicted = linear_q_learning_change(
        q.double(), batch.observations.double(), actions, rewards.double(), lr, evaluation.double()
    )
    scale = actual.abs().max().item()
    assert scale > 1e-3
    torch.testing.assert_close(actual.double(), predicted, rtol=0, atol=1e-6)  # float32, as above
    untaken = sorted(set(range(50)) - set(actions.tolist()))
    assert (actual[:, untaken] == 0).all()


def test_mlp_is_seeded_by_its_generator_and_shaped_as_asked() -> None:
    first, again, other = (mlp(20, [64, 32], 50, torch.Generator().manual_seed(seed)) for seed in (0, 0, 1))
    assert [tuple(p.shape) for p in first.parameters()] == [(64, 20), (64,), (32, 64), (32,), (50, 32), (50,)]
    assert all(torch.equal(a, b) for a, b in zip(first.parameters(), again.parameters(), strict=True))
    assert not torch.equal(first[0].weight, other[0].weight)
    assert all(p.abs().max() <= p.shape[-1] ** -0.5 for p in first.parameters() if p.ndim == 2)
    assert isinstance(first[1], nn.Tanh) and len(mlp(20, [], 50, torch.Generator())) == 1


def test_logits_network_gives_the_policys_distribution(music: MusicEnv) -> None:
    model = A2C("MlpPolicy", music, policy_kwargs={"net_arch": [32]}, seed=0, device="cpu")
    states = torch.tensor(music.eval_set().obs[:50])
    with torch.no_grad():
        probs = torch.softmax(logits_network(model)(states), dim=1)
        torch.testing.assert_close(probs, model.policy.get_distribution(states).distribution.probs)


def test_bad_inputs_raise(music: MusicEnv) -> None:
    net = network([])
    states, actions, rewards = music_batch(music, net)
    with pytest.raises(ValueError, match=r"a batch of 32 states needs actions and advantages of shape \(32,\)"):
        policy_gradient_change(net, states, actions[:5], rewards, 0.1, states)
    with pytest.raises(ValueError, match=r"needs actions and rewards of shape \(32,\), got \(32,\) and \(32, 1\)"):
        q_learning_change(net, states, actions, rewards[:, None], 0.1, states)
    with pytest.raises(TypeError, match="A2C has no Q-network"):
        q_network(A2C("MlpPolicy", music, device="cpu"))
    with pytest.raises(TypeError, match="DQN has no actor-critic policy"):
        logits_network(DQN("MlpPolicy", music, device="cpu"))
