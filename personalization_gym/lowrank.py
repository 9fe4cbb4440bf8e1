"""A low-rank model of a rating table, fitted to the observed ratings by alternating least squares.

The model is biased matrix factorisation, ``r(u, i) = mu + b[u] + c[i] + P[u] . Q[i]`` (Koren, Bell and Volinsky,
"Matrix factorization techniques for recommender systems", IEEE Computer 2009), with ``mu`` the mean observed
rating, ``b`` and ``c`` user and item biases and ``P`` (users x rank), ``Q`` (items x rank) the factors. It is
fitted by alternating least squares with weighted-lambda regularisation (ALS-WR: Zhou, Wilkinson, Schreiber and
Pan, "Large-scale parallel collaborative filtering for the Netflix Prize", AAIM 2008), which minimises

    sum over observed (u, i) of (r - mu - b[u] - c[i] - P[u] . Q[i])^2
        + reg * (sum_u n_u (|P[u]|^2 + b[u]^2) + sum_i n_i (|Q[i]|^2 + c[i]^2))

with ``n_u`` and ``n_i`` the numbers of ratings of user u and item i. Each half-step solves every user's (or
item's) ridge regression exactly, all of them in one batched ``np.linalg.solve``. The Gram matrices come from one
sparse-dense product, the ratings' CSR matrix times the other side's outer products ``F F^T`` (rank^2 numbers per
row), and the right-hand sides from another: no array per rating and factor, so memory stays
O(ratings + (users + items) * rank^2), and torch's sparse products use every core.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

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


class _Side:
    """One side of the rating table (its users, or its items) as ALS solves it: the ratings sorted by this side's
    index, as a CSR matrix whose rows are this side's and whose columns are the other side's, so that each half-step
    is two sparse-dense products (torch's, on every core) instead of a pass over the ratings per pair of factors."""

    def __init__(self, rows: np.ndarray, columns: np.ndarray, n_rows: int, n_columns: int) -> None:
        import torch  # the fit's one use of torch: its multithreaded sparse products

        # the ratings in CSR order, by row; within a row in their own order, so that each row sums them in the
        # order np.bincount does (the same numbers as a pass over the ratings)
        self.order = np.argsort(rows, kind="stable")
        counts = np.bincount(rows, minlength=n_rows)
        self.counts = counts.astype(np.float64)
        self.indptr = torch.from_numpy(np.concatenate([[0], np.cumsum(counts)]).astype(np.int64))
        self.indices = torch.from_numpy(np.ascontiguousarray(columns[self.order], dtype=np.int64))
        self.shape = (n_rows, n_columns)

    def matrix(self, values: np.ndarray) -> Any:
        """The CSR matrix of this side with ``values`` (one per rating, in the ratings' own order)."""
        import torch

        data = torch.from_numpy(np.ascontiguousarray(values[self.order], dtype=np.float64))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # torch: sparse CSR support is in beta
            return torch.sparse_csr_tensor(self.indptr, self.indices, data, size=self.shape)

    def solve(self, other: np.ndarray, targets: np.ndarray, reg: float, ones: Any) -> np.ndarray:
        """Each row's ridge solution ``(F^T F + reg n I) x = F^T r`` over its ratings, with F the other side's
        factors (``other``, one row per column of this side) and r the ``targets`` (one per rating)."""
        import torch

        rank = other.shape[1]
        upper = np.triu_indices(rank)
        # each row's Gram matrix sums the outer products of the other side's factors it rated: one product
        outer = torch.from_numpy(np.ascontiguousarray((other[:, :, None] * other[:, None, :])[:, upper[0], upper[1]]))
        gram_upper = (ones @ outer).numpy()
        rhs = (self.matrix(targets) @ torch.from_numpy(other)).numpy()
        gram = np.empty((self.shape[0], rank, rank))
        gram[:, upper[0], upper[1]] = gram_upper
        gram[:, upper[1], upper[0]] = gram_upper
        # A row without ratings gets reg * I: its factors are 0 (the model predicts the mean for it).
        gram += (reg * np.maximum(self.counts, 1.0))[:, None, None] * np.eye(rank)
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
    by_user, by_item = _Side(users, items, n_users, n_items), _Side(items, users, n_items, n_users)
    user_ones, item_ones = by_user.matrix(np.ones(len(ratings))), by_item.matrix(np.ones(len(ratings)))
    for _ in range(n_iter):
        # Each side's unknowns are its factors and its bias: regress on (the other side's factors, 1).
        solved = by_user.solve(_with_ones(item_factors), residual - item_bias[items], reg, user_ones)
        user_factors, user_bias = solved[:, :rank], solved[:, rank]
        solved = by_item.solve(_with_ones(user_factors), residual - user_bias[users], reg, item_ones)
        item_factors, item_bias = solved[:, :rank], solved[:, rank]
    return LowRankFit(mean, user_factors, item_factors, user_bias, item_bias, reg, n_iter)


def _with_ones(factors: np.ndarray) -> np.ndarray:
    return np.hstack([factors, np.ones((len(factors), 1))])


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
