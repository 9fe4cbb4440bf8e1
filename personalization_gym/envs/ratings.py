"""Ratings-v0: a rating table as a task, completed by a low-rank model (the usual semi-synthetic simulator)."""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from personalization_gym.arrays import check_finite, held_out_count
from personalization_gym.checks import check_bool, check_integer, check_number
from personalization_gym.envs.tabular import DataOptions, TabularEnv
from personalization_gym.lowrank import FitReport, LowRankFit, RatingTable, fit_low_rank, held_out_error, stable_order
from personalization_gym.rating_files import DEFAULT_COLUMNS, read_ratings

__all__ = ["RatingsEnv", "ReadReport", "read_ratings"]


def _check_pairs(user_ids: np.ndarray, item_ids: np.ndarray, user_index: np.ndarray, item_index: np.ndarray) -> None:
    """Refuse a table that rates a (user, item) pair twice."""
    n_items = len(item_ids)
    pairs = np.sort(user_index * n_items + item_index)
    repeated = pairs[1:][pairs[1:] == pairs[:-1]]
    if len(repeated):
        pair = int(repeated[0])
        raise ValueError(
            f"ratings: {len(np.unique(repeated))} (user, item) pair(s) are rated more than once, e.g. user "
            f"{user_ids[pair // n_items].tolist()!r} and item {item_ids[pair % n_items].tolist()!r}; "
            "keep one rating each"
        )


NOT_A_RATING = 1e6  # no rating scale reaches a million; timestamps (about 1e9) and ids do
SET_ASIDE = 0.001  # the bulk of the ratings: all but this share (at least one) at each end


@dataclass(frozen=True)
class ReadReport:
    """What a rating table was read as: its size, the range of its ratings and ids, and the ratings far outside the
    bulk of the scale, which widen the range completed ratings are cut to. The bulk is the range of the ratings left
    when the most extreme 0.1 % (at least one) at each end are set aside; a rating is far outside it when it is
    farther from it than the scale's size, the largest of the bulk's width and its ends' magnitudes, or negative
    where the bulk is not (with the bulk [1, 5]: below 0 or above 10)."""

    n_ratings: int
    n_users: int
    n_items: int
    rating_range: tuple[float, float]
    user_range: tuple[Any, Any]
    item_range: tuple[Any, Any]
    bulk: tuple[float, float]
    outliers: tuple[float, ...]  # the ratings far outside the bulk, in file order (at most 5 shown)
    n_outliers: int

    @classmethod
    def of(cls, values: np.ndarray, user_ids: np.ndarray, item_ids: np.ndarray) -> ReadReport:
        ends = max(1, int(np.ceil(SET_ASIDE * len(values))))
        if len(values) > 2 * ends:
            low, high = (float(v) for v in np.partition(values, [ends, len(values) - 1 - ends])[[ends, -1 - ends]])
        else:  # too few ratings to set any aside
            low, high = float(values.min()), float(values.max())
        size = max(high - low, abs(low), abs(high))
        far = np.flatnonzero((values < low - size) | (values > high + size) | ((values < 0) & (low >= 0)))
        return cls(
            len(values), len(user_ids), len(item_ids), (float(values.min()), float(values.max())),
            _id_range(user_ids), _id_range(item_ids), (low, high),
            tuple(float(values[k]) for k in far[:5]), len(far),
        )  # fmt: skip

    @property
    def flag(self) -> str:
        """The warning for ratings far outside the bulk ("" when there are none)."""
        if not self.n_outliers:
            return ""
        shown = ", ".join(f"{value:g}" for value in self.outliers) + (", ..." if self.n_outliers > 5 else "")
        return (
            f"{self.n_outliers} rating(s) far outside the bulk of the scale, [{self.bulk[0]:g}, {self.bulk[1]:g}] "
            f"(the ratings without the most extreme 0.1 % at each end): {shown}; they widen the range completed "
            f"ratings are cut to, [{self.rating_range[0]:g}, {self.rating_range[1]:g}]: check whether they are errors"
        )

    def __str__(self) -> str:
        def ids(pair: tuple[Any, Any]) -> str:
            return f"{pair[0]!r} to {pair[1]!r}"

        read = (
            f"read {self.n_ratings:,} ratings of {self.n_users:,} users (ids {ids(self.user_range)}) and "
            f"{self.n_items:,} items (ids {ids(self.item_range)}), ratings {self.rating_range[0]:g} to "
            f"{self.rating_range[1]:g}"
        )
        return read + (f"; {self.flag}" if self.flag else "")


def _id_range(ids: np.ndarray) -> tuple[Any, Any]:
    """The smallest and largest of a task's ids (given by ``users=``/``items=`` in any order, or rated, sorted)."""
    values = ids.tolist()
    return min(values), max(values)


class RatingsEnv(TabularEnv):
    """A rating table as a personalization task: low-rank completion, user factors as context.

    ## Description

    The usual semi-synthetic simulator of recommender research. The observed ratings ``r(u, i)`` are fitted by
    the low-rank model ``mu + P[u] . Q[i]`` of rank ``rank`` (ALS with weighted-lambda regularisation ``reg``,
    see :mod:`personalization_gym.lowrank`); the completed matrix is the expected reward: each observed rating as
    it is (``keep_observed=True``) or the model's value everywhere (``False``), and the model's prediction, cut to
    the range of the observed ratings, where a user did not rate an item. User ``u`` is seen as their factor
    vector ``P[u]``. Before the final fit, ``check_fraction`` of the ratings are held out, the model is fitted to
    the rest, and its error on them is kept as ``self.fit_report`` (printed by the study and ``train.py``, after
    ``self.read_report``: what was read, with ratings far outside the bulk of the scale flagged and warned of; a
    model no better than the mean rating on the held-out ratings is flagged and warned of too).
    docs/tasks.md says what such a simulator can and cannot tell you.

    ## Action Space

    ``Discrete(n_items)``: the item recommended (``self.item_ids[a]`` is its id in the table).

    ## Observation Space

    ``Box(low, high, (rank,), float32)``: the user's factors, bounded by each factor's range over the users.

    ## Rewards

    The completed rating, with the noise of :class:`TabularEnv` (``"bernoulli"`` needs ratings in [0, 1]).

    ## Starting State

    Each reset draws one of the training users uniformly at random; the held-out users (``eval_fraction``) are
    the evaluation set, each once. (All users' ratings are fitted: the split is of whom the agent is trained and
    scored on, not of the simulator.)

    ## Episode End

    Every episode ends after one step (``terminated=True``).

    ## Arguments

    ```python
    env = gym.make("Personalization/Ratings-v0", ratings="ratings.csv", rank=10)
    print(env.unwrapped.fit_report)
    ```

    * ``ratings``: a rating file, or a tuple of three arrays ``(users, items, ratings)``. The file is read as it
      is in any of :data:`personalization_gym.rating_files.RATINGS_FORMATS`: MovieLens-100K's ``u.data``,
      MovieLens-1M/10M's ``ratings.dat``, MovieLens-latest's ``ratings.csv``, RecBole's atomic ``.inter``, or a
      CSV with a header naming ``columns`` (other columns are ignored) or without a header and exactly those
      three columns (a first row whose last field is not a number is a header). Each (user, item) pair is rated
      at most once; ratings must be finite.
    * ``columns``: the header's names of the user, item and rating columns (default ``user,item,rating``; left at
      the default, MovieLens's ``userId,movieId,rating`` and RecBole's ``user_id,item_id,rating`` are found too).
    * ``ratings_format``: ``"auto"`` (default: detected from the file's first line) or one of
      ``RATINGS_FORMATS``: ``"csv"``, ``"movielens-100k"``, ``"movielens-dat"``, ``"recbole"``.
    * ``users``, ``items``: the ids of every user and item. A rating of another id is an error, and so is an id
      without ratings. Default: the ids that occur in the ratings, sorted.
    * ``rank`` (default 10; at most the smaller of the numbers of users and items), ``reg`` (default 0.1),
      ``n_iter`` (ALS sweeps, default 30). A process keeps its last fit: a task of the same ratings and settings
      reuses it (the fit is deterministic).
    * ``keep_observed``: keep the observed ratings in the reward matrix (default) or use the model's values.
    * ``check_fraction``: the share of ratings held out to measure the fit (default 0.1).
    * ``noise``, ``noise_sd``, ``eval_fraction``, ``n_eval``, ``task_seed``: as in :class:`TabularEnv`
      and ``render_mode``, the options of every table task (:class:`~personalization_gym.envs.tabular.DataOptions`;
      ``task_seed`` also seeds the fit's starting point and the held-out ratings).

    ## Version History

    * v0: Initial version. MovieLens's and RecBole's files read as they are, and ``ratings_format``, added
      without a version bump: every file that loaded before gives the same task (except that a UTF-8 byte-order
      mark is no longer read into the first user's id). Catalogue scale (issue 45) without one either: files read
      by numpy's C parser, the fit by batched products, rewards computed row by row (no users x items table),
      at most 10,000 held-out users evaluated by default (``n_eval``). The fit sums the same terms in another
      order, so factors and rewards move by about 1e-14 (MovieLens-100K: at most 1.2e-14, no observation and no
      float32 reward an agent trains on changes, and the MovieLens-100K study and frontier give the same
      numbers); a table of more than 50,000 users evaluates fewer users than before unless ``n_eval`` says.
    """

    FILE_ARGUMENTS: ClassVar[tuple[str, ...]] = ("ratings",)

    def __init__(
        self,
        ratings: Any,
        columns: tuple[str, str, str] = DEFAULT_COLUMNS,
        users: Any = None,
        items: Any = None,
        rank: int = 10,
        reg: float = 0.1,
        n_iter: int = 30,
        keep_observed: bool = True,
        check_fraction: float = 0.1,
        ratings_format: str = "auto",
        **options: Any,
    ) -> None:
        options = DataOptions.of(type(self).__name__, options)
        user_column, item_column, values = self._read(ratings, columns, ratings_format)
        self.user_ids, user_index = _index(user_column, users, "user")
        self.item_ids, item_index = _index(item_column, items, "item")
        _check_pairs(self.user_ids, self.item_ids, user_index, item_index)
        self.read_report = ReadReport.of(values, self.user_ids, self.item_ids)
        if self.read_report.flag:
            warnings.warn(f"ratings: {self.read_report.flag}", UserWarning, stacklevel=2)
        n_users, n_items = len(self.user_ids), len(self.item_ids)
        self.rank = check_integer("rank", rank, minimum=1)
        if self.rank > min(n_users, n_items):  # a factor per user or item at most: more fit noise, not structure
            raise ValueError(
                f"rank must be at most the table's smaller side, min({n_users} users, {n_items} items) = "
                f"{min(n_users, n_items)}, got {self.rank}"
            )
        self.n_iter = check_integer("n_iter", n_iter, minimum=1)
        self.reg = check_number("reg", reg, above=0)
        self.keep_observed = check_bool("keep_observed", keep_observed)
        if len(values) < 2:
            raise ValueError(f"ratings: {len(values)} rating(s): the fit needs at least 2 (one to hold out)")
        if values.min() == values.max():
            raise ValueError(f"ratings: every rating is {values[0]:g}: no item is better than another for any user, "
                             "so the task would have nothing to learn")  # fmt: skip
        n_checked = held_out_count(check_fraction, len(values), "check_fraction")
        if n_checked >= len(values):
            raise ValueError(f"check_fraction {check_fraction} holds out all {len(values)} ratings: the check needs "
                             "some to fit; give more ratings or a smaller check_fraction")  # fmt: skip

        table = RatingTable(user_index, item_index, values, n_users, n_items)
        self.fit_report, self.fit = _fitted(table, self.rank, self.reg, self.n_iter, n_checked, options.task_seed)
        if self.fit_report.flag:
            warnings.warn(f"ratings: {self.fit_report.flag}", UserWarning, stacklevel=2)

        if options.noise == "bernoulli" and not (values.min() >= 0 and values.max() <= 1):
            raise ValueError(
                "noise='bernoulli' draws clicks with probability of the completed rating, so ratings must lie in [0, "
                f"1]; these range over [{values.min():g}, {values.max():g}]. Rescale them, or choose noise='none' or "
                "'gaussian'"
            )
        self.rating_range = (float(values.min()), float(values.max()))  # completed ratings are cut to it
        # The observed ratings, by user (a sparse lookup): each user's rated items and ratings, in file order.
        order = stable_order(user_index, n_users)
        self.ratings = (user_index[order], item_index[order], values[order])
        self._rated = np.concatenate([[0], np.cumsum(np.bincount(user_index, minlength=n_users))])
        for array in (*self.ratings, self._rated):
            array.flags.writeable = False
        self._build_users(self.fit.user_factors, n_items, options)

    def rewards_of(self, users: np.ndarray) -> np.ndarray:
        """The completed ratings of every item for each of ``users``, computed from the model for just these rows:
        ``mu + b[u] + c + P[u] Q^T`` cut to the observed ratings' range, and each observed rating as it is with
        ``keep_observed``. No users x items table is ever held."""
        fit = self.fit
        rewards = fit.user_factors[users] @ fit.item_factors.T  # the one (users, items) table: the rest in place
        rewards += (fit.mean + fit.user_bias[users])[:, None]
        rewards += fit.item_bias[None, :]
        np.clip(rewards, *self.rating_range, out=rewards)
        if self.keep_observed:
            starts, counts = self._rated[users], self._rated[np.asarray(users) + 1] - self._rated[users]
            rows = np.repeat(np.arange(len(starts)), counts)
            offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
            rated = np.repeat(starts, counts) + offsets  # each user's observed ratings, in self.ratings
            rewards[rows, self.ratings[1][rated]] = self.ratings[2][rated]
        return rewards

    def data_arrays(self) -> dict[str, np.ndarray]:
        """The ratings the task was fitted to (and the ids they name): what its fingerprint hashes."""
        users, items, values = self.ratings
        return {"users": users, "items": items, "ratings": values, "user_ids": self.user_ids, "item_ids": self.item_ids}

    @staticmethod
    def _read(ratings: Any, columns: Any, ratings_format: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if not (isinstance(columns, (tuple, list)) and len(columns) == 3 and all(isinstance(c, str) for c in columns)):
            raise ValueError(f"columns must name the user, item and rating columns, three strings, got {columns!r}")
        if isinstance(ratings, (str, os.PathLike)):
            users, items, values = read_ratings(ratings, tuple(columns), ratings_format)
        elif isinstance(ratings, (tuple, list)) and len(ratings) == 3:
            users, items, values = (np.asarray(column) for column in ratings)
        else:
            raise ValueError(
                "ratings must be a rating file (a path) or a tuple of three arrays (users, items, ratings), "
                f"got {type(ratings).__name__}"
            )
        shapes = [np.shape(column) for column in (users, items, values)]
        if any(len(shape) != 1 for shape in shapes) or len(set(shapes)) != 1 or shapes[0][0] == 0:
            raise ValueError(f"ratings: users, items and ratings must be 1-d arrays of one equal length > 0, got "
                             f"shapes {shapes}")  # fmt: skip
        if values.dtype.kind not in "iuf":
            raise ValueError(f"ratings must be numbers, got dtype {values.dtype}")
        check_finite(values, "ratings")
        huge = np.flatnonzero(np.abs(values) >= NOT_A_RATING)
        if len(huge):
            raise ValueError(
                f"ratings: {len(huge)} rating(s) of magnitude 1e6 or more, the first {values[huge[0]]:g} (rating "
                f"{huge[0] + 1:,} in file order): no rating scale reaches that, timestamps and ids do. Is the rating "
                "column the third (user, item, rating)? With a header, name the columns with columns="
            )
        return users, items, values.astype(np.float64)


_LAST_FIT: dict[tuple[Any, ...], tuple[FitReport, LowRankFit]] = {}  # this process's last fit, by what it fitted


def _fitted(
    table: RatingTable, rank: int, reg: float, n_iter: int, n_checked: int, task_seed: int
) -> tuple[FitReport, LowRankFit]:
    """The held-out check and the final fit of ``table``; this process's last ones again when the ratings and the
    settings are the same: the fit is deterministic, and a study's runs build one task again and again (ML-25M's
    shape: 2 minutes a build)."""
    digest = hashlib.blake2b(digest_size=20)
    for array in (table.users, table.items, table.ratings):
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(memoryview(np.ascontiguousarray(array)).cast("B"))
    key = (digest.hexdigest(), table.n_users, table.n_items, rank, reg, n_iter, n_checked, task_seed)
    if key not in _LAST_FIT:
        # The fit has its own generators, apart from the split's (TabularEnv's task_rng): one for the check's
        # held-out ratings and starting point, one for the final fit's starting point.
        check_seed, fit_seed = np.random.SeedSequence([task_seed, 1]).spawn(2)
        report = held_out_error(table, rank, reg, n_iter, n_checked, np.random.default_rng(check_seed))
        fit = fit_low_rank(table, rank, reg, n_iter, np.random.default_rng(fit_seed))
        for array in (fit.user_factors, fit.item_factors, fit.user_bias, fit.item_bias):
            array.flags.writeable = False  # shared by every task built from the same ratings
        _LAST_FIT.clear()
        _LAST_FIT[key] = (report, fit)
    return _LAST_FIT[key]


def _index(column: np.ndarray, known: Any, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """The ids (given, or those rated, sorted) and each rating's index among them; unknown or unrated ids refused."""
    if column.dtype.kind == "f":
        raise ValueError(f"{kind} ids must be integers or strings, got floats (dtype {column.dtype})")
    if known is None:
        return _rated_ids(column)
    ids = np.asarray(known)
    if ids.ndim != 1 or len(np.unique(ids)) != len(ids):
        raise ValueError(f"{kind}s must be a list of distinct {kind} ids, got {known!r}")
    if (ids.dtype.kind in "iu") != (column.dtype.kind in "iu"):  # 1 and '1' are different ids: say why
        written = {True: "integers", False: "text"}
        raise ValueError(
            f"{kind}s= holds {written[ids.dtype.kind in 'iu']} ({ids[:3].tolist()}, ...) but the ratings' {kind} ids "
            f"are {written[column.dtype.kind in 'iu']} ({column[:3].tolist()}, ...): give {kind}s= as the ratings "
            "write them"
        )
    order = np.argsort(ids, kind="stable")
    position = np.searchsorted(ids, column, sorter=order)
    position = np.minimum(position, len(ids) - 1)
    found = ids[order[position]] == column
    if not found.all():
        unknown = np.unique(column[~found])
        raise ValueError(
            f"ratings for {len(unknown)} unknown {kind}(s), e.g. {unknown[:5].tolist()}: not in the {kind}s given "
            f"({len(ids)} ids)"
        )
    index = order[position]
    unrated = np.setdiff1d(np.arange(len(ids)), index)
    if len(unrated):
        raise ValueError(
            f"{len(unrated)} {kind}(s) have no ratings, e.g. {ids[unrated[:5]].tolist()}: every {kind} needs at least "
            f"one (a {kind} without ratings would be made up entirely by the model); leave them out of {kind}s"
        )
    return ids, index


def _rated_ids(column: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(column, return_inverse=True)``: the distinct ids, sorted, and each rating's index among them. Integer
    ids spread over a range a few times their number (MovieLens's) are counted in a table of the range instead of
    sorted, in a tenth of the time."""
    if column.dtype.kind in "iu" and len(column):
        low, high = int(column.min()), int(column.max())
        if high - low < 4 * len(column) + 2**20:
            offsets = column - column.dtype.type(low)
            rated = np.zeros(high - low + 1, dtype=bool)
            rated[offsets] = True
            index_of = np.cumsum(rated) - 1
            return (np.flatnonzero(rated) + low).astype(column.dtype), index_of[offsets]
    ids, index = np.unique(column, return_inverse=True)
    return ids, index.reshape(-1)
