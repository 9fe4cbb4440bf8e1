"""A low-rank model of a rating table, fitted to the observed ratings by alternating least squares.

The model is biased matrix factorisation, ``r(u, i) = mu + b[u] + c[i] + P[u] . Q[i]`` (Koren, Bell and Volinsky,
"Matrix factorization techniques for recommender systems", IEEE Computer 2009), with ``mu`` the mean observed
rating, ``b`` and ``c`` user and item biases and ``P`` (users x rank), ``Q`` (items x rank) the factors. It is
fitted by alternating least squares with weighted-lambda regularisation (ALS-WR: Zhou, Wilkinson, Schreiber and
Pan, "Large-scale parallel collaborative filtering for the Netflix Prize", AAIM 2008), which minimises

    sum over observed (u, i) of (r - mu - b[u] - c[i] - P[u] . Q[i])^2
        + reg * (sum_u n_u (|P[u]|^2 + b[u]^2) + sum_i n_i (|Q[i]|^2 + c[i]^2))

with ``n_u`` and ``n_i`` the numbers of ratings of user u and item i. Each half-step solves every user's (or
item's) ridge regression exactly, all of them in one batched ``np.linalg.solve``; the Gram matrices are built with
one ``np.bincount`` per pair of factor dimensions, so memory stays O(ratings + users * rank^2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["FitReport", "LowRankFit", "fit_low_rank", "held_out_error"]


@dataclass(frozen=True)
class LowRankFit:
    mean: float
    user_factors: np.ndarray  # (n_users, rank)
    item_factors: np.ndarray  # (n_items, rank)
    user_bias: np.ndarray  # (n_users,)
    item_bias: np.ndarray  # (n_items,)
    reg: float
    n_iter: int

    @property
    def rank(self) -> int:
        return self.user_factors.shape[1]

    def predict(self, users: np.ndarray | None = None, items: np.ndarray | None = None) -> np.ndarray:
        """The predicted ratings of (users[k], items[k]) pairs, or the whole (n_users, n_items) matrix."""
        if users is None:
            biases = self.user_bias[:, None] + self.item_bias[None, :]
            return self.mean + biases + self.user_factors @ self.item_factors.T
        biases = self.user_bias[users] + self.item_bias[items]
        return self.mean + biases + np.einsum("kr,kr->k", self.user_factors[users], self.item_factors[items])


@dataclass(frozen=True)
class FitReport:
    """How well the low-rank model predicts ratings it was not fitted to."""

    rank: int
    reg: float
    n_ratings: int  # ratings fitted in the check (the rest were held out)
    n_held_out: int
    held_out_rmse: float  # the model's root mean squared error on the held-out ratings
    mean_rmse: float  # the same for predicting every held-out rating by the mean fitted rating
    train_rmse: float

    def __str__(self) -> str:
        return (
            f"rank-{self.rank} biased matrix factorisation (ALS, reg {self.reg:g}): held-out RMSE "
            f"{self.held_out_rmse:.4f} on "
            f"{self.n_held_out:,} ratings (predicting the mean rating: {self.mean_rmse:.4f}; training RMSE "
            f"{self.train_rmse:.4f} on {self.n_ratings:,})"
        )


def _solve_side(rows: np.ndarray, other: np.ndarray, residual: np.ndarray, n_rows: int, reg: float) -> np.ndarray:
    """Each row's ridge solution ``(F^T F + reg n I) x = F^T r`` over its ratings (F: the other side's factors)."""
    rank = other.shape[1]
    counts = np.bincount(rows, minlength=n_rows).astype(np.float64)
    gram = np.empty((n_rows, rank, rank))
    for a in range(rank):
        for b in range(a, rank):
            gram[:, a, b] = gram[:, b, a] = np.bincount(rows, weights=other[:, a] * other[:, b], minlength=n_rows)
    rhs = np.stack([np.bincount(rows, weights=other[:, a] * residual, minlength=n_rows) for a in range(rank)], 1)
    # A row without ratings gets reg * I: its factors are 0 (the model predicts the mean for it).
    gram += (reg * np.maximum(counts, 1.0))[:, None, None] * np.eye(rank)
    return np.linalg.solve(gram, rhs[:, :, None])[:, :, 0]


def fit_low_rank(
    users: np.ndarray,
    items: np.ndarray,
    ratings: np.ndarray,
    n_users: int,
    n_items: int,
    rank: int,
    reg: float,
    n_iter: int,
    rng: np.random.Generator,
) -> LowRankFit:
    """Fit ``mu + b + c + P Q^T`` to the observed ``ratings[k]`` of ``(users[k], items[k])`` by ``n_iter`` ALS sweeps.

    ``Q`` starts from ``N(0, 0.1^2)`` draws of ``rng``, the biases from 0; each sweep solves the users' factors and
    biases given the items', then the items' given the users'.
    """
    mean = float(ratings.mean())
    residual = ratings - mean
    user_factors, user_bias = np.zeros((n_users, rank)), np.zeros(n_users)
    item_factors, item_bias = 0.1 * rng.standard_normal((n_items, rank)), np.zeros(n_items)
    ones = np.ones((len(ratings), 1))
    for _ in range(n_iter):
        # Each side's unknowns are its factors and its bias: regress on (the other side's factors, 1).
        solved = _solve_side(users, np.hstack([item_factors[items], ones]), residual - item_bias[items], n_users, reg)
        user_factors, user_bias = solved[:, :rank], solved[:, rank]
        solved = _solve_side(items, np.hstack([user_factors[users], ones]), residual - user_bias[users], n_items, reg)
        item_factors, item_bias = solved[:, :rank], solved[:, rank]
    return LowRankFit(mean, user_factors, item_factors, user_bias, item_bias, reg, n_iter)


def _rmse(errors: np.ndarray) -> float:
    return math.sqrt(float(np.mean(errors**2)))


def held_out_error(
    users: np.ndarray,
    items: np.ndarray,
    ratings: np.ndarray,
    n_users: int,
    n_items: int,
    rank: int,
    reg: float,
    n_iter: int,
    n_held_out: int,
    rng: np.random.Generator,
) -> FitReport:
    """Hold out ``n_held_out`` ratings drawn at random (``rng``), fit the rest, and measure both."""
    order = rng.permutation(len(ratings))
    test, train = order[:n_held_out], order[n_held_out:]
    fit = fit_low_rank(users[train], items[train], ratings[train], n_users, n_items, rank, reg, n_iter, rng)
    return FitReport(
        rank=rank,
        reg=reg,
        n_ratings=len(train),
        n_held_out=n_held_out,
        held_out_rmse=_rmse(fit.predict(users[test], items[test]) - ratings[test]),
        mean_rmse=_rmse(ratings[test] - fit.mean),
        train_rmse=_rmse(fit.predict(users[train], items[train]) - ratings[train]),
    )
