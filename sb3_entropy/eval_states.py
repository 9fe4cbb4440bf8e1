"""The fixed states an EntropyCallback evaluates a policy on, in chunks of users of bounded memory, with their expected
rewards where a task gives them.

An evaluation holds, per user of a chunk, ``EVAL_TABLES`` float64 rows of K numbers (the probabilities, the expected
rewards, a scratch table, and the probabilities of the chunk's distinct states): a chunk takes at most
``memory_mb``. A catalogue of 87,585 items evaluates 10,000 users in 30 chunks of 334 within 1 GiB; an evaluation
set that fits in one chunk (every shipped task but the largest) is one chunk, its expected rewards fetched once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnv

from personalization_gym.core import chunk_rows
from sb3_entropy.metrics import Totals, totals
from sb3_entropy.probs import distinct_rows

__all__ = ["EVAL_MEMORY_MB", "EVAL_TABLES", "EvalStates", "rewards_source"]

EVAL_MEMORY_MB = 1024  # the most memory one chunk of an evaluation takes
EVAL_TABLES = 4  # float64 (n, K) tables an evaluation holds per chunk

Rewards = Callable[[np.ndarray], np.ndarray]  # rows of a task's evaluation set -> their (len(rows), K) rewards


@dataclass
class _Chunk:
    rows: slice  # its states, among the evaluation states
    distinct: np.ndarray  # its distinct states, the policy computed once each
    row_of: np.ndarray  # for each state of the chunk, its row among the distinct ones


class EvalStates:
    """``obs`` (checked: numbers, finite, at least one) and, with ``rewards``, the expected rewards of rows of the
    task's evaluation set; ``task_rows`` are the task's rows these states are (all of them, or a fixed subset)."""

    def __init__(self, obs: Any, rewards: Rewards | None = None, n_actions: int | None = None) -> None:
        self.obs = _checked(obs)
        self.task_rows = np.arange(len(self.obs))
        self._rewards = rewards
        self.n_actions = n_actions
        self.expected: np.ndarray | None = None  # the whole table, when it fits in one chunk
        self.best: np.ndarray | None = None
        self.chunks: list[_Chunk] = []

    def __len__(self) -> int:
        return len(self.obs)

    @property
    def has_rewards(self) -> bool:
        return self._rewards is not None

    def keep(self, n_eval: int, rng: np.random.Generator) -> None:
        """Keep a fixed random subset of ``n_eval`` of the states (drawn with ``rng``), in their order."""
        if n_eval > len(self.obs):
            raise ValueError(f"n_eval must be an integer in [1, {len(self.obs)}] (the states available), got {n_eval}")
        subset = np.sort(rng.choice(len(self.obs), size=int(n_eval), replace=False))
        self.obs, self.task_rows = self.obs[subset], self.task_rows[subset]

    def plan(self, n_actions: int, memory_mb: float = EVAL_MEMORY_MB) -> None:
        """Split the states into chunks of at most ``memory_mb`` for ``n_actions`` actions; one chunk's expected
        rewards are fetched once, for every evaluation."""
        self.n_actions = n_actions
        rows = chunk_rows(n_actions, memory_mb / EVAL_TABLES)
        self.chunks = []
        for start in range(0, len(self.obs), rows):
            span = slice(start, min(start + rows, len(self.obs)))
            # the policy is computed once per distinct state and expanded: the same table, a third of the forward
            # passes on a task whose users repeat
            self.chunks.append(_Chunk(span, *distinct_rows(self.obs[span])))
        self.expected = self.best = None
        if self._rewards is not None and len(self.chunks) == 1:
            self.expected = np.asarray(self._rewards(self.task_rows), dtype=np.float64)
            # each state's best expected reward (for regret and the optimal-action rate), once for every evaluation
            self.best = self.expected.max(axis=1)

    def totals(self, probs_of: Callable[[np.ndarray], np.ndarray], rng: np.random.Generator | None) -> Totals:
        """The totals of the policy ``probs_of(states) -> (n, K)`` over every state, chunk after chunk."""
        total = None
        for chunk in self.chunks:
            probs = probs_of(chunk.distinct)
            if len(chunk.distinct) < len(chunk.row_of):  # states repeat: expand (a copy of the table otherwise)
                probs = probs[chunk.row_of]
            expected, best = self._rewards_of(chunk)
            part = totals(probs, expected, rng if expected is not None else None, best)
            total = part if total is None else total + part
            del probs, expected  # before the next chunk's tables are made: one chunk's memory at a time
        return total

    def expected_chunks(self) -> Iterator[np.ndarray]:
        """The expected rewards of the states, chunk after chunk (what the baselines are computed from)."""
        for chunk in self.chunks:
            yield self._rewards_of(chunk)[0]

    def _rewards_of(self, chunk: _Chunk) -> tuple[np.ndarray | None, np.ndarray | None]:
        if self._rewards is None:
            return None, None
        if self.expected is not None:
            return self.expected[chunk.rows], self.best[chunk.rows]
        expected = np.asarray(self._rewards(self.task_rows[chunk.rows]), dtype=np.float64)
        return expected, expected.max(axis=1)


def rewards_source(env: Any) -> tuple[np.ndarray, Rewards, int] | None:
    """The evaluation states of a personalization task (a task, a Gymnasium wrapper of one, or an SB3 VecEnv of them),
    a function that gives the expected rewards of rows of them, and the task's number of actions; None for any other
    env."""
    if isinstance(env, VecEnv):
        if not env.has_attr("eval_rows"):
            return None

        def rows_of(rows: np.ndarray) -> np.ndarray:
            return env.env_method("eval_rows", rows, indices=[0])[0].expected

        return env.env_method("eval_obs", indices=[0])[0], rows_of, int(env.action_space.n)
    task = getattr(env, "unwrapped", env)
    if not hasattr(task, "eval_rows"):
        return None
    return task.eval_obs(), lambda rows: task.eval_rows(rows).expected, int(task.action_space.n)


def task_id_of(env: Any) -> str | None:
    """The registered id of the personalization task behind ``env`` (a task, a wrapper of one, an SB3 VecEnv of
    them); None for any other env."""
    if isinstance(env, VecEnv):
        try:
            return env.get_attr("task_id", indices=[0])[0]
        except AttributeError:
            return None
    return getattr(getattr(env, "unwrapped", env), "task_id", None)


def _checked(obs: Any) -> np.ndarray:
    """Evaluation states as an array of numbers, shape (n, ...), every one finite; a ValueError saying what is not."""
    obs = np.asarray(obs)
    if obs.dtype.kind not in "biuf":
        raise ValueError(f"evaluation states must be an array of numbers, got dtype {obs.dtype}")
    if obs.ndim < 1 or len(obs) == 0:
        raise ValueError(f"evaluation states must have shape (n, *obs_shape) with n >= 1, got {obs.shape}")
    finite_rows = np.isfinite(obs.reshape(len(obs), -1)).all(axis=1)
    if not finite_rows.all():
        first = int(np.flatnonzero(~finite_rows)[0])
        raise ValueError(
            f"evaluation states contain NaN or inf in {int((~finite_rows).sum())} of {len(obs)} rows; the first is "
            f"row {first}: {np.array2string(obs[first], threshold=20, max_line_width=10**6)}. Every state must "
            "be finite."
        )
    return obs
