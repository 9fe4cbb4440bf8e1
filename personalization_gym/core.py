"""The one-step contextual-bandit core that every personalization task derives from.

A task only says how to draw contexts (``sample``) and, if its rewards are noisy, how to draw a reward
(``realize``). :class:`BanditEnv` turns that into a Gymnasium environment whose episodes are one step long,
with action validation, seeding, a fixed evaluation set and exact evaluation of given actions.
"""

from __future__ import annotations

import abc
import numbers
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from personalization_gym.checks import check_integer

__all__ = ["EVAL_CHUNK_MB", "EVAL_TABLE_MB", "BanditEnv", "Batch", "chunk_rows"]


@dataclass(frozen=True)
class Batch:
    """A batch of n contexts.

    Attributes:
        obs: ``(n, *obs_shape)`` float32, what the agent observes.
        expected: ``(n, n_actions)`` float64, the expected reward of every action in every context.
        hidden: per-context data the agent does not see (e.g. a user's latent state), each array with a
            leading axis of length n.
    """

    obs: np.ndarray
    expected: np.ndarray
    hidden: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.obs)
        if self.expected.ndim != 2 or len(self.expected) != n:
            raise ValueError(
                f"Batch.expected must have shape (n, n_actions) with n = len(obs) = {n}, got {self.expected.shape}"
            )
        for name, value in self.hidden.items():
            if len(value) != n:
                raise ValueError(f"Batch.hidden[{name!r}] has {len(value)} rows, expected {n}")

    def __len__(self) -> int:
        return len(self.obs)

    def __getitem__(self, index: int | slice | np.ndarray) -> Batch:
        """Select contexts, keeping the leading axis (an int index gives a batch of one)."""
        if isinstance(index, numbers.Integral):
            index = slice(index, index + 1 if index != -1 else None)
        return Batch(
            obs=self.obs[index],
            expected=self.expected[index],
            hidden={name: value[index] for name, value in self.hidden.items()},
        )


EVAL_TABLE_MB = 1024  # the largest (n_eval, K) table of expected rewards eval_set() builds whole
EVAL_CHUNK_MB = 256  # a chunk of the evaluation set: its expected rewards, float64


def chunk_rows(n_actions: int, max_mb: float) -> int:
    """How many contexts a chunk of at most ``max_mb`` of float64 rows of ``n_actions`` holds (at least one)."""
    return max(1, int(max_mb * 2**20) // (8 * n_actions))


def available_memory() -> int | None:
    """The bytes of memory free on this machine (Linux's MemAvailable), or None where it cannot be read."""
    try:
        with open("/proc/meminfo") as stream:
            for line in stream:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


class BanditEnv(gym.Env[np.ndarray, np.int64], abc.ABC):
    """Base class of one-step contextual-bandit tasks.

    ``reset`` draws one context from the context stream (``self.np_random``, seeded by ``reset(seed=...)``);
    ``step(action)`` returns that context's reward and ends the episode. The info dict of ``step`` holds
    ``expected_reward`` (of the chosen action), ``optimal_reward`` (best expected reward in this context)
    and ``regret`` (their difference).

    Randomness has three independent sources, none of them global:

    * the task itself (item catalogue, random reward functions): ``self.task_rng``, made from ``task_seed``;
    * the evaluation set: its own generator, also made from ``task_seed``, so it is the same for a given
      task instance whatever the training stream does;
    * the context stream: ``self.np_random``, seeded through ``reset(seed=...)`` as in any Gymnasium env.
      Contexts are drawn ``CONTEXT_BLOCK`` (64) at a time, ``sample(CONTEXT_BLOCK, self.np_random)``, and
      handed out one per ``reset``; a reset with a seed starts a new block from the new generator.

    ``task_seed`` is split with ``np.random.SeedSequence(task_seed).spawn(2)``: child 0 seeds the
    evaluation set, child 1 seeds ``self.task_rng``.

    Subclasses set ``observation_space`` and ``action_space`` (a ``Discrete(n)`` starting at 0) in their
    ``__init__`` after calling ``super().__init__``, and implement :meth:`sample` and, for noisy rewards,
    :meth:`realize`. The evaluation set is ``n_eval`` contexts drawn by :meth:`sample` (with replacement, for
    tasks whose contexts are data); a task with a held-out split overrides :meth:`make_eval_set` to return it,
    each held-out context once, as the data tasks (``TabularEnv`` and its kind, the image tasks) do.
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 4}  # noqa: RUF012 (Gymnasium's)
    CONTEXT_BLOCK = 64
    action_space: gym.spaces.Discrete

    def __init__(self, *, n_eval: int = 10_000, task_seed: int = 0, render_mode: str | None = None) -> None:
        super().__init__()
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or one of {self.metadata['render_modes']}, got {render_mode!r}")
        self.render_mode = render_mode
        self._last_action: int | None = None  # the action of the last step, drawn by render() until the next reset
        self.n_eval = check_integer("n_eval", n_eval, minimum=1)
        self.task_seed = check_integer("task_seed", task_seed, minimum=0)  # as np.random.SeedSequence takes
        eval_seed, task_structure_seed = np.random.SeedSequence(self.task_seed).spawn(2)
        self._eval_seed = eval_seed
        self.task_rng = np.random.default_rng(task_structure_seed)
        self._eval_set: Batch | None = None
        # The context stream: a block of contexts drawn with self.np_random, handed out one per reset.
        self._block_rng: np.random.Generator | None = None
        self._block: Batch
        self._block_optimal: np.ndarray
        self._context_index = -1
        self._context_ready = False
        # Tasks that keep the default realize() have rewards equal to expected rewards: skip the call.
        self._deterministic = type(self).realize is BanditEnv.realize

    # ----------------------------------------------------------------------------------------------
    # What a task implements
    @abc.abstractmethod
    def sample(self, n: int, rng: np.random.Generator) -> Batch:
        """Draw ``n`` fresh contexts with ``rng``."""

    def realize(self, batch: Batch, actions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Rewards actually received for ``actions`` (shape ``(n,)``) in ``batch``; deterministic by default."""
        return batch.expected[np.arange(len(batch)), actions]

    # ----------------------------------------------------------------------------------------------
    # Gymnasium API
    @property
    def n_actions(self) -> int:
        return int(self.action_space.n)

    @property
    def task_id(self) -> str:
        """The id this task's class is registered under (``Personalization/Music-v0``), whether or not it was made
        by ``gym.make``; its class name if it is not registered."""
        if self.spec is not None:
            return self.spec.id
        entry_point = f"{type(self).__module__}:{type(self).__name__}"
        return next((spec.id for spec in gym.registry.values() if spec.entry_point == entry_point), type(self).__name__)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if options:
            raise ValueError(f"{type(self).__name__}.reset takes no options, got {sorted(options)}")
        self._context_index += 1
        if self._block_rng is not self.np_random or self._context_index >= len(self._block):
            self._draw_block()
        self._context_ready = True
        self._last_action = None
        return self._block.obs[self._context_index].copy(), {}

    def _draw_block(self) -> None:
        # Contexts are drawn CONTEXT_BLOCK at a time: one vectorized sample() call instead of one per reset.
        # A new generator (reset(seed=...)) discards the rest of the block, so a seed fixes the stream.
        self._block_rng = self.np_random
        self._block = self.sample(self.CONTEXT_BLOCK, self._block_rng)
        self._block_optimal = self._block.expected.max(axis=1)
        self._context_index = 0

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if not self._context_ready:
            raise RuntimeError(
                f"{type(self).__name__}.step() needs a context: call reset() first. "
                "Episodes are one step long, so call reset() before every step()."
            )
        action = self._check_action(action)
        self._context_ready = False
        self._last_action = action
        index = self._context_index
        expected_reward = float(self._block.expected[index, action])
        if self._deterministic:
            reward = expected_reward
        else:
            reward = float(self.realize(self._block[index], np.array([action]), self.np_random)[0])
        optimal_reward = float(self._block_optimal[index])
        info = {
            "expected_reward": expected_reward,
            "optimal_reward": optimal_reward,
            "regret": optimal_reward - expected_reward,
        }
        # Copies, here and in reset: Gymnasium expects new observation data on every call.
        return self._block.obs[index].copy(), reward, True, False, info

    def _check_action(self, action: Any) -> int:
        # Exact integer types only: a float, a bool or a 1-element array is a caller's bug, not an action.
        if type(action) is int or isinstance(action, np.integer):
            value = int(action)
        elif isinstance(action, np.ndarray) and action.ndim == 0 and np.issubdtype(action.dtype, np.integer):
            value = int(action)
        else:
            shape = f" of shape {action.shape} and dtype {action.dtype}" if isinstance(action, np.ndarray) else ""
            raise ValueError(
                f"action must be an integer in [0, {self.n_actions}) (a Python int, a numpy integer scalar or "
                f"a 0-d integer array), got {action!r} of type {type(action).__name__}{shape}"
            )
        if not 0 <= value < self.n_actions:
            raise ValueError(f"action must be an integer in [0, {self.n_actions}), got {value}")
        return value

    def render(self) -> np.ndarray | None:
        """With ``render_mode="rgb_array"``: a ``(160, W, 3)`` uint8 picture of the current context's expected
        reward of every item, one bar per item (``W = max(320, K)``; bars from the lower of 0 and the smallest
        reward up to the largest): grey bars, the best items in green and, after a step, the item chosen in
        orange (or red, when it is not one of the best). Without a render mode: ``None``, with Gymnasium's
        warning."""
        if self.render_mode is None:
            gym.logger.warn(
                f"{type(self).__name__}.render() was called without a render mode: make the task with "
                "render_mode='rgb_array' to get pictures"
            )
            return None
        if self._context_index < 0:
            raise RuntimeError(f"{type(self).__name__}.render() needs a context: call reset() first")
        return reward_bars(self._block.expected[self._context_index], self._last_action)

    # ----------------------------------------------------------------------------------------------
    # Evaluation
    def check_eval_size(self) -> None:
        """Refuse an ``n_eval`` whose evaluation set (contexts as float32, expected rewards as float64) would not fit
        in the memory this machine has free: a ValueError at construction, not a MemoryError at first use."""
        per_context = int(np.prod(self.observation_space.shape)) * 4 + self.n_actions * 8
        needed, available = self.n_eval * per_context, available_memory()
        if available is not None and needed > available:
            raise ValueError(
                f"n_eval={self.n_eval:,}: the evaluation set would take {needed / 2**30:,.1f} GiB ({per_context} bytes "
                f"per context), more than the {available / 2**30:,.1f} GiB of memory free; use a smaller n_eval"
            )

    def data_arrays(self) -> dict[str, np.ndarray]:
        """The arrays the task was built from (a dataset, a user's files), by name; empty for a task its arguments
        define. :func:`personalization_gym.fingerprints.data_fingerprint` hashes them, so that a study never mixes
        runs made on different data."""
        return {}

    def eval_set(self) -> Batch:
        """The fixed evaluation set of ``n_eval`` contexts (read-only arrays, drawn once and cached), its expected
        rewards one ``(n_eval, K)`` table. A task whose table would take more than ``EVAL_TABLE_MB`` refuses: read
        it in chunks with :meth:`eval_chunks` (as the entropy callback and the study do)."""
        table_mb = self.n_eval * self.n_actions * 8 / 2**20
        if table_mb > EVAL_TABLE_MB:
            raise ValueError(
                f"{type(self).__name__}.eval_set(): its table of expected rewards would take {table_mb:,.0f} MB "
                f"({self.n_eval:,} contexts x {self.n_actions:,} items), more than EVAL_TABLE_MB = {EVAL_TABLE_MB:,}: "
                "read it in chunks with eval_chunks(), or use a smaller n_eval"
            )
        if self._eval_set is None:
            batch = self.make_eval_set()
            for array in (batch.obs, batch.expected, *batch.hidden.values()):
                array.flags.writeable = False
            self._eval_set = batch
        return self._eval_set

    def make_eval_set(self) -> Batch:
        """The evaluation set, built once by :meth:`eval_set`: ``n_eval`` contexts from ``sample`` with the
        evaluation set's own generator. Override it to evaluate on a fixed split instead (each context once)."""
        return self.sample(self.n_eval, np.random.default_rng(self._eval_seed))

    def eval_obs(self) -> np.ndarray:
        """The observations of the evaluation set, ``(n_eval, *obs_shape)``, without its expected rewards."""
        return self.eval_set().obs

    def eval_rows(self, rows: np.ndarray) -> Batch:
        """The evaluation contexts at ``rows`` (indices into the evaluation set) with their expected rewards. A task
        whose rewards come from a model (Ratings-v0) computes just these rows."""
        return self.eval_set()[np.asarray(rows)]

    def eval_chunks(self, max_mb: float = EVAL_CHUNK_MB) -> Iterator[Batch]:
        """The evaluation set in order, in chunks of contexts whose expected-reward table takes at most ``max_mb``
        (at least one context a chunk): every metric and baseline reduces over them, never holding the whole
        ``(n_eval, K)`` table of a large catalogue."""
        rows = chunk_rows(self.n_actions, max_mb)
        for start in range(0, self.n_eval, rows):
            yield self.eval_rows(np.arange(start, min(start + rows, self.n_eval)))

    def evaluate(self, actions: Any) -> float:
        """Mean expected reward of ``actions``, one integer action per evaluation context."""
        actions = np.asarray(actions)
        if actions.shape != (self.n_eval,) or not np.issubdtype(actions.dtype, np.integer):
            raise ValueError(
                f"actions must be an integer array of shape ({self.n_eval},), one action per evaluation "
                f"context, got dtype {actions.dtype} and shape {actions.shape}"
            )
        if actions.size and (actions.min() < 0 or actions.max() >= self.n_actions):
            bad = actions[(actions < 0) | (actions >= self.n_actions)]
            raise ValueError(f"actions must lie in [0, {self.n_actions}), got {bad.size} out of range, e.g. {bad[0]}")
        received, start = np.empty(self.n_eval), 0
        for chunk in self.eval_chunks():
            rows = np.arange(start, start + len(chunk))
            received[rows] = chunk.expected[np.arange(len(chunk)), actions[rows]]
            start += len(chunk)
        return float(received.mean())


RENDER_HEIGHT, RENDER_MIN_WIDTH = 160, 320
_GREY, _GREEN, _ORANGE, _RED = (150, 150, 150), (44, 160, 44), (255, 127, 14), (214, 39, 40)


def reward_bars(expected: np.ndarray, chosen: int | None = None) -> np.ndarray:
    """An RGB picture of one context's expected rewards, one bar per item (see :meth:`BanditEnv.render`)."""
    expected = np.asarray(expected, dtype=np.float64)
    n_items = len(expected)
    width = max(RENDER_MIN_WIDTH, n_items)
    image = np.full((RENDER_HEIGHT, width, 3), 255, dtype=np.uint8)
    low = min(0.0, expected.min())  # negative rewards (Behavior-v0's cosines) drawn above a lower floor
    scale = expected.max() - low
    shares = (expected - low) / scale if scale > 0 else np.zeros(n_items)
    # at least 2 pixels, so that every item, the worst and a chosen one included, shows; 8 pixels of headroom
    heights = 2 + np.rint(shares * (RENDER_HEIGHT - 10)).astype(int)
    best = expected == expected.max()
    edges = np.linspace(0, width, n_items + 1).astype(int)  # each item's columns: at least one
    gap = 1 if width // n_items > 2 else 0  # a white column between wide bars
    for item in range(n_items):
        colour = _GREEN if best[item] else _GREY
        if item == chosen:
            colour = _ORANGE if best[item] else _RED
        image[RENDER_HEIGHT - heights[item] :, edges[item] : edges[item + 1] - gap] = colour
    return image
