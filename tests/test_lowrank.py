"""The low-rank fit (personalization_gym.lowrank) against independent computations: each half-step is every row's
exact ridge regression, ratings left out of a fit do not reach it, and the layout's sorts and id tables are
numpy's own."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from personalization_gym.envs.ratings import _rated_ids
from personalization_gym.lowrank import RatingTable, _padded_length, fit_low_rank, stable_order


def random_table(seed: int, n_users: int = 50, n_items: int = 40, n_ratings: int = 600) -> RatingTable:
    """Ratings of distinct pairs; popular items rated far more often than the rest (rows of many lengths)."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, n_users * n_items + 1) ** 0.7
    pairs = rng.choice(n_users * n_items, size=n_ratings, replace=False, p=weights / weights.sum())
    users, items = pairs % n_users, pairs // n_users
    ratings = rng.integers(1, 11, size=n_ratings) / 2
    return RatingTable(users, items, ratings, n_users, n_items)


def ridge_by_loop(rows: np.ndarray, columns: np.ndarray, targets: np.ndarray, other: np.ndarray, n_rows: int,
                  reg: float) -> np.ndarray:  # fmt: skip
    """Each row's ALS-WR ridge regression on (the other side's factors, 1), one row at a time."""
    regressors = np.hstack([other, np.ones((len(other), 1))])
    solved = np.zeros((n_rows, regressors.shape[1]))
    for row in range(n_rows):
        mine = rows == row
        x, y = regressors[columns[mine]], targets[mine]
        weight = reg * max(mine.sum(), 1) * np.eye(x.shape[1])
        solved[row] = np.linalg.solve(x.T @ x + weight, x.T @ y)
    return solved


def test_the_last_half_step_is_every_items_exact_ridge_regression() -> None:
    table, reg = random_table(0), 0.3
    fit = fit_low_rank(table, 4, reg, 3, np.random.default_rng(1))
    targets = table.ratings - fit.mean - fit.user_bias[table.users]
    expected = ridge_by_loop(table.items, table.users, targets, fit.user_factors, table.n_items, reg)
    np.testing.assert_allclose(fit.item_factors, expected[:, :4], rtol=0, atol=1e-12)
    np.testing.assert_allclose(fit.item_bias, expected[:, 4], rtol=0, atol=1e-12)
    assert fit.mean == table.ratings.mean()


def test_ratings_left_out_of_a_fit_do_not_reach_it() -> None:
    """A fit of some ratings, with the others held out, is the fit of a table of just those ratings (a user or item
    whose every rating is held out gets factors 0)."""
    table = random_table(2)
    fitted = np.random.default_rng(3).random(table.n_ratings) < 0.7
    fitted[table.users == 0] = False  # user 0 keeps no rating
    masked = fit_low_rank(table, 3, 0.1, 10, np.random.default_rng(4), fitted)
    alone = RatingTable(table.users[fitted], table.items[fitted], table.ratings[fitted], table.n_users, table.n_items)
    direct = fit_low_rank(alone, 3, 0.1, 10, np.random.default_rng(4))
    for name in ("user_factors", "item_factors", "user_bias", "item_bias"):
        np.testing.assert_allclose(getattr(masked, name), getattr(direct, name), rtol=0, atol=1e-12)
    assert masked.mean == direct.mean and not masked.user_factors[0].any() and masked.user_bias[0] == 0


def test_rows_longer_than_a_block_are_fitted_whole(monkeypatch) -> None:
    """Blocks are cut at BLOCK_SLOTS slots, except that a row is never cut: the same fit with blocks of 8 slots."""
    table = random_table(5)
    whole = fit_low_rank(table, 3, 0.1, 4, np.random.default_rng(6))
    monkeypatch.setattr("personalization_gym.lowrank.BLOCK_SLOTS", 8)
    small = RatingTable(table.users, table.items, table.ratings, table.n_users, table.n_items)
    assert max(length for _, _, length in small.by_item.blocks) > 8  # some item's row is longer than a block
    assert len(small.by_user.blocks) > len(table.by_user.blocks)  # and runs of rows were cut
    cut = fit_low_rank(small, 3, 0.1, 4, np.random.default_rng(6))
    np.testing.assert_allclose(cut.user_factors, whole.user_factors, rtol=0, atol=1e-12)


@settings(max_examples=80, deadline=None)
@given(hnp.arrays(np.int64, st.integers(0, 300), elements=st.integers(0, 2**32 - 1)))
def test_stable_order_is_numpys_stable_argsort(keys: np.ndarray) -> None:
    np.testing.assert_array_equal(stable_order(keys, 2**32), np.argsort(keys, kind="stable"))
    small = keys % 70_000  # keys under 2**16 take one pass, over it two
    np.testing.assert_array_equal(stable_order(small, 70_000), np.argsort(small, kind="stable"))


@given(hnp.arrays(np.int64, st.integers(1, 200), elements=st.integers(0, 10**6)))
def test_padded_lengths_hold_each_row_with_at_most_an_eighth_more(counts: np.ndarray) -> None:
    length = _padded_length(counts)
    assert (length[counts <= 32] == counts[counts <= 32]).all()
    assert (length >= counts).all() and (8 * length <= 9 * counts).all()


@settings(max_examples=80, deadline=None)
@given(
    st.one_of(
        hnp.arrays(st.sampled_from([np.int64, np.int32, np.uint16]), st.integers(1, 60), elements=st.integers(0, 500)),
        hnp.arrays(np.int64, st.integers(1, 60), elements=st.integers(-(2**62), 2**62)),
        hnp.arrays(np.dtype("<U3"), st.integers(1, 60), elements=st.text("abc", max_size=3)),
    )
)
def test_rated_ids_are_numpys_unique(column: np.ndarray) -> None:
    """Ids counted in a table of their range (integers over a small one) or sorted (the rest): np.unique's answer."""
    ids, index = _rated_ids(column)
    expected_ids, expected_index = np.unique(column, return_inverse=True)
    np.testing.assert_array_equal(ids, expected_ids)
    np.testing.assert_array_equal(index, expected_index)
    assert ids.dtype == expected_ids.dtype
