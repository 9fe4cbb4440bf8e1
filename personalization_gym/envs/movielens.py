"""MovieLens-v0: a MovieLens dataset, as unzipped from GroupLens (or RecBole), as a Ratings-v0 task."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

from personalization_gym.checks import check_choice
from personalization_gym.data import DATA_ENV_VAR, DataNotFoundError, data_roots
from personalization_gym.envs.ratings import RatingsEnv

__all__ = ["MOVIELENS_DATASETS", "MovieLensEnv", "movielens_ratings_file"]

# GroupLens's folder names (as their zip files unpack), and RecBole's ml-100k.
MOVIELENS_DATASETS = ("ml-100k", "ml-1m", "ml-10M100K", "ml-latest-small", "ml-latest", "ml-20m", "ml-25m", "ml-32m")
# The ratings file of each format, in the order looked for: GroupLens's, then RecBole's atomic file.
RATING_FILE_NAMES = ("u.data", "ratings.dat", "ratings.csv")
GROUPLENS = "https://grouplens.org/datasets/movielens/"


def movielens_ratings_file(folder: Path) -> Path | None:
    """The ratings file of an unzipped MovieLens folder (u.data, ratings.dat, ratings.csv or <folder>.inter)."""
    for name in (*RATING_FILE_NAMES, f"{folder.name}.inter"):
        if (folder / name).is_file():
            return folder / name
    return None


class MovieLensEnv(RatingsEnv):
    """A MovieLens dataset as a personalization task: Ratings-v0 on the folder GroupLens's zip file unpacks to.

    ## Description

    :class:`~personalization_gym.envs.ratings.RatingsEnv` (low-rank completion, user factors as context) on the
    ratings of ``dataset``, found as ``<data root>/<dataset>/`` (``ml-100k/`` holds ``u.data``; ``ml-1m/`` and
    ``ml-10M100K/`` hold ``ratings.dat``; ``ml-latest-small/`` and the later ones ``ratings.csv``; RecBole's
    ``ml-100k/`` holds ``ml-100k.inter``). MovieLens's licence forbids redistribution, so the data is not in the
    package and is never downloaded: get it from https://grouplens.org/datasets/movielens/ and unzip it into a
    data root.

    ## Action Space

    ``Discrete(n_movies)``: the movie recommended (``self.item_ids[a]`` is its MovieLens id).

    ## Observation Space

    ``Box(low, high, (rank,), float32)``: the user's factors.

    ## Rewards

    The completed rating (1-5 stars; 0.5-5 in half stars for 10M and later), as in Ratings-v0.

    ## Starting State

    Each reset draws one of the training users; the held-out users (``eval_fraction``) are the evaluation set.

    ## Episode End

    Every episode ends after one step (``terminated=True``).

    ## Arguments

    ```python
    env = gym.make("Personalization/MovieLens-v0", data_dir="~/data")  # ~/data/ml-100k/u.data
    ```

    * ``dataset``: the folder name, one of ``MOVIELENS_DATASETS`` (default ``"ml-100k"``: 943 users, 1,682
      movies, 100,000 ratings). No users x movies table is held: a file of ``ml-32m``'s shape (200,838 users,
      87,585 movies, 32 million ratings) builds in 3 minutes at 3.8 GB on 2 cores (docs/performance.md).
    * ``data_dir``: the data root that holds the dataset folder; without it, ``$PERSONALIZATION_GYM_DATA`` and
      the user cache are searched.
    * Every other argument is Ratings-v0's (``rank``, ``reg``, ``n_iter``, ``keep_observed``, ``check_fraction``,
      ``noise``, ``noise_sd``, ``eval_fraction``, ``n_eval``, ``task_seed``, ``render_mode``).

    ## Version History

    * v0: Initial version.
    """

    FILE_ARGUMENTS: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self, dataset: str = "ml-100k", data_dir: str | os.PathLike[str] | None = None, **ratings_kwargs: Any
    ) -> None:
        check_choice("dataset", dataset, MOVIELENS_DATASETS)
        for name in ("ratings", "columns", "ratings_format", "users", "items"):
            if name in ratings_kwargs:
                raise ValueError(f"MovieLens-v0 reads {name} from the dataset's own file; use Ratings-v0 to give it")
        self.dataset = dataset
        self.ratings_file = _find(dataset, data_dir)
        super().__init__(str(self.ratings_file), **ratings_kwargs)


def _find(dataset: str, data_dir: str | os.PathLike[str] | None) -> Path:
    """The ratings file of ``<root>/<dataset>/`` in the first data root that has one, or a DataNotFoundError."""
    looked = []
    for label, root in data_roots(data_dir):
        folder = root / dataset
        found = movielens_ratings_file(folder) if folder.is_dir() else None
        if found is not None:
            return found
        if movielens_ratings_file(root) is not None and root.name == dataset:
            raise ValueError(
                f"{root} ({label}) is the {dataset} folder itself, but a data root is expected: the folder that "
                f"holds {dataset}/. Use {root.parent} instead."
            )
        looked.append(f"  - {folder} ({label})")
    names = ", ".join((*RATING_FILE_NAMES, f"{dataset}.inter"))
    raise DataNotFoundError(
        f"MovieLens {dataset} not found: no folder with a ratings file ({names}) in\n" + "\n".join(looked) + "\n"
        f"MovieLens may not be redistributed, so it is not downloaded: get {dataset}.zip from {GROUPLENS}, unzip it "
        f"into a folder, and pass that folder as data_dir=<root> or set {DATA_ENV_VAR}=<root>."
    )
