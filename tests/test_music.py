"""Music-v0 against an independent computation from the shared Spotify CSVs, and its data lookup."""

from __future__ import annotations

import csv
import math
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from conftest import PROJECT_ROOT

from personalization_gym import DATA_ENV_VAR, DataIntegrityError, MusicEnv
from personalization_gym.envs.music import PACKAGED_SPOTIFY, SPOTIFY_SHA256

# --------------------------------------------------------------------------------------------------
# Independent computation: plain csv + math.fsum, written from the reference code's description.


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as stream:
        return list(csv.DictReader(stream))


NUMERIC = ["acousticness", "danceability", "energy", "instrumentalness", "liveness", "loudness", "mode",
           "speechiness", "tempo", "valence"]  # fmt: skip


def independent_reward_matrix(spotify_dir: Path) -> tuple[list[str], np.ndarray]:
    genres = sorted(row["genre"] for row in read_rows(spotify_dir / "spotify_genres.csv"))
    profiles = []
    for genre in genres:
        rows = read_rows(spotify_dir / "data" / f"{genre}.csv")
        profiles.append([math.fsum(float(r[f]) for r in rows) / len(rows) for f in NUMERIC])
    tracks = []
    for playlist in (row["genre"] for row in read_rows(spotify_dir / "spotify_actions.csv")):
        tracks += [[float(r[f]) for f in NUMERIC] for r in read_rows(spotify_dir / "data" / f"{playlist}.csv")]
    genre_mean = [math.fsum(p[j] for p in profiles) / len(profiles) for j in range(10)]
    track_mean = [math.fsum(t[j] for t in tracks) / len(tracks) for j in range(10)]
    reward = [
        [math.fsum((p[j] - genre_mean[j]) * (t[j] - track_mean[j]) for j in range(10)) for t in tracks]
        for p in profiles
    ]
    return genres, np.array(reward)


def independent_rewards(obs: np.ndarray, reward_matrix: np.ndarray, threshold: float = 0.1) -> np.ndarray:
    rewards = np.zeros((len(obs), reward_matrix.shape[1]))
    for i, state in enumerate(obs):
        liked = np.flatnonzero(state)
        for a in range(reward_matrix.shape[1]):
            affinity = math.fsum(reward_matrix[g, a] for g in liked)
            rewards[i, a] = 1.0 if affinity > threshold else (-1.0 if affinity < -threshold else 0.0)
    return rewards


@pytest.fixture(scope="module")
def reference(spotify_dir: Path) -> tuple[list[str], np.ndarray]:
    return independent_reward_matrix(spotify_dir)


@pytest.fixture(scope="module")
def music(data_root: Path) -> MusicEnv:
    return MusicEnv(data_dir=data_root)


# --------------------------------------------------------------------------------------------------
# The task


def test_catalogue_and_reward_matrix_match_the_csvs(music: MusicEnv, reference) -> None:
    genres, reward_matrix = reference
    assert music.genres == tuple(genres)
    assert len(genres) == 20 and genres[17:19] == ["rnb", "rock"]  # sorted by name, not by the file's order
    assert music.reward_matrix.shape == (20, 50)
    assert music.action_space.n == 50
    assert music.observation_space.shape == (20,)
    np.testing.assert_allclose(music.reward_matrix, reward_matrix, rtol=0, atol=1e-14)
    assert len(music.track_ids) == 50 and len(set(music.track_ids)) == 50


def test_eval_set_expected_rewards_match_independent_computation(music: MusicEnv, reference) -> None:
    eval_set = music.eval_set()
    assert len(eval_set) == 10_000
    assert eval_set.obs.dtype == np.float32 and eval_set.expected.dtype == np.float64
    assert set(np.unique(eval_set.obs)) == {0.0, 1.0}
    np.testing.assert_array_equal(eval_set.expected, independent_rewards(eval_set.obs, reference[1]))
    # all three outcomes occur, so the comparison covers both thresholds
    assert set(np.unique(eval_set.expected)) == {-1.0, 0.0, 1.0}


def test_stepped_rewards_match_independent_computation(music: MusicEnv, reference) -> None:
    rng = np.random.default_rng(1)
    music.reset(seed=11)
    for _ in range(300):
        obs, _ = music.reset()
        action = int(rng.integers(50))
        _, reward, *_, info = music.step(action)
        expected = independent_rewards(obs[None], reference[1])[0]
        assert reward == expected[action] == info["expected_reward"]
        assert info["optimal_reward"] == expected.max()


def test_liked_genre_counts_follow_the_rule(music: MusicEnv) -> None:
    # u ~ U(0.05, 0.25), floor(20 u) genres: 1, 2, 3 or 4 genres, each with probability 1/4 ...
    obs = music.sample(200_000, np.random.default_rng(2)).obs
    counts = np.bincount(obs.sum(axis=1).astype(int), minlength=6)
    assert counts[0] == counts[5] == 0
    expected = len(obs) / 4
    chi2 = ((counts[1:5] - expected) ** 2 / expected).sum()
    assert chi2 < 24.0, counts  # chi-square, 3 dof: P(chi2 > 24) is about 2.5e-5
    # ... chosen uniformly: every genre is liked with probability 2.5 / 20.
    per_genre = obs.sum(axis=0)
    p = 2.5 / 20
    z = (per_genre - len(obs) * p) / np.sqrt(len(obs) * p * (1 - p))
    assert np.abs(z).max() < 4.5, z
    # Pairs among two-genre users are uniform too (190 pairs).
    two = obs[obs.sum(axis=1) == 2]
    first, second = (np.argsort(-two, axis=1, kind="stable")[:, :2]).T
    pair_counts = np.bincount(first * 20 + second, minlength=400).reshape(20, 20)
    pair_counts = pair_counts[np.triu_indices(20, 1)]
    expected_pair = len(two) / 190
    chi2_pairs = ((pair_counts - expected_pair) ** 2 / expected_pair).sum()
    assert chi2_pairs < 189 + 6 * math.sqrt(2 * 189), chi2_pairs  # mean + 6 sd of chi-square(189)


def test_liked_fraction_and_threshold_arguments(data_root: Path, reference) -> None:
    env = MusicEnv(data_dir=data_root, liked_fraction=[0.4, 0.5], reward_threshold=np.float32(0.3), n_eval=500)
    eval_set = env.eval_set()
    assert set(eval_set.obs.sum(axis=1).astype(int)) == {8, 9}
    threshold = float(np.float32(0.3))
    np.testing.assert_array_equal(eval_set.expected, independent_rewards(eval_set.obs, reference[1], threshold))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"liked_fraction": (0.3, 0.2)}, r"0 <= low < high <= 1, got \(0.3, 0.2\)"),
        ({"liked_fraction": (0.1, 1.5)}, r"0 <= low < high <= 1"),
        ({"liked_fraction": 0.2}, r"liked_fraction must be a pair \(low, high\) of numbers, got 0.2"),
        ({"liked_fraction": ("a", "b")}, r"liked_fraction must be a pair"),
        ({"liked_fraction": "01"}, r"liked_fraction must be a pair \(low, high\) of numbers, got '01'"),
        (
            {"liked_fraction": ("0.05", "0.25")},
            r"liked_fraction must be a pair \(low, high\) of numbers, got \('0.05', '0.25'\)",
        ),
        ({"liked_fraction": (0.05, 0.25, 0.5)}, r"liked_fraction must be a pair"),
        ({"reward_threshold": -0.1}, r"reward_threshold must be a finite number >= 0, got -0.1"),
        ({"reward_threshold": float("inf")}, r"reward_threshold must be a finite number >= 0, got inf"),
        ({"reward_threshold": "0.1"}, r"reward_threshold must be a finite number >= 0, got '0.1'"),
        ({"n_eval": 0}, r"n_eval must be an integer >= 1"),
        ({"download": True}, r"unexpected keyword argument 'download'"),
    ],
)
def test_bad_arguments_raise(data_root: Path, kwargs, message) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        MusicEnv(data_dir=data_root, **kwargs)


def test_determinism_of_eval_set_and_stream(data_root: Path) -> None:
    a, b = MusicEnv(data_dir=data_root, n_eval=1000), MusicEnv(data_dir=data_root, n_eval=1000)
    np.testing.assert_array_equal(a.eval_set().obs, b.eval_set().obs)
    c = MusicEnv(data_dir=data_root, n_eval=1000, task_seed=1)
    assert not np.array_equal(a.eval_set().obs, c.eval_set().obs)
    stream = [a.reset(seed=5)[0]] + [a.reset()[0] for _ in range(99)]
    again = [b.reset(seed=5)[0]] + [b.reset()[0] for _ in range(99)]
    np.testing.assert_array_equal(stream, again)
    other = [b.reset(seed=6)[0]] + [b.reset()[0] for _ in range(99)]
    assert not np.array_equal(stream, other)


# --------------------------------------------------------------------------------------------------
# Where the data comes from


def copy_spotify(spotify_dir: Path, root: Path) -> Path:
    shutil.copytree(spotify_dir, root / "spotify")
    for path in (root / "spotify").rglob("*"):
        path.chmod(0o644 if path.is_file() else 0o755)  # the shared copy is read-only
    (root / "spotify").chmod(0o755)
    return root / "spotify"


def test_packaged_copy_is_the_reference_data_and_needs_no_data_location(
    spotify_dir: Path, monkeypatch: pytest.MonkeyPatch, reference
) -> None:
    monkeypatch.delenv(DATA_ENV_VAR, raising=False)  # and the user cache is empty: only the package has the data
    env = MusicEnv()
    assert env.data_folder == PACKAGED_SPOTIFY
    for name in SPOTIFY_SHA256:
        assert (PACKAGED_SPOTIFY / name).read_bytes() == (spotify_dir / name).read_bytes(), name
    shipped = sorted(str(p.relative_to(PACKAGED_SPOTIFY)) for p in PACKAGED_SPOTIFY.rglob("*") if p.is_file())
    assert shipped == sorted([*SPOTIFY_SHA256, "LICENSE", "SOURCE.md"])
    assert "MIT License" in (PACKAGED_SPOTIFY / "LICENSE").read_text()
    assert "194f56b3b35dcbed96c7c89b91d721e69689a9d2" in (PACKAGED_SPOTIFY / "SOURCE.md").read_text()
    np.testing.assert_allclose(env.reward_matrix, reference[1], rtol=0, atol=1e-14)


def test_lookup_order_data_dir_then_env_var_then_cache_then_package(
    spotify_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated_data_locations: Path
) -> None:
    argument_root, env_root = tmp_path / "argument", tmp_path / "env"
    cache_root = isolated_data_locations / "personalization_gym"
    for root in (argument_root, env_root, cache_root):
        copy_spotify(spotify_dir, root)
    monkeypatch.setenv(DATA_ENV_VAR, str(env_root))
    assert MusicEnv(data_dir=argument_root).data_folder == argument_root / "spotify"
    assert MusicEnv().data_folder == env_root / "spotify"
    # a data_dir without a spotify/ folder is passed over; one that does not exist is an error, not a fallback
    with pytest.raises(
        ValueError, match=r"data_dir .*elsewhere is not a folder \(it does not exist\): give a data root"
    ):
        MusicEnv(data_dir=tmp_path / "elsewhere")
    (tmp_path / "elsewhere").mkdir()
    assert MusicEnv(data_dir=tmp_path / "elsewhere").data_folder == env_root / "spotify"
    monkeypatch.delenv(DATA_ENV_VAR, raising=False)
    assert MusicEnv().data_folder == cache_root / "spotify"
    shutil.rmtree(cache_root / "spotify")
    assert MusicEnv(data_dir=tmp_path / "elsewhere").data_folder == PACKAGED_SPOTIFY
    assert gym.make("Personalization/Music-v0", data_dir=str(argument_root)).unwrapped.data_folder == (
        argument_root / "spotify"
    )


def test_the_wheel_ships_the_data_and_an_installed_copy_runs_offline(tmp_path: Path) -> None:
    # Build the wheel users install from a copy of the sources (no build isolation: nothing is fetched; the copy
    # keeps build/ out of the checkout), install it into a folder of its own, and make Music-v0 there with no
    # data location at all.
    source = tmp_path / "source"
    shutil.copytree(
        PROJECT_ROOT,
        source,
        ignore=shutil.ignore_patterns(".git", "build", "*.egg-info", "__pycache__", "results", "runs"),
    )
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "dist"),
         str(source)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("personalization_gym-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    for name in [*SPOTIFY_SHA256, "LICENSE", "SOURCE.md"]:
        assert f"personalization_gym/assets/spotify/{name}" in names, name
    target = tmp_path / "site"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target", str(target), str(wheel)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    code = (
        "import gymnasium as gym, personalization_gym; env = gym.make('Personalization/Music-v0'); "
        "print(personalization_gym.__file__); print(env.unwrapped.data_folder); print(env.unwrapped.reward_matrix.sum())"
    )
    environment = {k: v for k, v in os.environ.items() if k != DATA_ENV_VAR}
    environment |= {"PYTHONPATH": str(target), "XDG_CACHE_HOME": str(tmp_path / "empty-cache")}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    module_file, data_folder, total = run.stdout.split()
    assert (
        Path(module_file).is_relative_to(target) and Path(data_folder) == target / "personalization_gym/assets/spotify"
    )
    assert float(total) == MusicEnv().reward_matrix.sum()


def test_dataset_folder_given_as_data_root_is_a_clear_error(spotify_dir: Path, monkeypatch) -> None:
    with pytest.raises(
        ValueError, match=rf"{re.escape(str(spotify_dir))} \(data_dir argument\) is a spotify folder, but a data root"
    ):
        MusicEnv(data_dir=spotify_dir)
    monkeypatch.setenv(DATA_ENV_VAR, str(spotify_dir))
    with pytest.raises(
        ValueError, match=rf"\(\${DATA_ENV_VAR}\) is a spotify folder.*Use {re.escape(str(spotify_dir.parent))} instead"
    ):
        MusicEnv()


@pytest.mark.parametrize("victim", ["spotify_genres.csv", "data/top50.csv", "data/rnb.csv"])
def test_corrupted_local_file_raises_naming_it(spotify_dir: Path, tmp_path: Path, victim: str) -> None:
    folder = copy_spotify(spotify_dir, tmp_path)
    path = folder / victim
    content = bytearray(path.read_bytes())
    content[-5] ^= 0x01
    path.write_bytes(bytes(content))
    with pytest.raises(DataIntegrityError, match=rf"checksum mismatch for {path}"):
        MusicEnv(data_dir=tmp_path)


def test_missing_local_file_raises_naming_it(spotify_dir: Path, tmp_path: Path) -> None:
    folder = copy_spotify(spotify_dir, tmp_path)
    (folder / "data" / "jazz.csv").unlink()
    with pytest.raises(DataIntegrityError, match=r"incomplete: data/jazz.csv is missing"):
        MusicEnv(data_dir=tmp_path)
