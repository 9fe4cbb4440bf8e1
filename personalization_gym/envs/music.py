"""Music-v0: the music recommendation experiment of arXiv 2211.11869, on Spotify audio features."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces

from personalization_gym.checks import check_number, is_number
from personalization_gym.core import BanditEnv, Batch
from personalization_gym.data import find_dataset_folder, verify_files

__all__ = ["PACKAGED_SPOTIFY", "SPOTIFY_SHA256", "MusicEnv"]

# The reference implementation's CSVs (github.com/sukiboo/policy_entropy at commit 194f56b, MIT licence) ship
# inside the package (personalization_gym/assets/spotify/, with LICENSE and SOURCE.md): Music-v0 needs no
# download. Every file is checked against its sha256 wherever it is read from.
PACKAGED_SPOTIFY = Path(__file__).resolve().parent.parent / "assets" / "spotify"
SPOTIFY_SHA256 = {
    "spotify_genres.csv": "6f5b6663cd6b7de22c879deb7248330acc524c8fbbe873e422c118b555cf9901",
    "spotify_actions.csv": "eb05b70c00853b6c4900b757884098f1af006cc4989ef8150a50c1ebf8262dcc",
    "data/acoustic.csv": "17515f108fc1a16ae7492d179bc95e14056ec0f371dd088c57bf42bb67e4fdbf",
    "data/alternative.csv": "cba68b3f00fcc93127349ccf8b41ff7c00eca4bc4acc91db23d183e6dafbc9de",
    "data/ambient.csv": "cd67eab72b489c0e3eb7eafd0f6b766c36ef5ba93a38958267cf29400af4d2ce",
    "data/blues.csv": "bdad1bbab48323c2b62913d31667598781e96f36043d4486d62e6607a7dfa9af",
    "data/chill.csv": "69d32731ebdfd1860f230f2fcb70ff29e948fd38fac1be2d9113a5dee90d40ae",
    "data/classical.csv": "0d819afa80cc0a3bfdd85e31cc5a673d7428167e11c45fa4d981212d24cb1b72",
    "data/country.csv": "568035d77cddeb8cae3988592301d3f8668079e887a1601516f8699156882120",
    "data/electro.csv": "16d5023d59fe14a9e81e624002c3644a8f3b7c6830febfa5dc7acaf0c3fdc57a",
    "data/folk.csv": "054ee22530eec51706875669f6df6236df8aa3ad529610ba5f130e2ac10dd6ef",
    "data/gospel.csv": "20a89f8cd2d13f83217bd79729f590a12b9b41713270995204ddf5d28883f5de",
    "data/hiphop.csv": "c196ba9d4e5e40ae07803a125569e5fb6579f348b0eae76ceb6fa1dadfc93fe4",
    "data/instrumental.csv": "b0c186254b89c68c910dba199e2ad0db98b955251d37eb3c964993e9d83c0acf",
    "data/jazz.csv": "7f2578c898893a23de5c49f8e523085151c8c225b04ff0ef0abf1a1bc3c373b7",
    "data/kpop.csv": "95491a9ca8427784dcfce4ddb64625c269c13a399f4c2fd1bed0aba7586cca37",
    "data/metal.csv": "d28338732c322fe82a704189c3fd7158fb2f7706fd2cd399d5114837e938d5d2",
    "data/pop.csv": "7c1eb9c1c85622bd4512fc75382dbd6b9d39ef96083db5f7e7b09e12f00161d1",
    "data/punk.csv": "950224beea477f3be9a7327ecd0938386efe946b0a44f883073b43c5a96c6aba",
    "data/rnb.csv": "8c9e646b7b4b6fbace3160ea3db029373a866b01d46f0fd69ec84fe0761905c0",
    "data/rock.csv": "e9dfe8e1b990e185396450da31a8886315c36f28eecaa17461c15aad5c86611b",
    "data/soul.csv": "7b99ca6dc4f875d535ed8c43b6512191843f5ec144e8725dcf1f01714608b429",
    "data/top50.csv": "84fc4aea0357ed6db77d70588985e9b84917331633d91ff1501431b279683a8f",
}

FEATURE_NAMES = (
    "acousticness",
    "danceability",
    "energy",
    "instrumentalness",
    "liveness",
    "loudness",
    "mode",
    "speechiness",
    "tempo",
    "valence",
)


def _read_playlist_names(path: Path) -> list[str]:
    """The ``genre`` column of a playlist index (``spotify_genres.csv`` or ``spotify_actions.csv``)."""
    with open(path, newline="") as stream:
        return [row["genre"] for row in csv.DictReader(stream)]


def _read_tracks(path: Path) -> tuple[list[str], np.ndarray]:
    """Track ids and their ``(n_tracks, 10)`` audio features from a playlist file."""
    with open(path, newline="") as stream:
        rows = list(csv.reader(stream))
    header, body = rows[0], rows[1:]
    if tuple(header[2:]) != FEATURE_NAMES or header[1] != "id":
        raise ValueError(f"{path}: expected columns ['', 'id', {', '.join(FEATURE_NAMES)}], got {header}")
    ids = [row[1] for row in body]
    features = np.array([[float(value) for value in row[2:]] for row in body], dtype=np.float64)
    return ids, features


def _liked_fraction_range(value: Any) -> tuple[float, float]:
    if not isinstance(value, (list, tuple)) or len(value) != 2 or not all(map(is_number, value)):
        raise ValueError(f"liked_fraction must be a pair (low, high) of numbers, got {value!r}")
    low, high = float(value[0]), float(value[1])
    if not 0.0 <= low < high <= 1.0:
        raise ValueError(f"liked_fraction must satisfy 0 <= low < high <= 1, got ({low}, {high})")
    return low, high


class MusicEnv(BanditEnv):
    """Music recommendation on Spotify audio features (the paper's Spotify experiment).

    ## Description

    A one-step contextual bandit from "Examining Policy Entropy of Reinforcement Learning Agents for
    Personalization Tasks" (Dereventsov, Starnes, Webster, arXiv 2211.11869). A user is described by the
    music genres they like; the agent recommends one of the 50 tracks of Spotify's "Top 50 - Global"
    playlist. Each of 20 genres has a profile: the mean of 10 audio features (acousticness, danceability,
    energy, instrumentalness, liveness, loudness/60+1, mode, speechiness, tempo/200, valence) over the tracks
    of a genre playlist; genres are ordered by name. With genre profiles ``G`` (20 x 10) and track features
    ``T`` (50 x 10), the affinity of genre ``g`` and track ``a`` is
    ``R = (G - mean over genres of G) (T - mean over tracks of T)^T`` (20 x 50).

    ## Action Space

    ``Discrete(50)``: the index of the recommended track, in the playlist's order (``self.track_ids``).

    ## Observation Space

    ``Box(0, 1, (20,), float32)`` holding 0s and 1s: ``s[g] = 1`` if the user likes genre ``self.genres[g]``.

    ## Rewards

    Deterministic: ``+1`` if ``s . R[:, a] > 0.1``, ``-1`` if ``s . R[:, a] < -0.1``, else ``0``
    (the threshold is ``reward_threshold``).

    ## Starting State

    Each reset draws a new user: ``u ~ U(0.05, 0.25)`` (``liked_fraction``), then ``floor(20 u)`` distinct
    genres chosen uniformly at random are liked (1 to 4 genres with the default range).

    ## Episode End

    Every episode ends after one step (``terminated=True``). ``info`` holds ``expected_reward``,
    ``optimal_reward`` and ``regret``.

    ## Arguments

    ```python
    import gymnasium as gym
    import personalization_gym

    env = gym.make("Personalization/Music-v0")
    ```

    * ``data_dir``: a data root holding a ``spotify/`` folder (torchvision's ``root`` convention), to read the
      CSVs from there instead of the copy shipped in the package. Without it, or when it has no ``spotify/``
      folder, ``$PERSONALIZATION_GYM_DATA`` and the user cache are searched, then the packaged copy is used
      (``self.data_folder`` says which). The files must match the pinned sha256 wherever they come from.
    * ``n_eval``: size of the fixed evaluation set (default 10,000).
    * ``task_seed``: seeds the evaluation set (the catalogue itself is fixed data).
    * ``liked_fraction``: the range ``(low, high)`` of ``u`` (default ``(0.05, 0.25)``).
    * ``reward_threshold``: the affinity needed for a like or a dislike (default 0.1).

    ## Version History

    * v0: Initial version, as in the paper's reference code at commit 194f56b. The CSVs now ship with the
      package: the ``download`` and ``download_url`` arguments are gone (the task and its data are unchanged).
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str] | None = None,
        n_eval: int = 10_000,
        task_seed: int = 0,
        liked_fraction: tuple[float, float] = (0.05, 0.25),
        reward_threshold: float = 0.1,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(n_eval=n_eval, task_seed=task_seed, render_mode=render_mode)
        self.liked_fraction = _liked_fraction_range(liked_fraction)
        # inf would make every reward 0: no task left
        self.reward_threshold = check_number("reward_threshold", reward_threshold, at_least=0)

        folder = find_dataset_folder("spotify", data_dir, marker="spotify_genres.csv") or PACKAGED_SPOTIFY
        verify_files(folder, SPOTIFY_SHA256, "spotify")
        self.data_folder = folder

        genres = sorted(_read_playlist_names(folder / "spotify_genres.csv"))
        self.genres: tuple[str, ...] = tuple(genres)
        self.genre_profiles = np.stack([_read_tracks(folder / "data" / f"{g}.csv")[1].mean(axis=0) for g in genres])

        track_ids: list[str] = []
        track_features = []
        for playlist in _read_playlist_names(folder / "spotify_actions.csv"):
            ids, features = _read_tracks(folder / "data" / f"{playlist}.csv")
            track_ids += ids
            track_features.append(features)
        self.track_ids: tuple[str, ...] = tuple(track_ids)
        self.track_features = np.concatenate(track_features)

        centred_genres = self.genre_profiles - self.genre_profiles.mean(axis=0)
        centred_tracks = self.track_features - self.track_features.mean(axis=0)
        self.reward_matrix = centred_genres @ centred_tracks.T
        for array in (self.genre_profiles, self.track_features, self.reward_matrix):
            array.flags.writeable = False

        self.n_genres = len(genres)
        self.observation_space = spaces.Box(0.0, 1.0, shape=(self.n_genres,), dtype=np.float32)
        self.action_space = spaces.Discrete(len(track_ids))
        self.check_eval_size()

    def data_arrays(self) -> dict[str, np.ndarray]:
        return {"genre_profiles": self.genre_profiles, "track_features": self.track_features}

    def sample(self, n: int, rng: np.random.Generator) -> Batch:
        low, high = self.liked_fraction
        n_liked = ((low + (high - low) * rng.random(n)) * self.n_genres).astype(np.int64)
        # A uniformly random k-subset of genres: the first k of a random permutation of each row
        # (Generator.permuted shuffles every row in C, 3x faster than ranking random keys by argsort).
        # Few and small temporaries: at n = 10,000, fresh memory's page faults cost more than the arithmetic.
        genres = np.arange(self.n_genres, dtype=np.int16)
        permutations = rng.permuted(np.broadcast_to(genres, (n, self.n_genres)), axis=1)
        liked = np.zeros((n, self.n_genres))
        liked[np.repeat(np.arange(n), n_liked), permutations[genres < n_liked[:, None]]] = 1.0
        affinity = liked @ self.reward_matrix
        threshold = self.reward_threshold
        likes, dislikes = affinity > threshold, affinity < -threshold
        expected = np.subtract(likes, dislikes, out=affinity, dtype=np.float64)  # +1 / 0 / -1, in place
        return Batch(obs=liked.astype(np.float32), expected=expected)
