"""The one-step bandit core: API, action validation, seeding, evaluation set, registration."""

from __future__ import annotations

import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env as gymnasium_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import personalization_gym
from personalization_gym import BanditEnv, Batch, BehaviorEnv

# A task with a known reward table: user u (one-hot observation) gets TABLE[u, a] for action a.
TABLE = np.array(
    [
        [0.0, 1.0, -1.0],
        [0.5, 0.5, 0.25],
        [-0.5, 0.0, 2.0],
        [1.0, 1.0, 1.0],
    ]
)


class TableTask(BanditEnv):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.observation_space = spaces.Box(0.0, 1.0, shape=(len(TABLE),), dtype=np.float32)
        self.action_space = spaces.Discrete(TABLE.shape[1])

    def sample(self, n: int, rng: np.random.Generator) -> Batch:
        users = rng.integers(len(TABLE), size=n)
        return Batch(obs=np.eye(len(TABLE), dtype=np.float32)[users], expected=TABLE[users], hidden={"user": users})


class CoinTask(TableTask):
    """Same expected rewards, but the reward received is expected + a +-1 coin flip."""

    def realize(self, batch: Batch, actions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return batch.expected[np.arange(len(batch)), actions] + rng.choice([-1.0, 1.0], size=len(batch))


def user_of(obs: np.ndarray) -> int:
    return int(np.flatnonzero(obs)[0])


# --------------------------------------------------------------------------------------------------
# Episodes, info, order of calls


def test_step_returns_table_reward_and_info_and_ends_episode() -> None:
    env = TableTask()
    for seed in range(20):
        obs, info = env.reset(seed=seed)
        assert info == {}
        user = user_of(obs)
        for action in range(3):
            env.reset(seed=seed)
            next_obs, reward, terminated, truncated, info = env.step(action)
            assert (terminated, truncated) == (True, False)
            assert reward == TABLE[user, action]
            assert info["expected_reward"] == TABLE[user, action]
            assert info["optimal_reward"] == TABLE[user].max()
            assert info["regret"] == TABLE[user].max() - TABLE[user, action]
            np.testing.assert_array_equal(next_obs, obs)


def test_step_before_reset_raises() -> None:
    env = TableTask()
    with pytest.raises(RuntimeError, match=r"call reset\(\) first"):
        env.step(0)


def test_second_step_without_reset_raises() -> None:
    env = TableTask()
    env.reset(seed=0)
    env.step(1)
    with pytest.raises(RuntimeError, match=r"call reset\(\) before every step\(\)"):
        env.step(1)


def test_reset_rejects_options() -> None:
    with pytest.raises(ValueError, match="takes no options"):
        TableTask().reset(options={"user": 3})


def test_returned_observations_are_fresh_copies() -> None:
    env = TableTask()
    obs, _ = env.reset(seed=0)
    obs[:] = 7.0
    next_obs, *_ = env.step(0)
    assert next_obs.max() == 1.0, "changing reset's observation must not change the task's context"


def test_noisy_task_uses_realize_and_reports_expected_reward() -> None:
    env = CoinTask()
    env.reset(seed=3)
    noise = []
    for _ in range(400):
        obs, _ = env.reset()
        _, reward, _, _, info = env.step(2)
        assert info["expected_reward"] == TABLE[user_of(obs), 2]
        noise.append(reward - info["expected_reward"])
    assert set(noise) == {-1.0, 1.0}
    assert abs(np.mean(noise)) < 4 / np.sqrt(len(noise))


# --------------------------------------------------------------------------------------------------
# Action validation


@pytest.mark.parametrize(
    "action",
    [2, np.int64(2), np.int32(2), np.uint8(2), np.int16(2), np.array(2), np.array(2, dtype=np.uint32)],
    ids=lambda a: f"{type(a).__name__}-{getattr(a, 'dtype', '')}",
)
def test_integer_actions_are_accepted(action) -> None:
    env = TableTask()
    obs, _ = env.reset(seed=1)
    assert env.step(action)[1] == TABLE[user_of(obs), 2]


@pytest.mark.parametrize(
    "action",
    [2.0, np.float64(2), True, np.bool_(True), "2", None, np.array([2]), np.array(2.0), [2], 1 + 0j],
    ids=repr,
)
def test_non_integer_actions_are_rejected(action) -> None:
    env = TableTask()
    env.reset(seed=1)
    with pytest.raises(ValueError, match=r"action must be an integer in \[0, 3\)"):
        env.step(action)


@pytest.mark.parametrize("action", [-1, 3, np.int64(100), np.array(-5)], ids=repr)
def test_out_of_range_actions_are_rejected(action) -> None:
    env = TableTask()
    env.reset(seed=1)
    with pytest.raises(ValueError, match=r"action must be an integer in \[0, 3\), got -?\d+"):
        env.step(action)


def test_rejected_action_leaves_the_context_in_place() -> None:
    env = TableTask()
    obs, _ = env.reset(seed=4)
    with pytest.raises(ValueError):
        env.step(1.5)
    assert env.step(1)[1] == TABLE[user_of(obs), 1]


# --------------------------------------------------------------------------------------------------
# Constructor arguments


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_eval": 0}, r"n_eval must be an integer >= 1, got 0"),
        ({"n_eval": 10.0}, r"n_eval must be an integer >= 1, got 10.0"),
        ({"n_eval": True}, r"n_eval must be an integer >= 1, got True"),
        ({"task_seed": -1}, r"task_seed must be an integer >= 0, got -1"),
        ({"task_seed": "7"}, r"task_seed must be an integer >= 0, got '7'"),
        ({"task_seed": 1.5}, r"task_seed must be an integer >= 0, got 1.5"),
    ],
)
def test_bad_constructor_arguments_raise(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        TableTask(**kwargs)


# --------------------------------------------------------------------------------------------------
# Seeding and the context stream


def observed_users(env: BanditEnv, n: int, seed: int | None) -> list[int]:
    users = [user_of(env.reset(seed=seed)[0])]
    for _ in range(n - 1):
        users.append(user_of(env.reset()[0]))
        env.step(0)
    return users


def test_context_stream_is_sample_blocks_of_the_seeded_generator() -> None:
    env = TableTask()
    n = 3 * env.CONTEXT_BLOCK + 5
    rng = np.random.default_rng(12345)
    expected_users = np.concatenate([env.sample(env.CONTEXT_BLOCK, rng).hidden["user"] for _ in range(4)])[:n]
    assert observed_users(env, n, seed=12345) == expected_users.tolist()


def test_same_seed_same_stream_different_seed_different_stream() -> None:
    first = observed_users(TableTask(), 200, seed=7)
    assert observed_users(TableTask(), 200, seed=7) == first
    assert observed_users(TableTask(), 200, seed=8) != first


def test_reseeding_mid_stream_restarts_it() -> None:
    env = TableTask()
    first = observed_users(env, 10, seed=5)
    observed_users(env, 37, seed=None)
    assert observed_users(env, 10, seed=5) == first


def test_unseeded_reset_continues_the_stream() -> None:
    env = TableTask()
    whole = observed_users(env, 150, seed=9)
    env2 = TableTask()
    head = observed_users(env2, 70, seed=9)
    tail = observed_users(env2, 80, seed=None)
    assert head + tail == whole


def test_noisy_rewards_are_reproducible() -> None:
    def rewards(seed: int) -> list[float]:
        env = CoinTask()
        env.reset(seed=seed)
        out = []
        for _ in range(100):
            env.reset()
            out.append(env.step(0)[1])
        return out

    assert rewards(3) == rewards(3)
    assert rewards(3) != rewards(4)


# --------------------------------------------------------------------------------------------------
# Evaluation set and evaluate()


def test_eval_set_is_fixed_by_task_seed_whatever_the_training_stream_does() -> None:
    fresh = TableTask(n_eval=500, task_seed=3).eval_set()
    trained = TableTask(n_eval=500, task_seed=3)
    observed_users(trained, 300, seed=99)
    after_training = trained.eval_set()
    np.testing.assert_array_equal(after_training.obs, fresh.obs)
    np.testing.assert_array_equal(after_training.expected, fresh.expected)
    assert len(after_training) == 500
    other = TableTask(n_eval=500, task_seed=4).eval_set()
    assert not np.array_equal(other.obs, fresh.obs)


def test_eval_set_is_read_only_and_cached() -> None:
    env = TableTask(n_eval=50)
    eval_set = env.eval_set()
    assert env.eval_set() is eval_set
    with pytest.raises(ValueError, match="read-only"):
        eval_set.expected[0, 0] = 5.0
    with pytest.raises(ValueError, match="read-only"):
        eval_set.obs[0, 0] = 5.0


def test_eval_set_expected_matches_its_contexts() -> None:
    eval_set = TableTask(n_eval=300).eval_set()
    users = eval_set.hidden["user"]
    np.testing.assert_array_equal(eval_set.obs.argmax(axis=1), users)
    np.testing.assert_array_equal(eval_set.expected, TABLE[users])


def test_evaluate_is_mean_expected_reward_of_the_actions() -> None:
    env = TableTask(n_eval=1000)
    eval_set = env.eval_set()
    actions = np.random.default_rng(0).integers(3, size=1000)
    by_hand = sum(TABLE[u, a] for u, a in zip(eval_set.hidden["user"], actions, strict=True)) / 1000
    assert env.evaluate(actions) == pytest.approx(by_hand, rel=1e-12)
    assert env.evaluate(actions.astype(np.int32)) == env.evaluate(actions)
    assert env.evaluate(actions.tolist()) == env.evaluate(actions)
    best = eval_set.expected.argmax(axis=1)
    assert env.evaluate(best) == pytest.approx(TABLE[eval_set.hidden["user"]].max(axis=1).mean(), rel=1e-12)


@pytest.mark.parametrize(
    ("actions", "message"),
    [
        (np.zeros(999, dtype=int), r"shape \(1000,\).*got dtype int64 and shape \(999,\)"),
        (np.zeros((1000, 1), dtype=int), r"shape \(1000,\)"),
        (np.zeros(1000), r"integer array.*got dtype float64"),
        (np.full(1000, 3), r"actions must lie in \[0, 3\), got 1000 out of range, e.g. 3"),
        (np.full(1000, -1), r"actions must lie in \[0, 3\)"),
    ],
)
def test_evaluate_rejects_bad_actions(actions, message) -> None:
    with pytest.raises(ValueError, match=message):
        TableTask(n_eval=1000).evaluate(actions)


# --------------------------------------------------------------------------------------------------
# Batch


def test_batch_indexing_keeps_rows_together() -> None:
    batch = TableTask().sample(10, np.random.default_rng(0))
    one = batch[3]
    assert len(one) == 1
    np.testing.assert_array_equal(one.expected, batch.expected[3:4])
    assert one.hidden["user"].tolist() == [batch.hidden["user"][3]]
    last = batch[-1]
    np.testing.assert_array_equal(last.obs, batch.obs[-1:])
    picked = batch[np.array([1, 4])]
    np.testing.assert_array_equal(picked.hidden["user"], batch.hidden["user"][[1, 4]])


def test_batch_rejects_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match=r"Batch.expected must have shape \(n, n_actions\) with n = len\(obs\) = 2"):
        Batch(obs=np.zeros((2, 4), np.float32), expected=np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"Batch.hidden\['user'\] has 1 rows, expected 2"):
        Batch(obs=np.zeros((2, 4), np.float32), expected=np.zeros((2, 2)), hidden={"user": np.zeros(1)})


def test_a_task_must_implement_sample() -> None:
    class Incomplete(BanditEnv):
        pass

    with pytest.raises(TypeError, match="abstract"):
        Incomplete()


# --------------------------------------------------------------------------------------------------
# Registration and environment checkers (every registered task)


def test_every_task_is_registered_in_the_personalization_namespace() -> None:
    registered = {env_id for env_id in gym.registry if env_id.startswith("Personalization/")}
    assert registered == set(personalization_gym.TASK_IDS)
    names = ("Music", "Behavior", "Ads", "MNIST", "FashionMNIST", "CIFAR10", "CIFAR100", "Digits", "Tabular",
             "Classification", "Ratings", "MovieLens")  # fmt: skip
    assert {f"Personalization/{name}-v0" for name in names} == registered


def fresh_python(code: str) -> list[str]:
    """The words ``code`` prints in a new interpreter, where nothing of this test session is imported."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()


def test_make_with_module_prefix_works_without_prior_import() -> None:
    code = (
        "import sys, gymnasium as gym\n"
        "assert 'personalization_gym' not in sys.modules\n"
        "env = gym.make('personalization_gym:Personalization/Behavior-v0', n_eval=10)\n"
        "print(type(env.unwrapped).__name__, env.action_space.n)\n"
    )
    assert fresh_python(code) == ["BehaviorEnv", "100"]


def test_rgb_array_render_draws_the_contexts_rewards_and_the_action_taken() -> None:
    """One bar per item from the context's expected rewards, the best in green, the action taken in red (orange
    when it is a best one); the heights computed here from the rewards the task reports."""
    env = gym.make("Personalization/Behavior-v0", n_actions=8, n_eval=10, render_mode="rgb_array")
    env.reset(seed=0)
    task = env.unwrapped
    expected = task._block.expected[task._context_index]
    worst, best = int(expected.argmin()), int(expected.argmax())
    before = env.render()
    assert before.shape == (160, 320, 3) and before.dtype == np.uint8
    _, _, _, _, info = env.step(worst)
    after = env.render()
    low = min(0.0, expected.min())
    heights = 2 + np.rint((expected - low) / (expected.max() - low) * 150).astype(int)
    for image in (before, after):
        for item in range(8):  # item i fills columns [40 i, 40 i + 39) from the bottom up to its height
            column = image[:, 40 * item + 20]
            coloured = np.flatnonzero((column != 255).any(axis=1))
            assert len(coloured) == heights[item] and (not len(coloured) or coloured[-1] == 159)
    green, grey, red = (44, 160, 44), (150, 150, 150), (214, 39, 40)
    assert tuple(before[159, 40 * best + 20]) == green and tuple(before[159, 40 * worst + 20]) == grey
    assert tuple(after[159, 40 * worst + 20]) == red and info["expected_reward"] == expected[worst]
    env.reset()
    assert red not in {tuple(pixel) for pixel in env.render()[159]}  # a new context: no action taken yet
    with pytest.raises(ValueError, match=r"render_mode must be None or one of \['rgb_array'\], got 'ansi'"):
        BehaviorEnv(render_mode="ansi")
    with pytest.raises(ValueError, match=r"render_mode must be None or one of \['rgb_array'\], got 'human'"):
        BehaviorEnv(render_mode="human")
    # gym.make's "human" is Gymnasium's HumanRendering over the task's rgb_array pictures (docs/tasks.md)
    with pytest.warns(UserWarning, match="HumanRendering"):
        human = gym.make("Personalization/Behavior-v0", n_eval=10, render_mode="human")
    assert isinstance(human, gym.wrappers.HumanRendering) and human.unwrapped.render_mode == "rgb_array"
    with pytest.warns(UserWarning, match="render\\(\\) was called without a render mode"):
        assert BehaviorEnv(n_eval=10).render() is None


@pytest.mark.parametrize("env_id", ["Personalization/Music-v0", "Personalization/Behavior-v0"])  # images: test_images
def test_gymnasium_and_sb3_checkers_pass(env_id: str, data_root) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a checker's warning is a failure here
        env = gym.make(env_id, n_eval=100, render_mode="rgb_array")
        gymnasium_check_env(env.unwrapped)
        sb3_check_env(env.unwrapped, warn=True)
        # and through gym.make's wrappers, the way users meet the env
        obs, _ = env.reset(seed=0)
        assert env.observation_space.contains(obs)
        _, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert terminated and not truncated
        assert set(info) == {"expected_reward", "optimal_reward", "regret"}
        assert reward == info["expected_reward"]  # both tasks are deterministic
        assert info["regret"] >= 0.0


def test_data_kwargs_go_only_to_tasks_that_take_them() -> None:
    data_kwargs = personalization_gym.data_kwargs
    assert data_kwargs("Personalization/MNIST-v0", "/data", download=False) == {"data_dir": "/data", "download": False}
    assert data_kwargs("Personalization/MNIST-v0") == {}
    assert data_kwargs("Personalization/Music-v0", "/data", download=False) == {"data_dir": "/data"}
    assert data_kwargs("Personalization/Behavior-v0", "/data", download=False) == {}
    with pytest.raises(ValueError, match=r"unknown task 'Personalization/Nope-v0' \(Environment `Nope` doesn't exist"):
        data_kwargs("Personalization/Nope-v0")


def test_the_tasks_import_neither_torch_nor_stable_baselines3() -> None:
    # torch costs seconds and hundreds of MB, and a task user need not have SB3: only image tasks need torch, on
    # first use; SB3's batched VecEnv is the plugin's
    code = (
        "import sys, gymnasium as gym, personalization_gym\n"
        "gym.make('Personalization/Behavior-v0', n_eval=10).reset(seed=0)\n"
        "gym.make_vec('Personalization/Behavior-v0', 4, n_eval=10).reset(seed=0)\n"
        "print('+'.join(name for name in ('stable_baselines3', 'torch') if name in sys.modules) or 'none')\n"
        "from sb3_entropy import make_vec\n"
        "print('+'.join(name for name in ('stable_baselines3', 'torch') if name in sys.modules) or 'none')\n"
    )
    assert fresh_python(code) == ["none", "stable_baselines3+torch"]


@pytest.mark.parametrize(
    "env_id", ["Personalization/Behavior-v0", "Personalization/Ads-v0", "Personalization/Music-v0"]
)
def test_an_evaluation_set_that_cannot_fit_is_refused_at_construction(env_id: str) -> None:
    n_eval = 10**13  # more than any machine's memory, whatever the task's sizes
    with pytest.raises(ValueError) as error:
        gym.make(env_id, n_eval=n_eval)
    task = gym.make(env_id, n_eval=10).unwrapped
    per_context = int(np.prod(task.observation_space.shape)) * 4 + task.action_space.n * 8
    message = str(error.value)  # the free memory it names moves from one reading to the next: not compared
    assert message.startswith(
        f"n_eval={n_eval:,}: the evaluation set would take {n_eval * per_context / 2**30:,.1f} GiB ({per_context} "
        "bytes per context), more than the "
    )
    assert message.endswith(" GiB of memory free; use a smaller n_eval")
