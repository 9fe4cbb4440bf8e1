"""Diversity regularisers and the policies that put them in stock A2C, PPO and MaskablePPO."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from sb3_contrib import MaskablePPO
from sb3_contrib.common.wrappers import ActionMasker
from stable_baselines3 import A2C, PPO
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch.distributions import Categorical

from sb3_entropy import action_probs, make_vec
from sb3_entropy.agents import AGENT_DEFAULTS, batched_hyperparameters
from sb3_entropy.maskable import MaskableMarginalEntropyPolicy
from sb3_entropy.metrics import all_metrics
from sb3_entropy.policies import MarginalEntropyCnnPolicy, MarginalEntropyPolicy
from sb3_entropy.regularizers import REGULARIZERS, check_regularizer

SMALL_TASK = {"n_actions": 6, "state_dim": 4, "n_eval": 300}


def numpy_bonus(name: str, probs: np.ndarray) -> np.ndarray:
    """Each regulariser's per-sample bonus, written out from its formula in numpy (float64)."""

    def entropy(p: np.ndarray) -> np.ndarray:
        logs = np.log(np.where(p > 0, p, 1.0))
        return -(p * logs).sum(axis=-1)

    p = probs.mean(axis=0)
    n, k = probs.shape
    return {
        "per_state": entropy(probs),
        "marginal": np.full(n, entropy(p)),
        "l2": np.full(n, -((p - 1.0 / k) ** 2).sum()),
        "mutual_info": entropy(p) - entropy(probs),
    }[name]


def random_logits(rng: np.random.Generator, n: int = 7, k: int = 5, scale: float = 2.0) -> torch.Tensor:
    return torch.tensor(rng.normal(scale=scale, size=(n, k)), dtype=torch.float64)


@pytest.mark.parametrize("name", list(REGULARIZERS))
def test_each_regularizer_equals_its_formula(name: str) -> None:
    rng = np.random.default_rng(0)
    for n, k in ((7, 5), (1, 2), (32, 50)):
        logits = random_logits(rng, n, k)
        bonus = REGULARIZERS[name](Categorical(logits=logits))
        probs = torch.softmax(logits, dim=-1).numpy()
        assert bonus.shape == (n,)
        np.testing.assert_allclose(bonus.numpy(), numpy_bonus(name, probs), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", list(REGULARIZERS))
def test_each_regularizer_passes_gradcheck(name: str) -> None:
    logits = random_logits(np.random.default_rng(1)).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda z: REGULARIZERS[name](Categorical(logits=z)), (logits,))


def test_regularizers_of_collapsed_and_uniform_batches() -> None:
    k = 4
    uniform = Categorical(logits=torch.zeros(3, k, dtype=torch.float64))
    assert REGULARIZERS["marginal"](uniform)[0].item() == pytest.approx(np.log(k), abs=1e-15)
    assert REGULARIZERS["l2"](uniform)[0].item() == 0.0
    assert REGULARIZERS["mutual_info"](uniform)[0].item() == pytest.approx(0.0, abs=1e-15)
    # every state certain of its own action: the marginal is uniform and the mutual information log K
    one_each = Categorical(probs=torch.eye(k, dtype=torch.float64))
    assert REGULARIZERS["mutual_info"](one_each).mean().item() == pytest.approx(np.log(k), abs=1e-15)
    assert REGULARIZERS["l2"](one_each)[0].item() == pytest.approx(0.0, abs=1e-15)
    # everyone certain of the same action: l2 at its minimum -(1 - 1/K), marginal entropy 0
    same = Categorical(probs=torch.tensor([[1.0, 0, 0, 0]] * 3, dtype=torch.float64))
    assert REGULARIZERS["l2"](same)[0].item() == pytest.approx(-(1 - 1 / k), abs=1e-15)
    assert REGULARIZERS["marginal"](same)[0].item() == 0.0


def test_masked_actions_add_nothing_and_get_no_nan_gradient() -> None:
    from sb3_contrib.common.maskable.distributions import MaskableCategorical

    logits = random_logits(np.random.default_rng(2), 5, 6).requires_grad_(True)
    masks = torch.ones(5, 6, dtype=torch.bool)
    masks[:, 2] = False  # action 2 masked in every state: p(2) = 0 exactly
    masks[0, 4] = False
    probs = MaskableCategorical(logits=logits, masks=masks).probs.detach().numpy()
    assert (probs[:, 2] == 0).all()
    for name, fn in REGULARIZERS.items():
        bonus = fn(MaskableCategorical(logits=logits, masks=masks))
        np.testing.assert_allclose(bonus.detach().numpy(), numpy_bonus(name, probs), rtol=1e-12, atol=1e-12)
        (gradient,) = torch.autograd.grad(bonus.mean(), logits)
        # zero up to round-off: MaskableCategorical normalises the unmasked logits with the masked ones first
        assert torch.isfinite(gradient).all() and gradient[:, 2].abs().max() < 1e-15, name


@pytest.mark.parametrize(
    ("regularizer", "weight", "message"),
    [
        ("maginal", 0.0, "unknown regularizer 'maginal'; valid: ['per_state', 'marginal', 'l2', 'mutual_info']"),
        (None, 0.0, "unknown regularizer None; valid:"),
        ("marginal", float("nan"), "per_state_weight must be a finite number, got nan"),
        ("marginal", "0.5", "per_state_weight must be a finite number, got '0.5'"),
        ("marginal", True, "per_state_weight must be a finite number, got True"),
        ("per_state", 0.5, "with regularizer='per_state' scale the term with ent_coef instead"),
    ],
)  # fmt: skip
def test_bad_regularizer_arguments_are_clear_errors(regularizer, weight, message: str) -> None:
    with pytest.raises(ValueError) as error:
        check_regularizer(regularizer, weight)
    assert message in str(error.value)
    env = make_vec("Personalization/Behavior-v0", 2, **SMALL_TASK)
    with pytest.raises(ValueError) as error:
        PPO(MarginalEntropyPolicy, env, policy_kwargs={"regularizer": regularizer, "per_state_weight": weight})
    assert message in str(error.value)


def test_a_continuous_action_space_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"MarginalEntropyPolicy needs a Discrete action space .* got Box"):
        PPO(MarginalEntropyPolicy, "Pendulum-v1")


# --------------------------------------------------------------------------------------------------
# In stock algorithms


def batched_model(algo: str, policy, seed: int = 0, **kwargs):
    """A2C or PPO with the paper's batch settings on a small Behavior-v0, batched (32 contexts per step)."""
    env = make_vec("Personalization/Behavior-v0", 32, seed=seed, **SMALL_TASK)
    hyperparameters = batched_hyperparameters(algo, AGENT_DEFAULTS[algo]) | kwargs.pop("hyperparameters", {})
    policy_kwargs = {"net_arch": [16, 16], **kwargs.pop("policy_kwargs", {})}
    return {"a2c": A2C, "ppo": PPO}[algo](
        policy, env, seed=seed, device="cpu", policy_kwargs=policy_kwargs, **hyperparameters, **kwargs
    )


def parameters(model) -> dict[str, torch.Tensor]:
    return {name: tensor.clone() for name, tensor in model.policy.state_dict().items()}


def assert_same_parameters(first: dict, second: dict) -> None:
    assert first.keys() == second.keys()
    for name in first:
        assert torch.equal(first[name], second[name]), name


@pytest.mark.parametrize("algo", ["a2c", "ppo"])
def test_coefficient_zero_trains_bit_identically_to_the_stock_policy(algo: str) -> None:
    stock = batched_model(algo, "MlpPolicy", ent_coef=0.0)
    stock.learn(640)
    for regularizer in REGULARIZERS:
        model = batched_model(algo, MarginalEntropyPolicy, ent_coef=0.0, policy_kwargs={"regularizer": regularizer})
        model.learn(640)
        assert_same_parameters(parameters(model), parameters(stock))
    # ... and the per-state regularizer is SB3's own term at any coefficient
    stock = batched_model(algo, "MlpPolicy", ent_coef=0.05)
    stock.learn(640)
    per_state = batched_model(algo, MarginalEntropyPolicy, ent_coef=0.05, policy_kwargs={"regularizer": "per_state"})
    per_state.learn(640)
    assert_same_parameters(parameters(per_state), parameters(stock))
    # while a marginal regularizer at the same coefficient changes training (the comparison can fail)
    marginal = batched_model(algo, MarginalEntropyPolicy, ent_coef=0.05)
    marginal.learn(640)
    assert not all(
        torch.equal(a, b) for a, b in zip(parameters(marginal).values(), parameters(stock).values(), strict=True)
    )


@pytest.mark.parametrize("name", list(REGULARIZERS))
def test_evaluate_actions_returns_the_bonus_of_an_independent_forward_pass(name: str) -> None:
    model = batched_model("ppo", MarginalEntropyPolicy, policy_kwargs={"regularizer": name})
    model.learn(320)
    obs = model.env.env_method("eval_set", indices=[0])[0].obs[:32]
    actions = np.arange(32) % 6
    with torch.no_grad():
        obs_tensor = torch.as_tensor(np.array(obs))
        values, log_prob, bonus = model.policy.evaluate_actions(obs_tensor, torch.as_tensor(actions))
    probs = action_probs(model, obs)  # the policy's own distribution, float64
    np.testing.assert_allclose(bonus.numpy(), numpy_bonus(name, probs), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(log_prob.numpy(), np.log(probs[np.arange(32), actions]), rtol=1e-5, atol=1e-6)
    assert values.shape == (32, 1)


def test_save_and_load_keep_the_regularizer(tmp_path: Path) -> None:
    model = batched_model(
        "ppo", MarginalEntropyPolicy, ent_coef=0.3, policy_kwargs={"regularizer": "l2", "per_state_weight": 0.5}
    )
    model.learn(320)
    model.save(tmp_path / "model")
    loaded = PPO.load(tmp_path / "model", env=model.env, device="cpu")
    assert type(loaded.policy) is MarginalEntropyPolicy
    assert (loaded.policy.regularizer, loaded.policy.per_state_weight, loaded.ent_coef) == ("l2", 0.5, 0.3)
    assert_same_parameters(parameters(loaded), parameters(model))
    obs = model.env.env_method("eval_set", indices=[0])[0].obs
    np.testing.assert_array_equal(action_probs(loaded, obs), action_probs(model, obs))
    loaded.learn(320, reset_num_timesteps=False)  # trains on
    # the policy alone, through SB3's policy.save / load
    model.policy.save(tmp_path / "policy.pth")
    policy = MarginalEntropyPolicy.load(tmp_path / "policy.pth")
    assert (policy.regularizer, policy.per_state_weight) == ("l2", 0.5)


def test_maskable_ppo_trains_and_respects_the_masks() -> None:
    def mask(env: gym.Env) -> np.ndarray:
        allowed = np.ones(env.action_space.n, dtype=bool)
        allowed[[1, 4]] = False
        return allowed

    env = ActionMasker(gym.make("Personalization/Behavior-v0", **SMALL_TASK), mask)
    model = MaskablePPO(
        MaskableMarginalEntropyPolicy, env, seed=0, device="cpu", ent_coef=0.5, n_steps=64, batch_size=32,
        n_epochs=1, policy_kwargs={"net_arch": [16]},
    )  # fmt: skip
    model.learn(320)
    taken = model.rollout_buffer.actions.ravel().astype(int)
    assert len(taken) == 64 and not np.isin(taken, [1, 4]).any()
    obs = np.array(env.unwrapped.eval_set().obs[:32])  # a writable copy for torch
    masks = np.tile(mask(env), (32, 1))
    with torch.no_grad():
        _, _, bonus = model.policy.evaluate_actions(torch.as_tensor(obs), torch.zeros(32), action_masks=masks)
        logits = model.policy.action_net(model.policy.mlp_extractor.forward_actor(torch.as_tensor(obs)))
    masked = np.where(masks, logits.double().numpy(), -np.inf)
    probs = np.exp(masked - masked.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(bonus.numpy(), numpy_bonus("marginal", probs), rtol=1e-5)


class SmallCnn(BaseFeaturesExtractor):
    """A CNN for 28x28 images (SB3's NatureCNN needs at least 36x36)."""

    def __init__(self, observation_space: spaces.Box, features_dim: int = 32) -> None:
        super().__init__(observation_space, features_dim)
        self.net = torch.nn.Sequential(
            torch.nn.Conv2d(observation_space.shape[0], 8, 5, stride=2), torch.nn.ReLU(),
            torch.nn.Conv2d(8, 8, 3, stride=2), torch.nn.ReLU(), torch.nn.Flatten(),
            torch.nn.Linear(8 * 5 * 5, features_dim), torch.nn.ReLU(),
        )  # fmt: skip

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.net(observations)


def test_cnn_policy_trains_on_images(data_root: Path) -> None:
    env = make_vec("Personalization/MNIST-v0", 32, seed=0, obs_shape="image", n_eval=500, data_dir=str(data_root))
    model = PPO(
        MarginalEntropyCnnPolicy, env, seed=0, device="cpu", ent_coef=0.5, n_steps=2, batch_size=32, n_epochs=1,
        policy_kwargs={"features_extractor_class": SmallCnn, "normalize_images": False},
    )  # fmt: skip
    model.learn(320)
    assert model.num_timesteps == 320
    obs = np.array(env.env_method("eval_set", indices=[0])[0].obs[:32])  # a writable copy for torch
    with torch.no_grad():
        _, _, bonus = model.policy.evaluate_actions(torch.as_tensor(obs), torch.zeros(32))
    np.testing.assert_allclose(bonus.numpy(), numpy_bonus("marginal", action_probs(model, obs)), rtol=1e-5)


def test_a_large_marginal_coefficient_raises_the_marginal_entropy_on_music(data_root: Path) -> None:
    finals = {}
    for coefficient in (0.0, 1.0):
        env = make_vec("Personalization/Music-v0", 32, seed=0, data_dir=str(data_root))
        hyperparameters = batched_hyperparameters("a2c", AGENT_DEFAULTS["a2c"])
        model = A2C(
            MarginalEntropyPolicy, env, seed=0, device="cpu", learning_rate=1e-3, ent_coef=coefficient,
            policy_kwargs={"net_arch": [256, 256]}, **hyperparameters,
        )  # fmt: skip
        model.learn(5_000)
        eval_set = env.env_method("eval_set", indices=[0])[0]
        finals[coefficient] = all_metrics(
            action_probs(model, eval_set.obs), eval_set.expected, np.random.default_rng(0)
        )
    entropy = {c: finals[c]["entropy/marginal"] for c in finals}
    assert entropy[1.0] > entropy[0.0] + 0.5, entropy
    assert finals[1.0]["eval/expected_reward"] > 0.5  # still recommending well, not uniformly at random (-0.015)
