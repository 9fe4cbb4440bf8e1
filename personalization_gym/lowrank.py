"""A low-rank model of a rating table, fitted to the observed ratings by alternating least squares.

The model is biased matrix factorisation, ``r(u, i) = mu + b[u] + c[i] + P[u] . Q[i]`` (Koren, Bell and Volinsky,
"Matrix factorization techniques for recommender systems", IEEE Computer 2009), with ``mu`` the mean observed
rating, ``b`` and ``c`` user and item biases and ``P`` (users x rank), ``Q`` (items x rank) the factors. It is
fitted by alternating least squares with weighted-lambda regularisation (ALS-WR: Zhou, Wilkinson, Schreiber and
Pan, "Large-scale parallel collaborative filtering for the Netflix Prize", AAIM 2008), which minimises

    sum over observed (u, i) of (r - mu - b[u] - c[i] - P[u] . Q[i])^2
        + reg * (sum_u n_u (|P[u]|^2 + b[u]^2) + sum_i n_i (|Q[i]|^2 + c[i]^2))

with ``n_u`` and ``n_i`` the numbers of ratings of user u and item i. Each half-step solves every user's (or
item's) ridge regression exactly, all of them in one batched ``np.linalg.solve``.

The Gram matrices and right-hand sides are batched matrix products. A :class:`RatingTable` lays each side's
ratings out once, its rows grouped by their number of ratings (rounded up to one of a few lengths, at most 1/8
more, the gaps pointing at a row of zeros); a half-step gathers the other side's factors rating by rating into
``(rows, length, rank + 2)`` blocks, the targets in the last column, and one ``torch.bmm`` per block gives every
row's ``X^T X``: its Gram matrix beside its right-hand side. Memory stays O(ratings + (users + items) * rank^2),
every core works, and a sweep allocates nothing new.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["FitReport", "LowRankFit", "RatingTable", "fit_low_rank", "held_out_error"]

BLOCK_SLOTS = 2**20  # ratings gathered per batched product: (rank + 2) * 8 MB of scratch


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
        predicted = np.empty(len(users))
        for start in range(0, len(users), BLOCK_SLOTS):  # by blocks: no (pairs, rank) gathers of every pair at once
            user, item = users[start : start + BLOCK_SLOTS], items[start : start + BLOCK_SLOTS]
            factors = np.einsum("kr,kr->k", self.user_factors[user], self.item_factors[item])
            predicted[start : start + BLOCK_SLOTS] = self.mean + self.user_bias[user] + self.item_bias[item] + factors
        return predicted


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

    @property
    def flag(self) -> str:
        """The warning for a model that does not predict held-out ratings better than their mean ("" when it
        does): its completed ratings, the task's rewards, would be fitted noise."""
        if self.held_out_rmse < self.mean_rmse:
            return ""
        return (
            f"the rank-{self.rank} model predicts the held-out ratings no better than the mean rating does (RMSE "
            f"{self.held_out_rmse:.4f}, the mean's {self.mean_rmse:.4f}), so the completed ratings are fitted noise: "
            f"too few ratings for rank {self.rank} ({self.n_ratings:,} fitted), or ratings without low-rank "
            "structure. A smaller rank, a larger reg or more ratings may fit"
        )

    def __str__(self) -> str:
        fit = (
            f"rank-{self.rank} biased matrix factorisation (ALS, reg {self.reg:g}): held-out RMSE "
            f"{self.held_out_rmse:.4f} on "
            f"{self.n_held_out:,} ratings (predicting the mean rating: {self.mean_rmse:.4f}; training RMSE "
            f"{self.train_rmse:.4f} on {self.n_ratings:,})"
        )
        return fit + (f"; {self.flag}" if self.flag else "")


class RatingTable:
    """The observed ratings of an ``n_users x n_items`` table, laid out once for every fit of it (the held-out
    check's and the final one): ``ratings[k]`` rates item ``items[k]`` by user ``users[k]``."""

    def __init__(self, users: np.ndarray, items: np.ndarray, ratings: np.ndarray, n_users: int, n_items: int) -> None:
        self.users, self.items, self.ratings = users, items, ratings
        self.n_users, self.n_items, self.n_ratings = n_users, n_items, len(ratings)
        self.by_user, self.by_item = _Side(users, n_users), _Side(items, n_items)


def stable_order(keys: np.ndarray, n_keys: int) -> np.ndarray:
    """``np.argsort(keys, kind="stable")`` for integer keys in ``[0, n_keys)``, ``n_keys <= 2**32``: two passes of
    numpy's radix sort (linear in the keys for 16-bit ones), three times faster than its merge sort on millions."""
    if n_keys <= 2**16:
        return np.argsort(keys.astype(np.uint16), kind="stable")
    by_low = np.argsort((keys & 0xFFFF).astype(np.uint16), kind="stable")
    return by_low[np.argsort((keys[by_low] >> 16).astype(np.uint16), kind="stable")]


def _index_type(n: int) -> type:
    return np.int32 if n < 2**31 else np.int64


def _padded_length(counts: np.ndarray) -> np.ndarray:
    """Each row's slots: its number of ratings, above 32 rounded up to a multiple of an eighth of its power of two
    (at most 1/8 more), so that a side's rows fall into a few lengths per doubling."""
    step = 2 ** np.maximum(np.floor(np.log2(np.maximum(counts, 1))).astype(np.int64) - 3, 0)
    return np.where(counts <= 32, counts, -(-counts // step) * step)


class _Side:
    """One side of the table (its users, or its items) laid out for batched products: its rows ordered by padded
    length, each row's ratings in consecutive slots in their own order (so every fit sums them in one order),
    then its padding; ``rating[slot]`` is the rating in a slot, -1 in the padding."""

    def __init__(self, rows: np.ndarray, n_rows: int) -> None:
        counts = np.bincount(rows, minlength=n_rows)
        length = _padded_length(counts)
        self.row_order = np.argsort(length, kind="stable")  # the rows by length, then by index
        position = np.empty(n_rows, dtype=np.int64)
        position[self.row_order] = np.arange(n_rows)
        order = stable_order(position[rows], n_rows)  # the ratings by their row's position, each row's in order
        sorted_length = length[self.row_order]
        self.slot_start = np.concatenate([[0], np.cumsum(sorted_length)])
        first_rating = np.concatenate([[0], np.cumsum(counts[self.row_order])])
        row = position[rows[order]]
        self.rating = np.full(self.slot_start[-1], -1, dtype=_index_type(len(rows)))
        self.rating[self.slot_start[row] + np.arange(len(rows)) - first_rating[row]] = order
        self.blocks = _blocks(sorted_length)

    @property
    def n_rows(self) -> int:
        return len(self.row_order)

    @property
    def largest_block(self) -> int:
        return max((self.slot_start[end] - self.slot_start[first] for first, end, _ in self.blocks), default=0)


def _blocks(sorted_length: np.ndarray) -> list[tuple[int, int, int]]:
    """``(first row, end row, length)`` of each run of rows of one length, cut to at most BLOCK_SLOTS slots (or
    one row) each."""
    bounds = (np.flatnonzero(np.diff(sorted_length)) + 1).tolist()
    blocks = []
    for start, end in zip([0, *bounds], [*bounds, len(sorted_length)], strict=True):
        length = int(sorted_length[start])
        step = max(1, BLOCK_SLOTS // max(length, 1))
        blocks += [(first, min(first + step, end), length) for first in range(start, end, step)]
    return blocks


class _HalfStep:
    """One side's half-step in one fit: each slot's column (the other side's index; the ratings left out of the
    fit and the padding point at a row of zeros) and rating (0 there), each row's weight ``n`` in the ridge, and
    the products every half-step overwrites."""

    def __init__(self, side: _Side, other_index: np.ndarray, ratings: np.ndarray, fitted: np.ndarray | None,
                 n_other: int, width: int) -> None:  # fmt: skip
        import torch  # the fit's one use of torch: its multithreaded gathers and batched products

        self.side, self.width = side, width
        used = side.rating >= 0
        if fitted is not None:
            used[used] = fitted[side.rating[used]]
        columns = np.where(used, other_index[side.rating], n_other)  # the other side's row n is zeros
        self.columns = torch.from_numpy(columns.astype(_index_type(n_other + 1)))
        self.ratings = torch.from_numpy(np.where(used, ratings[side.rating], 0.0))
        fitted_slots = np.concatenate([[0], np.cumsum(used)])
        counts = fitted_slots[side.slot_start[1:]] - fitted_slots[side.slot_start[:-1]]
        self.ridge = np.maximum(counts, 1).astype(np.float64)  # a row without ratings gets reg * I: its factors 0
        self.products = torch.empty((side.n_rows, width, width), dtype=torch.float64)

    def solve(self, other: np.ndarray, reg: float, scratch: Any) -> np.ndarray:
        """Each row's ridge solution ``(F^T F + reg n I) x = F^T t`` over its fitted ratings, with F the other side's
        factors and a 1 (``other[:, :-1]``), and targets t = rating + ``other[:, -1]``; ``other`` ends in a row of
        zeros. Rows in their own order."""
        import torch

        other_rows, starts = torch.from_numpy(other), self.side.slot_start
        for first, end, length in self.side.blocks:
            slots = slice(starts[first], starts[end])
            gathered = torch.index_select(other_rows, 0, self.columns[slots], out=scratch[: slots.stop - slots.start])
            gathered[:, -1] += self.ratings[slots]
            gathered = gathered.view(end - first, length, self.width)
            torch.bmm(gathered.transpose(1, 2), gathered, out=self.products[first:end])  # [F t]^T [F t]
        products = self.products.numpy()
        gram, rhs = products[:, :-1, :-1], products[:, :-1, -1]
        np.einsum("nii->ni", gram)[...] += (reg * self.ridge)[:, None]
        solved = np.empty((self.side.n_rows, self.width - 1))
        solved[self.side.row_order] = np.linalg.solve(gram, rhs[:, :, None])[:, :, 0]
        return solved


def fit_low_rank(
    table: RatingTable, rank: int, reg: float, n_iter: int, rng: np.random.Generator, fitted: np.ndarray | None = None
) -> LowRankFit:
    """Fit ``mu + b + c + P Q^T`` to the observed ratings (those where ``fitted`` is True, all by default) by
    ``n_iter`` ALS sweeps.

    ``Q`` starts from ``N(0, 0.1^2)`` draws of ``rng``, the biases from 0; each sweep solves the users' factors and
    biases given the items', then the items' given the users'.
    """
    import torch

    mean = float(table.ratings.mean() if fitted is None else table.ratings[fitted].mean())
    user_factors, user_bias = np.zeros((table.n_users, rank)), np.zeros(table.n_users)
    item_factors, item_bias = 0.1 * rng.standard_normal((table.n_items, rank)), np.zeros(table.n_items)
    # Each side's unknowns are its factors and its bias: regress on (the other side's factors, 1).
    width = rank + 2
    by_user = _HalfStep(table.by_user, table.items, table.ratings, fitted, table.n_items, width)
    by_item = _HalfStep(table.by_item, table.users, table.ratings, fitted, table.n_users, width)
    scratch = torch.empty((max(table.by_user.largest_block, table.by_item.largest_block), width), dtype=torch.float64)
    for _ in range(n_iter):
        solved = by_user.solve(_augmented(item_factors, item_bias, mean), reg, scratch)
        user_factors, user_bias = solved[:, :rank], solved[:, rank]
        solved = by_item.solve(_augmented(user_factors, user_bias, mean), reg, scratch)
        item_factors, item_bias = solved[:, :rank], solved[:, rank]
    return LowRankFit(mean, user_factors, item_factors, user_bias, item_bias, reg, n_iter)


def _augmented(factors: np.ndarray, bias: np.ndarray, mean: float) -> np.ndarray:
    """``[factors, 1, -(bias + mean)]``, then a row of zeros (where the padding points): gathered beside a rating r,
    the regressors of the other side and the target ``r - mean - bias``."""
    augmented = np.zeros((len(factors) + 1, factors.shape[1] + 2))
    augmented[:-1, :-2], augmented[:-1, -2], augmented[:-1, -1] = factors, 1.0, -(bias + mean)
    return augmented


def _rmse(errors: np.ndarray) -> float:
    return math.sqrt(float(np.mean(errors**2)))


def held_out_error(table: RatingTable, rank: int, reg: float, n_iter: int, n_held_out: int,
                   rng: np.random.Generator) -> FitReport:  # fmt: skip
    """Hold out ``n_held_out`` ratings drawn at random (``rng``), fit the rest, and measure both."""
    order = rng.permutation(table.n_ratings)
    test, train = order[:n_held_out], order[n_held_out:]
    fitted = np.ones(table.n_ratings, dtype=bool)
    fitted[test] = False
    fit = fit_low_rank(table, rank, reg, n_iter, rng, fitted)
    users, items, ratings = table.users, table.items, table.ratings
    return FitReport(
        rank=rank,
        reg=reg,
        n_ratings=len(train),
        n_held_out=n_held_out,
        held_out_rmse=_rmse(fit.predict(users[test], items[test]) - ratings[test]),
        mean_rmse=_rmse(ratings[test] - fit.mean),
        train_rmse=_rmse(fit.predict(users[train], items[train]) - ratings[train]),
    )
